"""Small inputs the tests make — random label maps of blocks, photos, masks, files whose header
claims far more pixels than they hold — and a snapshot of a folder tree to show what was written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def blocky_label(rng, h: int, w: int, classes: int, ignore: int | None = None, *, cell=8, noise: float = 0.0,
                 p_ignore: float = 0.05, void_cells: bool = False, dtype=np.int64) -> np.ndarray:
    """(h, w) ``dtype`` map of ``cell``-pixel blocks of class ids 0..classes-1.

    rng: a seed or a ``numpy.random.Generator`` (drawn from in place).
    cell: the block size, or a sequence of sizes to draw one from.
    noise: the fraction of pixels replaced by a random class (single-pixel detail).
    ignore: the ignore value; ``p_ignore`` of the pixels take it, or with ``void_cells`` whole
        blocks do (drawn as one more class).
    """
    rng = np.random.default_rng(rng)
    if not isinstance(cell, int):
        cell = int(rng.choice(cell))
    small = rng.integers(0, classes + 1 if void_cells else classes, (-(-h // cell), -(-w // cell)))
    label = np.repeat(np.repeat(small, cell, 0), cell, 1)[:h, :w]
    if void_cells:
        label = np.where(label == classes, ignore, label)
    if noise:
        label = np.where(rng.random((h, w)) < noise, rng.integers(0, classes, (h, w)), label)
    if ignore is not None and not void_cells:
        label = np.where(rng.random((h, w)) < p_ignore, ignore, label)
    return label.astype(dtype)


def blobby_label(rng, h: int, w: int, classes: int, ignore: int | None = None, *, cell: int = 16,
                 dtype=np.uint8) -> np.ndarray:
    """(h, w) ``dtype`` map of blobby regions with curved borders, as a street scene's: each pixel
    takes the class (or, with ``ignore``, void as one more class) whose smooth random field
    (noise on a grid of ``cell`` pixels, upsampled bilinearly) is largest there."""
    rng = np.random.default_rng(rng)
    count = classes + (ignore is not None)
    grid = (-(-h // cell) + 1, -(-w // cell) + 1)
    fields = [np.asarray(Image.fromarray(rng.random(grid).astype(np.float32), "F")
                         .resize((grid[1] * cell, grid[0] * cell), Image.BILINEAR))[:h, :w] for _ in range(count)]
    values = np.array(list(range(classes)) + ([ignore] if ignore is not None else []))
    return values[np.argmax(np.stack(fields), axis=0)].astype(dtype)


def write_photo(path: Path, size=(40, 32), seed=0) -> Path:
    """A random RGB PNG of ``size`` (W, H) at ``path`` (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_mask(path: Path, value: int = 1, size=(8, 6)) -> Path:
    """A greyscale PNG of ``size`` (W, H) filled with ``value`` at ``path`` (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8), "L").save(path)
    return path


def ids_dataset(root: Path, count: int = 3, size=(12, 8)) -> Path:
    """``root/labels/new_i.png`` (uniform class i, 8-bit ids) and ``root/images/new_i.png`` (black RGB)
    for i < count, ``size`` = (width, height): the smallest dataset ``qgn import --format ids`` takes."""
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    width, height = size
    for i in range(count):
        Image.fromarray(np.full((height, width), i, np.uint8), "L").save(root / "labels" / f"new_{i}.png")
        Image.new("RGB", (width, height)).save(root / "images" / f"new_{i}.png")
    return root


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width × height`` grey pixels (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def tree_snapshot(root) -> dict:
    """{relative path: (kind, size, mtime_ns, sha256)} of everything under ``root`` (links not
    followed): two equal snapshots mean nothing was written, replaced or deleted there."""
    import hashlib
    import os

    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            stat = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes: equal digests before and after mean the file is untouched."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def varint(v: int) -> bytes:
    """``v`` as the .qgt header's unsigned LEB128 varint (7 bits a byte, low first)."""
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v >> 7 else 0))
        v >>= 7
        if not v:
            return bytes(out)


def qgt_claiming(width: int, height: int, levels: int = 1) -> bytes:
    """A tiny .qgt (format reference in qgn/quadtree/qgt.py) claiming a ``width × height`` map whose
    every root cell is one class (an honest file: it decodes to that size when the reader lets it).
    With one level every pixel is a coded cell."""
    import zlib

    top = levels - 1
    roots = (-(-height >> top)) * (-(-width >> top))
    len_a = (roots + 7) // 8
    raw = varint(len_a) + varint(0) + bytes(len_a)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = comp.compress(raw) + comp.flush()
    body = b"\x89QGT" + bytes([1, 0]) + varint(height) + varint(width) + varint(levels) + varint(1)
    body += bytes([1]) + varint(len(raw)) + varint(len(packed)) + packed
    return body + zlib.crc32(body).to_bytes(4, "little")


def pixel_centres_inside(points, h, w):
    """Independent reference: even-odd test of every pixel centre (ray casting, point by point)."""
    out = np.zeros((h, w), bool)
    for row in range(h):
        for col in range(w):
            x, y, inside = col + 0.5, row + 0.5, False
            for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
                if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                    inside = not inside
            out[row, col] = inside
    return out


def write_domain_reference(path, samples) -> Path:
    """A domain reference beside the model at ``path`` (``qgn.domain.reference_path``), made from
    the ``samples`` and 40 synthetic scenes of their kind and size (its "training images"): the
    samples are inside its domain, colour noise is not (the tests that use it check both). Returns
    the reference's path."""
    from qgn.data.synthetic import make_scene
    from qgn.domain import DomainReference, image_descriptor, reference_path
    from qgn.fileio import file_sha256
    from qgn.model.checkpoint import load_model

    model = load_model(path)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in samples]
    images += [make_scene(9000 + i, *images[0].shape[:2])[0] for i in range(40)]
    scenes = np.stack([image_descriptor(model, image) for image in images])
    return DomainReference.fit(scenes, file_sha256(path)).save(reference_path(path))


def synthetic_project(root: Path, folder: Path, names=("a.jpg", "b.jpg"), size=(48, 64)):
    """A project at ``root`` of synthetic street scenes saved in ``folder`` under ``names`` (scene i
    for the i-th name), each with its scene's labels saved as its annotation (the synthetic classes)."""
    import numpy as np
    from PIL import Image

    from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
    from qgn.project import Project

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        Image.fromarray(make_scene(i, *size)[0]).save(folder / name, quality=95)
        paths.append(folder / name)
    project = Project.create(root, paths, SYNTHETIC_CLASSES)
    for i, image in enumerate(project.images):
        project.save_annotation(image, make_scene(i, *size)[1].astype(np.uint8))
    return project
