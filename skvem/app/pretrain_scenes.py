"""Pretrain the small CNN CLIP-style on synthetic scenes: the laptop stand-in for EVA02-CLIP.

LLM-VEM fine-tunes an image encoder that was *already* aligned with language
(EVA02-CLIP) on scarce fMRI. The built-in ``"small-cnn"`` starts from random
weights, a regime the method never used. This job gives it a language
pretraining of its own: symmetric InfoNCE (CLIP's loss,
:class:`skvem.vision.contrastive.SymmetricInfoNCE`) between the CNN's
projected features and sentence-model embeddings (the demo's
all-MiniLM-L6-v2) of the descriptions of :func:`skvem.datasets.make_scenes`
images drawn from a world seed reserved for pretraining,
:data:`PRETRAIN_SEED`. No fMRI is used.

The shipped weights (``pretrained="scenes"``) are the output of
``skvem pretrain-scenes`` with its defaults; the run is deterministic on the
CPU given the seed (bit for bit with the same number of torch threads).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "PRETRAIN_SEED",
    "PretrainSettings",
    "scene_corpus",
    "pretrain_contrastive",
    "run_pretraining",
    "save_weights",
]

# The world seed of the pretraining scenes. No demo, test, example or
# benchmark draws a make_scenes world with it (tests/test_pretrain_scenes.py
# checks the seeds they use), so the pretrained backbone has never seen the
# scenes - nor the simulated subject - it is evaluated on.
PRETRAIN_SEED = 918_273

# The first scenes of the pretraining world are held out: validation loss and
# retrieval accuracy. make_scenes is prefix-stable, so a larger pretraining
# set keeps the same validation scenes and contains every smaller one.
N_VALIDATION = 1000


@dataclass(frozen=True)
class PretrainSettings:
    """Settings of the pretraining run; the defaults made the shipped weights.

    The data size and epochs were chosen from the pretraining study
    (``benchmarks/bench_pretraining.py``): see docs/user_guide/method.rst.
    """

    n_images: int = 2500
    epochs: int = 8
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    seed: int = PRETRAIN_SEED
    text_model: str = "sentence-transformers/all-MiniLM-L6-v2"


def scene_corpus(n_images, *, seed=PRETRAIN_SEED, text_model=None, device="cpu", verbose=False):
    """Images and text embeddings of the pretraining world.

    Parameters
    ----------
    n_images : int
        Training scenes; :data:`N_VALIDATION` more are drawn first and held out.
    seed : int, default=PRETRAIN_SEED
    text_model : str, optional
        Sentence-transformers model (default: the demo's).
    device : str, default="cpu"
    verbose : bool, default=False

    Returns
    -------
    pixels : ndarray of uint8, shape (N_VALIDATION + n_images, 64, 64, 3)
    text : ndarray of float32, shape (N_VALIDATION + n_images, d)
        L2-normalised sentence embeddings of the descriptions.
    """
    from skvem.datasets import make_scenes
    from skvem.language.text import SentenceEmbedder

    text_model = text_model or PretrainSettings.text_model
    # Only images and descriptions are used; the smallest subject keeps the
    # simulated voxels (unused here) cheap.
    data = make_scenes(N_VALIDATION + n_images, n_voxels=1, n_repeats=1, random_state=seed,
                       verbose=verbose)
    pixels = data.images.to_numpy()
    embedder = SentenceEmbedder(model=text_model, device=device, normalize=True, verbose=verbose)
    text = embedder.fit(data.descriptions).transform(list(data.descriptions))
    return pixels, np.asarray(text, dtype=np.float32)


def _retrieval_top1(img, txt):
    """Fraction of images whose own text is the nearest of all texts (cosine)."""
    import torch.nn.functional as F

    sim = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T
    return float((sim.argmax(dim=1) == np.arange(len(sim))).float().mean()) if len(sim) else 0.0


def pretrain_contrastive(backbone, preprocess, pixels, text, *, val_pixels=None, val_text=None,
                         epochs=8, batch_size=256, lr=2e-3, weight_decay=0.05,
                         warmup_fraction=0.05, seed=0, verbose=False, on_epoch=None):
    """Train ``backbone`` + a linear projection with symmetric InfoNCE against fixed text.

    Parameters
    ----------
    backbone : torch.nn.Module
        ``(B, 3, H, W)`` -> ``(B, n_features)``; trained in place.
    preprocess : skvem.vision.backbones.Preprocess
        Normalises uint8 batches (``normalize``).
    pixels : ndarray of uint8, shape (n, H, W, 3)
    text : ndarray of float32, shape (n, d)
    val_pixels, val_text : arrays, optional
        Held-out pairs for the validation loss and image->text top-1 retrieval.
    epochs, batch_size, lr, weight_decay, warmup_fraction : training schedule
        AdamW with linear warm-up then cosine decay over all steps.
    seed : int
        Seeds the projection, the temperature and the batch order.
    verbose : bool
        A progress bar over the steps.
    on_epoch : callable, optional
        ``on_epoch(record, backbone)`` after every epoch (e.g. to checkpoint).

    Returns
    -------
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_top1``,
        ``temperature``, ``seconds``.
    """
    import torch
    from torch import nn

    from skvem._utils.progress import progress
    from skvem.vision.contrastive import SymmetricInfoNCE
    from skvem.vision._trainer import _param_groups, lr_factor, split_batches

    rng = np.random.RandomState(seed)
    X = torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))
    T = torch.from_numpy(np.asarray(text, dtype=np.float32))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            n_features = backbone(preprocess.normalize(X[:2])).shape[1]
        projection = nn.Linear(n_features, T.shape[1])
        loss_fn = SymmetricInfoNCE()
    params = list(backbone.parameters()) + list(projection.parameters()) + list(loss_fn.parameters())
    optimizer = torch.optim.AdamW(_param_groups(params, lr, weight_decay), lr=lr)
    batches_per_epoch = len(split_batches(np.arange(len(X)), batch_size))
    total = epochs * batches_per_epoch
    history, step = [], 0
    bar = progress(total=total, verbose=verbose, desc="pretraining", unit="step")

    def embed(x):
        return projection(backbone(preprocess.normalize(x)))

    for epoch in range(epochs):
        t0 = time.perf_counter()
        backbone.train()
        losses = []
        for idx in split_batches(rng.permutation(len(X)), batch_size):
            idx = torch.from_numpy(idx)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_factor(step / total, warmup_fraction)
            loss = loss_fn(embed(X[idx]), T[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": None,
                  "val_top1": None, "temperature": loss_fn.temperature}
        if val_pixels is not None and len(val_pixels):
            backbone.eval()
            with torch.no_grad():
                Xv = torch.from_numpy(np.ascontiguousarray(val_pixels.transpose(0, 3, 1, 2)))
                Tv = torch.from_numpy(np.asarray(val_text, dtype=np.float32))
                emb = torch.cat([embed(Xv[i:i + 512]) for i in range(0, len(Xv), 512)])
                # Validation loss in batches of the training size, as in training.
                vl = [float(loss_fn(emb[i:i + batch_size], Tv[i:i + batch_size]))
                      for i in range(0, len(emb), batch_size)]
            record["val_loss"] = float(np.mean(vl))
            record["val_top1"] = _retrieval_top1(emb, Tv)
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if on_epoch is not None:
            on_epoch(record, backbone)
    bar.close()
    backbone.eval()
    return history


def save_weights(path, backbone, meta):
    """Write ``{"state_dict", "meta"}`` atomically (temp file + ``os.replace``)."""
    import torch

    from skvem._utils.files import atomic_path

    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "meta": meta}, tmp)


def run_pretraining(settings: PretrainSettings, *, out, corpus=None, verbose=True, log=print,
                    on_epoch=None):
    """Draw the pretraining world, pretrain a fresh SmallCNN and save it to ``out``.

    Parameters
    ----------
    settings : PretrainSettings
    out : str or path-like
        Weights file to write.
    corpus : (pixels, text), optional
        The output of :func:`scene_corpus` for at least ``settings.n_images``
        training scenes (reused across runs of a study); drawn when omitted.
    verbose : bool
    log : callable
    on_epoch : callable, optional
        Passed to :func:`pretrain_contrastive`.

    Returns
    -------
    history : list of dict
    """
    from skvem.vision.backbones import resolve_backbone

    t0 = time.perf_counter()
    if corpus is None:
        log(f"drawing {N_VALIDATION + settings.n_images} scenes (world seed {settings.seed}) and "
            f"embedding their descriptions with {settings.text_model}")
        corpus = scene_corpus(settings.n_images, seed=settings.seed, text_model=settings.text_model,
                              verbose=verbose)
    pixels, text = corpus
    train = slice(N_VALIDATION, N_VALIDATION + settings.n_images)
    val = slice(0, N_VALIDATION)
    log(f"corpus ready ({time.perf_counter() - t0:.0f} s); pretraining {settings.epochs} epochs")
    bb = resolve_backbone("small-cnn", None, seed=settings.seed)
    history = pretrain_contrastive(
        bb.module, bb.preprocess, pixels[train], text[train],
        val_pixels=pixels[val], val_text=text[val], epochs=settings.epochs,
        batch_size=settings.batch_size, lr=settings.lr, weight_decay=settings.weight_decay,
        warmup_fraction=settings.warmup_fraction, seed=settings.seed, verbose=verbose,
        on_epoch=on_epoch,
    )
    meta = {"settings": asdict(settings), "n_validation": N_VALIDATION, "history": history,
            "seconds": time.perf_counter() - t0}
    save_weights(out, bb.module, meta)
    for rec in history:
        log(f"epoch {rec['epoch']}: train loss {rec['train_loss']:.3f}, val loss {rec['val_loss']:.3f}, "
            f"val top-1 {100 * rec['val_top1']:.1f} %, temperature {rec['temperature']:.3f}")
    return history
