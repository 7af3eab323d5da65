"""The torch backend's three algorithms (gather, taps, dense) and its rulebook, against independent
references: a masked dense conv2d (forward and backward) and a brute-force neighbour search.

Also: the rulebook is built from the active sites alone (int32, no grid-sized tensor is made or
cached), and the automatic choice follows the density crossover.
"""
from __future__ import annotations

import pytest
import torch

from qgn.sparse import ActiveSites, SparseLevel, subm_conv2d
from qgn.sparse import torch_backend
from qgn.sparse.rulebook import build_neighbour_rulebook, count_neighbour_pairs, neighbour_rulebook
from qgn.sparse.torch_backend import ALGORITHM_ENV_VAR, choose_algorithm


def masked_dense_conv(sites: ActiveSites, feats, weight, bias):
    """(N, Cout): zero grid with feats at the sites, conv2d (NCHW, padding k//2), read at the sites."""
    height, width = sites.spatial_shape
    b, y, x = sites.coords.unbind(1)
    dense = torch.zeros(sites.batch_size, height, width, feats.shape[1], dtype=feats.dtype)
    dense = dense.index_put((b, y, x), feats)
    out = torch.nn.functional.conv2d(dense.permute(0, 3, 1, 2).contiguous(), weight.permute(0, 3, 1, 2).contiguous(),
                                     bias, padding=weight.shape[1] // 2)
    return out.permute(0, 2, 3, 1)[b, y, x]


def torch_and_reference_with_grads(sites: ActiveSites, feats, weight, bias, grad_out) -> list[tuple]:
    """[(out, d feats, d weight, d bias)] of `subm_conv2d` (torch backend) and of
    `masked_dense_conv` (computed in float64, returned in the inputs' dtype), both with grad_out."""
    results = []
    for conv in (lambda f, w, b: subm_conv2d(SparseLevel(sites, f), w, b, backend="torch").feats,
                 lambda f, w, b: masked_dense_conv(sites, f.double(), w.double(), b.double()).to(feats.dtype)):
        f, w, b = (t.clone().requires_grad_(True) for t in (feats, weight, bias))
        out = conv(f, w, b)
        out.backward(grad_out)
        results.append((out.detach(), f.grad, w.grad, b.grad))
    return results


def brute_force_table(sites: ActiveSites, k: int) -> torch.Tensor:
    """(N, k*k) neighbour ids by a dictionary of coordinates; N where there is none."""
    r = k // 2
    where = {tuple(c): i for i, c in enumerate(sites.coords.tolist())}
    n = sites.num_sites
    table = torch.full((n, k * k), n, dtype=torch.int32)
    for i, (b, y, x) in enumerate(sites.coords.tolist()):
        for di in range(k):
            for dj in range(k):
                table[i, di * k + dj] = where.get((b, y + di - r, x + dj - r), n)
    return table


def masks() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    border = torch.ones(2, 7, 9, dtype=torch.bool)
    border[:, 1:-1, 1:-1] = False
    one = torch.zeros(2, 7, 9, dtype=torch.bool)
    one[1, 0, 8] = True
    rows = torch.zeros(2, 7, 9, dtype=torch.bool)
    rows[:, ::3] = True  # whole rows: neighbours across a row end must not wrap
    return {"sparse": torch.rand(2, 7, 9, generator=g) < 0.2, "half": torch.rand(2, 7, 9, generator=g) < 0.5,
            "full": torch.ones(2, 7, 9, dtype=torch.bool), "border": border, "one": one, "rows": rows,
            "cols": torch.zeros(2, 7, 9, dtype=torch.bool).index_fill_(2, torch.tensor([0, 8]), True)}


MASKS = masks()


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("name", list(MASKS))
def test_rulebook_equals_brute_force(name: str, k: int) -> None:
    sites = ActiveSites.from_mask(MASKS[name])
    rulebook = build_neighbour_rulebook(sites, k)
    assert rulebook.table.dtype == torch.int32
    assert torch.equal(rulebook.table, brute_force_table(sites, k))
    assert rulebook.num_pairs == int((rulebook.table < sites.num_sites).sum())
    assert count_neighbour_pairs(ActiveSites.from_mask(MASKS[name]), k) == rulebook.num_pairs


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 5), (2, 4, 1), (1, 2, 2), (2, 6, 7)])
def test_full_grid_rulebook_is_arithmetic_and_equals_brute_force(shape: tuple[int, int, int], k: int) -> None:
    batch, height, width = shape
    searched = ActiveSites.from_mask(torch.ones(shape, dtype=torch.bool))
    want = brute_force_table(searched, k)
    for sites in (searched, ActiveSites.full(batch, (height, width))):
        rulebook = build_neighbour_rulebook(sites, k)
        assert rulebook.table.dtype == torch.int32 and torch.equal(rulebook.table, want)
        assert rulebook.num_pairs == int((want < sites.num_sites).sum()) == count_neighbour_pairs(sites, k)


def test_rulebook_is_symmetric() -> None:
    sites = ActiveSites.from_mask(MASKS["half"])
    table = build_neighbour_rulebook(sites, 3).table.long()
    n = sites.num_sites
    for t in range(9):
        hit = table[:, t] < n
        assert torch.equal(table[table[hit, t], 8 - t], torch.nonzero(hit).flatten())


def test_rulebook_makes_nothing_of_the_grid_size() -> None:
    """Two sites on a 100000 x 100000 grid: every tensor built is O(N), nothing grid-sized is cached."""
    coords = torch.tensor([[0, 5, 7], [0, 99_999, 99_998]])
    sites = ActiveSites(coords, (100_000, 100_000), 1)
    rulebook = neighbour_rulebook(sites, 3)
    assert rulebook.table.shape == (2, 9)
    for value in sites._cache.values():
        tensors = value.table if hasattr(value, "table") else value
        assert not torch.is_tensor(tensors) or tensors.numel() <= 2 * 9


def test_full_grid_pairs_are_counted_without_a_rulebook() -> None:
    sites = ActiveSites.full(2, (6, 7))
    assert count_neighbour_pairs(sites, 3) == 2 * (3 * 6 - 2) * (3 * 7 - 2)
    assert sites.peek(("neighbour_rulebook", 3)) is None


@pytest.mark.parametrize("algorithm", ["gather", "taps", "dense"])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("name", list(MASKS))
def test_algorithm_equals_masked_dense_forward_and_backward(algorithm: str, k: int, name: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALGORITHM_ENV_VAR, algorithm)
    g = torch.Generator().manual_seed(k)
    sites = ActiveSites.from_mask(MASKS[name])
    feats = torch.randn(sites.num_sites, 4, generator=g, dtype=torch.float64)
    weight = torch.randn(6, k, k, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(6, generator=g, dtype=torch.float64)
    grad_out = torch.randn(sites.num_sites, 6, generator=g, dtype=torch.float64)
    for got, want in zip(*torch_and_reference_with_grads(sites, feats, weight, bias, grad_out)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["gather", "taps", "dense"])
@pytest.mark.parametrize("name", ["sparse", "full", "rows"])
def test_inference_path_equals_masked_dense(algorithm: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under no_grad (and with nothing requiring grad) the backend skips its autograd node: the
    same result as the masked dense reference."""
    monkeypatch.setenv(ALGORITHM_ENV_VAR, algorithm)
    g = torch.Generator().manual_seed(5)
    sites = ActiveSites.from_mask(MASKS[name])
    feats = torch.randn(sites.num_sites, 4, generator=g, dtype=torch.float64)
    weight = torch.randn(6, 3, 3, 4, generator=g, dtype=torch.float64)
    want = masked_dense_conv(sites, feats, weight, None)
    with torch.no_grad():
        got = subm_conv2d(SparseLevel(sites, feats), weight, backend="torch").feats
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    got = subm_conv2d(SparseLevel(sites, feats), weight, backend="torch").feats  # grad on, none needed
    assert got.grad_fn is None
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_gather_works_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks smaller than N (the default block holds thousands of sites) give the same result."""
    monkeypatch.setenv(ALGORITHM_ENV_VAR, "gather")
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(1, 40, 50, generator=g) < 0.3
    sites = ActiveSites.from_mask(mask)
    feats = torch.randn(sites.num_sites, 8, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 3, 3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    whole = subm_conv2d(SparseLevel(sites, feats), weight, backend="torch").feats
    grads = torch.autograd.grad(whole.sum(), (feats, weight))
    monkeypatch.setattr(torch_backend, "GATHER_BLOCK_BYTES", 1)  # 64 rows per block (N < 64 * MAX_BLOCKS)
    blocked = subm_conv2d(SparseLevel(sites, feats), weight, backend="torch").feats
    torch.testing.assert_close(blocked, whole)
    for a, b in zip(torch.autograd.grad(blocked.sum(), (feats, weight)), grads):
        torch.testing.assert_close(a, b)


def test_automatic_choice_follows_density_and_channels(monkeypatch: pytest.MonkeyPatch, fused_isa) -> None:
    """Without the fused kernels (tests/sparse/test_fused_conv.py has the choice with them)."""
    monkeypatch.delenv(ALGORITHM_ENV_VAR, raising=False)
    fused_isa("off")
    full = ActiveSites.full(1, (8, 8))
    sparse = ActiveSites.from_mask(torch.eye(8, dtype=torch.bool)[None])
    assert choose_algorithm(full, 16, 16) == "dense"
    assert choose_algorithm(sparse, 16, 16) == "gather"
    assert choose_algorithm(sparse, 256, 256) == "taps"
    band = torch.zeros(1, 128, 128, dtype=torch.bool)
    band[:, :, 40:48] = True  # 1,024 sites: a small level, where taps skips the zero pairs
    assert choose_algorithm(ActiveSites.from_mask(band), 64, 64) == "taps"
    assert choose_algorithm(ActiveSites.from_mask(band), 32, 64) == "gather"
    assert choose_algorithm(sparse, 64, 64) == "gather"  # 8 sites: one GEMM beats nine tiny ones
    band[:, :, 40:60] = True  # 2,560 sites
    assert choose_algorithm(ActiveSites.from_mask(band), 64, 64) == "gather"
    monkeypatch.setenv(ALGORITHM_ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match=ALGORITHM_ENV_VAR):
        choose_algorithm(sparse, 16, 16)


def test_upsampling_a_full_grid_gives_the_full_grid_and_its_parents() -> None:
    sites = ActiveSites.full(2, (3, 4))
    children, parents = sites.upsample2x(torch.ones(sites.num_sites, dtype=torch.bool))
    assert children.is_full() and children.spatial_shape == (6, 8)
    assert torch.equal(children.coords, ActiveSites.from_mask(torch.ones(2, 6, 8, dtype=torch.bool)).coords)
    b, y, x = children.coords.unbind(1)
    assert torch.equal(sites.coords[parents], torch.stack((b, y // 2, x // 2), 1))


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("seed", range(4))
def test_children_rulebook_from_the_parents_equals_the_searched_one(k: int, seed: int) -> None:
    """Sites made by upsample2x (two levels deep, batch of 2) get their rulebook from the parent
    level's; it equals the brute-force table of the same sites."""
    g = torch.Generator().manual_seed(seed)
    level = ActiveSites.from_mask(torch.rand(2, 4, 5, generator=g) < 0.6)
    for _ in range(2):
        level, _ = level.upsample2x(torch.rand(level.num_sites, generator=g) < 0.5)
    assert level.peek("parent_link") is not None
    derived = neighbour_rulebook(level, k)
    plain = ActiveSites(level.coords, level.spatial_shape, level.batch_size)
    assert torch.equal(derived.table, brute_force_table(plain, k))
    assert derived.num_pairs == build_neighbour_rulebook(plain, k).num_pairs
