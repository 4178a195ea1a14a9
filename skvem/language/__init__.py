"""Step 1 and 2 of LLM-VEM, the language side: images to captions, captions to embeddings.

:class:`~skvem.language.captioning.CaptionTransformer` describes images with a
vision-language model; :class:`~skvem.language.text.CLIPTextEmbedder` and
:class:`~skvem.language.text.SentenceEmbedder` embed the descriptions. Their
output is a *training target* of :class:`~skvem.vision.AlignedImageFeaturizer`.
"""

from skvem.language.captioning import CaptionTransformer
from skvem.language.text import CLIPTextEmbedder, SentenceEmbedder

__all__ = ["CaptionTransformer", "CLIPTextEmbedder", "SentenceEmbedder"]
