"""A user's :class:`torch.nn.Module` as a backbone."""

from __future__ import annotations

import copy

from skvem.vision.backbones._base import IMAGENET_MEAN, IMAGENET_STD, Backbone, Preprocess, _resize_crop

__all__ = ["module_backbone"]


def module_backbone(module, image_size) -> Backbone:
    size = 224 if image_size is None else int(image_size)
    # A copy: moving to a device, eval() and training must not touch the
    # caller's module (it is a parameter of the estimator).
    module = copy.deepcopy(module)
    geo = _resize_crop(size)
    pre = Preprocess(geo, IMAGENET_MEAN, IMAGENET_STD, " ".join(repr(geo).split()))
    return Backbone(module, module, pre, type(module).__name__, "module", None)
