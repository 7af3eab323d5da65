"""Neighbour rulebook of a submanifold convolution: which input site feeds which output site.

For a k x k kernel (k odd, radius r = k // 2) and kernel offset (i, j), output site (b, y, x)
reads input site (b, y + i - r, x + j - r) if that site is active (cross-correlation, as in
`torch.nn.functional.conv2d` with padding r). Outputs are exactly the input sites (submanifold).

The rulebook is backend-independent and is also what the MAC count is based on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qgn.sparse.sites import ActiveSites


@dataclass(frozen=True)
class NeighbourRulebook:
    """Neighbour pairs of a k x k submanifold convolution, one list per kernel offset.

    Attributes:
        kernel_size: k (odd).
        in_index: k*k tensors, offset (i, j) at position i*k + j; each (P_ij,) int64 input site ids.
        out_index: k*k tensors, same layout; (P_ij,) int64 output site ids, paired with `in_index`.
            The centre offset pairs every site with itself: in = out = arange(N).
    """

    kernel_size: int
    in_index: tuple[torch.Tensor, ...]
    out_index: tuple[torch.Tensor, ...]

    @property
    def centre_offset(self) -> int:
        return (self.kernel_size * self.kernel_size) // 2

    @property
    def num_pairs(self) -> int:
        """Total number of (input, output) pairs over all offsets, the centre included."""
        return sum(int(index.shape[0]) for index in self.in_index)


def check_kernel_size(kernel_size: int) -> None:
    """Raise ValueError unless `kernel_size` is a positive odd int."""
    if kernel_size <= 0 or kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")


def build_neighbour_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """Compute the rulebook from a padded grid of site ids (-1 = inactive or outside the image).

    Cost: one (B, H+2r, W+2r) int64 grid plus k*k gathers of N entries.
    """
    check_kernel_size(kernel_size)
    radius = kernel_size // 2
    height, width = sites.spatial_shape
    padded = torch.nn.functional.pad(sites.index_grid(), (radius, radius, radius, radius), value=-1)
    padded_flat = padded.reshape(-1)
    padded_height, padded_width = height + 2 * radius, width + 2 * radius
    coords = sites.coords
    # Flat position in `padded` of the top-left kernel tap of every site.
    top_left = (coords[:, 0] * padded_height + coords[:, 1]) * padded_width + coords[:, 2]
    site_ids = torch.arange(sites.num_sites, device=sites.device)
    in_index: list[torch.Tensor] = []
    out_index: list[torch.Tensor] = []
    for i in range(kernel_size):
        for j in range(kernel_size):
            neighbour = padded_flat[top_left + (i * padded_width + j)]
            active = neighbour >= 0
            in_index.append(neighbour[active])
            out_index.append(site_ids[active])
    return NeighbourRulebook(kernel_size, tuple(in_index), tuple(out_index))


def neighbour_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """The rulebook of `sites`, built once per kernel size and cached on the sites."""
    return sites.cached(("neighbour_rulebook", kernel_size), lambda: build_neighbour_rulebook(sites, kernel_size))
