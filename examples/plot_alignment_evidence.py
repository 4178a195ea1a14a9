"""
Does alignment with language help? The evidence study, drawn
============================================================

``benchmarks/bench_alignment.py`` fine-tunes the small CNN on simulated fMRI
of several synthetic worlds (K-fold cross-validation, the same folds for
every model), from a random initialisation and from the language-pretrained
``pretrained="scenes"`` weights, with and without the contrastive loss
towards MiniLM embeddings of the scene descriptions, and with two controls:
the ground-truth description features as the text target (positive) and
shuffled descriptions (negative). This example draws what it measured,
from ``benchmarks/results.json`` (the run reported in the user guide); if
that file holds no alignment study it runs the study's ``--quick``
configuration (a few minutes on a laptop).

Left: the gain of each arm over fine-tuning without language, per ROI, with
95 % Student-t intervals over worlds x folds. Middle: the gain against the
alignment weight. Right: the learning curve over training-set size.
"""

# %%
import json
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

from skvem.plotting import mean_confidence_interval, plot_learning_curve, plot_roi_scores

here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
bench = os.path.join(here, os.pardir, "benchmarks")
stored = os.path.join(bench, "results.json")
result = None
if os.path.exists(stored):
    with open(stored) as f:
        result = json.load(f).get("benchmarks", {}).get("alignment")
if result is None:
    sys.path.insert(0, bench)
    import bench_alignment

    result = bench_alignment.run(quick=True)

cfg = result["config"]
print(f"worlds {cfg['worlds']} x {cfg['folds']} folds, {cfg['n_images']} scenes, {cfg['epochs']} epochs")

# %%
# The gain of every arm over no-language fine-tuning (paired, same folds).
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), layout="constrained",
                         gridspec_kw={"width_ratios": [3, 2, 2]})
plot_roi_scores(result["gain_values"], rois=result["rois"], ax=axes[0],
                ylabel="gain over no language (points of explainable variance)",
                title="alignment and its controls")
axes[0].axhline(0, color="k", lw=0.8)

# %%
# The alignment-weight sweep (pretrained backbone, MiniLM target).
weights = [float(w) for w in result["sweep"]]
for roi in result["rois"]:
    mean = [result["sweep"][w][roi][0] for w in result["sweep"]]
    low = [result["sweep"][w][roi][1] for w in result["sweep"]]
    high = [result["sweep"][w][roi][2] for w in result["sweep"]]
    x = np.asarray(weights) + 0.01  # weight 0 on a log axis
    axes[1].plot(x, mean, marker="o", label=roi)
    axes[1].fill_between(x, low, high, alpha=0.15)
axes[1].set_xscale("log")
axes[1].axhline(0, color="k", lw=0.8)
axes[1].set_xlabel("alignment weight (+0.01)")
axes[1].set_ylabel("gain over weight 0")
axes[1].set_title(f"weight sweep (worlds {cfg['sweep_worlds']})")
axes[1].legend(frameon=False, fontsize="small")

# %%
# The learning curve: all voxels, per training-set size.
curves = {arm: {int(n): [s["all"] for s in cells] for n, cells in sizes.items()}
          for arm, sizes in result["curve"].items()}
if curves:
    plot_learning_curve(curves, ax=axes[2], logx=True, ylabel="all voxels (%)",
                        title=f"learning curve (worlds {cfg['curve_worlds']})")
else:  # the stored run may lack the curve (see missing_fits)
    axes[2].text(0.5, 0.5, "learning curve not run", ha="center", transform=axes[2].transAxes)
plt.show()

# %%
# The numbers behind the left panel.
for name, per_roi in result["gain_values"].items():
    cells = []
    for roi in result["rois"]:
        m, h = mean_confidence_interval(per_roi[roi])
        cells.append(f"{roi} {m:+.1f} ± {h:.1f}")
    print(f"{name:<42} " + ", ".join(cells))
