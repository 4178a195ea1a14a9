"""
Algonauts 2023, end to end
==========================

Load a subject in the Algonauts 2023 challenge layout, fit an LLM-aligned
encoding model on its training split, score a held-out part per hemisphere,
and write the challenge submission (``subjXX/{lh,rh}_pred_test.npy``).

So that this runs anywhere, the script first writes a small data set in the
challenge's exact layout from synthetic scenes. With the real data, point
``root`` at the folder holding ``subj01`` ... ``subj08`` and skip that step;
``skvem algonauts --root DIR --subject 1 --out DIR`` does all of this from
the command line with a vision-language captioner and a CLIP text encoder.
"""

# %%
# A small data set in the challenge layout
# ----------------------------------------
import os
import tempfile

import numpy as np
from PIL import Image

from skvem.datasets import make_scenes

root = tempfile.mkdtemp(prefix="algonauts-")
scenes = make_scenes(n_images=500, random_state=0)
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
half = scenes.fmri.shape[1] // 2
np.save(os.path.join(subject_dir, "training_split", "training_fmri", "lh_training_fmri.npy"),
        scenes.fmri[:n_train, :half])
np.save(os.path.join(subject_dir, "training_split", "training_fmri", "rh_training_fmri.npy"),
        scenes.fmri[:n_train, half:])

# %%
# Load it as the real data would be loaded
# ----------------------------------------
from skvem.datasets import load_algonauts2023, write_algonauts_submission

data = load_algonauts2023(root, subject=1, rois=False)
print(data.DESCR)

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
from skvem.metrics import pearson_r

text = make_pipeline(CaptionTransformer(model=look_up_description),
                     SentenceEmbedder(model="sentence-transformers/all-MiniLM-L6-v2"))
model = make_pipeline(
    AlignedImageFeaturizer(backbone="small-cnn", text=text, alignment_weight=0.1,
                           n_components=32, epochs=6, random_state=0),
    VoxelRidgeCV(),
)
train, val = np.arange(320), np.arange(320, 400)
model.fit(data.images[train], data.fmri[train])
r = pearson_r(data.fmri[val], model.predict(data.images[val]))
for hemi, columns in data.hemisphere_slices.items():
    print(f"{hemi}: mean r = {r[columns].mean():.3f} over {r[columns].size} vertices")

# %%
# Predict the test images and write the submission
# ------------------------------------------------
paths = write_algonauts_submission(os.path.join(root, "submission"), 1,
                                   model.predict(data.test_images), data.hemisphere_slices)
for path in paths:
    print(path, np.load(path).shape, np.load(path).dtype)
