"""Benchmark: writing and reading project.json of a big project, the layout before and after.

Setup: a project of --images tiny PNG files (one 8×6 image's bytes, as ``bench_open_project``), each
with its file noted (size and SHA-256, as after a save), saved once. Its document is then encoded
--repeats times each way, alternately: ``before`` = ``json.dumps(doc, indent=1)`` (the layout up to
this version: json's pure-Python encoder, as any ``indent`` takes), ``after`` =
``qgn.project_file.project_json_bytes(doc)`` (one image per line, json's C encoder). Also
``Project.open`` of the file in either layout (the reader is the same). Medians; the ratio before /
after is of the same run on the same machine.

    .venv/bin/python benchmarks/bench_project_json.py [--images 20000] [--repeats 7] [--json]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from qgn.classes import ClassSet
from qgn.project import Project, ProjectImage
from qgn.project_file import PROJECT_FILE, project_json_bytes


def make_project(root: Path, images: Path, count: int) -> Project:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 120, 40)).save(buffer, format="PNG")
    data = buffer.getvalue()
    note = (len(data), hashlib.sha256(data).hexdigest())
    images.mkdir(parents=True)
    classes = ClassSet(("sky", "road", "car"), ((70, 130, 180), (128, 64, 128), (0, 0, 142)), 255)
    project = Project.create(root, [], classes)
    for i in range(count):
        path = images / f"img_{i:05d}.png"
        path.write_bytes(data)
        project.images.append(ProjectImage(path.resolve(), path.stem, done=i % 3 == 0, file=note, added=time.time()))
    project.save()
    return project


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        make_project(root, Path(tmp) / "images", args.images)
        doc = json.loads((root / PROJECT_FILE).read_bytes())
        old = (json.dumps(doc, indent=1) + "\n").encode("utf-8")
        new = project_json_bytes(doc)
        assert json.loads(old) == json.loads(new) == doc
        runs: dict[str, list[float]] = {"write_before": [], "write_after": [], "open_before": [], "open_after": []}
        for _ in range(args.repeats):
            runs["write_before"].append(timed(lambda: (json.dumps(doc, indent=1) + "\n").encode("utf-8")))
            runs["write_after"].append(timed(lambda: project_json_bytes(doc)))
            for name, data in (("open_before", old), ("open_after", new)):
                (root / PROJECT_FILE).write_bytes(data)
                runs[name].append(timed(lambda: Project.open(root)))
    med = {name: statistics.median(v) for name, v in runs.items()}
    report = {"images": args.images, "repeats": args.repeats, "bytes_before": len(old), "bytes_after": len(new),
              **{f"{name}_s": round(m, 4) for name, m in med.items()},
              "write_before_vs_after": round(med["write_before"] / med["write_after"], 2),
              "open_before_vs_after": round(med["open_before"] / med["open_after"], 2)}
    if args.json:
        report["provenance"] = record
        print(json.dumps(report, indent=1))
    else:
        print(f"project.json of {args.images} images, median of {args.repeats}: encode {med['write_before']:.4f} s "
              f"before (indent=1, {len(old)} bytes), {med['write_after']:.4f} s after (one image a line, "
              f"{len(new)} bytes): {report['write_before_vs_after']}x; Project.open {med['open_before']:.4f} s / "
              f"{med['open_after']:.4f} s ({report['open_before_vs_after']}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
