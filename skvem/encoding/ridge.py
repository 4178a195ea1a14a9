"""Voxelwise ridge regression with one regularisation strength per voxel.

:class:`VoxelRidgeCV` maps image features to every voxel at once, choosing
each voxel's ``alpha`` by K-fold cross-validation, on a himalaya backend
(GPU when available). It is a scikit-learn estimator: it works in
``Pipeline``, ``cross_val_score`` and ``GridSearchCV``, and follows
himalaya's ``RidgeCV`` (same alpha selection, same ``coef_`` layout) so that
voxelwise-modelling scripts can swap one for the other.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skvem.encoding._backends import check_backend_name, resolve_backend
from skvem.encoding._devices import solve_ridge_cv_on_devices
from skvem.encoding._inputs import check_alphas
from skvem._utils.validation import check_bool, check_fmri, check_int, check_unmasked
from skvem.encoding._voxel_scores import VoxelScoreMixin

__all__ = ["VoxelRidgeCV"]

#: Default alphas, ``np.logspace(-2, 6, 9)`` written as a tuple: scikit-learn
#: requires immutable constructor defaults.
DEFAULT_ALPHAS = (1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6)

_SOLVERS = ("auto", "primal", "kernel")


def _validated_X(est, X, *, reset):
    # Some of sklearn's messages ("could not convert string to float",
    # "float() argument must be ...") do not say which argument was wrong.
    if isinstance(X, (str, bytes)):
        raise ValueError(
            f"X must be an array (n_samples, n_features); got the {type(X).__name__} {X!r:.40}."
        )
    try:
        return validate_data(est, check_unmasked(X, name="X"), reset=reset, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        if "X" in str(exc) or type(exc) not in (TypeError, ValueError):
            raise
        raise type(exc)(f"X must be a numeric array (n_samples, n_features): {exc}") from exc


class VoxelRidgeCV(VoxelScoreMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression with one alpha per voxel, chosen by cross-validation.

    For each voxel (column of ``y``) independently, solves::

        min_b ||X b + intercept - y||^2 + alpha ||b||^2

    where ``alpha`` is the candidate with the best mean validation score over
    the folds of ``cv``, then refits on all samples. All voxels share the
    decompositions of ``X``, so tens of thousands of voxels cost little more
    than one matrix product per fold. Computation is float32, on a himalaya
    backend (a CUDA GPU when available).

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=np.logspace(-2, 6, 9)
        Candidate regularisation strengths, all > 0. Stored as given
        (the default is the tuple ``(1e-2, 1e-1, ..., 1e6)``).
    cv : int, cross-validation generator or iterable, default=5
        Folds for choosing alpha, as in scikit-learn: an int is
        ``KFold(cv)`` without shuffling (neighbouring fMRI trials stay
        together); an iterable of ``(train, test)`` index arrays, e.g.
        ``list(GroupKFold(5).split(X, y, groups=sessions))``, is used as is
        (boolean masks of length n_samples are taken as index arrays). A
        one-shot generator such as ``KFold(3).split(X)`` serves one fit
        only; pass the splitter itself to fit several times.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept by centring features and responses on
        the training samples of each fold. (himalaya's ``RidgeCV`` defaults
        to False.)
    backend : {"auto", "numpy", "torch", "torch_cuda", "cupy"}, default="auto"
        himalaya backend for fitting. ``"auto"`` uses ``"torch_cuda"`` when
        PyTorch sees a CUDA device; on a CPU it uses whichever of
        ``"numpy"`` and ``"torch"`` a short measurement on first use found
        faster on this machine (kept for the process; small problems use
        ``"numpy"`` without measuring). Fix it with the environment variable
        ``SKVEM_RIDGE_CPU_BACKEND=numpy`` or ``torch``; see
        ``skvem.encoding._backends``. The global himalaya backend is not
        changed.
    solver : {"auto", "primal", "kernel"}, default="auto"
        How ``X`` is diagonalised in each fold: ``"primal"`` (through the
        n_features x n_features Gram matrix) or ``"kernel"`` (through the
        n_samples x n_samples linear kernel, cheaper when there are more
        features than samples). ``"auto"`` picks
        ``"primal"`` when n_features <= n_samples, else ``"kernel"``.
        Both give the same model.
    n_targets_batch : int or None, default=None
        Voxels processed at once. None bounds the work memory to about
        128 MB on CPU (2 GB on GPU), whatever the number of voxels.
    n_alphas_batch : int or None, default=None
        Alphas whose validation predictions are held in memory at once;
        None: all of them.
    verbose : bool, default=False
        Show a tqdm progress bar over voxel batches.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_voxels) or (n_features,)
        Ridge weights, float32. As in himalaya, features come first (the
        transpose of scikit-learn's ``Ridge.coef_``); 1-D when ``y`` was 1-D.
    intercept_ : ndarray of shape (n_voxels,) or float
        Intercepts (zeros when ``fit_intercept=False``).
    best_alphas_ : ndarray of shape (n_voxels,)
        Selected alpha of each voxel, one of ``alphas``.
    cv_scores_ : ndarray of shape (n_voxels,)
        Cross-validation score of the selected alpha: the negative mean
        squared error on the validation samples, averaged over folds --
        himalaya's selection criterion (``l2_neg_loss``), so that both
        select the same alphas.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in,)
        Feature names, if ``X`` was a DataFrame with string column names.
    backend_ : str
        himalaya backend used for fitting (``"auto"`` resolved).
    solver_ : str
        ``"primal"`` or ``"kernel"``, the decomposition used.

    See Also
    --------
    himalaya.ridge.RidgeCV : The reference implementation; the same alphas
        are selected. ``VoxelRidgeCV`` differs by ``fit_intercept=True``,
        numpy outputs, and ``score``.
    sklearn.linear_model.RidgeCV : With ``alpha_per_target=True``, per-target
        alphas by leave-one-out only.
    skvem.metrics.pearson_r : The per-voxel score.

    Notes
    -----
    ``score`` departs from scikit-learn's ``RegressorMixin``: it returns the
    **mean Pearson correlation over voxels**, the usual encoding-model
    accuracy, not the coefficient of determination R^2. So
    ``cross_val_score(VoxelRidgeCV(), X, y)`` and ``GridSearchCV`` rank models
    by mean voxel correlation without a ``scoring=`` argument.
    ``score_voxels`` gives the per-voxel correlations.

    ``predict`` always returns a float32 numpy array, whatever the backend,
    and runs on the CPU (one matrix product).

    The cross-validation sweep diagonalises each training fold once and
    obtains the validation predictions of every alpha from the same factors
    (see ``skvem.encoding._ridge_solver``); it costs about
    ``2 * n_folds * rank * (n_train + n_alphas * n_test)`` flops per voxel.
    ``benchmarks/bench_ridge.py`` compares its time, memory and chosen
    alphas with himalaya's and scikit-learn's ``RidgeCV``; the measured
    figures are in the documentation's benchmarks page.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.encoding.ridge import VoxelRidgeCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 20))
    >>> Y = X @ rng.standard_normal((20, 50)) + rng.standard_normal((200, 50))
    >>> model = VoxelRidgeCV(backend="numpy").fit(X[:150], Y[:150])
    >>> model.coef_.shape, model.best_alphas_.shape
    ((20, 50), (50,))
    >>> model.predict(X[150:]).dtype
    dtype('float32')
    >>> bool(model.score(X[150:], Y[150:]) > 0.9)   # mean voxel correlation
    True
    """

    def __init__(
        self,
        *,
        alphas=DEFAULT_ALPHAS,
        cv=5,
        fit_intercept=True,
        backend="auto",
        solver="auto",
        n_targets_batch=None,
        n_alphas_batch=None,
        verbose=False,
    ):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.backend = backend
        self.solver = solver
        self.n_targets_batch = n_targets_batch
        self.n_alphas_batch = n_alphas_batch
        self.verbose = verbose

    def _check_params(self, shape=None):
        """Validated ``alphas`` and the backend module (``shape`` = (n, p, targets) for "auto")."""
        alphas = check_alphas(self.alphas)
        check_bool(self.fit_intercept, name="fit_intercept")
        if not isinstance(self.solver, str) or self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}; got {self.solver!r}.")
        if isinstance(self.cv, numbers.Integral):  # else a splitter or iterable of splits
            check_int(self.cv, name="cv", min_val=2)
        check_int(self.n_targets_batch, name="n_targets_batch", allow_none=True)
        check_int(self.n_alphas_batch, name="n_alphas_batch", allow_none=True)
        check_backend_name(self.backend)  # ValueError naming backend, before any measurement
        return alphas, resolve_backend(self.backend, shape)

    def fit(self, X, y):
        """Choose each voxel's alpha by cross-validation and fit the weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, one row per image.
        y : array-like of shape (n_samples, n_voxels) or (n_samples,)
            Responses, one row per image; 1-D for a single voxel. Must be
            finite: drop (or impute) NaN voxels first.

        Returns
        -------
        self : VoxelRidgeCV
            The fitted estimator.

        Raises
        ------
        ValueError
            On invalid parameters (message names the parameter), NaN or
            infinite values, 3-D or empty ``y``, or ``X`` and ``y`` of
            different lengths.
        """
        X = _validated_X(self, X, reset=True)
        if y is None:
            raise ValueError(
                f"This {type(self).__name__} estimator requires y to be passed, "
                "but the target y is None."
            )
        # float64 responses stay float64 here: the solver converts them to
        # float32 one voxel batch at a time, never copying the whole array.
        Y, was_1d = check_fmri(y, n_samples=X.shape[0], name="y")
        alphas, backend = self._check_params(shape=(*X.shape, Y.shape[1]))

        # Several visible GPUs share the voxels; otherwise a plain solve.
        result = solve_ridge_cv_on_devices(
            X, Y, alphas,
            cv=self.cv,
            fit_intercept=self.fit_intercept,
            solver=self.solver,
            n_targets_batch=self.n_targets_batch,
            n_alphas_batch=self.n_alphas_batch,
            refit=True,
            backend=backend,
            progress_bar=bool(self.verbose),
        )
        self.backend_ = backend.name
        self.solver_ = result.solver
        self.best_alphas_ = result.best_alphas
        self.cv_scores_ = result.cv_scores
        self.coef_ = result.coef
        self.intercept_ = result.intercept
        if was_1d:
            # As scikit-learn (and himalaya): a 1-D target gives 1-D weights.
            self.coef_ = self.coef_[:, 0]
            self.intercept_ = float(self.intercept_[0])
        return self

    def predict(self, X):
        """Predict the responses of every voxel.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_voxels) or (n_samples,), float32
            Predicted responses; 1-D if the model was fitted on a 1-D ``y``.
        """
        check_is_fitted(self)
        X = _validated_X(self, X, reset=False)
        y_pred = X @ self.coef_
        y_pred += np.float32(self.intercept_) if np.ndim(self.intercept_) == 0 else self.intercept_
        return y_pred
