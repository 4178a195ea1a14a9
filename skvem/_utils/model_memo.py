"""Loaded models shared by the clones of an estimator, one per kind."""

from __future__ import annotations

import threading
from collections import OrderedDict

from skvem._utils.torch_utils import free_accelerator_memory

__all__ = ["PicklesWithoutLoadedModels", "memoized", "release_models"]


class PicklesWithoutLoadedModels:
    """Leave the models an estimator loads on demand out of its pickle.

    Pretrained weights (GBs for a captioner) are reloaded from their source
    when needed; trained state is kept. Subclasses name the attributes in
    ``_loaded_attributes``. List this mixin before ``BaseEstimator``.
    """

    _loaded_attributes: tuple = ()

    def __getstate__(self):
        # A copy: on Python 3.11+ the base state may be the live __dict__.
        state = dict(super().__getstate__())
        for name in self._loaded_attributes:
            state.pop(name, None)
        return state


_models: OrderedDict[tuple, object] = OrderedDict()
_models_lock = threading.RLock()
# Models kept per kind (e.g. "open_clip", "captioner"): the last one used.
_PER_KIND = 1


def memoized(kind: str, key, loader):
    """Return the loaded model for ``(kind, key)``, loading it on first use.

    The last model loaded of each ``kind`` stays in memory, so the clones
    that ``cross_val_score`` and ``GridSearchCV`` make of an estimator reuse
    the same frozen pretrained weights instead of reading them from disk for
    every fold. Only use it for models that callers never modify.
    :func:`release_models` drops them.

    Parameters
    ----------
    kind : str
        A family of models; one model per family is kept.
    key : hashable
        Everything that determines the loaded object (spec, device, dtype).
    loader : callable
        ``loader()`` loads the model.
    """
    full = (kind, key)
    with _models_lock:
        if full in _models:
            _models.move_to_end(full)
            return _models[full]
        # Free the previous model of this kind before loading the next one so
        # two large models never sit in (GPU) memory at once.
        same_kind = [k for k in _models if k[0] == kind]
        evict = same_kind[: max(0, len(same_kind) - _PER_KIND + 1)]
        for old in evict:
            del _models[old]
        if evict:
            free_accelerator_memory()
        with _quiet_weight_loading():
            value = loader()
        _models[full] = value
        return value


class _quiet_weight_loading:
    """Hide transformers' per-tensor "Loading weights" bars while a model loads.

    skvem shows its own progress bars, switched by ``verbose``; a bar per
    checkpoint in every fold of a cross-validation only buries them.
    """

    def __enter__(self):
        self._hf = None
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # pragma: no cover - transformers is a dependency
            return self
        self._hf = hf_logging
        self._was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        if self._hf is not None and self._was_enabled:
            self._hf.enable_progress_bar()
        return False


def release_models(kind: str | None = None) -> None:
    """Forget the models kept by :func:`memoized` (of one ``kind``, or all)."""
    with _models_lock:
        evict = [k for k in _models if kind is None or k[0] == kind]
        for k in evict:
            del _models[k]
    if evict:
        free_accelerator_memory()
