"""Running skvem's per-image steps on more than one process or machine.

:func:`ray_transform` runs :class:`~skvem.CaptionTransformer` (captioning) or
:class:`~skvem.ImageFeaturizer` (frozen feature extraction) as a Ray Data job
with one model replica per actor; :func:`connect_ray` connects to a cluster,
failing fast when its address does not answer. Sharded runs on a job array and
moving their captions between caches are in :mod:`skvem._utils.sharding` and
:func:`skvem.export_cache` / :func:`skvem.import_cache` (user guide:
"Captioning at scale").
"""

from skvem.scale._ray_data import connect_ray, ray_transform

__all__ = ["connect_ray", "ray_transform"]
