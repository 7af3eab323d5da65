"""Benchmark: the annotate panel's "Changed: N px (S %) · M cells of k×k px" after a stroke, counted
afresh over the whole map (before) against ``qgn.annotation.changes.ChangeTally`` (after: the rows
the stroke touched), on the UI thread's own code path, in one process.

Setup: an (H, W) uint8 reference (a synthetic map of blocks, 12 classes) and a label map that
starts equal; each of --strokes strokes paints a band of rows (--rows high, a third of the width)
with another class, then both ways count pixels and cells at level 2 (a 4-px cell, the app's
default brush). Reported: the median and worst milliseconds of each way and the ratio of the
medians; both must agree on every count (checked). The UI thread's summary runs 150 ms after each
edit, so these milliseconds are a stall of the window when over ~16 ms.

    OMP_NUM_THREADS=1 python benchmarks/bench_change_summary.py [--size 6000x4000] [--strokes 30] [--rows 48]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from qgn.annotation import changed_cells
from qgn.annotation.changes import ChangeTally

LEVEL = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="6000x4000", help="WxH of the map")
    parser.add_argument("--strokes", type=int, default=30)
    parser.add_argument("--rows", type=int, default=48, help="height of a stroke's band of rows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    w, h = (int(v) for v in args.size.lower().split("x"))
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 12, (-(-h // 64), -(-w // 64))).astype(np.uint8)
    reference = np.repeat(np.repeat(blocks, 64, 0), 64, 1)[:h, :w].copy()
    label = reference.copy()
    tally = ChangeTally()
    tally.pixels(label, reference, 0), tally.cells(label, reference, LEVEL, 0)  # the first count: once
    fresh_ms, tally_ms = [], []
    for version in range(1, args.strokes + 1):
        y0 = int(rng.integers(0, h - args.rows))
        x0 = int(rng.integers(0, w - w // 3))
        label[y0:y0 + args.rows, x0:x0 + w // 3] = (version % 11) + 1
        tally.touched(y0, y0 + args.rows, version)
        start = time.perf_counter()
        fresh = int(np.count_nonzero(label != reference)), int(changed_cells(label, reference, LEVEL).sum())
        fresh_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        kept = tally.pixels(label, reference, version), tally.cells(label, reference, LEVEL, version)
        tally_ms.append(1000 * (time.perf_counter() - start))
        assert fresh == kept, (version, fresh, kept)
    row = {"size": f"{w}x{h}", "strokes": args.strokes, "rows": args.rows, "threads": os.environ.get("OMP_NUM_THREADS"),
           "load": os.getloadavg()[0],
           "fresh_median_ms": statistics.median(fresh_ms), "fresh_max_ms": max(fresh_ms),
           "tally_median_ms": statistics.median(tally_ms), "tally_max_ms": max(tally_ms)}
    row["ratio"] = row["fresh_median_ms"] / row["tally_median_ms"]
    if args.json:
        row["provenance"] = record
        print(json.dumps(row))
    else:
        print(f"{row['size']}, {args.strokes} strokes of {args.rows} rows, load {row['load']:.1f}: "
              f"fresh count {row['fresh_median_ms']:.1f} ms (worst {row['fresh_max_ms']:.1f}) · "
              f"tally {row['tally_median_ms']:.2f} ms (worst {row['tally_max_ms']:.2f}) · {row['ratio']:.0f}× faster")


if __name__ == "__main__":
    main()
