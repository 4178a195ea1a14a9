"""The optimisation loop of :func:`skvem.vision.training.train_aligned`.

Two stages share one loop: the heads on a frozen backbone (whose features
are computed once), then the whole network. AdamW, linear warm-up then
cosine decay within each stage, early stopping on the validation voxel
loss, and the best weights restored at the end of each stage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skvem._utils.distributed import DistributedContext, gather_rows, local_share, share_sizes
from skvem._utils.progress import progress
from skvem._utils.torch_utils import autocast, retry_with_smaller_batches
from skvem.vision._pixels import extract_features
from skvem.vision.backbones import first_tensor

__all__ = ["TrainingData", "Trainer", "lr_factor", "split_batches"]


@dataclass
class TrainingData:
    """What one training run reads: pixels, targets (tensors on the device), text targets."""

    train_pixels: Any  # PixelStore
    val_pixels: Any  # PixelStore or None
    targets: Any  # FMRITargets
    T_train: torch.Tensor
    T_val: torch.Tensor | None
    Z_val: np.ndarray | None
    text_train: torch.Tensor | None
    text_val: torch.Tensor | None
    F_train: torch.Tensor | None = None  # frozen backbone features of the first stage
    F_val: torch.Tensor | None = None


def lr_factor(progress_fraction, warmup):
    """Learning-rate multiplier at a fraction of a stage: linear warm-up, then cosine decay to 0."""
    if warmup > 0 and progress_fraction < warmup:
        return (progress_fraction + 1e-8) / warmup
    span = max(1e-8, 1.0 - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress_fraction - warmup) / span)))


def split_batches(order, batch_size):
    """Split ``order`` into near-equal batches of about ``batch_size``, none of one image.

    Near-equal instead of full batches plus a remainder: a batch of 1 or 2
    gives a meaningless contrastive loss, and a training-mode BatchNorm
    refuses a batch of one (``batch_size=2`` with an odd number of images
    gets one batch of 3).
    """
    n_batches = max(1, min(math.ceil(len(order) / batch_size), len(order) // 2))
    return [b for b in np.array_split(order, n_batches) if len(b)]


def _param_groups(params, lr, weight_decay):
    # No weight decay on biases, norms and the temperature.
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay, "base_lr": lr}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0, "base_lr": lr})
    return groups


class Trainer:
    """Train an :class:`~skvem.vision._aligned_net.AlignedNet` in place.

    ``config`` is a resolved :class:`~skvem.vision.training.TrainingConfig`
    (ints for ``frozen_epochs`` and ``batch_size``, a float for
    ``backbone_lr_scale``, torch ``device`` and ``dtype``).
    """

    def __init__(self, net, config, preprocess, data: TrainingData, context=None):
        self.net = net
        # Under torchrun every rank trains its share of each global batch.
        self.dist = context if context is not None else DistributedContext()
        # The module training steps call; the one place to wrap the network
        # (e.g. in DistributedDataParallel).
        self.model = net
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

    def contrastive_loss(self, projection, text):
        """The InfoNCE loss of a batch; the one place it is called (negatives: the batch)."""
        return self.net.contrastive(projection, text)

    def _losses(self, x, raw, idx, train=True, n_global=None):
        model = self.model if train else self.net
        pred, proj = model(x, raw=raw)
        vox = F.mse_loss(pred, self.d.T_train[idx] if train else self.d.T_val[idx])
        n_global = len(idx) if n_global is None else n_global
        shared = train and self.dist.active
        if shared:
            # DDP averages the ranks' gradients: weigh each share by its size
            # so the average is the gradient of the global batch's mean loss.
            vox = vox * (len(idx) * self.dist.world_size / n_global)
        con = None
        if self.use_text and n_global >= 2:
            text = self.d.text_train[idx] if train else self.d.text_val[idx]
            if shared:
                # Negatives are the global batch, not this rank's share.
                sizes = share_sizes(n_global, self.dist)
                proj, text = gather_rows(proj, sizes), gather_rows(text, sizes)
            con = self.contrastive_loss(proj, text)
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

    def _sum_over_ranks(self, sums):
        import torch.distributed as dist

        keys = sorted(sums)
        total = torch.tensor([float(sums[k]) for k in keys], dtype=torch.float64)
        dist.all_reduce(total)
        return dict(zip(keys, total.tolist()))

    def _wrap(self):
        """The module training steps call: the network, or DDP around it under torchrun."""
        if not self.dist.active:
            return self.net
        from torch.nn.parallel import DistributedDataParallel

        # Built per stage: DDP registers the parameters that require grad
        # when it is made, and the backbone joins only for fine-tuning.
        # Buffers need no broadcast: GlobalBatchNorm1d keeps them equal.
        return DistributedDataParallel(
            self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            broadcast_buffers=False,
        )

    def _set_lr(self, optimizer, frac):
        f = lr_factor(frac, self.cfg.warmup_fraction)
        for g in optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return f

    # -- epochs --------------------------------------------------------------

    def _epoch(self, stage, optimizer, epoch_in_stage, n_stage_epochs):
        n_train = self.d.T_train.shape[0]
        # Every rank draws the same order (same seed) and takes its share.
        order = torch.randperm(n_train, generator=self.generator).numpy()
        batches = split_batches(order, self.batch_size)
        shares = [local_share(b, self.dist) for b in batches]
        sums = {"vox": 0.0, "con": 0.0, "n": 0, "n_con": 0}
        if stage == "heads":
            self.net.norm.train()
            source = ((idx, None) for idx in shares)
        else:
            self.net.train()
            pixels = self.d.train_pixels.batches(shares, pin_memory=self.device.type == "cuda")
            source = zip(shares, pixels, strict=True)
        lr = 0.0
        for b, (idx, pixels) in enumerate(source):
            lr = self._set_lr(optimizer, (epoch_in_stage + b / len(batches)) / n_stage_epochs)
            idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
            n_global = len(batches[b])
            with autocast(self.device, self.cfg.dtype):
                if stage == "heads":
                    vox, con, _ = self._losses(None, self.d.F_train[idx_t], idx_t, n_global=n_global)
                else:
                    x = self.pre.normalize(pixels.to(self.device, non_blocking=True))
                    vox, con, _ = self._losses(x, None, idx_t, n_global=n_global)
            self._step(optimizer, vox, con)
            # The logged losses are the global batch's, on every rank.
            scale = n_global / (len(idx) * self.dist.world_size) if self.dist.active else 1.0
            sums["vox"] += float(vox.detach()) * scale * len(idx)
            sums["n"] += len(idx)
            if con is not None:
                sums["con"] += float(con.detach()) * len(idx)
                sums["n_con"] += len(idx)
        if self.dist.active:
            sums = self._sum_over_ranks(sums)
        return {
            "train_voxel_loss": sums["vox"] / max(1, sums["n"]),
            "train_contrastive_loss": sums["con"] / sums["n_con"] if sums["n_con"] else None,
            "lr": lr * self.cfg.lr,
        }

    @torch.inference_mode()
    def _validate(self, stage):
        from skvem.metrics import _pearson_r_2d

        if self.d.T_val is None:
            return {"val_voxel_loss": None, "val_contrastive_loss": None, "val_r": None}
        self.net.eval()
        n_val = self.d.T_val.shape[0]
        batches = split_batches(np.arange(n_val), self.batch_size)
        preds, vox_sum, con_sum, con_n = [], 0.0, 0.0, 0
        if stage == "heads":
            source = ((idx, None) for idx in batches)
        else:
            source = zip(batches, self.d.val_pixels.batches(batches), strict=True)
        for idx, pixels in source:
            idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
            with autocast(self.device, self.cfg.dtype):
                if stage == "heads":
                    vox, con, pred = self._losses(None, self.d.F_val[idx_t], idx_t, train=False)
                else:
                    x = self.pre.normalize(pixels.to(self.device))
                    vox, con, pred = self._losses(x, None, idx_t, train=False)
            vox_sum += float(vox) * len(idx)
            if con is not None:
                con_sum += float(con) * len(idx)
                con_n += len(idx)
            preds.append(pred.float().cpu().numpy())
        recon = self.d.targets.reconstruct(np.concatenate(preds))
        r = float(np.mean(_pearson_r_2d(np.asarray(self.d.Z_val), recon)))
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
            bb = list(self.net.backbone.parameters())
            for p in bb:
                p.requires_grad_(True)
            groups = _param_groups(bb, self.cfg.lr * self.cfg.backbone_lr_scale, self.cfg.weight_decay) + groups
        optimizer = torch.optim.AdamW(groups, lr=self.cfg.lr)
        self.model = self._wrap()
        stale = 0
        for e in range(n_epochs):
            start = time.perf_counter()

            def attempt(batch_size, e=e):
                self.batch_size = batch_size
                return self._epoch(stage, optimizer, e, n_epochs)

            # Ranks cannot agree on a smaller batch mid-epoch: no back-off under DDP.
            stats, self.batch_size = retry_with_smaller_batches(
                attempt, self.batch_size, device=self.device, what="AlignedImageFeaturizer",
                minimum=self.batch_size if self.dist.active else 2,
                retry="retrying the epoch", cleanup=lambda: optimizer.zero_grad(set_to_none=True),
            )
            epoch = epoch0 + e + 1
            row, improved = self._record(stage, epoch, stats, time.perf_counter() - start)
            bar.update(1)
            bar.set_postfix(
                {k: f"{row[k]:.3g}" for k in ("train_voxel_loss", "val_voxel_loss", "val_r") if row[k] is not None},
                refresh=False,
            )
            stale = 0 if improved else stale + 1
            if self.cfg.patience is not None and self.d.T_val is not None and stale >= self.cfg.patience:
                break
        if self.best[1] is not None:
            # The next stage starts from, and the fit ends with, the best weights.
            self.net.load_state_dict(self.best[1])
        self.model = self.net
        return epoch0 + n_epochs

    def _frozen_features(self, store, desc, kw):
        fwd = self.net.backbone
        return torch.from_numpy(extract_features(
            lambda x: first_tensor(fwd(x)).flatten(1), store, self.pre, desc=desc, **kw)).to(self.device)

    def _exact_norm_statistics(self):
        # The running statistics of the standardisation lag behind the
        # backbone after a few hundred steps; one pass over the training
        # images with the final weights makes transform() return features
        # that are exactly standardised on the training set.
        raw = extract_features(
            self.net.raw_features, self.d.train_pixels, self.pre, batch_size=self.batch_size,
            device=self.device, dtype=self.cfg.dtype, verbose=self.cfg.verbose, desc="feature statistics",
            what="AlignedImageFeaturizer",
        ).astype(np.float64)
        norm = self.net.norm
        norm.running_mean.copy_(torch.as_tensor(raw.mean(axis=0), dtype=norm.running_mean.dtype))
        norm.running_var.copy_(torch.as_tensor(raw.var(axis=0), dtype=norm.running_var.dtype))

    def run(self):
        """Train both stages; return ``(history, best_epoch)``."""
        cfg = self.cfg
        bar = progress(total=cfg.epochs, verbose=cfg.verbose, desc="AlignedImageFeaturizer", unit="epoch")
        try:
            if cfg.frozen_epochs > 0:
                for p in self.net.backbone.parameters():
                    p.requires_grad_(False)
                self.net.backbone.eval()
                fitted = {}
                kw = dict(batch_size=self.batch_size, device=self.device, dtype=cfg.dtype,
                          verbose=cfg.verbose, what="AlignedImageFeaturizer", oom_state=fitted)
                self.d.F_train = self._frozen_features(self.d.train_pixels, "frozen features (train)", kw)
                # A training step needs more memory than inference: never start
                # above a batch size that already ran out of it.
                self.batch_size = kw["batch_size"] = fitted["batch_size"]
                if self.d.T_val is not None:
                    self.d.F_val = self._frozen_features(self.d.val_pixels, "frozen features (val)", kw)
            epoch = self._run_stage("heads", cfg.frozen_epochs, 0, bar)
            self.d.F_train = self.d.F_val = None
            self._run_stage("finetune", cfg.epochs - cfg.frozen_epochs, epoch, bar)
        finally:
            bar.close()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        self._exact_norm_statistics()
        return self.history, self.best[2] if self.best[1] is not None else len(self.history)
