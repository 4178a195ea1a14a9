"""Captions to embeddings: :class:`CLIPTextEmbedder`, :class:`SentenceEmbedder`.

This public module path is kept stable; the code lives in :mod:`skvem.language.text`.
"""

from skvem.language.text import CLIPTextEmbedder, SentenceEmbedder

__all__ = ["CLIPTextEmbedder", "SentenceEmbedder"]
