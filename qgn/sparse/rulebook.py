"""Neighbour rulebook of a submanifold convolution: which input site feeds which output site.

For a k x k kernel (k odd, radius r = k // 2) and kernel offset (i, j), output site (b, y, x)
reads input site (b, y + i - r, x + j - r) if that site is active (cross-correlation, as in
`torch.nn.functional.conv2d` with padding r). Outputs are exactly the input sites (submanifold).

Built from the active sites alone: their flat indices b*H*W + y*W + x are sorted (canonical
order), so the neighbours of every site in one kernel row (dy) are found with one
`torch.searchsorted` for the row's leftmost cell and k steps to the right - O(k N log N) time,
O(k*k N) int32 memory, no (B, H, W) grid at any point. The rulebook is backend-independent and is
also what the MAC count is based on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qgn.sparse.sites import ActiveSites

INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class NeighbourRulebook:
    """Neighbours of every site for a k x k submanifold convolution.

    Attributes:
        kernel_size: k (odd).
        table: (N, k*k) int32; column i*k + j holds the id of the site at offset (i - r, j - r)
            from the row's site, or N ("the zero row") where that cell is inactive or outside the
            grid. The centre column is arange(N). Offsets are symmetric: if table[n, t] = m < N then
            table[m, k*k-1-t] = n, which makes the backward pass another gather (torch_backend.py).
        num_pairs: number of (input, output) pairs over all offsets, the centre included.
    """

    kernel_size: int
    table: torch.Tensor
    num_pairs: int
    _per_tap: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_sites(self) -> int:
        return int(self.table.shape[0])

    @property
    def centre_offset(self) -> int:
        return (self.kernel_size * self.kernel_size) // 2

    def tap_pairs(self, tap: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(in_index, out_index), each (P_tap,) int64: the pairs of one kernel offset. Cached."""
        if tap not in self._per_tap:
            column = self.table[:, tap]
            out_index = torch.nonzero(column < self.num_sites).flatten()
            self._per_tap[tap] = (column[out_index].long(), out_index)
        return self._per_tap[tap]


def check_kernel_size(kernel_size: int) -> None:
    """Raise ValueError unless `kernel_size` is a positive odd int."""
    if kernel_size <= 0 or kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")


def build_neighbour_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """The rulebook of `sites` from their sorted flat indices (see the module docstring)."""
    check_kernel_size(kernel_size)
    radius = kernel_size // 2
    n = sites.num_sites
    height, width = sites.spatial_shape
    index_dtype = torch.int32 if sites.batch_size * height * width + width * radius < INT32_LIMIT else torch.int64
    flat = sites.flat_index().to(index_dtype)
    y = sites.coords[:, 1].to(index_dtype)
    x = sites.coords[:, 2].to(index_dtype)
    table = torch.full((n, kernel_size * kernel_size), n, dtype=torch.int32, device=sites.device)
    if n == 0:
        return NeighbourRulebook(kernel_size, table, 0)
    sentinel = torch.tensor(n, dtype=torch.int32, device=sites.device)
    last = n - 1
    for i in range(kernel_size):
        dy = i - radius
        row_ok = (y + dy >= 0) & (y + dy < height)
        target = flat + (dy * width - radius)  # the leftmost cell of this kernel row
        position = torch.searchsorted(flat, target, out_int32=True)  # first site at or after it
        for j in range(kernel_size):
            dx = j - radius
            candidate = position.clamp(max=last)
            hit = flat[candidate] == target
            valid = hit & row_ok & (x + dx >= 0) & (x + dx < width)
            table[:, i * kernel_size + j] = torch.where(valid, candidate, sentinel)
            position = position + hit.to(position.dtype)  # sites are unique: a hit moves one on
            target = target + 1
    num_pairs = int((table < n).sum())
    return NeighbourRulebook(kernel_size, table, num_pairs)


def neighbour_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """The rulebook of `sites`, built once per kernel size and cached on the sites."""
    return sites.cached(("neighbour_rulebook", kernel_size), lambda: build_neighbour_rulebook(sites, kernel_size))


def count_neighbour_pairs(sites: ActiveSites, kernel_size: int) -> int:
    """Number of (input, output) pairs of a k x k submanifold conv on `sites` (the MAC count's
    factor), without building a rulebook when the sites fill their grid or one is cached."""
    if kernel_size == 1:
        return sites.num_sites
    cached = sites.peek(("neighbour_rulebook", kernel_size))
    if cached is not None:
        return cached.num_pairs
    height, width = sites.spatial_shape
    if sites.is_full():
        radius = kernel_size // 2
        rows = sum(max(0, height - abs(d)) for d in range(-radius, radius + 1))
        cols = sum(max(0, width - abs(d)) for d in range(-radius, radius + 1))
        return sites.batch_size * rows * cols
    return neighbour_rulebook(sites, kernel_size).num_pairs
