"""The built-in ``"small-cnn"`` backbone: a small CNN that trains on a CPU in seconds."""

from __future__ import annotations

import torch
from torch import nn

from skvem.vision.backbones._base import Backbone, Preprocess, _resize_crop, _seeded

__all__ = ["SmallCNN", "small_cnn_backbone"]


class SmallCNN(nn.Module):
    """A small CNN for 64 px images: 4 conv blocks, GroupNorm, global pooling.

    Each block is a 3x3 convolution with stride 2, GroupNorm and GELU, so a
    64 px image shrinks to a 4x4 map of ``widths[-1]`` channels; global
    average and max pooling of that map are concatenated, so the output has
    ``2 * widths[-1]`` features (256 with the default widths, ~190k
    parameters). GroupNorm rather than BatchNorm keeps features independent
    of the batch: the same image gives the same features whatever
    ``batch_size`` is.

    Parameters
    ----------
    widths : tuple of int, default=(32, 64, 96, 128)
        Channels of the four blocks.
    groups : int, default=8
        GroupNorm groups.
    """

    def __init__(self, widths=(32, 64, 96, 128), groups=8):
        super().__init__()
        layers = []
        c_in = 3
        for c_out in widths:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                    nn.GroupNorm(groups, c_out),
                    nn.GELU(),
                )
            )
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.out_features = 2 * widths[-1]

    def forward(self, x):
        x = self.blocks(x)
        # Max pooling keeps "is there something here" evidence that an
        # average over a mostly empty scene dilutes.
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def _pretrained_weights(pretrained):
    """The state dict that ``pretrained`` names, or None for a random initialisation.

    The one place where ``pretrained`` of ``"small-cnn"`` is interpreted:
    shipped weights (e.g. ``"scenes"``) are to be loaded here.
    """
    if pretrained in (None, False, "auto"):
        return None
    raise ValueError(
        "'small-cnn' has no pretrained weights: use pretrained='auto' or None (random "
        "initialisation seeded by random_state)"
    )


def small_cnn_backbone(pretrained, image_size, seed) -> Backbone:
    """Build ``"small-cnn"`` at ``image_size`` px (default 64), seeded by ``seed``."""
    state = _pretrained_weights(pretrained)
    size = 64 if image_size is None else int(image_size)
    if size < 16:
        raise ValueError(f"image_size must be >= 16 for 'small-cnn'; got {image_size}")
    module = _seeded(seed, lambda: SmallCNN())
    if state is not None:  # pragma: no cover - no weights ship yet
        module.load_state_dict(state)
    source = {"seed": seed} if state is None else {"weights": str(pretrained)}
    identity = {"family": "small-cnn", "widths": [32, 64, 96, 128], **source}
    geo = _resize_crop(size)
    pre = Preprocess(geo, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), " ".join(repr(geo).split()))
    return Backbone(module, module, pre, "small-cnn", "random" if state is None else "pretrained", identity)
