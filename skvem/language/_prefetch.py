"""Decode images in threads while the model works on the previous batch.

A vision-language model on a GPU captions a batch in a fraction of a second;
decoding the next batch of PNG or JPEG files with PIL in the same thread
would leave the GPU idle for that long. :func:`prefetch_batches` runs the
decoding of the next batches in a thread pool while the caller generates.
Threads (not processes) are enough: PIL's decoders, NumPy copies, hashing and
torch's kernels all release the GIL, and threads share the :class:`ImageSet`
without pickling it (``benchmarks/bench_captioning.py`` compares them with a
``torch.utils.data.DataLoader`` of worker processes).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["prefetch_batches", "parallel_fingerprints"]


def prefetch_batches(images, batches, *, num_workers):
    """Yield ``(batch, pil_images)`` for each list of indices in ``batches``, in order.

    Parameters
    ----------
    images : skvem.images.ImageSet
    batches : iterable of list of int
        Positions in ``images``, one list per batch.
    num_workers : int
        Decoding threads. ``0`` decodes each batch in the calling thread
        just before it is yielded (no overlap). Otherwise up to
        ``num_workers + 1`` batches are decoded ahead, which bounds the
        memory held by decoded images.

    Yields
    ------
    batch : list of int
    pil_images : list of PIL.Image.Image
        RGB images, in the order of ``batch``.

    Raises
    ------
    skvem.images.ImageLoadError
        When an image cannot be read: raised when its batch is reached, so
        every batch before it has been yielded.
    """
    if num_workers == 0:
        for batch in batches:
            yield batch, [images.get_pil(i) for i in batch]
        return
    batches = iter(batches)
    pool = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="skvem-decode")
    pending = deque()
    try:
        for batch in batches:
            pending.append((batch, [pool.submit(images.get_pil, i) for i in batch]))
            if len(pending) > num_workers:
                done, futures = pending.popleft()
                yield done, [f.result() for f in futures]
        while pending:
            done, futures = pending.popleft()
            yield done, [f.result() for f in futures]
    finally:
        # An error or an abandoned generator: drop the queued decodes.
        for _, futures in pending:
            for f in futures:
                f.cancel()
        pool.shutdown(wait=True)


def parallel_fingerprints(images, *, num_workers, chunk=64):
    """:meth:`ImageSet.fingerprints` computed by ``num_workers`` threads.

    Each thread fingerprints a view of ``chunk`` images; views share the
    underlying images, so what ``fingerprints()`` remembers is shared too.
    """
    n = len(images)
    if num_workers == 0 or n <= chunk:
        return images.fingerprints()
    starts = range(0, n, chunk)
    with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="skvem-hash") as pool:
        parts = list(pool.map(lambda s: images[s : s + chunk].fingerprints(), starts))
    return np.concatenate(parts)
