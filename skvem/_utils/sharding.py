"""``K/N`` shards of a list of images, for job arrays (SLURM, PBS, Kubernetes).

Shard ``K`` of ``N`` (``1 <= K <= N``) is the ``K``-th of ``N`` contiguous,
disjoint blocks of positions in the input list, as even as possible
(:func:`numpy.array_split`): positions ``[floor((K-1) n / N), floor(K n / N))``.
It depends on the number of images and their order only, never on what is
cached or on which shards ran before, so the jobs of an array may run in any
order, on any machine, and any of them may be rerun. Contiguous blocks keep
the reads of an HDF5 brick sequential. Every job must be given the same image
list (the same command line: folders are listed in sorted order).
"""

from __future__ import annotations

import re

__all__ = ["parse_shard", "shard_bounds"]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec, *, option="--shard"):
    """``"K/N"`` -> ``(K, N)``; ``ValueError`` naming ``option`` unless ``1 <= K <= N``."""
    match = _SPEC.match(str(spec))
    if not match:
        raise ValueError(f"{option} must be K/N with whole numbers, e.g. 3/8; got {spec!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1:
        raise ValueError(f"{option} {spec!r}: the number of shards N must be >= 1")
    if not 1 <= k <= n:
        raise ValueError(f"{option} {spec!r}: K must be between 1 and N={n} (shards count from 1)")
    return k, n


def shard_bounds(n_items, k, n_shards):
    """``(start, stop)`` of shard ``k`` (1-based) of ``n_shards`` over ``n_items`` positions."""
    return (k - 1) * n_items // n_shards, k * n_items // n_shards
