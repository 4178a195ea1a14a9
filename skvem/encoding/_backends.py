"""Which himalaya backend the ridge solvers run on.

``backend="auto"`` means ``"torch_cuda"`` when PyTorch sees a CUDA device.
On a CPU the faster of ``"numpy"`` and ``"torch"`` depends on the machine:
each brings its own BLAS (OpenBLAS with numpy wheels, MKL or OpenBLAS with
torch) and thread pool, and the winner changed between two 2-core machines
and with the load of a shared one. So the choice is measured, not assumed:
on first use, a short ridge sweep (:data:`PROBE_SHAPE`) runs on both
backends, alternating, and the faster one is kept for the rest of the
process. Problems smaller than the probe skip the measurement and use numpy,
whose per-call overhead is lower (the probe would cost more than the fit).

Override the measurement with the environment variable
``SKVEM_RIDGE_CPU_BACKEND=numpy`` (or ``torch``), or by setting
``skvem.encoding._backends.AUTO_CPU_BACKEND`` in the process.
"""

from __future__ import annotations

import importlib
import os
import time

__all__ = ["BACKENDS", "CPU_BACKEND_ENV", "auto_cpu_backend", "resolve_backend"]

#: Backends accepted by :func:`resolve_backend` (himalaya's names, plus "auto").
#: himalaya's torch_mps is left out: the decompositions are float64, which
#: Apple's MPS does not support (use "torch", on the CPU, there).
BACKENDS = ("auto", "numpy", "torch", "torch_cuda", "cupy")
_CPU_CHOICES = ("numpy", "torch")

#: Environment variable that fixes the CPU backend of ``backend="auto"``.
CPU_BACKEND_ENV = "SKVEM_RIDGE_CPU_BACKEND"

#: Set to "numpy" or "torch" to fix the CPU backend of ``backend="auto"`` in
#: this process (takes precedence over the environment variable).
AUTO_CPU_BACKEND = None

#: (n_samples, n_features, n_targets) of the measurement: large enough that
#: the float32 products dominate, as in a whole-brain fit, small enough to
#: cost a fraction of one.
PROBE_SHAPE = (2000, 512, 1024)
_PROBE_REPEATS = 2

_measured = None  # (name, reason), once per process


def _work(shape):
    """Size of a problem for the ridge sweep: n * rank * targets."""
    n, p, t = shape
    return n * min(n, p) * t


def _forced_choice():
    for value, source in ((AUTO_CPU_BACKEND, "skvem.encoding._backends.AUTO_CPU_BACKEND"),
                          (os.environ.get(CPU_BACKEND_ENV) or None, CPU_BACKEND_ENV)):
        if value is None:
            continue
        if value not in _CPU_CHOICES:
            raise ValueError(f"{source} must be one of {_CPU_CHOICES}; got {value!r}.")
        return value, f"set by {source}"
    return None


def _measure():
    try:
        import torch  # noqa: F401
    except ImportError:
        return "numpy", "torch is not installed"
    import numpy as np

    from skvem.encoding._ridge_solver import solve_ridge_cv

    n, p, t = PROBE_SHAPE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p), dtype=np.float32)
    k = min(32, p)
    Y = X[:, :k] @ rng.standard_normal((k, t), dtype=np.float32)
    Y += rng.standard_normal((n, t), dtype=np.float32)
    alphas = np.logspace(-2, 6, 9)
    times = {b: [] for b in _CPU_CHOICES}
    for b in _CPU_CHOICES:  # warm-up: thread pools, lazy initialisation
        solve_ridge_cv(X[:200, :16], Y[:200, :64], alphas, backend=b)
    for _ in range(_PROBE_REPEATS):  # alternate, so load drift hits both
        for b in _CPU_CHOICES:
            t0 = time.perf_counter()
            solve_ridge_cv(X, Y, alphas, cv=5, backend=b)
            times[b].append(time.perf_counter() - t0)
    best = {b: min(v) for b, v in times.items()}
    name = min(best, key=best.get)
    detail = ", ".join(f"{b} {s:.3f} s" for b, s in best.items())
    return name, f"measured on first use ({n}x{p} -> {t} probe, best of {_PROBE_REPEATS}): {detail}"


def auto_cpu_backend(shape=None):
    """The CPU backend of ``backend="auto"``, and why it was chosen.

    Parameters
    ----------
    shape : tuple of int (n_samples, n_features, n_targets) or None
        The problem about to be solved. A problem smaller than
        :data:`PROBE_SHAPE` gets numpy without a measurement; None
        measures (once per process).

    Returns
    -------
    name : {"numpy", "torch"}
    reason : str
        How it was chosen (override, measurement with both times, or size).
    """
    forced = _forced_choice()
    if forced is not None:
        return forced
    global _measured
    if _measured is not None:
        return _measured
    if shape is not None and _work(shape) < _work(PROBE_SHAPE):
        return "numpy", "problem smaller than the measurement probe: numpy (lower overhead)"
    _measured = _measure()
    return _measured


def resolve_backend(backend, shape=None):
    """Return the himalaya backend module for a backend name.

    Parameters
    ----------
    backend : str or module
        ``"auto"`` picks ``"torch_cuda"`` when PyTorch sees a CUDA device,
        else the faster CPU backend (:func:`auto_cpu_backend`). Any himalaya
        backend name in :data:`BACKENDS` is accepted otherwise; a backend
        module is returned as is.
    shape : tuple of int or None, default=None
        ``(n_samples, n_features, n_targets)`` of the problem, passed to
        :func:`auto_cpu_backend`.

    Returns
    -------
    module
        The backend module (``himalaya.backend.<name>``). The global
        himalaya backend (``himalaya.backend.set_backend``) is left
        untouched.

    Raises
    ------
    ValueError
        If ``backend`` is unknown or its device is not available.
    """
    if not isinstance(backend, str) and hasattr(backend, "name"):
        return backend
    if isinstance(backend, str) and backend == "torch_mps":
        raise ValueError(
            "backend='torch_mps' is not supported: the decompositions run in "
            "float64, which MPS lacks; use backend='torch' (CPU)."
        )
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    if backend == "auto":
        backend = "torch_cuda" if _cuda_available() else auto_cpu_backend(shape)[0]
    elif backend == "torch_cuda" and not _cuda_available():
        # himalaya raises (or, under pytest, skips) on import: say it plainly.
        raise ValueError(
            "backend='torch_cuda' needs PyTorch with a CUDA device, and none is "
            "available; use backend='auto' or 'numpy'."
        )
    try:
        return importlib.import_module("himalaya.backend." + backend)
    except ImportError as exc:
        raise ValueError(f"backend={backend!r} could not be loaded: {exc}") from exc


def check_backend_name(backend):
    """Raise the ``ValueError`` of :func:`resolve_backend` without loading anything."""
    if isinstance(backend, str) and backend == "auto":
        return
    resolve_backend(backend)


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
