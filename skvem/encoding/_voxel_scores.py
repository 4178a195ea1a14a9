"""What the voxelwise estimators share: correlation scores and scikit-learn tags."""

from __future__ import annotations

import numpy as np

from skvem.metrics import pearson_r

__all__ = ["VoxelScoreMixin"]


class VoxelScoreMixin:
    """``score_voxels`` (Pearson r per voxel), ``score`` (their mean) and the estimator tags.

    For :class:`~skvem.encoding.ridge.VoxelRidgeCV` and
    :class:`~skvem.encoding.banded.BandedVoxelRidgeCV`; listed before
    scikit-learn's ``RegressorMixin`` so that ``score`` is the correlation.
    """

    def score_voxels(self, X, y):
        """Pearson correlation between measured and predicted responses, per voxel.

        Parameters
        ----------
        X : array-like or list of array-like
            Features, as in ``fit``.
        y : array-like of shape (n_samples, n_voxels) or (n_samples,)
            Measured responses.

        Returns
        -------
        r : ndarray of shape (n_voxels,)
            Correlation of each voxel (0 for a constant voxel); length 1 for
            a 1-D ``y``.
        """
        y_pred = self.predict(X)
        if y is None or np.ndim(y) == 0:
            raise ValueError(f"y must be an array (n_samples, n_voxels); got {y!r:.40}.")
        n_out = 1 if y_pred.ndim == 1 else y_pred.shape[1]
        n_voxels = 1 if np.ndim(y) == 1 else np.shape(y)[-1]
        if n_out != n_voxels:
            raise ValueError(f"y has {n_voxels} voxels but the model predicts {n_out}.")
        return np.atleast_1d(pearson_r(y, y_pred))

    def score(self, X, y):
        """Mean Pearson correlation over voxels (not R^2).

        This departs from scikit-learn's ``RegressorMixin.score`` (R^2) on
        purpose: correlation is the standard accuracy of voxelwise encoding
        models, and ``cross_val_score`` / ``GridSearchCV`` use this method
        when no ``scoring`` is given.

        Parameters
        ----------
        X : array-like or list of array-like
            Features, as in ``fit``.
        y : array-like of shape (n_samples, n_voxels) or (n_samples,)
            Measured responses.

        Returns
        -------
        score : float
            Mean over voxels of :meth:`score_voxels`.
        """
        return float(np.mean(self.score_voxels(X, y)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = False
        return tags
