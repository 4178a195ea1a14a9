"""Do the featurizers add overhead over plain PyTorch? Side by side, in one process.

Training: ``AlignedImageFeaturizer.fit`` against a hand-written PyTorch loop
with the same network (backbone, standardisation, voxel and projection heads),
the same batches, loss (MSE on PCA targets + 0.1 * symmetric InfoNCE),
optimiser (AdamW, warm-up + cosine, gradient clipping) and data preparation
(decode + resize once, normalise per batch). Both report images per second
over all training epochs, end to end (data preparation included) and for
one epoch in steady state; the estimator holds out nothing here, and its
end-to-end time includes its one fixed extra, an inference pass over the
training images for exact feature statistics.

Inference: ``ImageFeaturizer.transform`` (cache disabled) against a bare
``torch.inference_mode`` loop that decodes, resizes and normalises the same
images batch by batch; and the same transform with a warm feature cache.

Backbones: the built-in small CNN at 64 px, and a small ViT (transformers,
2 layers, 64 px, random init) unless ``--quick``. Runs alternate and the
best of ``repeats`` is kept, so load from other processes weighs on both
sides alike. A ratio >= 0.9 means the estimator adds no real overhead.

Run::

    python benchmarks/bench_featurizers.py [--quick] [--json PATH]
"""

from __future__ import annotations

import math
import os
import tempfile
import time

import numpy as np

ALIGNMENT_WEIGHT = 0.1


def _images(n, size=80, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)  # blocky, like drawn scenes


def _backbone_spec(kind, folder):
    if kind == "small-cnn":
        return "small-cnn"
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = os.path.join(folder, "vit")
    if not os.path.isdir(path):
        config = ViTConfig(image_size=64, patch_size=8, hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=128)
        ViTModel(config).save_pretrained(path)
        ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(path)
    return f"hf:{path}"


# ---------------------------------------------------------------------------
# The plain PyTorch versions
# ---------------------------------------------------------------------------


def _plain_train(spec, images, fmri, text, *, epochs, batch_size, n_components, lr, seed):
    """What a user would write by hand: same model, batches, loss and optimiser."""
    import torch
    import torch.nn.functional as F
    from sklearn.decomposition import PCA
    from torch import nn

    from skvem.vision.backbones import resolve_backbone
    from skvem.vision.contrastive import SymmetricInfoNCE

    torch.manual_seed(seed)
    bb = resolve_backbone(spec, None, seed=seed)
    pre = bb.preprocess
    from PIL import Image

    pixels = torch.stack([pre.to_uint8(Image.fromarray(im)) for im in images])
    z = (fmri - fmri.mean(0)) / fmri.std(0)
    pca = PCA(n_components, random_state=seed).fit(z)
    targets = torch.as_tensor(pca.transform(z) / np.sqrt(pca.explained_variance_.mean()), dtype=torch.float32)
    text_t = torch.as_tensor(text, dtype=torch.float32)
    backbone = bb.module
    with torch.no_grad():
        n_features = backbone(pre.normalize(pixels[:2])).flatten(1).shape[1]
    norm = nn.BatchNorm1d(n_features, affine=False)
    voxel_head = nn.Linear(n_features, n_components)
    projection = nn.Linear(n_features, text.shape[1])
    infonce = SymmetricInfoNCE()
    params = [*backbone.parameters(), *voxel_head.parameters(), *projection.parameters(), *infonce.parameters()]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.01},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=lr)
    n = len(images)
    g = torch.Generator().manual_seed(seed)
    n_batches = math.ceil(n / batch_size)
    epoch_seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        backbone.train()
        order = torch.randperm(n, generator=g).numpy()
        for b, idx in enumerate(np.array_split(order, n_batches)):
            frac = (epoch + b / n_batches) / epochs
            factor = frac / 0.1 if frac < 0.1 else 0.5 * (1 + math.cos(math.pi * (frac - 0.1) / 0.9))
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
            idx = torch.as_tensor(idx)
            feats = norm(backbone(pre.normalize(pixels[idx])).flatten(1))
            loss = F.mse_loss(voxel_head(feats), targets[idx])
            loss = loss + ALIGNMENT_WEIGHT * infonce(projection(feats), text_t[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
    return epoch_seconds


def _plain_inference(module, pre, images, batch_size):
    import torch
    from PIL import Image

    module.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.stack([pre.to_uint8(Image.fromarray(im)) for im in images[start : start + batch_size]])
            out.append(module(pre.normalize(batch)).flatten(1).numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------------------
# Side-by-side runs
# ---------------------------------------------------------------------------


def _timed(fn):
    """(wall seconds, process CPU seconds) of one call.

    CPU time is reported too because this machine may be shared: other
    processes slow the wall clock of both sides, but not the CPU time spent.
    """
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _side_by_side(estimator, plain, repeats):
    """Best wall and CPU times of both sides, alternating runs so both see the same load.

    One untimed run of each side first: imports and first-call costs of
    torch kernels are not what is compared.
    """
    estimator()
    plain()
    best = {"estimator": [math.inf, math.inf], "plain": [math.inf, math.inf]}
    for _ in range(repeats):
        for name, fn in (("plain", plain), ("estimator", estimator)):
            wall, cpu = _timed(fn)
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    return best


def _summary(best, work):
    (ew, ec), (pw, pc) = best["estimator"], best["plain"]
    return {
        "estimator_images_per_s": work / ew, "plain_images_per_s": work / pw, "ratio": pw / ew,
        "estimator_cpu_s": ec, "plain_cpu_s": pc, "cpu_ratio": pc / ec,
    }


def _training(spec, n, epochs, batch_size, repeats):
    from skvem.vision.featurizers import AlignedImageFeaturizer

    images = _images(n)
    rng = np.random.default_rng(1)
    fmri = rng.normal(size=(n, 200)).astype(np.float32)
    text = rng.normal(size=(n, 32)).astype(np.float32)
    kw = dict(epochs=epochs, batch_size=batch_size, n_components=32, lr=1e-3, seed=0)

    epochs_s = {"estimator": [], "plain": []}

    def estimator():
        est = AlignedImageFeaturizer(
            backbone=spec, pretrained=None, text=lambda _: text, alignment_weight=ALIGNMENT_WEIGHT,
            n_components=kw["n_components"], epochs=epochs, frozen_epochs=0, backbone_lr_scale=1.0,
            batch_size=batch_size, lr=kw["lr"], validation_fraction=None, device="cpu", random_state=0,
        ).fit(images, fmri)
        epochs_s["estimator"] += [h["seconds"] for h in est.history_]

    def plain():
        epochs_s["plain"] += _plain_train(spec, images, fmri, text, **kw)

    best = _side_by_side(estimator, plain, repeats)
    # Per epoch (steady state): the end-to-end times above also carry the
    # estimator's fixed costs (one inference pass over the training images
    # for the exact feature statistics).
    est_epoch, plain_epoch = min(epochs_s["estimator"]), min(epochs_s["plain"])
    return {
        "n_images": n, "epochs": epochs, "batch_size": batch_size, **_summary(best, n * epochs),
        "epoch_images_per_s": n / est_epoch, "plain_epoch_images_per_s": n / plain_epoch,
        "epoch_ratio": plain_epoch / est_epoch,
    }


def _inference(spec, n, batch_size, repeats):
    from skvem.vision.featurizers import ImageFeaturizer
    from skvem.images import ImageSet

    images = _images(n, seed=2)
    est = ImageFeaturizer(backbone=spec, pretrained=None, random_state=0, batch_size=batch_size,
                          cache_dir=False, device="cpu").fit(images[:2])
    bb = est._backbone
    best = _side_by_side(lambda: est.transform(ImageSet(images)),
                         lambda: _plain_inference(bb.module, bb.preprocess, images, batch_size), repeats)
    out = {"n_images": n, "batch_size": batch_size, **_summary(best, n)}
    with tempfile.TemporaryDirectory() as cache:
        cached = ImageFeaturizer(backbone=spec, pretrained=None, random_state=0, batch_size=batch_size,
                                 cache_dir=cache, device="cpu").fit(images[:2])
        cached.transform(images)  # fills the cache
        # A fresh ImageSet, as in a new fold: fingerprints are hashed again.
        hit = min(_timed(lambda: cached.transform(ImageSet(images.copy())))[0] for _ in range(repeats))
    out["cache_hit_images_per_s"] = n / hit
    out["cache_hit_speedup"] = best["plain"][0] / hit
    return out


def run(quick: bool = False) -> dict:
    import torch

    repeats = 2 if quick else 3
    kinds = ["small-cnn"] if quick else ["small-cnn", "vit"]
    results = {"benchmark": "featurizers", "quick": quick, "torch_threads": torch.get_num_threads(), "runs": []}
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            spec = _backbone_spec(kind, folder)
            n_train = 192 if quick else 512
            epochs = 2 if quick else 4
            train = _training(spec, n_train, epochs, 64, repeats)
            infer = _inference(spec, 256 if quick else 1024, 64, repeats)
            results["runs"].append({"backbone": kind, "image_size": 64, "training": train, "inference": infer})
    return results


def print_table(results):
    print(f"featurizers vs plain PyTorch (CPU, {results['torch_threads']} threads; best of runs)")
    print("ratio = estimator speed / plain speed (wall clock); cpu = the same on process CPU time")
    print(f"{'backbone':<10}{'task':<24}{'estimator img/s':>16}{'plain img/s':>13}{'ratio':>7}{'cpu':>6}")
    for r in results["runs"]:
        t, i = r["training"], r["inference"]
        print(f"{r['backbone']:<10}{'AlignedImageFeaturizer':<24}{t['estimator_images_per_s']:>16.1f}"
              f"{t['plain_images_per_s']:>13.1f}{t['ratio']:>7.2f}{t['cpu_ratio']:>6.2f}")
        print(f"{'':<10}{'  ... one epoch':<24}{t['epoch_images_per_s']:>16.1f}"
              f"{t['plain_epoch_images_per_s']:>13.1f}{t['epoch_ratio']:>7.2f}")
        print(f"{'':<10}{'ImageFeaturizer':<24}{i['estimator_images_per_s']:>16.1f}"
              f"{i['plain_images_per_s']:>13.1f}{i['ratio']:>7.2f}{i['cpu_ratio']:>6.2f}")
        print(f"{'':<10}{'  ... warm cache':<24}{i['cache_hit_images_per_s']:>16.1f}"
              f"{i['plain_images_per_s']:>13.1f}{i['cache_hit_speedup']:>7.2f}")


_NAMES = {"small-cnn": "small CNN", "vit": "small ViT"}


def summary_rows(results):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    rows = []
    for r in results["runs"]:
        t, i = r["training"], r["inference"]
        name = f"{_NAMES.get(r['backbone'], r['backbone'])}, {r['image_size']} px"
        rows.append((f"`AlignedImageFeaturizer` training, {name}",
                     f"{t['estimator_images_per_s']:.0f} img/s",
                     f"hand-written PyTorch loop, same model/batch/loss: "
                     f"{t['plain_images_per_s']:.0f} img/s",
                     f"{t['ratio']:.2f} ({t['epoch_ratio']:.2f} per epoch)"))
        rows.append((f"`ImageFeaturizer`, {name}", f"{i['estimator_images_per_s']:.0f} img/s",
                     f"bare `inference_mode` loop: {i['plain_images_per_s']:.0f} img/s",
                     f"{i['ratio']:.2f}; warm cache {i['cache_hit_speedup']:.1f}× faster"))
    return rows


def main(argv=None):
    from _cli import bench_main

    return bench_main(__doc__, run, print_table, 'smaller sizes, small CNN only', argv)


if __name__ == "__main__":
    main()
