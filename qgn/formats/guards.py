"""What every importer checks before it trusts a file, one function per concern, shared by all
formats (CVAT/VOC, Cityscapes, CamVid, COCO, labelme, Label Studio, id/palette PNG folders):

* ``contained(root, name)``: a path a file names (labelme ``imagePath``, COCO ``file_name``, a
  CamVid list line) or a file found under the dataset (a mask, an image, possibly a symbolic
  link) resolves inside the dataset folder or the ``--images`` folder — never elsewhere. An
  absolute name, ``../`` that climbs out, or a link pointing away is an ``OutsideDatasetError``.
* ``claimed_size(width, height)``: a size a file *claims* (JSON ``height``/``width``, an RLE's
  ``size``, a .qgt header, a model config) is whole, positive and within the one pixel limit
  ``qgn.imagefile.max_pixels()`` (``QGN_MAX_PIXELS``) — checked before anything is allocated;
  importers also compare it with the image's header (``check_against_image``).
* ``load_json(path)``: a JSON document within ``max_json_bytes()``, without ``NaN``/``Infinity``
  (not JSON) or an object naming a key twice, nested at most as deep as Python can parse;
  ``ValueError`` naming the file otherwise.
* ``need(obj, key, kind, where)`` / ``whole(value, where)`` / ``finite(value, where)``: schema
  checks that turn a missing key or a wrong type into one line naming the file and the field.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..imagefile import check_pixels

#: The largest JSON file an importer reads (a COCO file of a big dataset is a few hundred MB);
#: ``QGN_MAX_JSON_BYTES`` overrides it (``max_json_bytes()``).
DEFAULT_MAX_JSON_BYTES = 1 << 30
MAX_JSON_BYTES_ENV = "QGN_MAX_JSON_BYTES"
#: Polygon rasterisation work a file may ask for, per pixel of its image (plus a constant): the
#: number of (edge, pixel row) crossings. An honest outline of pixel regions needs at most ~4.
POLYGON_WORK_PER_PIXEL = 8
POLYGON_WORK_SLACK = 1 << 22
#: Polygon vertices a file may give one image, per pixel (plus a constant): an outline traced
#: along pixel edges has at most one vertex per pixel corner; the constant leaves room for smooth
#: sub-pixel outlines of small images. Drawing takes ~200 bytes a vertex: a 100 MB COCO file of one
#: 10⁷-vertex polygon on a 12×8 image took 3 GB and was imported.
VERTICES_PER_PIXEL = 4
VERTEX_SLACK = 1 << 16
#: Pixels one image's masks (COCO RLE and polygons) may cover in all, per pixel of the image (plus a
#: constant): an honest image's annotations cover each pixel a few times at most (an object, its
#: parts, a crowd region over them). Each mask cost its whole image: 400 full-size RLE masks of a
#: 1000×1000 image (a 50 KB COCO file) took 1.5 s, a 12 MB file ~6 minutes; now each costs its pixels.
MASK_AREA_PER_PIXEL = 16
MASK_AREA_SLACK = 1 << 22
MAX_COORDINATE = 1e7


class OutsideDatasetError(ValueError):
    """A file name, or a link, that leads outside the dataset folder it was found in."""


def contained(root: str | os.PathLike, name: str | os.PathLike, source="", what: str = "file") -> Path:
    """``root / name`` when it resolves (symbolic links followed) strictly inside ``root``
    (resolved too); OutsideDatasetError naming ``source`` otherwise. ``name`` may be a path
    relative to ``root`` or a path already under it (a file a directory walk found)."""
    root = Path(root)
    name_text = str(name)
    if "\0" in name_text:
        raise OutsideDatasetError(f"{source}: the {what} name {name_text!r} holds a NUL character")
    path = Path(name)
    if not path.is_absolute():
        path = root / path
    elif not _under(path, root):  # an absolute name in a file: refused, even when it exists
        raise OutsideDatasetError(
            f"{source}: the {what} {name_text!r} is an absolute path; a dataset names its files relative to its "
            f"folder {root} (use --images DIR for images elsewhere)")
    base = root.resolve()
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        raise OutsideDatasetError(f"{source}: the {what} {name_text!r} is a link that cannot be resolved") from None
    if target == base or base not in target.parents:
        how = "is a link that points" if path.is_symlink() or target != Path(os.path.abspath(path)) else "leads"
        raise OutsideDatasetError(
            f"{source}: the {what} {name_text!r} {how} outside the dataset folder {root}; importers read only files "
            "inside it (copy the file in, or name its folder with --images)")
    return path


def _under(path: Path, root: Path) -> bool:
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return path != root and root in path.parents


def is_contained(root, path) -> bool:
    """Whether ``path`` (an existing file found under ``root``) resolves inside ``root``."""
    try:
        contained(root, path)
        return True
    except OutsideDatasetError:
        return False


def whole(value, where: str, low: int = 0, high: int = 1 << 62) -> int:
    """``value`` as an int when it is a JSON integer (not a bool, not 2.5, not "7") in low..high."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        else:
            raise ValueError(f"{where} is {value!r}; expected a whole number")
    if not low <= value <= high:
        raise ValueError(f"{where} is {value}; expected a whole number in {low}..{high}")
    return value


def finite(value, where: str, bound: float = MAX_COORDINATE) -> float:
    """``value`` as a float when it is a finite JSON number of magnitude at most ``bound``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} is {value!r}; expected a number")
    value = float(value)
    if not math.isfinite(value) or abs(value) > bound:
        raise ValueError(f"{where} is {value!r}; expected a finite number of magnitude at most {bound:g}")
    return value


def need(obj, key: str, kind, where: str):
    """``obj[key]`` when ``obj`` is an object holding ``key`` of type ``kind`` (a type or tuple)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where} is {type(obj).__name__}; expected a JSON object")
    if key not in obj:
        raise ValueError(f"{where} has no {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise ValueError(f"{where}: {key!r} is {_shown(value)}; expected {names}")
    return value


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a whole number", float: "a number",
               bool: "true or false", type(None): "null"}


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def claimed_size(width, height, source, what: str = "size") -> tuple[int, int]:
    """(width, height) a file claims, checked: whole, positive, and within the pixel limit
    (``QGN_MAX_PIXELS``) before anything of that size is allocated."""
    width = whole(width, f"{source}: the {what}'s width", 1)
    height = whole(height, f"{source}: the {what}'s height", 1)
    check_pixels(width, height, source)
    return width, height


def check_against_image(claimed: tuple[int, int] | None, image_size: tuple[int, int], source, image) -> None:
    """ValueError when the (width, height) a file claims is not its image's (read from the header)."""
    if claimed is not None and tuple(claimed) != tuple(image_size):
        raise ValueError(f"{source} claims {claimed[0]}×{claimed[1]} pixels but its image {image} is "
                         f"{image_size[0]}×{image_size[1]}")


def polygon_work(ys, height: int) -> int:
    """(edge, pixel row) crossings of a polygon with vertex rows ``ys`` rasterised on ``height``
    rows: what drawing it costs."""
    import numpy as np

    ys = np.asarray(ys, np.float64)
    if ys.size < 2:
        return 0
    prev = np.roll(ys, 1)
    lo = np.clip(np.minimum(prev, ys), 0, height)
    hi = np.clip(np.maximum(prev, ys), 0, height)
    return int(np.sum(np.where(hi > lo, np.floor(hi - lo) + 1, 0)))


def check_polygon_work(work: int, width: int, height: int, source) -> None:
    """ValueError when the polygons of one image ask for more rasterisation work than an honest
    outline of its pixels could (``POLYGON_WORK_PER_PIXEL`` crossings per pixel, plus slack)."""
    limit = POLYGON_WORK_PER_PIXEL * width * height + POLYGON_WORK_SLACK
    if work > limit:
        raise ValueError(f"{source}: its polygons cross the {height} pixel rows {work} times, more than any outline "
                         f"of a {width}×{height} image needs ({limit}); refusing a file built to take hours to draw")


def check_vertices(count: int, width: int, height: int, source) -> None:
    """ValueError, before the vertices are converted or drawn, when one image's polygons have more
    vertices than any honest outline of its pixels (``VERTICES_PER_PIXEL``, plus ``VERTEX_SLACK``)."""
    limit = VERTICES_PER_PIXEL * width * height + VERTEX_SLACK
    if count > limit:
        raise ValueError(f"{source}: its polygons have {count} vertices, more than any outline of a {width}×{height} "
                         f"image needs ({limit}); refusing a file built to exhaust memory")


def check_mask_area(area: int, width: int, height: int, source) -> None:
    """ValueError, before the next mask is painted, when one image's masks cover more pixels in all
    than any honest annotation of it (``MASK_AREA_PER_PIXEL`` times its pixels, plus slack)."""
    limit = MASK_AREA_PER_PIXEL * width * height + MASK_AREA_SLACK
    if area > limit:
        raise ValueError(f"{source}: its masks cover {area} pixels in all, more than any annotation of a "
                         f"{width}×{height} image needs ({limit}: each pixel {MASK_AREA_PER_PIXEL} times); "
                         "refusing a file built to take hours to decode")


def max_json_bytes() -> int:
    """The largest JSON file an importer reads: ``QGN_MAX_JSON_BYTES`` when set, else
    ``DEFAULT_MAX_JSON_BYTES``. Read when used, so a bad value is one error naming the variable."""
    from ..env import env_count

    return env_count(MAX_JSON_BYTES_ENV, DEFAULT_MAX_JSON_BYTES, "byte count", example=4000000000)


class JsonTooLargeError(ValueError):
    """A JSON file over ``max_json_bytes()``: not read."""


def _bounded_json_bytes(f, path: Path, size: int, limit: int | None) -> bytes:
    """The bytes of the open JSON file ``f`` of ``size`` bytes: JsonTooLargeError for a file over
    ``limit`` or ``max_json_bytes()``, checked from its size and again while reading (a file that
    grows is read no further than the bound)."""
    if limit is not None and size > limit:
        raise JsonTooLargeError(f"{path} is {size / 1e6:.1f} MB; a file of its kind holds at most {limit / 1e6:.0f} MB")
    most = max_json_bytes()
    if size > most:
        raise JsonTooLargeError(f"{path} is {size / 1e6:.0f} MB, more than the {most / 1e6:.0f} MB a JSON import "
                                f"reads ({MAX_JSON_BYTES_ENV})")
    bound = min(most, limit if limit is not None else most)
    parts = [f.read(size)]  # read(n) allocates n bytes at once: never more than the file's size
    got = len(parts[0])
    while got <= bound and (more := f.read(min(1 << 20, bound + 1 - got))):
        parts.append(more)
        got += len(more)
    data = b"".join(parts)
    if len(data) > bound:
        raise JsonTooLargeError(f"{path} grew past {bound / 1e6:.1f} MB while it was read; a file of its kind holds "
                                "at most that")
    return data


def load_json(path: str | os.PathLike, limit: int | None = None, keys_once: bool = True):
    """The JSON document in ``path``: ValueError naming the file when it is larger than ``limit``
    (a small file's own bound; default ``max_json_bytes()``), not UTF-8 JSON, uses NaN/Infinity, or
    is nested too deeply, or is a named pipe or device (``open_regular``: never waited on), or (with
    ``keys_once``; a format's detection only looks at its shape) names a key of an object twice."""
    from ..fileio import open_regular

    path = Path(path)
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        data = _bounded_json_bytes(f, path, size, limit)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant,
                          object_pairs_hook=_once_each if keys_once else None)
    except DuplicateKeyError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 JSON file: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a dataset file") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a JSON file: {exc}") from None


class DuplicateKeyError(ValueError):
    """A JSON object that names a key twice."""


def _once_each(pairs: list) -> dict:
    """The object of ``pairs``; DuplicateKeyError when it names a key twice: JSON readers keep the
    last silently, so a second "categories", "annotations" or "id" would change what the file means
    without a word (and another tool may keep the first). Costs ~20 % of a parse (a 63 MB COCO
    file: 4.9 → 5.7 s), little beside an import's reading of the images."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKeyError(f"an object names the key {twice!r} twice (JSON readers keep one of the two "
                                "silently); remove one and import again")
    return obj


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
