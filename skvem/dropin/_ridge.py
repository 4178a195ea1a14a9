"""``RidgeCV`` with himalaya's interface, fitted by skvem's ridge solver."""

from himalaya.backend import get_backend
from himalaya.ridge import RidgeCV as _HimalayaRidgeCV
from himalaya.scoring import l2_neg_loss

from skvem.dropin._conventions import check_solver_params, himalaya_outputs, score_function
from skvem.encoding._kernel_solver import solve_kernel_ridge_cv
from skvem.encoding._ridge_solver import solve_ridge_cv

__all__ = ["RidgeCV", "solve_ridge_cv_himalaya"]

_PARAMS = ("score_func", "local_alpha", "n_targets_batch", "n_targets_batch_refit",
           "n_alphas_batch", "conservative", "warn")


def solve_ridge_cv_himalaya(X, Y, alphas=1.0, fit_intercept=False, score_func=l2_neg_loss,
                            cv=5, local_alpha=True, n_targets_batch=None,
                            n_targets_batch_refit=None, n_alphas_batch=None,
                            conservative=False, Y_in_cpu=False, warn=True, **unknown):
    """skvem's solvers called and returning like :func:`himalaya.ridge.solve_ridge_cv_svd`.

    Parameters are himalaya's. With the default selection (``score_func=
    l2_neg_loss``, ``local_alpha=True``, ``conservative=False``) this is
    :func:`skvem.encoding._ridge_solver.solve_ridge_cv`, which picks the
    primal or kernel form from the data's shape (so himalaya's ``warn``
    about n_samples < n_features has nothing to warn about); targets are refit
    in the batches of the sweep, of ``min(n_targets_batch,
    n_targets_batch_refit)`` targets. Any other selection runs the kernel
    solver on the linear kernel ``X X^T`` (n_samples x n_samples).

    Returns
    -------
    best_alphas : array of shape (n_targets,)
    coefs : array of shape (n_features, n_targets), in CPU memory
    cv_scores : array of shape (1, n_targets), in CPU memory
    intercept : array of shape (n_targets,), in CPU memory
        Only when ``fit_intercept``.
    """
    check_solver_params(unknown, "RidgeCV", "svd", _PARAMS)
    B = get_backend()
    alphas = B.to_numpy(B.asarray(alphas))
    score_func = score_function(score_func)
    if score_func is None and local_alpha and not conservative:
        batch = [b for b in (n_targets_batch, n_targets_batch_refit) if b is not None]
        # Y is read one batch at a time from CPU memory whatever Y_in_cpu says.
        res = solve_ridge_cv(B.to_numpy(X), B.to_numpy(Y), alphas, cv=cv,
                             fit_intercept=fit_intercept, n_targets_batch=min(batch, default=None),
                             n_alphas_batch=n_alphas_batch, backend=B)
        return himalaya_outputs(X, res.best_alphas, res.coef, res.cv_scores, res.intercept,
                                fit_intercept)
    X64 = B.asarray(X, dtype="float64")
    res = solve_kernel_ridge_cv(
        X64 @ X64.T, Y, alphas, cv=cv, fit_intercept=fit_intercept, score_func=score_func,
        local_alpha=local_alpha, conservative=conservative, n_targets_batch=n_targets_batch,
        n_alphas_batch=n_alphas_batch, n_targets_batch_refit=n_targets_batch_refit,
        Y_in_cpu=Y_in_cpu, backend=B)
    coef = B.to_numpy(B.to_cpu(X64)).T @ res.dual_coef
    return himalaya_outputs(X, res.best_alphas, coef, res.cv_scores, res.intercept,
                            fit_intercept)


class RidgeCV(_HimalayaRidgeCV):
    """Ridge regression with one alpha per target, as himalaya's ``RidgeCV``.

    A drop-in for :class:`himalaya.ridge.RidgeCV`: the same constructor,
    attributes and methods (it subclasses it), fitted by skvem's solver
    (:func:`skvem.encoding._ridge_solver.solve_ridge_cv`: one decomposition
    per fold, all alphas in one product), which selects alphas by himalaya's
    rule. Change the import line only::

        from skvem.dropin import RidgeCV  # was: from himalaya.ridge import RidgeCV

    Parameters
    ----------
    alphas : array of shape (n_alphas,), default=[0.1, 1]
        Regularisation strengths to try, all > 0 (may be given positionally).
    fit_intercept : bool, default=False
        Fit an unpenalised intercept (else ``X`` and ``y`` should be centred).
    solver : {"svd"}, default="svd"
        himalaya's name; the decomposition is skvem's.
    solver_params : dict or None, default=None
        himalaya's keys: ``score_func`` (default ``l2_neg_loss``),
        ``local_alpha``, ``conservative``, ``n_targets_batch``,
        ``n_alphas_batch``, ``n_targets_batch_refit``, ``warn``. A
        non-default ``score_func``, ``local_alpha`` or ``conservative`` is
        computed through the linear kernel (n_samples x n_samples). Any other
        key is a ``TypeError``.
    cv : int or cross-validation generator, default=5
        Folds for choosing alpha; an int is ``KFold``.
    Y_in_cpu : bool, default=False
        Keep ``y`` in CPU memory (skvem's primal solver always does, moving
        one batch of targets at a time to the device).
    force_cpu : bool, default=False
        Compute on the CPU backend matching the active himalaya backend.

    Attributes
    ----------
    best_alphas_ : array of shape (n_targets,)
        Selected alpha of each target (on the backend's device).
    coef_ : array of shape (n_features, n_targets)
        Ridge coefficients (CPU memory).
    cv_scores_ : array of shape (n_targets,)
        Mean validation score of the selected alpha.
    intercept_ : array of shape (n_targets,)
        Only when ``fit_intercept``.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    skvem.dropin.KernelRidgeCV : the kernel form, for n_features > n_samples.
    skvem.encoding.ridge.VoxelRidgeCV : skvem's estimator (scikit-learn's
        scalar ``score``, backend chosen for you).

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.dropin import RidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 10)).astype("float32")
    >>> Y = (X @ rng.standard_normal((10, 4))).astype("float32")
    >>> model = RidgeCV(np.logspace(-2, 4, 7)).fit(X, Y)
    >>> model.score(X, Y).shape, model.coef_.shape
    ((4,), (10, 4))
    """

    ALL_SOLVERS = dict(svd=solve_ridge_cv_himalaya)
