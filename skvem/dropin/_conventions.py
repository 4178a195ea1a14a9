"""himalaya's conventions, shared by the drop-in estimators.

The drop-in classes subclass himalaya's estimators and replace only their
solvers (``ALL_SOLVERS``, the table himalaya's ``fit`` dispatches through),
so validation, ``predict``, ``score`` and ``get_primal_coef`` are himalaya's
own code. The functions here translate a himalaya solver call
(``solver(X or K, Y, cv=..., alphas=..., fit_intercept=..., Y_in_cpu=...,
**solver_params)``) into skvem's solver and its outputs back into himalaya's:
``best_alphas`` on the backend's device, weights and cross-validation scores
in CPU memory, as arrays of the active himalaya backend.
"""

from himalaya.backend import get_backend
from himalaya.scoring import l2_neg_loss
from himalaya.validation import _get_string_dtype

__all__ = ["check_diagonalize_method", "check_solver_params", "himalaya_outputs",
           "score_function"]


def check_solver_params(unknown, estimator, solver, accepted):
    """TypeError naming the ``solver_params`` keys that the solver does not take."""
    if unknown:
        raise TypeError(
            f"solver_params {sorted(unknown)} are not parameters of {estimator}(solver="
            f"{solver!r}); it takes {', '.join(accepted)} (as himalaya's).")


def check_diagonalize_method(diagonalize_method):
    """ValueError unless himalaya's ``diagonalize_method`` is one of its names.

    Both names run skvem's float64 eigendecomposition (a kernel is symmetric,
    so its eigenvectors are also its singular vectors); the check keeps
    himalaya's refusal of other values.
    """
    if diagonalize_method not in ("eigh", "svd"):
        raise ValueError(f"Unknown diagonalize_method={diagonalize_method!r}; "
                         "use 'eigh' or 'svd'.")


def score_function(score_func):
    """None for himalaya's default score (skvem computes it from the residuals)."""
    if score_func is l2_neg_loss or score_func is None:
        return None
    if not callable(score_func):
        raise TypeError(f"solver_params['score_func'] must be callable; got {score_func!r}.")
    return score_func


def himalaya_outputs(like, best_alphas, weights, cv_scores, intercept, fit_intercept):
    """Solver outputs as himalaya returns them: arrays of the active backend in
    the dtype of the input array ``like``; all but ``best_alphas`` in CPU memory."""
    B = get_backend()
    dtype = _get_string_dtype(like)
    out = [B.asarray(best_alphas, dtype=dtype),
           B.asarray(weights, dtype=dtype, device="cpu"),
           B.asarray(cv_scores, dtype=dtype, device="cpu")[None]]
    if fit_intercept:
        out.append(B.asarray(intercept, dtype=dtype, device="cpu"))
    return tuple(out)
