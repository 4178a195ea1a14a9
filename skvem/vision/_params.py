"""Parameter checks and defaults shared by the two image featurizers."""

from __future__ import annotations

from skvem._utils.validation import check_int

__all__ = ["DEFAULT_BACKBONE", "check_common"]

DEFAULT_BACKBONE = "open_clip:ViT-B-32"


def check_common(est):
    check_int(est.batch_size, name="batch_size", min_val=1)
    check_int(est.num_workers, name="num_workers", min_val=0)
    if est.image_size is not None:
        check_int(est.image_size, name="image_size", min_val=16)
        if est.image_size > 8192:  # beyond any backbone's input; PIL overflows further up
            raise ValueError(f"image_size must be at most 8192 pixels; got {est.image_size!r}")
