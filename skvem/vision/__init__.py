"""Step 3 of LLM-VEM, the image side: backbones, the aligned training, frozen features.

:class:`~skvem.vision.featurizers.ImageFeaturizer` gives frozen backbone
features (the no-language baseline); :class:`~skvem.vision.featurizers.AlignedImageFeaturizer`
fine-tunes a backbone on the fMRI with the contrastive alignment loss
(:mod:`skvem.vision.contrastive`, :mod:`skvem.vision.training`). Backbone
families live in :mod:`skvem.vision.backbones`.
"""

from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer

__all__ = ["AlignedImageFeaturizer", "ImageFeaturizer"]
