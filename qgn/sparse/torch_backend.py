"""Pure-PyTorch submanifold convolution: four algorithms, chosen per call by shape and density.

All of them read the rulebook of rulebook.py (an (N, k*k) int32 neighbour table built from the
active sites alone) or none at all, and give the result of a masked dense `conv2d`:

* ``gather``  (few channels): gather every site's k*k neighbour rows into an (n, k*k*Cin) block
  (a missing neighbour reads an appended zero row), one GEMM with the (k*k*Cin, Cout) weight.
  Done in blocks of ``GATHER_BLOCK_BYTES`` (at most ``MAX_BLOCKS`` of them) through one reused
  buffer, so the temporary stays in cache and its memory is a small share of the features'. Backward is the same kernel again: the neighbour relation is symmetric, so
  d feats is a gather of d out through the mirrored table times the transposed taps, and
  d weight is the gathered block's transpose times d out. Nothing but feats and weight is kept.
* ``fused``   (float32 on the CPU, 16 … 64 output channels: fused_conv.py): ``gather`` in one C
  kernel compiled with the package, without the block - a few sites' outputs stay in vector
  registers over all their taps, and sites sorted by which neighbours they have skip the missing
  ones together. Backward: d feats is the same kernel with the mirrored taps, d weight ``gather``'s.
  Where it is not built, or the CPU has neither AVX-512 nor AVX2, ``gather`` runs instead.
* ``taps``    (many channels): per kernel offset, gather the pairs' input rows, one GEMM, and
  index_add into the output; it skips the zero rows that ``gather`` multiplies, which pays once
  the GEMMs are large.
* ``dense``   (density past the measured crossover): scatter the sites into a zero channels-last
  (B, H, W, C) grid, oneDNN's `conv2d`, read the sites back. A grid the sites fill is the
  feature matrix itself (canonical order is row-major), so the All path costs one dense conv and
  no copies. The grid is a temporary of this call only.

``choose_algorithm`` holds the crossovers, measured with `qgn bench --only sparse_conv`
(qgn/bench/sparse_conv.py; benchmarks/RESULTS.md): dense once the sites cover
``DENSE_CROSSOVER`` of the grid, else fused where it runs the shape, taps from
``TAPS_MIN_CHANNELS`` channels (from 64 on a level of 512 - 2,048 sites: ``TAPS_SMALL``), else
gather. `QGN_SPARSE_ALGORITHM` = gather | fused | taps | dense forces one (tests, benchmarks;
fused falls back to gather where it cannot run).
"""

from __future__ import annotations

import os
import weakref

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx, once_differentiable

from qgn.sparse.backend_base import SubmConvBackend
from qgn.sparse.derived import caching_allowed, tensor_state
from qgn.sparse.fused_conv import fused_conv_forward, fused_supports
from qgn.sparse.rulebook import NeighbourRulebook, neighbour_rulebook
from qgn.sparse.sites import ActiveSites

ALGORITHMS = ("gather", "fused", "taps", "dense")
ALGORITHM_ENV_VAR = "QGN_SPARSE_ALGORITHM"
DENSE_CROSSOVER = 0.8  # density (sites / grid cells) from which one dense conv2d is faster: measured
# (benchmarks/results/sparse-conv-cpu.txt) near 75 % from 128 channels, above 75 % below 128
TAPS_MIN_CHANNELS = 128  # min(Cin, Cout) from which per-offset GEMMs beat one gathered GEMM
# ... and from 64 channels on a level of 512 - 2,048 sites: on ~1 k sites taps beat gather by ~10 %
# forward and ~20 % forward + backward, tied at 3.3 k and lost by a third at 9.8 k (64 channels,
# thin bands); under ~256 sites (the street decoder's 64-channel level at 240x180) its nine GEMMs'
# fixed costs lost 0.2 ms a call to gather's one
TAPS_SMALL = (64, 512, 2048)  # (min channels, min sites, max sites)
GATHER_BLOCK_BYTES = 1 << 19  # one gathered (rows, k*k*C) block: 512 KiB measured best of 64 KiB …
# 2 MiB with the benchmark's 3-ms warm-up (32 channels at 1 %: 296 µs against 324-447 with 1 MiB;
# equal from 10 % density and in the decoder at 240x180)
MAX_BLOCKS = 64  # … unless that makes more blocks than this (then a block is 1/64 of the sites)


def choose_algorithm(sites: ActiveSites, in_channels: int, out_channels: int,
                     dtype: torch.dtype = torch.float32) -> str:
    """Which algorithm runs a conv of these channels and dtype on `sites` (see the module docstring)."""
    fused = fused_supports(in_channels, out_channels, dtype, sites.device)
    forced = os.environ.get(ALGORITHM_ENV_VAR, "").strip()
    if forced:
        if forced not in ALGORITHMS:
            raise ValueError(f"{ALGORITHM_ENV_VAR}={forced!r}: choose one of {', '.join(ALGORITHMS)}")
        return "gather" if forced == "fused" and not fused else forced
    if sites.density >= DENSE_CROSSOVER:
        return "dense"
    if fused:
        return "fused"
    channels = min(in_channels, out_channels)
    small_level = TAPS_SMALL[1] <= sites.num_sites <= TAPS_SMALL[2]
    if channels >= TAPS_MIN_CHANNELS or (channels >= TAPS_SMALL[0] and small_level):
        return "taps"
    return "gather"


class TorchBackend(SubmConvBackend):
    """Submanifold convolution from standard PyTorch ops; rulebook cached on the sites."""

    name = "torch"

    def prepare_rulebook(self, sites: ActiveSites, kernel_size: int) -> None:
        neighbour_rulebook(sites, kernel_size)

    def subm_conv_kxk(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        algorithm = choose_algorithm(sites, int(feats.shape[1]), int(weight.shape[0]), feats.dtype)
        if algorithm == "dense":
            return dense_subm_conv(feats, weight, sites)
        rulebook = neighbour_rulebook(sites, int(weight.shape[1]))
        if not (torch.is_grad_enabled() and (feats.requires_grad or weight.requires_grad)):
            # inference: the kernels themselves, without an autograd node (measured 30-70 us a call,
            # up to a tenth of a small level's conv)
            with torch.autocast(feats.device.type, enabled=False):  # as in the autograd path
                taps = inference_taps(weight)
                if algorithm == "taps":
                    return taps_conv_forward(feats, taps, rulebook)
                if algorithm == "fused":
                    return fused_conv_forward(feats, taps, rulebook)
                return gather_conv_forward(feats, taps, rulebook.table)
        if algorithm == "taps":
            return _TapsConv.apply(feats, weight, rulebook)
        return _GatherConv.apply(feats, weight, rulebook, algorithm == "fused")


def weight_to_taps(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, k, k, Cin) weight -> (k*k, Cin, Cout) contiguous, tap i*k + j = weight[:, i, j, :]^T."""
    out_channels, kernel_size, _, in_channels = weight.shape
    return weight.permute(1, 2, 3, 0).reshape(kernel_size * kernel_size, in_channels, out_channels).contiguous()


_taps_cache: dict[int, tuple] = {}  # id(weight) -> (weakref, tensor_state, taps): inference_taps


def inference_taps(weight: torch.Tensor) -> torch.Tensor:
    """`weight_to_taps`, remembered for the weight tensor while it lives and is unchanged
    (qgn.sparse.derived): inference runs the same layers level after level, image after image,
    and the copy measured ~40 us a conv."""
    state, key = tensor_state(weight), id(weight)
    entry = _taps_cache.get(key)
    if entry is not None and entry[0]() is weight and entry[1] == state:
        return entry[2]
    taps = weight_to_taps(weight.detach())
    if caching_allowed():
        _taps_cache[key] = (weakref.ref(weight, lambda _ref, cache=_taps_cache: cache.pop(key, None)), state, taps)
    return taps


def taps_to_weight(taps: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Inverse of `weight_to_taps`: (k*k, Cin, Cout) -> (Cout, k, k, Cin) contiguous."""
    _, in_channels, out_channels = taps.shape
    return taps.reshape(kernel_size, kernel_size, in_channels, out_channels).permute(3, 0, 1, 2).contiguous()


# ------------------------------------------------------------------------------------- dense


def dense_subm_conv(feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
    """The conv as one channels-last `conv2d` over the sites' grid; differentiable by autograd.

    feats (N, Cin), weight (Cout, k, k, Cin) -> (N, Cout). Inactive cells hold zeros, outputs are
    read at the sites only, so it equals the sparse algorithms exactly (up to float rounding).
    """
    batch_size, (height, width) = sites.batch_size, sites.spatial_shape
    channels = feats.shape[1]
    if sites.is_full():
        grid = feats.reshape(batch_size, height, width, channels)
    else:
        grid = feats.new_zeros((sites.grid_cells, channels)).index_copy(0, sites.flat_index(), feats)
        grid = grid.view(batch_size, height, width, channels)
    # (Cout, k, k, Cin) permuted to (Cout, Cin, k, k) is a channels-last weight already
    out = F.conv2d(grid.permute(0, 3, 1, 2), weight.permute(0, 3, 1, 2), padding=weight.shape[1] // 2)
    out = out.permute(0, 2, 3, 1).reshape(sites.grid_cells, -1)  # a view for channels-last output
    return out if sites.is_full() else out.index_select(0, sites.flat_index())


# ------------------------------------------------------------------------------------ gather


def _gathered_blocks(feats: torch.Tensor, table: torch.Tensor):
    """Yield (start, rows, block): the k*k neighbour rows of sites start … start+rows-1 gathered into
    one (rows, k*k*Cin) matrix (a missing neighbour reads an appended zero row). One buffer of
    ``GATHER_BLOCK_BYTES`` is reused for every block, so a conv allocates no more whatever N."""
    n, in_channels = feats.shape
    kk = table.shape[1]
    padded = torch.cat((feats, feats.new_zeros((1, in_channels))))
    row_bytes = kk * in_channels * feats.element_size()
    # GATHER_BLOCK_BYTES per block, but at most MAX_BLOCKS blocks: a few ops per block stay cheap
    # next to its GEMM at any N (and under a dispatch mode such as the memory benchmark's)
    step = max(64, GATHER_BLOCK_BYTES // max(1, row_bytes), -(-n // MAX_BLOCKS))
    block = feats.new_empty((min(step, n) * kk, in_channels))
    index = torch.empty(min(step, n) * kk, dtype=torch.int64, device=feats.device)
    for start in range(0, n, step):
        rows = min(step, n - start)
        index_rows = index[: rows * kk]
        index_rows.copy_(table[start:start + rows].reshape(-1))  # int32 table, int64 index: per block
        torch.index_select(padded, 0, index_rows, out=block[: rows * kk])
        yield start, rows, block[: rows * kk].view(rows, kk * in_channels)


def gather_conv_forward(feats: torch.Tensor, taps: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(N, Cin) feats, (k*k, Cin, Cout) taps, (N, k*k) int32 table (N = zero row) -> (N, Cout)."""
    kk, in_channels, out_channels = taps.shape
    weight = taps.reshape(kk * in_channels, out_channels)
    out = feats.new_empty((feats.shape[0], out_channels))
    for start, rows, block in _gathered_blocks(feats, table):
        torch.mm(block, weight, out=out[start:start + rows])
    return out


def gather_conv_weight_grad(feats: torch.Tensor, grad_out: torch.Tensor, table: torch.Tensor, kk: int) -> torch.Tensor:
    """d weight as (k*k, Cin, Cout): sum over sites of gathered neighbour rows ⊗ d out."""
    in_channels = feats.shape[1]
    grad = feats.new_zeros((kk * in_channels, grad_out.shape[1]))
    for start, rows, block in _gathered_blocks(feats, table):
        grad.addmm_(block.t(), grad_out[start:start + rows])
    return grad.view(kk, in_channels, -1)


def _gather_or_fused(feats: torch.Tensor, taps: torch.Tensor, rulebook: NeighbourRulebook, fused: bool) -> torch.Tensor:
    """`fused_conv_forward` if asked for and it runs these shapes, else `gather_conv_forward`."""
    if fused and fused_supports(taps.shape[1], taps.shape[2], feats.dtype, feats.device):
        return fused_conv_forward(feats, taps, rulebook)
    return gather_conv_forward(feats, taps, rulebook.table)


class _GatherConv(torch.autograd.Function):
    """`gather_conv_forward` (or `fused_conv_forward`, the same sums) with weight in (Cout, k, k, Cin)
    layout; see the module docstring."""

    @staticmethod
    def forward(ctx: FunctionCtx, feats: torch.Tensor, weight: torch.Tensor, rulebook: NeighbourRulebook,
                fused: bool = False) -> torch.Tensor:
        ctx.save_for_backward(feats, weight)
        ctx.rulebook, ctx.fused = rulebook, fused  # type: ignore[attr-defined]
        with torch.autocast(feats.device.type, enabled=False):  # inputs already share one dtype
            return _gather_or_fused(feats, weight_to_taps(weight), rulebook, fused)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        feats, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        rulebook: NeighbourRulebook = ctx.rulebook  # type: ignore[attr-defined]
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]  # type: ignore[attr-defined]
        grad_out = grad_out.contiguous()
        kk = rulebook.kernel_size * rulebook.kernel_size
        grad_feats = grad_weight = None
        if need_feats:
            # site m feeds site n through tap t  <=>  n is m's neighbour through tap kk-1-t
            mirrored = weight_to_taps(weight).flip(0).transpose(1, 2).contiguous()  # (kk, Cout, Cin)
            grad_feats = _gather_or_fused(grad_out, mirrored, rulebook, ctx.fused)  # type: ignore[attr-defined]
        if need_weight:
            grad_taps = gather_conv_weight_grad(feats, grad_out, rulebook.table, kk)
            grad_weight = taps_to_weight(grad_taps, rulebook.kernel_size)
        return grad_feats, grad_weight, None, None


# -------------------------------------------------------------------------------------- taps


def taps_conv_forward(feats: torch.Tensor, taps: torch.Tensor, rulebook: NeighbourRulebook) -> torch.Tensor:
    """(N, Cin) features, (k*k, Cin, Cout) taps -> (N, Cout), one GEMM per kernel offset."""
    centre = rulebook.centre_offset
    out = feats @ taps[centre]
    for tap in range(taps.shape[0]):
        in_index, out_index = rulebook.tap_pairs(tap)
        if tap == centre or in_index.numel() == 0:
            continue
        out.index_add_(0, out_index, feats.index_select(0, in_index) @ taps[tap])
    return out


class _TapsConv(torch.autograd.Function):
    """`taps_conv_forward` with weight in (Cout, k, k, Cin) layout; keeps only feats and weight."""

    @staticmethod
    def forward(ctx: FunctionCtx, feats: torch.Tensor, weight: torch.Tensor, rulebook: NeighbourRulebook) -> torch.Tensor:
        ctx.save_for_backward(feats, weight)
        ctx.rulebook = rulebook  # type: ignore[attr-defined]
        with torch.autocast(feats.device.type, enabled=False):
            return taps_conv_forward(feats, weight_to_taps(weight), rulebook)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        feats, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        taps = weight_to_taps(weight)
        rulebook: NeighbourRulebook = ctx.rulebook  # type: ignore[attr-defined]
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]  # type: ignore[attr-defined]
        grad_out = grad_out.contiguous()
        centre = rulebook.centre_offset
        grad_feats = grad_out @ taps[centre].t() if need_feats else None
        grad_taps = torch.zeros_like(taps) if need_weight else None
        if grad_taps is not None:
            grad_taps[centre] = feats.t() @ grad_out
        for tap in range(taps.shape[0]):
            in_index, out_index = rulebook.tap_pairs(tap)
            if tap == centre or in_index.numel() == 0:
                continue
            grad_at_out = grad_out.index_select(0, out_index)  # (P, Cout)
            if grad_feats is not None:
                grad_feats.index_add_(0, in_index, grad_at_out @ taps[tap].t())
            if grad_taps is not None:
                grad_taps[tap] = feats.index_select(0, in_index).t() @ grad_at_out
        grad_weight = taps_to_weight(grad_taps, rulebook.kernel_size) if grad_taps is not None else None
        return grad_feats, grad_weight, None
