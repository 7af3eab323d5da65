"""`SparseLevel`: the activation of one decoder level, i.e. features at a set of active sites."""

from __future__ import annotations

import torch

from qgn.sparse.rulebook import count_neighbour_pairs
from qgn.sparse.sites import ActiveSites


class SparseLevel:
    """Features `feats` (N, C) at the active sites `sites` of one level.

    Feature maps of one level share a single `ActiveSites` object (see `replace_feats`), so that
    geometry-derived data (neighbour rulebooks) is computed once per level.

    Properties mirror the geometry: `coords` (N, 3) int64 (b, y, x) in canonical order,
    `spatial_shape` (H, W), `batch_size` B.
    """

    def __init__(self, sites: ActiveSites, feats: torch.Tensor) -> None:
        if feats.dim() != 2 or feats.shape[0] != sites.num_sites:
            raise ValueError(f"feats must be ({sites.num_sites}, C), got {tuple(feats.shape)}")
        if feats.device != sites.device:
            raise ValueError(f"feats on {feats.device} but sites on {sites.device}")
        self.sites: ActiveSites = sites
        self.feats: torch.Tensor = feats

    @classmethod
    def trusted(cls, sites: ActiveSites, feats: torch.Tensor) -> SparseLevel:
        """`SparseLevel(sites, feats)` without the checks, for a caller that made `feats` (N, C)
        for `sites` itself (the decoder's dense All path, whose bookkeeping runs once per level
        per prediction on cold caches)."""
        level = cls.__new__(cls)
        level.sites, level.feats = sites, feats
        return level

    # ----------------------------------------------------------------------------- constructors

    @classmethod
    def from_dense_mask(cls, dense: torch.Tensor, mask: torch.Tensor) -> SparseLevel:
        """Sites where `mask` (B, H, W) bool is True, features taken from `dense` (B, C, H, W)."""
        sites = ActiveSites.from_mask(mask)
        return cls(sites, gather_at_sites(dense, sites))

    @classmethod
    def from_coords(
        cls, coords: torch.Tensor, feats: torch.Tensor, spatial_shape: tuple[int, int], batch_size: int
    ) -> SparseLevel:
        """Sites (N, 3) integer (b, y, x) in any order (unique, in bounds) with feats (N, C); sorts both."""
        sites, order = ActiveSites.from_coords(coords, spatial_shape, batch_size)
        return cls(sites, feats[order])

    @classmethod
    def from_dense(cls, dense: torch.Tensor) -> SparseLevel:
        """Every site of `dense` (B, C, H, W) is active (e.g. the coarsest decoder level)."""
        batch_size, _, height, width = dense.shape
        sites = ActiveSites.full(batch_size, (height, width), device=dense.device)
        return cls(sites, gather_at_sites(dense, sites))

    # --------------------------------------------------------------------------------- queries

    @property
    def coords(self) -> torch.Tensor:
        return self.sites.coords

    @property
    def spatial_shape(self) -> tuple[int, int]:
        return self.sites.spatial_shape

    @property
    def batch_size(self) -> int:
        return self.sites.batch_size

    @property
    def num_sites(self) -> int:
        return self.sites.num_sites

    @property
    def num_channels(self) -> int:
        return int(self.feats.shape[1])

    def num_neighbour_pairs(self, kernel_size: int = 3) -> int:
        """Number of (input, output) site pairs of a k x k submanifold convolution on this level.

        A conv from Cin to Cout channels costs `num_neighbour_pairs(k) * Cin * Cout` MACs.
        """
        return count_neighbour_pairs(self.sites, kernel_size)

    # ------------------------------------------------------------------------------ operations

    def replace_feats(self, feats: torch.Tensor) -> SparseLevel:
        """A level with the same sites (and cached rulebooks) and new `feats` (N, C')."""
        return SparseLevel(self.sites, feats)

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """Features of `dense` (B, C, H, W) at this level's sites: (N, C), same dtype, differentiable."""
        return gather_at_sites(dense, self.sites)

    def to_dense(self) -> torch.Tensor:
        """(B, C, H, W) tensor with `feats` at the active sites and zeros elsewhere; differentiable."""
        height, width = self.spatial_shape
        flat = self.feats.new_zeros((self.batch_size * height * width, self.num_channels))
        flat = flat.index_copy(0, self.sites.flat_index(), self.feats)
        return flat.view(self.batch_size, height, width, self.num_channels).permute(0, 3, 1, 2).contiguous()

    def upsample2x(self, parent_mask: torch.Tensor | None = None) -> SparseLevel:
        """Nearest-neighbour split of the selected sites into four children each (paper Eq. 11).

        Args:
            parent_mask: (N,) bool, the sites to split; None splits all.
        Returns:
            Level on the (B, 2H, 2W) grid with 4*K sites in canonical order; each child carries
            its parent's features.
        """
        if self.sites.splits_whole_grid(parent_mask):  # nearest-neighbour upsampling, channels-last
            children = ActiveSites.full(self.batch_size, (2 * self.spatial_shape[0], 2 * self.spatial_shape[1]),
                                        self.sites.device)
            (height, width), channels = self.spatial_shape, self.num_channels
            grid = self.feats.view(self.batch_size, height, width, channels).permute(0, 3, 1, 2)
            up = torch.nn.functional.interpolate(grid, scale_factor=2, mode="nearest")
            return SparseLevel(children, up.permute(0, 2, 3, 1).reshape(-1, channels))
        children, parent_index = self.sites.upsample2x(parent_mask)
        return SparseLevel(children, self.feats.index_select(0, parent_index))

    def __repr__(self) -> str:
        return (
            f"SparseLevel(num_sites={self.num_sites}, channels={self.num_channels}, "
            f"batch_size={self.batch_size}, spatial_shape={self.spatial_shape})"
        )


def gather_at_sites(dense: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
    """Rows of `dense` (B, C, H, W) at `sites`: (N, C), differentiable w.r.t. `dense`."""
    batch_size, _, height, width = dense.shape
    if (batch_size, (height, width)) != (sites.batch_size, sites.spatial_shape):
        raise ValueError(
            f"dense grid {batch_size}x{height}x{width} does not match sites "
            f"{sites.batch_size}x{sites.spatial_shape[0]}x{sites.spatial_shape[1]}"
        )
    pixel = sites.coords[:, 1] * width + sites.coords[:, 2]
    # Advanced indices separated by a slice: the indexed dimension comes first, giving (N, C).
    # This reads only the N needed pixels; no channels-last copy of `dense` is made.
    return dense.flatten(2)[sites.coords[:, 0], :, pixel]
