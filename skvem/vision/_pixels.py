"""From an ImageSet to batches of pixels on the device, and to features.

Images are decoded and resized one batch at a time (optionally in DataLoader
workers), as compact ``uint8`` tensors; normalisation happens on the device.
Frozen features can be cached per image (:mod:`skvem._utils.cache`), and a batch
that does not fit in accelerator memory is split and retried.
"""

from __future__ import annotations

import numpy as np
import torch

from skvem._utils.cache import lookup
from skvem._utils.progress import progress
from skvem._utils.torch_utils import autocast, map_batches_with_backoff

__all__ = ["PixelStore", "extract_features", "probe_n_features"]

# Training keeps the resized uint8 pixels of the whole training set in memory
# when they take less than this (10,000 images at 224 px take 1.5 GB); above
# it, images are decoded again every epoch.
PRELOAD_MAX_BYTES = 4 * 1024**3


class _PixelDataset(torch.utils.data.Dataset):
    def __init__(self, images, preprocess):
        self.images = images
        self.preprocess = preprocess

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.preprocess.to_uint8(self.images.get_pil(int(i)))


def _loader(images, preprocess, index_batches, num_workers, pin_memory):
    return torch.utils.data.DataLoader(
        _PixelDataset(images, preprocess),
        batch_sampler=[list(map(int, b)) for b in index_batches],
        num_workers=int(num_workers),
        pin_memory=pin_memory,
        persistent_workers=False,
    )


def _chunks(indices, size):
    return [indices[i : i + size] for i in range(0, len(indices), size)]


class PixelStore:
    """The preprocessed ``uint8`` pixels of an image set: in memory, or streamed.

    Parameters
    ----------
    images : ImageSet
    preprocess : Preprocess
    num_workers : int
        DataLoader workers for decoding.
    max_bytes : int, optional
        Keep the pixels in memory when they take at most this
        (default: ``PRELOAD_MAX_BYTES``).
    verbose : bool
    """

    def __init__(self, images, preprocess, *, num_workers=0, max_bytes=None,
                 batch_size=64, verbose=False, desc="decoding images"):
        self.images = images
        self.preprocess = preprocess
        self.num_workers = num_workers
        self.pixels = None
        n = len(images)
        if n == 0:
            return
        first = preprocess.to_uint8(images.get_pil(0))
        if n * first.numel() <= (PRELOAD_MAX_BYTES if max_bytes is None else max_bytes):
            self.pixels = torch.empty((n, *first.shape), dtype=torch.uint8)
            batches = _chunks(np.arange(n), batch_size)
            loader = _loader(images, preprocess, batches, num_workers, False)
            for idx, batch in zip(batches, progress(loader, verbose=verbose, desc=desc,
                                                    total=len(batches), unit="batch"), strict=True):
                self.pixels[idx[0] : idx[-1] + 1] = batch

    def __len__(self):
        return len(self.images)

    def batches(self, index_batches, *, pin_memory=False):
        """Yield one ``uint8`` tensor ``(b, 3, H, W)`` per array of indices."""
        if self.pixels is not None:
            for idx in index_batches:
                yield self.pixels[torch.as_tensor(np.asarray(idx), dtype=torch.long)]
            return
        yield from _loader(self.images, self.preprocess, index_batches, self.num_workers, pin_memory)


def probe_n_features(forward, preprocess, device) -> int:
    """Feature dimension of ``forward`` (normalised batch -> features), from two blank images.

    Two images, not one: a BatchNorm in training mode refuses a batch of one.
    """
    from PIL import Image

    size = preprocess.to_uint8(Image.new("RGB", (256, 256))).shape
    with torch.inference_mode():
        x = preprocess.normalize(torch.zeros((2, *size), dtype=torch.uint8, device=device))
        return int(forward(x).flatten(1).shape[1])


def extract_features(forward, images, preprocess, *, batch_size, device, dtype=None,
                     num_workers=0, cache=None, namespace=None, verbose=False,
                     desc="extracting features", what="feature extraction", oom_state=None):
    """Run ``forward`` over every image, in batches, under ``torch.inference_mode``.

    Parameters
    ----------
    forward : callable
        Normalised float batch on ``device`` -> ``(b, d)`` tensor.
    images : ImageSet or PixelStore
    preprocess : Preprocess
    batch_size : int
    device : torch.device
    dtype : torch.dtype, optional
        Autocast dtype (bfloat16 on CUDA).
    num_workers : int
    cache : DiskCache, optional
        With ``namespace``: features are looked up per image fingerprint and
        the missing ones are stored after each batch, so an interrupted run
        resumes where it stopped.
    verbose : bool
    oom_state : dict, optional
        Receives ``"batch_size"``: the batch size that fitted in memory.

    Returns
    -------
    features : ndarray of shape (n_images, d), float32
    """
    store = images if isinstance(images, PixelStore) else None
    n = len(images)
    found = {}
    if cache is not None and store is None:
        fps = images.fingerprints()
        found, todo = lookup(cache, namespace, fps)
        todo = np.asarray(todo, dtype=np.int64)
    else:
        fps = None
        todo = np.arange(n)

    computed = {}
    if len(todo):
        batches = _chunks(todo, batch_size)
        pin = device.type == "cuda"
        if store is not None:
            source = store.batches(batches, pin_memory=pin)
        else:
            source = _loader(images, preprocess, batches, num_workers, pin)
        def run(pixels):
            x = preprocess.normalize(pixels.to(device, non_blocking=True))
            with autocast(device, dtype):
                return forward(x).float()

        with torch.inference_mode():
            for idx, pixels in zip(batches, progress(source, verbose=verbose, desc=desc,
                                                     total=len(batches), unit="batch"), strict=True):
                outs, batch_size = map_batches_with_backoff(run, pixels, batch_size, device=device, what=what)
                feats = torch.cat(outs).cpu().numpy().astype(np.float32, copy=False)
                feats = feats.reshape(len(idx), -1)
                if fps is not None:
                    new = {fps[i]: np.ascontiguousarray(f).tobytes() for i, f in zip(idx, feats, strict=True)}
                    cache.put_many(namespace, new)
                    found.update(new)
                else:
                    for i, f in zip(idx, feats, strict=True):
                        computed[int(i)] = f
        if oom_state is not None:
            oom_state["batch_size"] = batch_size

    if fps is not None:
        if n == 0:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([np.frombuffer(found[fp], dtype=np.float32) for fp in fps])
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([computed[i] for i in range(n)])
