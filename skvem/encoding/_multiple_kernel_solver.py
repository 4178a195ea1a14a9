"""Multiple-kernel ridge regression by random search, on skvem's kernel solver.

The solver under :class:`skvem.dropin.MultipleKernelRidgeCV` (himalaya's
``MultipleKernelRidgeCV(solver="random_search")``): for kernels ``K_1 ..
K_m`` (one per feature space, e.g. from ``ColumnKernelizer``), every target
gets its own kernel weights ``gamma`` (on the simplex) and ``alpha``, i.e.
the model ``sum_k exp(delta_k) K_k`` with ``delta_k = log(gamma_k / alpha)``.
The candidate weights are himalaya's Dirichlet samples
(:func:`skvem.encoding._random_search.candidate_gammas`, the first one
uniform); for each, the combined kernel goes through
:func:`skvem.encoding._kernel_solver.solve_kernel_ridge_cv` (one
eigendecomposition for all folds and alphas, where himalaya decomposes every
fold), and a target keeps the first candidate whose score beats all earlier
ones by more than the float32 epsilon, himalaya's rule: the search of
:func:`skvem.encoding._random_search.search_gammas`, shared with the feature
form :func:`skvem.encoding._banded_solver.solve_banded_ridge_cv`.
"""

from typing import NamedTuple, Optional

import numpy as np
from himalaya.validation import _get_string_dtype
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state

from skvem.encoding._backends import resolve_backend
from skvem.encoding._kernel_solver import solve_kernel_ridge_cv
from skvem.encoding._random_search import DEFAULT_CONCENTRATION, candidate_gammas, search_gammas

__all__ = ["MultipleKernelRidgeCVResult", "solve_multiple_kernel_ridge_cv"]


class MultipleKernelRidgeCVResult(NamedTuple):
    """Output of :func:`solve_multiple_kernel_ridge_cv` (numpy arrays)."""

    deltas: np.ndarray  #: (n_kernels, n_targets) log(gamma / alpha)
    dual_coef: np.ndarray  #: (n_samples, n_targets) float32, of the kernel sum_k gamma_k K_k
    intercept: Optional[np.ndarray]  #: (n_targets,) float32, None without intercept
    cv_scores: np.ndarray  #: (n_gammas, n_targets) score of the best alpha per candidate
    best_alphas: np.ndarray  #: (n_targets,) float32


def solve_multiple_kernel_ridge_cv(Ks, Y, alphas, *, n_iter=100,
                                   concentration=DEFAULT_CONCENTRATION, jitter_alphas=False,
                                   random_state=None, cv=5, fit_intercept=False, score_func=None,
                                   local_alpha=True, conservative=False, n_targets_batch=None,
                                   n_alphas_batch=None, n_targets_batch_refit=None,
                                   Ks_in_cpu=False, Y_in_cpu=False, backend="numpy",
                                   progress_bar=False):
    """Kernel weights and alpha per target by random search (see the module docstring).

    Parameters
    ----------
    Ks : array of shape (n_kernels, n_samples, n_samples)
        Positive semi-definite kernels (numpy or arrays of ``backend``).
    Y : array of shape (n_samples, n_targets)
        Targets.
    alphas : array-like of shape (n_alphas,)
        Overall regularisation strengths tried for every candidate, > 0.
    n_iter : int or array-like of shape (n_gammas, n_kernels), default=100
        Number of random kernel weights, or the weights themselves.
    concentration : float or sequence of float, default=(0.1, 1.0)
        Dirichlet concentrations of the random weights.
    jitter_alphas : bool, default=False
        Multiply the alphas of every candidate by ``10 ** (u - 0.5)``, ``u``
        uniform (himalaya's jitter, from a generator seeded by
        ``random_state``).
    random_state : int, RandomState instance or None, default=None
        Seed of the weights (and of the jitter).
    cv, fit_intercept, score_func, local_alpha, conservative : see
        :func:`~skvem.encoding._kernel_solver.solve_kernel_ridge_cv`.
    n_targets_batch, n_alphas_batch, n_targets_batch_refit, Y_in_cpu : idem.
    Ks_in_cpu : bool, default=False
        Keep the kernels in CPU memory; only their weighted sum goes to the device.
    backend : str or module, default="numpy"
        A himalaya backend name or module.
    progress_bar : bool, default=False
        Show a tqdm bar over the candidate weights.

    Returns
    -------
    result : MultipleKernelRidgeCVResult
        ``(deltas, dual_coef, intercept, cv_scores, best_alphas)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.encoding._multiple_kernel_solver import solve_multiple_kernel_ridge_cv
    >>> rng = np.random.default_rng(0)
    >>> X1, X2 = rng.standard_normal((60, 80)), rng.standard_normal((60, 80))
    >>> Y = X1 @ rng.standard_normal((80, 3))
    >>> res = solve_multiple_kernel_ridge_cv(np.stack([X1 @ X1.T, X2 @ X2.T]), Y,
    ...                                      [1.0, 100.0], n_iter=5, random_state=0)
    >>> res.deltas.shape, bool(np.all(res.deltas[0] > res.deltas[1]))
    ((2, 3), True)
    """
    B = resolve_backend(backend) if isinstance(backend, str) else backend
    Ks = B.asarray(Ks, device="cpu") if Ks_in_cpu else B.asarray(Ks)
    if Ks.ndim != 3 or Ks.shape[1] != Ks.shape[2]:
        raise ValueError(f"Ks must be (n_kernels, n_samples, n_samples); got {tuple(Ks.shape)}.")
    n_kernels, n_targets = Ks.shape[0], Y.shape[1]
    gammas = candidate_gammas(n_iter, n_kernels, concentration=concentration,
                              random_state=random_state)
    given_alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    jitter = check_random_state(random_state)  # as himalaya: after the weights' own
    splits = list(check_cv(cv).split(np.empty((Ks.shape[1], 1))))  # the same folds for all

    def fit(gamma):
        a = given_alphas * 10 ** (jitter.rand() - 0.5) if jitter_alphas else given_alphas
        weights = B.asarray(gamma, dtype=_get_string_dtype(Ks),
                            device="cpu" if Ks_in_cpu else None)
        K = (weights[:, None, None] * Ks).sum(0)
        res = solve_kernel_ridge_cv(
            B.asarray(K), Y, a, cv=splits, fit_intercept=fit_intercept,
            score_func=score_func, local_alpha=local_alpha, conservative=conservative,
            n_targets_batch=n_targets_batch, n_alphas_batch=n_alphas_batch,
            n_targets_batch_refit=n_targets_batch_refit, Y_in_cpu=Y_in_cpu, backend=B)
        return res.cv_scores, res.best_alphas, (res.dual_coef, res.intercept)

    found = search_gammas(gammas, fit, n_targets, local_alpha=local_alpha,
                          progress_bar=progress_bar, desc="MultipleKernelRidgeCV kernel weights")
    dual, intercept = found.weights
    return MultipleKernelRidgeCVResult(found.deltas, dual, intercept, found.cv_scores,
                                       found.best_alphas)
