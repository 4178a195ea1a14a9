"""``KernelRidgeCV`` with himalaya's interface, fitted by skvem's kernel solver."""

from himalaya.backend import get_backend
from himalaya.kernel_ridge import KernelRidgeCV as _HimalayaKernelRidgeCV
from himalaya.scoring import l2_neg_loss

from skvem.dropin._conventions import (check_diagonalize_method, check_solver_params,
                                       himalaya_outputs, score_function)
from skvem.encoding._kernel_solver import solve_kernel_ridge_cv

__all__ = ["KernelRidgeCV", "solve_kernel_ridge_cv_himalaya"]

_PARAMS = ("score_func", "local_alpha", "n_targets_batch", "n_targets_batch_refit",
           "n_alphas_batch", "conservative", "diagonalize_method")


def solve_kernel_ridge_cv_himalaya(K, Y, alphas=1.0, score_func=l2_neg_loss, cv=5,
                                   fit_intercept=False, local_alpha=True,
                                   n_targets_batch=None, n_targets_batch_refit=None,
                                   n_alphas_batch=None, conservative=False, Y_in_cpu=False,
                                   diagonalize_method="eigh", **unknown):
    """:func:`~skvem.encoding._kernel_solver.solve_kernel_ridge_cv` called and
    returning like :func:`himalaya.kernel_ridge.solve_kernel_ridge_cv_eigenvalues`.

    Parameters are himalaya's. ``diagonalize_method`` ``"eigh"`` and ``"svd"``
    both run skvem's float64 eigendecomposition (the kernel is symmetric,
    so both give its eigenvectors; float64 is the more stable of himalaya's
    two float32 options). Runs on the active himalaya backend.

    Returns
    -------
    best_alphas : array of shape (n_targets,)
    dual_weights : array of shape (n_samples, n_targets), in CPU memory
    cv_scores : array of shape (1, n_targets), in CPU memory
    intercept : array of shape (n_targets,), in CPU memory
        Only when ``fit_intercept``.
    """
    check_solver_params(unknown, "KernelRidgeCV", "eigenvalues", _PARAMS)
    check_diagonalize_method(diagonalize_method)
    B = get_backend()
    res = solve_kernel_ridge_cv(
        K, Y, B.to_numpy(B.asarray(alphas)), cv=cv, fit_intercept=fit_intercept,
        score_func=score_function(score_func), local_alpha=local_alpha,
        conservative=conservative, n_targets_batch=n_targets_batch,
        n_alphas_batch=n_alphas_batch, n_targets_batch_refit=n_targets_batch_refit,
        Y_in_cpu=Y_in_cpu, backend=B)
    return himalaya_outputs(K, res.best_alphas, res.dual_coef, res.cv_scores, res.intercept,
                            fit_intercept)


class KernelRidgeCV(_HimalayaKernelRidgeCV):
    """Kernel ridge regression with one alpha per target, as himalaya's ``KernelRidgeCV``.

    A drop-in for :class:`himalaya.kernel_ridge.KernelRidgeCV`: the same
    constructor, attributes and methods (it subclasses it), fitted by skvem's
    solver, which diagonalises the kernel once for all folds instead of once
    per fold (:func:`skvem.encoding._kernel_solver.solve_kernel_ridge_cv`).
    It selects alphas by himalaya's rule. Change the import line only::

        from skvem.dropin import KernelRidgeCV  # was: from himalaya.kernel_ridge import ...

    Parameters
    ----------
    alphas : array of shape (n_alphas,), default=[0.1, 1]
        Regularisation strengths to try, all > 0 (may be given positionally).
    kernel : str or callable, default="linear"
        himalaya's kernels: ``"linear"``, ``"polynomial"``/``"poly"``,
        ``"rbf"``, ``"sigmoid"``, ``"cosine"``, ``"precomputed"`` or a
        callable. The kernel must be positive semi-definite (negative
        eigenvalues are treated as rounding and set to 0).
    kernel_params : dict or None, default=None
        Parameters of the kernel function.
    solver : {"eigenvalues", "svd"}, default="eigenvalues"
        himalaya's names; both run skvem's float64 eigendecomposition.
    solver_params : dict or None, default=None
        himalaya's keys: ``score_func`` (default ``l2_neg_loss``),
        ``local_alpha``, ``conservative``, ``n_targets_batch``,
        ``n_alphas_batch``, ``n_targets_batch_refit`` (memory bounds; None
        picks batches of ~128-256 MB instead of all at once) and
        ``diagonalize_method``. Any other key is a ``TypeError``.
    fit_intercept : bool, default=False
        Fit an unpenalised intercept (else ``X`` and ``y`` should be centred).
    cv : int or cross-validation generator, default=5
        Folds for choosing alpha; an int is ``KFold``. Training and validation
        samples of a fold must not overlap.
    Y_in_cpu : bool, default=False
        Keep ``y`` (and its projection on the eigenvectors) in CPU memory.
    force_cpu : bool, default=False
        Compute on the CPU backend matching the active himalaya backend.
    warn : bool, default=True
        Warn when a linear kernel has more samples than features.

    Attributes
    ----------
    best_alphas_ : array of shape (n_targets,)
        Selected alpha of each target (on the backend's device).
    dual_coef_ : array of shape (n_samples, n_targets)
        Dual coefficients (CPU memory).
    cv_scores_ : array of shape (n_targets,)
        Mean validation score of the selected alpha.
    intercept_ : array of shape (n_targets,)
        Only when ``fit_intercept``.
    X_fit_ : array of shape (n_samples, n_features)
        Training data (None with a precomputed kernel).
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    skvem.dropin.RidgeCV : the primal form, for n_samples > n_features.
    skvem.encoding.ridge.VoxelRidgeCV : skvem's estimator (scikit-learn's
        scalar ``score``, backend chosen for you).

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.dropin import KernelRidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 200)).astype("float32")
    >>> Y = (X[:, :5] @ rng.standard_normal((5, 3))).astype("float32")
    >>> model = KernelRidgeCV(np.logspace(-2, 4, 7), cv=5).fit(X, Y)
    >>> model.score(X, Y).shape, model.get_primal_coef().shape
    ((3,), (200, 3))
    """

    ALL_SOLVERS = dict(eigenvalues=solve_kernel_ridge_cv_himalaya,
                       svd=solve_kernel_ridge_cv_himalaya)
