"""Functional sparse ops on `SparseLevel`s (the modules in nn.py hold parameters and call these)."""

from __future__ import annotations

import torch

from qgn.sparse.backend import get_backend
from qgn.sparse.backend_base import SubmConvBackend
from qgn.sparse.level import SparseLevel


def subm_conv2d(
    level: SparseLevel,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    backend: str | SubmConvBackend | None = None,
) -> SparseLevel:
    """Submanifold k x k convolution of `level`; the output has the same sites.

    Args:
        level: N sites with feats (N, Cin) float.
        weight: (Cout, k, k, Cin), k odd; `torch.nn.functional.conv2d` equivalent is
            `weight.permute(0, 3, 1, 2)` with padding k // 2 and inactive inputs set to zero.
        bias: (Cout,) or None.
        backend: a backend, its registered name, or None for the process default.
    Returns:
        Level with feats (N, Cout), sharing `level`'s sites and cached rulebooks.
    """
    conv_backend = backend if isinstance(backend, SubmConvBackend) else get_backend(backend)
    feats = conv_backend.subm_conv(level.feats, weight, level.sites)
    if bias is not None:
        feats = feats + bias
    return level.replace_feats(feats)


def sparse_linear(level: SparseLevel, weight: torch.Tensor, bias: torch.Tensor | None = None) -> SparseLevel:
    """Per-site linear map (a 1x1 convolution): feats (N, Cin) @ weight (Cout, Cin)^T + bias (Cout,)."""
    return level.replace_feats(torch.nn.functional.linear(level.feats, weight, bias))
