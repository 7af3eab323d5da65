"""Benchmark: the C allocator's policy (``qgn/allocator.py``) against glibc's default, same run.

Two workloads, each in a fresh process per run, the two policies alternating (default first, then
tuned, ``--rounds`` times), so both see the same machine state:

* the decoder at the street model's working size: ``qgn bench --threads 1 --only scaling --model M
  --images 10 --factors 0.5 --repeats 7 --json`` - per scheme (All, GTC, PC, dense) the decoder's
  median CPU time of the thread, as the bench reports it;
* a whole command: ``qgn eval --threads 1 --model M camvid --split val --limit 40 --modes pc,all``
  (encoder + decoder + scoring + start-up) - wall, user and system seconds, minor page faults and
  peak RSS of the child process (``os.wait4``).

"default" sets ``QGN_MALLOC=default`` (glibc as shipped); "tuned" is what ``qgn`` does by itself.
Reported: the median over rounds of each figure and tuned/default. Needs CamVid (``../shared/data``
or ``QGN_DATA``) for the street model's frames.

    .venv/bin/python benchmarks/bench_allocator.py [--model camvid] [--rounds 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QGN = [sys.executable, "-m", "qgn"]


def environment(policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("QGN_MALLOC", None)
    if policy == "default":
        env["QGN_MALLOC"] = "default"
    return env


def decoder_times(model: str, policy: str) -> dict[str, float]:
    cmd = QGN + ["bench", "--threads", "1", "--only", "scaling", "--model", model, "--images", "10",
                 "--factors", "0.5", "--repeats", "7", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=environment(policy), cwd=ROOT, check=True)
    times = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row.get("section") == "scaling" and "factor" in row:
                times[row["scheme"]] = 1e3 * row["decoder_seconds"]
    return times


def command_usage(model: str, policy: str) -> dict[str, float]:
    cmd = QGN + ["eval", "--threads", "1", "--model", model, "camvid", "--split", "val", "--limit", "40",
                 "--modes", "pc,all", "--json"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment(policy), cwd=ROOT)
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own usage, peak RSS included
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed with {child.returncode}")
    return {"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "minor_faults": usage.ru_minflt,
            "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="camvid")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    runs = {policy: {"decoder": [], "command": []} for policy in ("default", "tuned")}
    for i in range(args.rounds):
        for policy in ("default", "tuned"):
            runs[policy]["decoder"].append(decoder_times(args.model, policy))
            runs[policy]["command"].append(command_usage(args.model, policy))
            print(f"bench_allocator: round {i + 1}/{args.rounds} {policy} done", file=sys.stderr, flush=True)
    report = {"model": args.model, "rounds": args.rounds, "decoder_ms": {}, "command": {}}
    for policy, r in runs.items():
        report["decoder_ms"][policy] = {k: statistics.median(d[k] for d in r["decoder"]) for k in r["decoder"][0]}
        report["command"][policy] = {k: statistics.median(d[k] for d in r["command"]) for k in r["command"][0]}
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
        return 0
    d, c = report["decoder_ms"], report["command"]
    print(f"allocator policy, model {args.model}, median of {args.rounds} alternating rounds (fresh process each)")
    print(f"decoder at the working size, CPU ms   {'default':>9}{'tuned':>9}{'tuned/default':>15}")
    for scheme in d["default"]:
        print(f"  {scheme:<36}{d['default'][scheme]:>9.1f}{d['tuned'][scheme]:>9.1f}"
              f"{d['tuned'][scheme] / d['default'][scheme]:>15.2f}")
    print(f"qgn eval, 40 frames x (PC, All)       {'default':>9}{'tuned':>9}{'tuned/default':>15}")
    for key in ("wall_s", "user_s", "sys_s", "minor_faults", "peak_rss_mib"):
        print(f"  {key:<36}{c['default'][key]:>9.2f}{c['tuned'][key]:>9.2f}{c['tuned'][key] / c['default'][key]:>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
