"""Multiply-accumulate (MAC) counting for dense modules, by forward hooks.

Only ``nn.Conv2d`` and ``nn.Linear`` are counted (they dominate a CNN's arithmetic); biases, norms,
activations, pooling and interpolation count zero, and so does any other layer type:

    Conv2d:  MACs = output elements x (in_channels / groups) x kh x kw
    Linear:  MACs = output elements x in_features

"Output elements" include the batch, so MACs scale with B. Dilation and stride change only the
output size, not the per-element cost. This counter knows nothing of the sparse decoder.
"""
from __future__ import annotations

import torch
from torch import nn


def layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs one Conv2d or Linear spent producing ``output``; 0 for any other module."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Total Conv2d + Linear MACs of one ``module(*inputs)`` call.

    The module is run once in eval mode under ``torch.no_grad()`` (so BatchNorm statistics are not
    updated), then every submodule is put back in its own previous train/eval mode; all hooks are
    removed afterwards.
    Inputs on the ``meta`` device work too: only output shapes are needed.
    A layer called twice is counted twice.
    """
    total = 0

    def hook(mod: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += layer_macs(mod, output)

    modes = {m: m.training for m in module.modules()}
    counted = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in counted]
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return total
