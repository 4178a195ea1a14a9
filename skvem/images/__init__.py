"""A lazy, sliceable collection of stimulus images.

Every image step of skvem takes an :class:`ImageSet`, or anything
:func:`as_imageset` turns into one. Slicing an :class:`ImageSet` only composes
integer indices: scikit-learn's cross-validation splits it without copying or
decoding a single pixel. Images are decoded one at a time, when a step asks
for them, and always come out as 8-bit RGB.
"""

from skvem.images._decode import IMAGE_EXTENSIONS, ImageLoadError
from skvem.images._imageset import ImageSet, as_imageset, fingerprint_array

__all__ = ["ImageSet", "ImageLoadError", "as_imageset", "IMAGE_EXTENSIONS", "fingerprint_array"]
