"""The geometry of one decoder level: a set of active sites on a (B, H, W) grid.

`ActiveSites` is immutable. It owns a small cache (flat indices, neighbour rulebooks of every
backend) so that all convolutions on one level compute their neighbour pairs once, like spconv's
`indice_key`. Everything cached is O(N) in the number of sites: nothing of the grid's size
(B x H x W) is ever kept, so memory follows the active sites at any resolution. Feature tensors live in `SparseLevel` (level.py), which shares one `ActiveSites`
between all the feature maps of a level.

Canonical order: sites are sorted by (batch, y, x), i.e. by the flat index b*H*W + y*W + x, and
unique. Every constructor here returns sites in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import torch

from qgn.sparse.geometry_native import upsample_sorted

T = TypeVar("T")


class ActiveSites:
    """A set of active sites (batch, y, x) on a grid of `batch_size` images of `spatial_shape`.

    Attributes:
        coords: (N, 3) int64, rows (b, y, x), unique, in canonical (b, y, x) order.
        spatial_shape: (H, W) of this level's grid.
        batch_size: B.

    The constructor trusts that `coords` is canonical (checking would force a GPU sync); use
    `from_coords` for coordinates of unknown order, or `is_canonical()` to check.
    """

    def __init__(self, coords: torch.Tensor, spatial_shape: tuple[int, int], batch_size: int) -> None:
        if coords.dtype != torch.int64 or coords.dim() != 2 or coords.shape[1] != 3:
            raise ValueError(f"coords must be (N, 3) int64, got {tuple(coords.shape)} {coords.dtype}")
        height, width = (int(s) for s in spatial_shape)
        if height <= 0 or width <= 0 or batch_size <= 0:
            raise ValueError(f"bad grid: batch_size={batch_size}, spatial_shape={spatial_shape}")
        self._coords: torch.Tensor | None = coords
        self._num_sites = int(coords.shape[0])
        self._device = coords.device
        self.spatial_shape: tuple[int, int] = (height, width)
        self.batch_size: int = int(batch_size)
        self._cache: dict[Hashable, object] = {}

    # ----------------------------------------------------------------------------- constructors

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> ActiveSites:
        """Sites where `mask` (B, H, W) bool is True; `nonzero` already yields canonical order."""
        if mask.dtype != torch.bool or mask.dim() != 3:
            raise ValueError(f"mask must be (B, H, W) bool, got {tuple(mask.shape)} {mask.dtype}")
        batch_size, height, width = mask.shape
        return cls(torch.nonzero(mask), (height, width), batch_size)

    @classmethod
    def full(cls, batch_size: int, spatial_shape: tuple[int, int], device: torch.device | str = "cpu") -> ActiveSites:
        """Every site of the (batch_size, H, W) grid is active (canonical order = row-major)."""
        height, width = (int(s) for s in spatial_shape)
        if height <= 0 or width <= 0 or batch_size <= 0:
            raise ValueError(f"bad grid: batch_size={batch_size}, spatial_shape={spatial_shape}")
        sites = cls.__new__(cls)
        sites._coords = None  # made on first use (`coords`): the All path rarely needs them
        sites._num_sites = batch_size * height * width
        sites._device = torch.device(device)
        sites.spatial_shape, sites.batch_size, sites._cache = (height, width), int(batch_size), {}
        return sites

    @classmethod
    def from_coords(
        cls, coords: torch.Tensor, spatial_shape: tuple[int, int], batch_size: int
    ) -> tuple[ActiveSites, torch.Tensor]:
        """Canonicalise arbitrary coordinates.

        Args:
            coords: (N, 3) integer tensor of (b, y, x) rows, any order, must be unique and in bounds.
        Returns:
            (sites, order): `order` (N,) int64 such that `sites.coords == coords[order]`; permute
            per-site features with the same `order`.
        """
        coords = coords.to(torch.int64)
        height, width = spatial_shape
        upper = torch.tensor([batch_size, height, width], device=coords.device)
        if coords.numel() > 0 and bool(((coords < 0) | (coords >= upper)).any()):
            raise ValueError(f"coords outside the grid {batch_size}x{height}x{width}")
        flat = (coords[:, 0] * height + coords[:, 1]) * width + coords[:, 2]
        sorted_flat, order = torch.sort(flat, stable=True)
        if sorted_flat.numel() > 1 and bool((sorted_flat[1:] == sorted_flat[:-1]).any()):
            raise ValueError("coords contain duplicate sites")
        return cls(coords[order], spatial_shape, batch_size), order

    # --------------------------------------------------------------------------------- queries

    @property
    def coords(self) -> torch.Tensor:
        """(N, 3) int64 (b, y, x) rows in canonical order."""
        if self._coords is None:  # a full grid: every (b, y, x) in row-major order
            (height, width), batch_size = self.spatial_shape, self.batch_size
            axes = [torch.arange(n, device=self._device) for n in (batch_size, height, width)]
            self._coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        return self._coords

    @property
    def num_sites(self) -> int:
        return self._num_sites

    @property
    def device(self) -> torch.device:
        return self._device

    def flat_index(self) -> torch.Tensor:
        """(N,) int64 position of every site in a flattened (B, H, W) grid: b*H*W + y*W + x."""
        return self.cached("flat_index", self._build_flat_index)

    def _build_flat_index(self) -> torch.Tensor:
        if self._coords is None:
            return torch.arange(self.num_sites, device=self.device)
        height, width = self.spatial_shape
        return (self.coords[:, 0] * height + self.coords[:, 1]) * width + self.coords[:, 2]

    @property
    def grid_cells(self) -> int:
        """B * H * W, the number of cells of the grid the sites live on."""
        height, width = self.spatial_shape
        return self.batch_size * height * width

    @property
    def density(self) -> float:
        """Active sites / grid cells, in [0, 1]."""
        return self.num_sites / self.grid_cells

    def is_full(self) -> bool:
        """True if every cell of the grid is active (sites are unique and in bounds, so N = B*H*W
        says it; then site i is the cell of flat index i)."""
        return self.num_sites == self.grid_cells

    def is_canonical(self) -> bool:
        """True if the sites are unique, in bounds and sorted by (b, y, x). Forces a sync."""
        height, width = self.spatial_shape
        upper = torch.tensor([self.batch_size, height, width], device=self.device)
        in_bounds = not bool(((self.coords < 0) | (self.coords >= upper)).any())
        flat = self.flat_index()
        increasing = bool((flat[1:] > flat[:-1]).all()) if flat.numel() > 1 else True
        return in_bounds and increasing

    def cached(self, key: Hashable, build: Callable[[], T]) -> T:
        """Return the value cached under `key`, building it with `build()` the first time.

        Used for everything derived from the geometry alone (rulebooks of each backend and kernel
        size). Values must not depend on features.
        """
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]  # type: ignore[return-value]

    def peek(self, key: Hashable) -> object | None:
        """The value cached under `key`, or None; builds nothing."""
        return self._cache.get(key)

    # ------------------------------------------------------------------------------ upsampling

    def upsample2x(self, parent_mask: torch.Tensor | None = None) -> tuple[ActiveSites, torch.Tensor]:
        """Split selected sites into their four children on the grid of twice the resolution.

        Every selected site (b, y, x) becomes (b, 2y, 2x), (b, 2y, 2x+1), (b, 2y+1, 2x),
        (b, 2y+1, 2x+1) (paper Eq. 11). Pure index arithmetic; no dense tensors.

        Args:
            parent_mask: (N,) bool selecting the sites to split; None selects all.
        Returns:
            (children, parent_index): `children` has 4*K sites in canonical order on the
            (B, 2H, 2W) grid; `parent_index` (4*K,) int64 is the parent site id of every child.
        """
        if self.splits_whole_grid(parent_mask):
            return self._upsample_full()
        if parent_mask is None:
            parent_ids = torch.arange(self.num_sites, device=self.device)
        else:
            if parent_mask.dtype != torch.bool or parent_mask.shape != (self.num_sites,):
                raise ValueError(f"parent_mask must be ({self.num_sites},) bool, got {tuple(parent_mask.shape)}")
            parent_ids = torch.nonzero(parent_mask).flatten()
        native = upsample_sorted(self.coords, parent_ids, self.spatial_shape)  # C, where built
        if native is not None:
            children, child_parent, order = native
            upsampled = ActiveSites(children, (2 * self.spatial_shape[0], 2 * self.spatial_shape[1]), self.batch_size)
            upsampled._cache["parent_link"] = (self, parent_ids, order)
            return upsampled, child_parent
        parents = self.coords[parent_ids]  # (K, 3)
        offsets = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]], device=self.device)
        scale = torch.tensor([1, 2, 2], device=self.device)
        children = (parents * scale).unsqueeze(1) + offsets  # (K, 4, 3)
        children = children.reshape(-1, 3)
        child_parent = parent_ids.repeat_interleave(4)
        height, width = self.spatial_shape
        child_width = 2 * width
        flat = (children[:, 0] * (2 * height) + children[:, 1]) * child_width + children[:, 2]
        order = torch.argsort(flat)  # flat indices are unique, so the order is unambiguous
        upsampled = ActiveSites(children[order], (2 * height, 2 * width), self.batch_size)
        # lets the children's rulebook follow from this level's (rulebook.py), without a search
        upsampled._cache["parent_link"] = (self, parent_ids, order)
        return upsampled, child_parent[order]

    def splits_whole_grid(self, parent_mask: torch.Tensor | None) -> bool:
        """True if `upsample2x(parent_mask)` splits every cell of a full grid (its children are
        then the full grid of twice the size)."""
        if not self.is_full():
            return False
        return parent_mask is None or (parent_mask.shape == (self.num_sites,) and bool(parent_mask.all()))

    def _upsample_full(self) -> tuple[ActiveSites, torch.Tensor]:
        """`upsample2x` of a full grid: the full grid of twice the size, parents by arithmetic."""
        height, width = self.spatial_shape
        children = ActiveSites.full(self.batch_size, (2 * height, 2 * width), self.device)
        parents = torch.arange(self.num_sites, device=self.device).view(self.batch_size, height, 1, width, 1)
        return children, parents.expand(-1, -1, 2, -1, 2).reshape(-1)

    def __repr__(self) -> str:
        return (
            f"ActiveSites(num_sites={self.num_sites}, batch_size={self.batch_size}, spatial_shape={self.spatial_shape})"
        )
