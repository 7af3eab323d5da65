"""A large photo end to end with `qgn predict`: the working-scale path against full-resolution PC
and full-resolution All, each in its own process (so peak memory is that run's alone).

The photo: a CamVid val frame (``--frame``, from ``--data``) upscaled to ``--size`` (default
3840×2880, 8× CamVid's side), bilinear, saved as PNG; without CamVid a synthetic scene. Each
candidate is ``qgn predict --threads 1 --model M PHOTO --json --out DIR`` with
``--resolution working --scheme pc``, ``--resolution native --scheme pc`` and ``--resolution
native --scheme all``, timed by /usr/bin/time -v (wall and user+system CPU seconds, maximum
resident set size) and run round-robin ``--repeats`` times; medians are reported, with the
network's own decoder and encoder seconds and the active sites from the JSON record. Writing the
outputs (PNG + .qgt at full size) is part of the run, as a user's run would.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_full_resolution.py [--model camvid] [--repeats 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

CANDIDATES = {
    "working PC": ["--resolution", "working", "--scheme", "pc"],
    "native PC": ["--resolution", "native", "--scheme", "pc"],
    "native All": ["--resolution", "native", "--scheme", "all"],
}


def make_photo(path: Path, size: tuple[int, int], data: str, frame: int) -> str:
    from qgn.data.transforms import resize_image

    w, h = size
    try:
        from qgn.data.registry import open_dataset

        sample = open_dataset(data, "val")[frame]
        source = f"{data} val frame {frame} ({sample.name})"
    except Exception:
        from qgn.data.synthetic import make_scene

        image, _ = make_scene(frame, 360, 480)
        sample, source = None, f"synthetic scene {frame}"
    image = resize_image(sample.image if sample is not None else image, (h, w))
    Image.fromarray(image).save(path)
    return source


def run_once(args, photo: Path, out: Path, extra: list[str]) -> dict:
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "qgn", "predict", "--threads", "1", "--model", args.model,
               str(photo), "--json", "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    record = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", done.stderr).group(1).strip()

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    seconds = sum(float(v) * 60 ** i for i, v in enumerate(reversed(wall)))
    return {"wall_s": seconds, "cpu_s": float(field("User time (seconds)")) + float(field("System time (seconds)")),
            "peak_rss_mib": int(field("Maximum resident set size (kbytes)")) / 1024,
            "network_s": record["seconds"], "sites": sum(record["active_sites"].values()),
            "decoder_gmacs": record["decoder_macs"] / 1e9, "working_size": record.get("working_size")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="camvid")
    parser.add_argument("--size", default="3840x2880")
    parser.add_argument("--data", default="camvid")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    size = tuple(int(v) for v in args.size.lower().split("x"))
    runs: dict[str, list[dict]] = {name: [] for name in CANDIDATES}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = tmp / "photo.png"
        source = make_photo(photo, size, args.data, args.frame)
        for _ in range(args.repeats):
            for name, extra in CANDIDATES.items():
                runs[name].append(run_once(args, photo, tmp / name.replace(" ", "-"), extra))
    report = {"model": args.model, "photo": f"{size[0]}x{size[1]} from {source}", "repeats": args.repeats,
              "candidates": {}}
    for name, rows in runs.items():
        report["candidates"][name] = {key: (statistics.median(r[key] for r in rows) if isinstance(rows[0][key], float)
                                            else rows[0][key]) for key in rows[0]}
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
        return 0
    print(f"qgn predict on a {report['photo']}, model {args.model}, --threads 1, median of {args.repeats} "
          f"round-robin runs (each a fresh process: import, model load, read, predict, write PNG + .qgt)")
    print(f"{'candidate':<12}{'network size':>14}{'sites':>11}{'dec GMAC':>10}{'network s':>11}{'wall s':>8}"
          f"{'CPU s':>8}{'peak MiB':>10}")
    for name, r in report["candidates"].items():
        ws = "x".join(str(v) for v in reversed(r["working_size"])) if r["working_size"] else args.size
        print(f"{name:<12}{ws:>14}{r['sites']:>11,}{r['decoder_gmacs']:>10.2f}{r['network_s']:>11.2f}"
              f"{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}{r['peak_rss_mib']:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
