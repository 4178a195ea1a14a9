"""Validation of the captions that text steps take as ``X``."""

from __future__ import annotations

import numpy as np

__all__ = ["check_texts", "check_unicode"]


def check_unicode(text: str, where: str) -> str:
    """Refuse a string that is not valid Unicode text (a lone surrogate such as ``"\\ud800"``).

    Such strings come from broken decoding (``surrogateescape``, JSON with a
    half escape pair); sqlite, tokenizers and UTF-8 files cannot hold them.
    Rather than changing the text silently, the error names where it is.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} is not valid Unicode text: it holds the lone surrogate "
            f"{text[exc.start]!r} at character {exc.start}; repair it, e.g. with "
            "text.encode('utf-8', 'replace').decode('utf-8')"
        ) from None
    return text


def check_texts(X, *, owner="this estimator") -> list:
    """Return ``X`` as a list of ``str``, or raise a clear error.

    Parameters
    ----------
    X : sequence of str
        A list or tuple, a 1-D ndarray of str or object, a pandas Series, or
        a single column: a 2-D array or DataFrame shaped ``(n, 1)`` (what
        ``ColumnTransformer`` passes). Empty strings are allowed.
    owner : str
        Named in error messages.

    Returns
    -------
    texts : list of str, length n

    Raises
    ------
    TypeError
        For a bare string, or any element that is not a ``str`` (the message
        names its index and type).
    ValueError
        For arrays with more than one column, or a caption that is not valid
        Unicode (a lone surrogate; the message names its index).
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{owner} expects a sequence of captions, got a single {type(X).__name__}; "
            "wrap it in a list: [text]"
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(f"{owner} expects one column of captions; got {X.shape[1]} columns")
        X = X.iloc[:, 0]
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas Series
        X = X.to_numpy(dtype=object)
    if isinstance(X, np.ndarray):
        if X.ndim == 2:
            if X.shape[1] != 1:
                raise ValueError(
                    f"{owner} expects captions shaped (n,) or (n, 1); got shape {X.shape}"
                )
            X = X[:, 0]
        elif X.ndim != 1:
            raise ValueError(f"{owner} expects captions shaped (n,) or (n, 1); got shape {X.shape}")
        items = X.tolist()
    elif isinstance(X, (dict, set, frozenset)):
        raise TypeError(
            f"{owner} expects an ordered sequence of captions (one per image), got a "
            f"{type(X).__name__}, whose order is not the images'"
        )
    else:
        try:
            items = list(X)
        except TypeError:
            raise TypeError(f"{owner} expects a sequence of str, got {type(X).__name__}") from None
        # A list of one-element rows is the (n, 1) column form.
        if items and all(isinstance(x, (list, tuple)) and len(x) == 1 for x in items):
            items = [x[0] for x in items]
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(
                f"{owner} expects every caption to be a str; caption {i} is "
                f"{type(text).__name__} ({text!r:.60})"
            )
        check_unicode(text, f"{owner}: caption {i}")
    return [str(t) for t in items]
