"""Benchmark: 3x3 submanifold convolution, torch backend vs spconv vs dense conv2d.

A thin wrapper: the benchmark itself is ``qgn.bench.sparse_conv`` (its docstring says what is
measured). ``qgn bench --only speed`` times whole decoders instead.

    .venv/bin/python benchmarks/bench_sparse_conv.py [--json] [--repeats 20] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgn.bench.sparse_conv import print_table, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    results = run_benchmark(args.repeats, args.warmup, torch.device(args.device))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
