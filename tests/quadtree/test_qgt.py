""".qgt files: lossless round trips (random masks, class metadata, all of CamVid when present),
and robustness: truncated, corrupt, newer-version and oversized files, plus a fuzz test."""
from __future__ import annotations

from functools import partial
import io
import stat
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import qgn.quadtree.qgt as qgt_module
from qgn.classes import ClassSet
from qgn.quadtree import Quadtree
from qgn.quadtree.qgt import (
    MAGIC, QgtFormatError, _put_varint, _zigzag, decode_qgt, encode_qgt, read_qgt, write_qgt,
)
from sample_files import blocky_label, qgt_claiming

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CAMVID = DATA / "camvid"


blocky = partial(blocky_label, cell=(1, 2, 4, 8, 16), noise=0.03)  # a random block size, 3 % noise


def roundtrip(label, k, ignore, levels, classes=None):
    qt = Quadtree.from_label(label, k, ignore, levels)
    data = encode_qgt(qt, classes)
    qt2, classes2 = decode_qgt(data)
    assert qt2 == qt
    assert (qt2.num_levels, qt2.num_classes, qt2.ignore_value, qt2.height, qt2.width) == (
        levels, k, ignore, *label.shape)
    assert np.array_equal(qt2.to_label(), label)
    assert classes2 == classes
    return data


# --------------------------------------------------------------------------- round trips
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1), st.integers(1, 70), st.integers(1, 70), st.integers(1, 7),
    st.integers(1, 8), st.sampled_from([None, "k", 255, -1]),
)
@example(0, 1, 1, 1, 1, None)
@example(0, 1, 1, 1, 7, "k")
@example(3, 33, 65, 1, 6, None)  # one class, odd size
@example(4, 20, 20, 3, 3, -1)  # negative ignore value
def test_roundtrip_random_masks(seed, h, w, k, levels, ig):
    ignore = k if ig == "k" else ig
    roundtrip(blocky(seed, h, w, k, ignore), k, ignore, levels)


def test_roundtrip_edge_cases():
    roundtrip(np.full((37, 50), 9), 3, 9, 6)  # all ignore
    roundtrip(np.zeros((1, 1), np.uint8), 1, None, 1)
    roundtrip(np.zeros((1, 1), np.uint8), 1, None, 11)  # 1×1 padded to 1024×1024
    roundtrip(np.array([[0, 1], [1, 0]]), 2, None, 1)  # a single level: every pixel a root
    roundtrip(blocky(5, 64, 64, 1000), 1000, None, 6)  # large alphabet: sparse candidate path
    roundtrip(blocky(6, 40, 40, 65534, 65535), 65534, 65535, 5)  # the largest class count


def test_roundtrip_with_class_metadata():
    classes = ClassSet(("sky", "road", "Straße ✓"), ((1, 2, 3), (4, 5, 6), (250, 251, 252)), 255, (9, 8, 7))
    data = roundtrip(blocky(1, 50, 60, 3, 255), 3, 255, 6, classes)
    _, back = decode_qgt(data)
    assert back.names == classes.names and back.palette == classes.palette
    assert back.ignore_index == 255 and back.ignore_color == (9, 8, 7)
    # a map without ignore pixels may carry a class set that has an ignore value
    roundtrip(blocky(2, 10, 10, 3), 3, None, 3, ClassSet.generic(3, 11))
    roundtrip(blocky(2, 10, 10, 3), 3, None, 3, ClassSet.generic(3))


def test_encoder_refuses_mismatched_metadata():
    qt = Quadtree.from_label(blocky(1, 10, 10, 3, 255), 3, 255, 3)
    with pytest.raises(ValueError, match="4 classes"):
        encode_qgt(qt, ClassSet.generic(4, 255))
    with pytest.raises(ValueError, match="ignore"):
        encode_qgt(qt, ClassSet.generic(3, 11))
    with pytest.raises(ValueError, match="levels"):
        one_root = [np.array([16], np.uint8), np.array([0], np.int32), np.array([0], np.int32), np.array([1], np.uint8)]
        encode_qgt(Quadtree(*one_root, 17, 1, None, 2, 2))  # refused before painting 65536²
    with pytest.raises(TypeError):
        encode_qgt(np.zeros((2, 2)))


def test_dense_and_sparse_candidate_paths_agree(monkeypatch):
    """The two implementations of the rank model must give identical bytes (format stability)."""
    labels = [(blocky(s, 45, 77, k, k), k) for s, k in [(1, 3), (2, 11), (3, 40)]]
    dense = [encode_qgt(Quadtree.from_label(lab, k, k, 6)) for lab, k in labels]
    monkeypatch.setattr(qgt_module, "_DENSE_MAX", 0)
    monkeypatch.setattr(qgt_module, "_CHUNK", 37)  # chunking must not change anything either
    sparse = [encode_qgt(Quadtree.from_label(lab, k, k, 6)) for lab, k in labels]
    assert dense == sparse
    for data, (lab, _) in zip(dense, labels):
        assert np.array_equal(decode_qgt(data)[0].to_label(), lab)


def test_write_read_file_atomically(tmp_path):
    label = blocky(7, 30, 40, 4, 255)
    qt = Quadtree.from_label(label, 4, 255, 6)
    path = tmp_path / "a.qgt"
    write_qgt(path, qt, ClassSet.generic(4, 255))
    write_qgt(path, qt)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.qgt"]  # no temporary files left
    qt2, classes = read_qgt(path)
    assert classes is None and np.array_equal(qt2.to_label(), label)
    with pytest.raises(FileNotFoundError):
        read_qgt(tmp_path / "missing.qgt")
    (tmp_path / "empty.qgt").write_bytes(b"")
    with pytest.raises(QgtFormatError, match="empty"):
        read_qgt(tmp_path / "empty.qgt")
    with pytest.raises(FileNotFoundError):
        write_qgt(tmp_path / "no" / "such" / "dir.qgt", qt)


def test_smaller_than_png_on_structured_masks():
    from PIL import Image

    label = blocky(11, 360, 480, 11, 255).astype(np.uint8)
    label = np.repeat(np.repeat(label[::8, ::8], 8, 0), 8, 1)[:360, :480]
    data = encode_qgt(Quadtree.from_label(label, 11, 255, 6))
    buf = io.BytesIO()
    Image.fromarray(label).save(buf, "PNG")
    assert len(data) < 0.5 * len(buf.getvalue())


# --------------------------------------------------------------------------- CamVid
def camvid_masks(split: str) -> list[Path]:
    folder = CAMVID / split / "labels"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return sorted(folder.glob("*.png"))


@pytest.mark.data
@pytest.mark.slow
def test_camvid_every_mask_roundtrips_bit_exactly():
    from PIL import Image

    masks = camvid_masks("train") + camvid_masks("val")
    assert len(masks) == 468
    qgt_bytes = png_bytes = 0
    for path in masks:
        label = np.asarray(Image.open(path))
        qt = Quadtree.from_label(label, 11, 11, 6)
        data = encode_qgt(qt)
        back = decode_qgt(data)[0].to_label()
        assert back.shape == label.shape and np.array_equal(back, label), path.name
        qgt_bytes += len(data)
        png_bytes += path.stat().st_size
    # regression guard on the compression (measured: ~0.41 of the stored PNG files)
    assert qgt_bytes < 0.5 * png_bytes


# --------------------------------------------------------------------------- malformed files
def small_file(classes: bool = True) -> tuple[np.ndarray, bytes]:
    label = np.array([[0, 0, 1, 1, 2], [0, 3, 1, 1, 2], [3, 3, 3, 2, 2]])
    cs = ClassSet(("a", "b", "c"), (), 3) if classes else None
    return label, encode_qgt(Quadtree.from_label(label, 3, 3, 2), cs)


def with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def header(height, width, levels, k, ignore=None, flags=None, version=1) -> bytes:
    out = bytearray(MAGIC)
    out.append(version)
    out.append(flags if flags is not None else (1 if ignore is not None else 0))
    for v in (height, width, levels, k):
        _put_varint(out, v)
    if ignore is not None:
        _put_varint(out, _zigzag(ignore))
    return bytes(out)


def tree_block_of(data: bytes) -> bytes:
    """The tree block (method .. data) of a file written without classes."""
    pos = 6
    for _ in range(4 + (data[5] & 1)):
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    return data[pos:-4]


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "truncated"),
        (b"\x89QG", "truncated"),
        (b"PNG\x00not a qgt", "not a .qgt"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "not a .qgt"),
        (b"\x89QGT", "truncated"),
        (b"\x89QGT\x02\x00", "version 2"),
        (b"\x89QGT\xff" + bytes(40), "version 255"),
        (b"\x89QGT\x00\x00" + bytes(10), "version 0"),
    ],
)
def test_bad_magic_version_truncation(data, match):
    with pytest.raises(QgtFormatError, match=match):
        decode_qgt(data)


def test_truncated_and_corrupt_files():
    _, data = small_file()
    for n in (5, 6, 8, len(data) // 2, len(data) - 5, len(data) - 1):
        with pytest.raises(QgtFormatError, match="truncated|checksum|corrupt"):
            decode_qgt(data[:n])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(QgtFormatError, match="checksum"):
        decode_qgt(bytes(flipped))
    with pytest.raises(QgtFormatError, match="unexpected bytes|checksum"):
        decode_qgt(data[:-4] + b"\x00" + data[-4:])


def test_gigantic_size_headers_are_refused_before_allocating():
    _, data = small_file(classes=False)
    block = tree_block_of(data)
    cases = [
        (10**6, 10**6, 6, 3),  # a terapixel map
        (2**40, 1, 6, 3),
        (1, 2**62, 1, 3),
        (480, 360, 16, 3),  # padded to 32768 × 32768
    ]
    for h, w, levels, k in cases:
        tracemalloc.start()
        with pytest.raises(QgtFormatError, match="max_pixels|MAX_PIXELS"):
            decode_qgt(with_crc(header(h, w, levels, k) + block))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, f"{h}×{w}: {peak} bytes allocated before the refusal"
    # within max_pixels but far more root cells than the tree stream can describe
    with pytest.raises(QgtFormatError, match="root cells"):
        decode_qgt(with_crc(header(8000, 8000, 1, 3) + block))
    # a raw size the compressed bytes cannot justify
    bomb = bytes([1]) + bytes([0xFF, 0xFF, 0xFF, 0x7F]) + bytes([3]) + b"abc"
    with pytest.raises(QgtFormatError, match="ratio"):
        decode_qgt(with_crc(header(3, 5, 2, 3) + bomb))


@pytest.mark.parametrize(
    "fields, match",
    [
        ((0, 5, 2, 3), "size"),
        ((3, 0, 2, 3), "size"),
        ((3, 5, 0, 3), "levels"),
        ((3, 5, 17, 3), "levels"),
        ((3, 5, 2, 0), "classes"),
        ((3, 5, 2, 70000), "classes"),
    ],
)
def test_header_fields_out_of_range(fields, match):
    _, data = small_file(classes=False)
    with pytest.raises(QgtFormatError, match=match):
        decode_qgt(with_crc(header(*fields) + tree_block_of(data)))


def test_unknown_flags_and_methods():
    _, data = small_file(classes=False)
    block = tree_block_of(data)
    with pytest.raises(QgtFormatError, match="flags"):
        decode_qgt(with_crc(header(3, 5, 2, 3, flags=0x80) + block))
    with pytest.raises(QgtFormatError, match="method"):
        decode_qgt(with_crc(header(3, 5, 2, 3) + bytes([9]) + block[1:]))
    with pytest.raises(QgtFormatError, match="varint"):
        decode_qgt(with_crc(header(3, 5, 2, 3) + bytes([0, 0x80, 0x00]) + b"x"))


def test_valid_compression_but_wrong_tree_is_refused():
    """A well-formed container whose tree stream does not describe a valid tree."""
    from qgn.quadtree.qgt import _put_block

    for raw in (b"", b"\x00\x00", b"\x01\x00\xff", b"\x01\x00\x00", b"\x05\x00" + bytes(5), b"\x01\x01\xff\xff"):
        body = bytearray(header(3, 5, 2, 3))
        _put_block(body, raw)
        with pytest.raises(QgtFormatError):
            decode_qgt(with_crc(bytes(body)))


# --------------------------------------------------------------------------- fuzz
def check_decode(data: bytes, expected: np.ndarray | None) -> str:
    """Decode mutated bytes: the right mask (or, when the CRC was recomputed, any valid tree) or
    QgtFormatError — nothing else. ``max_pixels`` bounds the work whatever the header claims."""
    try:
        qt, _ = decode_qgt(data, max_pixels=1 << 22)
        label = qt.to_label()
        outcome = "ok"
        if expected is not None:
            assert label.shape == expected.shape and np.array_equal(label, expected)
    except QgtFormatError:
        outcome = "error"
    return outcome


def fuzz_corpus() -> list[tuple[np.ndarray, bytes]]:
    corpus = [small_file(), small_file(classes=False)]
    for seed, (h, w, k, levels, ignore) in enumerate([(40, 57, 5, 4, 255), (64, 64, 300, 6, None), (9, 130, 2, 3, 2)]):
        label = blocky(seed, h, w, k, ignore)
        corpus.append((label, encode_qgt(Quadtree.from_label(label, k, ignore, levels),
                                         ClassSet.generic(k, ignore) if seed == 0 else None)))
    return corpus


@pytest.mark.slow
def test_fuzz_mutated_files():
    rng = np.random.default_rng(20240601)
    outcomes = {"ok": 0, "error": 0}
    corpus = fuzz_corpus()
    # 1. truncation at every length of a small file: always an error
    label, data = corpus[0]
    for n in range(len(data)):
        assert check_decode(data[:n], label) == "error"
    # 2. random bit flips (CRC kept): the CRC catches them, or the mask is still right
    for _ in range(400):
        label, data = corpus[rng.integers(len(corpus))]
        d = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(len(d))
            d[i] ^= 1 << int(rng.integers(8))
        outcomes[check_decode(bytes(d), label)] += 1
    # 3. random payload and header bytes with the CRC recomputed: reaches the parser and decoder
    for _ in range(600):
        label, data = corpus[rng.integers(len(corpus))]
        d = bytearray(data[:-4])
        mode = rng.integers(3)
        if mode == 0:  # bit flips anywhere
            for _ in range(rng.integers(1, 4)):
                i = rng.integers(len(d))
                d[i] ^= 1 << int(rng.integers(8))
        elif mode == 1:  # random bytes in the header fields
            i = rng.integers(4, min(16, len(d)))
            d[i] = rng.integers(256)
        else:  # a random run of bytes, or a cut
            i = rng.integers(len(d))
            if rng.random() < 0.5:
                d[i : i + 4] = rng.integers(0, 256, 4).astype(np.uint8).tobytes()
            else:
                del d[i:]
        outcomes[check_decode(with_crc(bytes(d)), None)] += 1
    # 4. random header fields (sizes, levels, classes, ignore) with the original tree block
    label, data = small_file(classes=False)
    block = tree_block_of(data)
    for _ in range(300):
        h = int(rng.choice([rng.integers(1, 8), rng.integers(1, 5000), 2 ** int(rng.integers(10, 64)) - 1]))
        w = int(rng.choice([rng.integers(1, 8), rng.integers(1, 5000), 2 ** int(rng.integers(10, 64)) - 1]))
        levels, k = int(rng.integers(0, 20)), int(rng.choice([rng.integers(0, 6), rng.integers(0, 70000)]))
        ignore = None if rng.random() < 0.3 else int(rng.integers(-300, 300))
        outcomes[check_decode(with_crc(header(h, w, levels, k, ignore) + block), None)] += 1
    # 5. bit flips inside the decompressed tree streams, recompressed: reaches the rank decoder
    from qgn.quadtree.qgt import _put_block, _tree_bytes

    for _ in range(300):
        label, data = corpus[rng.integers(len(corpus))]
        qt, _ = decode_qgt(data)
        raw = bytearray(_tree_bytes(qt))
        for _ in range(rng.integers(1, 3)):
            i = rng.integers(len(raw))
            raw[i] ^= 1 << int(rng.integers(8))
        body = bytearray(header(qt.height, qt.width, qt.num_levels, qt.num_classes, qt.ignore_value))
        _put_block(body, bytes(raw))
        outcomes[check_decode(with_crc(bytes(body)), None)] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


def test_fuzz_never_leaks_other_exceptions_on_random_bytes():
    rng = np.random.default_rng(7)
    for n in range(200):
        body = MAGIC + bytes([1]) + rng.integers(0, 256, int(rng.integers(0, 60))).astype(np.uint8).tobytes()
        check_decode(with_crc(body) if n % 2 else body, None)


# ------------------------------------------------------------------------------------ decoder memory
def test_qgt_decoder_memory_is_small_per_coded_cell():
    import tracemalloc

    from qgn.quadtree.qgt import QgtFormatError, decode_qgt

    width, height = 2048, 1024
    data = qgt_claiming(width, height)
    assert len(data) < 4096  # a few KB …
    tracemalloc.start()
    try:
        qt, _ = decode_qgt(data)  # … that honestly claims 2 M coded cells (one bit each)
        assert len(qt) == width * height
    except QgtFormatError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # main needed ~53 bytes per cell (6 GB for a 16 KB file of 11585²); the leaves alone are 10.
    assert peak < 32 * width * height, f"{peak / (width * height):.1f} bytes per coded cell"


# ------------------------------------------------------------------------------- the file's length
def test_the_largest_honest_files_are_within_the_bound():
    """`max_file_bytes` bounds what a writer makes in the worst cases: uniform noise on one level (every
    pixel a coded cell), noise over many classes and levels, and class names at their limit."""
    from qgn.quadtree.qgt import MAX_NAME_BYTES_PER_CLASS, max_file_bytes

    rng = np.random.default_rng(3)
    cases = [(rng.integers(0, 2, (37, 53)), 2, 1), (rng.integers(0, 300, (64, 96)), 300, 6),
             (rng.integers(0, 65534, (40, 40)), 65534, 3)]
    for label, k, levels in cases:
        names = tuple(f"{i:0{MAX_NAME_BYTES_PER_CLASS}d}"[:MAX_NAME_BYTES_PER_CLASS] for i in range(min(k, 300)))
        classes = ClassSet(names) if k <= 300 else None
        qt = Quadtree.from_label(label.astype(np.int64), k, None, levels)
        data = encode_qgt(qt, classes)
        flags = 2 if classes is not None else 0
        bound = max_file_bytes(*label.shape, levels, k, flags)
        assert len(data) <= bound
        assert decode_qgt(data)[0] == qt  # and the reader's check accepts it
    with pytest.raises(ValueError, match="name of class 0 .* is longer than 4096 bytes"):
        ClassSet(("é" * (MAX_NAME_BYTES_PER_CLASS // 2 + 1), "y"))  # no writer is handed one


def test_a_valid_header_followed_by_gigabytes_is_refused_unread(tmp_path):
    """A .qgt whose header is valid but whose file is longer than any file of that header can be:
    refused by its length, reading no more than the header (it was read whole: 2 GiB for 2 GiB)."""
    import os

    qt = Quadtree.from_label(np.arange(24, dtype=np.int64).reshape(4, 6) % 3, 3, None, 2)
    good = encode_qgt(qt, ClassSet.generic(3))
    path = tmp_path / "big.qgt"
    path.write_bytes(good)
    os.truncate(path, 2 << 30)  # sparse: 2 GiB of zeros after a valid file
    tracemalloc.start()
    try:
        with pytest.raises(QgtFormatError, match=r"big\.qgt: corrupt: the file is 2147483648 bytes, more than a "
                                                 r"\.qgt of a 6x4 map"):
            read_qgt(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # the bytes API says the same; a few stray bytes within the bound are still found by the parser
    with pytest.raises(QgtFormatError, match="more than a .qgt of a 6x4 map"):
        decode_qgt(good + bytes(1 << 20))
    with pytest.raises(QgtFormatError, match="unexpected bytes|checksum"):
        decode_qgt(good[:-4] + b"\x00" + good[-4:])
    path.write_bytes(good)
    assert read_qgt(path)[0] == qt


def test_a_file_that_grows_past_its_bound_while_read_is_refused(tmp_path, monkeypatch):
    """The length check does not trust stat alone (a pipe, or a file being appended to): the reader
    reads at most one byte past the bound and refuses then."""
    qt = Quadtree.from_label(np.zeros((4, 6), np.int64), 1, None, 2)
    path = tmp_path / "grows.qgt"
    path.write_bytes(encode_qgt(qt) + bytes(1 << 16))

    class Small:
        st_size = 10
        st_mode = stat.S_IFREG | 0o644  # a regular file (a pipe is refused before any read)

    monkeypatch.setattr(qgt_module.os, "fstat", lambda fd: Small())  # stat says 10 bytes
    with pytest.raises(QgtFormatError, match="grows.qgt: corrupt: the file is .* bytes, more than"):
        read_qgt(path)


@pytest.mark.parametrize("ignore_color, ignore", [((1,), 255), ((1, 2, 3, 4), 255), ((256, 0, 0), 255),
                                                  ((0, 0, 0), 300.5), ((0, 0, 0), True)])
def test_a_class_set_the_format_cannot_hold_is_refused_before_any_file_is_written(ignore_color, ignore):
    # the class block holds 3 bytes of ignore colour and a whole-number ignore value: a one-value
    # colour was written, and the file read back as "corrupt: class ignore flag 3"; 300.5 as 300
    with pytest.raises(ValueError, match="ClassSet: ignore"):
        ClassSet(("a", "b", "c"), (), ignore, ignore_color)


def test_class_set_values_from_json_or_numpy_are_kept_as_whole_numbers():
    classes = ClassSet(("a", "b"), (), np.int64(255), [np.uint8(1), 2.0, 3])
    assert classes.ignore_index == 255 and type(classes.ignore_index) is int and classes.ignore_color == (1, 2, 3)
    assert decode_qgt(encode_qgt(Quadtree.from_label(np.zeros((4, 4), np.uint8), 2, 255, 2), classes))[1] == classes
