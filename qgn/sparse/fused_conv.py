"""The ``fused`` algorithm of the torch backend: one C kernel gathers and multiplies in registers.

``gather`` (torch_backend.py) writes every site's k*k neighbour rows into a block and runs one
GEMM over it: the block goes through memory, and a missing neighbour is a zero row the GEMM
multiplies anyway (about 40 % of the multiply-adds on a thin band of a quadtree level). The kernel
in ``_fused.c`` keeps a few sites' outputs in vector registers over all their taps instead, reads
each neighbour row where it lies, and takes the sites in `pattern_order` - sorted by which
neighbours they have - so the sites it runs together mostly skip the same missing taps.

It is compiled with the package (setup.py; an optional extension: without a C compiler the
install goes on and the backend runs ``gather``) for AVX-512 and AVX2 + FMA, chosen at import by
the CPU; float32 on the CPU, Cout in `fused_isa`'s list (16 … 64), Cin up to 1024. A big conv
runs on torch's intra-op thread count (`torch.get_num_threads()`), split by sites.
`QGN_FUSED_ISA` = avx2 | off restricts it (tests, benchmarks).

A kernel is trusted only after it checks itself: the first time an instruction set's kernels would
run in a process, `self_check` compares each channel count's kernel with a plain gather-and-matmul
on a small level (~13 ms, once; `load_model` runs it); a kernel that disagrees - a compiler's or a
CPU's fault - is not used, with a warning, and the backend runs ``gather``. A module built from
other sources (``ABI`` differs: an editable install not rebuilt after an update) is not used either.
The check runs outside any ``TorchDispatchMode`` in force when it is first needed: a mode that
skips the arithmetic (`qgn.bench.shape_only`, `qgn bench --only memory`) would fail it with garbage
values, and every later conv of the process would run without the kernels.
"""
from __future__ import annotations

import warnings

import torch
from torch.utils._python_dispatch import _disable_current_modes

from qgn.sparse.extensions import load_extension
from qgn.sparse.rulebook import NeighbourRulebook

KERNEL_ABI = 1  # _fused.c's ABI: raised with every change of the contract between the two files
ISA_ENV_VAR = "QGN_FUSED_ISA"
CHECKED_CHANNELS = (16, 24, 32, 48, 64)  # every Cout a kernel exists for (fused_supports tells which)


_fused = load_extension("_fused", KERNEL_ABI, "the sparse conv")
_checked: dict[str, bool] = {}  # instruction set -> its kernels passed `self_check`
MACS_PER_THREAD = 8_000_000  # a conv runs on up to torch.get_num_threads() threads, each given at
# least this many multiply-adds (N x k*k x Cin x Cout): starting and joining one costs ~20-40 µs


def fused_isa() -> str:
    """The instruction set the kernels run with: "avx512", "avx2", or "" (none: not built, or the
    CPU has neither)."""
    return _fused.isa() if _fused is not None else ""


def set_fused_isa(wanted: str) -> str:
    """Restrict the kernels: "avx2", "off", or "auto" / "avx512" (the best the CPU has). Returns
    the one now in use. For tests and benchmarks; `QGN_FUSED_ISA` sets it at import."""
    if wanted not in ("auto", "avx512", "avx2", "off"):
        raise ValueError(f"{ISA_ENV_VAR}: choose auto, avx512, avx2 or off, not {wanted!r}")
    return _fused.isa("auto" if wanted == "avx512" else wanted) if _fused is not None else ""


def fused_supports(in_channels: int, out_channels: int, dtype: torch.dtype, device: torch.device | str) -> bool:
    """True if the kernel runs a conv of these channels on tensors of this dtype and device (and
    the kernels of the instruction set in use passed `self_check`)."""
    if _fused is None or dtype != torch.float32 or torch.device(device).type != "cpu":
        return False
    if not _fused.supports(int(in_channels), int(out_channels)):
        return False
    isa = _fused.isa()
    if isa not in _checked:
        with _disable_current_modes():  # real arithmetic: under a mode that fakes it (qgn.bench.shape_only)
            _checked[isa] = self_check(_run_kernel)  # the check failed, and the process ran without the kernels
        if not _checked[isa]:
            warnings.warn(f"the fused sparse-conv kernels ({isa}) disagree with a plain gather-and-matmul on this "
                          "machine: the sparse conv runs without them", RuntimeWarning, stacklevel=2)
    return _checked[isa]


def check_fused_kernels() -> bool:
    """Run `self_check` now for the instruction set in use (once a process; otherwise the first
    conv that would use the kernels runs it, ~13 ms counted in that level's time). True if the
    kernels will run float32 convs on the CPU. Model loading calls it."""
    return fused_supports(16, 16, torch.float32, "cpu")


def _run_kernel(feats: torch.Tensor, taps: torch.Tensor, table: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """The kernel on contiguous float32 feats (N, Cin), taps (kk, Cin, Cout), int32 table (N, kk) and
    order (N,): no checks (callers have made these)."""
    n, in_channels = feats.shape
    kk, _, out_channels = taps.shape
    out = feats.new_empty((n, out_channels))
    threads = max(1, min(torch.get_num_threads(), n * kk * in_channels * out_channels // MACS_PER_THREAD))
    if n:
        _fused.conv(feats.data_ptr(), n, in_channels, out_channels, taps.data_ptr(), table.data_ptr(),
                    order.data_ptr(), kk, out.data_ptr(), threads)
    return out


def self_check(run=_run_kernel) -> bool:
    """Each kernel of the instruction set in use (`CHECKED_CHANNELS`, Cin 3 and Cin = Cout) against
    gather-and-matmul in float64 on a small level (two images, bands, specks and borders): True if
    all agree to float32 rounding. ``run`` is the kernel runner (tests pass a broken one)."""
    from qgn.sparse.rulebook import build_neighbour_rulebook
    from qgn.sparse.sites import ActiveSites

    g = torch.Generator().manual_seed(0)
    mask = torch.rand((2, 13, 17), generator=g) < 0.3
    mask[:, 5:7] = True
    sites = ActiveSites.from_mask(mask)
    rulebook = build_neighbour_rulebook(sites, 3)
    table, n = rulebook.table, sites.num_sites
    order = pattern_order(rulebook)
    for out_channels in CHECKED_CHANNELS:
        for in_channels in (3, out_channels):
            if not _fused.supports(in_channels, out_channels):
                continue
            feats = torch.randn(n, in_channels, generator=g)
            taps = torch.randn(9, in_channels, out_channels, generator=g)
            padded = torch.cat((feats, feats.new_zeros((1, in_channels)))).double()
            want = sum(padded[table[:, t].long()] @ taps[t].double() for t in range(9))
            got = run(feats, taps, table, order).double()
            if not bool(((got - want).abs() <= 1e-4 * want.abs().max() + 1e-4).all()):
                return False
    return True


def pattern_order(rulebook: NeighbourRulebook) -> torch.Tensor:
    """(N,) int32: the sites stably sorted by their pattern of present neighbours (a counting sort
    over the 2**(k*k) patterns, O(N)); cached on the rulebook, as its tap pairs are."""
    def build() -> torch.Tensor:
        table = rulebook.table
        if not table.is_contiguous() or table.dtype != torch.int32 or table.device.type != "cpu":
            raise ValueError("pattern_order needs a contiguous int32 CPU table")
        n, kk = table.shape
        order = torch.empty(n, dtype=torch.int32)
        if kk > 12:  # a 5x5 kernel: 2**25 patterns are too many to count; rows in canonical order
            return torch.arange(n, dtype=torch.int32)
        _fused.pattern_order(table.data_ptr(), n, kk, order.data_ptr())
        return order

    return rulebook.cached("pattern_order", build)


def fused_conv_forward(feats: torch.Tensor, taps: torch.Tensor, rulebook: NeighbourRulebook) -> torch.Tensor:
    """(N, Cin) feats, (k*k, Cin, Cout) taps -> (N, Cout), as `gather_conv_forward` computes it.

    The caller checks `fused_supports` first; this checks every shape, dtype and layout the kernel
    reads through raw pointers, so a wrong call raises instead of reading out of bounds."""
    table = rulebook.table
    n, in_channels = feats.shape
    kk, taps_in, out_channels = taps.shape
    if not fused_supports(in_channels, out_channels, feats.dtype, feats.device):
        raise ValueError(f"the fused kernel does not run {in_channels} -> {out_channels} channels of {feats.dtype} "
                         f"on {feats.device} ({fused_isa() or 'not built'})")
    if (taps_in, tuple(table.shape)) != (in_channels, (n, kk)):
        raise ValueError(f"shapes do not match: feats {tuple(feats.shape)}, taps {tuple(taps.shape)}, "
                         f"table {tuple(table.shape)}")
    if (taps.dtype, taps.device) != (feats.dtype, feats.device) or table.dtype != torch.int32 \
            or table.device != feats.device or not table.is_contiguous():
        raise ValueError(f"the fused kernel needs taps of feats' dtype and device ({taps.dtype} on {taps.device}) "
                         f"and a contiguous int32 table beside them ({table.dtype} on {table.device})")
    return _run_kernel(feats.contiguous(), taps.contiguous(), table, pattern_order(rulebook))
