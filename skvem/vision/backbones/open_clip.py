"""``"open_clip:NAME"`` backbones: the image tower of an open_clip model."""

from __future__ import annotations

import difflib
import os

from skvem.vision.backbones._base import Backbone, _dir_identity, _file_identity, _not_found, _seeded, _split_compose

__all__ = ["open_clip_backbone"]


def open_clip_backbone(name, pretrained, seed, owner) -> Backbone:
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
