"""Generators of hostile import inputs, shared by tests/formats/test_hostile_inputs.py and
benchmarks/bench_hostile_inputs.py: for each import format a small *valid* dataset (so that a
mutation, not a missing file, is what the reader meets) and mutations of its documents."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from qgn.classes import ClassSet
from qgn.formats import ExportItem, export_dataset
from sample_files import qgt_claiming

SIZE = (12, 8)  # (width, height) of every image
NAMES = ("sky", "road", "car")


def image(path: Path, size=SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 90, 90)).save(path)
    return path


def coco_doc() -> dict:
    w, h = SIZE
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": w, "height": h},
                   {"id": 2, "file_name": "b.png", "width": w, "height": h}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[0.0, 0.0, 11.0, 0.0, 11.0, 3.0, 0.0, 3.0]]},
            {"id": 2, "image_id": 2, "category_id": 2, "iscrowd": 0,
             "segmentation": {"size": [h, w], "counts": [0, w * h]}},
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)],
    }


def labelme_doc(name: str = "a") -> dict:
    w, h = SIZE
    return {"version": "5.5.0", "flags": {}, "imagePath": f"{name}.png", "imageData": None,
            "imageHeight": h, "imageWidth": w,
            "shapes": [{"label": "sky", "points": [[0, 0], [11, 0], [11, 3], [0, 3]], "shape_type": "polygon",
                        "group_id": None, "flags": {}},
                       {"label": "road", "points": [[0, 4], [11, 7]], "shape_type": "rectangle",
                        "group_id": None, "flags": {}}]}


def labelstudio_doc() -> list:
    from qgn.formats.labelstudio import encode_ls_rle

    w, h = SIZE
    mask = np.zeros((h, w), bool)
    mask[:4] = True
    result = {"id": "r1", "type": "brushlabels", "from_name": "tag", "to_name": "image", "original_width": w,
              "original_height": h, "value": {"format": "rle", "rle": encode_ls_rle(mask), "brushlabels": ["sky"]}}
    return [{"id": 1, "data": {"image": "a.png"}, "annotations": [{"id": 1, "result": [result]}]}]


def write_json_dataset(root: Path, fmt: str, doc) -> Path:
    """A dataset folder of ``fmt`` (coco, labelme, labelstudio) with ``doc`` as its document
    (written with NaN/Infinity where the mutation put them) and the images it names."""
    root.mkdir(parents=True, exist_ok=True)
    image(root / "images" / "a.png")
    image(root / "images" / "b.png")
    text = json.dumps(doc, allow_nan=True)
    if fmt == "coco":
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / "instances_default.json").write_text(text)
    elif fmt == "labelme":
        image(root / "a.png")
        (root / "a.json").write_text(text)
    else:
        (root / "tasks.json").write_text(text)
        image(root / "a.png")
    return root


def write_text_dataset(root: Path, fmt: str, text: str) -> Path:
    """A dataset of ``fmt`` (cvat, camvid, cityscapes, ids) whose label map file holds ``text``."""
    w, h = SIZE
    root.mkdir(parents=True, exist_ok=True)
    if fmt == "cvat":
        (root / "labelmap.txt").write_text(text)
        mask = np.zeros((h, w, 3), np.uint8)
        mask[:4] = (128, 128, 128)
        (root / "SegmentationClass").mkdir(exist_ok=True)
        Image.fromarray(mask, "RGB").save(root / "SegmentationClass" / "a.png")
        image(root / "JPEGImages" / "a.png")
    elif fmt == "camvid":
        (root / "label_colors.txt").write_text(text)
        (root / "default.txt").write_text("/default/a.png /defaultannot/a.png\n")
        mask = np.zeros((h, w, 3), np.uint8)
        mask[:4] = (128, 128, 128)
        (root / "defaultannot").mkdir(exist_ok=True)
        Image.fromarray(mask, "RGB").save(root / "defaultannot" / "a.png")
        image(root / "default" / "a.png")
    elif fmt == "cityscapes":
        (root / "label_colors.txt").write_text(text)
        gt = root / "gtFine" / "default" / "x"
        gt.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ones((h, w), np.uint8), "L").save(gt / "a_gtFine_labelIds.png")
        image(root / "leftImg8bit" / "default" / "x" / "a_leftImg8bit.png")
    else:  # ids
        (root / "labels").mkdir(exist_ok=True)
        (root / "classes.txt").write_text(text)
        Image.fromarray(np.zeros((h, w), np.uint8), "L").save(root / "labels" / "a.png")
        image(root / "images" / "a.png")
    return root


VALID_TEXT = {
    "cvat": "# label:color_rgb:parts:actions\nbackground:0,0,0::\nsky:128,128,128::\nroad:128,64,128::\n",
    "camvid": "0 0 0 background\n128 128 128 sky\n128 64 128 road\n",
    "cityscapes": "0 0 0 background\n128 128 128 sky\n128 64 128 road\n",
    "ids": "sky\nroad\ncar\n",
}
TEXT_SOURCE = {"cvat": lambda r: r, "camvid": lambda r: r, "cityscapes": lambda r: r, "ids": lambda r: r / "labels"}


def json_paths(doc, prefix=()):
    """Every (path to a value) in a JSON document, the root excluded."""
    found = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found.append(prefix + (k,))
            found += json_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found.append(prefix + (i,))
            found += json_paths(v, prefix + (i,))
    return found


def mutate(doc, path, value, delete: bool = False):
    """A copy of ``doc`` with the value at ``path`` replaced by ``value`` (or deleted)."""
    doc = json.loads(json.dumps(doc, allow_nan=True))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


HOSTILE_VALUES = [None, True, False, 0, -1, 1.5, 2**31, 2**64, -(2**63), 1e308, float("nan"), float("inf"),
                  float("-inf"), "", "x", "../../etc/passwd", "/etc/passwd", "NaN", [], [1], [[]], {}, {"a": 1},
                  50000, 20000, [50000, 50000], "\u0000", "a" * 300]


# ---------------------------------------------------------------------------------------- claimed sizes
def claimed_size_cases(base: Path) -> dict[str, list[str]]:
    """{case name: qgn command line} of the claimed-size findings, built under ``base``."""
    cases: dict[str, list[str]] = {}
    w, h = SIZE
    # COCO: an 886-byte file claiming 20000×20000 for a 12×8 image.
    doc = coco_doc()
    for entry in doc["images"]:
        entry["width"] = entry["height"] = 20000
    root = write_json_dataset(base / "coco-size", "coco", doc)
    cases["coco image 20000x20000"] = ["import", str(root), "--project", str(base / "p1")]
    # COCO: within the pixel limit, but not the image's size (checked before allocating).
    doc = coco_doc()
    doc["images"][0]["width"] = doc["images"][0]["height"] = 8000
    root = write_json_dataset(base / "coco-mismatch", "coco", doc)
    cases["coco image 8000x8000 for a 12x8 photo"] = ["import", str(root), "--project", str(base / "p2")]
    # COCO RLE of 50000² in a 905-byte file.
    doc = coco_doc()
    doc["annotations"][1]["segmentation"] = {"size": [50000, 50000], "counts": [0, 2500000000]}
    root = write_json_dataset(base / "coco-rle", "coco", doc)
    cases["coco RLE 50000x50000"] = ["import", str(root), "--project", str(base / "p3")]
    # labelme claiming 20000×20000.
    doc = labelme_doc()
    doc["imageHeight"] = doc["imageWidth"] = 20000
    root = write_json_dataset(base / "labelme-size", "labelme", doc)
    cases["labelme image 20000x20000"] = ["import", str(root), "--project", str(base / "p4")]
    # labelme: 160k random vertices on a 500×500 image (super-linear fill).
    rng = np.random.default_rng(0)
    doc = labelme_doc()
    doc["imageHeight"] = doc["imageWidth"] = 500
    doc["shapes"] = [{"label": "sky", "shape_type": "polygon",
                      "points": rng.uniform(0, 500, (160_000, 2)).round(1).tolist()}]
    root = write_json_dataset(base / "labelme-poly", "labelme", doc)
    image(root / "a.png", (500, 500))
    cases["labelme polygon of 160k vertices"] = ["import", str(root), "--project", str(base / "p5")]
    # Label Studio: a brush result claiming 50000×50000 and an RLE claiming 4 G values.
    doc = labelstudio_doc()
    result = doc[0]["annotations"][0]["result"][0]
    result["original_width"] = result["original_height"] = 50000
    result["value"]["rle"] = [255, 255, 255, 255] + result["value"]["rle"][4:]
    root = write_json_dataset(base / "ls-size", "labelstudio", doc)
    cases["labelstudio RLE 50000x50000"] = ["import", str(root / "tasks.json"), "--project", str(base / "p6")]
    # A labelme folder holding a 3 GiB JSON beside a good file: telling labelme files apart read
    # it whole (6.3 GB peak); now it is an item reported as skipped.
    root = write_json_dataset(base / "labelme-big-json", "labelme", labelme_doc())
    (root / "zz_big.json").write_text("{}")
    os.truncate(root / "zz_big.json", 3 << 30)
    cases["labelme folder with a 3 GiB JSON"] = ["import", str(root), "--project", str(base / "p-labelme-big")]
    # A 2 GiB file that is no .qgt given to `qgn export` (read whole before its magic number).
    other = base / "not-a-qgt.qgt"
    other.write_bytes(b"PK\x03\x04")
    os.truncate(other, 2 << 30)
    cases["2 GiB non-.qgt file -> png"] = ["export", str(other), "--png", str(base / "not-a-qgt.png")]
    # Class lists and label maps of 1 GiB (sparse: NUL bytes after valid lines), read whole before.
    big = 1 << 30
    for fmt, name in (("ids", "classes.txt"), ("cvat", "labelmap.txt"), ("camvid", "label_colors.txt")):
        root = write_text_dataset(base / f"{fmt}-big-list", fmt, VALID_TEXT[fmt])
        os.truncate(root / name, big)
        cases[f"{fmt} {name} of 1 GiB"] = ["import", str(TEXT_SOURCE[fmt](root)), "--project", str(base / f"p-{fmt}")]
    # FiftyOne: mask targets of 1 GiB (its own bound: a few MB).
    image(base / "fo-photo" / "a.png", SIZE)
    export_dataset([ExportItem("a", np.zeros(SIZE[::-1], np.uint8), base / "fo-photo" / "a.png")],
                   ClassSet.generic(2, 255), base / "fo", ["fiftyone"], images="copy")
    os.truncate(base / "fo" / "fiftyone" / "mask_targets.json", big)
    cases["fiftyone mask_targets.json of 1 GiB"] = ["import", str(base / "fo" / "fiftyone"), "--project",
                                                    str(base / "p-fo")]
    classes = base / "big-classes.txt"
    classes.write_text(VALID_TEXT["ids"])
    os.truncate(classes, big)
    labels = write_text_dataset(base / "ids-labels", "ids", VALID_TEXT["ids"]) / "labels"
    cases["qgn convert --classes of 1 GiB"] = ["convert", str(labels / "a.png"), str(base / "a.qgt"), "--classes",
                                               str(classes)]
    cases["qgn stats --classes of 1 GiB"] = ["stats", str(labels), "--classes", str(classes)]
    # .qgt: 25 bytes claiming 16384×8192, exported as PNG; and 11585² (just under the old bound).
    for name, (qw, qh) in {"qgt 16384x8192": (16384, 8192), "qgt 11585x11585": (11585, 11585)}.items():
        path = base / f"{name.replace(' ', '-')}.qgt"
        path.write_bytes(qgt_claiming(qw, qh))
        cases[f"{name} -> png"] = ["export", str(path), "--png", str(base / f"{path.stem}.png")]
    # .qgt: a valid 64×48 file followed by 2 GiB (read whole before its length was checked).
    path = base / "qgt-then-2GiB.qgt"
    path.write_bytes(qgt_claiming(64, 48))
    os.truncate(path, 2 << 30)
    cases["valid .qgt header then 2 GiB -> png"] = ["export", str(path), "--png", str(base / "qgt-then-2GiB.png")]
    return cases


def honest_baseline_case(base: Path) -> list[str]:
    """An honest import of the same small size: the baseline the claimed-size peaks compare with."""
    root = write_json_dataset(base / "coco-honest", "coco", coco_doc())
    return ["import", str(root), "--project", str(base / "p0")]


PEAK_SCRIPT = """
import resource, sys
from qgn.cli.main import main
code = main(sys.argv[1:])
sys.stderr.flush()
try:  # this process's own high-water mark (ru_maxrss would include the parent's, inherited at exec)
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("PEAK_KB", code, peak, flush=True)
"""


def run_measured(args: list[str], env: dict, timeout: float = 120.0) -> tuple[int, int, str, float]:
    """(exit code, peak resident KB, stderr, seconds) of ``qgn ARGS`` in a fresh interpreter."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    seconds = time.perf_counter() - start
    line = [l for l in proc.stdout.splitlines() if l.startswith("PEAK_KB")]
    if not line:
        return proc.returncode, -1, proc.stderr + proc.stdout, seconds
    _, code, peak = line[-1].split()
    return int(code), int(peak), proc.stderr, seconds
