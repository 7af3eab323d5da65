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

from qgn.sparse.geometry_native import child_table
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
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_sites(self) -> int:
        return int(self.table.shape[0])

    @property
    def centre_offset(self) -> int:
        return (self.kernel_size * self.kernel_size) // 2

    def cached(self, key, build):
        """``build()``, computed once per rulebook and ``key`` (what an algorithm derives from the
        table: a tap's pairs, the fused kernel's site order)."""
        if key not in self._derived:
            self._derived[key] = build()
        return self._derived[key]

    def tap_pairs(self, tap: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(in_index, out_index), each (P_tap,) int64: the pairs of one kernel offset. Cached."""
        def build() -> tuple[torch.Tensor, torch.Tensor]:
            column = self.table[:, tap]
            out_index = torch.nonzero(column < self.num_sites).flatten()
            return column[out_index].long(), out_index

        return self.cached(tap, build)


def check_kernel_size(kernel_size: int) -> None:
    """Raise ValueError unless `kernel_size` is a positive odd int."""
    if kernel_size <= 0 or kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")


def build_neighbour_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """The rulebook of `sites` from their sorted flat indices (see the module docstring).

    Per site and kernel row dy, one binary search finds the first site at or after the row's
    leftmost cell (y + dy, x - r); the k cells of that row can only be the k sites from there on
    (indices are unique and sorted), so k*k comparisons find them all. A few whole-tensor ops,
    whatever N.
    """
    check_kernel_size(kernel_size)
    radius, n = kernel_size // 2, sites.num_sites
    height, width = sites.spatial_shape
    if n == 0:
        return NeighbourRulebook(kernel_size, torch.empty((0, kernel_size * kernel_size), dtype=torch.int32,
                                                          device=sites.device), 0)
    wide = sites.batch_size * height * width + (width + 1) * radius >= INT32_LIMIT
    if sites.is_full() and not wide:
        return _full_grid_rulebook(sites, kernel_size)
    index_dtype = torch.int64 if wide else torch.int32
    device = sites.device
    flat = sites.flat_index().to(index_dtype)
    offsets = torch.arange(-radius, radius + 1, dtype=index_dtype, device=device)  # (k,)
    # (N, k): the leftmost cell of each kernel row, and the first site at or after it
    leftmost = flat[:, None] + (offsets * width - radius)
    first = torch.searchsorted(flat, leftmost.reshape(-1), out_int32=not wide).view(n, kernel_size)
    # (N, k rows, k candidates): the sites at first, first+1, … and the column each one falls in
    candidates = first[:, :, None] + torch.arange(kernel_size, dtype=index_dtype, device=device)
    in_range = candidates < n
    column = flat[candidates.clamp_(max=n - 1)] - leftmost[:, :, None]
    hit = in_range & (column >= 0) & (column < kernel_size)
    # each hit lands in its column (unique within a row); misses land in a spare column k
    table = torch.full((n, kernel_size, kernel_size + 1), n, dtype=torch.int32, device=device)
    table.scatter_(2, torch.where(hit, column, kernel_size).long(), torch.where(hit, candidates, n).to(torch.int32))
    table = table[:, :, :kernel_size]
    y, x = sites.coords[:, 1], sites.coords[:, 2]
    row_ok = ((y[:, None] + offsets) >= 0) & ((y[:, None] + offsets) < height)  # (N, k)
    col_ok = ((x[:, None] + offsets) >= 0) & ((x[:, None] + offsets) < width)
    valid = (table < n) & row_ok[:, :, None] & col_ok[:, None, :]
    table = torch.where(valid, table, torch.tensor(n, dtype=torch.int32, device=device))
    return NeighbourRulebook(kernel_size, table.view(n, kernel_size * kernel_size), int(valid.sum()))


def _full_grid_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """`build_neighbour_rulebook` of sites that fill their grid: site i is cell i (row-major), so
    every neighbour is arithmetic - no search (the root level of every prediction)."""
    radius, device = kernel_size // 2, sites.device
    (height, width), batch, n = sites.spatial_shape, sites.batch_size, sites.num_sites
    offsets = torch.arange(-radius, radius + 1, device=device)
    rows = torch.arange(height, device=device)[:, None] + offsets  # (H, k)
    cols = torch.arange(width, device=device)[:, None] + offsets  # (W, k)
    valid = (((rows >= 0) & (rows < height))[:, None, :, None]
             & ((cols >= 0) & (cols < width))[None, :, None, :])  # (H, W, k, k)
    cell = rows[:, None, :, None] * width + cols[None, :, None, :]
    image = torch.arange(batch, device=device).view(batch, 1, 1, 1, 1) * (height * width)
    table = torch.where(valid, cell + image, n).to(torch.int32).view(n, kernel_size * kernel_size)
    return NeighbourRulebook(kernel_size, table, batch * int(valid.sum()))


def child_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook | None:
    """The rulebook of sites made by `ActiveSites.upsample2x`, from the parent level's 3x3 one.

    A child (2py + a, 2px + b) of parent p finds its neighbour at (dy, dx) among the children of
    the parent at (floor((a + dy) / 2), floor((b + dx) / 2)) from p - within p's 3x3 neighbourhood
    for k <= 5 - so the parent's table, the ranks of the split parents and the children's sort
    order give every neighbour by a few gathers: O(N), no search. None for sites without a parent
    link or a kernel wider than 5.
    """
    link = sites.peek("parent_link")
    if link is None or kernel_size > 5:
        return None
    parent, parent_ids, order = link
    device, n, num_parents = sites.device, sites.num_sites, parent.num_sites
    radius, kk = kernel_size // 2, kernel_size * kernel_size
    parent_table = neighbour_rulebook(parent, 3).table  # (Np, 9), Np where missing
    native = child_table(parent_table, parent_ids, order, kernel_size)  # C, where built: the same table
    if native is not None:
        return NeighbourRulebook(kernel_size, *native)
    rank = torch.full((num_parents + 1,), -1, dtype=torch.int64, device=device)
    rank[parent_ids] = torch.arange(parent_ids.numel(), device=device)  # unsplit parents stay -1
    before_sort = torch.empty(n, dtype=torch.int64, device=device)
    before_sort[order] = torch.arange(n, device=device)  # child made at position i is site before_sort[i]
    # per child position o = 2a + b and kernel offset: the parent's tap, and the child position there
    parent_tap, child_position = [], []
    for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
        for i in range(kernel_size):
            for j in range(kernel_size):
                ty, tx = a + i - radius, b + j - radius
                parent_tap.append(((ty >> 1) + 1) * 3 + (tx >> 1) + 1)
                child_position.append((ty & 1) * 2 + (tx & 1))
    parent_tap_t = torch.tensor(parent_tap, device=device)
    child_position_t = torch.tensor(child_position, device=device).view(1, 4 * kk)
    neighbour_parent = parent_table[parent_ids][:, parent_tap_t].long()  # (K, 4*kk)
    neighbour_rank = rank[neighbour_parent]
    made_at = (4 * neighbour_rank + child_position_t).clamp_(min=0)
    found = neighbour_rank >= 0
    rows = torch.where(found, before_sort[made_at], n).view(n, kk)  # rows in the order children were made
    table = rows[order].to(torch.int32)
    return NeighbourRulebook(kernel_size, table, int(found.sum()))


def neighbour_rulebook(sites: ActiveSites, kernel_size: int) -> NeighbourRulebook:
    """The rulebook of `sites`, built once per kernel size and cached on the sites: from the parent
    level's when `sites` came from `upsample2x` (`child_rulebook`), else by searching
    (`build_neighbour_rulebook`)."""
    def build() -> NeighbourRulebook:
        derived = child_rulebook(sites, kernel_size)
        return derived if derived is not None else build_neighbour_rulebook(sites, kernel_size)

    return sites.cached(("neighbour_rulebook", kernel_size), build)


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
