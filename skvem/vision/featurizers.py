"""Image features for voxelwise encoding models: frozen, or trained with language.

:class:`ImageFeaturizer` runs a frozen backbone (the no-language baseline).
:class:`AlignedImageFeaturizer` trains a backbone to predict the principal
components of the fMRI while a contrastive loss pulls its image embeddings
towards text embeddings of the stimuli (LLM-VEM, Ma et al. 2024); at
prediction time it needs images only.

Both take images (an :class:`~skvem.images.ImageSet` or anything
:func:`~skvem.images.as_imageset` accepts) and return ``(n_images,
n_features)`` float32 arrays, so a voxelwise ridge
(:class:`skvem.encoding.ridge.VoxelRidgeCV`) can follow them in a pipeline.
"""

from skvem.vision._text_targets import compute_text_targets
from skvem.vision.aligned import AlignedImageFeaturizer
from skvem.vision.frozen import ImageFeaturizer

__all__ = ["AlignedImageFeaturizer", "ImageFeaturizer", "compute_text_targets"]
