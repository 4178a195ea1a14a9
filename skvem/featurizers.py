"""Images to features: :class:`ImageFeaturizer` (frozen) and :class:`AlignedImageFeaturizer` (LLM-VEM training).

This public module path is kept stable; the code lives in :mod:`skvem.vision.featurizers`.
"""

from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer

__all__ = ["AlignedImageFeaturizer", "ImageFeaturizer"]
