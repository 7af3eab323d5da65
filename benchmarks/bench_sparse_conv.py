"""Benchmark: 3x3 submanifold convolution, torch backend vs spconv vs dense conv2d.

A thin wrapper: the benchmark itself is ``qgn.bench.sparse_conv`` (its docstring says what is
measured). ``qgn bench --only speed`` times whole decoders instead.

    .venv/bin/python benchmarks/bench_sparse_conv.py [--json] [--repeats 5] [--channels 16,64]
        [--densities 0.1,0.5] [--spconv] [--device cpu] [--threads N]

(the same as `qgn bench --only sparse_conv`; this script had imported names the module no longer
had since the decoder's rewrite, and failed with an ImportError)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgn.bench.sparse_conv import CHANNELS, DENSITIES, format_sparse_conv_table, sparse_conv_rows


def _numbers(text: str, kind) -> tuple:
    return tuple(kind(v) for v in text.split(",") if v.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON row per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per candidate (the median is kept)")
    parser.add_argument("--channels", default=",".join(map(str, CHANNELS)), help="channel counts C (C -> C)")
    parser.add_argument("--densities", default=",".join(map(str, DENSITIES)), help="shares of active sites")
    parser.add_argument("--spconv", action="store_true", help="spconv as a candidate too (where importable)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    rows = sparse_conv_rows(_numbers(args.channels, int), _numbers(args.densities, float), args.repeats,
                            args.spconv, device=torch.device(args.device),
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        for row in rows:
            print(row.to_json_line(record))
    else:
        print(format_sparse_conv_table(rows))


if __name__ == "__main__":
    main()
