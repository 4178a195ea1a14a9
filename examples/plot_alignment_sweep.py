"""
How much language? Sweeping the alignment weight with GridSearchCV
==================================================================

LLM-VEM adds ``alignment_weight * contrastive(image, text)`` to the voxel
loss. Here :class:`~sklearn.model_selection.GridSearchCV` sweeps that weight,
scoring every ROI of the synthetic scenes at once with one scorer that returns
a score per ROI (noise-normalised, the Algonauts 2023 rule), and draws them
with a confidence interval over folds. ``alignment_weight=0`` trains
the same network without language; nothing here is tuned to make alignment
win.
"""

# %%
import numpy as np
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from skvem import (AlignedImageFeaturizer, CaptionTransformer, SentenceEmbedder,
                   VoxelRidgeCV)
from skvem.datasets import make_scenes
from skvem.metrics import algonauts_score_voxels

data = make_scenes(n_images=800, random_state=0)
rois = {**data.rois, "all": np.arange(data.fmri.shape[1])}


def roi_scores(estimator, images, fmri):
    """Mean noise-normalised score over the voxels of every ROI, from one prediction."""
    per_voxel = algonauts_score_voxels(fmri, estimator.predict(images), data.noise_ceiling)
    return {roi: float(np.nanmean(per_voxel[idx])) for roi, idx in rois.items()}


model = make_pipeline(
    AlignedImageFeaturizer(
        backbone="small-cnn",
        text=make_pipeline(CaptionTransformer(model="precomputed"),
                           SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2")),
        n_components=32, epochs=8, random_state=0,
    ),
    VoxelRidgeCV(),
)
search = GridSearchCV(
    model,
    {"alignedimagefeaturizer__alignment_weight": [0.0, 0.03, 0.1, 0.3, 1.0]},
    scoring=roi_scores,
    refit="all",
    cv=KFold(3, shuffle=True, random_state=0),
)
search.fit(data.images, data.fmri)

# %%
# Noise-normalised score per ROI (% of explainable variance, mean ± sd over folds)
results = search.cv_results_
weights = results["param_alignedimagefeaturizer__alignment_weight"]
print(f"{'weight':>8}" + "".join(f"{roi:>16}" for roi in rois))
for i, weight in enumerate(weights):
    cells = "".join(
        f"{results[f'mean_test_{roi}'][i]:>9.1f} ± {results[f'std_test_{roi}'][i]:4.1f}"
        for roi in rois
    )
    print(f"{weight:>8}" + cells)
print("best weight over all voxels:", search.best_params_)

# %%
# The sweep as a figure: one bar per weight in every ROI, with 95%
# t-intervals over the three folds.
from skvem.plotting import plot_roi_scores

folds = range(search.n_splits_)
plot_roi_scores(
    {f"weight {weight}": {roi: [results[f"split{k}_test_{roi}"][i] for k in folds] for roi in rois}
     for i, weight in enumerate(weights)},
    ylabel="noise-normalised score (%)", title="alignment weight, 3-fold CV",
)
