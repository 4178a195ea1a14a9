"""Captioning with any model ``transformers.AutoModelForImageTextToText`` loads.

Three families are handled, told apart after loading:

``"chat"``
    The processor has a chat template (SmolVLM/Idefics3, Qwen2-VL, LLaVA,
    ...): ``prompt`` becomes one user turn holding the image and the text,
    rendered by the template with the generation prompt appended. Prompts are
    left-padded, so every row of a batch ends where generation starts.
``"prompted"``
    Task-prompt models without a chat template (Florence-2, PaliGemma):
    ``prompt`` is given to the processor as is (e.g.
    ``"<MORE_DETAILED_CAPTION>"``, ``"describe en"``).
``"captioner"``
    Everything else (BLIP, GIT, ...): images only; ``prompt`` is not used.

The answer is the generated continuation only: for decoder-only models the
prompt tokens that ``generate`` echoes back are cut, special tokens are
skipped when decoding, and the text is stripped. Generation is greedy (or
beam search) so captions are deterministic, which is what makes them
cacheable.
"""

from __future__ import annotations

import warnings

from skvem._utils.hub import ResolvedModel, download_failed, memoized
from skvem._utils.image_bounds import limit_aspect_ratio
from skvem._utils.torch_utils import map_batches_with_backoff, resolve_device, resolve_dtype

__all__ = ["HFCaptioner", "load_hf_captioner", "caption_family", "render_chat_prompt"]

# Task-prompt models whose processor takes the prompt text directly.
_PROMPTED_MODEL_TYPES = {"florence2", "paligemma"}


def _chat_template(processor):
    template = getattr(processor, "chat_template", None)
    if not template:
        template = getattr(getattr(processor, "tokenizer", None), "chat_template", None)
    return template


def caption_family(processor, config):
    """``"chat"``, ``"prompted"`` or ``"captioner"`` (see the module documentation)."""
    if _chat_template(processor):
        return "chat"
    if getattr(config, "model_type", "") in _PROMPTED_MODEL_TYPES:
        return "prompted"
    return "captioner"


def render_chat_prompt(processor, prompt):
    """One user turn holding the image and ``prompt``, with the generation prompt appended."""
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt or ""}]}
    ]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class HFCaptioner:
    """A loaded captioning model and its processor.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    processor : transformers.ProcessorMixin
    device : torch.device
    dtype : torch.dtype
    """

    def __init__(self, model, processor, device, dtype):
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.tokenizer = getattr(processor, "tokenizer", processor)
        get_text = getattr(model.config, "get_text_config", None)
        self.text_config = get_text(decoder=True) if get_text is not None else model.config
        self._warned = set()  # max_new_tokens values already clamped with a warning
        self._fits = None  # images per generate() call after an out-of-memory error
        self.family = caption_family(processor, model.config)
        if self.family != "captioner" and not getattr(model.config, "is_encoder_decoder", False):
            # Decoder-only generation continues the last position of every
            # row: pad on the left so that position is the prompt's end.
            self.tokenizer.padding_side = "left"
        if (
            getattr(self.tokenizer, "pad_token", None) is None
            and getattr(self.tokenizer, "eos_token", None) is not None
        ):
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Deterministic decoding: drop the sampling settings a checkpoint's
        # generation_config may carry, so they neither apply nor warn. The
        # model is skvem's own copy, so editing its config in place is safe.
        config = model.generation_config
        config.do_sample = False
        for name in ("temperature", "top_p", "top_k", "min_p", "typical_p"):
            if getattr(config, name, None) is not None:
                setattr(config, name, None)
        if (
            config.pad_token_id is None
            and getattr(self.tokenizer, "pad_token_id", None) is not None
        ):
            config.pad_token_id = self.tokenizer.pad_token_id

    def _render_prompt(self, prompt):
        return render_chat_prompt(self.processor, prompt)

    def _inputs(self, images, prompt):
        n = len(images)
        # Processors that resize the short side first (CLIP-style) would blow
        # a long thin strip up to gigabytes; its centre is what they keep.
        images = [limit_aspect_ratio(im) for im in images]
        if self.family == "chat":
            text = self._render_prompt(prompt)
            try:
                inputs = self.processor(
                    text=[text] * n,
                    images=[[im] for im in images],
                    padding=True,
                    return_tensors="pt",
                )
            except (TypeError, ValueError):
                # A few processors want a flat list of images.
                inputs = self.processor(
                    text=[text] * n, images=list(images), padding=True, return_tensors="pt"
                )
        elif self.family == "prompted":
            inputs = self.processor(
                text=[prompt or ""] * n, images=list(images), padding=True, return_tensors="pt"
            )
        else:
            inputs = self.processor(images=list(images), return_tensors="pt")
        import torch

        out = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if torch.is_floating_point(value):
                    value = value.to(self.dtype)
            out[key] = value
        return out

    def _room(self, inputs, max_new_tokens):
        """``max_new_tokens``, clamped to the positions the text decoder has left after the prompt.

        Learned position embeddings (BLIP, GIT, OPT, ...) index out of range
        past ``max_position_embeddings``: torch's ``IndexError`` says nothing
        about the cause, so stop there with one warning instead.
        """
        limit = getattr(self.text_config, "max_position_embeddings", None)
        if not limit:
            return max_new_tokens
        ids = inputs.get("input_ids")
        # Encoder-decoder captioners start from one start-of-text token.
        used = int(ids.shape[1]) if ids is not None else 1
        room = int(limit) - used
        if room < 1:
            raise ValueError(
                f"CaptionTransformer: the prompt takes {used} tokens, but the model's text decoder "
                f"holds {limit} positions (max_position_embeddings); use a shorter prompt"
            )
        if max_new_tokens > room and max_new_tokens not in self._warned:
            self._warned.add(max_new_tokens)
            warnings.warn(
                f"CaptionTransformer: max_new_tokens={max_new_tokens} exceeds what the model can "
                f"generate: its text decoder holds {limit} positions (max_position_embeddings) and "
                f"the prompt takes {used}; generating at most {room} new tokens",
                UserWarning,
                stacklevel=4,
            )
        return min(max_new_tokens, room)

    def _generate(self, images, prompt, max_new_tokens, num_beams, generate_kwargs):
        import torch

        inputs = self._inputs(images, prompt)
        with torch.inference_mode():
            sequences = self.model.generate(
                **inputs,
                max_new_tokens=self._room(inputs, max_new_tokens),
                num_beams=num_beams,
                do_sample=False,
                **(generate_kwargs or {}),
            )
        if not isinstance(sequences, torch.Tensor):  # return_dict_in_generate=True
            sequences = sequences.sequences
        prompt_ids = inputs.get("input_ids")
        if prompt_ids is not None and sequences.shape[1] >= prompt_ids.shape[1]:
            length = prompt_ids.shape[1]
            # Decoder-only models return prompt + answer; encoder-decoders
            # return the answer only.
            if torch.equal(sequences[:, :length], prompt_ids):
                sequences = sequences[:, length:]
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return [t.strip() for t in texts]

    def __call__(self, images, *, prompt, max_new_tokens, num_beams, generate_kwargs=None):
        """Caption a list of PIL images; returns a list of ``str``.

        A batch that runs out of accelerator memory is retried in smaller
        slices, down to one image (with a warning).
        """
        start = min(len(images), self._fits or len(images))
        outputs, size = map_batches_with_backoff(
            lambda part: self._generate(part, prompt, max_new_tokens, num_beams, generate_kwargs),
            list(images), start, device=self.device, what="CaptionTransformer",
        )
        if size < start:  # later batches start where memory sufficed
            self._fits = size
        return [caption for part in outputs for caption in part]


def load_hf_captioner(
    resolved: ResolvedModel, *, device="auto", dtype="auto", stamp=None, owner="CaptionTransformer"
):
    """Load (or reuse) the captioner at ``resolved`` on ``device``.

    Parameters
    ----------
    resolved : skvem._utils.hub.ResolvedModel
        From :func:`skvem._utils.hub.resolve_pretrained`.
    device, dtype : str
        See :func:`skvem._utils.torch_utils.resolve_device` / ``resolve_dtype``.
    stamp : hashable, optional
        Identifies the folder's contents, so a changed folder is reloaded.

    Returns
    -------
    HFCaptioner

    Raises
    ------
    skvem._utils.hub.ModelNotFoundError
        When a Hugging Face id cannot be downloaded.
    """
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    key = (resolved.location, resolved.revision, stamp, str(dev), str(torch_dtype))

    def load():
        from transformers import AutoModelForImageTextToText, AutoProcessor

        kwargs = {}
        if resolved.kind == "hub" and resolved.revision is not None:
            kwargs["revision"] = resolved.revision
        try:
            processor = AutoProcessor.from_pretrained(resolved.location, **kwargs)
            model = AutoModelForImageTextToText.from_pretrained(
                resolved.location, dtype=torch_dtype, **kwargs
            )
        except OSError as exc:
            if resolved.kind == "hub":
                raise download_failed(resolved, exc, owner=owner, param="model") from exc
            raise
        model.to(dev)
        model.eval()
        return HFCaptioner(model, processor, dev, torch_dtype)

    return memoized("captioner", key, load)
