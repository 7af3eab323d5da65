"""Decoder activation memory and MACs, All vs GTC vs PC: the decoder-only rows of `qgn bench`.

A thin wrapper around ``qgn.bench.memory_table`` (its docstring says what is measured): CamVid val
masks resized to --size drive GTC (and, with --model, the model's predicted sites drive PC); the
decoder of a ResNet-50 QGN (Table 7 widths times --width) runs on random encoder features.

    .venv/bin/python benchmarks/bench_decoder_memory.py [--images 10] [--width 1.0] [--size 2048x1024] [--model M] [--json]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgn.bench.memory_table import NetworkSettings, format_memory_table, memory_rows
from qgn.bench.provenance import provenance
from qgn.bench.workload import load_workload
from qgn.model.checkpoint import load_model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--width", type=float, default=1.0, help="decoder width multiplier (1.0 = Table 7)")
    p.add_argument("--size", default="2048x1024")
    p.add_argument("--model", help="trained model whose predicted sites give the PC row")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    record = provenance()  # the commit, torch, threads, machine, command the run starts with
    size = tuple(int(v) for v in args.size.split("x"))
    model = load_model(args.model) if args.model else None
    work = load_workload(size, args.images, pc_model=model)
    settings = NetworkSettings(torch.device("cpu"), ("R50",), decoder_width=args.width)
    rows = memory_rows([work], settings, networks=False)
    if args.json:
        for row in rows:
            print(row.to_json_line(record))
    else:
        print(format_memory_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
