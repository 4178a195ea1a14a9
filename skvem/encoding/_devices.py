"""Ridge over several GPUs: target batches spread over every visible CUDA device.

Voxels are independent given the folds, so the targets are cut into one
contiguous block per GPU and each block is solved by
:func:`~skvem.encoding._ridge_solver.solve_ridge_cv` on its own device, in
its own thread (CUDA kernels release the GIL). Each device diagonalises the
folds itself: a p x p (or n x n) problem, small next to the sweep over
tens of thousands of voxels, and cheaper than copying factors between
devices. The blocks' results are concatenated in target order.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from skvem.encoding._inputs import check_splits
from skvem.encoding._ridge_solver import RidgeCVResult, resolve_backend, solve_ridge_cv

__all__ = ["solve_ridge_cv_on_devices", "visible_gpus"]


def visible_gpus(backend):
    """CUDA device indices a target block can go to: all visible ones for ``torch_cuda``."""
    if backend.name != "torch_cuda":
        return []
    import torch

    return list(range(torch.cuda.device_count()))


def _on_device(index):
    import torch

    return torch.cuda.device(index)


def solve_ridge_cv_on_devices(X, Y, alphas, *, cv=5, backend="numpy", devices="auto",
                              progress_bar=False, **options):
    """:func:`solve_ridge_cv`, with the targets spread over several GPUs when there are.

    Parameters
    ----------
    X, Y, alphas, cv, backend, progress_bar, **options
        As in :func:`~skvem.encoding._ridge_solver.solve_ridge_cv`.
    devices : "auto" or list of (int or None), default="auto"
        CUDA devices to use with the ``torch_cuda`` backend; ``"auto"``: all
        visible ones. ``None`` in the list is the current device (so two
        ``None`` split the work in two on one device or the CPU, as the
        tests do). One device (or a CPU backend) is a plain call.

    Returns
    -------
    RidgeCVResult
    """
    Y = np.asarray(Y)
    B = resolve_backend(backend, shape=(np.shape(X)[0], np.shape(X)[1], Y.shape[1]))
    gpus = visible_gpus(B) if devices == "auto" else list(devices)
    n_blocks = min(len(gpus), Y.shape[1])
    if n_blocks <= 1:
        return solve_ridge_cv(X, Y, alphas, cv=cv, backend=B, progress_bar=progress_bar, **options)
    # One list of folds for every block (a one-shot generator cannot be re-read).
    splits = check_splits(cv, np.asarray(X))
    edges = np.linspace(0, Y.shape[1], n_blocks + 1).round().astype(int)

    def solve(block):
        context = _on_device(gpus[block]) if gpus[block] is not None else contextlib.nullcontext()
        with context:
            return solve_ridge_cv(X, Y[:, edges[block]:edges[block + 1]], alphas, cv=splits, backend=B,
                                  progress_bar=progress_bar and block == 0, **options)

    with ThreadPoolExecutor(max_workers=n_blocks) as pool:
        parts = list(pool.map(solve, range(n_blocks)))
    refit = parts[0].coef is not None
    return RidgeCVResult(
        best_alphas=np.concatenate([p.best_alphas for p in parts]),
        coef=np.concatenate([p.coef for p in parts], axis=1) if refit else None,
        intercept=np.concatenate([p.intercept for p in parts]) if refit else None,
        cv_scores=np.concatenate([p.cv_scores for p in parts]),
        solver=parts[0].solver,
    )
