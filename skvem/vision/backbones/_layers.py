"""Reading a named layer of a backbone and pooling its output to ``(B, d)``."""

from __future__ import annotations

import difflib

from skvem.vision.backbones._base import Backbone

__all__ = ["POOLINGS", "LayerTap", "first_tensor", "list_layers", "pool_features"]

POOLINGS = ("auto", "avg", "max", "cls", "flatten")


def list_layers(backbone: Backbone) -> list:
    """Names of the modules a ``layer`` parameter may select, in forward order."""
    return [name for name, _ in backbone.layer_root.named_modules() if name]


def first_tensor(out):
    """The feature tensor of a module output (tensor, tuple, or transformers output)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for attr in ("last_hidden_state", "pooler_output"):
        value = getattr(out, attr, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, (tuple, list)) and out:
        return first_tensor(out[0])
    if isinstance(out, dict) and out:
        return first_tensor(next(iter(out.values())))
    raise TypeError(f"cannot find a feature tensor in a {type(out).__name__} output")


class _StopForward(Exception):
    """Raised by a hook once the requested layer has run: the rest is not needed."""


class LayerTap:
    """Read the output of one named submodule instead of the network's output.

    The forward pass stops right after that layer (a hook raises), so an
    early layer costs only the computation up to it. A module that runs
    several times per forward pass (a shared activation) yields its first
    call.
    """

    def __init__(self, backbone: Backbone, layer: str):
        names = list_layers(backbone)
        if layer not in names:
            close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
            shown = names if len(names) <= 80 else names[:80] + [f"... ({len(names) - 80} more)"]
            raise ValueError(
                f"layer {layer!r} is not a module of {backbone.name}"
                + (f"; did you mean {close}?" if close else "")
                + f". Available layers: {shown}"
            )
        self.module = backbone.module
        self.target = backbone.layer_root.get_submodule(layer)
        self.layer = layer

    def __call__(self, x):
        captured = {}

        def hook(_module, _inputs, output):
            captured["out"] = output
            raise _StopForward

        handle = self.target.register_forward_hook(hook)
        try:
            self.module(x)
        except _StopForward:
            pass
        finally:
            handle.remove()
        if "out" not in captured:
            raise RuntimeError(f"layer {self.layer!r} did not run during the forward pass")
        return first_tensor(captured["out"])


def pool_features(out, pooling: str):
    """Reduce a layer output to ``(B, d)``.

    ``(B, T, D)`` token sequences: ``"avg"``/``"auto"`` average the tokens,
    ``"cls"`` takes the first, ``"max"`` the maximum. ``(B, C, H, W)`` maps:
    average or maximum over space. ``"flatten"`` keeps everything. 2-D
    outputs are returned as they are.
    """
    if out.ndim == 2:
        return out
    if pooling == "flatten":
        return out.flatten(1)
    if out.ndim == 3:
        if pooling == "cls":
            return out[:, 0]
        return out.amax(dim=1) if pooling == "max" else out.mean(dim=1)
    if pooling == "cls":
        raise ValueError(f"pooling='cls' needs a (B, tokens, dim) output; got shape {tuple(out.shape)}")
    dims = tuple(range(2, out.ndim))
    return out.amax(dim=dims) if pooling == "max" else out.mean(dim=dims)
