"""Decoding Label Studio brush RLE (``qgn.formats.labelstudio.decode_ls_rle``: ``qgn import`` of a
Label Studio export, ``qgn serve``'s annotation webhooks) against the run-at-a-time decoder it
replaced, both in this run, on the same streams.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ls_rle.py [--size 960x720] [--repeats 5]

The streams: a region mask as Label Studio's brush stores it — RGBA, the class colour in R, G, B
and coverage in alpha with a soft rim a few pixels wide — encoded by label-studio-sdk's rule
(``converter/brush.py`` ``encode_rle``: a value that does not repeat is a run of one literal, a
repeat is one run), and the same mask encoded by ``encode_ls_rle`` (our export: hard-edged, one
value in all four channels, repeats only). A coloured region is the slow case for a run-at-a-time
decoder: R, G, B, A differ, so each pixel is ~3 runs. Prints one JSON line per stream: process CPU
seconds (median of ``--repeats``) and baseline / product.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def converter_rule_rle(values: np.ndarray) -> list[int]:
    """``values`` (uint8, flat) encoded as label-studio-sdk's ``encode_rle`` does: a run of length 1
    as a literal (flag 0, class 0, count 0), a longer run as a repeat in the smallest class."""
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [values.size])))
    sizes = (3, 4, 8, 16)
    parts = [f"{values.size:032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in sizes)]
    for start, n in zip(starts.tolist(), lengths.tolist()):
        value = int(values[start])
        while n > 0:
            piece = min(n, 2 ** 16)
            if piece == 1:
                parts.append(f"000000{value:08b}")
            else:
                klass = next(k for k, s in enumerate(sizes) if piece <= 2 ** s)
                parts.append(f"1{klass:02b}" + format(piece - 1, f"0{sizes[klass]}b") + f"{value:08b}")
            n -= piece
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return np.packbits(np.frombuffer(bits.encode(), np.uint8) - ord("0")).tolist()


def run_at_a_time(rle: list[int]) -> np.ndarray:
    """The decoder before: one run, and one literal value, at a time (the baseline)."""
    bits = "".join(np.unpackbits(np.asarray(rle, np.uint8)).astype(str).tolist())
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        value = int(bits[pos:pos + n], 2)
        pos += n
        return value

    num, word = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out, i = np.zeros(num, np.uint8), 0
    while i < num:
        repeat = read(1)
        j = min(i + 1 + read(sizes[read(2)]), num)
        if repeat:
            out[i:j] = read(word)
        else:
            for k in range(i, j):
                out[k] = read(word)
        i = j
    return out


def cpu_median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x720")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from qgn.formats.labelstudio import decode_ls_rle, encode_ls_rle

    width, height = (int(v) for v in args.size.split("x"))
    yy, xx = np.mgrid[:height, :width]
    d = np.sqrt(((yy - 0.42 * height) / (0.21 * height)) ** 2 + ((xx - 0.42 * width) / (0.26 * width)) ** 2)
    alpha = (np.clip((1.0 - d) * 40, 0, 1) * 255).astype(np.uint8)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = (alpha > 0) * 200, (alpha > 0) * 30, 0, alpha
    streams = {"label-studio brush (coloured, soft rim)": converter_rule_rle(rgba.ravel()),
               "qgn export (encode_ls_rle)": encode_ls_rle(alpha > 127)}
    from qgn.bench.provenance import provenance

    record = provenance()  # the commit, torch, threads, machine, command
    for name, rle in streams.items():
        expected = height * width * 4
        assert np.array_equal(decode_ls_rle(rle, expected=expected), run_at_a_time(rle))
        base = cpu_median(lambda: run_at_a_time(rle), args.repeats)
        ours = cpu_median(lambda: decode_ls_rle(rle, expected=expected), args.repeats)
        print(json.dumps({"stream": name, "size": args.size, "rle_bytes": len(rle), "baseline_s": round(base, 4),
                          "decode_s": round(ours, 4), "baseline_over_decode": round(base / ours, 2),
                          "provenance": record}))


if __name__ == "__main__":
    main()
