"""
What does language add, and where? Variance partitioning on the synthetic scenes
================================================================================

Two feature spaces describe the same scenes: **frozen** features of an image
network that never saw language or fMRI, and **aligned** features of the same
architecture trained by LLM-VEM (voxel loss + contrastive alignment with
sentence embeddings of the scene descriptions). Variance partitioning asks, per
voxel, how much held-out variance only the aligned space explains, how much
only the frozen one, and how much both; :func:`~skvem.analysis.paired_difference`
then asks whether aligned-only predictions beat frozen-only ones per ROI, with a
bootstrap CI over test images.

The aligned featurizer learns from fMRI, so it is trained on one half of the
scenes and every analysis runs on the *other* half: the partition never scores
voxels on responses the features were trained on. The sizes are small (a
gallery example: a few minutes on 2 CPU cores), so the numbers are noisy;
nothing here is tuned to make alignment look better or worse.
"""

# %%
# Data and the two feature spaces
# -------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline

from skvem import (AlignedImageFeaturizer, CaptionTransformer, ImageFeaturizer,
                   SentenceEmbedder, VoxelRidgeCV)
from skvem.analysis import paired_difference, roi_summary, variance_partitioning
from skvem.datasets import make_scenes

data = make_scenes(n_images=1000, random_state=0)
fit_half, study_half = np.arange(500), np.arange(500, 1000)

text = make_pipeline(CaptionTransformer(model="precomputed"),
                     SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2"))
aligned = AlignedImageFeaturizer(backbone="small-cnn", text=text, alignment_weight=0.1,
                                 n_components=32, epochs=6, random_state=0)
aligned.fit(data.images[fit_half], data.fmri[fit_half])
frozen = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=False)

images, fmri = data.images[study_half], data.fmri[study_half]
spaces = {"frozen": frozen.fit_transform(images), "aligned": aligned.transform(images)}
print({name: X.shape for name, X in spaces.items()})

# %%
# Unique and shared explained variance, per voxel and per ROI
# -----------------------------------------------------------
# Unions are fitted by banded ridge; values are % of the explainable variance
# (the scenes' noise ceiling). Negative estimates are kept (``clip=False``).
vp = variance_partitioning(spaces, fmri, cv=5, noise_ceiling=data.noise_ceiling,
                           n_iter=10, random_state=0)
summary = roi_summary(vp, data.rois)
print(f"{'ROI':>10} {'frozen only':>12} {'shared':>8} {'aligned only':>13} {'total':>7}")
for roi, s in summary.items():
    print(f"{roi:>10} {s.unique['frozen']:12.1f} {s.shared:8.1f} "
          f"{s.unique['aligned']:13.1f} {s.total:7.1f}")

# %%
# Aligned-only vs frozen-only predictions, with a bootstrap CI over test images
# -----------------------------------------------------------------------------
train, test = np.arange(350), np.arange(350, 500)
predictions = {name: VoxelRidgeCV().fit(X[train], fmri[train]).predict(X[test])
               for name, X in spaces.items()}
diff = paired_difference(fmri[test], predictions["aligned"], predictions["frozen"],
                         rois=data.rois, noise_ceiling=data.noise_ceiling,
                         n_boot=1000, random_state=0)
for roi, (mean, low, high) in diff.items():
    print(f"{roi:>10}: aligned - frozen = {mean:+5.1f} [{low:+5.1f}, {high:+5.1f}] "
          "points of noise-normalised score")

# %%
# The figure
# ----------
# Left: ROI means of the three Venn regions. Bars below zero are estimation
# noise of held-out R2 (see :ref:`analysis`), shown as measured, not clipped.
# Right: the paired difference of noise-normalised scores with its bootstrap
# 95% interval over the 150 test images; an interval above zero means the
# aligned space predicts that ROI better on these images.
rois = list(summary)
x = np.arange(len(rois))
fig, (ax_vp, ax_diff) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
parts = [("frozen only", [summary[r].unique["frozen"] for r in rois], "tab:gray"),
         ("shared", [summary[r].shared for r in rois], "tab:olive"),
         ("aligned only", [summary[r].unique["aligned"] for r in rois], "tab:blue")]
width = 0.27
for i, (label, values, color) in enumerate(parts):
    ax_vp.bar(x + (i - 1) * width, values, width, label=label, color=color)
ax_vp.axhline(0, color="black", linewidth=0.8)
ax_vp.set_xticks(x, rois)
ax_vp.set_ylabel("% of explainable variance (ROI mean)")
ax_vp.set_title("Variance partitioning (held out, banded ridge)")
ax_vp.legend(frameon=False)

means = np.array([diff[r][0] for r in rois])
errors = np.array([[diff[r][0] - diff[r][1], diff[r][2] - diff[r][0]] for r in rois]).T
ax_diff.bar(x, means, color="tab:blue", yerr=errors, capsize=4)
ax_diff.axhline(0, color="black", linewidth=0.8)
ax_diff.set_xticks(x, rois)
ax_diff.set_ylabel("aligned - frozen (noise-normalised score)")
ax_diff.set_title("Paired difference, 95% bootstrap CI")
plt.show()
