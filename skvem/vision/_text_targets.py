"""Text targets of :class:`~skvem.vision.aligned.AlignedImageFeaturizer`: a fitted ``text`` step's output, checked."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

__all__ = ["compute_text_targets"]


def _step_name(step):
    return type(step).__name__


def _run_text_step(step, data, name):
    if hasattr(step, "fit_transform"):
        return step.fit_transform(data)
    if hasattr(step, "fit") and hasattr(step, "transform"):
        return step.fit(data).transform(data)
    raise ValueError(
        f"text step {name} must be a scikit-learn transformer (fit/transform) or a callable; "
        f"got a {type(step).__name__}"
    )


def _n_rows(data):
    from sklearn.utils.validation import _num_samples

    try:
        return _num_samples(data)
    except TypeError:
        return None


def compute_text_targets(text, images):
    """Fit a clone of ``text`` on ``images`` and return checked ``(n, d)`` float32 targets.

    A :class:`~sklearn.pipeline.Pipeline` runs step by step so that an
    error names the step that went wrong (e.g. a captioner that returned
    fewer captions than images).
    """
    from sklearn.pipeline import Pipeline

    n = len(images)
    if isinstance(text, Pipeline):
        pipe = clone(text)
        steps = [(f"{name!r} ({_step_name(s)})", s) for name, s in pipe.steps
                 if s is not None and s != "passthrough"]
    elif hasattr(text, "fit") or hasattr(text, "fit_transform"):
        steps = [(_step_name(text), clone(text))]
    elif callable(text):
        steps = [(getattr(text, "__name__", type(text).__name__), text)]
    else:
        raise ValueError(
            "text must be None, a scikit-learn transformer mapping images to vectors "
            f"(e.g. make_pipeline(CaptionTransformer(...), CLIPTextEmbedder(...))) or a callable; got {text!r}"
        )
    if not steps:
        raise ValueError("text is a pipeline without steps; use text=None to train without language")
    data = images
    for name, step in steps:
        where = f"the text step {name}"
        data = step(data) if (callable(step) and not hasattr(step, "fit")) else _run_text_step(step, data, name)
        rows = _n_rows(data)
        if rows != n:
            raise ValueError(f"{where} returned {rows} rows for {n} images; it must return one per image")
    if hasattr(data, "toarray"):  # sparse output, e.g. TF-IDF
        data = data.toarray()
    try:
        out = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where} must return numeric vectors, shape (n_images, n_dims); got {type(data).__name__} "
            f"({exc}). Add an embedding step (e.g. CLIPTextEmbedder) after the captioner."
        ) from exc
    if out.ndim != 2 or out.shape[1] < 1:
        raise ValueError(f"{where} must return a 2-D array (n_images, n_dims); got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.all(np.isfinite(out), axis=1)))
        raise ValueError(f"{where} returned NaN or infinite values for {bad} of {n} images")
    return out
