"""Captioning engines: what turns a batch of PIL images into captions.

``"hf"`` (:mod:`~skvem.language.engines.hf`) runs ``transformers``'
``generate`` in this process; ``"vllm"`` (:mod:`~skvem.language.engines.vllm`)
runs the same model, prompt and chat template through vLLM's offline batched
generation. Both return a callable ``f(list of PIL images, *, prompt,
max_new_tokens, num_beams, generate_kwargs) -> list of str`` and write into the
same cache entries: the engine, like the device, is not part of a caption's
cache key.
"""

from __future__ import annotations

__all__ = ["ENGINES", "check_engine_params", "load_engine"]

ENGINES = ("hf", "vllm")


def check_engine_params(engine, *, num_beams, generate_kwargs, engine_kwargs, owner):
    """Raise ``ValueError`` for settings ``engine`` cannot honour."""
    if engine not in ENGINES:
        raise ValueError(f"{owner}: engine must be one of {ENGINES}; got {engine!r}")
    if engine_kwargs is not None and not isinstance(engine_kwargs, dict):
        raise ValueError(f"{owner}: engine_kwargs must be a dict or None; got {engine_kwargs!r}")
    if engine == "vllm":
        from skvem.language.engines.vllm import check_vllm_params

        check_vllm_params(num_beams=num_beams, generate_kwargs=generate_kwargs, owner=owner)
    elif engine_kwargs:
        raise ValueError(f"{owner}: engine_kwargs are options of engine='vllm'; engine is 'hf'")


def load_engine(engine, resolved, *, device, dtype, stamp, engine_kwargs, owner):
    """Load (or reuse) ``resolved`` with ``engine``; returns the captioning callable."""
    if engine == "vllm":
        from skvem.language.engines.vllm import load_vllm_captioner

        return load_vllm_captioner(
            resolved, dtype=dtype, engine_kwargs=engine_kwargs or {}, owner=owner
        )
    from skvem.language._hf_captioner import load_hf_captioner

    return load_hf_captioner(resolved, device=device, dtype=dtype, stamp=stamp, owner=owner)
