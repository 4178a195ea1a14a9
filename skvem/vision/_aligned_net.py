"""The network and the fMRI targets that :mod:`skvem.vision.training` trains."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from skvem._utils.distributed import GlobalBatchNorm1d
from skvem.vision.backbones import first_tensor
from skvem.vision.contrastive import SymmetricInfoNCE

__all__ = ["AlignedNet", "FMRITargets"]


class AlignedNet(nn.Module):
    """Backbone + standardisation + voxel head (+ projection head + InfoNCE).

    Parameters
    ----------
    backbone : nn.Module
        ``(B, 3, H, W)`` -> ``(B, n_features)``.
    n_features : int
    n_components : int
        Principal components of the fMRI predicted by the voxel head.
    text_dim : int or None
        Dimension of the text embeddings; None trains without language.
    """

    def __init__(self, backbone, n_features, n_components, text_dim=None):
        super().__init__()
        self.backbone = backbone
        # A fixed per-feature affine map at inference: the downstream ridge
        # sees exactly the space the linear heads were trained on.
        # (Global: under torchrun its training statistics are the whole batch's.)
        self.norm = GlobalBatchNorm1d(n_features, affine=False)
        self.voxel_head = nn.Linear(n_features, n_components)
        if text_dim:
            self.projection = nn.Linear(n_features, text_dim)
            self.contrastive = SymmetricInfoNCE()
        else:
            self.projection = None
            self.contrastive = None

    def forward(self, x=None, *, raw=None):
        """One training step's outputs: ``(voxel prediction, projection or None)``.

        ``raw`` (backbone features computed beforehand, as in the frozen
        stage) replaces the pixels ``x``. A single forward, so a wrapper such
        as ``DistributedDataParallel`` sees every parameter of a step.
        """
        if raw is None:
            raw = self.raw_features(x)
        feats = self.norm(raw.float())
        pred = self.voxel_head(feats).float()
        proj = None if self.projection is None else self.projection(feats)
        return pred, proj

    def raw_features(self, x):
        return first_tensor(self.backbone(x)).flatten(1).float()

    def features(self, x):
        """Standardised backbone features: the output of ``transform``."""
        return self.norm(self.raw_features(x))

    def head_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]


@dataclass
class FMRITargets:
    """The fMRI as training targets: z-scored voxels -> PCA -> one common scale.

    The components keep their relative variances (strong components weigh
    more in the loss, as they do in voxel space) and are divided by one
    factor so that predicting zero costs a loss of 1.
    """

    mean: np.ndarray
    std: np.ndarray
    pca: object
    scale: float

    @classmethod
    def fit(cls, fmri, n_components, random_state):
        from sklearn.decomposition import PCA

        mean = fmri.mean(axis=0)
        std = fmri.std(axis=0)
        std[std == 0] = 1.0
        z = (fmri - mean) / std
        pca = PCA(n_components=n_components, random_state=random_state).fit(z)
        scale = float(np.sqrt(np.mean(pca.explained_variance_))) or 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32), pca, scale)

    def zscore(self, fmri):
        return ((fmri - self.mean) / self.std).astype(np.float32)

    def targets(self, fmri):
        return (self.pca.transform(self.zscore(fmri)) / self.scale).astype(np.float32)

    def reconstruct(self, targets):
        """Targets (or predictions) back to z-scored voxel space."""
        return (targets * self.scale) @ self.pca.components_ + self.pca.mean_
