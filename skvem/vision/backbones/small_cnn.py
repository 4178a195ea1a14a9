"""The built-in ``"small-cnn"`` backbone: a small CNN that trains on a CPU in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from skvem.vision.backbones._base import Backbone, Preprocess, _file_identity, _resize_crop, _seeded

__all__ = ["SCENES_WEIGHTS", "SmallCNN", "small_cnn_backbone"]


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


# The CLIP-style pretraining of the small CNN that ships with skvem, made by
# ``skvem pretrain-scenes`` (skvem.app.pretrain_scenes) from a reserved world.
SCENES_WEIGHTS = Path(__file__).parent / "weights" / "small_cnn_scenes.pt"


def _pretrained_weights(pretrained):
    """``(state_dict, path)`` of the weights ``pretrained`` names, or None for a random initialisation.

    The one place where ``pretrained`` of ``"small-cnn"`` is interpreted:
    ``"scenes"`` (or True) is the shipped language-pretrained CNN, a path is
    a file written by ``skvem pretrain-scenes``.
    """
    if pretrained in (None, False, "auto"):
        return None
    if pretrained is True or pretrained == "scenes":
        path = SCENES_WEIGHTS
    elif isinstance(pretrained, (str, os.PathLike)) and os.path.isfile(pretrained):
        path = Path(pretrained)
    else:
        raise ValueError(
            f"pretrained={pretrained!r} for 'small-cnn' must be 'scenes' (the shipped "
            "language-pretrained weights), a weights file written by `skvem pretrain-scenes`, "
            "or 'auto'/None (random initialisation seeded by random_state)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return (state.get("state_dict", state) if isinstance(state, dict) else state), path


def small_cnn_backbone(pretrained, image_size, seed) -> Backbone:
    """Build ``"small-cnn"`` at ``image_size`` px (default 64), seeded by ``seed``."""
    loaded = _pretrained_weights(pretrained)
    size = 64 if image_size is None else int(image_size)
    if size < 16:
        raise ValueError(f"image_size must be >= 16 for 'small-cnn'; got {image_size}")
    module = _seeded(seed, lambda: SmallCNN())
    identity = {"family": "small-cnn", "widths": [32, 64, 96, 128], "seed": seed}
    weights = "random"
    if loaded is not None:
        state, path = loaded
        try:
            module.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"pretrained={os.fspath(pretrained)!r} is not a SmallCNN weights file: "
                             f"{str(exc).splitlines()[0]}") from exc
        identity = {"family": "small-cnn", "widths": [32, 64, 96, 128], "weights": _file_identity(path)}
        weights = "pretrained"
    geo = _resize_crop(size)
    pre = Preprocess(geo, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), " ".join(repr(geo).split()))
    return Backbone(module, module, pre, "small-cnn", weights, identity)
