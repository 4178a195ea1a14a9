"""The LLM-VEM training of :class:`skvem.vision.featurizers.AlignedImageFeaturizer`.

The network is backbone -> per-feature standardisation -> two linear heads:
a voxel head predicting the principal components of the fMRI, and a
projection into the text-embedding space trained with a symmetric InfoNCE
loss. Training runs in two stages: the heads on a frozen backbone (features
computed once), then the whole network with a lower learning rate for the
backbone; AdamW, linear warm-up then cosine decay within each stage, early
stopping on a held-out split (voxel loss of the voxel head), and the best
weights restored at the end.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skvem.vision.backbones import first_tensor
from skvem.vision.contrastive import SymmetricInfoNCE
from skvem.vision._pixels import (
    autocast,
    extract_features,
    free_accelerator_memory,
)
from skvem._utils.progress import progress
from skvem._utils.torch_utils import is_oom_error

__all__ = ["AlignedNet", "FMRITargets", "TrainConfig", "train_aligned"]


class AlignedNet(nn.Module):
    """Backbone + standardisation + voxel head (+ projection head + InfoNCE).

    Parameters
    ----------
    backbone : nn.Module
        ``(B, 3, H, W)`` -> ``(B, n_features)``.
    n_features : int
    n_components : int
        Principal components of the fMRI predicted by the voxel head.
    text_dim : int or None
        Dimension of the text embeddings; None trains without language.
    """

    def __init__(self, backbone, n_features, n_components, text_dim=None):
        super().__init__()
        self.backbone = backbone
        # A fixed per-feature affine map at inference: the downstream ridge
        # sees exactly the space the linear heads were trained on.
        self.norm = nn.BatchNorm1d(n_features, affine=False)
        self.voxel_head = nn.Linear(n_features, n_components)
        if text_dim:
            self.projection = nn.Linear(n_features, text_dim)
            self.contrastive = SymmetricInfoNCE()
        else:
            self.projection = None
            self.contrastive = None

    def raw_features(self, x):
        return first_tensor(self.backbone(x)).flatten(1).float()

    def features(self, x):
        """Standardised backbone features: the output of ``transform``."""
        return self.norm(self.raw_features(x))

    def head_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("backbone.")]


@dataclass
class FMRITargets:
    """The fMRI as training targets: z-scored voxels -> PCA -> one common scale.

    The components keep their relative variances (strong components weigh
    more in the loss, as they do in voxel space) and are divided by one
    factor so that predicting zero costs a loss of 1.
    """

    mean: np.ndarray
    std: np.ndarray
    pca: object
    scale: float

    @classmethod
    def fit(cls, fmri, n_components, random_state):
        from sklearn.decomposition import PCA

        mean = fmri.mean(axis=0)
        std = fmri.std(axis=0)
        std[std == 0] = 1.0
        z = (fmri - mean) / std
        pca = PCA(n_components=n_components, random_state=random_state).fit(z)
        scale = float(np.sqrt(np.mean(pca.explained_variance_))) or 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32), pca, scale)

    def zscore(self, fmri):
        return ((fmri - self.mean) / self.std).astype(np.float32)

    def targets(self, fmri):
        return (self.pca.transform(self.zscore(fmri)) / self.scale).astype(np.float32)

    def reconstruct(self, targets):
        """Targets (or predictions) back to z-scored voxel space."""
        return (targets * self.scale) @ self.pca.components_ + self.pca.mean_


@dataclass
class TrainConfig:
    epochs: int
    frozen_epochs: int
    batch_size: int
    lr: float
    backbone_lr: float
    weight_decay: float
    warmup_fraction: float
    patience: int | None
    alignment_weight: float
    device: torch.device
    dtype: torch.dtype
    num_workers: int = 0
    verbose: bool = False
    seed: int = 0
    grad_clip: float = 1.0


def _pearson_mean(pred, true):
    """Mean over columns of the Pearson correlation; constant columns count 0."""
    from skvem.metrics import _pearson_r_2d

    return float(np.mean(_pearson_r_2d(np.asarray(true), np.asarray(pred))))


def _param_groups(params, lr, weight_decay):
    # No weight decay on biases, norms and the temperature.
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay, "base_lr": lr}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0, "base_lr": lr})
    return groups


def _lr_factor(progress_fraction, warmup):
    if warmup > 0 and progress_fraction < warmup:
        return (progress_fraction + 1e-8) / warmup
    span = max(1e-8, 1.0 - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress_fraction - warmup) / span)))


def _split_batches(order, batch_size):
    # Near-equal batches instead of a full ones plus a tiny remainder: a
    # batch of 1 or 2 gives a meaningless contrastive loss.
    n_batches = max(1, math.ceil(len(order) / batch_size))
    return [b for b in np.array_split(order, n_batches) if len(b)]


class _Trainer:
    def __init__(self, net, config: TrainConfig, preprocess, data):
        self.net = net
        self.cfg = config
        self.pre = preprocess
        self.d = data
        self.device = config.device
        self.generator = torch.Generator().manual_seed(config.seed)
        self.history = []
        self.best = (math.inf, None, 0)  # (val loss, state, epoch)
        self.batch_size = config.batch_size
        self.use_text = net.contrastive is not None and config.alignment_weight > 0
        self.scaler = (
            torch.amp.GradScaler("cuda")
            if config.dtype == torch.float16 and self.device.type == "cuda"
            else None
        )

    # -- one optimisation step -------------------------------------------------

    def _losses(self, raw, idx, train=True):
        feats = self.net.norm(raw)
        pred = self.net.voxel_head(feats).float()
        targets = self.d["T_train" if train else "T_val"][idx]
        vox = F.mse_loss(pred, targets)
        con = None
        if self.use_text and len(idx) >= 2:
            text = self.d["text_train" if train else "text_val"][idx]
            con = self.net.contrastive(self.net.projection(feats), text)
        return vox, con, pred

    def _step(self, optimizer, vox, con):
        loss = vox if con is None else vox + self.cfg.alignment_weight * con
        optimizer.zero_grad(set_to_none=True)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            optimizer.step()

    def _set_lr(self, optimizer, frac):
        f = _lr_factor(frac, self.cfg.warmup_fraction)
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return f

    # -- epochs --------------------------------------------------------------

    def _epoch(self, stage, optimizer, epoch_in_stage, n_stage_epochs):
        n_train = self.d["T_train"].shape[0]
        order = torch.randperm(n_train, generator=self.generator).numpy()
        batches = _split_batches(order, self.batch_size)
        sums = {"vox": 0.0, "con": 0.0, "n": 0, "n_con": 0}
        if stage == "heads":
            self.net.norm.train()
            source = ((idx, None) for idx in batches)
        else:
            self.net.train()
            source = zip(batches, self.d["train_pixels"].batches(batches, pin_memory=self.device.type == "cuda"), strict=True)
        lr = 0.0
        for b, (idx, pixels) in enumerate(source):
            lr = self._set_lr(optimizer, (epoch_in_stage + b / len(batches)) / n_stage_epochs)
            idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
            with autocast(self.device, self.cfg.dtype):
                if stage == "heads":
                    raw = self.d["F_train"][idx_t]
                else:
                    x = self.pre.normalize(pixels.to(self.device, non_blocking=True))
                    raw = self.net.raw_features(x)
                vox, con, _ = self._losses(raw.float(), idx_t)
            self._step(optimizer, vox, con)
            sums["vox"] += float(vox.detach()) * len(idx)
            sums["n"] += len(idx)
            if con is not None:
                sums["con"] += float(con.detach()) * len(idx)
                sums["n_con"] += len(idx)
        return {
            "train_voxel_loss": sums["vox"] / max(1, sums["n"]),
            "train_contrastive_loss": sums["con"] / sums["n_con"] if sums["n_con"] else None,
            "lr": lr * self.cfg.lr,
        }

    @torch.inference_mode()
    def _validate(self, stage):
        if self.d["T_val"] is None:
            return {"val_voxel_loss": None, "val_contrastive_loss": None, "val_r": None}
        self.net.eval()
        n_val = self.d["T_val"].shape[0]
        batches = _split_batches(np.arange(n_val), self.batch_size)
        preds, vox_sum, con_sum, con_n = [], 0.0, 0.0, 0
        if stage == "heads":
            source = ((idx, None) for idx in batches)
        else:
            source = zip(batches, self.d["val_pixels"].batches(batches), strict=True)
        for idx, pixels in source:
            idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
            with autocast(self.device, self.cfg.dtype):
                if stage == "heads":
                    raw = self.d["F_val"][idx_t]
                else:
                    raw = self.net.raw_features(self.pre.normalize(pixels.to(self.device)))
                vox, con, pred = self._losses(raw.float(), idx_t, train=False)
            vox_sum += float(vox) * len(idx)
            if con is not None:
                con_sum += float(con) * len(idx)
                con_n += len(idx)
            preds.append(pred.float().cpu().numpy())
        pred = np.concatenate(preds)
        r = _pearson_mean(self.d["targets"].reconstruct(pred), self.d["Z_val"])
        return {
            "val_voxel_loss": vox_sum / n_val,
            "val_contrastive_loss": con_sum / con_n if con_n else None,
            "val_r": r,
        }

    def _record(self, stage, epoch, train_stats, seconds):
        val = self._validate(stage)
        row = {
            "epoch": epoch,
            "stage": stage,
            "batch_size": self.batch_size,
            **train_stats,
            **val,
            "temperature": self.net.contrastive.temperature if self.use_text else None,
            "seconds": seconds,
        }
        self.history.append(row)
        improved = False
        # The criterion is the validation loss, not the correlation: the loss
        # starts rising (the network memorises the training fMRI) epochs
        # before the correlation stops improving, and the ridge that follows
        # is fitted on features of those same training images, so memorised
        # features hurt it. On make_scenes, stopping on the loss gave the
        # better downstream scores (mean r 0.233 vs 0.225, 3-fold CV).
        loss = val["val_voxel_loss"]
        if loss is not None and loss < self.best[0] - 1e-4 * abs(self.best[0] if math.isfinite(self.best[0]) else 0):
            improved = True
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}
            self.best = (loss, state, epoch)
        return row, improved

    def _run_stage(self, stage, n_epochs, epoch0, bar):
        if n_epochs <= 0:
            return epoch0
        params = self.net.head_parameters()
        groups = _param_groups(params, self.cfg.lr, self.cfg.weight_decay)
        if stage == "finetune":
            bb = [p for p in self.net.backbone.parameters()]
            for p in bb:
                p.requires_grad_(True)
            groups = _param_groups(bb, self.cfg.backbone_lr, self.cfg.weight_decay) + groups
        optimizer = torch.optim.AdamW(groups, lr=self.cfg.lr)
        stale = 0
        for e in range(n_epochs):
            start = time.perf_counter()
            while True:
                try:
                    stats = self._epoch(stage, optimizer, e, n_epochs)
                    break
                except Exception as exc:
                    if not is_oom_error(exc) or self.batch_size <= 2:
                        raise
                    optimizer.zero_grad(set_to_none=True)
                    free_accelerator_memory(self.device)
                    old, self.batch_size = self.batch_size, max(2, self.batch_size // 2)
                    warnings.warn(
                        f"AlignedImageFeaturizer: out of {self.device.type} memory with "
                        f"batch_size={old}; retrying the epoch with batch_size={self.batch_size}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            epoch = epoch0 + e + 1
            row, improved = self._record(stage, epoch, stats, time.perf_counter() - start)
            bar.update(1)
            bar.set_postfix(
                {k: f"{row[k]:.3g}" for k in ("train_voxel_loss", "val_voxel_loss", "val_r") if row[k] is not None},
                refresh=False,
            )
            stale = 0 if improved else stale + 1
            if self.cfg.patience is not None and self.d["T_val"] is not None and stale >= self.cfg.patience:
                break
        if self.best[1] is not None:
            # The next stage starts from, and the fit ends with, the best weights.
            self.net.load_state_dict(self.best[1])
        return epoch0 + n_epochs

    def _exact_norm_statistics(self):
        # The running statistics of the standardisation lag behind the
        # backbone after a few hundred steps; one pass over the training
        # images with the final weights makes transform() return features
        # that are exactly standardised on the training set.
        fwd = self.net.raw_features
        raw = extract_features(
            fwd, self.d["train_pixels"], self.pre, batch_size=self.batch_size, device=self.device,
            dtype=self.cfg.dtype, verbose=self.cfg.verbose, desc="feature statistics",
            what="AlignedImageFeaturizer",
        ).astype(np.float64)
        norm = self.net.norm
        norm.running_mean.copy_(torch.as_tensor(raw.mean(axis=0), dtype=norm.running_mean.dtype))
        norm.running_var.copy_(torch.as_tensor(raw.var(axis=0), dtype=norm.running_var.dtype))

    def run(self):
        cfg = self.cfg
        bar = progress(total=cfg.epochs, verbose=cfg.verbose, desc="AlignedImageFeaturizer", unit="epoch")
        try:
            if cfg.frozen_epochs > 0:
                for p in self.net.backbone.parameters():
                    p.requires_grad_(False)
                self.net.backbone.eval()
                fwd = self.net.backbone
                fitted = {}
                kw = dict(batch_size=self.batch_size, device=self.device, dtype=cfg.dtype,
                          verbose=cfg.verbose, what="AlignedImageFeaturizer", oom_state=fitted)
                self.d["F_train"] = torch.from_numpy(extract_features(
                    lambda x: first_tensor(fwd(x)).flatten(1), self.d["train_pixels"], self.pre,
                    desc="frozen features (train)", **kw)).to(self.device)
                # A training step needs more memory than inference: never start
                # above a batch size that already ran out of it.
                self.batch_size = kw["batch_size"] = fitted["batch_size"]
                if self.d["T_val"] is not None:
                    self.d["F_val"] = torch.from_numpy(extract_features(
                        lambda x: first_tensor(fwd(x)).flatten(1), self.d["val_pixels"], self.pre,
                        desc="frozen features (val)", **kw)).to(self.device)
            epoch = self._run_stage("heads", cfg.frozen_epochs, 0, bar)
            self.d.pop("F_train", None)
            self.d.pop("F_val", None)
            self._run_stage("finetune", cfg.epochs - cfg.frozen_epochs, epoch, bar)
        finally:
            bar.close()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        self._exact_norm_statistics()
        return self.history, self.best[2] if self.best[1] is not None else len(self.history)


def train_aligned(net, config, preprocess, *, train_store, val_store, targets, T_train, T_val,
                  Z_val, text_train, text_val):
    """Train ``net`` in place; return ``(history, best_epoch)``.

    Parameters
    ----------
    net : AlignedNet
    config : TrainConfig
    preprocess : Preprocess
    train_store, val_store : PixelStore (val_store None without validation)
    targets : FMRITargets
    T_train, T_val : ndarray (n, n_components)
        Scaled PCA targets.
    Z_val : ndarray (n_val, n_voxels)
        Z-scored validation fMRI, for the validation correlation.
    text_train, text_val : ndarray (n, text_dim) or None
    """
    dev = config.device

    def t(a):
        return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float32), device=dev)

    data = {
        "train_pixels": train_store,
        "val_pixels": val_store,
        "targets": targets,
        "T_train": t(T_train),
        "T_val": t(T_val),
        "Z_val": Z_val,
        "text_train": t(text_train),
        "text_val": t(text_val),
    }
    return _Trainer(net, config, preprocess, data).run()


def infer_n_features(backbone, preprocess, device):
    """Feature dimension of ``backbone`` from one forward pass of two blank images."""
    size = preprocess.to_uint8(_blank()).shape
    x = preprocess.normalize(torch.zeros((2, *size), dtype=torch.uint8, device=device))
    was_training = backbone.training
    backbone.eval()
    with torch.inference_mode():
        out = first_tensor(backbone(x)).flatten(1)
    backbone.train(was_training)
    return int(out.shape[1])


def _blank():
    from PIL import Image

    return Image.new("RGB", (256, 256))


def copy_module(module):
    return copy.deepcopy(module)
