"""Images to captions: :class:`CaptionTransformer`.

This public module path is kept stable; the code lives in :mod:`skvem.language.captioning`.
"""

from skvem.language.captioning import CaptionTransformer, DEFAULT_CAPTIONER, DEFAULT_PROMPT

__all__ = ["CaptionTransformer", "DEFAULT_CAPTIONER", "DEFAULT_PROMPT"]
