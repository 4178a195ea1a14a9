"""Symmetric InfoNCE between image embeddings and fixed text embeddings (CLIP's loss)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SymmetricInfoNCE"]


class SymmetricInfoNCE(nn.Module):
    """CLIP's contrastive loss with a learnable temperature.

    Both sides are L2-normalised; the logits are their cosine similarities
    times ``exp(logit_scale)``, and the loss averages the cross-entropies of
    matching each image to its text among the batch and each text to its
    image.

    Two details matter for stimulus sets. ``logit_scale`` is clamped to
    ``log(max_scale)`` (CLIP's 100) so the temperature cannot collapse.
    Texts that are identical (two scenes with the same description, or the
    same COCO caption) are not negatives of each other: every copy counts as
    a positive, with the target probability shared between them.

    Parameters
    ----------
    init_temperature : float, default=0.07
        CLIP's initial temperature.
    max_scale : float, default=100.0
        Upper bound of ``1 / temperature``.
    duplicate_threshold : float, default=0.9999
        Cosine similarity above which two text embeddings count as the same.
    """

    def __init__(self, init_temperature=0.07, max_scale=100.0, duplicate_threshold=0.9999):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log_scale = math.log(max_scale)
        self.duplicate_threshold = duplicate_threshold

    @property
    def temperature(self) -> float:
        return float(1.0 / self.logit_scale.detach().clamp(max=self.max_log_scale).exp())

    def forward(self, image_emb, text_emb):
        """Loss of a batch.

        Parameters
        ----------
        image_emb : tensor of shape (B, d)
        text_emb : tensor of shape (B, d)

        Returns
        -------
        loss : scalar tensor
        """
        # Under bf16 autocast the similarity products would round cosines of
        # distinct captions (0.999) to 1 and mark them as duplicates, and
        # round the logits at scale 100 to about 0.2: compute in float32.
        with torch.autocast(image_emb.device.type, enabled=False):
            image_emb = F.normalize(image_emb.float(), dim=-1)
            text_emb = F.normalize(text_emb.float(), dim=-1)
            scale = self.logit_scale.float().clamp(max=self.max_log_scale).exp()
            logits = scale * image_emb @ text_emb.T
            with torch.no_grad():
                same = (text_emb @ text_emb.T) >= self.duplicate_threshold
                same.fill_diagonal_(True)
                targets = same.float() / same.sum(dim=1, keepdim=True)
            # ``same`` is symmetric, so the same soft targets serve both directions.
            loss_i2t = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            loss_t2i = -(targets * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
        return 0.5 * (loss_i2t + loss_t2i)
