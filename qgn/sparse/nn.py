"""torch.nn-style modules that take and return `SparseLevel`s."""

from __future__ import annotations

import math

import torch

from qgn.sparse.functional import sparse_linear, subm_conv2d
from qgn.sparse.level import SparseLevel
from qgn.sparse.rulebook import check_kernel_size


class SubMConv2d(torch.nn.Module):
    """Submanifold k x k convolution: outputs at exactly the input sites.

    Parameters:
        weight: (out_channels, k, k, in_channels) float32 - spconv's layout, identical for every
            backend, so checkpoints do not depend on the backend.
        bias: (out_channels,) float32 or None.
    Initialisation is that of `torch.nn.Conv2d` (Kaiming-uniform, fan_in = in_channels * k * k),
    so a sparse and a dense model start alike. `backend=None` follows the process default at
    every call (see qgn.sparse.backend).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True, backend: str | None = None
    ) -> None:
        super().__init__()
        check_kernel_size(kernel_size)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.backend = backend
        self.weight = torch.nn.Parameter(torch.empty(out_channels, kernel_size, kernel_size, in_channels))
        self.bias = torch.nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size * self.kernel_size
        # kaiming_uniform_(a=sqrt(5)) as in nn.Conv2d, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        torch.nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            torch.nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, level: SparseLevel) -> SparseLevel:
        return subm_conv2d(level, self.weight, self.bias, self.backend)

    def macs(self, level: SparseLevel) -> int:
        """Multiply-accumulates of this conv on `level`: neighbour pairs x Cin x Cout."""
        return level.num_neighbour_pairs(self.kernel_size) * self.in_channels * self.out_channels

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}, backend={self.backend!r}"
        )


class SparseLinear(torch.nn.Linear):
    """Per-site linear layer (= 1x1 submanifold conv), a plain matmul. weight (out, in) as nn.Linear."""

    def forward(self, level: SparseLevel) -> SparseLevel:  # type: ignore[override]
        return sparse_linear(level, self.weight, self.bias)

    def macs(self, level: SparseLevel) -> int:
        """Multiply-accumulates on `level`: N x Cin x Cout."""
        return level.num_sites * self.in_features * self.out_features


class SparseBatchNorm(torch.nn.BatchNorm1d):
    """BatchNorm1d over the (N, C) site features of a level (statistics over all sites of the batch).

    Fewer than two sites carry no batch statistics (BatchNorm1d would fail on one site and learn
    nothing from zero), so in training such a level is normalised with the running statistics,
    which are left unchanged - exactly what evaluation mode does.
    """

    def forward(self, level: SparseLevel) -> SparseLevel:  # type: ignore[override]
        if self.training and level.num_sites < 2 and self.running_mean is not None:
            feats = torch.nn.functional.batch_norm(
                level.feats, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
            )
            return level.replace_feats(feats)
        return level.replace_feats(super().forward(level.feats))


class SparseReLU(torch.nn.Module):
    """ReLU of the site features."""

    def forward(self, level: SparseLevel) -> SparseLevel:
        return level.replace_feats(torch.relu(level.feats))
