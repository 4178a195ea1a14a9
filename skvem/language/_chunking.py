"""Embedding captions longer than a text encoder's context.

A CLIP text tower reads 77 tokens and a sentence-transformers model
``max_seq_length`` tokens; both silently cut anything longer, and the
detailed descriptions a vision-language model writes are often two or three
times that. :func:`embed_texts` instead splits a long text into consecutive
chunks that fit (whole sentences where possible, word windows for a sentence
that is itself too long), embeds every chunk, and averages the chunk
embeddings (unit-normalised first when ``normalize=True``, and the mean
renormalised), so every word of the caption contributes.
:class:`skvem.language.text.CLIPTextEmbedder` and :class:`skvem.language.text.SentenceEmbedder`
share this code; each supplies its own encoder and token counter.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from skvem._utils.progress import progress

__all__ = ["LONG_TEXT_OPTIONS", "split_sentences", "chunk_text", "embed_texts"]

LONG_TEXT_OPTIONS = ("chunk", "truncate")

# A sentence ends at ., !, ? or ; followed by white space, or at a line break.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\s*\n+\s*")


def split_sentences(text: str) -> list:
    """Split ``text`` into sentences (non-empty, stripped).

    Examples
    --------
    >>> split_sentences("A red car. It is parked!  Next to a tree")
    ['A red car.', 'It is parked!', 'Next to a tree']
    """
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()]


def _word_windows(sentence, count_tokens, max_tokens):
    """Consecutive runs of words of ``sentence``, each as long as still fits."""
    words = sentence.split()
    out = []
    start = 0
    while start < len(words):
        # Binary search for the longest run from ``start`` that fits; a single
        # word that does not fit on its own is kept (the tokenizer cuts it).
        lo, hi = start + 1, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_tokens(" ".join(words[start:mid])) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        out.append(" ".join(words[start:lo]))
        start = lo
    return out


def chunk_text(text: str, count_tokens, max_tokens: int) -> list:
    """Split ``text`` into consecutive chunks of at most ``max_tokens`` tokens.

    Sentences are packed greedily into chunks; a sentence longer than
    ``max_tokens`` on its own is cut into word windows. A text that fits is
    returned as its only chunk, unchanged.

    Parameters
    ----------
    text : str
    count_tokens : callable
        ``count_tokens(str) -> int``, the number of tokens the encoder sees
        (special tokens included).
    max_tokens : int
        The encoder's context length.

    Returns
    -------
    chunks : list of str
        At least one element.
    """
    if count_tokens(text) <= max_tokens:
        return [text]
    pieces = []
    for sentence in split_sentences(text):
        if count_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
        else:
            pieces.extend(_word_windows(sentence, count_tokens, max_tokens))
    chunks = []
    current = None
    for piece in pieces:
        if current is None:
            current = piece
            continue
        candidate = f"{current} {piece}"
        if count_tokens(candidate) <= max_tokens:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current is not None:
        chunks.append(current)
    return chunks or [text]


def _unit(rows):
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    # A zero vector stays zero rather than becoming NaN.
    return rows / np.where(norms > 0, norms, 1.0)


def embed_texts(
    texts,
    *,
    encode,
    count_tokens,
    max_tokens,
    dim,
    long_text="chunk",
    normalize=True,
    batch_size=64,
    verbose=False,
    owner="text encoder",
    encode_all=None,
):
    """Embed ``texts``, handling those longer than the context.

    Parameters
    ----------
    texts : list of str
    encode : callable
        ``encode(list of str) -> ndarray (m, dim)``; texts that do not fit
        are cut by the encoder's own tokenizer.
    count_tokens : callable
        ``count_tokens(str) -> int``, special tokens included.
    max_tokens : int
        The encoder's context length.
    dim : int
        Embedding size (for empty input).
    long_text : {"chunk", "truncate"}
        ``"chunk"``: average the embeddings of chunks that fit (see
        :func:`chunk_text`). ``"truncate"``: let the tokenizer cut.
    normalize : bool
        Unit-normalise each output row (and each chunk before averaging).
    batch_size : int
        Texts (chunks) per call of ``encode``.
    verbose : bool
        Show a progress bar.
    owner : str
        Named in the warning about long texts.
    encode_all : callable, optional
        ``encode_all(texts, batch_size, verbose) -> ndarray``, for encoders
        that batch (and show progress) themselves; replaces ``encode``.

    Returns
    -------
    embeddings : ndarray of float32, shape (n_texts, dim)

    Warns
    -----
    UserWarning
        Once per call, when some texts are longer than ``max_tokens``: how
        many, and what was done with them.
    """
    n = len(texts)
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    pieces, owners = [], []
    n_long = 0
    for i, text in enumerate(texts):
        chunks = [text]
        if count_tokens(text) > max_tokens:
            n_long += 1
            if long_text == "chunk":
                chunks = chunk_text(text, count_tokens, max_tokens)
        pieces.extend(chunks)
        owners.extend([i] * len(chunks))
    if n_long:
        if long_text == "chunk":
            how = (
                "each was split into sentence chunks that fit, and the chunk embeddings "
                "were averaged (long_text='chunk')"
            )
        else:
            how = (
                "they were truncated to the context (long_text='truncate'); pass "
                "long_text='chunk' to embed all of their text"
            )
        warnings.warn(
            f"{owner}: {n_long} of {n} captions are longer than the {max_tokens}-token "
            f"context of the text encoder; {how}.",
            UserWarning,
            stacklevel=4,
        )
    if encode_all is not None:
        emb = np.asarray(encode_all(pieces, batch_size, verbose), dtype=np.float32)
    else:
        # Batches of similar length: an encoder that pads to the longest text
        # of a batch (trimmed CLIP) then wastes no work.
        order = np.argsort([len(p) for p in pieces], kind="stable")
        emb = np.empty((len(pieces), dim), dtype=np.float32)
        starts = range(0, len(pieces), batch_size)
        for start in progress(starts, verbose=verbose, desc=f"{owner}: embedding", unit="batch"):
            idx = order[start : start + batch_size]
            emb[idx] = np.asarray(encode([pieces[i] for i in idx]), dtype=np.float32)
    if len(pieces) == n:  # nothing was chunked
        return (_unit(emb) if normalize else emb).astype(np.float32, copy=False)
    if normalize:
        emb = _unit(emb)
    owners = np.asarray(owners)
    sums = np.zeros((n, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, emb)
    mean = sums / np.bincount(owners, minlength=n)[:, None]
    if normalize:
        mean = _unit(mean)
    return mean.astype(np.float32)
