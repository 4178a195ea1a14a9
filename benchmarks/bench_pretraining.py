"""How much language pretraining does the small CNN need? (the shipped weights' study)

Pretrains SmallCNN CLIP-style (``skvem.app.pretrain_scenes``) on nested
prefixes of the reserved pretraining world (make_scenes is prefix-stable),
all for the same number of epochs, and measures

* the pretraining curve: train / held-out InfoNCE loss and held-out
  image->text top-1 retrieval (1,000 held-out scenes) per epoch;
* frozen-feature encoding scores: the pretrained CNN frozen + VoxelRidgeCV,
  K-fold CV on a *selection* world (:data:`SELECTION_SEED`, a seed used by
  nothing else), noise-normalised % per ROI, against the pretraining data
  size (0 = random initialisation).

Alignment gains play no part in the choice: the size is the smallest after
which the frozen scores stop improving.

Run: ``python benchmarks/run.py --only pretraining --json benchmarks/results.json``
(``--quick``: sizes 1,000 and 2,000, 2 epochs).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

SELECTION_SEED = 4242
# Largest first: it is the shipped configuration, the others only its curve.
SIZES = (5000, 2500, 1250)
EPOCHS = 8
QUICK_SIZES = (2000, 1000)
QUICK_EPOCHS = 2


def frozen_scores(module, preprocess, data, folds, seed):
    """Frozen features of ``module`` + VoxelRidgeCV: per-ROI noise-normalised % (per fold)."""
    import torch
    from sklearn.model_selection import KFold

    from skvem.encoding.ridge import VoxelRidgeCV
    from skvem.metrics import algonauts_score_voxels

    X = torch.from_numpy(np.ascontiguousarray(data.images.to_numpy().transpose(0, 3, 1, 2)))
    module.eval()
    with torch.no_grad():
        F = torch.cat([module(preprocess.normalize(X[i:i + 512])) for i in range(0, len(X), 512)])
    F = F.numpy().astype(np.float32)
    rois = dict(data.rois, all=np.arange(data.fmri.shape[1]))
    out = {roi: [] for roi in rois}
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(F):
        pred = VoxelRidgeCV().fit(F[train], data.fmri[train]).predict(F[test])
        s = algonauts_score_voxels(data.fmri[test], pred, data.noise_ceiling)
        for roi, idx in rois.items():
            out[roi].append(float(np.nanmean(s[idx])))
    return out


def _cached_corpus(path, n):
    """The pretraining corpus, drawn and embedded once (20 minutes on a busy 2-core machine)."""
    from skvem._utils.files import atomic_path
    from skvem.app.pretrain_scenes import scene_corpus

    while os.environ.get("SKVEM_PRETRAIN_WAIT") and not os.path.exists(path):
        time.sleep(15)  # another process is drawing it
    if os.path.exists(path):
        with np.load(path) as z:
            return z["pixels"], z["text"]
    pixels, text = scene_corpus(n, verbose=False)
    with atomic_path(path) as tmp:
        np.savez(tmp, pixels=pixels, text=text)
    return pixels, text


def run(quick=False, log=None):
    from skvem.app.pretrain_scenes import PretrainSettings, run_pretraining
    from skvem.datasets import make_scenes
    from skvem.vision.backbones import resolve_backbone

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    sizes, epochs = (QUICK_SIZES, QUICK_EPOCHS) if quick else (SIZES, EPOCHS)
    # Several processes may share the sizes (SKVEM_PRETRAIN_SIZES=2500,1250); a
    # weights file that exists already is evaluated, not trained again.
    run_sizes = [int(v) for v in os.environ.get("SKVEM_PRETRAIN_SIZES", "").split(",") if v] or sizes
    n_eval, folds = (600, 3) if quick else (1200, 3)
    t0 = time.perf_counter()
    out_dir = os.environ.get("SKVEM_PRETRAIN_OUT", os.path.join("benchmarks", "_pretraining"))
    corpus = _cached_corpus(os.path.join(out_dir, f"corpus_{max(sizes)}.npz"), max(sizes))
    log(f"corpus of {len(corpus[0])} scenes in {time.perf_counter() - t0:.0f} s")
    sel = make_scenes(n_eval, random_state=SELECTION_SEED)
    bb = resolve_backbone("small-cnn", None, seed=PretrainSettings.seed)
    result = {
        "config": {"sizes": list(sizes), "epochs": epochs, "selection_seed": SELECTION_SEED,
                   "n_eval": n_eval, "folds": folds, "torch_threads": _threads()},
        "frozen": {"0": frozen_scores(bb.module, bb.preprocess, sel, folds, SELECTION_SEED)},
        "curves": {},
        "seconds": {},
    }
    import torch

    for n in run_sizes:
        t1 = time.perf_counter()
        settings = PretrainSettings(n_images=n, epochs=epochs)
        path = os.path.join(out_dir, f"small_cnn_scenes_{n}.pt")
        if os.path.exists(path):
            meta = torch.load(path, weights_only=True)["meta"]
            result["curves"][str(n)], result["seconds"][str(n)] = meta["history"], meta["seconds"]
            bb = resolve_backbone("small-cnn", path)
            result["frozen"][str(n)] = frozen_scores(bb.module, bb.preprocess, sel, folds, SELECTION_SEED)
            continue
        per_epoch = []

        def on_epoch(record, module, n=n):
            # Frozen scores along the largest run: the curve over epochs.
            if n == sizes[0]:
                per_epoch.append(frozen_scores(module, bb.preprocess, sel, folds, SELECTION_SEED))
                log(f"n={n} epoch {record['epoch']}: loss {record['train_loss']:.3f} / "
                    f"{record['val_loss']:.3f}, top-1 {100 * record['val_top1']:.1f} %, frozen all "
                    f"{np.mean(per_epoch[-1]['all']):.1f}")

        hist = run_pretraining(settings, out=path, corpus=corpus, verbose=False, log=log,
                               on_epoch=on_epoch)
        if per_epoch:
            result["frozen_per_epoch"] = {"n_images": n, "scores": per_epoch}
        result["seconds"][str(n)] = time.perf_counter() - t1
        result["curves"][str(n)] = hist
        bb = resolve_backbone("small-cnn", path)
        result["frozen"][str(n)] = frozen_scores(bb.module, bb.preprocess, sel, folds, SELECTION_SEED)
        log(f"n={n}: {result['seconds'][str(n)]:.0f} s; frozen all "
            f"{np.mean(result['frozen'][str(n)]['all']):.1f}")
    result["total_seconds"] = time.perf_counter() - t0
    return result


def _threads():
    import torch

    return torch.get_num_threads()


def print_table(result):
    rois = list(next(iter(result["frozen"].values())))
    print(f"Frozen pretrained SmallCNN + ridge on selection world {result['config']['selection_seed']} "
          f"({result['config']['n_eval']} scenes, {result['config']['folds']}-fold; % explainable, "
          "mean ± sd over folds)")
    print("pretraining scenes".ljust(20) + "".join(f"{r:>14}" for r in rois))
    for n, scores in result["frozen"].items():
        cells = "".join(f"{np.mean(scores[r]):8.1f} ± {np.std(scores[r]):3.1f}" for r in rois)
        print(n.ljust(20) + cells)
    print("\nPretraining curves (held-out 1,000 scenes)")
    print("scenes  epoch  train loss  val loss  val top-1 %  seconds")
    for n, hist in result["curves"].items():
        for rec in hist:
            print(f"{n:>6} {rec['epoch']:>6} {rec['train_loss']:>11.3f} {rec['val_loss']:>9.3f} "
                  f"{100 * rec['val_top1']:>12.1f} {rec['seconds']:>8.0f}")


if __name__ == "__main__":
    from _cli import bench_main

    bench_main(__doc__, run, print_table, "sizes 1,000 and 2,000 scenes, 2 epochs")
