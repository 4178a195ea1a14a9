"""One resolver for open_clip model specs, shared by the image and the text towers.

:func:`resolve_open_clip` turns what a user passes (a built-in architecture
name with a pretrained tag or a checkpoint file, ``hf-hub:ORG/REPO``,
``local-dir:/path`` or a plain folder) into an :class:`OpenClipSpec`,
offline-first and without loading weights; :func:`create_open_clip` builds
the model from it. Both the ``open_clip:`` image backbones
(:mod:`skvem.vision.backbones.open_clip`) and
:class:`~skvem.language.text.CLIPTextEmbedder` go through these two
functions, so a tag trained with QuickGELU (e.g. ``"openai"``) gets it on
both towers: open_clip itself only warns about the mismatch.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

from skvem._utils.hub import (
    ModelNotFoundError,
    cached_snapshot,
    hf_cache_dir,
    is_offline,
    looks_like_path,
    model_not_found,
)

__all__ = ["OpenClipSpec", "create_open_clip", "resolve_open_clip"]


def local_hint(param="model", prefix="", repo="<repo>") -> str:
    """How to point skvem at a local copy of an open_clip model."""
    return (
        "To use a local copy, put the model's open_clip_config.json and its weights "
        "(open_clip_model.safetensors or open_clip_pytorch_model.bin) in one folder and pass "
        f"{param}='{prefix}local-dir:/path/to/folder', or keep {param}='{prefix}<built-in name>' and "
        "pass pretrained='/path/to/weights.safetensors'. (On a machine with internet: "
        f"`hf download {repo} --local-dir /path/to/folder`.)"
    )


@dataclass(frozen=True)
class OpenClipSpec:
    """A checked open_clip spec.

    Attributes
    ----------
    name : str
        What ``open_clip.create_model`` takes (``local-dir:`` folders expanded).
    pretrained : str or None
        A pretrained tag or a checkpoint path; None when the weights come
        with ``name`` (``hf-hub:``, ``local-dir:``) or for a random
        initialisation.
    local : str or None
        The file or folder whose contents identify the weights.
    force_quick_gelu : bool
        The tag was trained with QuickGELU but the architecture uses GELU.
    random : bool
        No weights: a random initialisation.
    """

    name: str
    pretrained: str | None = None
    local: str | None = None
    force_quick_gelu: bool = False
    random: bool = False


def resolve_open_clip(model, pretrained, *, owner="CLIPTextEmbedder", param="model", prefix="") -> OpenClipSpec:
    """Check an open_clip spec without loading weights.

    Parameters
    ----------
    model : str
        A built-in architecture (``open_clip.list_models()``),
        ``"hf-hub:ORG/REPO"``, ``"local-dir:/path"`` or a folder.
    pretrained : str, path, bool or None
        For a built-in name: a tag (``open_clip.list_pretrained_tags_by_model``),
        a checkpoint file, ``"auto"``/``True`` for the first tag, or
        ``None``/``False``/``""`` for a random initialisation. Ignored for
        ``hf-hub:`` and folders, which bring their weights.
    owner, param, prefix : str
        The estimator, its parameter and what precedes ``model`` in it
        (``"open_clip:"`` for backbones), for messages.

    Returns
    -------
    OpenClipSpec

    Raises
    ------
    ValueError
        An unknown built-in name or ``pretrained`` tag.
    ModelNotFoundError
        A folder or file that does not exist, or weights that are neither
        cached nor downloadable (``HF_HUB_OFFLINE``).
    """
    import open_clip

    shown = f"{prefix}{model}"
    if not isinstance(model, str) or not model:
        raise ValueError(f"{owner}: {param} must be an open_clip model name or spec; got {model!r}")
    if pretrained is not None and not isinstance(pretrained, (str, os.PathLike, bool)):
        raise ValueError(f"{owner}: pretrained must be a str, a path, a bool or None; got {pretrained!r}")
    # A plain folder is what a user who saved a model means by local-dir:.
    if not model.startswith(("local-dir:", "hf-hub:")) and os.path.isdir(os.path.expanduser(model)):
        model = "local-dir:" + model

    if model.startswith("local-dir:"):
        folder = os.path.expanduser(model[len("local-dir:") :])
        if not os.path.isdir(folder) or not os.path.isfile(os.path.join(folder, "open_clip_config.json")):
            state = "not found" if not os.path.isdir(folder) else "no open_clip_config.json in it"
            raise model_not_found(owner, param, shown, [f"a local folder {os.path.abspath(folder)!r} ({state})"],
                                  local_hint(param, prefix))
        return OpenClipSpec("local-dir:" + folder, local=folder)

    if model.startswith("hf-hub:"):
        repo_id = model[len("hf-hub:") :]
        if is_offline() and cached_snapshot(repo_id, required_file="open_clip_config.json") is None:
            raise model_not_found(
                owner, param, shown,
                [f"the Hugging Face cache {hf_cache_dir()!r} (open_clip_config.json of {repo_id!r}: not cached)",
                 "the Hugging Face Hub (downloads are disabled: HF_HUB_OFFLINE is set)"],
                local_hint(param, prefix, repo_id),
            )
        return OpenClipSpec(model)

    name = model.replace("/", "-")
    model_cfg = open_clip.get_model_config(name)
    if model_cfg is None:
        close = difflib.get_close_matches(model, open_clip.list_models(), n=5)
        raise ValueError(
            f"{owner}: unknown open_clip model {model!r}" + (f" (did you mean {close}?)" if close else "")
            + ": it is not a built-in open_clip model (see open_clip.list_models()); use "
            f"'{prefix}hf-hub:ORG/NAME' for a Hugging Face repository or '{prefix}local-dir:/path' for "
            "a folder with open_clip_config.json and weights"
        )
    if pretrained in (None, False, ""):
        return OpenClipSpec(name, random=True)
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained in (True, "auto"):
        if not tags:
            raise ValueError(
                f"{owner}: open_clip model {name!r} has no pretrained tags; pass pretrained=<checkpoint "
                "file> or pretrained=None for a random initialisation"
            )
        pretrained = tags[0]
    pretrained = os.fspath(pretrained)
    path = os.path.expanduser(pretrained)
    if os.path.isfile(path):
        return OpenClipSpec(name, pretrained=path, local=path)
    tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
    if not tag_cfg:
        if looks_like_path(pretrained):
            raise model_not_found(owner, "pretrained", pretrained,
                                  [f"a weights file {os.path.abspath(path)!r} (not found)"], local_hint(param, prefix))
        raise ValueError(
            f"{owner}: pretrained={pretrained!r} is neither an open_clip tag of {name!r} nor an "
            f"existing checkpoint file; its tags are {tags}"
        )
    if is_offline() and not _tag_cached(tag_cfg):
        hub = tag_cfg.get("hf_hub", "").rstrip("/")
        raise model_not_found(
            owner, "pretrained", pretrained,
            [f"the Hugging Face cache {hf_cache_dir()!r} (weights of {name!r}/{pretrained!r} from "
             f"{hub or tag_cfg.get('url')!r}: not cached)",
             "the Hugging Face Hub (downloads are disabled: HF_HUB_OFFLINE is set)"],
            local_hint(param, prefix, hub or "<repo>"),
        )
    # Tags trained with QuickGELU (e.g. "openai") give subtly wrong
    # features on the plain-GELU architecture; open_clip only warns.
    quick = bool(tag_cfg.get("quick_gelu", False)) and not model_cfg.get("quick_gelu", False)
    return OpenClipSpec(name, pretrained=pretrained, force_quick_gelu=quick)


def _tag_cached(tag_cfg) -> bool:
    """Whether the weights of a pretrained tag can be loaded without a download."""
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        # open_clip's convention: "org/repo/" (default file names) or "org/repo/file".
        repo_id, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith(".bin"):
            names.insert(0, filename[: -len(".bin")] + ".safetensors")
        if any(cached_snapshot(repo_id, required_file=f) for f in names):
            return True
    url = tag_cfg.get("url", "")
    if url:
        return os.path.isfile(os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url)))
    return False


_DOWNLOAD_WORDS = ("download", "connect", "offline", "hub", "404", "resolve", "not found",
                   "localentrynotfound", "http", "timed out")


def create_open_clip(spec: OpenClipSpec, *, owner, param="model", prefix="", **kwargs):
    """``open_clip.create_model_and_transforms`` for ``spec``: ``(model, validation transform)``.

    ``kwargs`` go to open_clip (device, precision, ...); the weights and
    ``force_quick_gelu`` come from ``spec``. A failed download becomes a
    :class:`~skvem._utils.hub.ModelNotFoundError` saying what was looked for.
    """
    import open_clip

    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.name, pretrained=spec.pretrained, force_quick_gelu=spec.force_quick_gelu, **kwargs
        )
    except (ModelNotFoundError, ValueError):
        raise
    except Exception as exc:
        text = f"{type(exc).__name__} {exc}".lower()
        if spec.local is None and not spec.random and any(word in text for word in _DOWNLOAD_WORDS):
            raise model_not_found(
                owner, param if spec.pretrained is None else "pretrained",
                f"{prefix}{spec.name}" if spec.pretrained is None else spec.pretrained,
                [f"open_clip's download of {spec.name!r} / {spec.pretrained!r} (failed)",
                 f"the Hugging Face cache {hf_cache_dir()!r} (not cached)"],
                local_hint(param, prefix), cause=exc,
            ) from exc
        raise
    return model, preprocess
