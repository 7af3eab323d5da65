"""The torch backend's ``fused`` algorithm (qgn/sparse/_fused.c) against independent references:
the masked dense conv2d of test_sparse_algorithms.py (forward and backward, float32), the ``gather``
algorithm it replaces, and a NumPy stable sort for its site order. Every instruction set the CPU
has runs: AVX-512 and AVX2 where both exist.
"""
from __future__ import annotations

import platform
import shutil

import numpy as np
import pytest
import torch

from qgn.sparse import ActiveSites
from qgn.sparse.fused_conv import fused_conv_forward, fused_supports, pattern_order
from qgn.sparse.rulebook import build_neighbour_rulebook, neighbour_rulebook
from qgn.sparse.torch_backend import ALGORITHM_ENV_VAR, choose_algorithm, gather_conv_forward, weight_to_taps
from test_sparse_algorithms import MASKS, masked_dense_conv, torch_and_reference_with_grads

CHANNELS = [(16, 16), (32, 32), (48, 48), (64, 64), (3, 16), (100, 32), (64, 16), (16, 64)]


def isas() -> list[str]:
    from qgn.sparse.fused_conv import fused_isa, set_fused_isa

    best = fused_isa()
    found = [best] if best else []
    if best == "avx512" and set_fused_isa("avx2") == "avx2":
        found.append("avx2")
    set_fused_isa("auto")
    return found


ISAS = isas()
needs_kernel = pytest.mark.skipif(not ISAS, reason="the fused kernel is not built, or the CPU has neither AVX-512 nor AVX2")


def band_sites(seed: int, size=(2, 37, 53), keep: float = 0.25) -> ActiveSites:
    """Thin random bands and specks over two images: every neighbour pattern, row ends, borders."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(size, generator=g) < keep
    mask[:, 10:12] = True  # a band two rows high
    mask[1, :, 7] = True  # and a column
    return ActiveSites.from_mask(mask)


def test_the_kernel_is_built_where_it_can_be() -> None:
    """setup.py builds it as an optional extension: on x86-64 Linux with a C compiler and Python's
    headers a failed build would silently leave the slower algorithms, so it must be here."""
    import sysconfig
    from pathlib import Path

    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if platform.system() != "Linux" or platform.machine() != "x86_64" or not shutil.which("cc") or not headers.is_file():
        pytest.skip("the kernel is only required on x86-64 Linux with a C compiler and Python's headers")
    from qgn.sparse import fused_conv

    assert fused_conv._fused is not None, "qgn/sparse/_fused.c was not compiled: run scripts/setup again"
    assert ISAS, "the kernel is built but runs neither AVX-512 nor AVX2 on this x86-64 CPU"


@needs_kernel
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("cin,cout", CHANNELS)
@pytest.mark.parametrize("k", [3, 5])
def test_forward_equals_masked_dense_and_gather(isa: str, cin: int, cout: int, k: int, fused_isa) -> None:
    assert fused_isa(isa) == isa
    if not fused_supports(cin, cout, torch.float32, "cpu"):
        pytest.skip(f"{isa} has no kernel for {cout} output channels")
    g = torch.Generator().manual_seed(cin * 7 + cout + k)
    sites = band_sites(k)
    feats = torch.randn(sites.num_sites, cin, generator=g)
    weight = torch.randn(cout, k, k, cin, generator=g)
    rulebook = neighbour_rulebook(sites, k)
    got = fused_conv_forward(feats, weight_to_taps(weight), rulebook)
    want = masked_dense_conv(sites, feats.double(), weight.double(), None).float()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * cin ** 0.5)
    torch.testing.assert_close(got, gather_conv_forward(feats, weight_to_taps(weight), rulebook.table),
                               rtol=1e-5, atol=1e-5 * cin ** 0.5)


@needs_kernel
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(MASKS))
def test_conv_with_grad_equals_masked_dense(isa: str, name: str, fused_isa, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `subm_conv2d` with the algorithm forced: output, d feats (the kernel again, with the
    mirrored taps), d weight and d bias against autograd through the masked dense conv2d."""
    fused_isa(isa)
    monkeypatch.setenv(ALGORITHM_ENV_VAR, "fused")
    g = torch.Generator().manual_seed(11)
    sites = ActiveSites.from_mask(MASKS[name])
    feats = torch.randn(sites.num_sites, 32, generator=g)
    weight = torch.randn(16, 3, 3, 32, generator=g)
    bias = torch.randn(16, generator=g)
    grad_out = torch.randn(sites.num_sites, 16, generator=g)
    for got, want in zip(*torch_and_reference_with_grads(sites, feats, weight, bias, grad_out)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)


@needs_kernel
@pytest.mark.parametrize("n", [0, 1, 2, 5, 13])
def test_any_number_of_sites(n: int) -> None:
    """Fewer sites than a block, and blocks with a short tail: each site written once, exactly."""
    coords = torch.tensor([[0, 0, x] for x in range(n)], dtype=torch.int64).view(-1, 3)
    sites = ActiveSites(coords, (1, max(n, 1)), 1)
    g = torch.Generator().manual_seed(n)
    feats = torch.randn(n, 32, generator=g)
    taps = torch.randn(9, 32, 32, generator=g)
    rulebook = neighbour_rulebook(sites, 3)
    got = fused_conv_forward(feats, taps, rulebook)
    assert got.shape == (n, 32)
    torch.testing.assert_close(got, gather_conv_forward(feats, taps, rulebook.table), rtol=1e-5, atol=1e-4)


@needs_kernel
@pytest.mark.parametrize("k", [3, 5])
def test_pattern_order_is_a_stable_sort_by_neighbour_pattern(k: int) -> None:
    sites = band_sites(3)
    rulebook = build_neighbour_rulebook(sites, k)
    order = pattern_order(rulebook)
    assert order.dtype == torch.int32 and order is pattern_order(rulebook)  # cached
    table = rulebook.table.numpy()
    if k * k <= 12:
        patterns = ((table < sites.num_sites).astype(np.int64) << np.arange(k * k)).sum(1)
        np.testing.assert_array_equal(order.numpy(), np.argsort(patterns, kind="stable"))
    else:  # too many patterns to count: canonical order
        np.testing.assert_array_equal(order.numpy(), np.arange(sites.num_sites))


@needs_kernel
def test_wrong_calls_raise_instead_of_reading_out_of_bounds() -> None:
    sites = band_sites(1)
    rulebook = neighbour_rulebook(sites, 3)
    feats = torch.randn(sites.num_sites, 16)
    with pytest.raises(ValueError, match="shapes do not match"):
        fused_conv_forward(feats[:-1], torch.randn(9, 16, 16), rulebook)
    with pytest.raises(ValueError, match="shapes do not match"):
        fused_conv_forward(feats, torch.randn(9, 8, 16), rulebook)
    with pytest.raises(ValueError, match="does not run"):
        fused_conv_forward(feats.double(), torch.randn(9, 16, 16, dtype=torch.float64), rulebook)
    with pytest.raises(ValueError, match="does not run"):
        fused_conv_forward(feats, torch.randn(9, 16, 20), rulebook)  # 20 outputs: no kernel
    strided = torch.randn(sites.num_sites, 32)[:, ::2]  # not contiguous: copied, same result
    torch.testing.assert_close(fused_conv_forward(strided, torch.ones(9, 16, 16), rulebook),
                               gather_conv_forward(strided.contiguous(), torch.ones(9, 16, 16), rulebook.table))


@needs_kernel
def test_automatic_choice_takes_the_kernel_where_it_runs(monkeypatch: pytest.MonkeyPatch, fused_isa) -> None:
    monkeypatch.delenv(ALGORITHM_ENV_VAR, raising=False)
    sparse = band_sites(2)
    for channels in (16, 32, 64):
        assert choose_algorithm(sparse, channels, channels) == "fused"
    assert choose_algorithm(sparse, 16, 16, torch.float64) == "gather"  # float32 only
    assert choose_algorithm(sparse, 256, 256) == "taps"  # from 128 channels the GEMMs win
    assert choose_algorithm(ActiveSites.full(1, (8, 8)), 16, 16) == "dense"
    monkeypatch.setenv(ALGORITHM_ENV_VAR, "fused")
    assert choose_algorithm(sparse, 16, 16, torch.float64) == "gather"  # forced, but it cannot run
    fused_isa("off")
    monkeypatch.delenv(ALGORITHM_ENV_VAR)
    assert choose_algorithm(sparse, 16, 16) == "gather"


@needs_kernel
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_threads_split_the_sites_and_change_nothing(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A conv split over threads (each a run of the site order) gives bit-identical results."""
    from qgn.sparse import fused_conv

    sites = band_sites(5)
    g = torch.Generator().manual_seed(threads)
    feats = torch.randn(sites.num_sites, 16, generator=g)
    taps = torch.randn(9, 16, 32, generator=g)
    rulebook = neighbour_rulebook(sites, 3)
    alone = fused_conv_forward(feats, taps, rulebook)
    monkeypatch.setattr(fused_conv, "MACS_PER_THREAD", 1)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        split = fused_conv_forward(feats, taps, rulebook)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(split, alone)


@needs_kernel
def test_a_table_of_another_dtype_is_refused() -> None:
    sites = band_sites(4)
    rulebook = neighbour_rulebook(sites, 3)
    wide = type(rulebook)(3, rulebook.table.long(), rulebook.num_pairs)
    with pytest.raises(ValueError, match="int32 table"):
        fused_conv_forward(torch.randn(sites.num_sites, 16), torch.randn(9, 16, 16), wide)


@needs_kernel
@pytest.mark.parametrize("isa", ISAS)
def test_every_kernel_passes_its_self_check(isa: str, fused_isa) -> None:
    from qgn.sparse.fused_conv import self_check

    fused_isa(isa)
    assert self_check()


@needs_kernel
def test_a_broken_kernel_fails_the_self_check_and_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from qgn.sparse import fused_conv

    def off_by_a_little(feats, taps, table, order):
        out = fused_conv._run_kernel(feats, taps, table, order)
        out[len(out) // 2, 0] += 1e-2 * out.abs().max() + 1e-2  # one wrong value
        return out

    assert not fused_conv.self_check(off_by_a_little)
    monkeypatch.setattr(fused_conv, "_checked", {})
    monkeypatch.setattr(fused_conv, "self_check", lambda run=None: False)
    monkeypatch.delenv(ALGORITHM_ENV_VAR, raising=False)
    with pytest.warns(RuntimeWarning, match="disagree"):
        assert not fused_supports(32, 32, torch.float32, "cpu")
    assert choose_algorithm(band_sites(6), 32, 32) == "gather"


@pytest.mark.parametrize("name", ["_fused", "_geometry"])
def test_a_module_built_from_other_sources_is_not_used(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    import sys
    import types

    from qgn.sparse.extensions import load_extension

    stale = types.ModuleType(f"qgn.sparse.{name}")
    stale.ABI, stale.__file__ = 0, f"/somewhere/{name}.so"
    monkeypatch.setitem(sys.modules, f"qgn.sparse.{name}", stale)
    with pytest.warns(RuntimeWarning, match="other sources"):
        assert load_extension(name, 1, "the test") is None


@needs_kernel
def test_a_check_first_needed_under_shape_only_execution_checks_real_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """`qgn bench --only memory` runs the decoder under ShapeOnlyMode (float values garbage): the
    self-check, first needed there, failed on those values and the whole process - the benchmark's
    later sections included - ran the sparse conv without the kernels, with a warning that the CPU's
    kernels disagree."""
    import warnings

    from qgn.bench.shape_only import ShapeOnlyMode
    from qgn.sparse import fused_conv

    monkeypatch.setattr(fused_conv, "_checked", {})
    monkeypatch.delenv(ALGORITHM_ENV_VAR, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ShapeOnlyMode():
            assert fused_supports(32, 32, torch.float32, "cpu")
    assert fused_conv._checked == {fused_conv.fused_isa(): True}


@needs_kernel
def test_loading_a_model_checks_the_kernels_first(model_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The self-check runs while a model loads, not inside the first level's timed conv."""
    from qgn.model.checkpoint import load_model
    from qgn.sparse import fused_conv

    monkeypatch.setattr(fused_conv, "_checked", {})
    load_model(model_path)
    assert fused_conv._checked == {fused_conv.fused_isa(): True}
