"""skvem: scikit-learn estimators for LLM-aligned fMRI visual encoding models.

A vision-language model describes every stimulus image
(:class:`CaptionTransformer`), a text encoder embeds the descriptions
(:class:`CLIPTextEmbedder`, :class:`SentenceEmbedder`), an image encoder is
trained to predict voxel responses while a contrastive loss aligns it with
those embeddings (:class:`AlignedImageFeaturizer`), and a voxelwise ridge
regression maps its features to every voxel (:class:`VoxelRidgeCV`).

Names are imported on first use, so ``import skvem`` stays fast and does not
load torch until an estimator is needed.
"""

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "ImageSet": "skvem.images",
    "as_imageset": "skvem.images",
    "CaptionTransformer": "skvem.language.captioning",
    "CLIPTextEmbedder": "skvem.language.text",
    "SentenceEmbedder": "skvem.language.text",
    "ImageFeaturizer": "skvem.vision.featurizers",
    "AlignedImageFeaturizer": "skvem.vision.featurizers",
    "VoxelRidgeCV": "skvem.encoding.ridge",
    "BandedVoxelRidgeCV": "skvem.encoding.banded",
    "FeatureSpaces": "skvem.encoding.feature_spaces",
    "pearson_r": "skvem.metrics",
    "noise_ceiling": "skvem.metrics",
    "algonauts_score": "skvem.metrics",
    "algonauts_score_voxels": "skvem.metrics",
    "correlation_scorer": "skvem.metrics",
    "clear_cache": "skvem._utils.cache",
    "export_cache": "skvem._utils.cache_transfer",
    "import_cache": "skvem._utils.cache_transfer",
    "ModelNotFoundError": "skvem._utils.hub",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skvem' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
