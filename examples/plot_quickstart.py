"""
Quick start: an LLM-aligned encoding model in a scikit-learn pipeline
=====================================================================

Fit LLM-VEM on synthetic scenes with known ground truth and cross-validate it
like any scikit-learn regressor: images in, voxels out.

The language side here is the scene descriptions that :func:`make_scenes`
carries (``CaptionTransformer(model="precomputed")``) embedded by a sentence
model; on real stimuli the first step is a vision-language model such as
``CaptionTransformer(model="HuggingFaceTB/SmolVLM-256M-Instruct")``.
"""

# %%
# Data: scenes, descriptions and simulated voxels
# -----------------------------------------------
import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skvem import (AlignedImageFeaturizer, CaptionTransformer, SentenceEmbedder,
                   VoxelRidgeCV)
from skvem.datasets import make_scenes
from skvem.metrics import algonauts_score_voxels

data = make_scenes(n_images=600, random_state=0)
print(data.images, data.fmri.shape)
print("A description:", data.images.captions[0])

# %%
# The model: language targets, aligned image features, voxelwise ridge
# --------------------------------------------------------------------
text = make_pipeline(
    CaptionTransformer(model="precomputed"),
    SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2"),
)
llm_vem = make_pipeline(
    AlignedImageFeaturizer(backbone="small-cnn", text=text, alignment_weight=0.1,
                           n_components=32, epochs=6, random_state=0),
    VoxelRidgeCV(),
)

# %%
# Cross-validation needs no ``scoring=``: the score is the mean voxel correlation.
scores = cross_val_score(llm_vem, data.images, data.fmri, cv=3)
print("mean voxel correlation per fold:", np.round(scores, 3))

# %%
# Per-ROI, noise-normalised scores on a held-out split
# ----------------------------------------------------
train, test = np.arange(450), np.arange(450, 600)
llm_vem.fit(data.images[train], data.fmri[train])
voxel_scores = algonauts_score_voxels(
    data.fmri[test], llm_vem.predict(data.images[test]), data.noise_ceiling
)
for roi, idx in data.rois.items():
    print(f"{roi:>10}: {np.nanmean(voxel_scores[idx]):5.1f}% of explainable variance")

# %%
# The same scores as a figure: one bar per ROI at the mean over its voxels,
# with a 95% t-interval over those voxels.
from skvem.plotting import plot_roi_scores

plot_roi_scores({"LLM-VEM": {roi: voxel_scores[idx] for roi, idx in data.rois.items()}},
                ylabel="noise-normalised score (%)", title="150 held-out scenes")
