"""``"timm:NAME"`` backbones: a timm model without its classifier."""

from __future__ import annotations

import difflib
import os

from skvem.vision.backbones._base import Backbone, _file_identity, _not_found, _seeded, _split_compose

__all__ = ["timm_backbone"]


def timm_backbone(name, pretrained, seed, owner) -> Backbone:
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
