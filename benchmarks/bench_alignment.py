"""Does alignment with language help? The evidence study behind the demo and the defaults.

On several make_scenes worlds (each world seed draws other scenes *and*
another simulated subject) with K-fold cross-validation on the same folds for
every model, for both regimes of the small CNN (``scratch``: random
initialisation; ``pretrained``: the language-pretrained ``pretrained="scenes"``
weights, whose world seed no world here uses):

* ``none``: fine-tuned on the fMRI without language (``text=None``);
* ``minilm``: the same fine-tuning plus the contrastive loss towards
  all-MiniLM-L6-v2 embeddings of the descriptions (LLM-VEM);
* ``shuffled``: negative control, the same alignment against the
  descriptions of other training images;
* ``positive``: positive control, the ground-truth description features
  (``skvem.app._targets.description_features``) as the text target;
* ``frozen``: the pretrained CNN frozen + ridge (pretrained regime only).

The gain of an arm over ``none`` is the paired difference per world x fold
(noise-normalised %, per ROI) with a 95 % Student-t interval over those
``worlds x folds`` values (folds share training images, so the interval is
somewhat too narrow; the worlds are independent). Further parts:

* ``select``: backbone_lr_scale for the pretrained backbone, chosen on a
  selection world (:data:`SELECT_WORLD`) by the score of the *no-language*
  model, so the choice cannot favour alignment;
* ``sweep``: alignment weight {0, 0.03, 0.1, 0.3, 1} (pretrained, MiniLM);
* ``curve``: training-set size (pretrained, none vs MiniLM), one fixed test
  set per world.

Every fit is one job whose result is appended to a JSON-lines cache
(``SKVEM_ALIGNMENT_CACHE``, default ``benchmarks/_alignment_cache.jsonl``),
so a run resumes where it stopped and ``--shard K/N`` splits the jobs between
processes. Run ``python benchmarks/run.py --only alignment --json
benchmarks/results.json``; ``--quick`` is a small smoke configuration.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

WORLDS = (11, 12, 13)
SELECT_WORLD = 4242
FULL = dict(n_images=600, folds=3, epochs=8, n_components=32, weight=0.1,
            sweep=(0.03, 0.1, 0.3, 1.0), sweep_worlds=(11,), curve_sizes=(250, 500, 1000),
            curve_worlds=(11,), curve_test=500, lr_scales=(0.01, 0.1, 1.0), worlds=WORLDS)
QUICK = dict(n_images=150, folds=2, epochs=2, n_components=8, weight=0.1, sweep=(0.1, 1.0),
             sweep_worlds=(11,), curve_sizes=(60, 120), curve_worlds=(11,), curve_test=60,
             lr_scales=(0.01, 1.0), worlds=(11, 12))
ARMS = {"pretrained": ("frozen", "none", "minilm", "shuffled", "positive"),
        "scratch": ("none", "minilm", "positive")}


def jobs(cfg, lr_scale=None):
    """Every fit of the study as ``(key, spec)``; ``lr_scale=None`` lists the selection part only."""
    out = []

    def add(**spec):
        out.append((json.dumps(spec, sort_keys=True), spec))

    for scale in cfg["lr_scales"]:
        for fold in range(cfg["folds"]):
            add(part="select", world=SELECT_WORLD, fold=fold, regime="pretrained", arm="none",
                weight=0.0, lr_scale=scale)
    if lr_scale is None:
        return out
    for world in cfg["worlds"]:
        for fold in range(cfg["folds"]):
            for regime, arms in ARMS.items():
                for arm in arms:
                    add(part="main", world=world, fold=fold, regime=regime, arm=arm,
                        weight=0.0 if arm in ("none", "frozen") else cfg["weight"],
                        lr_scale=lr_scale if regime == "pretrained" else 1.0)
    for world in cfg["sweep_worlds"]:
        for fold in range(cfg["folds"]):
            for w in cfg["sweep"]:
                if w != cfg["weight"] or world not in cfg["worlds"]:
                    add(part="main", world=world, fold=fold, regime="pretrained", arm="minilm",
                        weight=w, lr_scale=lr_scale)
    for world in cfg["curve_worlds"]:
        for n in cfg["curve_sizes"]:
            for arm in ("none", "minilm"):
                add(part="curve", world=world, n_train=n, n_total=max(cfg["curve_sizes"]) + cfg["curve_test"],
                    regime="pretrained", arm=arm,
                    weight=0.0 if arm == "none" else cfg["weight"], lr_scale=lr_scale)
    return out


_WORLDS = {}


def _world(seed, n_images):
    """make_scenes world + its text tables, cached per process.

    Keyed by size too: the noise ceilings are estimated from all scenes of
    the world, so every job of a part must see the same ``n_images``.
    """
    from skvem.app._targets import description_features
    from skvem.app.demo import embed_descriptions
    from skvem.datasets import make_scenes

    have = _WORLDS.get((seed, n_images))
    if have is None:
        data = make_scenes(n_images, random_state=seed)
        _WORLDS[seed, n_images] = have = {"data": data, "minilm": embed_descriptions(data, device="cpu"),
                                          "positive": description_features(data)}
    return have


def _model(spec, cfg, tables):
    from sklearn.pipeline import make_pipeline

    from skvem.app._targets import LookupTargets
    from skvem.encoding.ridge import VoxelRidgeCV
    from skvem.vision.featurizers import AlignedImageFeaturizer, ImageFeaturizer

    pretrained = "scenes" if spec["regime"] == "pretrained" else None
    if spec["arm"] == "frozen":
        return make_pipeline(ImageFeaturizer(backbone="small-cnn", pretrained=pretrained, device="cpu"),
                             VoxelRidgeCV())
    text = {"none": None,
            "minilm": LookupTargets(table=tables["minilm"]),
            "shuffled": LookupTargets(table=tables["minilm"], shuffle=True, random_state=spec.get("fold", 0)),
            "positive": LookupTargets(table=tables["positive"])}[spec["arm"]]
    return make_pipeline(
        AlignedImageFeaturizer(backbone="small-cnn", pretrained=pretrained, text=text,
                               alignment_weight=spec["weight"], n_components=cfg["n_components"],
                               epochs=cfg["epochs"], backbone_lr_scale=spec["lr_scale"], device="cpu",
                               random_state=spec.get("fold", spec.get("n_train", 0))),
        VoxelRidgeCV())


def run_job(spec, cfg):
    """Fit one model and return its per-ROI noise-normalised scores on the test images."""
    from sklearn.model_selection import KFold

    from skvem.app.demo import score_folds

    if spec["part"] == "curve":
        n_total = spec["n_total"]
        w = _world(spec["world"], n_total)
        # Train on the first n scenes, test on the same last curve_test scenes for every n.
        splits = [(np.arange(spec["n_train"]), np.arange(n_total - cfg["curve_test"], n_total))]
    else:
        w = _world(spec["world"], cfg["n_images"])
        folds = list(KFold(cfg["folds"], shuffle=True, random_state=spec["world"]).split(
            np.arange(cfg["n_images"])))
        splits = [folds[spec["fold"]]]
    data = w["data"]
    rois = dict(data.rois, all=np.arange(data.fmri.shape[1]))
    entry = score_folds(_model(spec, cfg, w), data.images, data, splits, rois, inspect=_training_info)
    return {"scores": {roi: v[0] for roi, v in entry["scores"].items()}, "seconds": entry["fit_seconds"][0],
            "training": entry["info"][0]}


def _training_info(pipeline):
    """Best epoch and epochs run of a fine-tuned model (what chose ``epochs`` and ``patience``)."""
    feat = pipeline.steps[0][1]
    if not hasattr(feat, "history_"):
        return None
    return {"best_epoch": int(feat.best_epoch_), "epochs_run": len(feat.history_)}


def _cache_path():
    return os.environ.get("SKVEM_ALIGNMENT_CACHE",
                          os.path.join(os.path.dirname(os.path.abspath(__file__)), "_alignment_cache.jsonl"))


# The settings a fit depends on; the rest of the configuration only says which fits run.
FIT_FIELDS = ("n_images", "folds", "epochs", "n_components")


def _load_cache(path, cfg_key):
    want = {f: json.loads(cfg_key)[f] for f in FIT_FIELDS}
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:  # a line cut by a crash
                    continue
                cfg = json.loads(rec.get("config", "{}"))
                if all(cfg.get(f) == v for f, v in want.items()):
                    done[rec["key"]] = rec["result"]
    return done


def _run_jobs(todo, cfg, cfg_key, shard, log):
    path = _cache_path()
    done = _load_cache(path, cfg_key)
    k, n = shard
    mine = [(key, spec) for i, (key, spec) in enumerate(todo) if i % n == k and key not in done]
    for i, (key, spec) in enumerate(mine):
        result = run_job(spec, cfg)
        # One short line per job, appended: concurrent shards do not interleave.
        with open(path, "a") as f:
            f.write(json.dumps({"config": cfg_key, "key": key, "result": result}) + "\n")
        log(f"[{i + 1}/{len(mine)}] {key}: all {result['scores']['all']:.1f} ({result['seconds']:.0f} s)")
    while True:  # the other shards' jobs
        done = _load_cache(path, cfg_key)
        if all(key in done for key, _ in todo):
            return done
        if n == 1:
            raise RuntimeError("jobs missing from the cache after running them")
        time.sleep(20)


def choose_lr_scale(done, cfg):
    """The backbone_lr_scale whose no-language model scores best over all voxels (selection world)."""
    means = {}
    for key, spec in jobs(cfg):
        means.setdefault(spec["lr_scale"], []).append(done[key]["scores"]["all"])
    return max(means, key=lambda s: np.mean(means[s])), {str(s): v for s, v in means.items()}


def _ci(values):
    from skvem.plotting import mean_confidence_interval

    m, h = mean_confidence_interval(values)
    return [m, m - h, m + h]


def summarise(done, cfg, lr_scale):
    """Per-ROI scores and paired gains with 95 % t-intervals over worlds x folds."""
    rows = {}
    for key, spec in jobs(cfg, lr_scale):
        if spec["part"] != "main" or key not in done:
            continue
        name = (spec["regime"], spec["arm"], spec["weight"])
        rows.setdefault(name, {})[(spec["world"], spec["fold"])] = done[key]["scores"]
    rois = list(next(iter(rows.values())).values())[0]
    scores, gains, values, sweep = {}, {}, {}, {}
    for (regime, arm, weight), cells in rows.items():
        label = f"{regime}/{arm}" + (f" (w={weight})" if arm == "minilm" and weight != cfg["weight"] else "")
        scores[label] = {roi: [c[roi] for c in cells.values()] for roi in rois}
        base = rows.get((regime, "none", 0.0), {})
        if arm != "none":
            cells_b = [cell for cell in cells if cell in base]
            diffs = {roi: [cells[c][roi] - base[c][roi] for c in cells_b] for roi in rois}
            gains[f"{label} - {regime}/none"] = {roi: _ci(v) + [len(v)] for roi, v in diffs.items()}
            values[f"{label} - {regime}/none"] = diffs
            if regime == "pretrained" and arm == "minilm":
                sweep_cells = [c for c in cells_b if c[0] in cfg["sweep_worlds"]]
                sweep[str(weight)] = {roi: _ci([cells[c][roi] - base[c][roi] for c in sweep_cells])
                                      for roi in rois}
    sweep["0.0"] = {roi: [0.0, 0.0, 0.0] for roi in rois}
    curve = {}
    for key, spec in jobs(cfg, lr_scale):
        if spec["part"] == "curve" and key in done:
            curve.setdefault(spec["arm"], {}).setdefault(str(spec["n_train"]), []).append(done[key]["scores"])
    training = {}
    for key, spec in jobs(cfg, lr_scale):
        info = done.get(key, {}).get("training")
        if info:
            t = training.setdefault(spec["regime"], {"best_epoch": [], "epochs_run": []})
            t["best_epoch"].append(info["best_epoch"])
            t["epochs_run"].append(info["epochs_run"])
    return {"scores": scores, "gains": gains, "gain_values": values, "training": training, "sweep": dict(sorted(sweep.items(), key=lambda kv: float(kv[0]))),
            "curve": curve, "rois": rois}


def run(quick=False, shard=(0, 1), log=None, cached_only=False):
    """Run (or, with ``cached_only``, only summarise the cached jobs of) the study."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    cfg = dict(QUICK if quick else FULL)
    cfg_key = _config_key(cfg)
    t0 = time.perf_counter()
    done = _load_cache(_cache_path(), cfg_key) if cached_only else _run_jobs(jobs(cfg), cfg, cfg_key, shard, log)
    lr_scale, select = choose_lr_scale(done, cfg)
    log(f"backbone_lr_scale for the pretrained backbone: {lr_scale} (selection world {SELECT_WORLD})")
    if not cached_only:
        done = _run_jobs(jobs(cfg, lr_scale), cfg, cfg_key, shard, log)
    out = summarise(done, cfg, lr_scale)
    out["missing_fits"] = [key for key, _ in jobs(cfg, lr_scale) if key not in done]
    out.update(config=json.loads(cfg_key), select_world=SELECT_WORLD, lr_scale=lr_scale,
               select_scores=select, n_fits=len(jobs(cfg, lr_scale)),
               fit_seconds=float(sum(done[k]["seconds"] for k, _ in jobs(cfg, lr_scale) if k in done)),
               seconds=time.perf_counter() - t0)
    return out


def run_scratch_part(quick=False, shard=(0, 1), log=None):
    """Fit only the from-scratch jobs (they need no pretrained weights); ``run`` reuses them."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    cfg = dict(QUICK if quick else FULL)
    todo = [(k, s) for k, s in jobs(cfg, lr_scale=1.0) if s["regime"] == "scratch"]
    _run_jobs(todo, cfg, _config_key(cfg), shard, log)


def _config_key(cfg):
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}, sort_keys=True)


def _fmt(ci):
    return f"{ci[0]:+6.1f} [{ci[1]:+5.1f}, {ci[2]:+5.1f}]"


def print_table(result):
    rois = result["rois"]
    c = result["config"]
    print(f"Alignment study: worlds {c['worlds']} x {c['folds']} folds, {c['n_images']} scenes, "
          f"{c['epochs']} epochs, n_components {c['n_components']}, weight {c['weight']}; "
          f"pretrained backbone_lr_scale {result['lr_scale']} (chosen on world {result['select_world']} "
          "by the no-language score)")
    print("\nScores (% of explainable variance, mean over worlds x folds)")
    print("model".ljust(34) + "".join(f"{r:>10}" for r in rois))
    for name, s in result["scores"].items():
        print(name.ljust(34) + "".join(f"{np.mean(s[r]):10.1f}" for r in rois))
    print("\nGain over no-language fine-tuning: mean [95 % t-interval over worlds x folds]")
    print("comparison".ljust(44) + "".join(f"{r:>24}" for r in rois))
    for name, g in result["gains"].items():
        print(name.ljust(44) + "".join(f"{_fmt(g[r]):>24}" for r in rois))
    print(f"\nAlignment-weight sweep (pretrained, MiniLM; worlds {c['sweep_worlds']}): gain over weight 0")
    for w, g in result["sweep"].items():
        print(f"w={w:<6}".ljust(12) + "".join(f"{_fmt(g[r]):>24}" for r in rois))
    for regime, t in result.get("training", {}).items():
        print(f"\n{regime}: best epoch {np.mean(t['best_epoch']):.1f} on average (range {min(t['best_epoch'])}-"
              f"{max(t['best_epoch'])}), {np.mean(np.array(t['epochs_run']) < c['epochs']) * 100:.0f} % of fits "
              f"stopped early (of {c['epochs']} epochs)")
    if result.get("missing_fits"):
        print(f"\n{len(result['missing_fits'])} of {result['n_fits']} fits missing (not run): left out above")
    print(f"\nLearning curve (pretrained; worlds {c['curve_worlds']}; test {c['curve_test']} scenes): all voxels")
    for arm, sizes in result["curve"].items():
        print(arm.ljust(10) + "".join(f"{n:>6}: {np.mean([s['all'] for s in v]):5.1f}" for n, v in sizes.items()))


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small smoke configuration")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--shard", default="0/1", help="K/N: run every N-th job starting at K")
    p.add_argument("--cached-only", action="store_true",
                   help="summarise the fits already in the cache (missing ones are listed) and stop")
    p.add_argument("--scratch-only", action="store_true",
                   help="fit only the from-scratch jobs (no pretrained weights needed) and stop")
    a = p.parse_args()
    k, n = (int(v) for v in a.shard.split("/"))
    if a.scratch_only:
        sys.exit(run_scratch_part(quick=a.quick, shard=(k, n)))
    r = run(quick=a.quick, shard=(k, n), cached_only=a.cached_only)
    print_table(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
