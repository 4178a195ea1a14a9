"""Captioning and frozen feature extraction as a Ray Data job (``pip install skvem[ray]``).

The driver keeps what must be exact: for captions it fingerprints the images,
looks them up in its cache and writes every batch that comes back to that
cache (:class:`~skvem.language._caption_steps.CaptionPlan`, the same steps as
:meth:`CaptionTransformer.transform <skvem.CaptionTransformer.transform>`), so
the captions and cache entries are those of the single-process path. Only the
positions of the images to process travel through Ray Data; each actor of an
actor pool (``map_batches`` with a callable class, ``concurrency`` actors) holds
one replica of the model and decodes its images itself, so on a cluster the
images must be readable by every node (paths on a shared file system, or an
HDF5 file there).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from skvem.images import as_imageset

__all__ = ["connect_ray", "ray_transform"]


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "running on Ray needs Ray Data: `pip install skvem[ray]` (ray[data])"
        ) from exc
    return ray


def connect_ray(address=None, *, timeout=5.0):
    """Start or join Ray; one clear error when ``address`` does not answer.

    Parameters
    ----------
    address : str, optional
        ``"ray://host:10001"`` (Ray Client) or ``"host:6379"`` (the head's
        GCS), ``"auto"`` (a cluster started on this machine), or ``None`` to
        use ``RAY_ADDRESS`` if set, else start a local instance.
    timeout : float
        Seconds to wait for the head's port to answer.

    Returns
    -------
    started : bool
        Whether this call initialised Ray (the caller then shuts it down).

    Raises
    ------
    ConnectionError
        When nothing answers at ``address``; nothing has been started or
        written then.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address not in (None, "auto", "local"):
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or port is None:
            raise ValueError(f"--ray {address!r}: expected ray://HOST:PORT or HOST:PORT")
        # ray.init retries an unreachable head for a long time; a socket
        # says at once whether anything listens there.
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise ConnectionError(
                f"no Ray cluster answers at {address!r} ({exc}); nothing was computed or written"
            ) from None
    try:
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise ConnectionError(f"could not join Ray at {address!r}: {exc}") from exc
    return True


class _Replica:
    """One Ray actor: one copy of the fitted estimator and of the image list."""

    def __init__(self, estimator, images, output):
        self.estimator, self.images, self.output = estimator, images, output

    def __call__(self, batch):
        index = np.asarray(batch["index"], dtype=np.int64)
        result = self.estimator.transform(self.images[index])
        if self.output == "caption":
            result = np.asarray([str(c) for c in result], dtype=object)
        return {"index": index, self.output: np.asarray(result)}


def _run(estimator, images, positions, output, *, batch_size, num_replicas, num_gpus, num_cpus):
    """Yield ``(positions, values)`` batches from an actor pool, as they finish."""
    ray = _import_ray()
    if num_gpus is None:
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    if num_replicas is None:
        num_replicas = max(int(ray.cluster_resources().get("GPU", 0)), 1) if num_gpus else 1
    ds = ray.data.from_items(
        [{"index": int(i)} for i in positions],
        override_num_blocks=max(1, min(len(positions) // batch_size, 10 * num_replicas)),
    )
    ds = ds.map_batches(
        _Replica,
        fn_constructor_kwargs={"estimator": estimator, "images": images, "output": output},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=num_replicas,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
    )
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        yield batch["index"].tolist(), batch[output]


def ray_transform(
    estimator, X, *, num_replicas=None, num_gpus=None, num_cpus=1, batch_size=None
):
    """``estimator.transform(X)`` as a Ray Data job, one model replica per actor.

    Parameters
    ----------
    estimator : CaptionTransformer or ImageFeaturizer
        Fitted. A :class:`~skvem.CaptionTransformer` reads and writes the
        driver's cache (the actors do not cache); an
        :class:`~skvem.ImageFeaturizer` runs with its own ``cache_dir`` on
        every actor (each node's local cache).
    X : ImageSet, array or list of images
        Readable by every actor (on a cluster: shared paths).
    num_replicas : int, optional
        Actors (model replicas); default one per GPU of the cluster, or 1.
    num_gpus : float, optional
        GPUs per actor; default 1 when the cluster has GPUs, else 0.
    num_cpus : float, default=1
        CPUs per actor.
    batch_size : int, optional
        Images per actor call (and per cache write); default the
        estimator's ``batch_size``.

    Returns
    -------
    ndarray
        What ``estimator.transform(X)`` returns: captions ``(n_images,)``
        or features ``(n_images, n_features)``.

    Raises
    ------
    ImportError
        When Ray Data is not installed.
    TypeError
        For another estimator.
    """
    from skvem.language.captioning import CaptionTransformer
    from skvem.vision.featurizers import ImageFeaturizer

    check_is_fitted(estimator)
    images = as_imageset(X)
    bs = int(batch_size or getattr(estimator, "batch_size", 8))
    options = dict(batch_size=bs, num_replicas=num_replicas, num_gpus=num_gpus, num_cpus=num_cpus)
    if isinstance(estimator, CaptionTransformer):
        estimator._check_params()
        if len(images) == 0 or estimator._is_precomputed():
            return estimator.transform(images)
        plan = estimator._plan(images)
        if plan.todo:
            replica = clone(estimator).set_params(cache_dir=False, verbose=False).fit()
            for positions, captions in _run(replica, images, plan.todo, "caption", **options):
                plan.store(positions, [str(c) for c in captions])
        return plan.finish()
    if isinstance(estimator, ImageFeaturizer):
        out = None
        for positions, feats in _run(estimator, images, range(len(images)), "features", **options):
            if out is None:
                out = np.empty((len(images),) + feats.shape[1:], dtype=feats.dtype)
            out[positions] = feats
        return out if out is not None else estimator.transform(images)
    raise TypeError(
        "ray_transform runs a CaptionTransformer or an ImageFeaturizer; "
        f"got {type(estimator).__name__}"
    )
