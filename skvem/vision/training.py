"""LLM-VEM training as a pure function: :func:`train_aligned`.

:class:`~skvem.vision.featurizers.AlignedImageFeaturizer` is a thin shell
over :func:`train_aligned` (as himalaya's estimators are over its
``solve_*`` functions). The network is backbone -> per-feature
standardisation -> two linear heads: a voxel head predicting the principal
components of the fMRI, and a projection into the text-embedding space
trained with a symmetric InfoNCE loss (:mod:`skvem.vision.contrastive`).
Training runs in two stages: the heads on a frozen backbone, then the whole
network with a lower learning rate for the backbone; AdamW, linear warm-up
then cosine decay within each stage, early stopping on a held-out split
(voxel loss of the voxel head), and the best weights restored at the end.
The loop itself is in :mod:`skvem.vision._trainer`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from skvem._utils.distributed import distributed_context, local_cuda_device
from skvem._utils.torch_utils import resolve_device, resolve_dtype
from skvem.vision._aligned_net import AlignedNet, FMRITargets
from skvem.vision._pixels import PixelStore, probe_n_features
from skvem.vision._trainer import Trainer, TrainingData
from skvem.vision.backbones import Backbone, Preprocess, first_tensor, resolve_backbone

__all__ = [
    "AlignedNet",
    "FMRITargets",
    "TrainingConfig",
    "TrainingResult",
    "split_train_val",
    "train_aligned",
]

_OWNER = "AlignedImageFeaturizer"


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of :func:`train_aligned`.

    The fields are the training parameters of
    :class:`~skvem.vision.featurizers.AlignedImageFeaturizer`, which
    documents them; ``seed`` is an int (the estimator draws it from
    ``random_state``), ``"auto"`` values are resolved once the backbone is
    known (random or pretrained weights), and ``grad_clip`` is the maximum
    gradient norm of a step.
    """

    n_components: int | float
    epochs: int
    frozen_epochs: int | str
    batch_size: int
    lr: float
    backbone_lr_scale: float | str
    weight_decay: float
    warmup_fraction: float
    validation_fraction: float | None
    patience: int | None
    alignment_weight: float
    seed: int
    device: Any = "auto"
    dtype: Any = "auto"
    num_workers: int = 0
    verbose: bool | int = False
    grad_clip: float = 1.0


@dataclass
class TrainingResult:
    """What :func:`train_aligned` returns.

    Attributes
    ----------
    model : AlignedNet
        The trained network in eval mode, gradients off.
    preprocess : Preprocess
        The backbone's preprocessing (``model.features`` takes its output).
    targets : FMRITargets
        Z-scoring and PCA of the training fMRI.
    history : list of dict
        One row per epoch (see ``AlignedImageFeaturizer.history_``).
    best_epoch : int
        Epoch whose weights the model holds.
    batch_size : int
        Batch size at the end (smaller after an out-of-memory retry).
    backbone : Backbone
        The resolved backbone (its ``module`` is ``model.backbone``).
    train_index, val_index : ndarray of int
        Rows of the images used for training and for validation.
    """

    model: AlignedNet
    preprocess: Preprocess
    targets: FMRITargets
    history: list
    best_epoch: int
    batch_size: int
    backbone: Backbone
    train_index: np.ndarray
    val_index: np.ndarray

    @property
    def n_features(self) -> int:
        return int(self.model.norm.num_features)

    @property
    def text_dim(self) -> int | None:
        return None if self.model.projection is None else int(self.model.projection.out_features)


def split_train_val(n, validation_fraction, seed):
    """Random ``(train_index, val_index)`` of ``n`` images, both sorted.

    Raises
    ------
    ValueError
        When the split leaves fewer than 2 images on either side.
    """
    frac = validation_fraction or 0.0
    n_val = int(np.ceil(frac * n)) if frac > 0 else 0
    n_train = n - n_val
    if frac > 0 and (n_val < 2 or n_train < 2):
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves {n_train} training and "
            f"{n_val} validation images of {n}; both need at least 2 (use more images or "
            "validation_fraction=None)"
        )
    if n_train < 2:
        raise ValueError(f"{_OWNER} needs at least 2 training images; got {n_train}")
    perm = np.random.RandomState(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _n_components(n_components, n_train, n_val, n_voxels):
    if isinstance(n_components, numbers.Integral):
        if n_train < n_components:
            held = f" ({n_train + n_val} images minus {n_val} held out by validation_fraction)" if n_val else ""
            raise ValueError(
                f"n_components={n_components} needs at least as many training images; got "
                f"{n_train}{held}. Lower n_components or use more images."
            )
        return min(int(n_components), n_voxels)
    return n_components


def _text_targets(text, images, n):
    out = text(images) if callable(text) else text
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2 or len(out) != n:
        raise ValueError(f"text targets must have shape (n_images={n}, n_dims); got {out.shape}")
    return out


def train_aligned(images, fmri, text=None, *, backbone, pretrained="auto", image_size=None,
                  config: TrainingConfig, owner=_OWNER) -> TrainingResult:
    """Train a backbone on fMRI (and text targets) from images; the LLM-VEM fit.

    Parameters
    ----------
    images : ImageSet
        The stimuli, one per row of ``fmri``.
    fmri : ndarray of shape (n_images, n_voxels)
        Finite responses (checked by the caller).
    text : ndarray of shape (n_images, text_dim), callable or None
        Text targets, or ``text(images) -> ndarray``, called once, after the
        sizes are checked (captioning is expensive). ``None`` trains without
        language.
    backbone, pretrained, image_size
        As in :func:`skvem.vision.backbones.resolve_backbone`.
    config : TrainingConfig
    owner : str
        Named in errors about missing weights.

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError
        Too few images for ``validation_fraction`` or ``n_components``, or
        text targets of the wrong shape.
    """
    n = len(images)
    fmri = np.asarray(fmri, dtype=np.float32).reshape(n, -1)
    seed = int(config.seed)
    train_idx, val_idx = split_train_val(n, config.validation_fraction, seed)
    n_val = len(val_idx)
    n_components = _n_components(config.n_components, len(train_idx), n_val, fmri.shape[1])
    device = resolve_device(config.device)
    context = distributed_context(device)
    if context.active:
        device = local_cuda_device(device)
    text_targets = None
    if text is not None and config.alignment_weight > 0:
        text_targets = _text_targets(text, images, n)
        if device.type != "cpu":
            from skvem._utils.hub import release_models

            # A captioner (GPU-GBs for a 7B VLM) and a text encoder kept for
            # the next fold would share the accelerator with the backbone
            # being fine-tuned. Captions are cached on disk, so dropping them
            # costs a reload only for uncached images.
            for kind in ("captioner", "open_clip_text", "sentence_transformers"):
                release_models(kind)
    dtype = resolve_dtype(config.dtype, device)
    targets = FMRITargets.fit(fmri[train_idx], n_components, seed)

    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        # The heads' initialisation, dropout and the backbone's random
        # weights come from this private stream: the caller's is untouched.
        torch.manual_seed(seed)
        bb = resolve_backbone(backbone, pretrained, image_size=image_size, seed=seed, owner=owner)
        random_init = bb.weights == "random"
        frozen = config.frozen_epochs
        if frozen == "auto":
            frozen = 0 if random_init else max(1, config.epochs // 5)
        scale = config.backbone_lr_scale
        if scale == "auto":
            # The small CNN's value is the alignment study's choice
            # (benchmarks/bench_alignment.py, selection world, no-language
            # score); 0.01 for large pretrained towers is the CLIP
            # fine-tuning convention, not measured here.
            scale = 1.0 if random_init or bb.name == "small-cnn" else 0.01
        cfg = replace(config, frozen_epochs=int(frozen), backbone_lr_scale=float(scale),
                      batch_size=int(min(config.batch_size, len(train_idx))), device=device, dtype=dtype,
                      lr=float(config.lr), alignment_weight=float(config.alignment_weight))
        module = bb.module.to(device)
        was_training = module.training
        module.eval()
        n_features = probe_n_features(lambda x: first_tensor(module(x)), bb.preprocess, device)
        module.train(was_training)
        text_dim = None if text_targets is None else int(text_targets.shape[1])
        net = AlignedNet(module, n_features, targets.pca.n_components_, text_dim).to(device)

        def store(index, desc):
            return PixelStore(images[index], bb.preprocess, desc=desc, num_workers=cfg.num_workers,
                              batch_size=cfg.batch_size, verbose=cfg.verbose)

        def on_device(a):
            return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)

        has_val = n_val > 0
        data = TrainingData(
            train_pixels=store(train_idx, "decoding images (train)"),
            val_pixels=store(val_idx, "decoding images (val)") if has_val else None,
            targets=targets,
            T_train=on_device(targets.targets(fmri[train_idx])),
            T_val=on_device(targets.targets(fmri[val_idx])) if has_val else None,
            Z_val=targets.zscore(fmri[val_idx]) if has_val else None,
            text_train=None if text_targets is None else on_device(text_targets[train_idx]),
            text_val=on_device(text_targets[val_idx]) if (text_targets is not None and has_val) else None,
        )
        trainer = Trainer(net, cfg, bb.preprocess, data, context=context)
        history, best_epoch = trainer.run()
    return TrainingResult(
        model=net, preprocess=bb.preprocess, targets=targets, history=history,
        best_epoch=int(best_epoch), batch_size=int(trainer.batch_size), backbone=bb,
        train_index=train_idx, val_index=val_idx,
    )
