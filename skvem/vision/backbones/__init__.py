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
    A small randomly initialised CNN (:class:`SmallCNN`), for CPU demos and
    tests.
a :class:`torch.nn.Module`
    Any module mapping ``(B, 3, H, W)`` to features.

Preprocessing is split in two: a geometric part applied to each PIL image
(resize and crop, exactly as the library of the backbone does it) giving a
compact ``uint8`` tensor, and a normalisation applied to whole batches on
the device. The ``uint8`` half is 4x smaller than float pixels, so training
can keep a whole stimulus set in memory, and the normalisation runs on the
accelerator.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
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

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("auto", "avg", "max", "cls", "flatten")
_PREFIXES = ("open_clip:", "timm:", "torchvision:", "hf:")
_ACCEPTED = (
    "'open_clip:NAME' (e.g. 'open_clip:ViT-B-32', 'open_clip:local-dir:/path'), "
    "'timm:NAME' (e.g. 'timm:resnet50'), 'torchvision:NAME' (e.g. 'torchvision:resnet18'), "
    "'hf:ID_OR_DIR' (e.g. 'hf:openai/clip-vit-base-patch32' or a local folder), "
    "'small-cnn', or a torch.nn.Module mapping (B, 3, H, W) images to features"
)


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------


@dataclass
class Preprocess:
    """The preprocessing of one backbone, split into per-image and per-batch halves.

    Parameters
    ----------
    geometric : callable
        ``PIL.Image -> PIL.Image`` or ``-> uint8 tensor (3, H, W)``: resize and
        crop to the input size of the network.
    mean, std : tuple of float
        Per-channel normalisation applied to ``pixels * scale``.
    scale : float
        Factor from 0-255 pixel values to the range ``mean``/``std`` refer to.
    description : str
        What the preprocessing does; part of cache keys.
    """

    geometric: Callable
    mean: tuple
    std: tuple
    description: str
    scale: float = 1.0 / 255.0

    def to_uint8(self, image):
        """Resize/crop one RGB PIL image to a ``(3, H, W)`` uint8 tensor."""
        import torch

        out = self.geometric(image)
        if isinstance(out, torch.Tensor):
            return out.to(torch.uint8).contiguous()
        arr = np.asarray(out.convert("RGB") if out.mode != "RGB" else out, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()

    def normalize(self, pixels, dtype=None):
        """Turn a ``(B, 3, H, W)`` uint8 batch into normalised floats on its device."""
        import torch

        x = pixels.to(torch.float32) * self.scale
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x if dtype is None else x.to(dtype)

    def identity(self) -> dict:
        return {
            "geometric": self.description,
            "mean": [round(float(m), 6) for m in self.mean],
            "std": [round(float(s), 6) for s in self.std],
            "scale": round(float(self.scale), 9),
        }


_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


class ResizeCenterCrop:
    """Resize the shorter side to ``size`` then crop the centre to ``crop``, on a PIL image.

    The same arithmetic as torchvision's ``Resize(size)`` + ``CenterCrop(crop)``
    on PIL images (which call PIL's antialiased resize), without importing
    torchvision.
    """

    def __init__(self, size, interpolation="bilinear", crop=None):
        self.size = int(size[0] if isinstance(size, (list, tuple)) else size)
        crop = self.size if crop is None else crop
        crop = crop if isinstance(crop, (list, tuple)) else (crop, crop)
        self.crop = (int(crop[0]), int(crop[-1]))
        self.interpolation = str(interpolation)

    def __call__(self, image):
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        if short != self.size:
            new_long = int(self.size * long / short)
            new_w, new_h = (self.size, new_long) if w <= h else (new_long, self.size)
            image = image.resize((new_w, new_h), _PIL_FILTERS[self.interpolation])
        w, h = image.size
        th, tw = self.crop
        if (w, h) != (tw, th):
            top = int(round((h - th) / 2.0))
            left = int(round((w - tw) / 2.0))
            image = image.crop((left, top, left + tw, top + th))
        return image

    def __repr__(self):
        return f"ResizeCenterCrop(size={self.size}, crop={self.crop}, interpolation={self.interpolation})"


def _resize_crop(size, interpolation="bilinear", crop=None):
    return ResizeCenterCrop(size, interpolation, crop)


def _floats(values) -> tuple:
    return tuple(float(v) for v in np.asarray(
        values.tolist() if hasattr(values, "tolist") else values, dtype=float
    ).ravel())


def _split_compose(transform, what: str) -> Preprocess:
    """Split a torchvision ``Compose`` ending in ToTensor + Normalize."""
    from torchvision import transforms as T

    steps = list(getattr(transform, "transforms", []))
    names = [type(t).__name__ for t in steps]
    for i, name in enumerate(names):
        if name in ("ToTensor", "MaybeToTensor"):
            rest = steps[i + 1 :]
            if len(rest) == 1 and type(rest[0]).__name__ == "Normalize":
                geo = T.Compose(steps[:i])
                return Preprocess(
                    geometric=geo,
                    mean=_floats(rest[0].mean),
                    std=_floats(rest[0].std),
                    description=" ".join(repr(geo).split()),
                )
            break
    raise ValueError(  # pragma: no cover - guards against library changes
        f"cannot use the preprocessing of {what}: expected resize/crop steps followed by "
        f"ToTensor and Normalize, got {names}"
    )


# ---------------------------------------------------------------------------
# The built-in small CNN
# ---------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """A small CNN for 64 px images: 4 conv blocks, GroupNorm, global pooling.

    Each block is a 3x3 convolution with stride 2, GroupNorm and GELU, so a
    64 px image shrinks to a 4x4 map of ``widths[-1]`` channels; global
    average and max pooling of that map are concatenated, so the output has
    ``2 * widths[-1]`` features (256 with the default widths, ~190k
    parameters). GroupNorm rather than BatchNorm keeps features independent
    of the batch: the same image gives the same features whatever
    ``batch_size`` is.

    Parameters
    ----------
    widths : tuple of int, default=(32, 64, 96, 128)
        Channels of the four blocks.
    groups : int, default=8
        GroupNorm groups.
    """

    def __init__(self, widths=(32, 64, 96, 128), groups=8):
        super().__init__()
        layers = []
        c_in = 3
        for c_out in widths:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                    nn.GroupNorm(groups, c_out),
                    nn.GELU(),
                )
            )
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.out_features = 2 * widths[-1]

    def forward(self, x):
        x = self.blocks(x)
        # Max pooling keeps "is there something here" evidence that an
        # average over a mostly empty scene dilutes.
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


# ---------------------------------------------------------------------------
# Resolved backbone
# ---------------------------------------------------------------------------


@dataclass
class Backbone:
    """A resolved backbone.

    Attributes
    ----------
    module : torch.nn.Module
        Maps a normalised ``(B, 3, H, W)`` float batch to features.
    layer_root : torch.nn.Module
        The module whose ``named_modules()`` names the selectable layers.
    preprocess : Preprocess
    name : str
        What was asked for, for messages.
    weights : {"pretrained", "random", "module"}
        Where the weights come from: a checkpoint, a seeded random
        initialisation, or a user-supplied module.
    identity : dict or None
        Everything that determines the weights and the preprocessing, for
        cache keys; None when the weights cannot be identified (a module).
    """

    module: Any
    layer_root: Any
    preprocess: Preprocess
    name: str
    weights: str
    identity: dict | None = field(default=None)


def _seeded(seed, build):
    """Run ``build()`` under a private torch RNG seeded with ``seed``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        return build()


def _file_identity(path) -> dict:
    """Identify a weights file by content (sampled for large files), not by its path."""
    from skvem._utils.hub import _file_digest

    h = hashlib.blake2b(digest_size=16)
    size = os.path.getsize(path)
    _file_digest(Path(path), size, h)
    return {"file_digest": h.hexdigest(), "size": size}


def _dir_identity(path) -> dict:
    from skvem._utils.hub import folder_fingerprint

    return {"folder_digest": folder_fingerprint(path)}


def _not_found(owner, spec, looked_for, hint, exc):
    """The error for weights that are neither on disk nor downloadable (see skvem._utils.hub)."""
    from skvem._utils.hub import model_not_found

    return model_not_found(owner, "backbone", spec, looked_for, hint, cause=exc)


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
        return _module_backbone(backbone, image_size)
    if not isinstance(backbone, str):
        raise ValueError(f"backbone must be one of {_ACCEPTED}; got a {type(backbone).__name__}")
    if image_size is not None and backbone != "small-cnn":
        raise ValueError(
            f"image_size is used by 'small-cnn' and module backbones only; {backbone!r} brings "
            "its own preprocessing"
        )
    if backbone == "small-cnn":
        return _small_cnn_backbone(pretrained, image_size, seed)
    family, _, name = backbone.partition(":")
    if backbone.startswith(_PREFIXES) and name:
        return {
            "open_clip": _open_clip_backbone,
            "timm": _timm_backbone,
            "torchvision": _torchvision_backbone,
            "hf": _hf_backbone,
        }[family](name, pretrained, seed, owner)
    raise ValueError(f"unknown backbone {backbone!r}; accepted: {_ACCEPTED}")


def _module_backbone(module, image_size) -> Backbone:
    size = 224 if image_size is None else int(image_size)
    # A copy: moving to a device, eval() and training must not touch the
    # caller's module (it is a parameter of the estimator).
    module = copy.deepcopy(module)
    geo = _resize_crop(size)
    pre = Preprocess(geo, IMAGENET_MEAN, IMAGENET_STD, " ".join(repr(geo).split()))
    return Backbone(module, module, pre, type(module).__name__, "module", None)


def _small_cnn_backbone(pretrained, image_size, seed) -> Backbone:
    if pretrained is True or (isinstance(pretrained, (str, os.PathLike)) and pretrained != "auto"):
        raise ValueError(
            "'small-cnn' has no pretrained weights: use pretrained='auto' or None (random "
            "initialisation seeded by random_state)"
        )
    size = 64 if image_size is None else int(image_size)
    if size < 16:
        raise ValueError(f"image_size must be >= 16 for 'small-cnn'; got {image_size}")
    module = _seeded(seed, lambda: SmallCNN())
    geo = _resize_crop(size)
    pre = Preprocess(geo, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), " ".join(repr(geo).split()))
    identity = {"family": "small-cnn", "widths": [32, 64, 96, 128], "seed": seed}
    return Backbone(module, module, pre, "small-cnn", "random", identity)


# -- open_clip ---------------------------------------------------------------


def _open_clip_backbone(name, pretrained, seed, owner) -> Backbone:
    import open_clip

    has_schema = name.startswith(("hf-hub:", "local-dir:"))
    if not has_schema:
        if open_clip.get_model_config(name.replace("/", "-")) is None:
            close = difflib.get_close_matches(name, open_clip.list_models(), n=5)
            raise ValueError(
                f"unknown open_clip model {name!r}"
                + (f"; did you mean {close}?" if close else "")
                + " See open_clip.list_models(), or use 'open_clip:local-dir:/path' for a "
                "folder with open_clip_config.json and weights"
            )
    tag = None
    if has_schema:
        weights = "pretrained"  # the folder / hub repo brings its weights
        if name.startswith("local-dir:"):
            folder = os.path.expanduser(name[len("local-dir:"):])
            if not os.path.isdir(folder):
                raise _not_found(
                    owner, f"open_clip:{name}", [f"a local folder {os.path.abspath(folder)!r} (not found)"],
                    "Pass 'open_clip:local-dir:/path' with a folder holding open_clip_config.json "
                    "and the weights (open_clip_model.safetensors or open_clip_pytorch_model.bin).",
                    None,
                )
            ident = {"weights": _dir_identity(folder)}
        else:
            ident = {"weights": name}
    elif pretrained in (None, False):
        weights = "random"
        ident = {"weights": None, "seed": seed}
    elif pretrained in ("auto", True):
        tags = open_clip.list_pretrained_tags_by_model(name)
        if not tags:
            raise ValueError(
                f"open_clip model {name!r} has no pretrained tags; pass pretrained=<checkpoint "
                "file> or pretrained=None for a random initialisation"
            )
        tag, weights, ident = tags[0], "pretrained", {"weights": tags[0]}
    elif os.path.isfile(os.fspath(pretrained)):
        tag, weights, ident = os.fspath(pretrained), "pretrained", {"weights": _file_identity(pretrained)}
    else:
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ValueError(
                f"pretrained={pretrained!r} is neither an open_clip tag of {name!r} "
                f"(tags: {tags}) nor an existing checkpoint file"
            )
        tag, weights, ident = pretrained, "pretrained", {"weights": pretrained}

    def build():
        return open_clip.create_model_and_transforms(
            name, pretrained=tag, pretrained_text=False, device="cpu"
        )

    try:
        model, _, preprocess = _seeded(seed if weights == "random" else None, build)
    except (RuntimeError, OSError) as exc:
        if weights != "pretrained":
            raise
        raise _not_found(
            owner,
            f"open_clip:{name}" + (f" (pretrained={tag!r})" if tag else ""),
            [f"open_clip's download cache (the Hugging Face cache: HF_HOME / HF_HUB_CACHE) for "
             f"{name!r} with weights {tag!r}"],
            "Pass pretrained='/path/to/open_clip_model.safetensors' (a checkpoint file of this "
            "architecture), or backbone='open_clip:local-dir:/path' (a folder with "
            "open_clip_config.json and the weights).",
            exc,
        ) from exc
    visual = model.visual
    del model  # the text tower is not needed
    pre = _split_compose(preprocess, f"open_clip model {name!r}")
    identity = {"family": "open_clip", "name": name, **ident}
    return Backbone(visual, visual, pre, f"open_clip:{name}", weights, identity)


# -- timm --------------------------------------------------------------------


def _timm_backbone(name, pretrained, seed, owner) -> Backbone:
    import timm
    import timm.data

    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5)
        raise ValueError(
            f"unknown timm model {name!r}" + (f"; did you mean {close}?" if close else "")
            + " See timm.list_models()."
        )
    kwargs = {"num_classes": 0}
    if pretrained in (None, False):
        weights, ident = "random", {"weights": None, "seed": seed}
        kwargs["pretrained"] = False
    elif pretrained in ("auto", True):
        weights, ident = "pretrained", {"weights": "default"}
        kwargs["pretrained"] = True
    else:
        path = os.fspath(pretrained)
        if not os.path.isfile(path):
            raise ValueError(
                f"pretrained={pretrained!r} for timm must be 'auto', True, None or an existing "
                "checkpoint file; choose timm's weights with a tag in the name, e.g. "
                "'timm:resnet50.a1_in1k'"
            )
        weights, ident = "pretrained", {"weights": _file_identity(path)}
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": path})

    try:
        model = _seeded(seed if weights == "random" else None, lambda: timm.create_model(name, **kwargs))
    except (RuntimeError, OSError) as exc:
        if weights != "pretrained":
            raise
        raise _not_found(
            owner,
            f"timm:{name}",
            [f"timm's download cache (the Hugging Face cache: HF_HOME / HF_HUB_CACHE) for the "
             f"default weights of {name!r}"],
            "Pass pretrained='/path/to/model.safetensors' (a checkpoint file of this architecture).",
            exc,
        ) from exc
    cfg = timm.data.resolve_model_data_config(model)
    pre = _split_compose(timm.data.create_transform(**cfg, is_training=False), f"timm model {name!r}")
    identity = {"family": "timm", "name": name, **ident}
    return Backbone(model, model, pre, f"timm:{name}", weights, identity)


# -- torchvision -------------------------------------------------------------


def _torchvision_backbone(name, pretrained, seed, owner) -> Backbone:
    import torch
    import torchvision.models as tvm

    available = tvm.list_models(module=tvm)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=5)
        raise ValueError(
            f"unknown torchvision classification model {name!r}"
            + (f"; did you mean {close}?" if close else "")
            + " See torchvision.models.list_models()."
        )
    enum = tvm.get_model_weights(name)
    state_dict_path = None
    if pretrained in (None, False):
        w, weights, ident = None, "random", {"weights": None, "seed": seed}
    elif pretrained in ("auto", True):
        w, weights, ident = enum.DEFAULT, "pretrained", {"weights": str(enum.DEFAULT)}
    elif isinstance(pretrained, str) and pretrained in enum.__members__:
        w, weights, ident = enum[pretrained], "pretrained", {"weights": str(enum[pretrained])}
    elif os.path.isfile(os.fspath(pretrained)):
        state_dict_path = os.fspath(pretrained)
        w, weights, ident = None, "pretrained", {"weights": _file_identity(state_dict_path)}
    else:
        raise ValueError(
            f"pretrained={pretrained!r} is neither a weights name of torchvision's {name!r} "
            f"({list(enum.__members__)}), 'DEFAULT', nor an existing state-dict file"
        )

    try:
        model = _seeded(seed if weights == "random" else None, lambda: tvm.get_model(name, weights=w))
    except (RuntimeError, OSError, ValueError) as exc:
        if w is None:
            raise
        raise _not_found(
            owner,
            f"torchvision:{name} (pretrained={pretrained!r})",
            [f"{os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(w.url))} "
             f"(torchvision's download cache, TORCH_HOME), downloaded from {w.url}"],
            "Copy that file into the folder, or pass pretrained='/path/to/weights.pth' (a state "
            "dict of this architecture).",
            exc,
        ) from exc
    if state_dict_path is not None:
        state = torch.load(state_dict_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    _drop_classifier(model, len((w or enum.DEFAULT).meta.get("categories", [])) or 1000)
    tf = (w or enum.DEFAULT).transforms()
    geo = _resize_crop(tf.resize_size, tf.interpolation.value, tf.crop_size)
    pre = Preprocess(geo, _floats(tf.mean), _floats(tf.std), " ".join(repr(geo).split()))
    identity = {"family": "torchvision", "name": name, **ident}
    return Backbone(model, model, pre, f"torchvision:{name}", weights, identity)


def _drop_classifier(model, n_classes):
    """Replace the last ``Linear(*, n_classes)`` by an identity: features, not logits."""
    from torch import nn

    last = None
    for qualname, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mod.out_features == n_classes:
            last = qualname
    if last is None:  # pragma: no cover - conv classifiers (squeezenet)
        return
    parent_name, _, attr = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.Sequential):
        parent[int(attr)] = nn.Identity()
    else:
        setattr(parent, attr, nn.Identity())


# -- transformers --------------------------------------------------------------


class HFImageTower(nn.Module):
    """The image tower of a transformers model, returning pooled features.

    ``pooler_output`` when the model has one (CLS token of ViT/DINOv2,
    pooled map of ConvNeXt, ...), else the mean of the last hidden state;
    followed by the visual projection of a dual encoder (CLIP).
    """

    def __init__(self, tower, projection=None):
        super().__init__()
        self.tower = tower
        self.projection = projection

    def forward(self, x):
        out = self.tower(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            pooled = hidden.mean(dim=1) if hidden.ndim == 3 else hidden.mean(dim=(2, 3))
        pooled = pooled.flatten(1)
        if self.projection is not None:
            pooled = self.projection(pooled)
        return pooled


def _hf_backbone(name, pretrained, seed, owner) -> Backbone:
    import torch
    from transformers import AutoConfig, AutoModel

    from skvem._utils.hub import download_failed, resolve_pretrained

    hint = (
        "To use a local copy, download it once on a machine with internet access (`hf download "
        "ID --local-dir /path/to/folder`, or save_pretrained), then pass "
        "backbone='hf:/path/to/folder'."
    )
    resolved = resolve_pretrained(name, owner=owner, param="backbone", hint=hint)
    location = resolved.location
    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as exc:
        if resolved.kind == "local":
            raise ValueError(f"hf:{name}: {location!r} holds no usable config.json: {exc}") from exc
        raise download_failed(resolved, exc, owner=owner, param="backbone", hint=hint) from exc
    if pretrained in (None, False):
        weights = "random"
        ident = {"weights": None, "seed": seed, "config": config.to_json_string(use_diff=False)}
        model = _seeded(seed, lambda: AutoModel.from_config(config))
    else:
        if pretrained not in ("auto", True):
            raise ValueError(
                "for 'hf:' backbones the weights come with the id or folder; pretrained must be "
                f"'auto', True or None/False; got {pretrained!r}"
            )
        weights = "pretrained"
        ident = {"weights": _dir_identity(location) if resolved.kind == "local" else
                 {"id": name, "revision": getattr(config, "_commit_hash", None)}}
        try:
            model = AutoModel.from_pretrained(location, dtype=torch.float32)
        except OSError as exc:
            if resolved.kind == "local":
                raise
            raise download_failed(resolved, exc, owner=owner, param="backbone", hint=hint) from exc
    model.float()
    tower = getattr(model, "vision_model", None)
    projection = getattr(model, "visual_projection", None) if tower is not None else None
    if tower is None:
        if getattr(config, "vision_config", None) is not None:
            raise ValueError(f"hf:{name}: cannot find the vision tower of a {type(model).__name__}")
        tower = model
    module = HFImageTower(tower, projection)
    del model
    pre = _hf_preprocess(location, config)
    identity = {"family": "hf", "name": name, **ident}
    return Backbone(module, tower, pre, f"hf:{name}", weights, identity)


class _HFGeometric:
    """Resize/crop with a transformers image processor, without its rescaling and normalisation."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image):
        out = self.processor(images=[image], do_rescale=False, do_normalize=False, return_tensors="pt")
        return out["pixel_values"][0].round().clamp(0, 255)


def _hf_preprocess(name, config) -> Preprocess:
    import warnings

    from transformers import AutoImageProcessor

    try:
        proc = AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError):
        proc = None
    if proc is None:
        vc = getattr(config, "vision_config", None) or config
        size = int(getattr(vc, "image_size", 224))
        clip_like = "clip" in str(getattr(config, "model_type", "")).lower()
        mean = (0.48145466, 0.4578275, 0.40821073) if clip_like else IMAGENET_MEAN
        std = (0.26862954, 0.26130258, 0.27577711) if clip_like else IMAGENET_STD
        warnings.warn(
            f"hf:{name} has no image processor (preprocessor_config.json); resizing to {size} px "
            f"and normalising with {'CLIP' if clip_like else 'ImageNet'} statistics",
            UserWarning,
            stacklevel=4,
        )
        geo = _resize_crop(size, "bicubic")
        return Preprocess(geo, mean, std, " ".join(repr(geo).split()))

    geometric = _HFGeometric(proc)
    do_norm = getattr(proc, "do_normalize", True)
    mean = _floats(proc.image_mean) if do_norm else (0.0, 0.0, 0.0)
    std = _floats(proc.image_std) if do_norm else (1.0, 1.0, 1.0)
    scale = float(getattr(proc, "rescale_factor", 1 / 255)) if getattr(proc, "do_rescale", True) else 1.0
    desc = json.loads(proc.to_json_string())
    for key in ("image_mean", "image_std", "rescale_factor", "do_normalize", "do_rescale"):
        desc.pop(key, None)
    return Preprocess(geometric, mean, std, json.dumps(desc, sort_keys=True), scale=scale)


# ---------------------------------------------------------------------------
# Layers and pooling
# ---------------------------------------------------------------------------


def list_layers(backbone: Backbone) -> list:
    """Names of the modules a ``layer`` parameter may select, in forward order."""
    return [name for name, _ in backbone.layer_root.named_modules() if name]


def first_tensor(out):
    """The feature tensor of a module output (tensor, tuple, or transformers output)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for attr in ("last_hidden_state", "pooler_output"):
        value = getattr(out, attr, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, (tuple, list)) and out:
        return first_tensor(out[0])
    if isinstance(out, dict) and out:
        return first_tensor(next(iter(out.values())))
    raise TypeError(f"cannot find a feature tensor in a {type(out).__name__} output")


class _StopForward(Exception):
    """Raised by a hook once the requested layer has run: the rest is not needed."""


class LayerTap:
    """Read the output of one named submodule instead of the network's output.

    The forward pass stops right after that layer (a hook raises), so an
    early layer costs only the computation up to it. A module that runs
    several times per forward pass (a shared activation) yields its first
    call.
    """

    def __init__(self, backbone: Backbone, layer: str):
        names = list_layers(backbone)
        if layer not in names:
            close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
            shown = names if len(names) <= 80 else names[:80] + [f"... ({len(names) - 80} more)"]
            raise ValueError(
                f"layer {layer!r} is not a module of {backbone.name}"
                + (f"; did you mean {close}?" if close else "")
                + f". Available layers: {shown}"
            )
        self.module = backbone.module
        self.target = backbone.layer_root.get_submodule(layer)
        self.layer = layer

    def __call__(self, x):
        captured = {}

        def hook(_module, _inputs, output):
            captured["out"] = output
            raise _StopForward

        handle = self.target.register_forward_hook(hook)
        try:
            self.module(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if "out" not in captured:
            raise RuntimeError(f"layer {self.layer!r} did not run during the forward pass")
        return first_tensor(captured["out"])


def pool_features(out, pooling: str):
    """Reduce a layer output to ``(B, d)``.

    ``(B, T, D)`` token sequences: ``"avg"``/``"auto"`` average the tokens,
    ``"cls"`` takes the first, ``"max"`` the maximum. ``(B, C, H, W)`` maps:
    average or maximum over space. ``"flatten"`` keeps everything. 2-D
    outputs are returned as they are.
    """
    if out.ndim == 2:
        return out
    if pooling == "flatten":
        return out.flatten(1)
    if out.ndim == 3:
        if pooling == "cls":
            return out[:, 0]
        return out.amax(dim=1) if pooling == "max" else out.mean(dim=1)
    if pooling == "cls":
        raise ValueError(f"pooling='cls' needs a (B, tokens, dim) output; got shape {tuple(out.shape)}")
    dims = tuple(range(2, out.ndim))
    return out.amax(dim=dims) if pooling == "max" else out.mean(dim=dims)


def identity_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
