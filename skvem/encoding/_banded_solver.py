"""Banded ridge regression: one regularisation per feature space and target.

This is the solver under :class:`skvem.encoding.banded.BandedVoxelRidgeCV`, a
pure function in the style of himalaya's
:func:`himalaya.ridge.solve_group_ridge_random_search` (``BandedRidgeCV``),
running on any himalaya backend.

Model
-----
With feature spaces ``X_1, ..., X_m`` (column blocks of ``X``), banded ridge
solves, for every target ``j``::

    min_b ||sum_k X_k b_k - y_j||^2 + sum_k exp(-delta_kj) ||b_k||^2

i.e. ridge with a penalty ``alpha_kj = exp(-delta_kj)`` per space. As in
himalaya, the log-weights are searched as ``delta_k = log(gamma_k / alpha)``
with ``gamma`` on the simplex (random Dirichlet samples, the first one the
uniform ``1 / m``) and ``alpha`` on a grid: for each ``gamma``, scaling
``X_k`` by ``sqrt(gamma_k)`` turns the problem into plain ridge with penalty
``alpha``, whose per-target K-fold sweep over the alphas is
:func:`skvem.encoding._ridge_solver.solve_ridge_cv`. The search over the
``gamma`` (a target keeps the first ``(gamma, alpha)`` whose mean validation
score beats every earlier ``gamma`` by more than the float32 epsilon --
himalaya's rule, so that both choose the same per-space regularisation from
the same candidates) is :func:`skvem.encoding._random_search.search_gammas`,
shared with the kernel form,
:func:`skvem.encoding._multiple_kernel_solver.solve_multiple_kernel_ridge_cv`.

Why not call himalaya's solver directly: on the benchmark shape
(X 2000 x (256 + 256) -> Y 2000 x 20000, see ``benchmarks/bench_banded.py``)
the per-``gamma`` sweep of ``solve_ridge_cv`` (one factorisation per fold,
every alpha's validation predictions from the same factors, target batches)
made the whole fit 2.2x faster than himalaya's ``BandedRidgeCV`` with a third
of its peak memory, and bounds the work memory whatever the number of
targets; the search itself is himalaya's, sample for sample.
"""

from typing import NamedTuple

import numpy as np
from sklearn.model_selection import check_cv

from skvem.encoding._random_search import (  # noqa: F401 (candidate_gammas re-exported)
    DEFAULT_CONCENTRATION, candidate_gammas, search_gammas)
from skvem.encoding._ridge_solver import resolve_backend, solve_ridge_cv

__all__ = ["BandedRidgeCVResult", "candidate_gammas", "solve_banded_ridge_cv"]


class BandedRidgeCVResult(NamedTuple):
    """What :func:`solve_banded_ridge_cv` returns."""

    deltas: np.ndarray  #: (n_spaces, n_targets) float64, log(gamma / alpha)
    coef: np.ndarray  #: (n_features, n_targets) float32 (None without refit)
    intercept: np.ndarray  #: (n_targets,) float32 (None without refit)
    cv_scores: np.ndarray  #: (n_gammas, n_targets) best-alpha score per gamma
    best_gammas: np.ndarray  #: (n_spaces, n_targets) float64, on the simplex
    best_alphas: np.ndarray  #: (n_targets,) float64
    gammas: np.ndarray  #: (n_gammas, n_spaces) every weight vector tried
    solver: str  #: "primal" or "kernel"


def solve_banded_ridge_cv(Xs, Y, alphas, *, n_iter=20, concentration=DEFAULT_CONCENTRATION,
                          cv=5, fit_intercept=True, solver="auto", n_targets_batch=None,
                          n_alphas_batch=None, refit=True, random_state=None,
                          backend="numpy", progress_bar=False):
    """Banded ridge with per-space, per-target regularisation chosen by random search.

    See the module docstring for the model and the search.

    Parameters
    ----------
    Xs : list of array-like of shape (n_samples, n_features_k)
        The feature spaces (at least one), finite.
    Y : array-like of shape (n_samples, n_targets)
        Targets, finite (converted to float32 batch by batch).
    alphas : array-like of shape (n_alphas,)
        Positive overall regularisation strengths tried for every ``gamma``.
    n_iter : int or array-like of shape (n_gammas, n_spaces), default=20
        Random feature-space weights to try, or the weights themselves
        (see :func:`candidate_gammas`).
    concentration : float or sequence of float, default=(0.1, 1.0)
        Dirichlet concentrations of the random weights.
    cv : int, cross-validation generator or iterable, default=5
        Folds, as in :func:`sklearn.model_selection.check_cv` (an int is
        ``KFold(cv)`` without shuffling). The same folds serve every ``gamma``.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (centring on each training set).
    solver : {"auto", "primal", "kernel"}, default="auto"
        Factorisation of each fold (see
        :func:`~skvem.encoding._ridge_solver.solve_ridge_cv`): ``"auto"``
        is primal when n_features <= n_samples, else kernel.
    n_targets_batch, n_alphas_batch : int or None, default=None
        Batch sizes of the sweep (None: about 128 MB of work memory on CPU,
        2 GB on GPU; all alphas at once).
    refit : bool, default=True
        Return the weights refitted on all samples with each target's
        selected ``(gamma, alpha)``.
    random_state : int, RandomState instance or None, default=None
        Seed of the random feature-space weights.
    backend : str or module, default="numpy"
        A himalaya backend name (``"auto"`` included) or module.
    progress_bar : bool, default=False
        Show a tqdm bar over the candidate weights.

    Returns
    -------
    result : BandedRidgeCVResult
        ``deltas`` (n_spaces, n_targets): log per-space weights, so that the
        penalty of space ``k`` is ``exp(-deltas[k])``; ``coef``
        (n_features, n_targets) on the unscaled features; ``intercept``;
        ``cv_scores`` (n_gammas, n_targets): negative validation MSE of the
        best alpha for each ``gamma``; ``best_gammas``, ``best_alphas``;
        ``gammas`` (every weight vector tried); ``solver``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.encoding._banded_solver import solve_banded_ridge_cv
    >>> rng = np.random.default_rng(0)
    >>> X1, X2 = rng.standard_normal((80, 4)), rng.standard_normal((80, 6))
    >>> Y = X1 @ rng.standard_normal((4, 3)) + 0.5 * rng.standard_normal((80, 3))
    >>> res = solve_banded_ridge_cv([X1, X2], Y, alphas=[0.1, 10.0, 1e3],
    ...                             n_iter=5, random_state=0)
    >>> res.deltas.shape, res.coef.shape
    ((2, 3), (10, 3))
    >>> bool(np.all(res.deltas[0] > res.deltas[1]))  # X2 is noise: penalised more
    True
    """
    if isinstance(backend, str):
        backend = resolve_backend(backend)
    Xs = [np.asarray(X, dtype=np.float32) for X in Xs]
    if len(Xs) == 0:
        raise ValueError("Xs must hold at least one feature space.")
    sizes = [X.shape[1] if X.ndim == 2 else -1 for X in Xs]
    if min(sizes) < 1 or len({X.shape[0] for X in Xs}) != 1:
        raise ValueError(
            "Xs must be 2-D arrays (n_samples, n_features_k) with the same rows; got shapes "
            f"{[X.shape for X in Xs]}."
        )
    X = np.concatenate(Xs, axis=1)
    del Xs
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"Y must be 2-D with {X.shape[0]} rows; got shape {Y.shape}.")
    n_spaces, n_targets = len(sizes), Y.shape[1]
    gammas = candidate_gammas(n_iter, n_spaces, concentration=concentration,
                              random_state=random_state)
    alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    # One list of folds for every gamma (a generator would be used up by the first).
    splits = list(check_cv(cv).split(X))

    used_solver = None

    def fit(gamma):
        nonlocal used_solver
        scale = np.repeat(np.sqrt(gamma), sizes).astype(np.float32)
        res = solve_ridge_cv(X * scale, Y, alphas, cv=splits, fit_intercept=fit_intercept,
                             solver=solver, n_targets_batch=n_targets_batch,
                             n_alphas_batch=n_alphas_batch, refit=refit, backend=backend)
        used_solver = res.solver
        coef = res.coef
        if refit:
            coef *= scale[:, None]  # weights of the scaled features -> of the original ones
        return res.cv_scores, res.best_alphas, (coef, res.intercept)

    found = search_gammas(gammas, fit, n_targets, progress_bar=progress_bar,
                          desc="BandedVoxelRidgeCV feature-space weights")
    coef, intercept = found.weights
    return BandedRidgeCVResult(found.deltas, coef, intercept, found.cv_scores, found.best_gammas,
                               found.best_alphas, gammas, used_solver)
