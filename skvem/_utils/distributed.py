"""Data-parallel training across processes (``torchrun``): the process group and its collectives.

:func:`skvem.vision.training.train_aligned` trains with
``DistributedDataParallel`` when it runs inside a ``torch.distributed``
process group, or when ``torchrun`` (or SLURM through it) set ``RANK`` and
``WORLD_SIZE`` with ``WORLD_SIZE > 1``. ``batch_size`` stays the *global*
batch: every rank takes its share of each batch, and the result is that of
one process with the same settings, to float tolerance. Two things make
that true and are easy to get wrong:

* the contrastive loss sees the global batch: image and text embeddings
  are gathered from every rank (:func:`gather_rows`, differentiable), so
  the negatives do not shrink as GPUs are added;
* batch statistics are global: :class:`GlobalBatchNorm1d` reduces the
  per-feature sums over ranks (``torch.nn.SyncBatchNorm`` refuses CPU
  tensors, so it cannot serve ``gloo``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "DistributedContext",
    "GlobalBatchNorm1d",
    "distributed_context",
    "gather_rows",
    "local_share",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in its process group."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _env_world_size():
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer; got {os.environ['WORLD_SIZE']!r}") from None


def distributed_context(device=None) -> DistributedContext:
    """The process group this process trains in, joining the one ``torchrun`` prepared.

    Parameters
    ----------
    device : torch.device, optional
        The training device: ``nccl`` for CUDA, ``gloo`` otherwise, when the
        group is created here.

    Returns
    -------
    DistributedContext
        ``world_size == 1`` outside a multi-process launch.
    """
    import torch.distributed as dist

    if not dist.is_available():
        return DistributedContext()
    if not dist.is_initialized():
        if _env_world_size() <= 1 or "RANK" not in os.environ:
            return DistributedContext()
        backend = "nccl" if device is not None and torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size())


def local_cuda_device(device):
    """``cuda:LOCAL_RANK`` for an unnumbered CUDA device under ``torchrun``; else ``device``."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def local_share(index, context: DistributedContext):
    """This rank's contiguous share of a global batch ``index`` (shares differ by at most one)."""
    if not context.active:
        return index
    return np.array_split(np.asarray(index), context.world_size)[context.rank]


def share_sizes(n, context: DistributedContext):
    """Rows each rank holds of a global batch of ``n`` (as :func:`local_share` splits it)."""
    return [len(part) for part in np.array_split(np.arange(n), context.world_size)]


def gather_rows(tensor, sizes):
    """Concatenate every rank's rows in rank order; gradients flow back to each rank.

    Parameters
    ----------
    tensor : tensor of shape (sizes[rank], ...)
    sizes : list of int
        Rows held by each rank; ``all_gather`` needs equal shapes, so shorter
        shares are padded and the padding is dropped again.

    Returns
    -------
    tensor of shape (sum(sizes), ...)
    """
    import torch.distributed.nn.functional as dist_fn

    longest = max(sizes)
    pad = longest - tensor.shape[0]
    if pad:
        tensor = torch.cat([tensor, tensor.new_zeros((pad, *tensor.shape[1:]))])
    if tensor.requires_grad:
        parts = dist_fn.all_gather(tensor)
    else:
        import torch.distributed as dist

        parts = [torch.empty_like(tensor) for _ in sizes]
        dist.all_gather(parts, tensor.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` whose training statistics are those of the global batch.

    Outside a process group it is exactly ``nn.BatchNorm1d``. Inside one, in
    training mode, the per-feature count, sum and sum of squares are
    all-reduced (differentiably) before normalising, so every rank
    normalises with, and updates its running statistics from, the
    statistics of the whole batch across ranks.
    """

    def forward(self, x):
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        import torch.distributed.nn.functional as dist_fn

        x64 = x.double()
        stats = torch.cat([
            x64.new_tensor([x.shape[0]]), x64.sum(dim=0), (x64 * x64).sum(dim=0),
        ])
        stats = dist_fn.all_reduce(stats)
        count = stats[0]
        mean = stats[1 : 1 + x.shape[1]] / count
        var = stats[1 + x.shape[1] :] / count - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            unbiased = var * count / (count - 1).clamp(min=1)
            self.running_mean.mul_(1 - m).add_(m * mean.to(self.running_mean.dtype))
            self.running_var.mul_(1 - m).add_(m * unbiased.to(self.running_var.dtype))
        out = (x64 - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            out = out * self.weight.double() + self.bias.double()
        return out.to(x.dtype)
