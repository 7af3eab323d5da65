"""Benchmark: the decoder's All path against dense decoders, paired, with a dense-against-itself control.

Candidates, each given the same encoder features of a frame (computed once; the encoder is not timed):

* ``all``: ``model.decoder(features, image, Scheme("all"))``, what a prediction runs - the dense
  decoder (``QGNDecoder.dense_root`` / ``dense_levels``) plus wrapping every level's grids as the
  per-level outputs (sites, logits rows, costs) the rest of the product reads;
* ``dense``: ``qgn.bench.dense_decoder.dense_decode``, the best dense choice - channels-last
  ``conv2d`` with BatchNorm folded into the convolutions, no masks, logits per level as the
  head's matmul gives them (rows);
* ``dense again``: the same function a second time, as its own candidate: the control. Its ratio to
  ``dense`` is what this protocol measures for two identical candidates (the noise floor);
* ``plain dense``: the dense decoder written from the model's layers - channels-last ``conv2d``,
  then BatchNorm as its own op - as the decoder computed before BatchNorm folding (the issue's
  "plain dense conv2d decoder computing every cell").

Protocol: ``--frames`` CamVid val frames (``--data``, default ``camvid``) resized to ``--size``
(default 240x180, the street model's working size), one intra-op thread, CPU time of the calling
thread. Every round visits the frames; per frame the candidates run in a fresh random order
(seeded), each timed run right after an untimed run of the same candidate, so none is timed on
caches another just evicted. Per frame and candidate the median of ``--rounds`` runs; reported per
candidate: the sum over frames and, per frame, the ratio to ``dense`` (mean, standard deviation,
min, max). Assumptions: one core's time, warm caches, a machine shared with other work (CPU time,
not wall, and the control shows how much that moves two equal candidates).

    .venv/bin/python benchmarks/bench_all_vs_dense.py [--model camvid] [--frames 10] [--rounds 25] [--json]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

import numpy as np
import torch


def plain_dense_decode(decoder, features: list[torch.Tensor], image: torch.Tensor) -> dict[int, torch.Tensor]:
    """Every level densely, channels-last, BatchNorm as a separate op (no folding); logits rows."""
    from qgn.model.decoder import conv2d_weight, dense_linear, dense_rows

    def bn(x, layer):
        return torch.nn.functional.batch_norm(x, layer.running_mean, layer.running_var, layer.weight, layer.bias,
                                              False, 0.0, layer.eps)

    def conv(x, layer):
        return torch.nn.functional.conv2d(x, conv2d_weight(layer.weight), layer.bias, padding=layer.kernel_size // 2)

    x = torch.relu_(bn(dense_linear(features[4], decoder.reduce), decoder.reduce_bn))
    logits = {5: dense_rows(x, decoder.head5)}
    sources = [image] + list(features[:4])
    for level in range(4, -1, -1):
        block = decoder.levels[str(level)]
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest").contiguous(memory_format=torch.channels_last)
        x = x.add_(dense_linear(sources[level], block.skip))
        for unit in block.units:
            out = torch.relu_(bn(conv(x, unit.conv1), unit.bn1))
            out = bn(conv(out, unit.conv2), unit.bn2)
            identity = x if unit.shortcut is None else bn(dense_linear(x, unit.shortcut["proj"]), unit.shortcut["bn"])
            x = out.add_(identity).relu_()
        logits[level] = dense_rows(x, block.head)
    return logits


def frames(data: str, count: int, size: tuple[int, int]):
    from qgn.data.registry import open_dataset
    from qgn.data.transforms import resize_image

    dataset = open_dataset(data, "val")
    for i in range(min(count, len(dataset))):
        yield resize_image(dataset[i].image, (size[1], size[0]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="camvid")
    p.add_argument("--data", default="camvid")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--rounds", type=int, default=25)
    p.add_argument("--size", default="240x180", help="W x H of every frame (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    from qgn.allocator import tune_allocator
    from qgn.bench.dense_decoder import dense_decode
    from qgn.infer import ImageSession
    from qgn.model.checkpoint import load_model
    from qgn.propagation import Scheme
    from qgn.resources import default_model

    tune_allocator()
    torch.set_num_threads(1)
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    model = load_model(default_model(args.model)).eval()
    decoder, everything = model.decoder, Scheme("all")
    candidates = {
        "all": lambda f, im: decoder(f, im, everything),
        "dense": lambda f, im: dense_decode(decoder, f, im),
        "dense again": lambda f, im: dense_decode(decoder, f, im),
        "plain dense": lambda f, im: plain_dense_decode(decoder, f, im),
    }
    inputs = []
    with torch.no_grad():
        for image in frames(args.data, args.frames, (width, height)):
            session = ImageSession(model, np.ascontiguousarray(image), at_image_size=True)
            f, im = session.features(), session.images
            reference = dense_decode(decoder, f, im)
            for name in ("all", "plain dense"):  # same logits, or the timing compares different work
                result = candidates[name](f, im)
                got = {o.level: o.logits for o in result} if name == "all" else result
                for level, want in reference.items():
                    torch.testing.assert_close(got[level], want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
            inputs.append((f, im))
    if not inputs:
        print("bench_all_vs_dense: error: no frames (is CamVid under ../shared/data or QGN_DATA?)", file=sys.stderr)
        return 2
    times = {name: [[] for _ in inputs] for name in candidates}
    rng = random.Random(args.seed)
    with torch.no_grad():
        for round_ in range(args.rounds):
            for i, (f, im) in enumerate(inputs):
                order = list(candidates)
                rng.shuffle(order)
                for name in order:
                    candidates[name](f, im)  # untimed: the caches as this candidate leaves them
                    start = time.thread_time()
                    candidates[name](f, im)
                    times[name][i].append(time.thread_time() - start)
            print(f"bench_all_vs_dense: round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
    medians = {name: [statistics.median(t) for t in per_frame] for name, per_frame in times.items()}
    report = {"model": args.model, "size": f"{width}x{height}", "frames": len(inputs), "rounds": args.rounds,
              "threads": 1, "clock": "thread CPU time", "candidates": {}}
    for name, per_frame in medians.items():
        ratios = [m / d for m, d in zip(per_frame, medians["dense"])]
        report["candidates"][name] = {
            "total_ms": 1e3 * sum(per_frame), "ratio_to_dense": sum(per_frame) / sum(medians["dense"]),
            "per_frame_ratio_mean": statistics.fmean(ratios),
            "per_frame_ratio_sd": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
            "per_frame_ratio_min": min(ratios), "per_frame_ratio_max": max(ratios)}
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
        return 0
    print(f"decoder at {report['size']}, model {args.model}: {len(inputs)} frames x {args.rounds} rounds, "
          "one thread, CPU time; per frame the median, candidates in random order, each timed run after a warm one")
    print(f"{'candidate':<14}{'total ms':>10}{'/ dense':>9}   per-frame ratio to dense: mean ± sd [min, max]")
    for name, c in report["candidates"].items():
        print(f"{name:<14}{c['total_ms']:>10.2f}{c['ratio_to_dense']:>9.3f}   {c['per_frame_ratio_mean']:.3f} ± "
              f"{c['per_frame_ratio_sd']:.3f} [{c['per_frame_ratio_min']:.3f}, {c['per_frame_ratio_max']:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
