"""Round trip through a real Label Studio on a folder of labelled images (e.g. CamVid val): our
export → Label Studio's import → its BRUSH_TO_PNG, JSON and JSON-MIN exports → compared pixel by
pixel with the labels we exported, and the time each step took.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_labelstudio_roundtrip.py \
        --images ../shared/data/camvid/val/images --labels ../shared/data/camvid/val/labels \
        --classes resources/palettes/camvid.txt [--venv ~/.cache/qgn/label-studio-1.23.2]

Label Studio runs on 127.0.0.1 with a scratch data folder and the export folder as its Local Files
document root (as the README says a user starts it); it is stopped at the end. Prints JSON.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

TOKEN = "0123456789abcdef0123456789abcdef01234567"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--classes", required=True)
    parser.add_argument("--venv", default=str(Path.home() / ".cache" / "qgn" / "label-studio-1.23.2"))
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    from qgn.bench.provenance import provenance
    from qgn.formats import ExportItem, export_dataset
    from qgn.quadtree.label_io import read_classes_file, read_label

    record = provenance()  # the commit, torch, threads, machine, command: as the run starts
    classes = read_classes_file(args.classes)
    images = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg"))
    labels = {p.stem: read_label(Path(args.labels) / f"{p.stem}.png") for p in images}
    scratch = Path(tempfile.mkdtemp(prefix="qgn-ls-roundtrip-"))
    t0 = time.perf_counter()
    export_dataset([ExportItem(p.stem, labels[p.stem], p) for p in images], classes, scratch, ["labelstudio"])
    root = scratch / "labelstudio"
    times = {"export_s": time.perf_counter() - t0}
    process, url = _start_label_studio(args.venv, root, scratch)
    call = _caller(url)
    try:
        t0 = time.perf_counter()
        _wait_until_healthy(url)
        times["label_studio_start_s"] = time.perf_counter() - t0
        project = call("POST", "/api/projects", {"title": "round trip",
                                                 "label_config": (root / "label_config.xml").read_text()})["id"]
        call("POST", "/api/storages/localfiles", {"project": project, "path": str(root / "images"), "title": "images"})
        tasks = json.loads((root / "tasks.json").read_text())
        t0 = time.perf_counter()
        imported = call("POST", f"/api/projects/{project}/import", tasks)
        times["import_s"] = time.perf_counter() - t0
        served = sum(call("GET", t["data"]["image"], raw=True) == (root / "images" / t["data"]["image"].rsplit("/", 1)[1]
                                                                   ).read_bytes() for t in tasks)
        counts = call("GET", f"/api/projects/{project}")
        by_id = {t["id"]: t["data"]["image"].rsplit("/", 1)[1].rsplit(".", 1)[0]
                 for t in call("GET", f"/api/projects/{project}/export?exportType=JSON")}
        t0 = time.perf_counter()
        brush = zipfile.ZipFile(io.BytesIO(call("GET", f"/api/projects/{project}/export?exportType=BRUSH_TO_PNG",
                                                raw=True)))
        times["brush_to_png_export_s"] = time.perf_counter() - t0
        bad_png = _brush_mismatched_pixels(brush, by_id, classes, labels)
        results = _read_exports_back(call, project, scratch, root, classes, labels)
        print(json.dumps({
            "frames": len(images), "imported_tasks": imported["task_count"],
            "imported_annotations": imported["annotation_count"], "images_served_identical": served,
            "dashboard_annotated_tasks": counts["num_tasks_with_annotations"],
            "ground_truth_annotations": counts["ground_truth_number"],
            "brush_to_png_masks": len(brush.namelist()), "brush_to_png_mismatched_pixels": bad_png,
            "qgn_import": results, **{k: round(v, 2) for k, v in times.items()},
            "provenance": record,  # the commit, torch, threads, machine, command: as the run started
        }, indent=1))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def _start_label_studio(venv: str, root: Path, scratch: Path):
    """Start the Label Studio of ``venv`` on a free local port, serving the files under ``root``, its
    data and log in ``scratch``; (the process, its URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(root),
           "LATEST_VERSION_CHECK": "false"}
    (scratch / "data").mkdir()
    log = open(scratch / "ls.log", "wb")
    process = subprocess.Popen([f"{venv}/bin/label-studio", "start", "--no-browser", "--internal-host",
                                "127.0.0.1", "-p", str(port), "--data-dir", str(scratch / "data"), "--username",
                                "qgn@example.com", "--password", "qgn-bench-pass", "--user-token", TOKEN,
                                "--enable-legacy-api-token"], cwd=scratch / "data", env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def _caller(url: str):
    """``call(method, path, body=None, raw=False)``: one request to the Label Studio at ``url`` (its
    JSON answer, or the bytes with ``raw``)."""
    def call(method, path, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url + path, data, {"Authorization": f"Token {TOKEN}",
                                                            "Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(request, timeout=1800) as response:
            content = response.read()
            return content if raw else json.loads(content or b"null")
    return call


def _wait_until_healthy(url: str) -> None:
    """Return once the Label Studio at ``url`` answers ``/health`` with a success status, asking once a
    second (a refused connection, a timeout or an error status is asked again); there is no time limit."""
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            time.sleep(1)


def _brush_mismatched_pixels(brush: zipfile.ZipFile, by_id: dict, classes, labels: dict) -> int:
    """The pixels of Label Studio's BRUSH_TO_PNG masks (one per task and class) that differ from ``labels``."""
    bad_png = 0
    for name in brush.namelist():
        stem = by_id[int(name.split("-")[1])]
        klass = name.split("-tag-", 1)[1].rsplit("-", 1)[0]
        mask = np.asarray(Image.open(io.BytesIO(brush.read(name)))) > 0
        ids = [i for i, n in enumerate(classes.names) if n.replace("/", "-").replace("\\", "-") == klass]
        bad_png += int((mask != (labels[stem] == ids[0])).sum())  # Label Studio writes '/' as '-' in names
    return bad_png


def _read_exports_back(call, project: int, scratch: Path, root: Path, classes, labels: dict) -> dict:
    """Label Studio's JSON and JSON_MIN exports of ``project`` read by qgn: {kind: frames, mismatched
    pixels against ``labels``, warnings, seconds}."""
    from qgn.formats import scan_dataset

    results = {}
    for kind in ("JSON", "JSON_MIN"):
        path = scratch / f"{kind}.json"
        path.write_bytes(call("GET", f"/api/projects/{project}/export?exportType={kind}", raw=True))
        t0 = time.perf_counter()
        dataset = scan_dataset(path, images=root / "images")
        bad = sum(int((item.read(classes) != labels[item.name]).sum()) for item in dataset.items)
        results[kind] = {"frames": len(dataset.items), "mismatched_pixels": bad, "warnings": dataset.warnings,
                         "qgn_read_s": round(time.perf_counter() - t0, 2)}
    return results


if __name__ == "__main__":
    main()
