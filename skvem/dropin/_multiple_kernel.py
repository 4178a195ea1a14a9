"""``MultipleKernelRidgeCV`` with himalaya's interface, fitted by skvem's random search."""

from himalaya.backend import get_backend
from himalaya.kernel_ridge import MultipleKernelRidgeCV as _HimalayaMultipleKernelRidgeCV
from himalaya.scoring import l2_neg_loss
from himalaya.validation import _get_string_dtype

from skvem.dropin._conventions import (check_diagonalize_method, check_solver_params,
                                       score_function)
from skvem.encoding._multiple_kernel_solver import solve_multiple_kernel_ridge_cv

__all__ = ["MultipleKernelRidgeCV", "solve_multiple_kernel_ridge_random_search_himalaya"]

_PARAMS = ("n_iter", "concentration", "alphas", "score_func", "jitter_alphas", "local_alpha",
           "n_targets_batch", "n_targets_batch_refit", "n_alphas_batch", "progress_bar",
           "Ks_in_cpu", "conservative", "diagonalize_method", "return_alphas")


def solve_multiple_kernel_ridge_random_search_himalaya(
        Ks, Y, n_iter=100, concentration=[0.1, 1.0], alphas=1.0, score_func=l2_neg_loss,
        cv=5, fit_intercept=False, return_weights=None, Xs=None, local_alpha=True,
        jitter_alphas=False, random_state=None, n_targets_batch=None,
        n_targets_batch_refit=None, n_alphas_batch=None, progress_bar=True, Ks_in_cpu=False,
        conservative=False, Y_in_cpu=False, diagonalize_method="eigh", return_alphas=False,
        **unknown):
    """:func:`~skvem.encoding._multiple_kernel_solver.solve_multiple_kernel_ridge_cv` called
    and returning like :func:`himalaya.kernel_ridge.solve_multiple_kernel_ridge_random_search`
    with ``return_weights="dual"`` (what ``MultipleKernelRidgeCV`` asks for).

    Returns ``deltas`` (n_kernels, n_targets), the dual weights (n_samples,
    n_targets, scaled by alpha as himalaya stores them, in CPU memory), the
    cross-validation scores (n_iter, n_targets, CPU), then ``best_alphas`` if
    ``return_alphas`` and the intercept if ``fit_intercept``.
    """
    check_solver_params(unknown, "MultipleKernelRidgeCV", "random_search", _PARAMS)
    if return_weights != "dual" or Xs is not None:
        raise ValueError("skvem.dropin's random search returns dual weights only "
                         f"(return_weights='dual', Xs=None); got return_weights={return_weights!r}.")
    check_diagonalize_method(diagonalize_method)
    B = get_backend()
    res = solve_multiple_kernel_ridge_cv(
        Ks, Y, B.to_numpy(B.asarray(alphas)).reshape(-1), n_iter=B.to_numpy(n_iter) if hasattr(
            n_iter, "shape") else n_iter,
        concentration=concentration, jitter_alphas=jitter_alphas, random_state=random_state,
        cv=cv, fit_intercept=fit_intercept, score_func=score_function(score_func),
        local_alpha=local_alpha, conservative=conservative, n_targets_batch=n_targets_batch,
        n_alphas_batch=n_alphas_batch, n_targets_batch_refit=n_targets_batch_refit,
        Ks_in_cpu=Ks_in_cpu, Y_in_cpu=Y_in_cpu, backend=B, progress_bar=progress_bar)
    dtype = _get_string_dtype(Ks)
    cpu = lambda a: B.asarray(a, dtype=dtype, device="cpu")  # noqa: E731
    out = [B.asarray(res.deltas, dtype=dtype), cpu(res.dual_coef * res.best_alphas[None, :]),
           cpu(res.cv_scores)]
    if return_alphas:
        out.append(B.asarray(res.best_alphas, dtype=dtype))
    if fit_intercept:
        out.append(cpu(res.intercept))
    return tuple(out)


def _no_hyper_gradient(**_):
    raise ValueError("solver='hyper_gradient' is not provided by skvem.dropin."
                     "MultipleKernelRidgeCV; use solver='random_search', or himalaya's "
                     "MultipleKernelRidgeCV for the gradient-based search.")


class MultipleKernelRidgeCV(_HimalayaMultipleKernelRidgeCV):
    """Multiple-kernel (banded) ridge, as himalaya's ``MultipleKernelRidgeCV``.

    A drop-in for :class:`himalaya.kernel_ridge.MultipleKernelRidgeCV` with
    ``solver="random_search"`` (the tutorials' banded-ridge model): same
    constructor, attributes and methods (``predict(X, split=True)``,
    ``score(X, y, split=True)``, ``deltas_``, ``dual_coef_``, ``cv_scores_``,
    ``best_alphas_``), the same candidate kernel weights (himalaya's Dirichlet
    samples for the same ``random_state``), each fitted by skvem's kernel
    solver (:func:`skvem.encoding._multiple_kernel_solver.solve_multiple_kernel_ridge_cv`).

    Parameters
    ----------
    kernels : list of str or callable, or "precomputed", default=["linear", "polynomial"]
        One kernel per feature space; ``"precomputed"`` takes the stack of
        kernels that ``ColumnKernelizer`` returns.
    kernels_params : list of dict or None, default=None
        Parameters of each kernel.
    solver : {"random_search"}, default="random_search"
        himalaya's ``"hyper_gradient"`` is a ``ValueError``.
    solver_params : dict or None, default=None
        himalaya's keys of the random search: ``n_iter``, ``concentration``,
        ``alphas``, ``score_func``, ``jitter_alphas``, ``local_alpha``,
        ``conservative``, ``n_targets_batch``, ``n_alphas_batch``,
        ``n_targets_batch_refit``, ``progress_bar``, ``Ks_in_cpu``,
        ``diagonalize_method``, ``return_alphas``; any other is a ``TypeError``.
    fit_intercept : bool, default=False
        Fit an unpenalised intercept.
    cv : int or cross-validation generator, default=5
        Folds; an int is ``KFold``.
    random_state : int or None, default=None
        Seed of the candidate kernel weights.
    Y_in_cpu : bool, default=False
        Keep ``y`` in CPU memory.
    force_cpu : bool, default=False
        Compute on the CPU backend matching the active himalaya backend.

    Attributes
    ----------
    deltas_ : array of shape (n_kernels, n_targets)
        Log kernel weights ``log(gamma / alpha)``.
    dual_coef_ : array of shape (n_samples, n_targets)
        Dual weights (CPU memory).
    cv_scores_ : array of shape (n_iter, n_targets)
        Best-alpha validation score of every candidate.
    best_alphas_ : array of shape (n_targets,)
        Selected alpha of each target.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.dropin import ColumnKernelizer, Kernelizer, MultipleKernelRidgeCV
    >>> from sklearn.pipeline import make_pipeline
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 40)).astype("float32")
    >>> Y = (X[:, :20] @ rng.standard_normal((20, 3))).astype("float32")
    >>> model = make_pipeline(
    ...     ColumnKernelizer([("a", Kernelizer(), slice(0, 20)), ("b", Kernelizer(), slice(20, 40))]),
    ...     MultipleKernelRidgeCV(kernels="precomputed", random_state=0, solver_params=dict(
    ...         n_iter=5, alphas=np.logspace(-2, 4, 7), progress_bar=False)))
    >>> model.fit(X, Y).predict(X, split=True).shape
    (2, 60, 3)
    """

    ALL_SOLVERS = dict(random_search=solve_multiple_kernel_ridge_random_search_himalaya,
                       hyper_gradient=_no_hyper_gradient)
