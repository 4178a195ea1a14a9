"""Tiny randomly initialised backbones of every family, saved where a user's checkpoint would be.

Nothing here downloads anything: each helper builds a small model from a
config, writes it to a temporary folder or file, and returns the
``backbone``/``pretrained`` parameters that load it back through the same
public path a real checkpoint takes.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn

TINY_OPEN_CLIP = "skvem-tiny-vit"
_TINY_OPEN_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


def register_tiny_open_clip(folder) -> str:
    """Register a tiny ViT config with open_clip (idempotent); return its name."""
    import open_clip

    if open_clip.get_model_config(TINY_OPEN_CLIP) is None:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{TINY_OPEN_CLIP}.json"), "w") as f:
            json.dump(_TINY_OPEN_CLIP_CFG, f)
        open_clip.add_model_config(os.path.join(folder, f"{TINY_OPEN_CLIP}.json"))
    return TINY_OPEN_CLIP


def tiny_open_clip_checkpoint(folder, seed=0) -> tuple:
    """``("open_clip:skvem-tiny-vit", "/path/ckpt.pt")``: a built-in-style name + a checkpoint file."""
    import open_clip

    name = register_tiny_open_clip(os.path.join(folder, "configs"))
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    path = os.path.join(folder, "tiny_open_clip.pt")
    torch.save(model.state_dict(), path)
    return f"open_clip:{name}", path


def tiny_open_clip_local_dir(folder, seed=0) -> str:
    """``"open_clip:local-dir:/path"``: a folder with open_clip_config.json and weights."""
    import open_clip
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": _TINY_OPEN_CLIP_CFG,
                   "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}, f)
    torch.manual_seed(seed)
    model = open_clip.create_model(register_tiny_open_clip(os.path.join(folder, "..", "configs")))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(folder, "open_clip_model.safetensors"))
    return f"open_clip:local-dir:{folder}"


def tiny_timm_checkpoint(folder, name="test_resnet", seed=0) -> tuple:
    """``("timm:test_resnet", "/path/weights.pt")``."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False)
    path = os.path.join(folder, f"{name}.pt")
    os.makedirs(folder, exist_ok=True)
    torch.save(model.state_dict(), path)
    return f"timm:{name}", path


def tiny_hf_vit(folder, seed=0, with_processor=True) -> str:
    """``"hf:/path"``: a 2-layer ViT saved with save_pretrained (and an image processor)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64)
    ViTModel(config).save_pretrained(folder)
    if with_processor:
        ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return f"hf:{folder}"


def tiny_hf_clip(folder, seed=0) -> str:
    """``"hf:/path"``: a tiny CLIPModel (vision + text towers) with a CLIP image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "vocab_size": 64, "max_position_embeddings": 8},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=12,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return f"hf:{folder}"


class TinyNet(nn.Module):
    """A plain module backbone: conv, pooling, 8 features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x))).flatten(1)


class FlakyMemoryNet(nn.Module):
    """Raises torch's out-of-memory error for batches larger than ``max_batch``."""

    def __init__(self, max_batch=4):
        super().__init__()
        self.max_batch = max_batch
        self.conv = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        if len(x) > self.max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.conv(x).mean(dim=(2, 3))


def random_images(n, size=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
