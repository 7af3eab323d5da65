"""Micro-benchmark: one 3x3 submanifold convolution, torch backend vs spconv vs dense conv2d.

Setup: 64 -> 64 channels on a 256 x 512 grid (batch 1) with ~10 % active sites forming bands
along the boundaries of a random blob-shaped label map (what a quadtree decoder level looks
like), float32. Measured: forward + backward (training) and forward only under no_grad
(inference), each the median over ``repeats`` runs after ``warmup`` runs, timed round-robin
(qgn.bench.timing). Ratios are against spconv measured in the same run (against the torch backend
if spconv is missing). The dense conv2d is ~10-40x slower and gets a quarter of the repeats. The
rulebook (neighbour pairs, built once per level) is timed apart.

``run_benchmark`` returns a flat dict; ``print_table`` prints it. Script: benchmarks/bench_sparse_conv.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from qgn.bench.timing import interleaved_median_ms
from qgn.sparse import ActiveSites, SubmConvBackend, get_backend, neighbour_rulebook

CHANNELS = 64
BATCH, HEIGHT, WIDTH = 1, 256, 512
TARGET_DENSITY = 0.10


def boundary_band_mask(seed: int, device: torch.device) -> torch.Tensor:
    """(B, H, W) bool: boundaries of a random blob label map, dilated to >= TARGET_DENSITY of the grid."""
    generator = torch.Generator().manual_seed(seed)
    num_labels, cell = 6, 64
    noise = torch.rand(BATCH, num_labels, HEIGHT // cell + 1, WIDTH // cell + 1, generator=generator)
    smooth = torch.nn.functional.interpolate(noise, size=(HEIGHT, WIDTH), mode="bicubic", align_corners=False)
    labels = smooth.argmax(dim=1)  # (B, H, W) irregular blobs
    mask = torch.zeros(BATCH, HEIGHT, WIDTH, dtype=torch.bool)
    mask[:, :, 1:] |= labels[:, :, 1:] != labels[:, :, :-1]
    mask[:, 1:, :] |= labels[:, 1:, :] != labels[:, :-1, :]
    while mask.float().mean() < TARGET_DENSITY:
        mask = torch.nn.functional.max_pool2d(mask[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
    return mask.to(device)


def sparse_step(
    backend: SubmConvBackend,
    sites: ActiveSites,
    feats: torch.Tensor,
    weight: torch.Tensor,
    grad_out: torch.Tensor | None,
) -> Callable[[], None]:
    """One submanifold conv: forward+backward, or forward only under no_grad if `grad_out` is None."""

    def run() -> None:
        if grad_out is None:
            with torch.no_grad():
                backend.subm_conv(feats, weight, sites)
            return
        feats.grad = None
        weight.grad = None
        backend.subm_conv(feats, weight, sites).backward(grad_out)

    return run


def dense_step(dense: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor | None) -> Callable[[], None]:
    """One conv2d on the whole grid: forward+backward, or forward only under no_grad if `grad_out` is None."""

    def run() -> None:
        if grad_out is None:
            with torch.no_grad():
                torch.nn.functional.conv2d(dense, weight, padding=1)
            return
        dense.grad = None
        weight.grad = None
        torch.nn.functional.conv2d(dense, weight, padding=1).backward(grad_out)

    return run


def rulebook_step(backend: SubmConvBackend, coords: torch.Tensor) -> Callable[[], None]:
    """Build the 3x3 rulebook of a fresh (uncached) copy of the sites."""
    return lambda: backend.prepare_rulebook(ActiveSites(coords, (HEIGHT, WIDTH), BATCH), 3)


def available_sparse_backends() -> dict[str, SubmConvBackend]:
    backends = {"torch": get_backend("torch")}
    try:
        backends["spconv"] = get_backend("spconv")
    except Exception as error:  # noqa: BLE001 - benchmark what is there
        print(f"spconv unavailable ({type(error).__name__}: {error}); benchmarking without it", file=sys.stderr)
    return backends


def run_benchmark(repeats: int, warmup: int, device: torch.device) -> dict[str, object]:
    torch.manual_seed(0)
    sites = ActiveSites.from_mask(boundary_band_mask(seed=0, device=device))
    feats = torch.randn(sites.num_sites, CHANNELS, device=device, requires_grad=True)
    weight = (0.05 * torch.randn(CHANNELS, 3, 3, CHANNELS, device=device)).requires_grad_(True)
    grad_out = torch.randn(sites.num_sites, CHANNELS, device=device)
    backends = available_sparse_backends()
    results: dict[str, object] = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "grid": [BATCH, HEIGHT, WIDTH],
        "channels": CHANNELS,
        "active_sites": sites.num_sites,
        "density": sites.num_sites / (BATCH * HEIGHT * WIDTH),
        "neighbour_pairs": neighbour_rulebook(sites, 3).num_pairs,
        "repeats": repeats,
    }
    rulebooks = {f"rulebook_{name}_ms": rulebook_step(b, sites.coords) for name, b in backends.items()}
    results.update(interleaved_median_ms(rulebooks, warmup, repeats, device))

    sparse_steps: dict[str, Callable[[], None]] = {}
    for name, backend in backends.items():
        sparse_steps[f"{name}_fwd_bwd_ms"] = sparse_step(backend, sites, feats, weight, grad_out)
        sparse_steps[f"{name}_fwd_ms"] = sparse_step(backend, sites, feats, weight, None)
    results.update(interleaved_median_ms(sparse_steps, warmup, repeats, device))
    if "spconv" in backends:
        with torch.no_grad():
            from_torch = backends["torch"].subm_conv(feats, weight, sites)
            from_spconv = backends["spconv"].subm_conv(feats, weight, sites)
        results["max_abs_diff_torch_vs_spconv"] = float((from_torch - from_spconv).abs().max())

    dense = torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH, device=device, requires_grad=True)
    dense_weight = weight.detach().permute(0, 3, 1, 2).contiguous().requires_grad_(True)
    dense_grad = torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH, device=device)
    dense_steps = {
        "dense_fwd_bwd_ms": dense_step(dense, dense_weight, dense_grad),
        "dense_fwd_ms": dense_step(dense, dense_weight, None),
    }
    results.update(interleaved_median_ms(dense_steps, 1, max(3, repeats // 4), device))
    results.update(ratios(results, baseline="spconv" if "spconv" in backends else "torch"))
    return results


def ratios(results: dict[str, object], baseline: str) -> dict[str, object]:
    """torch/baseline and dense/baseline for fwd+bwd and fwd only."""
    out: dict[str, object] = {"baseline": baseline}
    for mode in ("fwd_bwd", "fwd"):
        baseline_ms = float(results[f"{baseline}_{mode}_ms"])  # type: ignore[arg-type]
        for name in ("torch", "dense"):
            out[f"ratio_{name}_over_baseline_{mode}"] = float(results[f"{name}_{mode}_ms"]) / baseline_ms  # type: ignore[arg-type]
    return out


def print_table(results: dict[str, object]) -> None:
    baseline = str(results["baseline"])
    print(
        f"3x3 submanifold conv {CHANNELS}->{CHANNELS} ch, grid {BATCH}x{HEIGHT}x{WIDTH}, "
        f"{results['active_sites']} active sites ({100 * float(results['density']):.1f} %), "  # type: ignore[arg-type]
        f"{results['neighbour_pairs']} neighbour pairs, {results['device']}, {results['threads']} threads, "
        f"median of {results['repeats']}"
    )
    for name in ("torch", "spconv"):
        if f"rulebook_{name}_ms" in results:
            print(f"  rulebook build, {name:<10} {float(results[f'rulebook_{name}_ms']):9.2f} ms")  # type: ignore[arg-type]
    print(f"  {'':<26} {'fwd+bwd':>9}    {'fwd only':>9}")
    for name in ("torch", "spconv", "dense"):
        if f"{name}_fwd_bwd_ms" in results:
            label = "conv2d (full grid)" if name == "dense" else f"{name} backend"
            fwd_bwd, fwd = float(results[f"{name}_fwd_bwd_ms"]), float(results[f"{name}_fwd_ms"])  # type: ignore[arg-type]
            print(f"  {label:<26} {fwd_bwd:9.2f} ms {fwd:9.2f} ms")
    for name in ("torch", "dense"):
        fwd_bwd = float(results[f"ratio_{name}_over_baseline_fwd_bwd"])  # type: ignore[arg-type]
        fwd = float(results[f"ratio_{name}_over_baseline_fwd"])  # type: ignore[arg-type]
        print(f"  {name + ' / ' + baseline:<26} {fwd_bwd:9.2f} x  {fwd:9.2f} x")
    print("  (target: torch / spconv <= 2)")
    if "max_abs_diff_torch_vs_spconv" in results:
        print(f"  max |torch - spconv| output difference: {float(results['max_abs_diff_torch_vs_spconv']):.2e}")  # type: ignore[arg-type]
