"""Text targets looked up per scene: the demo's language target and the study's controls.

The demo and the alignment study fit many folds on the same scenes. A text
step that embeds the training descriptions afresh in every fold gives the same
numbers each time (a sentence embedding depends on its sentence only), so the
descriptions are embedded once and each fold looks its images up by scene
number (``ImageSet.ids``). The same lookup serves the controls: the
ground-truth description features (positive control) and shuffled
descriptions (negative control).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["LookupTargets", "description_features"]


class LookupTargets(TransformerMixin, BaseEstimator):
    """Images -> rows of a per-scene table, indexed by the images' ids.

    Parameters
    ----------
    table : ndarray of shape (n_scenes, d)
        Row ``i`` is the target of the scene with id ``i``.
    shuffle : bool, default=False
        Permute the rows among the images of each call (the negative control:
        every image gets the target of another image of the same set, so the
        targets keep their distribution but lose their pairing).
    random_state : int or None, default=None
        Seeds the permutation.
    """

    def __init__(self, *, table, shuffle=False, random_state=None):
        self.table = table
        self.shuffle = shuffle
        self.random_state = random_state

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        """Return ``(n_images, d)`` float32 targets of ``X`` (an ImageSet with ids)."""
        from skvem.images import as_imageset

        ids = as_imageset(X).ids
        if ids is None:
            raise ValueError("LookupTargets needs images with ids (scene numbers), e.g. make_scenes images")
        out = np.asarray(self.table, dtype=np.float32)[np.asarray(ids, dtype=int)]
        if self.shuffle:
            out = out[np.random.RandomState(self.random_state).permutation(len(out))]
        return out


def description_features(data):
    """Ground-truth description features of make_scenes: the latents a description states.

    The latents minus the pixel contrast energy (``energy:*``, which no
    description mentions), z-scored per column: object categories, colours,
    sizes, places, count, background, relations, numerosity, co-occurrence and
    sameness. This is the text target an ideal captioner and an ideal text
    encoder would give: the positive control of the alignment study.
    """
    names = np.asarray(data.latent_names)
    keep = ~np.char.startswith(names.astype(str), "energy:")
    lat = np.asarray(data.latents, dtype=np.float64)[:, keep]
    sd = lat.std(axis=0)
    lat = (lat - lat.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return lat.astype(np.float32)
