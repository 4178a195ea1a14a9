"""``"hf:ID_OR_DIR"`` backbones: a transformers vision model or the vision tower of a dual encoder."""

from __future__ import annotations

import json

from torch import nn

from skvem.vision.backbones._base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    Preprocess,
    _dir_identity,
    _floats,
    _resize_crop,
    _seeded,
)

__all__ = ["HFImageTower", "hf_backbone"]


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


def hf_backbone(name, pretrained, seed, owner) -> Backbone:
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
