"""The level geometry's C kernels (qgn/sparse/_geometry.c) against the PyTorch ops they replace
and against the rulebook built by search from the sites alone."""
from __future__ import annotations

import platform
import shutil

import pytest
import torch

from qgn.sparse import geometry_native
from qgn.sparse.rulebook import build_neighbour_rulebook, neighbour_rulebook
from qgn.sparse.sites import ActiveSites

needs_kernels = pytest.mark.skipif(not geometry_native.available(), reason="qgn/sparse/_geometry.c is not built")


def test_the_kernels_are_built_where_they_can_be() -> None:
    import sysconfig
    from pathlib import Path

    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if platform.system() != "Linux" or not shutil.which("cc") or not headers.is_file():
        pytest.skip("the kernels are only required on Linux with a C compiler and Python's headers")
    assert geometry_native.available(), "qgn/sparse/_geometry.c was not compiled: run scripts/setup again"


def _levels(seed: int, depth: int = 3):
    """A random root (two images, borders, bands) and `depth` levels of random splits below it."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand((2, 5, 7), generator=g) < 0.6
    mask[1, 4, :] = True
    level = ActiveSites.from_mask(mask)
    masks = []
    for _ in range(depth):
        split = torch.rand(level.num_sites, generator=g) < 0.45
        masks.append(split)
        level, _ = level.upsample2x(split)
    return ActiveSites.from_mask(mask), masks


def _chain(root: ActiveSites, masks) -> list[tuple[ActiveSites, torch.Tensor]]:
    level, out = root, []
    for split in masks:
        level, parent = level.upsample2x(split)
        out.append((level, parent))
    return out


@needs_kernels
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_c_and_pytorch_give_the_same_children_and_tables(monkeypatch, seed: int, kernel_size: int) -> None:
    root, masks = _levels(seed)
    native = _chain(root, masks)
    monkeypatch.setattr(geometry_native, "_geometry", None)  # the PyTorch ops
    reference = _chain(root, masks)
    reference_tables = [neighbour_rulebook(sites, kernel_size) for sites, _ in reference]
    monkeypatch.undo()
    for (sites, parent), (want_sites, want_parent), want in zip(native, reference, reference_tables):
        assert torch.equal(sites.coords, want_sites.coords) and sites.spatial_shape == want_sites.spatial_shape
        assert torch.equal(parent, want_parent)
        assert torch.equal(sites.peek("parent_link")[2], want_sites.peek("parent_link")[2])
        got = neighbour_rulebook(sites, kernel_size)
        searched = build_neighbour_rulebook(sites, kernel_size)
        assert torch.equal(got.table, want.table) and got.num_pairs == want.num_pairs
        assert torch.equal(got.table, searched.table) and got.num_pairs == searched.num_pairs


@needs_kernels
def test_every_parent_split_and_none() -> None:
    sites = ActiveSites.from_mask(torch.rand((1, 6, 9), generator=torch.Generator().manual_seed(1)) < 0.5)
    everything, parent = sites.upsample2x(None)
    assert everything.num_sites == 4 * sites.num_sites and torch.equal(torch.bincount(parent), torch.full((sites.num_sites,), 4))
    nothing, parent = sites.upsample2x(torch.zeros(sites.num_sites, dtype=torch.bool))
    assert nothing.num_sites == 0 and parent.numel() == 0
    assert neighbour_rulebook(nothing, 3).table.shape == (0, 9)


@needs_kernels
def test_bad_indices_raise_instead_of_being_read() -> None:
    coords = torch.tensor([[0, 0, 0], [0, 0, 2], [0, 1, 1]])
    with pytest.raises(ValueError, match="increasing"):
        geometry_native.upsample_sorted(coords, torch.tensor([1, 0]), (2, 3))
    with pytest.raises(ValueError, match="increasing"):
        geometry_native.upsample_sorted(coords, torch.tensor([0, 3]), (2, 3))
    with pytest.raises(ValueError, match="increasing"):  # parents not in canonical order
        geometry_native.upsample_sorted(torch.tensor([[0, 1, 0], [0, 0, 0]]), torch.tensor([0, 1]), (2, 3))
    table = torch.full((3, 9), 3, dtype=torch.int32)
    ids = torch.tensor([0, 2])
    made_at = torch.arange(8)
    assert geometry_native.child_table(table, ids, made_at, 3)[1] == 0
    with pytest.raises(ValueError, match="out of range"):
        geometry_native.child_table(table, torch.tensor([0, 5]), made_at, 3)
    with pytest.raises(ValueError, match="out of range"):
        geometry_native.child_table(table, ids, torch.tensor([0, 1, 2, 3, 4, 5, 6, 6]), 3)
    bad_table = table.clone()
    bad_table[0, 4] = 99
    with pytest.raises(ValueError, match="out of range"):
        geometry_native.child_table(bad_table, ids, made_at, 3)
    with pytest.raises(ValueError, match="made_at"):
        geometry_native.child_table(table, ids, torch.arange(7), 3)


def test_pytorch_ops_run_where_the_kernels_cannot(monkeypatch) -> None:
    """No extension (or a CUDA tensor): None, and the callers run their PyTorch ops."""
    monkeypatch.setattr(geometry_native, "_geometry", None)
    assert geometry_native.upsample_sorted(torch.zeros((1, 3), dtype=torch.int64), torch.tensor([0]), (1, 1)) is None
    root, masks = _levels(0, depth=2)
    children = _chain(root, masks)
    for sites, _ in children:
        assert torch.equal(neighbour_rulebook(sites, 3).table, build_neighbour_rulebook(sites, 3).table)
