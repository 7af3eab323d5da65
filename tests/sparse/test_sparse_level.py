"""SparseLevel / ActiveSites geometry: canonical order, upsample2x, gather/to_dense, rulebook counts.

References are brute-force Python loops over coordinates, independent of the implementation.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qgn.sparse import ActiveSites, SparseLevel, SubMConv2d


def random_mask(batch_size: int, height: int, width: int, density: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch_size, height, width), generator=generator) < density


def coord_list(coords: torch.Tensor) -> list[tuple[int, int, int]]:
    return [tuple(row) for row in coords.tolist()]


# ------------------------------------------------------------------------------ canonical order


@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_from_dense_mask_yields_sorted_unique_sites_of_the_mask(density: float) -> None:
    mask = random_mask(2, 5, 7, density, seed=1)
    sites = ActiveSites.from_mask(mask)
    expected = sorted((b, y, x) for b in range(2) for y in range(5) for x in range(7) if mask[b, y, x])
    assert coord_list(sites.coords) == expected
    assert sites.coords.dtype == torch.int64
    assert sites.is_canonical()


def test_from_coords_sorts_and_returns_the_permutation() -> None:
    coords = torch.tensor([[1, 0, 2], [0, 3, 1], [0, 0, 4], [1, 0, 0]])
    sites, order = ActiveSites.from_coords(coords, (4, 5), batch_size=2)
    assert coord_list(sites.coords) == [(0, 0, 4), (0, 3, 1), (1, 0, 0), (1, 0, 2)]
    assert torch.equal(coords[order], sites.coords)


def test_level_from_coords_permutes_the_features_with_the_sites() -> None:
    coords = torch.tensor([[0, 1, 1], [0, 0, 2]])
    level = SparseLevel.from_coords(coords, torch.tensor([[1.0], [2.0]]), (2, 3), batch_size=1)
    assert coord_list(level.coords) == [(0, 0, 2), (0, 1, 1)]
    assert level.feats.flatten().tolist() == [2.0, 1.0]


def test_from_coords_rejects_duplicates_and_out_of_bounds() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        ActiveSites.from_coords(torch.tensor([[0, 1, 1], [0, 1, 1]]), (3, 3), batch_size=1)
    with pytest.raises(ValueError, match="outside"):
        ActiveSites.from_coords(torch.tensor([[0, 3, 0]]), (3, 3), batch_size=1)
    with pytest.raises(ValueError, match="outside"):
        ActiveSites.from_coords(torch.tensor([[1, 0, 0]]), (3, 3), batch_size=1)


def test_full_grid_has_every_site() -> None:
    sites = ActiveSites.full(2, (3, 4))
    assert sites.num_sites == 24
    assert coord_list(sites.coords) == [(b, y, x) for b in range(2) for y in range(3) for x in range(4)]


# ---------------------------------------------------------------------------------- upsample2x


def brute_force_upsample(
    level: SparseLevel, parent_mask: torch.Tensor | None
) -> dict[tuple[int, int, int], list[float]]:
    children: dict[tuple[int, int, int], list[float]] = {}
    for index, (b, y, x) in enumerate(coord_list(level.coords)):
        if parent_mask is not None and not bool(parent_mask[index]):
            continue
        for dy in (0, 1):
            for dx in (0, 1):
                children[(b, 2 * y + dy, 2 * x + dx)] = level.feats[index].tolist()
    return children


@settings(max_examples=20, deadline=None)
@given(
    batch_size=st.integers(1, 2),
    height=st.integers(1, 5),
    width=st.integers(1, 5),
    density=st.sampled_from([0.0, 0.4, 1.0]),
    select=st.sampled_from(["all", "none", "random"]),
    seed=st.integers(0, 1000),
)
def test_upsample2x_matches_brute_force(
    batch_size: int, height: int, width: int, density: float, select: str, seed: int
) -> None:
    mask = random_mask(batch_size, height, width, density, seed)
    sites = ActiveSites.from_mask(mask)
    level = SparseLevel(sites, torch.randn(sites.num_sites, 3, generator=torch.Generator().manual_seed(seed)))
    parent_mask = {
        "all": None,
        "none": torch.zeros(sites.num_sites, dtype=torch.bool),
        "random": torch.rand(sites.num_sites, generator=torch.Generator().manual_seed(seed + 1)) < 0.5,
    }[select]
    upsampled = level.upsample2x(parent_mask)
    expected = brute_force_upsample(level, parent_mask)
    assert upsampled.spatial_shape == (2 * height, 2 * width)
    assert upsampled.batch_size == batch_size
    assert coord_list(upsampled.coords) == sorted(expected)
    assert upsampled.feats.tolist() == [expected[site] for site in sorted(expected)]
    assert upsampled.sites.is_canonical()


def test_upsample2x_is_differentiable_nearest_neighbour() -> None:
    sites = ActiveSites.from_mask(random_mask(1, 3, 3, 0.6, seed=3))
    feats = torch.randn(sites.num_sites, 2, requires_grad=True)
    SparseLevel(sites, feats).upsample2x().feats.sum().backward()
    assert feats.grad is not None
    assert torch.equal(feats.grad, torch.full_like(feats, 4.0))  # each parent feeds four children


def test_upsample2x_rejects_a_mask_of_the_wrong_length() -> None:
    level = SparseLevel.from_dense(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError):
        level.upsample2x(torch.ones(3, dtype=torch.bool))


# ----------------------------------------------------------------------------- gather/to_dense


@pytest.mark.parametrize("density", [0.0, 0.5, 1.0])
def test_gather_reads_the_dense_tensor_at_the_sites(density: float) -> None:
    dense = torch.randn(2, 3, 4, 5)
    mask = random_mask(2, 4, 5, density, seed=4)
    level = SparseLevel.from_dense_mask(dense, mask)
    expected = [dense[b, :, y, x].tolist() for b, y, x in coord_list(level.coords)]
    assert level.feats.shape == (level.num_sites, 3)
    assert level.feats.tolist() == expected
    assert level.gather(dense * 2).tolist() == [[2 * v for v in row] for row in expected]


@pytest.mark.parametrize("density", [0.0, 0.5, 1.0])
def test_to_dense_round_trip_with_zeros_elsewhere(density: float) -> None:
    dense = torch.randn(2, 3, 4, 5)
    mask = random_mask(2, 4, 5, density, seed=5)
    level = SparseLevel.from_dense_mask(dense, mask)
    restored = level.to_dense()
    assert restored.shape == (2, 3, 4, 5)
    assert torch.equal(restored, dense * mask[:, None])
    assert torch.equal(level.gather(restored), level.feats)


def test_gather_and_to_dense_are_differentiable() -> None:
    dense = torch.randn(1, 2, 3, 3, requires_grad=True)
    mask = random_mask(1, 3, 3, 0.5, seed=6)
    level = SparseLevel.from_dense_mask(dense, mask)
    level.to_dense().sum().backward()
    assert dense.grad is not None and torch.equal(dense.grad, mask[:, None].expand_as(dense).float())


def test_from_dense_activates_every_site() -> None:
    dense = torch.randn(2, 3, 4, 5)
    level = SparseLevel.from_dense(dense)
    assert level.num_sites == 40
    assert torch.equal(level.to_dense(), dense)


def test_gather_rejects_a_grid_of_another_size() -> None:
    level = SparseLevel.from_dense(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError):
        level.gather(torch.zeros(1, 1, 4, 5))


# --------------------------------------------------------------------------- sharing and costs


def test_replace_feats_shares_the_geometry() -> None:
    level = SparseLevel.from_dense_mask(torch.randn(1, 2, 4, 4), random_mask(1, 4, 4, 0.5, seed=7))
    other = level.replace_feats(torch.zeros(level.num_sites, 6))
    assert other.sites is level.sites
    assert other.num_channels == 6
    with pytest.raises(ValueError):
        level.replace_feats(torch.zeros(level.num_sites + 1, 6))


def brute_force_pair_count(coords: torch.Tensor, kernel_size: int) -> int:
    active = set(coord_list(coords))
    radius = kernel_size // 2
    return sum(
        (b, y + dy, x + dx) in active
        for b, y, x in active
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
    )


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_num_neighbour_pairs_counts_active_neighbours(kernel_size: int, density: float) -> None:
    level = SparseLevel.from_dense_mask(torch.zeros(2, 1, 5, 6), random_mask(2, 5, 6, density, seed=8))
    assert level.num_neighbour_pairs(kernel_size) == brute_force_pair_count(level.coords, kernel_size)


def test_full_grid_pair_count_and_macs() -> None:
    level = SparseLevel.from_dense(torch.zeros(2, 4, 6, 7))
    assert level.num_neighbour_pairs(3) == 2 * (3 * 6 - 2) * (3 * 7 - 2)  # |dy|,|dx| <= 1 per axis
    assert SubMConv2d(4, 8, 3).macs(level) == level.num_neighbour_pairs(3) * 4 * 8
