"""Device, dtype, seeding and out-of-memory rules shared by every torch-based estimator."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import numpy as np

__all__ = [
    "autocast",
    "free_accelerator_memory",
    "is_oom_error",
    "map_batches_with_backoff",
    "resolve_device",
    "resolve_dtype",
    "retry_with_smaller_batches",
    "torch_seed",
]


def resolve_device(device="auto"):
    """Return a :class:`torch.device`; ``"auto"`` picks CUDA, then MPS, then CPU.

    Raises
    ------
    ValueError
        When ``device`` names an accelerator that is not available.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps'; got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='auto' or 'cpu'")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device={device!r} but MPS is not available; use device='auto' or 'cpu'")
    return dev


_DTYPES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


def resolve_dtype(dtype, device):
    """Return a torch dtype; ``"auto"`` is bfloat16 on CUDA (when supported), else float32."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ValueError(f"dtype must be 'auto', 'float32', 'bfloat16' or 'float16'; got {dtype!r}")
    return getattr(torch, name)


def torch_seed(random_state) -> int:
    """Draw a torch seed from ``random_state`` (None, int or RandomState)."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, np.iinfo(np.int32).max))


def is_oom_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error of an accelerator."""
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_accelerator_memory(device=None):
    """Collect garbage and return cached accelerator memory to the driver.

    ``device``: the CUDA or MPS device to free; None frees every available
    accelerator (and imports nothing when torch is not loaded yet).
    """
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    kind = None if device is None else device.type
    if kind in (None, "cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch.backends, "mps", None)
    if kind in (None, "mps") and mps is not None and mps.is_available() and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def autocast(device, dtype):
    """Autocast to ``dtype`` on ``device``; nothing to do for float32."""
    import torch

    if dtype is None or dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def retry_with_smaller_batches(run, batch_size, *, device, what, minimum=1, retry="retrying",
                               cleanup=None):
    """Call ``run(batch_size)``, halving ``batch_size`` after each out-of-memory error.

    The one out-of-memory back-off of skvem (feature extraction, captioning,
    training). After an error, ``cleanup()`` runs (e.g. to drop gradients),
    the accelerator's cached memory is freed, a ``RuntimeWarning`` names
    the old and new batch sizes, and ``run`` is called again; at
    ``minimum`` the error is raised.

    Parameters
    ----------
    run : callable
        ``run(batch_size) -> result``.
    batch_size : int
    device : torch.device
        Named in the warning, and whose memory is freed.
    what : str
        Prefix of the warning (the estimator).
    minimum : int, default=1
    retry : str, default="retrying"
        What the warning says is done next.
    cleanup : callable, optional

    Returns
    -------
    result, batch_size : the result of ``run`` and the batch size that worked
    """
    batch_size = int(batch_size)
    while True:
        try:
            return run(batch_size), batch_size
        except Exception as exc:
            if not is_oom_error(exc) or batch_size <= minimum:
                raise
        # Outside the except block: the traceback no longer holds the frames
        # (and their tensors) of the failed call, so their memory can be freed.
        if cleanup is not None:
            cleanup()
        free_accelerator_memory(device)
        old, batch_size = batch_size, max(minimum, batch_size // 2)
        warnings.warn(
            f"{what}: out of {device.type} memory with batch_size={old}; {retry} with "
            f"batch_size={batch_size}",
            RuntimeWarning,
            stacklevel=3,
        )


def map_batches_with_backoff(fn, items, batch_size, *, device, what):
    """Apply ``fn`` to consecutive slices of ``items``, shrinking the slices after out-of-memory errors.

    Returns
    -------
    outputs : list
        One result of ``fn`` per slice, in order.
    batch_size : int
        The slice length that fitted, to start the next call with.
    """
    outputs, start = [], 0
    while start < len(items):
        out, batch_size = retry_with_smaller_batches(
            lambda b, s=start: fn(items[s : s + b]), batch_size, device=device, what=what
        )
        outputs.append(out)
        start += batch_size
    return outputs, batch_size
