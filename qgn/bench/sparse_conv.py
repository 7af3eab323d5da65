"""One 3x3 submanifold convolution against the best dense choice, at the decoder's real shapes.

For every channel count C (C -> C, 16 … 512: the bundled decoders' finest levels have 16, a
Table-7 decoder's root 512) and density (1 … 30 % of the grid, plus the dense end for the
crossover), on a grid whose size falls with C as the decoder's levels do (H*W*C^2 held near
256*512*64^2, at least 32*64): sites are bands along the boundaries of a random blob label map
(what a quadtree level looks like), float32, inference (no grad) unless ``backward``.

Candidates, timed round-robin in the same run (qgn.bench.timing), medians; each timed run right
after untimed runs of the same candidate that took at least ``WARM_MS`` (one run for a longer
candidate: dense), as a decoder's convs run back to back on a level's features, and the
candidates in a new (seeded) random order every round. In a fixed order the candidate after the
rulebook build always ran on what that build left behind: one gather kernel measured 6.2 GMAC/s as
``auto`` (after the rulebook) and 9.3 as ``gather`` (after ``auto``) in one run (16 channels, 1 %),
an artefact of the protocol, not of the code. And one warm run was not enough: after any 15 ms of
other work (the dense candidate, or a pure-Python busy loop) a sparse conv of 0.3-0.8 ms measured
~30 % slower on its next run than in a loop of its own, and ~3 ms of its own runs brought it back
(32 channels, 1 %: 448 µs after dense with one warm run, 322 with 3 ms, 336 alone) - the dense
candidate's place in the round, not the code.
  auto          the torch backend as the decoder runs it (algorithm chosen by channels and density)
  gather, taps  the torch backend's sparse algorithms forced (torch_backend.py)
  fused         its C kernel forced (fused_conv.py), where built and the shape has one (16 … 64
                channels); the instruction set it ran is in every row (``fused_isa``)
  spconv        spconv's CPU path (Native), when asked for and installed
  dense         `conv2d` over the whole grid, channels-last (oneDNN's fastest CPU layout), the
                reference: the best dense choice

Throughput: GMAC/s = MACs / median time, where a sparse conv's MACs are its neighbour pairs x
Cin x Cout (the work it must do) and dense conv2d's are H x W x 9 x Cin x Cout (the work it
does). ``of_dense`` = sparse GMAC/s / dense GMAC/s (the issue's ">= 35 %" figure);
``time_vs_dense`` = sparse time / dense time (< 1: the sparse conv finishes first). The rulebook
(built once per level and shared by all its convolutions) is timed apart, as ``rulebook_ms``,
with the fused kernel's site order (`pattern_order`, also once per level) where that kernel runs.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator

import torch

from qgn.bench.rows import BenchRow
from qgn.bench.timing import interleaved_median_ms
from qgn.sparse import ActiveSites, SubmConvBackend, get_backend, neighbour_rulebook
from qgn.sparse.fused_conv import fused_isa, fused_supports, pattern_order

CHANNELS = (16, 32, 64, 128, 256, 512)
DENSITIES = (0.01, 0.03, 0.1, 0.3, 0.5, 0.75)
REFERENCE_CELLS = 256 * 512 * 32 * 32  # H*W*C^2 of every shape
QUICK = dict(channels=(16, 64), densities=(0.03, 0.3), repeats=3)


WARM_MS = 3.0  # untimed runs of a candidate before each timed one: at least this long (see above)
MIN_SITES = 1024  # a sparse level's own size: its grid grows (up to 16x) until it holds this many


def grid_for(channels: int, density: float = 1.0) -> tuple[int, int]:
    """(H, W), W = 2H, with H*W*C^2 close to REFERENCE_CELLS (at least 32 x 64), enlarged up to
    16x so that ``density`` of it holds MIN_SITES sites (a 1 % level of a few hundred sites would
    time Python's call overhead, not the convolution)."""
    cells = max(REFERENCE_CELLS / channels ** 2, 2048)
    cells = min(max(cells, MIN_SITES / max(density, 1e-9)), 16 * cells)
    height = max(32, int(round(math.sqrt(cells / 2) / 8)) * 8)
    return height, 2 * height


def boundary_band_mask(height: int, width: int, density: float, seed: int = 0) -> torch.Tensor:
    """(1, H, W) bool, about ``density`` of the cells: bands along the boundaries of random blobs
    (2x2 blocks, as the children of a coarser level come), widened or thinned to the density."""
    generator = torch.Generator().manual_seed(seed)
    h2, w2 = max(1, height // 2), max(1, width // 2)
    cell = max(4, min(h2, w2) // 4)
    noise = torch.rand(1, 6, h2 // cell + 2, w2 // cell + 2, generator=generator)
    labels = torch.nn.functional.interpolate(noise, size=(h2, w2), mode="bicubic", align_corners=False).argmax(1)
    edge = torch.zeros(1, h2, w2, dtype=torch.bool)
    edge[:, :, 1:] |= labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, 1:, :] |= labels[:, 1:, :] != labels[:, :-1, :]
    band = edge
    while band.float().mean() < density and not band.all():
        band = torch.nn.functional.max_pool2d(band[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
    if band.float().mean() > density:  # thin out whole stretches of the band to hit the density
        keep = torch.rand(1, h2 // 4 + 1, w2 // 4 + 1, generator=generator)
        keep = keep.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, :h2, :w2]
        threshold = torch.quantile(keep[band], 1 - density / max(band.float().mean().item(), 1e-9)).item()
        band = band & (keep >= threshold)
    mask = band.repeat_interleave(2, 1).repeat_interleave(2, 2)
    out = torch.zeros(1, height, width, dtype=torch.bool)
    out[:, : mask.shape[1], : mask.shape[2]] = mask
    return out


@contextlib.contextmanager
def forced_algorithm(name: str | None) -> Iterator[None]:
    """Force the torch backend's algorithm (None: its automatic choice) for the block."""
    from qgn.sparse.torch_backend import ALGORITHM_ENV_VAR

    old = os.environ.get(ALGORITHM_ENV_VAR)
    if name is None:
        os.environ.pop(ALGORITHM_ENV_VAR, None)
    else:
        os.environ[ALGORITHM_ENV_VAR] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ALGORITHM_ENV_VAR, None)
        else:
            os.environ[ALGORITHM_ENV_VAR] = old


def _sparse_step(backend: SubmConvBackend, algorithm: str | None, sites, feats, weight, grad_out) -> Callable[[], None]:
    def run() -> None:
        with forced_algorithm(algorithm):
            if grad_out is None:
                with torch.no_grad():
                    backend.subm_conv(feats, weight, sites)
            else:
                feats.grad = weight.grad = None
                backend.subm_conv(feats, weight, sites).backward(grad_out)
    return run


def _dense_step(dense: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor | None) -> Callable[[], None]:
    def run() -> None:
        if grad_out is None:
            with torch.no_grad():
                torch.nn.functional.conv2d(dense, weight, padding=1)
        else:
            dense.grad = weight.grad = None
            torch.nn.functional.conv2d(dense, weight, padding=1).backward(grad_out)
    return run


def shape_rows(channels: int, density: float, repeats: int, spconv: bool = False, backward: bool = False,
               device: torch.device = torch.device("cpu")) -> list[BenchRow]:
    """Rows of every candidate at one (channels, density); see the module docstring."""
    height, width = grid_for(channels, density)
    sites = ActiveSites.from_mask(boundary_band_mask(height, width, density).to(device))
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(sites.num_sites, channels, generator=g).to(device).requires_grad_(backward)
    weight = (torch.randn(channels, 3, 3, channels, generator=g) / (3 * channels ** 0.5)).to(device)
    weight.requires_grad_(backward)
    grad_out = torch.randn(sites.num_sites, channels, generator=g).to(device) if backward else None
    pairs = neighbour_rulebook(sites, 3).num_pairs
    torch_backend = get_backend("torch")
    steps: dict[str, Callable[[], None]] = {
        "auto": _sparse_step(torch_backend, None, sites, feats, weight, grad_out),
        "gather": _sparse_step(torch_backend, "gather", sites, feats, weight, grad_out),
        "taps": _sparse_step(torch_backend, "taps", sites, feats, weight, grad_out),
    }
    fused = fused_supports(channels, channels, feats.dtype, device)
    if fused:
        steps["fused"] = _sparse_step(torch_backend, "fused", sites, feats, weight, grad_out)
    if spconv:
        steps["spconv"] = _sparse_step(get_backend("spconv"), None, sites, feats, weight, grad_out)
    dense = torch.randn(1, channels, height, width, generator=g).to(device).to(memory_format=torch.channels_last)
    dense.requires_grad_(backward)
    dense_weight = weight.detach().permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    dense_weight.requires_grad_(backward)
    dense_grad = torch.randn(1, channels, height, width, generator=g).to(device).to(memory_format=torch.channels_last) \
        if backward else None
    steps["dense"] = _dense_step(dense, dense_weight, dense_grad)

    def rulebook() -> None:
        built = neighbour_rulebook(ActiveSites(sites.coords, sites.spatial_shape, 1), 3)
        if fused:
            pattern_order(built)

    steps["rulebook"] = rulebook
    with forced_algorithm(None):
        from qgn.sparse.torch_backend import choose_algorithm

        auto_choice = choose_algorithm(sites, channels, channels)
    times = interleaved_median_ms(steps, warmup=1, repeats=repeats, device=device, clock="cpu", warm_each=True,
                                 shuffle_seed=channels, warm_ms=WARM_MS)
    sparse_macs = pairs * channels * channels
    dense_macs = height * width * 9 * channels * channels
    dense_rate = dense_macs / times["dense"] / 1e6
    mode = "fwd+bwd" if backward else "fwd"
    rows = []
    for name, ms in times.items():
        if name == "rulebook":
            continue
        macs = dense_macs if name == "dense" else sparse_macs
        rate = macs / ms / 1e6  # GMAC/s
        extra = {"channels": channels, "density": round(sites.density, 4), "target_density": density,
                 "grid": [height, width], "sites": sites.num_sites, "pairs": pairs, "candidate": name,
                 "mode": mode, "gmacs_per_s": round(rate, 2), "of_dense": round(rate / dense_rate, 3),
                 "time_vs_dense": round(ms / times["dense"], 3), "rulebook_ms": round(times["rulebook"], 3),
                 "auto_algorithm": auto_choice, "fused_isa": fused_isa(), "repeats": repeats,
                 "threads": torch.get_num_threads()}
        rows.append(BenchRow(f"sparse_conv/{name} {mode} C{channels} d{density:g}", "sparse_conv", str(device), None,
                             macs, ms / 1e3, extra))
    return rows


def sparse_conv_rows(channels=CHANNELS, densities=DENSITIES, repeats: int = 5, spconv: bool = False,
                     backward_channels=(16, 64), device: torch.device = torch.device("cpu"),
                     log=lambda _: None, progress: Callable[[int, int], None] | None = None) -> list[BenchRow]:
    """Every (channels, density) shape, inference; fwd+bwd too for ``backward_channels``.
    ``progress(i, n)``: ``i`` of the ``n`` shapes (and modes) measured, 0 before the first."""
    rows = []
    shapes = [(c, d, backward) for c in channels for d in densities
              for backward in ((False, True) if c in backward_channels else (False,))]
    if progress is not None:
        progress(0, len(shapes))
    for done, (c, d, backward) in enumerate(shapes, 1):
        rows_ = shape_rows(c, d, repeats, spconv, backward, device)
        auto = next(r for r in rows_ if r.extra["candidate"] == "auto")
        log(f"sparse_conv C{c} density {d:g} {auto.extra['mode']}: auto ({auto.extra['auto_algorithm']}) "
            f"{auto.extra['gmacs_per_s']:.1f} GMAC/s, {100 * auto.extra['of_dense']:.0f} % of dense")
        rows += rows_
        if progress is not None:
            progress(done, len(shapes))
    return rows


def format_sparse_conv_table(rows: list[BenchRow]) -> str:
    rows = [r for r in rows if r.section == "sparse_conv"]
    if not rows:
        return ""
    candidates = list(dict.fromkeys(r.extra["candidate"] for r in rows))
    first = rows[0].extra
    lines = [f"one 3x3 submanifold conv C -> C against dense channels-last conv2d, GMAC/s (median CPU time of "
             f"{first['repeats']}, {first['threads']} thread(s), {rows[0].device}); sparse MACs = pairs x C x C, "
             f"dense = H x W x 9 x C x C; '% dense' = auto's GMAC/s over dense's; 'time' = auto's time over dense's; "
             f"fused kernel: {first.get('fused_isa') or 'not built'}",
             f"{'mode':<8}{'C':>5}{'grid':>10}{'density':>9}{'sites':>9}{'rulebook':>10}"
             + "".join(f"{c:>9}" for c in candidates) + f"{'% dense':>9}{'time':>7}  auto runs"]
    for r in rows:
        if r.extra["candidate"] != "auto":
            continue
        same = {x.extra["candidate"]: x for x in rows if x.extra["channels"] == r.extra["channels"]
                and x.extra["target_density"] == r.extra["target_density"] and x.extra["mode"] == r.extra["mode"]}
        e = r.extra
        grid = f"{e['grid'][0]}x{e['grid'][1]}"
        lines.append(f"{e['mode']:<8}{e['channels']:>5}{grid:>10}{100 * e['density']:>8.1f}%{e['sites']:>9,}"
                     f"{e['rulebook_ms']:>8.2f}ms" + "".join(f"{same[c].extra['gmacs_per_s']:>9.1f}" if c in same else
                                                            f"{'':>9}" for c in candidates)
                     + f"{100 * e['of_dense']:>8.0f}%{e['time_vs_dense']:>7.2f}  {e['auto_algorithm']}")
    return "\n".join(lines)
