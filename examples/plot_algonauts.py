"""
Algonauts 2023, end to end
==========================

Load a subject in the Algonauts 2023 challenge layout, fit an LLM-aligned
encoding model on its training split, score a held-out part per ROI and
hemisphere, draw the scores on the brain surface, and write the challenge
submission (``subjXX/{lh,rh}_pred_test.npy``).

So that this runs anywhere, the script first writes a small data set in the
challenge's exact layout from synthetic scenes. With the real data, point
``root`` at the folder holding ``subj01`` ... ``subj08`` and skip that step;
``skvem algonauts --root DIR --subjects all --out DIR`` does all of this from
the command line for every subject, with a vision-language captioner and a
CLIP text encoder, and writes the same figures.
"""

# %%
# A small data set in the challenge layout
# ----------------------------------------
import os
import tempfile

import numpy as np
from skvem.datasets import make_scenes

root = tempfile.mkdtemp(prefix="algonauts-")
scenes = make_scenes(n_images=500, n_voxels=200, random_state=0)
n_train = 400
subject_dir = os.path.join(root, "subj01")
folders = {
    "train": os.path.join(subject_dir, "training_split", "training_images"),
    "test": os.path.join(subject_dir, "test_split", "test_images"),
}
for folder in [*folders.values(), os.path.join(subject_dir, "training_split", "training_fmri")]:
    os.makedirs(folder)
for i in range(len(scenes.images)):
    split = "train" if i < n_train else "test"
    number = i + 1 if split == "train" else i - n_train + 1
    scenes.images[i].save(os.path.join(folders[split], f"{split}-{number:04d}_nsd-{i:05d}.png"))

# %%
# The real data's vertices are a subset of fsaverage (163,842 vertices per
# hemisphere), named by the ``all-vertices_fsaverage_space`` masks. Here each
# hemisphere gets half of every simulated ROI, placed on the most posterior
# fsaverage vertices (an occipital patch, early voxels nearest the pole): a
# made-up placement that only serves the maps below. The noise ceilings are
# written as fractions, as in the challenge's files.
from nilearn.datasets import load_fsaverage

sphere = load_fsaverage("fsaverage5").inflated
columns = {"lh": np.arange(0, scenes.fmri.shape[1], 2), "rh": np.arange(1, scenes.fmri.shape[1], 2)}
roi_dir = os.path.join(subject_dir, "roi_masks")
ceiling_dir = os.path.join(subject_dir, "test_split", "noise_ceiling")
for folder in (roi_dir, ceiling_dir):
    os.makedirs(folder)
for hemi, side in (("lh", "left"), ("rh", "right")):
    # fsaverage5's vertices are fsaverage's first 10,242: valid fsaverage indices.
    vertices = np.argsort(sphere.parts[side].coordinates[:, 1])[: columns[hemi].size]
    # The files list vertices in index order: put the columns in that order too.
    columns[hemi] = columns[hemi][np.argsort(vertices)]
    mask = np.zeros(163842, dtype=np.float32)
    mask[vertices] = 1
    np.save(os.path.join(roi_dir, f"{hemi}.all-vertices_fsaverage_space.npy"), mask)
    np.save(os.path.join(subject_dir, "training_split", "training_fmri", f"{hemi}_training_fmri.npy"),
            scenes.fmri[:n_train, columns[hemi]])
    np.save(os.path.join(ceiling_dir, f"{hemi}_noise_ceiling.npy"),
            scenes.noise_ceiling[columns[hemi]] / 100)

# %%
# Load it as the real data would be loaded
# ----------------------------------------
from skvem.datasets import load_algonauts2023, write_algonauts_submission

data = load_algonauts2023(root, subject=1, rois=False)
print(data.DESCR)
print({hemi: v.size for hemi, v in data.fsaverage_vertices.items()}, "vertices on fsaverage")
# Where each simulated ROI's voxels ended up among the loaded columns.
scene_columns = np.concatenate([columns["lh"], columns["rh"]])
rois = {roi: np.flatnonzero(np.isin(scene_columns, idx)) for roi, idx in scenes.rois.items()}

# %%
# Captions from a callable
# ------------------------
# Any ``f(list of PIL images) -> list of str`` can be the captioner. This one
# looks the scene description up by the image's content fingerprint; in a
# real run ``CaptionTransformer(model="HuggingFaceTB/SmolVLM-256M-Instruct")``
# (or any captioner transformers loads) writes the descriptions.
from skvem.images import fingerprint_array

descriptions = dict(zip(scenes.images.fingerprints(), scenes.images.captions))


def look_up_description(images):
    return [descriptions[fingerprint_array(np.asarray(img))] for img in images]


look_up_description.cache_key = "scene-descriptions-v1"  # caches captions under this name

# %%
# Fit LLM-VEM and score a held-out part of the training split
# -----------------------------------------------------------
from sklearn.pipeline import make_pipeline

from skvem import (AlignedImageFeaturizer, CaptionTransformer, SentenceEmbedder,
                   VoxelRidgeCV)
from skvem.metrics import algonauts_score_voxels, pearson_r

text = make_pipeline(CaptionTransformer(model=look_up_description),
                     SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2"))
model = make_pipeline(
    AlignedImageFeaturizer(backbone="small-cnn", text=text, alignment_weight=0.1,
                           n_components=32, epochs=6, random_state=0),
    VoxelRidgeCV(),
)
train, val = np.arange(320), np.arange(320, 400)
model.fit(data.images[train], data.fmri[train])
pred = model.predict(data.images[val])
r = pearson_r(data.fmri[val], pred)
scores = algonauts_score_voxels(data.fmri[val], pred, data.noise_ceiling)
for hemi, cols in data.hemisphere_slices.items():
    print(f"{hemi}: mean r = {r[cols].mean():.3f}, "
          f"noise-normalised score = {np.nanmean(scores[cols]):.1f}% over {r[cols].size} vertices")

# %%
# Scores per ROI and hemisphere
# -----------------------------
# Bars are the mean over each ROI's vertices, with a 95% t-interval over
# those vertices.
from skvem.plotting import plot_roi_scores, plot_surface_scores

per_hemisphere = {
    hemi: {roi: scores[np.intersect1d(idx, np.arange(data.fmri.shape[1])[cols])]
           for roi, idx in rois.items()}
    for hemi, cols in data.hemisphere_slices.items()
}
plot_roi_scores(per_hemisphere, ylabel="noise-normalised score (%)",
                title="held-out training images")

# %%
# The same scores on the brain
# ----------------------------
# One value per vertex, drawn on nilearn's bundled fsaverage5 surface (the
# challenge vertices that are fsaverage5 vertices; see the user guide).
plot_surface_scores(scores, data, views=("posterior", "lateral", "medial"),
                    colorbar_label="noise-normalised score (%)",
                    title="LLM-VEM, held-out training images")

# %%
# Predict the test images and write the submission
# ------------------------------------------------
paths = write_algonauts_submission(os.path.join(root, "submission"), 1,
                                   model.predict(data.test_images), data.hemisphere_slices)
for path in paths:
    print(path, np.load(path).shape, np.load(path).dtype)
