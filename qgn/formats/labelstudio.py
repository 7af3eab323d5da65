"""``labelstudio``: a Label Studio tasks JSON (``tasks.json``) with one ``brushlabels`` result per
class region per image, as Label Studio exports brush annotations.

Each task: ``{"id", "data": {"image": <file name>}, "annotations": [{"id", "result": [...]}]}``; each
result: ``{"id", "type": "brushlabels", "from_name": "tag", "to_name": "image", "origin": "manual",
"image_rotation": 0, "original_width": W, "original_height": H, "value": {"format": "rle", "rle":
[...], "brushlabels": [name]}}`` (label-studio-converter brush.py ``image2annotation``).

The RLE is Label Studio's (label-studio-converter brush.py ``encode_rle`` / ``decode_rle``, from
thi.ng rle-pack): the mask as an RGBA image flattened row-major, each pixel's value repeated in the
4 channels (``mask2rle``: ``np.repeat(array, 4)``), 255 inside; bits: 32-bit value count, 5-bit
word size - 1 (7), four 4-bit run-size classes - 1 (3, 4, 8, 16); then per run a flag bit (1 =
repeat), a 2-bit size class, the length - 1 in that many bits, and the 8-bit value. Readers take the
alpha channel (``[:, :, 3]``) > 0. Void pixels are in no result. Reading accepts the result
fields under ``value`` (export JSON) or at the top level (the converter's own format).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..classes import UNMATCHED, VOID, ClassSet, match_class_names, unmatched_message
from ..fileio import atomic_write_bytes
from .base import DEFAULT_LEVELS, DatasetWriter, ExportItem, Format, out_file

TASKS_FILE = "tasks.json"
RLE_SIZES = (3, 4, 8, 16)


def encode_ls_rle(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE bytes of a bool (H, W) mask (255 inside, RGBA repeated)."""
    flat = np.asarray(mask, bool).ravel()
    num = flat.size * 4
    bits = [f"{num:032b}", f"{8 - 1:05b}", "".join(f"{s - 1:04b}" for s in RLE_SIZES)]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [flat.size]))) * 4
    for start, length in zip(starts.tolist(), lengths.tolist()):
        value = f"{255 if flat[start] else 0:08b}"
        while length > 2**16:  # the longest run the 16-bit class holds
            bits.append("111" + f"{2**16 - 1:016b}" + value)
            length -= 2**16
        for klass, size in enumerate(RLE_SIZES):
            if length <= 2**size:
                bits.append("1" + f"{klass:02b}" + f"{length - 1:0{size}b}" + value)
                break
    text = "".join(bits)
    text += "0" * (8 - len(text) % 8)  # as the converter pads: always, up to a whole byte
    return [int(text[i:i + 8], 2) for i in range(0, len(text), 8)]


def decode_ls_rle(rle, source="Label Studio RLE", expected: int | None = None) -> np.ndarray:
    """The flat uint8 values of a Label Studio brush RLE (``decode_rle``); with ``expected``, the
    value count it claims must be that (checked before the values are allocated)."""
    try:
        data = np.asarray(rle, np.uint8)
        if data.ndim != 1 or any(int(v) != int(d) for v, d in zip(rle[:16], data[:16])):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{source}: 'rle' must be a list of bytes (0..255)") from None
    bits = "".join(np.unpackbits(data).astype(str).tolist())
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > len(bits):
            raise ValueError(f"{source}: the RLE ends early")
        value = int(bits[pos:pos + n], 2)
        pos += n
        return value

    num = read(32)
    if expected is not None and num != expected:
        raise ValueError(f"{source}: the RLE claims {num} values, not the {expected} of its size")
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, np.uint8)
    i = 0
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


def ls_mask(result: dict, source) -> np.ndarray:
    """bool (H, W) of one brushlabels result."""
    from .guards import claimed_size

    value = result.get("value", result)
    try:
        height, width = result["original_height"], result["original_width"]
        rle = value["rle"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: a brushlabels result needs rle, original_width and original_height") from None
    width, height = claimed_size(width, height, source, "brush result")  # before anything is allocated
    if not isinstance(rle, list):
        raise ValueError(f"{source}: 'rle' must be a list of bytes (0..255)")
    flat = decode_ls_rle(rle, source, expected=height * width * 4)
    if flat.size != height * width * 4:
        raise ValueError(f"{source}: the RLE holds {flat.size} values, not {height}×{width}×4")
    return flat.reshape(height, width, 4)[:, :, 3] > 0


class LabelStudioWriter(DatasetWriter):
    """Collects one task per image; ``finish`` writes tasks.json."""

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = DEFAULT_LEVELS):
        super().__init__(None, classes, out_dir, levels)
        self.tasks: list[dict] = []

    def add(self, item: ExportItem) -> list[Path]:
        task_id = len(self.tasks) + 1
        height, width = item.label.shape
        results = []
        for c in range(self.classes.num_classes):
            mask = item.label == c
            if mask.any():
                results.append({
                    "id": f"r{task_id}_{c}", "type": "brushlabels", "from_name": "tag", "to_name": "image",
                    "origin": "manual", "image_rotation": 0, "original_width": width, "original_height": height,
                    "value": {"format": "rle", "rle": encode_ls_rle(mask), "brushlabels": [self.classes.names[c]]},
                })
        image = item.image.name if item.image is not None else f"{item.name}.png"
        self.tasks.append({"id": task_id, "data": {"image": image},
                           "annotations": [{"id": task_id, "result": results}]})
        return []

    def finish(self) -> list[Path]:
        path = out_file(self.out_dir, TASKS_FILE)
        atomic_write_bytes(path, json.dumps(self.tasks, separators=(",", ":")).encode("utf-8"))
        return [path]


def task_label(task: dict, classes: ClassSet, source, mapping=None) -> np.ndarray | None:
    """(H, W) int64 label of a task's first annotation (void where no brush), or None without results."""
    annotations = task.get("annotations") or task.get("completions") or []
    results = [r for a in annotations[:1] for r in a.get("result", [])
               if str(r.get("type", "")).lower() == "brushlabels"]
    if not results:
        return None
    if classes.ignore_index is None:
        raise ValueError(f"{source}: pixels without a brush are void, but the class set has no ignore value")
    names = [(r.get("value", r).get("brushlabels") or [""])[0] for r in results]
    ids = match_class_names(names, classes, mapping)
    label = None
    for result, name, value in zip(results, names, ids):
        if value == UNMATCHED:
            raise ValueError(unmatched_message(name, classes, source))
        mask = ls_mask(result, source)
        if label is None:
            label = np.full(mask.shape, classes.ignore_index, np.int64)
        elif mask.shape != label.shape:
            raise ValueError(f"{source}: brush results of one task differ in size")
        label[mask] = classes.ignore_index if value == VOID else value
    return label


FORMAT = Format("labelstudio", "Label Studio tasks JSON, brushlabels RLE per class region", ".json",
                None, None, LabelStudioWriter, image_names=True)
