"""Parameter checks and defaults shared by the two image featurizers."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["DEFAULT_BACKBONE", "check_common", "check_float", "check_int"]

DEFAULT_BACKBONE = "open_clip:ViT-B-32"


def check_int(name, value, minimum, allow=()):
    if value in allow and not isinstance(value, bool):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        extra = f" or one of {list(allow)}" if allow else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}; got {value!r}")
    return int(value)


def check_float(name, value, low, high, *, low_open=False, high_open=False, allow=()):
    if value in allow and not isinstance(value, bool):
        return value
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        extra = f" or one of {list(allow)}" if allow else ""
        raise ValueError(f"{name} must be a number in {lo}{low}, {high}{hi}{extra}; got {value!r}")
    return float(value)


def check_common(est):
    check_int("batch_size", est.batch_size, 1)
    check_int("num_workers", est.num_workers, 0)
    if est.image_size is not None:
        check_int("image_size", est.image_size, 16)
        if est.image_size > 8192:  # beyond any backbone's input; PIL overflows further up
            raise ValueError(f"image_size must be at most 8192 pixels; got {est.image_size!r}")
