"""``"torchvision:NAME"`` backbones: a torchvision classification model without its classifier."""

from __future__ import annotations

import difflib
import os

from skvem.vision.backbones._base import (
    Backbone,
    Preprocess,
    _file_identity,
    _floats,
    _not_found,
    _resize_crop,
    _seeded,
)

__all__ = ["torchvision_backbone"]


def torchvision_backbone(name, pretrained, seed, owner) -> Backbone:
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
