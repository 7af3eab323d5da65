"""The interface every submanifold-convolution backend implements (`SubmConvBackend`) and the
argument checks they share. The registry that names and chooses backends is `qgn.sparse.backend`.

Weight layout (shared by all backends, so checkpoints are backend-independent): (Cout, kh, kw, Cin),
spconv's native layout. The equivalent `torch.nn.functional.conv2d` weight is
`weight.permute(0, 3, 1, 2)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from qgn.sparse.rulebook import check_kernel_size
from qgn.sparse.sites import ActiveSites


class SubmConvBackend(ABC):
    """Computes a k x k submanifold convolution (stride 1, 'same' padding, no bias) over a site set."""

    name: str = ""

    def subm_conv(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        """Convolve the features of the active sites; inactive sites count as zeros.

        Args:
            feats: (N, Cin) float, one row per site of `sites`, same device as `sites`.
            weight: (Cout, k, k, Cin) same dtype and device as `feats`; k odd.
            sites: the N active sites (inputs and outputs).
        Returns:
            (N, Cout) float, differentiable w.r.t. `feats` and `weight`.

        Under `torch.autocast` both inputs are first cast to the autocast dtype (as autocast does
        for conv2d), so backends always see one dtype. 1 x 1 kernels and empty site sets are a
        plain matmul with the centre tap in every backend.
        """
        if torch.is_autocast_enabled(feats.device.type):
            autocast_dtype = torch.get_autocast_dtype(feats.device.type)
            feats, weight = feats.to(autocast_dtype), weight.to(autocast_dtype)
        check_conv_arguments(feats, weight, sites)
        kernel_size = int(weight.shape[1])
        if kernel_size == 1 or sites.num_sites == 0:
            centre = kernel_size // 2
            return feats @ weight[:, centre, centre, :].t()
        return self.subm_conv_kxk(feats, weight, sites)

    @abstractmethod
    def prepare_rulebook(self, sites: ActiveSites, kernel_size: int) -> None:
        """Build and cache this backend's neighbour rulebook of `sites` for a k x k kernel, k >= 3.

        Happens automatically on the first convolution; call it to time or pre-compute that step.
        """

    @abstractmethod
    def subm_conv_kxk(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        """`subm_conv` for k >= 3 and N >= 1 with checked arguments."""


def check_conv_arguments(feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> None:
    """Raise ValueError if the shapes, dtypes or devices of a `subm_conv` call do not fit."""
    if feats.dim() != 2 or feats.shape[0] != sites.num_sites:
        raise ValueError(f"feats must be ({sites.num_sites}, Cin), got {tuple(feats.shape)}")
    if weight.dim() != 4 or weight.shape[1] != weight.shape[2] or weight.shape[3] != feats.shape[1]:
        raise ValueError(f"weight must be (Cout, k, k, {feats.shape[1]}), got {tuple(weight.shape)}")
    check_kernel_size(int(weight.shape[1]))
    if not feats.is_floating_point() or feats.dtype != weight.dtype:
        raise ValueError(f"feats and weight must share a float dtype, got {feats.dtype} and {weight.dtype}")
    if feats.device != weight.device or feats.device != sites.device:
        raise ValueError(f"devices differ: feats {feats.device}, weight {weight.device}, sites {sites.device}")
