"""A τ sweep of the confidence-masked start (``qgn.annotation.start.confident_start``): actions per
image to 99 % (image-aware tools, the bench's simulated annotator) from the empty map, the model's
start, and the model's start kept only where its probability is >= τ (unlabelled elsewhere).

    QGN_DATA=H OMP_NUM_THREADS=1 python benchmarks/bench_confident.py MODEL --split val \
        --first 17 --count 16 [--stride 1] [--tolerance 1] [--taus 0.5,0.7,0.9] [--json out.jsonl]

``--first`` is 1-based in the split's sorted order. One line per image, then the means; with
``--json`` one JSON line per image. benchmarks/RESULTS.md, "A start that keeps only what the model
is sure of".
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _grouped(label, confidence, threshold, ignore, over, variant):
    """The start kept by group: a superpixel (sp1 medium, sp2 fine) or a 4-connected region of the
    start's labels (region) stays whole where its mean confidence is >= threshold, else unlabelled."""
    from scipy import ndimage

    if variant == "region":
        groups = np.zeros(label.shape, np.int64)
        n = 0
        for c in np.unique(label):
            comp, k = ndimage.label(label == c)
            groups[comp > 0] = comp[comp > 0] + n
            n += k
        n += 1
    else:
        if over.working.resized:
            raise ValueError("superpixel masking measured on images segmented at full size only")
        groups = over.segments[int(variant[2:])].astype(np.int64)
        n = over.counts[int(variant[2:])]
    mean = np.bincount(groups.ravel(), confidence.ravel().astype(np.float64), n) / \
        np.maximum(np.bincount(groups.ravel(), minlength=n), 1)
    return np.where(mean[groups] >= threshold, label, ignore).astype(np.int64)


def _describe_holes(name, pred, taus, ignore) -> None:
    from scipy import ndimage

    label = pred.label()
    edge = np.zeros(label.shape, bool)
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    edge[1:, :] |= label[1:, :] != label[:-1, :]
    near = ndimage.binary_dilation(edge, iterations=3)
    for t in taus:
        hole = pred.confident(t, ignore) == ignore
        comp, n = ndimage.label(hole)
        sizes = np.bincount(comp.ravel())[1:]
        print(f"{name} tau {t:g}: holes {100 * hole.mean():.1f} % of the image, {n} components (median "
              f"{np.median(sizes) if n else 0:.0f} px, {int(np.sum(sizes < 200))} under 200 px), "
              f"{100 * near[hole].mean() if n else 0:.0f} % of hole pixels within 3 px of a boundary of the "
              f"model's start (that band: {100 * near.mean():.0f} % of the image)", flush=True)


def main() -> None:
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate import _predict
    from qgn.bench.annotate_sim import simulate_annotator
    from qgn.bench.annotate_tools import ImageTools
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model

    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", default="camvid")
    ap.add_argument("--split", default="val")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--tolerance", type=int, default=1)
    ap.add_argument("--taus", default="0.5,0.6,0.7,0.8,0.9,0.95")
    ap.add_argument("--json")
    ap.add_argument("--holes", action="store_true",
                    help="only describe the pixel masks' holes (no annotator): their share of the image, their "
                         "4-connected components, and the share of hole pixels within 3 px of a boundary of the "
                         "model's start")
    ap.add_argument("--variants", default="pixel",
                    help="comma list of pixel (mask each pixel), sp1 / sp2 (keep a medium / fine superpixel "
                         "where its mean confidence is >= τ), region (keep a connected region of the start's "
                         "labels where its mean confidence is >= τ)")
    args = ap.parse_args()
    taus = [float(t) for t in args.taus.split(",")]
    model = load_model(default_model(args.model))
    data = open_dataset(args.data, args.split)
    classes = data.classes
    idx = list(range(args.first - 1, len(data), args.stride))[: args.count]
    sim = dict(target=0.99, tolerance=args.tolerance)
    totals: dict[str, list] = {}
    out = open(args.json, "a") if args.json else None
    from qgn.bench.provenance import provenance

    record = provenance()  # the commit, torch, threads, machine, command: on every row written
    for i in idx:
        s = data[i]
        t0 = time.perf_counter()
        pred = _predict(model, s.image, "pc")
        if args.holes:
            _describe_holes(s.name, pred, taus, classes.ignore_index)
            continue
        over = oversegment(s.image)
        tools = [ImageTools(over)]
        starts = {"empty": np.full(s.label.shape, classes.ignore_index), "model": pred.label()}
        variants = args.variants.split(",")
        pred.confident(0.0, classes.ignore_index)
        label, confidence = pred._confident
        for t in taus:
            if "pixel" in variants:
                starts[f"tau{t:g}"] = pred.confident(t, classes.ignore_index)
            for v in variants:
                if v.startswith("sp") or v == "region":
                    starts[f"{v}_{t:g}"] = _grouped(label, confidence, t, classes.ignore_index, over, v)
        row = {"image": s.name, "index": i + 1}
        labelled = s.label != classes.ignore_index
        for name, start in starts.items():
            effort, _ = simulate_annotator(s.label, start, classes, tools=tools, **sim)
            kept = start != classes.ignore_index
            row[name] = effort.actions
            row[name + "_kept"] = float(kept.mean())
            row[name + "_right"] = float((start[kept & labelled] == s.label[kept & labelled]).mean()) \
                if (kept & labelled).any() else None
            totals.setdefault(name, []).append(effort.actions)
        row["seconds"] = time.perf_counter() - t0
        parts = []
        for n in starts:
            right = "-" if row[n + "_right"] is None else f"{100 * row[n + '_right']:.0f}"
            parts.append(f"{n} {row[n]} ({100 * row[n + '_kept']:.0f} % kept, {right} % right)")
        print(f"{s.name} (#{i + 1}): " + ", ".join(parts), flush=True)
        if out:
            out.write(json.dumps({**row, "provenance": record}) + "\n")
            out.flush()
    if args.holes:
        return
    print("mean actions per image: " + ", ".join(f"{n} {np.mean(v):.2f}" for n, v in totals.items()))


if __name__ == "__main__":
    main()
