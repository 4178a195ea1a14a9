"""``"open_clip:NAME"`` backbones: the image tower of an open_clip model.

``NAME`` and ``pretrained`` are resolved by :func:`skvem._utils.open_clip_spec.resolve_open_clip`,
the resolver the text tower (:class:`~skvem.language.text.CLIPTextEmbedder`) uses too.
"""

from __future__ import annotations

from skvem._utils.open_clip_spec import create_open_clip, resolve_open_clip
from skvem.vision.backbones._base import Backbone, _dir_identity, _file_identity, _seeded, _split_compose

__all__ = ["open_clip_backbone"]


def open_clip_backbone(name, pretrained, seed, owner) -> Backbone:
    """The image tower of open_clip's ``name`` with ``pretrained`` weights (None: random, seeded)."""
    kw = dict(owner=owner, param="backbone", prefix="open_clip:")
    spec = resolve_open_clip(name, pretrained, **kw)
    if spec.random:
        ident = {"weights": None, "seed": seed}
    elif spec.local is not None:
        ident = {"weights": _file_identity(spec.local) if spec.pretrained else _dir_identity(spec.local)}
    else:
        ident = {"weights": spec.pretrained or spec.name}
    if spec.force_quick_gelu:
        ident["force_quick_gelu"] = True  # features of the same tag before the fix differ
    model, preprocess = _seeded(
        seed if spec.random else None,
        lambda: create_open_clip(spec, device="cpu", pretrained_text=False, **kw),
    )
    visual = model.visual
    del model  # the text tower is not needed
    pre = _split_compose(preprocess, f"open_clip model {name!r}")
    identity = {"family": "open_clip", "name": name, **ident}
    return Backbone(visual, visual, pre, f"open_clip:{name}", "random" if spec.random else "pretrained", identity)
