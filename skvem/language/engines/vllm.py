"""Captioning through vLLM's offline batched generation (``pip install skvem[vllm]``).

The model, prompt and chat template are the ones the ``"hf"`` engine uses: the
prompt is rendered by the model's own processor
(:func:`skvem.language._hf_captioner.render_chat_prompt`), each image goes to
``LLM.generate`` as ``{"prompt": text, "multi_modal_data": {"image": pil}}``,
and decoding is greedy (``temperature=0``), so captions land in the same cache
entries. vLLM computes with other kernels than ``transformers``, so a caption
may differ from the ``"hf"`` engine's in rare near-ties, as between dtypes.

``engine_kwargs`` go to ``vllm.LLM`` as they are: ``tensor_parallel_size`` to
split a large model over the node's GPUs, ``gpu_memory_utilization``,
``max_model_len``, ``max_num_seqs``, ... For data parallelism run one process
per GPU (``skvem caption --shard``) or one Ray actor per GPU (``--ray``).

vLLM needs a CUDA GPU; this module is tested with a stand-in ``vllm`` module
that records the calls, not with vLLM itself.
"""

from __future__ import annotations

from skvem._utils.hub import memoized

__all__ = ["VLLMCaptioner", "check_vllm_params", "load_vllm_captioner"]

# ``generate`` arguments of transformers that vLLM's SamplingParams take,
# under vLLM's names.
_SAMPLING_NAMES = {
    "repetition_penalty": "repetition_penalty",
    "min_new_tokens": "min_tokens",
}


def check_vllm_params(*, num_beams, generate_kwargs, owner):
    """Raise ``ValueError`` for settings the vLLM engine cannot reproduce."""
    if num_beams != 1:
        raise ValueError(
            f"{owner}: engine='vllm' decodes greedily; num_beams must be 1, got {num_beams!r} "
            "(use engine='hf' for beam search)"
        )
    unsupported = sorted(set(generate_kwargs or {}) - set(_SAMPLING_NAMES))
    if unsupported:
        raise ValueError(
            f"{owner}: generate_kwargs {unsupported} have no vLLM equivalent; engine='vllm' "
            f"supports {sorted(_SAMPLING_NAMES)}"
        )


def _import_vllm(owner):
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            f"{owner}(engine='vllm') needs vLLM, which is not installed: "
            "`pip install skvem[vllm]` (vLLM runs on CUDA GPUs only), or use engine='hf'"
        ) from exc
    return vllm


class VLLMCaptioner:
    """A ``vllm.LLM`` and the prompt rendering of its model.

    Parameters
    ----------
    llm : vllm.LLM
    processor : transformers.ProcessorMixin
        The model's processor; only its chat template is used.
    family : {"chat", "prompted", "captioner"}
    sampling_params : type
        ``vllm.SamplingParams``.
    """

    def __init__(self, llm, processor, family, sampling_params):
        self.llm = llm
        self.processor = processor
        self.family = family
        self.sampling_params = sampling_params

    def _prompt(self, prompt):
        from skvem.language._hf_captioner import render_chat_prompt

        if self.family == "chat":
            return render_chat_prompt(self.processor, prompt)
        # Task-prompt models take the prompt as is; plain captioners none.
        return (prompt or "") if self.family == "prompted" else ""

    def __call__(self, images, *, prompt, max_new_tokens, num_beams, generate_kwargs=None):
        """Caption a list of PIL images; returns a list of ``str`` in their order."""
        check_vllm_params(num_beams=num_beams, generate_kwargs=generate_kwargs, owner="vllm")
        options = {_SAMPLING_NAMES[k]: v for k, v in (generate_kwargs or {}).items()}
        params = self.sampling_params(
            n=1, temperature=0.0, max_tokens=int(max_new_tokens), **options
        )
        text = self._prompt(prompt)
        requests = [{"prompt": text, "multi_modal_data": {"image": im}} for im in images]
        # LLM.generate schedules all requests at once (continuous batching)
        # and returns one output per request, in the order of the requests.
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        if len(outputs) != len(images):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(images)} images")
        return [o.outputs[0].text.strip() for o in outputs]


def load_vllm_captioner(resolved, *, dtype="auto", engine_kwargs=None, owner="CaptionTransformer"):
    """Load (or reuse) the model at ``resolved`` in a ``vllm.LLM``.

    Raises
    ------
    ImportError
        When vLLM is not installed.
    ValueError
        When vLLM cannot run the model (its message names the model and its
        architectures).
    """
    vllm = _import_vllm(owner)
    engine_kwargs = dict(engine_kwargs or {})
    key = (resolved.location, resolved.revision, str(dtype), repr(sorted(engine_kwargs.items())))

    def load():
        from transformers import AutoConfig, AutoProcessor

        from skvem.language._hf_captioner import caption_family

        kwargs = {"revision": resolved.revision} if resolved.revision else {}
        processor = AutoProcessor.from_pretrained(resolved.location, **kwargs)
        config = AutoConfig.from_pretrained(resolved.location, **kwargs)
        options = {
            "model": str(resolved.location),
            "dtype": "auto" if dtype == "auto" else str(dtype),
            "limit_mm_per_prompt": {"image": 1},
            "seed": 0,
            **kwargs,
            **engine_kwargs,
        }
        try:
            llm = vllm.LLM(**options)
        except (ValueError, NotImplementedError, RuntimeError) as exc:
            archs = getattr(config, "architectures", None) or [getattr(config, "model_type", "?")]
            raise ValueError(
                f"{owner}(engine='vllm'): vLLM {getattr(vllm, '__version__', '')} cannot run "
                f"{resolved.spec!r} (architectures {archs}): {exc}; use engine='hf'"
            ) from exc
        family = caption_family(processor, config)
        return VLLMCaptioner(llm, processor, family, vllm.SamplingParams)

    return memoized("captioner-vllm", key, load)
