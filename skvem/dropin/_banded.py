"""``BandedRidgeCV`` with himalaya's interface, fitted by skvem's banded solver."""

from himalaya.backend import get_backend
from himalaya.ridge import BandedRidgeCV as _HimalayaBandedRidgeCV
from himalaya.scoring import l2_neg_loss
from himalaya.validation import _get_string_dtype

from skvem.dropin._conventions import check_solver_params, score_function
from skvem.encoding._banded_solver import solve_banded_ridge_cv

__all__ = ["BandedRidgeCV", "GroupRidgeCV", "solve_group_ridge_random_search_himalaya"]

_PARAMS = ("n_iter", "concentration", "alphas", "score_func", "jitter_alphas", "local_alpha",
           "n_targets_batch", "n_targets_batch_refit", "n_alphas_batch", "progress_bar",
           "conservative", "diagonalize_method", "warn")


def _check_defaults(**options):
    """ValueError naming a himalaya option whose non-default value skvem does not implement.

    Each keyword is ``name=(value, default)``.
    """
    for name, (value, default) in options.items():
        if value != default:
            raise ValueError(
                f"skvem.dropin.BandedRidgeCV supports only {name}={default!r} (himalaya's "
                f"default); got {name}={value!r}: use himalaya.ridge.BandedRidgeCV for it.")


def solve_group_ridge_random_search_himalaya(
        Xs, Y, n_iter=100, concentration=[0.1, 1.0], alphas=1.0, fit_intercept=False,
        score_func=l2_neg_loss, cv=5, return_weights=False, local_alpha=True,
        jitter_alphas=False, random_state=None, n_targets_batch=None,
        n_targets_batch_refit=None, n_alphas_batch=None, progress_bar=True,
        conservative=False, Y_in_cpu=False, diagonalize_method="svd", warn=True, **unknown):
    """:func:`~skvem.encoding._banded_solver.solve_banded_ridge_cv` called and returning
    like :func:`himalaya.ridge.solve_group_ridge_random_search` with
    ``return_weights=True`` (what ``BandedRidgeCV`` asks for).

    Parameters are himalaya's. The candidate weights are himalaya's Dirichlet
    samples for the same ``random_state`` and the selection is its rule, so
    both pick the same ``deltas``. skvem chooses the primal or kernel form
    from the data's shape (so ``warn`` has nothing to warn about), reads ``Y``
    one target batch at a time from CPU memory whatever ``Y_in_cpu`` says,
    and refits in the sweep's batches of ``min(n_targets_batch,
    n_targets_batch_refit)`` targets. ``score_func`` other than
    ``l2_neg_loss``, ``local_alpha=False``, ``conservative=True``,
    ``jitter_alphas=True`` and ``diagonalize_method`` other than ``"svd"``
    are ``ValueError``s naming the option.

    Returns
    -------
    deltas : array of shape (n_spaces, n_targets)
    refit_weights : array of shape (n_features, n_targets), in CPU memory
    cv_scores : array of shape (n_iter, n_targets), in CPU memory
    intercept : array of shape (n_targets,), in CPU memory
        Only when ``fit_intercept``.
    """
    check_solver_params(unknown, "BandedRidgeCV", "random_search", _PARAMS)
    _check_defaults(score_func=(score_function(score_func), None),
                    local_alpha=(bool(local_alpha), True),
                    conservative=(bool(conservative), False),
                    jitter_alphas=(bool(jitter_alphas), False),
                    diagonalize_method=(diagonalize_method, "svd"),
                    return_weights=(bool(return_weights), True))
    B = get_backend()
    batch = [b for b in (n_targets_batch, n_targets_batch_refit) if b is not None]
    res = solve_banded_ridge_cv(
        [B.to_numpy(X) for X in Xs], B.to_numpy(Y), B.to_numpy(B.asarray(alphas)).reshape(-1),
        n_iter=B.to_numpy(n_iter) if hasattr(n_iter, "shape") else n_iter,
        concentration=concentration, cv=cv, fit_intercept=fit_intercept,
        n_targets_batch=min(batch, default=None), n_alphas_batch=n_alphas_batch,
        random_state=random_state, backend=B, progress_bar=progress_bar)
    dtype = _get_string_dtype(Xs[0])
    cpu = lambda a: B.asarray(a, dtype=dtype, device="cpu")  # noqa: E731
    out = [B.asarray(res.deltas, dtype=dtype), cpu(res.coef), cpu(res.cv_scores)]
    if fit_intercept:
        out.append(cpu(res.intercept))
    return tuple(out)


class BandedRidgeCV(_HimalayaBandedRidgeCV):
    """Banded ridge on feature spaces, as himalaya's ``BandedRidgeCV`` (``GroupRidgeCV``).

    A drop-in for :class:`himalaya.ridge.BandedRidgeCV` with
    ``solver="random_search"``: the same constructor, attributes and methods
    (it subclasses it: ``groups``, ``predict(X, split=True)``,
    ``score(X, y, split=True)``), the same candidate feature-space weights
    (himalaya's Dirichlet samples for the same ``random_state``) and
    selection rule, each candidate fitted by skvem's ridge sweep
    (:func:`skvem.encoding._banded_solver.solve_banded_ridge_cv`, the solver of
    :class:`skvem.encoding.banded.BandedVoxelRidgeCV`). Change the import line
    only::

        from skvem.dropin import BandedRidgeCV  # was: from himalaya.ridge import BandedRidgeCV

    Parameters
    ----------
    groups : "input", array of shape (n_features,) or None, default=None
        ``"input"``: ``X`` is a list of feature spaces (e.g. the output of
        ``ColumnTransformerNoStack``); an array: the group id of each column
        of ``X`` (negative ids are dropped); None: one group.
    solver : {"random_search"}, default="random_search"
        himalaya's only solver name.
    solver_params : dict or None, default=None
        himalaya's keys of the random search: ``n_iter``, ``concentration``,
        ``alphas``, ``n_targets_batch``, ``n_targets_batch_refit``,
        ``n_alphas_batch``, ``progress_bar``, ``warn`` and, at their default
        values only (else a ``ValueError`` naming them), ``score_func``,
        ``local_alpha``, ``conservative``, ``jitter_alphas``,
        ``diagonalize_method``. Any other key is a ``TypeError``.
    fit_intercept : bool, default=False
        Fit an unpenalised intercept.
    cv : int or cross-validation generator, default=5
        Folds; an int is ``KFold``.
    random_state : int or None, default=None
        Seed of the candidate feature-space weights.
    Y_in_cpu : bool, default=False
        Keep ``y`` in CPU memory (skvem always does, moving one batch of
        targets at a time to the device).
    force_cpu : bool, default=False
        Compute on the CPU backend matching the active himalaya backend.

    Attributes
    ----------
    deltas_ : array of shape (n_groups, n_targets)
        Log feature-space weights ``log(gamma / alpha)``.
    coef_ : array of shape (n_features, n_targets)
        Ridge coefficients on the unscaled features (CPU memory).
    cv_scores_ : array of shape (n_iter, n_targets)
        Best-alpha validation score of every candidate.
    best_alphas_ : array of shape (n_targets,)
        ``1 / sum(exp(deltas_))``, as himalaya computes it.
    intercept_ : array of shape (n_targets,)
        Only when ``fit_intercept``.

    See Also
    --------
    skvem.dropin.MultipleKernelRidgeCV : the kernel form, for n_features > n_samples.
    skvem.encoding.banded.BandedVoxelRidgeCV : skvem's estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.dropin import BandedRidgeCV
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((60, 5)).astype("float32") for _ in range(2)]
    >>> Y = (Xs[0] @ rng.standard_normal((5, 3))).astype("float32")
    >>> model = BandedRidgeCV(groups="input", random_state=0, solver_params=dict(
    ...     n_iter=5, alphas=np.logspace(-2, 4, 7), progress_bar=False)).fit(Xs, Y)
    >>> model.deltas_.shape, model.predict(Xs, split=True).shape
    ((2, 3), (2, 60, 3))
    """

    ALL_SOLVERS = dict(random_search=solve_group_ridge_random_search_himalaya)


#: himalaya's other name of the same estimator.
GroupRidgeCV = BandedRidgeCV
