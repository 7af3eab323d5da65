"""``labelstudio``: Label Studio's tasks JSON — an export Label Studio opens as is, and an import of
its JSON / JSON-MIN exports that loses nothing silently.

Export (``LabelStudioWriter``) writes into the output folder::

    tasks.json         one task per image (below)
    label_config.xml   the project's labelling config: <Image name="image" value="$image"/> and
                       <BrushLabels name="tag" toName="image"> with one <Label value=NAME
                       background="#rrggbb"/> per class — the names the tasks use (``label_config``)
    images/<name>      each image, copied byte for byte

Each task: ``{"id", "data": {"image": "/data/local-files/?d=images/<name>"}, "annotations":
[{"result": [...], "ground_truth": false, "was_cancelled": false}]}``. The image reference is Label
Studio's Local Files address (label_studio/io_storages/localfiles/views.py ``localfiles_data``:
``?d=`` is a path under ``LOCAL_FILES_DOCUMENT_ROOT``, served to users of a project that has a
Local Files storage whose path holds the file). Start Label Studio with
``LOCAL_FILES_SERVING_ENABLED=true LOCAL_FILES_DOCUMENT_ROOT=<the export folder>`` and add a Local
Files storage with the path ``<the export folder>/images`` — no task needs rewriting. Another
``image_prefix`` (an http:// folder the images are served from) replaces ``/data/local-files/?d=images/``.
``"ground_truth": false`` keeps Label Studio counting the annotations (it leaves ground truth out
of the dashboard's count of annotated tasks).

Each result is one class region: ``{"id", "type": "brushlabels", "from_name": "tag", "to_name":
"image", "origin": "manual", "image_rotation": 0, "original_width": W, "original_height": H,
"value": {"format": "rle", "rle": [...], "brushlabels": [name]}}`` (label-studio-converter brush.py
``image2annotation``). The RLE is Label Studio's (brush.py ``encode_rle`` / ``decode_rle``, from
thi.ng rle-pack): the mask as an RGBA image flattened row-major, each pixel's value repeated in the
4 channels (``mask2rle``: ``np.repeat(array, 4)``), 255 inside; bits: 32-bit value count, 5-bit
word size - 1 (7), four 4-bit run-size classes - 1 (3, 4, 8, 16); then per run a flag bit (1 =
repeat), a 2-bit size class, the length - 1 in that many bits, and the 8-bit value. Readers take the
alpha channel (``[:, :, 3]``) > 0. Void pixels are in no result.

Import (``read_tasks_file``, ``choose_annotation``, ``annotation_label``):

- the file is Label Studio's JSON export (a list of tasks with ``annotations``, also the older
  ``completions``), or its JSON-MIN export (one flat record per annotation: the task's data keys,
  ``id``, ``annotation_id``, and per control tag a list of region values — read by
  ``tasks_from_json_min``); anything else is refused naming what it is;
- skipped (``was_cancelled``) annotations are passed over. Of several annotations the **latest**
  (``created_at``, then ``updated_at``, then id) is taken — label-studio-converter's order
  (converter.py ``annotation_result_from_task`` sorts by ``created_at``, newest first) — and every
  task where others were set aside is named in a warning;
- a task with no annotation (nothing, or predictions only) or only skipped ones is reported as
  such and not imported; it is no error;
- an annotation submitted with no result at all (``"result": []``, not skipped) is an image looked
  at and found to hold nothing to label: it imports as a map all void, of the image's size (its
  results would have said the size; there are none). An annotation whose results are all of other
  kinds (choices, text …) is about something else: reported and not imported. JSON-MIN writes a
  single choice or text as a plain field beside the task's data: an annotation with no region and
  such a field is reported and not imported (it may be one about something else, never an all-void
  map over an existing one); the ``label_config.xml`` beside the file says which fields are data;
- results of type ``brushlabels``, ``polygonlabels`` and ``rectanglelabels`` (by their value's
  label key, so JSON-MIN's type-less regions read too) are painted in file order, later on top;
  pixels in no region are void. Polygons and rectangles are in percent of the image (0 … 100 over
  its whole extent): label-studio-converter maps them to pixels as ``x / 100 * original_width``,
  ``y / 100 * original_height`` (converter.py ``convert_to_coco``); a pixel is inside when its
  centre ``(col + 0.5, row + 0.5)`` lies inside the shape (even-odd rule, ``polygon_mask``). A
  rectangle's ``rotation`` (degrees, clockwise on screen, about its top-left corner) turns it into a
  four-cornered polygon. Other results (choices, keypoints, text) carry no pixels and are counted in
  a warning.
"""
from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np

from ..classes import (UNMATCHED, VOID, ClassSet, check_class_name, check_class_names, match_class_names,
                       parse_hex_colour, unmatched_message)
from ..fileio import atomic_write_bytes
from ..quadtree import NUM_LEVELS
from .base import DatasetWriter, ExportItem, Format, as_label, out_file, place_image
from .guards import (check_polygon_work, check_vertices, claimed_size, finite, is_contained, load_json, need,
                     polygon_work)
from .source import (
    SourceDataset, SourceItem, broken_item, classes_from_names, file_classes_of, find_image, is_file,
    void_value,
)

TASKS_FILE = "tasks.json"
CONFIG_FILE = "label_config.xml"
IMAGES_DIR = "images"
IMAGE_KEY = "image"  # data key of the tasks, value="$image" in the config
FROM_NAME = "tag"  # the BrushLabels control's name
TO_NAME = "image"  # the Image object's name
LOCAL_FILES_PREFIX = "/data/local-files/?d="
DEFAULT_IMAGE_PREFIX = f"{LOCAL_FILES_PREFIX}{IMAGES_DIR}/"
RLE_SIZES = (3, 4, 8, 16)
REGION_KINDS = ("brushlabels", "polygonlabels", "rectanglelabels")


# ------------------------------------------------------------------------------------------ brush RLE
def encode_ls_rle(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE bytes of a bool (H, W) mask (255 inside, RGBA repeated).

    Every run is written as a repeat record (flag 1) in the smallest size class that holds it
    (runs longer than 2**16 values as several), as label-studio-converter's ``encode_rle`` does."""
    flat = np.asarray(mask, bool).ravel()
    num = flat.size * 4
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [flat.size]))).astype(np.int64) * 4
    values = np.where(flat[starts], 255, 0).astype(np.int64)
    pieces = -(-lengths // 2**16)  # runs longer than the 16-bit class holds are split
    values = np.repeat(values, pieces)
    first = np.cumsum(pieces) - pieces
    lengths = np.repeat(lengths, pieces)
    offset = np.arange(len(lengths)) - np.repeat(first, pieces)
    lengths = np.where(offset < np.repeat(pieces, pieces) - 1, 2**16, lengths - (np.repeat(pieces, pieces) - 1) * 2**16)
    sizes = np.asarray(RLE_SIZES)
    klass = np.searchsorted(2**sizes, lengths)  # the first class whose 2**size holds the run
    width = 1 + 2 + sizes[klass] + 8
    code = (1 << (width - 1)) | (klass << (sizes[klass] + 8)) | ((lengths - 1) << 8) | values
    shifts = width[:, None] - 1 - np.arange(27)[None, :]
    bits = ((code[:, None] >> np.maximum(shifts, 0)) & 1)[shifts >= 0].astype(np.uint8)
    header = f"{num:032b}{8 - 1:05b}" + "".join(f"{s - 1:04b}" for s in RLE_SIZES)
    bits = np.concatenate((np.frombuffer(header.encode(), np.uint8) - ord("0"), bits,
                           np.zeros(8 - (len(header) + len(bits)) % 8, np.uint8)))  # padded as the converter: always
    return np.packbits(bits).tolist()


def decode_ls_rle(rle, source="Label Studio RLE", expected: int | None = None) -> np.ndarray:
    """The flat uint8 values of a Label Studio brush RLE (``decode_rle``); with ``expected``, the
    value count it claims must be that (checked before the values are allocated).

    The runs are found by following each run's length from the first (``_runs``: each window of
    the stream read at once, then one step a run in a tight loop) and their values are read all at
    once: the converter writes every value that does not repeat as a run of its own, ~3 runs a pixel
    of a coloured region, which a run at a time cost 1.8 s for one 960×720 region."""
    try:
        data = np.asarray(rle, np.uint8)
        if data.ndim != 1 or any(int(v) != int(d) for v, d in zip(rle[:16], data[:16])):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{source}: 'rle' must be a list of bytes (0..255)") from None
    length = data.size * 8
    if length < 53:
        raise ValueError(f"{source}: the RLE ends early")
    num = int.from_bytes(data[:4].tobytes(), "big")
    if expected is not None and num != expected:
        raise ValueError(f"{source}: the RLE claims {num} values, not the {expected} of its size")
    data = np.concatenate((data, np.zeros(4, np.uint8)))  # reads past the end see 0s
    word = int(_read_bits(data, np.array([32]), 5)[0]) + 1
    if word > 8:
        raise ValueError(f"{source}: the RLE's values are {word} bits wide; a brush mask's are 8")
    sizes = _read_bits(data, np.arange(37, 53, 4), 4) + 1
    starts, counts, repeat, head = _runs(data, length, num, word, sizes, source)
    out = np.repeat(_read_bits(data, head, word).astype(np.uint8), counts)
    literal = np.flatnonzero(~repeat & (counts > 1))
    if literal.size:  # every value of a run that does not repeat, read where it lies
        n = counts[literal]
        within = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        first = (np.cumsum(counts) - counts)[literal]
        out[np.repeat(first, n) + within] = _read_bits(data, np.repeat(head[literal], n) + within * word, word)
    return out


def _read_bits(data: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The unsigned ``width``-bit numbers (MSB first, ``width`` <= 25) starting at each bit position
    ``at`` of the bytes ``data`` (uint8, 4 bytes of padding at the end): int64."""
    byte = at >> 3
    window = np.zeros(byte.shape, np.int64)
    for k in range(4):  # the four bytes from the first, widened only where read
        window = (window << 8) | data[byte + k]
    return (window >> (32 - width - (at & 7))) & ((1 << width) - 1)


def _runs(data: np.ndarray, length: int, num: int, word: int, sizes: np.ndarray,
          source) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Of each run: (its bit position, the values it gives — the last cut at ``num`` —, whether it
    repeats one value, the bit position of its first value). Per window of 2**16 candidate
    positions, where a run starting there would end is computed for every position at once, then
    followed from the current run."""
    starts, counts, pos, done, window = [], [], 53, 0, 1 << 16
    while done < num:
        if pos >= length:
            raise ValueError(f"{source}: the RLE ends early")
        at = np.arange(pos, min(pos + window, length))
        fields = _read_bits(data, at, 19)  # flag, size class, 16 bits that begin the length
        size = sizes[(fields >> 16) & 3]
        count = ((fields & 0xFFFF) >> (16 - size)) + 1
        step = (3 + size + np.where(fields >> 18 == 1, word, count * word)).tolist()
        count = count.tolist()
        base, top, append, take = int(at[0]), len(step), starts.append, counts.append
        i = pos - base
        while i < top and done < num:
            append(pos)
            take(count[i])
            done += count[i]
            pos += step[i]
            i = pos - base
    starts, counts = np.asarray(starts, np.int64), np.asarray(counts, np.int64)
    if not num:
        return starts, counts, counts.astype(bool), starts
    counts[-1] -= done - num  # the last run may claim values past the count
    fields = _read_bits(data, starts, 3)
    repeat, head = fields >> 2 == 1, starts + 3 + sizes[fields & 3]
    if int((head + np.where(repeat, word, counts * word))[-1]) > length:
        raise ValueError(f"{source}: the RLE ends early")
    return starts, counts, repeat, head


# ------------------------------------------------------------------------------------------ export
# what XML 1.0 cannot hold, even as a character reference (its Char production)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_attribute(name: str) -> str:
    """``name`` as an attribute value that XML parsers read back as it is: a tab or line break
    written as a character reference (a parser makes a literal one a space); ValueError naming the
    class when XML cannot hold one of its characters at all."""
    bad = _NOT_XML.search(name)
    if bad:
        raise ValueError(f"Label Studio export: class name {name!r} holds {bad.group()!r}, which the labelling "
                         "config (XML) cannot hold; rename the class and export again")
    return html.escape(name, quote=True).replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def label_config(classes: ClassSet) -> str:
    """The labelling config (XML) of an export: an Image and a BrushLabels with every class, named
    as the tasks name them (``IMAGE_KEY``, ``FROM_NAME``, ``TO_NAME``)."""
    labels = "\n".join(
        f'    <Label value="{_xml_attribute(name)}" background="#{r:02x}{g:02x}{b:02x}"/>'
        for name, (r, g, b) in zip(classes.names, classes.palette))
    return (f'<View>\n  <Image name="{TO_NAME}" value="${IMAGE_KEY}" zoom="true" zoomControl="true"/>\n'
            f'  <BrushLabels name="{FROM_NAME}" toName="{TO_NAME}">\n{labels}\n  </BrushLabels>\n</View>\n')


def brush_results(label: np.ndarray, classes: ClassSet, prefix: str, from_name: str = FROM_NAME,
                  to_name: str = TO_NAME, names=None, origin: str = "manual") -> list[dict]:
    """One ``brushlabels`` result per class present in ``label`` (H, W); ``names[c]`` is the label
    text of class c (default: the class names)."""
    height, width = label.shape
    names = names or classes.names
    results = []
    for c in range(classes.num_classes):
        mask = label == c
        if mask.any():
            results.append({
                "id": f"{prefix}_{c}", "type": "brushlabels", "from_name": from_name, "to_name": to_name,
                "origin": origin, "image_rotation": 0, "original_width": width, "original_height": height,
                "value": {"format": "rle", "rle": encode_ls_rle(mask), "brushlabels": [names[c]]},
            })
    return results


class LabelStudioWriter(DatasetWriter):
    """Collects one task per image, copying each image into ``images/``; ``finish`` writes
    tasks.json and label_config.xml (see the module docstring)."""

    uses_images = True

    def __init__(self, classes: ClassSet, out_dir: Path, levels: int = NUM_LEVELS,
                 image_prefix: str = DEFAULT_IMAGE_PREFIX):
        super().__init__(None, classes, out_dir, levels)
        self.config = label_config(classes)  # a class name it cannot hold: refused before anything is written
        self.tasks: list[dict] = []
        self.image_prefix = image_prefix

    def add(self, item: ExportItem) -> list[Path]:
        if item.image is None or not Path(item.image).is_file():
            raise ValueError(f"{item.name}: no image to reference (Label Studio shows each task's image); "
                             "name the image folder (qgn export --images DIR)")
        task_id = len(self.tasks) + 1
        image_name = f"{item.name}{Path(item.image).suffix.lower()}"
        task = {"id": task_id, "data": {IMAGE_KEY: self.image_prefix + quote(image_name)},  # before the copy:
                "annotations": [{"result": brush_results(item.label, self.classes, f"r{task_id}"),  # a name or
                                 "ground_truth": False, "was_cancelled": False}]}  # label it fails on leaves none
        copy = place_image(Path(item.image), self.out_dir / IMAGES_DIR, image_name, "copy")
        self.tasks.append(task)
        return [copy]

    def mark(self):
        return len(self.tasks)

    def undo(self, mark, item: ExportItem, paths: list[Path]) -> None:
        super().undo(mark, item, paths)
        del self.tasks[mark:]

    def _keep_earlier(self, path: Path) -> None:
        """Append the tasks of the images ``keep`` named from the earlier export's ``path``, where
        their image copy is still in ``images/``, renumbered after this export's tasks (Label Studio
        takes a task's ``id`` as its identity)."""
        written = {Path(unquote(t["data"][IMAGE_KEY])).stem.lower() for t in self.tasks}
        wanted = self.kept_names() - written
        if not wanted or not path.is_file() or label_config(self.classes) != self._earlier_config():
            return  # the earlier tasks name labels of another class set
        try:
            earlier = load_json(path)
        except (OSError, ValueError):
            return  # no earlier index to keep tasks from
        for task in earlier if isinstance(earlier, list) else ():
            data = task.get("data") if isinstance(task, dict) else None
            reference = data.get(IMAGE_KEY) if isinstance(data, dict) else None
            if not isinstance(reference, str) or not reference.startswith(self.image_prefix):
                continue
            name = Path(unquote(reference[len(self.image_prefix):])).name
            if Path(name).stem.lower() in wanted and is_file(self.out_dir / IMAGES_DIR / name):
                wanted.discard(Path(name).stem.lower())
                self.tasks.append({**task, "id": len(self.tasks) + 1})

    def _earlier_config(self) -> str | None:
        path = self.out_dir / CONFIG_FILE
        try:
            return path.read_text(encoding="utf-8") if is_file(path) else None
        except (OSError, ValueError):
            return None

    def finish(self) -> list[Path]:
        path = out_file(self.out_dir, TASKS_FILE)
        self._keep_earlier(path)
        atomic_write_bytes(path, json.dumps(self.tasks, separators=(",", ":")).encode("utf-8"))
        config = out_file(self.out_dir, CONFIG_FILE)
        atomic_write_bytes(config, self.config.encode("utf-8"))
        return [path, config]


# ------------------------------------------------------------------------------------------ import
@dataclass
class LabelStudioTasks:
    """A Label Studio export read into tasks of the JSON layout.

    kind:  "json" or "json-min".
    tasks: dicts with ``id``, ``data`` and ``annotations`` (JSON-MIN records grouped by task)."""

    kind: str
    tasks: list[dict] = field(default_factory=list)


def is_json_min(doc: list) -> bool:
    """Whether a JSON list is Label Studio's JSON-MIN export (flat records, no ``data``/``annotations``)."""
    records = [t for t in doc if isinstance(t, dict)]
    return bool(records) and not any(k in t for t in records for k in ("data", "annotations", "completions",
                                                                         "predictions"))


#: Keys of a result value of a kind other than regions (choices, text, …), as JSON-MIN writes one
#: that is not reduced to a plain value (label_studio_sdk converter/utils.py ``prettify_result``).
OTHER_RESULT_KEYS = ("choices", "text", "rating", "number", "datetime", "taxonomy", "ranker", "labels",
                     "keypointlabels", "ellipselabels", "paragraphlabels", "timeserieslabels", "hypertextlabels")
UNSURE = "json_min_unsure"  # an annotation's fields that JSON-MIN does not say are data or a result


def tasks_from_json_min(records: list, source, config=None) -> list[dict]:
    """JSON-MIN records → tasks: a record's list-of-region values become results (``from_name`` =
    the key), ``annotation_id``/``created_at``/``updated_at`` its annotation's, other keys its data.

    JSON-MIN (label_studio_sdk converter.py ``convert_to_json_min``) writes every result of an
    annotation as a key of the record beside the task's data keys, and ``prettify_result`` reduces a
    single choice or text to a plain value (``"quality": "blurry"``): an annotation holding only
    that looks like an empty one with one more data field. So a field is a result of another kind
    when its value says so (an object or list of objects with ``choices``, ``text``, …) or the
    labelling ``config`` (``config_fields``: (data keys, control names)) names it a control; a field
    neither the image reference nor a data key of the config is listed under ``UNSURE`` in the
    annotation, which the import then leaves out when it has no region (``scan_labelstudio``)."""
    meta = {"id", "annotation_id", "annotator", "created_at", "updated_at", "lead_time", "agreement"}
    data_keys, controls = config if config is not None else (set(), set())
    tasks: dict = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"{source}: JSON-MIN record {index} is not an object")
        task_id = record.get("id", f"record {index}")
        task = tasks.setdefault(task_id, {"id": task_id, "data": {}, "annotations": []})
        results, unsure = [], []
        for key, value in record.items():
            if key in meta:
                continue
            regions = value if isinstance(value, list) else [value]
            if regions and all(isinstance(r, dict) and region_kind(r) for r in regions):
                results += [{"from_name": key, "type": region_kind(r), **{k: r[k] for k in
                             ("original_width", "original_height") if k in r}, "value": r} for r in regions]
            elif key in controls or (regions and all(isinstance(r, dict) and any(k in r for k in OTHER_RESULT_KEYS)
                                                     for r in regions)):
                results.append({"from_name": key, "type": "other", "value": {"json_min": value}})
            else:
                task["data"][key] = value
                if key not in data_keys:
                    unsure.append(key)
        if record.get("annotation_id") is not None or results:
            reference = next((k for k, v in task["data"].items() if v == image_reference(task)), None)
            task["annotations"].append({"id": record.get("annotation_id"), "created_at": record.get("created_at"),
                                        "updated_at": record.get("updated_at"), "result": results,
                                        UNSURE: [k for k in unsure if k != reference]})
    return list(tasks.values())


def config_fields(path: Path) -> tuple[set[str], set[str]] | None:
    """(the data keys, the control names) of the labelling config ``path`` (``value="$key"`` of its
    objects; ``name`` of its tags with a ``toName``), None when it is not there or not read."""
    from ..fileio import read_text_within

    try:
        root = parse_labelling_config(read_text_within(path, "Label Studio labelling config"))
    except (OSError, ValueError):
        return None
    data = {str(e.get("value"))[1:] for e in root.iter() if str(e.get("value") or "").startswith("$")}
    return data, {str(e.get("name")) for e in root.iter() if e.get("toName") and e.get("name")}


def read_tasks_file(path: Path, config: tuple[set[str], set[str]] | None = None) -> LabelStudioTasks:
    """Label Studio's JSON or JSON-MIN export in ``path``; ValueError saying what else it is.
    ``config``: ``config_fields`` of its labelling config, for JSON-MIN (``tasks_from_json_min``)."""
    doc = load_json(path)  # size limit, no NaN/Infinity, one line naming the file
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        doc = [doc]  # one task
    if not isinstance(doc, list):
        what = "a COCO file" if isinstance(doc, dict) and "images" in doc else f"a JSON {type(doc).__name__}"
        raise ValueError(f"{path} is {what}, not a Label Studio export (a JSON list of tasks: export the project "
                         "as JSON or JSON-MIN)")
    if is_json_min(doc):
        return LabelStudioTasks("json-min", tasks_from_json_min(doc, path, config))
    bad = next((i for i, t in enumerate(doc) if not isinstance(t, dict)), None)
    if bad is not None:
        raise ValueError(f"{path}: task {bad} is not an object; not a Label Studio JSON export")
    return LabelStudioTasks("json", doc)


def region_kind(value: dict) -> str | None:
    """"brushlabels", "polygonlabels" or "rectanglelabels" by the label key a region holds, else None."""
    return next((k for k in REGION_KINDS if k in value), None)


def live_annotations(task: dict) -> list[dict]:
    """A task's annotations that were not skipped, latest first (``created_at``, ``updated_at``, id)."""
    annotations = task.get("annotations") or task.get("completions") or []
    kept = [a for a in annotations if isinstance(a, dict) and not (a.get("was_cancelled") or a.get("skipped"))]

    def key(a):
        return (str(a.get("created_at") or ""), str(a.get("updated_at") or ""), _as_number(a.get("id")))

    return sorted(kept, key=key, reverse=True)


def _as_number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0


def check_task(task, where: str) -> None:
    """ValueError (one line naming the task and the field) for a task of the wrong shape: ``data``
    an object, annotations a list of objects whose ``result`` is a list of objects, and every
    region's label list a list of non-empty names."""
    if not isinstance(task, dict):
        raise ValueError(f"{where} is {type(task).__name__}; expected a JSON object")
    if task.get("data") is not None:
        need(task, "data", dict, where)
    for key in ("annotations", "completions", "predictions"):
        entries = task.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ValueError(f"{where}: {key!r} is not a list")
        for k, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: {key} {k} is {entry!r}; expected an object")
            results = need(entry, "result", list, f"{where} {key} {k}") if "result" in entry else []
            for j, result in enumerate(results):
                value = result.get("value", result) if isinstance(result, dict) else None
                if not isinstance(value, dict):
                    raise ValueError(f"{where}: {key} {k} result {j} is not an object with a 'value' object")
                kind = region_kind(value)
                labels = value.get(kind) if kind else []
                if not isinstance(labels, list) or not all(isinstance(n, str) and n.strip() for n in labels):
                    raise ValueError(f"{where}: {key} {k} result {j}: {kind!r} must be a list of label names")


def task_status(task: dict) -> str:
    """"annotated", "skipped" (every annotation skipped), "predictions only" or "unannotated"."""
    if live_annotations(task):
        return "annotated"
    if task.get("annotations") or task.get("completions"):
        return "skipped"
    return "predictions only" if task.get("predictions") else "unannotated"


def choose_annotation(task: dict) -> tuple[dict | None, int]:
    """The annotation imported from ``task`` (the latest not skipped) and how many others were set aside."""
    live = live_annotations(task)
    return (live[0] if live else None), max(len(live) - 1, 0)


def region_results(annotation: dict) -> tuple[list[dict], int]:
    """(the results that carry pixels, in file order; how many others there were)."""
    results = [r for r in annotation.get("result") or [] if isinstance(r, dict)]
    regions = [r for r in results if region_kind(r.get("value", r) if isinstance(r.get("value", r), dict) else {})]
    return regions, len(results) - len(regions)


def result_size(result: dict, source) -> tuple[int, int]:
    """(H, W) a result was drawn on (``original_height``/``original_width``)."""
    value = result.get("value", result)
    height = result.get("original_height", value.get("original_height"))
    width = result.get("original_width", value.get("original_width"))
    if height is None or width is None:
        raise ValueError(f"{source}: a result needs original_width and original_height")
    width, height = claimed_size(width, height, source, "result")  # before anything is allocated
    return height, width


def polygon_mask(points, height: int, width: int) -> np.ndarray:
    """bool (H, W): the pixels whose centres lie inside the polygon ``points`` (N×2 pixel
    coordinates x, y over the image's extent; even-odd rule)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    mask = np.zeros((height, width), bool)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return mask
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    first = max(0, math.ceil(y0.min() - 0.5))
    last = min(height, math.ceil(y0.max() - 0.5))
    for row in range(first, last):
        yc = row + 0.5
        cross = (y0 <= yc) != (y1 <= yc)  # edges crossing the centre line, half-open at the top
        xs = np.sort(x0[cross] + (yc - y0[cross]) * (x1[cross] - x0[cross]) / (y1[cross] - y0[cross]))
        for a, b in zip(xs[0::2], xs[1::2]):
            lo, hi = max(0, math.ceil(a - 0.5)), min(width, math.ceil(b - 0.5))
            if hi > lo:
                mask[row, lo:hi] = True
    return mask


def rectangle_points(value: dict, height: int, width: int) -> np.ndarray:
    """(4, 2) pixel corners of a rectangle value (percent x, y, width, height, rotation)."""
    x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
    w, h = float(value["width"]) * width / 100, float(value["height"]) * height / 100
    angle = math.radians(float(value.get("rotation") or 0.0))
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    return np.array([(x + dx * cos - dy * sin, y + dx * sin + dy * cos) for dx, dy in corners])


def region_mask(result: dict, height: int, width: int, source, spent: list[int] | None = None) -> np.ndarray:
    """bool (H, W) of one brush, polygon or rectangle result; ``spent``: [the drawing work of the
    image's regions before it], added to and bounded as one image's (``check_polygon_work``)."""
    value = result.get("value", result)
    kind = region_kind(value)
    try:
        if kind == "brushlabels":
            if not isinstance(value["rle"], list):
                raise ValueError(f"{source}: 'rle' must be a list of bytes (0..255)")
            flat = decode_ls_rle(value["rle"], source, expected=height * width * 4)
            if flat.size != height * width * 4:
                raise ValueError(f"{source}: the RLE holds {flat.size} values, not {height}×{width}×4")
            return flat.reshape(height, width, 4)[:, :, 3] > 0
        if kind == "polygonlabels":
            raw = value["points"]
            if not isinstance(raw, list) or not all(isinstance(p, list) and len(p) == 2 for p in raw):
                raise ValueError(f"{source}: 'points' must be a list of [x, y] pairs")
            check_vertices(len(raw), width, height, source)
            points = np.array([[finite(c, f"{source}: a polygon coordinate") for c in p] for p in raw],
                              np.float64).reshape(-1, 2) * (width / 100, height / 100)
        else:
            for key in ("x", "y", "width", "height", "rotation"):
                if key != "rotation" or value.get(key) is not None:
                    finite(value[key], f"{source}: the rectangle's {key!r}")
            points = rectangle_points(value, height, width)
        work = polygon_work(points[:, 1], height)
        if spent is not None:
            spent[0] += work
            work = spent[0]
        check_polygon_work(work, width, height, source)
        return polygon_mask(points, height, width)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{source}: a {kind} result lacks {exc}") from None


def region_name(result: dict) -> str:
    value = result.get("value", result)
    labels = value.get(region_kind(value)) or [""]
    return str(labels[0])


def annotation_label(annotation: dict, classes: ClassSet, source, mapping=None) -> np.ndarray:
    """(H, W) int64 label of one annotation: its regions painted in order, void elsewhere."""
    regions, _ = region_results(annotation)
    if not regions:
        raise ValueError(f"{source}: the annotation has no brush, polygon or rectangle result")
    if classes.ignore_index is None:
        raise ValueError(f"{source}: pixels in no region are void, but the class set has no ignore value")
    names = [region_name(r) for r in regions]
    sizes = {result_size(r, source) for r in regions}
    if len(sizes) > 1:
        raise ValueError(f"{source}: the results of one annotation were drawn on images of different sizes {sorted(sizes)}")
    (height, width), = sizes
    # the bounds are the image's, as COCO's and labelme's: every polygon region's vertices, before any is drawn
    values = [r.get("value", r) for r in regions]
    check_vertices(sum(len(v["points"]) for v in values
                       if region_kind(v) == "polygonlabels" and isinstance(v.get("points"), list)), width, height, source)
    label = np.full((height, width), classes.ignore_index, np.int64)
    spent = [0]
    for result, name, value in zip(regions, names, match_class_names(names, classes, mapping)):
        if value == UNMATCHED:
            raise ValueError(unmatched_message(name, classes, source))
        mask = region_mask(result, height, width, source, spent)
        label[mask] = void_value(name, classes, source, int(np.count_nonzero(mask))) if value == VOID else value
    return label


def task_label(task: dict, classes: ClassSet, source, mapping=None) -> np.ndarray | None:
    """(H, W) int64 label of a task's chosen annotation (``choose_annotation``), None without one."""
    annotation, _ = choose_annotation(task)
    if annotation is None or not region_results(annotation)[0]:
        return None
    return annotation_label(annotation, classes, source, mapping)


def task_label_names(task: dict) -> list[str]:
    """The label names the chosen annotation of ``task`` uses, in order of appearance."""
    annotation, _ = choose_annotation(task)
    names: list[str] = []
    for result in region_results(annotation)[0] if annotation else []:
        value = result.get("value", result)
        for name in value.get(region_kind(value)) or []:
            if name not in names:
                names.append(str(name))
    return names


def image_reference(task: dict, key: str | None = None) -> str:
    """The task's image reference (``data[key]``, else ``data["image"]``, else its first string)."""
    data = task.get("data") or {}
    if key and isinstance(data.get(key), str):
        return data[key]
    if isinstance(data.get(IMAGE_KEY), str):
        return data[IMAGE_KEY]
    return next((v for v in data.values() if isinstance(v, str)), "")


# ---------------------------------------------------------------------------------- dataset import
def scan_labelstudio(src: Path, images: Path | None) -> SourceDataset:
    """Label Studio's JSON or JSON-MIN export (``qgn.formats.labelstudio``): one item per task with
    an annotation to import; tasks without one, and tasks where annotations were set aside, are
    named in ``warnings``."""
    path = src if src.is_file() else next(iter(sorted(src.glob("*.json"))), None)
    if path is None:
        raise ValueError(f"{src}: no Label Studio tasks JSON")
    export = read_tasks_file(path, config_fields(path.parent / CONFIG_FILE))
    names: list[str] = []
    items = []
    by_status: dict[str, list[str]] = {}
    set_aside, without_regions, undecided, other_results = [], [], [], 0
    for index, task in enumerate(export.tasks):
        try:
            check_task(task, f"{path}: task {index}")
        except ValueError as exc:  # reported with the import's other bad items; the rest go on
            items.append(broken_item(f"task-{index}", f"{path} task {index}", exc))
            continue
        task_id = task.get("id", index)
        status = task_status(task)
        if status != "annotated":
            by_status.setdefault(status, []).append(str(task_id))
            continue
        annotation, others = choose_annotation(task)
        regions, other = region_results(annotation)
        other_results += other
        if others:
            set_aside.append(f"{task_id} (took annotation {annotation.get('id')}, set aside {others})")
        if not regions and other:  # choices, text …: an annotation about something else
            without_regions.append(str(task_id))
            continue
        if not regions and annotation.get(UNSURE):  # JSON-MIN: empty, or a single choice / text?
            undecided.append(f"{task_id} ({', '.join(annotation[UNSURE])})")
            continue
        try:
            for name in task_label_names(task):
                check_class_name(name, f"{path} task {task_id}", "the label")
        except ValueError as exc:  # a label no class can be named: this task is reported, the rest go on
            items.append(broken_item(f"task-{task_id}", f"{path} task {task_id}", exc))
            continue
        names += [n for n in task_label_names(task) if n not in names]
        try:
            file_name, image = labelstudio_image(task, path, images)
            # the size its results claim, checked against the image before a label is allocated
            sizes = {result_size(r, f"{path} task {task_id}") for r in regions}
        except ValueError as exc:  # AmbiguousImageError, a result without a size
            items.append(broken_item(f"task-{task_id}", f"{path} task {task_id}", exc))
            continue
        claimed = None
        if len(sizes) == 1:
            (height, width), = sizes
            claimed = (width, height)
        items.append(SourceItem(Path(file_name).stem, image, _labelstudio_reader(task, path, file_name, image),
                                f"{path} task {task_id}", claimed))
    warnings = labelstudio_warnings(by_status, set_aside, without_regions, other_results)
    if undecided:
        warnings.append(
            f"{len(undecided)} task(s) of the JSON-MIN export have an annotation with no region but with fields "
            "that may be a choice or a text (JSON-MIN writes a single one as a plain value beside the task's data, "
            "so such an annotation cannot be told from an empty one); not imported, so no map is replaced by an "
            f"all-void one: {_ids(undecided)}. Export the project as JSON, or put its labelling config beside the "
            f"file as {CONFIG_FILE}")
    description = (f"labelstudio: Label Studio {export.kind.upper()} export {path.name}, {len(export.tasks)} tasks, "
                   f"{len(items)} with an annotation to import, labels {names[:12]}")
    broken = bool(items) and all(item.error is not None for item in items)
    file_classes = file_classes_of(names, items) if names or broken else None
    config = path.parent / CONFIG_FILE
    if (file_classes is not None or items) and config.is_file():
        try:
            file_classes = classes_with_config(names, read_config_labels(config))
        except ValueError as exc:
            warnings.append(f"{config}: {exc}; the classes are the labels the tasks use, in their order")
    return SourceDataset("labelstudio", path.parent, description, file_classes, items, warnings)


def parse_labelling_config(text: str):
    """The root element of a Label Studio labelling config (XML); ValueError when it is not XML or
    declares a DOCTYPE or entities (no entity expansion, however the parser is set). Read by the
    import (the config beside the tasks) and by ``qgn serve`` (the config Label Studio sends)."""
    import xml.etree.ElementTree as ET

    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("labelling configs with DOCTYPE or ENTITY declarations are not read")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"the labelling config is not valid XML: {exc}") from None


def read_config_labels(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(value, colour or None) of each ``<Label>`` of a labelling config's ``*Labels`` controls, in
    the config's order (colours from ``background="#rrggbb"``): the classes of a project as Label
    Studio was set up for it, unused ones too, where the tasks name only the labels they use."""
    from ..fileio import read_text_within

    root = parse_labelling_config(read_text_within(path, "Label Studio labelling config"))
    labels: list[tuple[str, tuple[int, int, int] | None]] = []
    for control in root.iter():
        if not str(control.tag).endswith("Labels"):
            continue
        for label in control:
            value = label.get("value") if label.tag == "Label" else None
            if value and value not in [n for n, _ in labels]:
                labels.append((value, parse_hex_colour(label.get("background") or "")))
    check_class_names([n for n, _ in labels], str(path))
    return labels


def classes_with_config(names: list[str], config: list[tuple[str, tuple[int, int, int] | None]]) -> ClassSet:
    """The classes of a new project: the config's labels in its order and colours, then any label
    the tasks use that the config lacks (a config of another project: ValueError when it shares
    none of the tasks' labels)."""
    listed = [n for n, _ in config]
    if names and not set(names) & set(listed):
        raise ValueError(f"it names none of the tasks' labels ({', '.join(names[:4])} …)")
    entries = config + [(n, None) for n in names if n not in listed]
    return classes_from_names(entries, void=())



def labelstudio_image(task: dict, path: Path, images: Path | None) -> tuple[str, Path | None]:
    """(file name, image file or None) of a task: its Local Files path under the export's folder,
    else by name in ``images`` or beside the export (uploads lose their '<8 hex>-' prefix)."""
    from urllib.parse import unquote

    ref = image_reference(task)
    index = task.get("id", "?")
    relative = unquote(ref.split("?d=", 1)[1]) if ref.startswith(LOCAL_FILES_PREFIX) else None
    file_name = unquote(ref.split("?")[0].rstrip("/").split("/")[-1]) if relative is None else Path(relative).name
    file_name = file_name or f"task-{index}"
    if relative:
        candidate = path.parent / relative
        if is_file(candidate) and is_contained(path.parent, candidate):
            return file_name, candidate
    image = find_image(file_name, images, path.parent, path.parent / "images")
    uploaded = re.match(r"^[0-9a-f]{8}-(.+)$", file_name)  # Label Studio prefixes uploads with 8 hex digits
    if image is None and uploaded:
        image = find_image(uploaded.group(1), images, path.parent, path.parent / "images")
    return file_name, image


def _labelstudio_reader(task: dict, path: Path, file_name: str, image: Path | None):
    def read(classes, mapping=None):
        source = f"{path} task {task.get('id')} ({file_name})"
        label = task_label(task, classes, source, mapping)
        if label is None:  # submitted with no result: nothing labelled, every pixel void
            label = nothing_labelled(image, classes, source)
        return as_label(label, classes, path)

    return read


def nothing_labelled(image: Path | None, classes: ClassSet, source) -> np.ndarray:
    """The map of an annotation submitted with no result: the image's size (from its header), all void."""
    from ..imagefile import open_image

    if classes.ignore_index is None:
        raise ValueError(f"{source}: the annotation labels nothing (all void), but the class set has no ignore value")
    if image is None:
        raise FileNotFoundError(f"{source}: no image found; name the image folder with --images")
    with open_image(image) as opened:  # the header only
        width, height = opened.size
    return np.full((height, width), classes.ignore_index, np.int64)


def labelstudio_warnings(by_status: dict, set_aside: list, without_regions: list, other_results: int) -> list[str]:
    """One line per kind of task or result an import of a Label Studio export leaves out."""
    said = {"unannotated": "have no annotation", "predictions only": "have predictions but no annotation",
            "skipped": "have only skipped (cancelled) annotations"}
    warnings = [f"{len(ids)} task(s) {said[status]}, not imported: {_ids(ids)}" for status, ids in by_status.items()]
    if set_aside:
        warnings.append(f"{len(set_aside)} task(s) have several annotations; the latest was imported: "
                        + "; ".join(set_aside))
    if without_regions:
        warnings.append(f"{len(without_regions)} task(s) have an annotation without brush, polygon or rectangle "
                        f"results, not imported: {_ids(without_regions)}")
    if other_results:
        warnings.append(f"{other_results} result(s) of other kinds (choices, keypoints, text …) carry no pixels "
                        "and were left out")
    return warnings


def _ids(ids: list[str], shown: int = 20) -> str:
    return "tasks " + ", ".join(ids[:shown]) + (f" … ({len(ids) - shown} more)" if len(ids) > shown else "")



def is_labelstudio_dataset(probe) -> bool:
    """A JSON list (of tasks)."""
    return isinstance(probe.json_document, list)


FORMAT = Format("labelstudio", "Label Studio tasks JSON + labelling config, images referenced as Local Files",
                ".json", None, None, LabelStudioWriter, image_names=True, scan=scan_labelstudio,
                is_dataset=is_labelstudio_dataset, check_classes=label_config)
