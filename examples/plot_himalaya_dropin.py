"""
Dropping skvem into a himalaya voxelwise script
===============================================

Voxelwise-modeling scripts (e.g. the gallantlab voxelwise tutorials) end with
``make_pipeline(StandardScaler(with_std=False), RidgeCV(...))`` on himalaya.
:class:`~skvem.VoxelRidgeCV` is a drop-in for that last step: same alphas,
same per-voxel choice, numpy outputs, and ``score`` is the mean voxel
correlation so ``cross_val_score`` needs no ``scoring=``. The features can
come from any skvem featurizer.

To keep a himalaya script exactly as it is (per-voxel R^2 ``score``, arrays of
the himalaya backend, ``KernelRidgeCV``, ``get_primal_coef``), change its import
line to ``from skvem.dropin import RidgeCV, KernelRidgeCV`` instead: see the
"Coming from himalaya" page of the user guide.
"""

# %%
import time

import numpy as np
from himalaya.backend import set_backend
from himalaya.ridge import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvem import ImageFeaturizer, VoxelRidgeCV
from skvem.datasets import make_scenes
from skvem.metrics import pearson_r

data = make_scenes(n_images=800, random_state=0)
features = ImageFeaturizer(backbone="small-cnn", random_state=0).fit_transform(data.images)
X_train, X_test = features[:600], features[600:]
# The tutorials z-score every voxel's responses before fitting; so do we, with
# the training statistics.
mean, std = data.fmri[:600].mean(0), data.fmri[:600].std(0)
Y_train, Y_test = (data.fmri[:600] - mean) / std, (data.fmri[600:] - mean) / std
alphas = np.logspace(-2, 6, 9)
cv = KFold(5)

# %%
# The himalaya script as it was
# -----------------------------
set_backend("numpy", on_error="warn")
t0 = time.perf_counter()
himalaya_model = make_pipeline(StandardScaler(with_std=False), RidgeCV(alphas=alphas, cv=cv))
himalaya_model.fit(X_train, Y_train)
himalaya_seconds = time.perf_counter() - t0
r_himalaya = pearson_r(Y_test, np.asarray(himalaya_model.predict(X_test)))

# %%
# The same script with skvem's ridge
# ----------------------------------
# himalaya's RidgeCV fits no intercept by default (the data are centred);
# skvem's does, since raw fMRI responses often are not. Matching it makes the
# two choose the same alpha per voxel.
t0 = time.perf_counter()
skvem_model = make_pipeline(StandardScaler(with_std=False),
                            VoxelRidgeCV(alphas=alphas, cv=cv, fit_intercept=False))
skvem_model.fit(X_train, Y_train)
skvem_seconds = time.perf_counter() - t0
r_skvem = skvem_model[-1].score_voxels(skvem_model[0].transform(X_test), Y_test)

# himalaya keeps its alphas in float32: compare them as such.
same_alpha = np.mean(np.isclose(skvem_model[-1].best_alphas_,
                                np.asarray(himalaya_model[-1].best_alphas_), rtol=1e-6))
print(f"himalaya RidgeCV: mean r = {r_himalaya.mean():.4f} ({himalaya_seconds:.2f} s)")
print(f"skvem VoxelRidgeCV: mean r = {r_skvem.mean():.4f} ({skvem_seconds:.2f} s)")
print(f"same alpha for {100 * same_alpha:.1f}% of voxels; "
      f"largest prediction difference {np.abs(r_skvem - r_himalaya).max():.2e} in r")

# %%
# The two side by side: every voxel's test correlation, and the alpha each
# chose for it.
import matplotlib.pyplot as plt

fig, (ax_r, ax_alpha) = plt.subplots(1, 2, figsize=(8, 3.6), layout="constrained")
ax_r.scatter(r_himalaya, r_skvem, s=8, alpha=0.6)
limits = [min(r_himalaya.min(), r_skvem.min()), max(r_himalaya.max(), r_skvem.max())]
ax_r.plot(limits, limits, color="0.4", linewidth=0.8)
ax_r.set(xlabel="himalaya RidgeCV: test r", ylabel="skvem VoxelRidgeCV: test r",
         title="per voxel")
bins = np.arange(-2.5, 7.5)
ax_alpha.hist([np.log10(np.asarray(himalaya_model[-1].best_alphas_)),
               np.log10(skvem_model[-1].best_alphas_)], bins=bins,
              label=["himalaya", "skvem"])
ax_alpha.set(xlabel="log10 alpha chosen", ylabel="voxels", title="per-voxel alpha")
ax_alpha.legend(frameon=False)
