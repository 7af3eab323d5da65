"""BatchNorm folded into the linear map before it, for inference on dense grids.

In eval mode a BatchNorm is an affine map per channel, y = (x - mean) * s + beta with
s = gamma / sqrt(var + eps), so a convolution or linear layer followed by it is one layer with
weight W * s (scaled along the output channels) and bias (b - mean) * s + beta. The dense
decoder (the All scheme, and PC's levels that fill their grid) runs its convolutions that way:
oneDNN adds the bias inside the convolution, so the BatchNorm's pass over every cell's channels
disappears. Measured on the street model's decoder at 240×180, one thread: 0.87–0.90× the time
of conv + BatchNorm, logits within 6e-7 relative (``benchmarks/bench_all_vs_dense.py``).

The folded tensors are remembered on the BatchNorm module, keyed by the storage and version
counter of every tensor they derive from (qgn.sparse.derived): an optimiser step,
``load_state_dict`` or moving the module changes one of them, and a BatchNorm that updates its
running statistics in training bumps ``num_batches_tracked``'s version, so a stale fold is never
used.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from qgn.sparse.derived import caching_allowed, tensor_state

_ATTRIBUTE = "_qgn_folded"  # on the BatchNorm module: (key, weight, bias)


def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None,
                    bn: torch.nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight', bias') of the layer ``weight`` (C_out, ...) + ``bias`` (C_out,) or None followed by
    ``bn`` in eval mode (running statistics). Computed in float64, returned in weight's dtype."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fold_batch_norm needs a BatchNorm with running statistics")
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    shift = (bias.double() if bias is not None else torch.zeros_like(var)) - mean
    folded_weight = weight.double() * scale.view(-1, *([1] * (weight.dim() - 1)))
    return folded_weight.to(weight.dtype), (shift * scale + beta).to(weight.dtype)


def folded(weight: torch.Tensor, bias: torch.Tensor | None, bn: torch.nn.modules.batchnorm._BatchNorm,
           layout: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`fold_batch_norm` remembered on ``bn`` (see the module docstring); ``layout`` (a module-level
    function) maps the folded weight to the form its consumer takes, e.g. a channels-last conv2d
    weight, once. For inference: the results carry no gradient."""
    sources = (weight, bias, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked)
    key = (layout,) + tuple(tensor_state(t) for t in sources)
    cached = bn.__dict__.get(_ATTRIBUTE)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    with torch.no_grad():
        folded_weight, folded_bias = fold_batch_norm(weight, bias, bn)
        if layout is not None:
            folded_weight = layout(folded_weight)
    if caching_allowed():
        bn.__dict__[_ATTRIBUTE] = (key, folded_weight, folded_bias)
    return folded_weight, folded_bias
