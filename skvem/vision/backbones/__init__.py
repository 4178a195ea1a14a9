"""One resolver from a ``backbone`` parameter to a network and its preprocessing.

Every image step of skvem names its image encoder the same way:

``"open_clip:NAME"``
    The image tower of an open_clip model (``NAME`` is a built-in
    architecture such as ``"ViT-B-32"``, or ``"hf-hub:org/repo"``, or
    ``"local-dir:/path"``); ``pretrained`` is a tag or a checkpoint file.
``"timm:NAME"``
    A timm model without its classifier; ``pretrained`` may be a file.
``"torchvision:NAME"``
    A torchvision classification model without its classifier;
    ``pretrained`` is a weights name (``"IMAGENET1K_V2"``), ``"DEFAULT"``
    or a state-dict file.
``"hf:ID_OR_DIR"``
    A transformers vision model (ViT, DINOv2, ConvNeXt, ...) or the vision
    tower of a dual encoder (CLIP, SigLIP, ...), from the hub or a folder.
``"small-cnn"``
    A small CNN (:class:`SmallCNN`) for CPU demos and tests: randomly
    initialised (``pretrained="auto"`` or ``None``), or pretrained CLIP-style
    on synthetic scenes against sentence embeddings of their descriptions
    (``pretrained="scenes"``, shipped with skvem; or a file written by
    ``skvem pretrain-scenes``): the laptop stand-in for EVA02-CLIP.
a :class:`torch.nn.Module`
    Any module mapping ``(B, 3, H, W)`` to features.

Each family lives in its own module (``open_clip``, ``timm``,
``torchvision``, ``hf``, ``small_cnn``, ``module``) with one builder
``<family>_backbone(name, pretrained, seed, owner) -> Backbone``;
:data:`FAMILIES` maps the prefix of a ``backbone`` string to it. Shared
pieces: :mod:`._base` (:class:`Backbone`, :class:`Preprocess`, weight
identities) and :mod:`._layers` (layer taps and pooling).
"""

from __future__ import annotations

import os

from skvem.vision.backbones._base import IMAGENET_MEAN, IMAGENET_STD, Backbone, Preprocess
from skvem.vision.backbones._layers import POOLINGS, LayerTap, first_tensor, list_layers, pool_features
from skvem.vision.backbones.hf import HFImageTower, hf_backbone
from skvem.vision.backbones.module import module_backbone
from skvem.vision.backbones.open_clip import open_clip_backbone
from skvem.vision.backbones.small_cnn import SmallCNN, small_cnn_backbone
from skvem.vision.backbones.timm import timm_backbone
from skvem.vision.backbones.torchvision import torchvision_backbone

__all__ = [
    "FAMILIES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "POOLINGS",
    "Backbone",
    "HFImageTower",
    "LayerTap",
    "Preprocess",
    "SmallCNN",
    "first_tensor",
    "list_layers",
    "pool_features",
    "resolve_backbone",
]

#: ``"family:NAME"`` prefix -> builder ``(name, pretrained, seed, owner) -> Backbone``.
FAMILIES = {
    "open_clip": open_clip_backbone,
    "timm": timm_backbone,
    "torchvision": torchvision_backbone,
    "hf": hf_backbone,
}
_ACCEPTED = (
    "'open_clip:NAME' (e.g. 'open_clip:ViT-B-32', 'open_clip:local-dir:/path'), "
    "'timm:NAME' (e.g. 'timm:resnet50'), 'torchvision:NAME' (e.g. 'torchvision:resnet18'), "
    "'hf:ID_OR_DIR' (e.g. 'hf:openai/clip-vit-base-patch32' or a local folder), "
    "'small-cnn', or a torch.nn.Module mapping (B, 3, H, W) images to features"
)


def _check_pretrained_flag(pretrained):
    if pretrained in (None, False, True, "auto"):
        return
    if isinstance(pretrained, (str, os.PathLike)):
        return
    raise ValueError(
        "pretrained must be 'auto', True, False/None or a string (weights tag, name or "
        f"checkpoint path); got {pretrained!r}"
    )


def resolve_backbone(backbone, pretrained="auto", *, image_size=None, seed=None, owner="skvem") -> Backbone:
    """Build the network and preprocessing a ``backbone`` parameter names.

    Parameters
    ----------
    backbone : str or torch.nn.Module
        See the module docstring for the accepted forms.
    pretrained : "auto", bool, None or str
        ``"auto"``/``True``: the library's default weights (the first
        open_clip tag of the model, timm's default, torchvision's
        ``DEFAULT``, the checkpoint of a ``hf:`` id). ``False``/``None``:
        random initialisation (seeded by ``seed``). A string: an open_clip
        tag, a torchvision weights name, or a checkpoint file path.
    image_size : int, optional
        Input size of ``"small-cnn"`` (default 64) and of module backbones
        (default 224). Library backbones bring their own.
    seed : int, optional
        Seed of random initialisations.
    owner : str
        The estimator, named in errors about missing weights.

    Returns
    -------
    Backbone
    """
    _check_pretrained_flag(pretrained)
    import torch

    if isinstance(backbone, torch.nn.Module):
        return module_backbone(backbone, image_size)
    if not isinstance(backbone, str):
        raise ValueError(f"backbone must be one of {_ACCEPTED}; got a {type(backbone).__name__}")
    if image_size is not None and backbone != "small-cnn":
        raise ValueError(
            f"image_size is used by 'small-cnn' and module backbones only; {backbone!r} brings "
            "its own preprocessing"
        )
    if backbone == "small-cnn":
        return small_cnn_backbone(pretrained, image_size, seed)
    family, _, name = backbone.partition(":")
    if family in FAMILIES and name:
        return FAMILIES[family](name, pretrained, seed, owner)
    raise ValueError(f"unknown backbone {backbone!r}; accepted: {_ACCEPTED}")
