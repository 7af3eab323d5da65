"""Which start map saves the most actions: the prediction as decoded (each working pixel's class
copied to a block), its probabilities upsampled bilinearly, and the bilinear map smoothed by a
superpixel majority vote (medium or fine granularity) — with the cell tools and with the image-aware
tools (issue #21).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_start_maps.py [--model camvid] [--images 5,25,45,65,85]

Prints, per start map, the mean actions (qgn.bench.annotate_sim, 99 % exact) and the start's pixel
accuracy over the given CamVid val images.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> int:
    import torch

    from qgn.annotation.start import smooth_start
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate_sim import simulate_annotator
    from qgn.bench.annotate_tools import ImageTools
    from qgn.data.registry import open_dataset
    from qgn.infer import predict
    from qgn.model.checkpoint import load_model
    from qgn.model.transfer import needs_transfer, transfer_model
    from qgn.resources import default_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="camvid")
    p.add_argument("--images", default="5,25,45,65,85")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = open_dataset("camvid", "val")
    classes = data.classes
    model = load_model(default_model(args.model))
    if needs_transfer(model, classes):
        model, _ = transfer_model(model, classes)
    results: dict[str, list] = {}
    for i in (int(v) for v in args.images.split(",")):
        s = data[i]
        labelled = s.label != classes.ignore_index
        prediction = predict(model, s.image)
        over = oversegment(s.image)
        starts = {"as decoded": prediction.label(), "bilinear": smooth_start(prediction),
                  "bilinear + majority (medium)": smooth_start(prediction, over, 1),
                  "bilinear + majority (fine)": smooth_start(prediction, over, 2)}
        for name, start in starts.items():
            cells = simulate_annotator(s.label, start, classes)[0].actions
            tools = simulate_annotator(s.label, start, classes, tools=[ImageTools(over)])[0].actions
            results.setdefault(name, []).append((cells, tools, (start[labelled] == s.label[labelled]).mean()))
        print(f"image {i} done", file=sys.stderr, flush=True)
    print(f"{'start map':<30}{'cell tools':>12}{'image tools':>13}{'accuracy':>10}")
    for name, rows in results.items():
        cells, tools, acc = np.mean(rows, axis=0)
        print(f"{name:<30}{cells:>12.1f}{tools:>13.1f}{100 * acc:>9.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
