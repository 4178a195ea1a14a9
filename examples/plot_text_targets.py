"""
Swapping the language target
============================

The alignment step of :class:`~skvem.AlignedImageFeaturizer` is one
estimator: any scikit-learn transformer that maps images to vectors. Here
four targets are compared on the same folds:

* a sentence model (all-MiniLM-L6-v2) on the scene descriptions, the
  LLM-embedding target of Doerig et al. (2025);
* TF-IDF of the same descriptions, reduced to 64 dimensions;
* a CLIP text encoder (ViT-B-32, OpenAI weights) when those weights are on
  this machine; skipped otherwise;
* no language at all (``text=None``).

The descriptions of :func:`make_scenes` play the part of human captions; a
vision-language model would write them with
``CaptionTransformer(model=...)``.
"""

# %%
import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import make_pipeline

from skvem import (AlignedImageFeaturizer, CaptionTransformer, CLIPTextEmbedder,
                   SentenceEmbedder, VoxelRidgeCV)
from skvem.datasets import make_scenes
from skvem.metrics import algonauts_score_voxels

data = make_scenes(n_images=600, random_state=0)
captions = CaptionTransformer(model="precomputed")
targets = {
    "sentence model": make_pipeline(
        captions, SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2")),
    "TF-IDF": make_pipeline(captions, TfidfVectorizer(), TruncatedSVD(64, random_state=0)),
    "none": None,
}
clip = make_pipeline(captions, CLIPTextEmbedder(model="ViT-B-32", pretrained="openai"))
try:
    clip.fit_transform(data.images[:2])
    targets["CLIP text"] = clip
except (OSError, ValueError, RuntimeError) as exc:
    print("CLIP text target skipped:", " ".join(str(exc).split())[:160])

# %%
# Every target on the same folds; each fold scores every ROI from one
# prediction (noise-normalised, % of explainable variance).
rois = {**data.rois, "all": np.arange(data.fmri.shape[1])}


def roi_scores(estimator, images, fmri):
    per_voxel = algonauts_score_voxels(fmri, estimator.predict(images), data.noise_ceiling)
    return {roi: float(np.nanmean(per_voxel[idx])) for roi, idx in rois.items()}


cv = KFold(3, shuffle=True, random_state=0)
results = {}
for name, text in targets.items():
    model = make_pipeline(
        AlignedImageFeaturizer(backbone="small-cnn", text=text,
                               alignment_weight=0.1 if text is not None else 0.0,
                               n_components=32, epochs=6, random_state=0),
        VoxelRidgeCV(),
    )
    folds = cross_validate(model, data.images, data.fmri, cv=cv, scoring=roi_scores)
    results[name] = {roi: folds[f"test_{roi}"] for roi in rois}
    print(f"{name:>15}: all voxels {results[name]['all'].mean():.1f} ± "
          f"{results[name]['all'].std():.1f}% of explainable variance")

# %%
# One bar per target in every ROI, with 95% t-intervals over the folds.
from skvem.plotting import plot_roi_scores

plot_roi_scores(results, ylabel="noise-normalised score (%)", title="language targets, 3-fold CV")
