"""Submanifold convolutions of every backend against a masked dense conv2d, forward and backward.

Reference: scatter the site features into a zero (B, C, H, W) tensor, run
`torch.nn.functional.conv2d` with weight (out, kh, kw, in) permuted to (out, in, kh, kw) and
padding k // 2, read the result at the active sites. Gradients of feats, weight and bias come
from autograd through that dense path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qgn.sparse import (
    ActiveSites,
    SparseBatchNorm,
    SparseLevel,
    SparseLinear,
    SparseReLU,
    SubMConv2d,
    get_backend,
    subm_conv2d,
)

HAS_SPCONV = importlib.util.find_spec("spconv") is not None
BACKENDS = ["torch", pytest.param("spconv", marks=pytest.mark.skipif(not HAS_SPCONV, reason="spconv not installed"))]
RTOL = ATOL = 1e-5

ConvFunction = Callable[[ActiveSites, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def masks_of_every_kind() -> dict[str, torch.Tensor]:
    """(2, 6, 7) bool masks: empty, one site, full, random, only the image border, a corner only."""
    generator = torch.Generator().manual_seed(0)
    one = torch.zeros(2, 6, 7, dtype=torch.bool)
    one[1, 2, 3] = True
    border = torch.ones(2, 6, 7, dtype=torch.bool)
    border[:, 1:-1, 1:-1] = False
    corner = torch.zeros(2, 6, 7, dtype=torch.bool)
    corner[0, -2:, -2:] = True
    return {
        "empty": torch.zeros(2, 6, 7, dtype=torch.bool),
        "one_site": one,
        "full": torch.ones(2, 6, 7, dtype=torch.bool),
        "sparse": torch.rand(2, 6, 7, generator=generator) < 0.15,
        "half": torch.rand(2, 6, 7, generator=generator) < 0.5,
        "border": border,
        "corner": corner,
    }


MASKS = masks_of_every_kind()


def dense_reference(
    sites: ActiveSites, feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """(N, Cout) output of a masked dense conv2d read at the sites; differentiable."""
    height, width = sites.spatial_shape
    b, y, x = sites.coords.unbind(1)
    dense = torch.zeros(sites.batch_size, height, width, feats.shape[1], dtype=feats.dtype)
    dense = dense.index_put((b, y, x), feats)  # inactive inputs stay zero
    out = torch.nn.functional.conv2d(
        dense.permute(0, 3, 1, 2), weight.permute(0, 3, 1, 2), bias, padding=weight.shape[1] // 2
    )
    return out.permute(0, 2, 3, 1)[b, y, x]


def run_with_grads(
    conv: ConvFunction,
    sites: ActiveSites,
    feats: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    grad_out: torch.Tensor,
) -> list[torch.Tensor]:
    """[out, d feats, d weight, d bias] of `conv(sites, feats, weight, bias)` for upstream `grad_out`."""
    feats, weight, bias = (t.clone().requires_grad_(True) for t in (feats, weight, bias))
    out = conv(sites, feats, weight, bias)
    out.backward(grad_out)
    grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in (feats, weight, bias)]
    return [out.detach(), *grads]


def assert_close(got: torch.Tensor, want: torch.Tensor, label: str = "") -> None:
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL, msg=lambda details: f"{label}: {details}")


def sparse_conv(backend: str) -> ConvFunction:
    def conv(sites: ActiveSites, feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return subm_conv2d(SparseLevel(sites, feats), weight, bias, backend=backend).feats

    return conv


def random_problem(
    mask: torch.Tensor, kernel_size: int, seed: int, in_channels: int = 3, out_channels: int = 5
) -> tuple[ActiveSites, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sites = ActiveSites.from_mask(mask)
    feats = torch.randn(sites.num_sites, in_channels, generator=generator)
    weight = torch.randn(out_channels, kernel_size, kernel_size, in_channels, generator=generator)
    bias = torch.randn(out_channels, generator=generator)
    grad_out = torch.randn(sites.num_sites, out_channels, generator=generator)
    return sites, feats, weight, bias, grad_out


# ----------------------------------------------------------------------------- vs dense conv2d


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_backend_equals_masked_dense_conv(backend: str, kernel_size: int, mask_name: str) -> None:
    sites, feats, weight, bias, grad_out = random_problem(MASKS[mask_name], kernel_size, seed=kernel_size)
    got = run_with_grads(sparse_conv(backend), sites, feats, weight, bias, grad_out)
    want = run_with_grads(dense_reference, sites, feats, weight, bias, grad_out)
    for label, g, w in zip(["output", "d feats", "d weight", "d bias"], got, want, strict=True):
        assert_close(g, w, label)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_accepts_a_non_contiguous_weight(backend: str) -> None:
    sites, feats, weight, _, _ = random_problem(MASKS["half"], 3, seed=11)
    strided = weight.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)  # same values, other strides
    assert not strided.is_contiguous()
    got = subm_conv2d(SparseLevel(sites, feats), strided, backend=backend).feats
    assert_close(got, dense_reference(sites, feats, weight, None))


@settings(max_examples=15, deadline=None)
@given(
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_torch_backend_on_random_grids(height: int, width: int, density: float, seed: int) -> None:
    mask = torch.rand(2, height, width, generator=torch.Generator().manual_seed(seed)) < density
    sites, feats, weight, bias, grad_out = random_problem(mask, 3, seed, in_channels=2, out_channels=3)
    got = run_with_grads(sparse_conv("torch"), sites, feats, weight, bias, grad_out)
    want = run_with_grads(dense_reference, sites, feats, weight, bias, grad_out)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)


@pytest.mark.skipif(not HAS_SPCONV, reason="spconv not installed")
@pytest.mark.parametrize("seed", [0, 1])
def test_backends_equal_each_other(seed: int) -> None:
    mask = torch.rand(2, 16, 20, generator=torch.Generator().manual_seed(seed)) < 0.3
    sites, feats, weight, bias, grad_out = random_problem(mask, 3, seed, in_channels=8, out_channels=16)
    from_torch = run_with_grads(sparse_conv("torch"), sites, feats, weight, bias, grad_out)
    from_spconv = run_with_grads(sparse_conv("spconv"), sites, feats, weight, bias, grad_out)
    for a, b in zip(from_torch, from_spconv, strict=True):
        assert_close(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_runs_under_inference_mode(backend: str) -> None:
    sites, feats, weight, bias, _ = random_problem(MASKS["half"], 3, seed=13)
    with torch.inference_mode():
        got = subm_conv2d(SparseLevel(ActiveSites(sites.coords.clone(), (6, 7), 2), feats), weight, bias, backend)
    assert_close(got.feats, dense_reference(sites, feats, weight, bias))


def test_torch_backend_under_cpu_autocast_computes_in_bfloat16() -> None:
    sites, feats, weight, _, grad_out = random_problem(MASKS["half"], 3, seed=12)
    feats.requires_grad_(True)
    weight.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = subm_conv2d(SparseLevel(sites, feats), weight, backend="torch").feats
    out.backward(grad_out.to(out.dtype))
    assert out.dtype == torch.bfloat16
    assert feats.grad is not None and feats.grad.dtype == torch.float32
    assert weight.grad is not None and weight.grad.dtype == torch.float32
    want = dense_reference(sites, feats.detach(), weight.detach(), None)
    torch.testing.assert_close(out.float(), want, rtol=0.05, atol=0.1)


# ------------------------------------------------------------------------------ rulebook reuse


def test_torch_backend_builds_the_rulebook_once_per_level(monkeypatch: pytest.MonkeyPatch) -> None:
    from qgn.sparse import rulebook

    calls: list[int] = []
    original = rulebook.build_neighbour_rulebook

    def counting(sites: ActiveSites, kernel_size: int) -> rulebook.NeighbourRulebook:
        calls.append(kernel_size)
        return original(sites, kernel_size)

    monkeypatch.setattr(rulebook, "build_neighbour_rulebook", counting)
    level = SparseLevel.from_dense_mask(torch.randn(2, 4, 6, 7), MASKS["half"])
    first, second = SubMConv2d(4, 4, backend="torch"), SubMConv2d(4, 4, backend="torch")
    out = second(first(level).replace_feats(torch.relu(first(level).feats)))
    level.num_neighbour_pairs(3)
    assert calls == [3]
    assert out.sites is level.sites


@pytest.mark.skipif(not HAS_SPCONV, reason="spconv not installed")
def test_spconv_backend_builds_the_rulebook_once_per_level(monkeypatch: pytest.MonkeyPatch) -> None:
    get_backend("spconv")  # imports spconv
    import spconv.pytorch.ops as ops

    calls: list[int] = []
    original = ops.get_indice_pairs

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(ops, "get_indice_pairs", counting)
    level = SparseLevel.from_dense_mask(torch.randn(2, 4, 6, 7), MASKS["half"])
    conv = SubMConv2d(4, 4, backend="spconv")
    conv(conv(level))
    assert len(calls) == 1


# --------------------------------------------------------------------------------------- modules


@pytest.mark.parametrize("mask_name", ["empty", "one_site", "half"])
def test_module_stack_runs_forward_and_backward(mask_name: str) -> None:
    level = SparseLevel.from_dense_mask(torch.randn(2, 4, 6, 7), MASKS[mask_name])
    layers = torch.nn.Sequential(
        SubMConv2d(4, 8, 3, backend="torch"), SparseBatchNorm(8), SparseReLU(), SparseLinear(8, 2)
    )
    layers.train()
    out = layers(level)
    assert out.feats.shape == (level.num_sites, 2)
    assert out.sites is level.sites
    out.feats.sum().backward()
    batch_norm = layers[1]
    assert isinstance(batch_norm, SparseBatchNorm) and batch_norm.running_mean is not None
    assert torch.isfinite(batch_norm.running_mean).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layers.parameters())


def test_subm_conv2d_module_matches_the_reference_with_its_own_parameters() -> None:
    level = SparseLevel.from_dense_mask(torch.randn(2, 3, 6, 7), MASKS["border"])
    conv = SubMConv2d(3, 4, 3, backend="torch")
    assert conv.bias is not None
    want = dense_reference(level.sites, level.feats, conv.weight.detach(), conv.bias.detach())
    assert_close(conv(level).feats.detach(), want)
    assert conv.weight.shape == (4, 3, 3, 3)


def test_sparse_linear_is_a_per_site_matmul() -> None:
    level = SparseLevel.from_dense_mask(torch.randn(2, 3, 6, 7), MASKS["half"])
    linear = SparseLinear(3, 5)
    want = level.feats @ linear.weight.detach().t() + linear.bias.detach()
    torch.testing.assert_close(linear(level).feats.detach(), want)
    assert linear.macs(level) == level.num_sites * 15


def test_sparse_batchnorm_normalises_over_all_sites() -> None:
    level = SparseLevel.from_dense_mask(torch.randn(2, 3, 6, 7) * 4 + 2, MASKS["full"])
    out = SparseBatchNorm(3).train()(level).feats.detach()
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_wrong_weight_shapes_are_rejected() -> None:
    level = SparseLevel.from_dense_mask(torch.randn(2, 3, 6, 7), MASKS["half"])
    with pytest.raises(ValueError):
        subm_conv2d(level, torch.zeros(4, 3, 3, 2), backend="torch")  # Cin mismatch
    with pytest.raises(ValueError):
        subm_conv2d(level, torch.zeros(4, 2, 2, 3), backend="torch")  # even kernel
    with pytest.raises(ValueError):
        SubMConv2d(3, 4, kernel_size=4)
