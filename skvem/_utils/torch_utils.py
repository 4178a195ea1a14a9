"""Device, dtype and seeding rules shared by every torch-based estimator."""

from __future__ import annotations

import numpy as np

__all__ = ["resolve_device", "resolve_dtype", "torch_seed", "is_oom_error"]


def resolve_device(device="auto"):
    """Return a :class:`torch.device`; ``"auto"`` picks CUDA, then MPS, then CPU.

    Raises
    ------
    ValueError
        When ``device`` names an accelerator that is not available.
    """
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
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
