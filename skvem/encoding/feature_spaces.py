"""Several image transformers side by side, kept as separate feature spaces.

:class:`FeatureSpaces` is :class:`sklearn.pipeline.FeatureUnion` without the
final ``hstack``: it returns the list of blocks, the input that
:class:`~skvem.encoding.banded.BandedVoxelRidgeCV` (``groups="input"``) and
himalaya's banded / multiple-kernel estimators take, so that "frozen features
+ language-aligned features -> banded ridge -> voxels" is one estimator.
"""

from sklearn.base import TransformerMixin, clone
from sklearn.utils import Bunch
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted

from skvem._utils.validation import check_features

__all__ = ["FeatureSpaces"]


class FeatureSpaces(TransformerMixin, _BaseComposition):
    """Run several transformers on the same input; return their outputs as a list.

    Every transformer is fitted on the same ``X`` **and** ``y`` (so an
    :class:`~skvem.AlignedImageFeaturizer` receives the fMRI it trains on),
    and ``transform`` returns one 2-D block per transformer, in order.

    Parameters
    ----------
    spaces : list of (str, transformer)
        Named transformers, e.g. ``[("frozen", ImageFeaturizer(...)),
        ("aligned", AlignedImageFeaturizer(...))]``. Names must be unique and
        free of ``"__"``; their parameters are reachable as
        ``<name>__<param>`` (``GridSearchCV`` works through them). Each
        transformer is cloned at ``fit``.

    Attributes
    ----------
    transformers_ : list of (str, transformer)
        The fitted clones.
    named_transformers_ : Bunch
        The same, by name.
    feature_space_names_ : list of str
        Names of the spaces, in the order of the returned blocks.

    See Also
    --------
    sklearn.pipeline.FeatureUnion : Concatenates the blocks instead.
    himalaya.ridge.ColumnTransformerNoStack : The same idea for columns.
    skvem.BandedVoxelRidgeCV : Banded ridge on the list of blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skvem import BandedVoxelRidgeCV, FeatureSpaces
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 6))
    >>> Y = X[:, :2] @ rng.standard_normal((2, 10)) + rng.standard_normal((100, 10))
    >>> spaces = FeatureSpaces([("raw", StandardScaler()), ("pca", PCA(3))])
    >>> [block.shape for block in spaces.fit_transform(X)]
    [(100, 6), (100, 3)]
    >>> spaces.feature_space_names_
    ['raw', 'pca']
    >>> model = make_pipeline(spaces, BandedVoxelRidgeCV(n_iter=4, random_state=0))
    >>> model.fit(X, Y).predict(X).shape
    (100, 10)
    """

    _required_parameters = ["spaces"]

    def __init__(self, spaces):
        self.spaces = spaces

    def get_params(self, deep=True):
        """Parameters of this estimator and, with ``deep``, of every space."""
        return self._get_params("spaces", deep=deep)

    def set_params(self, **params):
        """Set parameters, including ``<name>__<param>`` of the spaces."""
        self._set_params("spaces", **params)
        return self

    def _check_spaces(self):
        spaces = self.spaces
        if not isinstance(spaces, (list, tuple)) or len(spaces) == 0:
            raise ValueError(
                f"spaces must be a non-empty list of (name, transformer) pairs; got {spaces!r}."
            )
        for item in spaces:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(
                    f"spaces must hold (name, transformer) pairs with a str name; got {item!r}."
                )
            name, trans = item
            if not (hasattr(trans, "fit") and hasattr(trans, "transform")):
                raise ValueError(
                    f"spaces: the transformer of {name!r} must have fit and transform "
                    f"methods; got {trans!r}."
                )
        names = [name for name, _ in spaces]
        # sklearn's checks: unique, no "__", no clash with a constructor argument.
        try:
            self._validate_names(names)
        except ValueError as exc:
            raise ValueError(f"spaces: {exc}") from exc
        return list(spaces)

    def _record(self, fitted):
        self.transformers_ = fitted
        self.named_transformers_ = Bunch(**dict(fitted))
        self.feature_space_names_ = [name for name, _ in fitted]

    @staticmethod
    def _as_blocks(names, outputs):
        blocks = [check_features(out, name=f"the output of space {name!r}")
                  for name, out in zip(names, outputs)]
        if len({b.shape[0] for b in blocks}) > 1:
            raise ValueError(
                "The spaces returned different numbers of rows: "
                + ", ".join(f"{name}={b.shape[0]}" for name, b in zip(names, blocks))
            )
        return blocks

    def fit(self, X, y=None, **fit_params):
        """Fit every transformer on ``X`` and ``y``.

        Parameters
        ----------
        X : images or array-like
            Input of every transformer (e.g. an :class:`~skvem.ImageSet`).
        y : array-like of shape (n_samples, n_voxels) or None, default=None
            Passed to every transformer's ``fit``.
        **fit_params : dict
            Passed to every transformer's ``fit``.

        Returns
        -------
        self : FeatureSpaces
        """
        spaces = self._check_spaces()
        fitted = [(name, clone(trans).fit(X, y, **fit_params)) for name, trans in spaces]
        self._record(fitted)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit every transformer and return its block (one pass each).

        Parameters
        ----------
        X : images or array-like
            Input of every transformer.
        y : array-like or None, default=None
            Passed to every transformer.
        **fit_params : dict
            Passed to every transformer.

        Returns
        -------
        blocks : list of ndarray of shape (n_samples, n_features_k)
            One block per space, in the order of ``spaces``.
        """
        spaces = self._check_spaces()
        fitted, outputs = [], []
        for name, trans in spaces:
            est = clone(trans)
            outputs.append(est.fit_transform(X, y, **fit_params) if hasattr(est, "fit_transform")
                           else est.fit(X, y, **fit_params).transform(X))
            fitted.append((name, est))
        self._record(fitted)
        return self._as_blocks(self.feature_space_names_, outputs)

    def transform(self, X):
        """Transform ``X`` with every fitted transformer.

        Parameters
        ----------
        X : images or array-like
            Input of every transformer.

        Returns
        -------
        blocks : list of ndarray of shape (n_samples, n_features_k)
            One block per space, in the order of ``feature_space_names_``.
        """
        check_is_fitted(self, "transformers_")
        return self._as_blocks(self.feature_space_names_,
                               [trans.transform(X) for _, trans in self.transformers_])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # images, lists, ... whatever the spaces take
        return tags
