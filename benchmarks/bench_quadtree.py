"""Benchmark: quadtree labels and the .qgt format against PNG / lossless WebP of the same masks.

Masks: the CamVid val label maps of ``camvid`` as every command finds it (``QGN_DATA``, then
../shared/data beside the repository; ``qgn.data.registry.default_root``) (480×360, 11 classes, void = 11), and
the first of them upsampled to 2048×1024 by nearest neighbour (a Cityscapes-sized mask); without
the data, synthetic blob masks of the same sizes. Measured in the same run:

* size: bytes of .qgt (no class metadata), PNG (Pillow defaults, mode L) and lossless WebP (Pillow
  ``lossless=True`` with its defaults, and with ``method=6, quality=100``, its strongest setting),
  averaged over the val masks, as ratios; the stored CamVid PNG files are listed for reference;
* time: build_tpyramid + leaves (``Quadtree.from_tpyramid``) vs PNG-encoding the same mask, as a
  ratio; .qgt encode and decode (decode includes the CRC and ``Quadtree.validate``), PNG decode.
  Timings are medians over --repeats rounds, every candidate run once per round (round-robin) so
  that load from other processes on a shared machine hits all alike.

    .venv/bin/python benchmarks/bench_quadtree.py [--json] [--repeats 15]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image

from qgn.quadtree import Quadtree, build_tpyramid
from qgn.quadtree.qgt import decode_qgt, encode_qgt

NUM_CLASSES, IGNORE, LEVELS = 11, 11, 6


def synthetic_mask(seed: int, height: int = 360, width: int = 480) -> np.ndarray:
    """Blob-shaped regions (argmax of smooth noise) of 11 classes plus some void, uint8."""
    rng = np.random.default_rng(seed)
    small = rng.random((NUM_CLASSES + 1, height // 40 + 2, width // 40 + 2)).astype(np.float32)
    planes = [np.asarray(Image.fromarray(p).resize((width, height), Image.BICUBIC)) for p in small]
    return np.argmax(np.stack(planes), axis=0).astype(np.uint8)  # value 11 plays void


def load_masks() -> tuple[list[np.ndarray], list[int], str]:
    from qgn.data.registry import DatasetLayoutError, default_root

    try:  # QGN_DATA first, as `qgn eval camvid` and `qgn train` look (it read ../shared/data alone)
        folder = default_root("camvid") / "val" / "labels"
    except DatasetLayoutError:
        folder = None
    files = sorted(folder.glob("*.png")) if folder is not None and folder.is_dir() else []
    if files:
        return [np.asarray(Image.open(f)) for f in files], [f.stat().st_size for f in files], str(folder)
    return [synthetic_mask(s) for s in range(20)], [], "synthetic (no CamVid under QGN_DATA or ../shared/data)"


def png_bytes(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")
    return buf.getvalue()


def webp_bytes(mask: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="WEBP", lossless=True, **options)
    return buf.getvalue()


def leaves(mask: np.ndarray) -> Quadtree:
    return Quadtree.from_tpyramid(build_tpyramid(mask, NUM_CLASSES, IGNORE, LEVELS))


def median_ms(steps: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(warmup + repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_index >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def sizes(masks: list[np.ndarray], stored: list[int]) -> dict:
    qgt = png = webp = webp_best = 0
    for mask in masks:
        qgt += len(encode_qgt(leaves(mask)))
        png += len(png_bytes(mask))
        webp += len(webp_bytes(mask))
        webp_best += len(webp_bytes(mask, method=6, quality=100))
    n = len(masks)
    out = {
        "masks": n,
        "qgt_bytes": qgt / n, "png_bytes": png / n, "webp_bytes": webp / n, "webp_best_bytes": webp_best / n,
        "qgt_over_png": qgt / png, "qgt_over_webp": qgt / webp, "qgt_over_webp_best": qgt / webp_best,
        "webp_over_png": webp / png, "webp_best_over_png": webp_best / png,
    }
    if stored:
        out["stored_png_bytes"] = sum(stored) / n
        out["qgt_over_stored_png"] = qgt / sum(stored)
    return out


def timings(masks: list[np.ndarray], repeats: int) -> dict:
    """Per mask (summed over ``masks``) medians in ms."""
    qts = [leaves(m) for m in masks]
    blobs = [encode_qgt(q) for q in qts]
    pngs = [png_bytes(m) for m in masks]
    for q, b, m in zip(qts, blobs, masks):  # sanity: lossless
        assert np.array_equal(decode_qgt(b)[0].to_label(), m)
    steps = {
        "build_tpyramid_and_leaves": lambda: [leaves(m) for m in masks],
        "png_encode": lambda: [png_bytes(m) for m in masks],
        "qgt_encode": lambda: [encode_qgt(q) for q in qts],
        "qgt_decode": lambda: [decode_qgt(b) for b in blobs],
        "png_decode": lambda: [np.asarray(Image.open(io.BytesIO(p))) for p in pngs],
    }
    ms = {k: v / len(masks) for k, v in median_ms(steps, repeats).items()}
    return {
        "shape": list(masks[0].shape),
        "leaves": int(np.mean([len(q) for q in qts])),
        "qgt_bytes": float(np.mean([len(b) for b in blobs])),
        "png_bytes": float(np.mean([len(p) for p in pngs])),
        "ms": ms,
        "build_over_png_encode": ms["build_tpyramid_and_leaves"] / ms["png_encode"],
        "qgt_decode_over_png_decode": ms["qgt_decode"] / ms["png_decode"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (median)")
    args = parser.parse_args(argv)
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts

    masks, stored, source = load_masks()
    big = np.asarray(Image.fromarray(masks[0]).resize((2048, 1024), Image.NEAREST))
    result = {
        "source": source,
        "size": sizes(masks, stored),
        "time_480x360": timings(masks[:10], args.repeats),
        "time_2048x1024": timings([big], args.repeats),
    }
    if args.json:
        result["provenance"] = record
        print(json.dumps(result, indent=1))
        return 0
    s = result["size"]
    print(f"masks: {source} ({s['masks']})")
    print(f"size per mask: .qgt {s['qgt_bytes']:.0f} B, PNG {s['png_bytes']:.0f} B, "
          f"WebP lossless {s['webp_bytes']:.0f} B (method 6/q100: {s['webp_best_bytes']:.0f} B)")
    print(f"  .qgt/PNG {s['qgt_over_png']:.3f}   .qgt/WebP {s['qgt_over_webp']:.3f} "
          f"(vs strongest WebP {s['qgt_over_webp_best']:.3f})   WebP/PNG {s['webp_over_png']:.3f}")
    if "stored_png_bytes" in s:
        print(f"  stored CamVid PNG files {s['stored_png_bytes']:.0f} B: .qgt/stored {s['qgt_over_stored_png']:.3f}")
    for key in ("time_480x360", "time_2048x1024"):
        t = result[key]
        ms = t["ms"]
        print(f"{t['shape'][1]}x{t['shape'][0]} ({t['leaves']} leaves, .qgt {t['qgt_bytes']:.0f} B, PNG {t['png_bytes']:.0f} B): "
              f"build+leaves {ms['build_tpyramid_and_leaves']:.2f} ms vs PNG encode {ms['png_encode']:.2f} ms "
              f"(ratio {t['build_over_png_encode']:.2f}); .qgt encode {ms['qgt_encode']:.2f} ms, "
              f"decode {ms['qgt_decode']:.2f} ms (PNG decode {ms['png_decode']:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
