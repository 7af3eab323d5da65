"""The ``.qgt`` file format: one image's quadtree labels, losslessly, in a few kilobytes.

A ``.qgt`` file holds a ``Quadtree`` (the map's size, number of levels and classes, ignore value and
leaves) and, optionally, the class names and colours (a ``ClassSet``). Reading it back gives the same
leaves, hence the exact original label map (``Quadtree.to_label``). On CamVid masks a file is about
0.35× the PNG and 0.6× the lossless WebP of the same mask (``benchmarks/bench_quadtree.py``).

API: ``write_qgt(path, qt, classes=None)`` (atomic), ``read_qgt(path) -> (Quadtree, ClassSet|None)``,
``encode_qgt(qt, classes=None) -> bytes``, ``decode_qgt(data) -> (Quadtree, ClassSet|None)``.
Malformed input (not a .qgt file, truncated, corrupt, a newer version, sizes out of bounds) raises
``QgtFormatError`` (a ValueError) and nothing else. Sizes in the header are checked against the
payload before anything is allocated; decoding needs memory in proportion to the label map, which
``max_pixels`` (default ``MAX_PIXELS`` = 2**27 padded pixels) bounds.

Byte layout, version 1 (the format reference)
=============================================

``varint``: unsigned LEB128 (7 bits per byte, low bits first, high bit = "more"; at most 9 bytes,
minimal: no redundant final 0 byte). ``svarint``: a zigzag-encoded signed varint (0, -1, 1, -2 … →
0, 1, 2, 3 …). ``block``: ``method:u8, raw_len:varint, comp_len:varint, data:comp_len bytes``, where
``data`` decompresses to exactly ``raw_len`` bytes with nothing left over; ``method`` is 0 stored
(``raw_len == comp_len``), 1 raw deflate (zlib ``wbits=-15``), 2 raw LZMA1 (``lc=0, lp=0, pb=0``, end
marker present, dictionary at most the next power of two >= max(4096, raw_len)), 3 bzip2 (one
stream). Always ``raw_len <= 2048 * comp_len + 1024``, so a small file cannot claim a big payload
(writers fall back to a weaker method or to stored).

=========  ==========  =====================================================================
field      encoding    meaning
=========  ==========  =====================================================================
magic      4 bytes     ``89 51 47 54`` (``b"\\x89QGT"``)
version    u8          1 (readers refuse versions they do not know)
flags      u8          bit 0: an ignore value follows; bit 1: a class block follows; others 0
height     varint      label map rows H (>= 1)
width      varint      label map columns W (>= 1)
levels     varint      quadtree levels L (1 .. 16); root cells are ``2**(L-1)`` pixels wide
classes    varint      number of classes k (1 .. 65534)
ignore     svarint     the label value of this map's ignore pixels (only if flags bit 0)
class blk  block       names and colours (only if flags bit 1), see below
tree blk   block       the quadtree, see below
crc        u32 LE      CRC-32 (``zlib.crc32``) of every byte before it
=========  ==========  =====================================================================

Class block, decompressed: k × (``varint`` byte length, UTF-8 name); k × 3 bytes RGB palette; 3 bytes
RGB ignore colour; ``u8`` 0 (no ignore index) or 1 followed by the ignore index as ``svarint``. The
class set describes the label space, the header's ignore value this map: writers refuse two
different ignore values, but a map without ignore pixels may carry a class set that has one.

Tree block, decompressed: ``len_a:varint, len_b:varint, A: len_a bytes, B: len_b bytes, C: the
rest``. It stores the T-pyramid (``qgn.quadtree.tpyramid``: code 0 composite, c+1 class c, k+1 VOID
= ignore and padding) at the *coded cells*: every root cell, and every child of a composite cell
that is not entirely in the padding (those are VOID; they are leaves but are not stored). One code
per cell carries both the split bit (composite or not) and the leaf class; the leaves are the
non-composite coded cells plus the padding children of composite cells.

Order: level by level from the root down; within a level in four *phases* by the cell's (row,
column) parity (0,0), (1,1), (0,1), (1,0) — one child position of every composite parent per phase;
within a phase the cells are taken in row-major order and then stably sorted by their context
number (below), which is the order of their symbols in the streams.

Symbols are *ranks* of the code in a candidate list that both sides compute from cells already
known: on the cell's level, its 8 neighbours W N E S NW NE SW SE (weight 6 for W N E S, 1 for the
diagonals); on the parent level, the parent's 8 neighbours (weight 3 for the 3 on the side of the
cell's corner, 1 for the other 5); on levels > 0, the constant "composite" (weight 3). A neighbour
is known if it was decoded earlier, lies under a non-composite parent (it has the parent's code),
or lies entirely in the padding (VOID); neighbours outside the padded grid and cells not decoded yet
do not vote. A code's score is the sum of the weights of the slots holding it; the candidates are
the codes with a positive score, except composite on level 0 (impossible there) and, for a cell in
phase 3 below the root whose siblings N, NE, E hold one same non-composite code, that code
(canonical form forbids it). Candidates are ordered by score (descending), ties by the *fallback
order* F: every code (composite left out on level 0) by how often it was coded so far in this file,
descending, ties by the smaller code. The rank of a code is its position among the candidates, or
``n_candidates + its position in F`` when it is not a candidate.

Context number: ``min(n_candidates, 3) * 6561 + sum_j 3**j * t_j`` over the 8 same-level slots
j = W N E S NW NE SW SE, where ``t_j`` is 0 if the slot holds the first candidate, 1 the second,
2 anything else (or nothing).

Streams: A has one bit per coded cell (1 = rank > 0); B one bit per cell with rank > 0 (1 = rank
> 1); C one varint (at most 3 bytes) per cell with rank > 1: rank - 2. A and B are packed most
significant bit first (``numpy.packbits``), padded with zero bits to whole bytes. Every stream
must be consumed exactly.

Readers check the magic, the version, every header field's range, block lengths against the file
length, the CRC, the decompressed sizes, the streams, and finally the tree (``Quadtree.validate``).

Size bound: a file is at most ``max_file_bytes(header)`` bytes, the largest its header allows -
every cell of every level coded with a 3-byte rank (``n`` cells: ``18 + 2 * ceil(n / 8) + 3 * n``
tree bytes), class names of at most ``MAX_NAME_BYTES_PER_CLASS`` (4,096) bytes per class on average, and
each block's compressed data at most 1/8 + 1,024 bytes larger than its raw data (``stored`` is never
larger). Readers refuse a longer file before reading past its header; no writer makes one (a class
name is at most 4,096 bytes, ``qgn.classes.MAX_CLASS_NAME_BYTES``).
"""
from __future__ import annotations

import bz2
import lzma
import os
import zlib
from pathlib import Path

import numpy as np

from ..classes import MAX_CLASS_NAME_BYTES, ClassSet
from ..fileio import atomic_write_bytes
from .quadtree import Quadtree, QuadtreeError
from .tpyramid import COMPOSITE, MAX_CLASSES, code_dtype, padded_size

MAGIC = b"\x89QGT"
VERSION = 1
MAX_LEVELS = 16

#: Default bound on the padded pixel count a reader accepts (decoding needs memory in proportion).
MAX_PIXELS = 1 << 27
_MAX_RATIO = 2048  # raw_len <= _MAX_RATIO * comp_len + _RATIO_SLACK
_RATIO_SLACK = 1024
_FLAG_IGNORE, _FLAG_CLASSES = 1, 2
#: Class names may hold this many UTF-8 bytes per class on average (see "Size bound"); a
#: `ClassSet` name is at most as long, so no writer makes a longer class block.
MAX_NAME_BYTES_PER_CLASS = MAX_CLASS_NAME_BYTES
_HEADER_MAX = 6 + 5 * 9  # magic, version, flags, four varints and the ignore svarint

METHOD_STORED, METHOD_DEFLATE, METHOD_LZMA, METHOD_BZIP2 = 0, 1, 2, 3
_METHOD_NAMES = {0: "stored", 1: "deflate", 2: "lzma", 3: "bzip2"}

# Traversal: child positions (row parity, column parity) of the four phases of a level.
_PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))
# Same-level neighbour slots (dy, dx): W N E S NW NE SW SE.
_SAME = ((0, -1), (-1, 0), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
_W_EDGE, _W_DIAG, _W_PARENT_NEAR, _W_PARENT_FAR, _W_COMPOSITE = 6, 1, 3, 1, 3
_DENSE_MAX = 64  # alphabets up to this size use dense score tables (same result as the sparse path)
_CHUNK = 32768  # cells per candidate computation (bounds temporary memory)


class QgtFormatError(ValueError):
    """A file or byte string that is not a valid .qgt (corrupt, truncated, newer version, …)."""


# ---------------------------------------------------------------------------------------- varints
def _put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varint must be non-negative")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


class _Reader:
    """Bounds-checked sequential reads from a bytes object; every failure is a QgtFormatError."""

    def __init__(self, data: bytes, end: int):
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise QgtFormatError(
                f"truncated: {what} needs {n} bytes at offset {self.pos}, only {max(self.end - self.pos, 0)} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        value = shift = 0
        for i in range(9):
            byte = self.u8(what)
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise QgtFormatError(f"corrupt: {what} is not a minimal varint")
                return value
        raise QgtFormatError(f"corrupt: {what} is longer than 9 bytes")


def _decode_varints(buf: np.ndarray) -> np.ndarray:
    """All LEB128 varints (each at most 3 bytes, < 2**21) in a uint8 array, vectorised."""
    if len(buf) == 0:
        return np.zeros(0, np.int64)
    ends = np.flatnonzero(buf < 0x80)
    if len(ends) == 0 or ends[-1] != len(buf) - 1:
        raise QgtFormatError("corrupt tree: the rank stream ends inside a number")
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if lengths.max() > 3:
        raise QgtFormatError("corrupt tree: a rank in the stream is out of range")
    values = np.zeros(len(ends), np.int64)
    for j in range(3):
        has = lengths > j
        values[has] |= (buf[starts[has] + j].astype(np.int64) & 0x7F) << (7 * j)
    return values


def _encode_varints(values: np.ndarray) -> bytes:
    """LEB128 varints of non-negative ints < 2**21, vectorised."""
    values = np.asarray(values, np.int64)
    if len(values) == 0:
        return b""
    if values.min() < 0 or values.max() >= 1 << 21:
        raise ValueError("rank out of the varint range")
    nbytes = 1 + (values >= 1 << 7) + (values >= 1 << 14)
    out = np.zeros((len(values), 3), np.uint8)
    for j in range(3):
        out[:, j] = (values >> (7 * j)) & 0x7F
        out[nbytes > j + 1, j] |= 0x80
    return out[np.arange(3)[None, :] < nbytes[:, None]].tobytes()


# ---------------------------------------------------------------------------------------- blocks
def _lzma_filters(size: int) -> list[dict]:
    dict_size = 4096
    while dict_size < size:
        dict_size <<= 1
    return [{"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": 0, "lp": 0, "pb": 0}]


def _compress(method: int, raw: bytes) -> bytes:
    if method == METHOD_STORED:
        return raw
    if method == METHOD_DEFLATE:
        c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
        return c.compress(raw) + c.flush()
    if method == METHOD_LZMA:
        filters = _lzma_filters(len(raw))
        filters[0]["preset"] = 9 | lzma.PRESET_EXTREME
        return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=filters)
    if method == METHOD_BZIP2:
        return bz2.compress(raw, 9)
    raise ValueError(f"unknown method {method}")


def _put_block(out: bytearray, raw: bytes) -> None:
    """Append ``raw`` as a block, with whichever method makes it smallest (within the ratio rule)."""
    best_method, best = METHOD_STORED, raw
    for method in (METHOD_DEFLATE, METHOD_LZMA, METHOD_BZIP2):
        comp = _compress(method, raw)
        if len(comp) < len(best) and len(raw) <= _MAX_RATIO * len(comp) + _RATIO_SLACK:
            best_method, best = method, comp
    out.append(best_method)
    _put_varint(out, len(raw))
    _put_varint(out, len(best))
    out += best


def _read_block_header(r: _Reader, what: str) -> tuple[int, int, bytes]:
    method = r.u8(f"{what} method")
    if method not in _METHOD_NAMES:
        raise QgtFormatError(f"corrupt: unknown compression method {method} in the {what}")
    raw_len = r.varint(f"{what} size")
    comp_len = r.varint(f"{what} compressed size")
    if raw_len > _MAX_RATIO * comp_len + _RATIO_SLACK:
        raise QgtFormatError(
            f"corrupt: the {what} claims {raw_len} bytes from {comp_len} compressed bytes (beyond the format's ratio limit)"
        )
    if method == METHOD_STORED and raw_len != comp_len:
        raise QgtFormatError(f"corrupt: stored {what} has size {comp_len}, header says {raw_len}")
    data = r.take(comp_len, what)
    return method, raw_len, data


def _decompress(method: int, raw_len: int, data: bytes, what: str) -> bytes:
    """Decompress exactly ``raw_len`` bytes; never produces more than ``raw_len + 1``."""
    if method == METHOD_STORED:
        return data
    try:
        if method == METHOD_DEFLATE:
            d = zlib.decompressobj(-15)
            out = d.decompress(data, raw_len + 1)
            ok = d.eof and not d.unused_data and not d.unconsumed_tail
        elif method == METHOD_LZMA:
            d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_lzma_filters(raw_len))
            out = d.decompress(data, max_length=raw_len + 1)
            ok = d.eof and not d.unused_data
        else:
            d = bz2.BZ2Decompressor()
            out = d.decompress(data, max_length=raw_len + 1)
            ok = d.eof and not d.unused_data
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        raise QgtFormatError(f"corrupt: the {what} does not decompress ({_METHOD_NAMES[method]}: {exc})") from None
    if not ok or len(out) != raw_len:
        raise QgtFormatError(
            f"corrupt: the {what} does not decompress to exactly its stated {raw_len} bytes"
        )
    return out


# ---------------------------------------------------------------------------------------- model
def _grid_dtype(void: int) -> np.dtype:
    """Smallest unsigned dtype holding codes 0..void plus a NONE sentinel (its max)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if void < np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError("too many classes")


class _Candidates:
    """The ordered candidate lists of one chunk of a phase's cells (see the module docstring).

    ``C``: (n, m) slot values as read from the grids (``none`` = unknown); ``weights``: (m,) float;
    ``excluded``: (n,) code each cell cannot take (canonical form) or -1; ``posF``: (S,) position
    of each code in the fallback order (S for codes that are not in it).
    Two implementations give identical results: dense score tables for small alphabets, sorted
    (cell, code) groups otherwise.
    """

    def __init__(self, model: "_Model", C: np.ndarray, weights: np.ndarray, level: int, posF: np.ndarray,
                 excluded: np.ndarray | None):
        n = C.shape[0]
        S = model.S
        self.n, self.S = n, S
        tie = S - 1 - posF  # larger for codes earlier in F
        self.dense = model.dense
        if self.dense:
            nc = self._score_table(model, C, weights, level, excluded, tie)
        else:
            nc = self._score_groups(model, C, weights, level, excluded, tie)
        # Kept for the whole phase (the decoder needs every chunk's lists once the ranks are known):
        # small dtypes, exact — dense keys are at most 45 * 64 + 63, codes and counts fit int32.
        small = np.int16 if self.dense else np.int32
        if self.dense:
            self.key = self.key.astype(np.int16)
        self.top1, self.top2, self.nc = self.top1.astype(small), self.top2.astype(small), nc.astype(small)

    def _score_table(self, model: "_Model", C: np.ndarray, weights: np.ndarray, level: int,
                     excluded: np.ndarray | None, tie: np.ndarray) -> np.ndarray:
        """Small alphabets: a dense (n, S) key table; sets ``key``, ``top1``, ``top2``; returns the
        number of candidates of each cell."""
        n, m = C.shape
        S = self.S
        # key = score * S + tie: candidates (score > 0) are exactly the codes with key >= S,
        # ordered by score, then by F; the others keep key = tie < S (fallback order).
        col = (model.lut0 if level == 0 else model.lut)[C]  # code, or S for unknown / impossible
        col += (np.arange(n, dtype=np.int64) * (S + 1))[:, None]
        w = np.broadcast_to(weights, (n, m)).reshape(-1)
        score = np.bincount(col.ravel(), weights=w, minlength=n * (S + 1)).reshape(n, S + 1)[:, :S]
        key = score * S
        key += tie
        if excluded is not None:
            ex = np.flatnonzero(excluded >= 0)
            key[ex, excluded[ex]] = tie[excluded[ex]]
        self.key = key
        nc = np.count_nonzero(key >= S, axis=1)
        rows = np.arange(n)
        top1 = np.argmax(key, axis=1)
        k1 = key[rows, top1]
        key[rows, top1] = -1.0
        top2 = np.argmax(key, axis=1)
        key[rows, top1] = k1
        self.top1 = np.where(nc >= 1, top1, -1)
        self.top2 = np.where(nc >= 2, top2, -1)
        return nc

    def _score_groups(self, model: "_Model", C: np.ndarray, weights: np.ndarray, level: int,
                      excluded: np.ndarray | None, tie: np.ndarray) -> np.ndarray:
        """Large alphabets: sorted (cell, code) groups; sets ``grow``, ``gval``, ``rstart``, ``gpos``,
        ``top1``, ``top2``; returns the number of candidates of each cell."""
        n, m = C.shape
        S = self.S
        Ci = C.astype(np.int64)
        valid = Ci != model.none
        if level == 0:
            valid &= Ci != COMPOSITE
        rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], (n, m))[valid]
        key = rows * S + Ci[valid]
        wts = np.broadcast_to(weights, (n, m))[valid]
        order = np.argsort(key, kind="stable")
        ks = key[order]
        if len(ks):
            start = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
            gscore = np.add.reduceat(wts[order], start)
        else:
            start = np.zeros(0, np.int64)
            gscore = np.zeros(0)
        gkey = ks[start]
        grow, gval = gkey // S, gkey % S
        if excluded is not None:
            gscore = np.where(gval == excluded[grow], 0, gscore)
        keep = gscore > 0
        grow, gval, gscore = grow[keep], gval[keep], gscore[keep]
        o2 = np.lexsort((-tie[gval], -gscore, grow))
        self.grow, self.gval = grow[o2], gval[o2]
        nc = np.bincount(self.grow, minlength=n)
        self.rstart = np.cumsum(nc) - nc
        self.gpos = np.arange(len(self.grow)) - self.rstart[self.grow]
        self.top1 = np.full(n, -1, np.int64)
        self.top2 = np.full(n, -1, np.int64)
        first, second = self.gpos == 0, self.gpos == 1
        self.top1[self.grow[first]] = self.gval[first]
        self.top2[self.grow[second]] = self.gval[second]
        return nc

    def ranks(self, values: np.ndarray, posF: np.ndarray) -> np.ndarray:
        """Encoder: the rank of each cell's true code."""
        if self.dense:
            kv = self.key[np.arange(self.n), values]
            cand = kv >= self.S
            r = np.count_nonzero(self.key > kv[:, None], axis=1)
        else:
            r = np.zeros(self.n, np.int64)
            cand = np.zeros(self.n, bool)
            match = self.gval == values[self.grow]
            r[self.grow[match]] = self.gpos[match]
            cand[self.grow[match]] = True
        return np.where(cand, r, self.nc + posF[values])

    def values(self, ranks: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Decoder: the code at each cell's rank; QgtFormatError for ranks out of range."""
        cand = ranks < self.nc
        if self.dense:
            out = np.where(ranks == 0, self.top1, self.top2)  # right wherever rank < 2 and cand
            deep = np.flatnonzero(cand & (ranks >= 2))
            if len(deep):
                order = np.argsort(-self.key[deep], axis=1, kind="stable")
                out[deep] = order[np.arange(len(deep)), ranks[deep]]
        else:
            out = np.zeros(self.n, np.int64)
            idx = np.flatnonzero(cand)
            out[idx] = self.gval[self.rstart[idx] + ranks[idx]]
        if not cand.all():
            fb = np.flatnonzero(~cand)
            f = ranks[fb] - self.nc[fb]
            if f.max() >= len(F):
                raise QgtFormatError("corrupt tree: a rank points past the end of the code list")
            out[fb] = F[f]
        return out

    def context(self, C_same: np.ndarray) -> np.ndarray:
        """(n,) context numbers (the sorting key of a phase's symbols), < 4 * 3**8."""
        eq1 = C_same == self.top1[:, None]
        eq2 = C_same == self.top2[:, None]
        t = (2 * eq1 + eq2).astype(np.int16) @ _POW3  # t_j = 2 - (2*eq1 + eq2); summed below
        return (np.minimum(self.nc, 3) * 6561 + (6560 - t)).astype(np.int16)


_POW3 = (3 ** np.arange(8)).astype(np.int16)


class _Model:
    """Constants of one traversal: alphabet, grid dtype, lookup tables."""

    def __init__(self, num_classes: int):
        self.void = num_classes + 1
        self.S = S = self.void + 1  # codes 0..void
        self.dt = _grid_dtype(self.void)
        self.none = int(np.iinfo(self.dt).max)
        self.dense = S <= _DENSE_MAX and self.dt == np.uint8
        if self.dense:
            self.lut = np.full(self.none + 1, S, np.int64)  # grid value -> score column
            self.lut[:S] = np.arange(S)
            self.lut0 = self.lut.copy()
            self.lut0[COMPOSITE] = S  # composite is never a candidate on level 0


def _set_ring(K: np.ndarray, padded_shape: tuple[int, int], void: int, none: int) -> None:
    """Fill the one-cell ring around ``K[1:-1, 1:-1]`` (the cells of one level that touch the
    image): VOID where the ring lies in the padding of the padded grid, ``none`` (unknown) where it
    lies outside the grid."""
    h, w = K.shape[0] - 2, K.shape[1] - 2
    pad_bottom, pad_right = h < padded_shape[0], w < padded_shape[1]
    K[0, :] = none
    K[:, 0] = none
    K[h + 1, :] = none
    K[:, w + 1] = none
    if pad_bottom:
        K[h + 1, 1 : w + 1] = void
    if pad_right:
        K[1 : h + 1, w + 1] = void
    if pad_bottom and pad_right:
        K[h + 1, w + 1] = void


def _upsample_into(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[y, x] = src[y // 2, x // 2]`` for the whole of ``dst`` (nearest-neighbour 2×)."""
    h, w = dst.shape
    s = src[: (h + 1) // 2, : (w + 1) // 2]
    dst[0::2, 0::2] = s
    dst[0::2, 1::2] = s[:, : w // 2]
    dst[1::2, 0::2] = s[: h // 2, :]
    dst[1::2, 1::2] = s[: h // 2, : w // 2]


def _traverse(height: int, width: int, levels: int, num_classes: int, coder) -> list[np.ndarray | None]:
    """Visit the coded cells phase by phase; ``coder.phase(level, yy, xx, chunks, ctx, posF, F)``
    returns their codes (the encoder looks them up, the decoder reads ranks).

    Returns the T-pyramid levels (index = level) restricted to the cells that touch the image
    (``ceil(H / 2**l) × ceil(W / 2**l)``; the rest is VOID padding), or None for the levels below
    the last one with a composite cell (nothing there is coded). Memory is proportional to the
    image, not to its padded size.
    """
    model = _Model(num_classes)
    top = levels - 1
    ph, pw = padded_size(height, width, levels)
    S = model.S
    grids: list[np.ndarray | None] = [None] * levels
    hist = np.zeros(S, np.int64)
    parent = None
    for lvl in range(top, -1, -1):
        gh, gw = ph >> lvl, pw >> lvl
        ih, iw = -(-height // (1 << lvl)), -(-width // (1 << lvl))  # cells that touch the image
        if parent is None:
            cy = cx = None  # root cells: generated per phase below, never all at once
        else:
            cy, cx = np.nonzero(parent == COMPOSITE)
            if len(cy) == 0:
                break  # no composite cell: nothing below is coded
        lb = _LevelBuffer(model, parent, ih, iw, gh, gw, lvl)
        for phase, (dy, dx) in enumerate(_PHASES):
            yy, xx = _phase_cells(parent, cy, cx, dy, dx, ih, iw)
            n = len(yy)
            if n == 0:
                continue
            coder.reserve(n)  # the decoder refuses cells its streams cannot hold, before any work
            yy = yy.astype(np.int64)
            xx = xx.astype(np.int64)
            base = (yy + 1) * lb.stride + (xx + 1)
            order_F, posF = _frequency_order(hist, lvl, S)
            chunks, ctx = lb.candidates(yy, xx, base, phase, dy, dx, posF)
            values = coder.phase(lvl, yy, xx, chunks, ctx, posF, order_F)
            lb.buf[base] = values
            hist += np.bincount(values, minlength=S)
            del chunks, ctx  # not alive beside the next phase's: they can be the largest temporaries
        grids[lvl] = parent = lb.inner
    return grids


def _phase_cells(parent, cy, cx, dy: int, dx: int, ih: int, iw: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells (yy, xx) of phase (dy, dx) that touch the image: at the root every such cell in
    row-major order, below it the (dy, dx) child of each composite parent cell (cy, cx)."""
    if parent is None:  # this phase's root cells in row-major order
        rows, cols = np.arange(dy, ih, 2, dtype=np.int64), np.arange(dx, iw, 2, dtype=np.int64)
        return np.repeat(rows, len(cols)), np.tile(cols, len(rows))
    yy, xx = 2 * cy + dy, 2 * cx + dx
    inside = (yy < ih) & (xx < iw)
    if not inside.all():
        yy, xx = yy[inside], xx[inside]
    return yy, xx


def _frequency_order(hist: np.ndarray, lvl: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """The codes by how often they were coded so far, most frequent first (ties: lower code
    first; no composite at level 0), and each code's position in that order (``S`` if absent)."""
    order_F = np.argsort(-hist, kind="stable")
    if lvl == 0:
        order_F = order_F[order_F != COMPOSITE]
    posF = np.full(S, S, np.int64)
    posF[order_F] = np.arange(len(order_F))
    return order_F, posF


class _LevelBuffer:
    """One level's coding state: a flat buffer holding this level's ringed grid K, the parent's
    ringed grid P and a constant COMPOSITE (the "composite" candidate), so that all context slots
    of a cell are one gather. ``inner`` is K without its ring: the level's codes, filled in as its
    cells are coded (those under a non-composite parent are known from the start)."""

    def __init__(self, model: _Model, parent: np.ndarray | None, ih: int, iw: int, gh: int, gw: int, lvl: int):
        void, dt, none = model.void, model.dt, model.none
        self.model, self.parent, self.lvl = model, parent, lvl
        nK = (ih + 2) * (iw + 2)
        if parent is not None:
            self.pstride = parent.shape[1] + 2
            buf = np.empty(nK + (parent.shape[0] + 2) * self.pstride + 1, dt)
            P = buf[nK:-1].reshape(parent.shape[0] + 2, self.pstride)
            P[1:-1, 1:-1] = parent
            _set_ring(P, (gh >> 1, gw >> 1), void, none)
        else:
            buf = np.empty(nK + 1, dt)
        buf[-1] = COMPOSITE
        K = buf[:nK].reshape(ih + 2, iw + 2)
        self.inner = K[1:-1, 1:-1]
        if parent is None:
            self.inner.fill(none)
        else:  # cells under a non-composite parent are known: the parent's code
            _upsample_into(self.inner, np.where(parent != COMPOSITE, parent, dt.type(none)))
        _set_ring(K, (gh, gw), void, none)
        self.buf, self.nK = buf, nK
        self.zero_at = len(buf) - 1
        self.stride = iw + 2
        self.same_off = np.array([oy * self.stride + ox for oy, ox in _SAME], np.int64)
        w_same = (_W_EDGE,) * 4 + (_W_DIAG,) * 4
        w_parent = (_W_PARENT_NEAR,) * 3 + (_W_PARENT_FAR,) * 5
        weights = w_same + ((w_parent if parent is not None else ()) + ((_W_COMPOSITE,) if lvl > 0 else ()))
        self.m = len(weights)
        self.weights = np.array(weights, np.float64)

    def candidates(self, yy, xx, base, phase: int, dy: int, dx: int, posF: np.ndarray) -> tuple[list, np.ndarray]:
        """The candidate lists of the phase's cells (at flat positions ``base``), chunk by chunk to
        bound temporary memory, as [(slice, _Candidates)], and their contexts, concatenated."""
        parent, lvl, m = self.parent, self.lvl, self.m
        if parent is not None:
            pstride = self.pstride
            sy, sx = (1 if dy else -1), (1 if dx else -1)
            poffs = [(0, sx), (sy, 0), (sy, sx), (-sy, -sx), (-sy, 0), (0, -sx), (-sy, sx), (sy, -sx)]
            parent_off = np.array([self.nK + oy * pstride + ox for oy, ox in poffs], np.int64)
            pbase = ((yy >> 1) + 1) * pstride + ((xx >> 1) + 1)
        chunks, ctx = [], []
        for start in range(0, len(yy), _CHUNK):  # bounded temporary memory for huge phases
            sl = slice(start, start + _CHUNK)
            cn = len(base[sl])
            index = np.empty((cn, m), np.int64)
            index[:, :8] = base[sl, None] + self.same_off
            if parent is not None:
                index[:, 8:16] = pbase[sl, None] + parent_off
            if lvl > 0:
                index[:, m - 1] = self.zero_at
            C = self.buf[index]
            excluded = None
            if parent is not None and phase == 3:
                # siblings N, NE, E are known: canonical form excludes their common class
                n_, ne, e = C[:, 1], C[:, 5], C[:, 2]
                same3 = (n_ == ne) & (n_ == e) & (n_ != COMPOSITE)
                excluded = np.where(same3, n_.astype(np.int64), -1)
            cands = _Candidates(self.model, C, self.weights, lvl, posF, excluded)
            chunks.append((sl, cands))
            ctx.append(cands.context(C[:, :8]))
        return chunks, (np.concatenate(ctx) if len(ctx) > 1 else ctx[0])


class _Encoder:
    def __init__(self, pyramid_levels):
        self.levels = pyramid_levels
        self.ranks: list[np.ndarray] = []

    def reserve(self, n: int) -> None:
        pass

    def phase(self, lvl, yy, xx, chunks, ctx, posF, F):
        values = self.levels[lvl][yy, xx].astype(np.int64)
        ranks = np.concatenate([c.ranks(values[sl], posF).astype(np.int32) for sl, c in chunks])  # < 2**21
        self.ranks.append(ranks[np.argsort(ctx, kind="stable")])
        return values


class _Decoder:
    def __init__(self, a_bits: np.ndarray, b_bits: np.ndarray, c_vals: np.ndarray):
        self.a, self.b, self.c = a_bits, b_bits, c_vals
        self.ia = self.ib = self.ic = 0

    def reserve(self, n: int) -> None:
        """Every coded cell has one bit in stream A: a phase of ``n`` cells past its end is corrupt,
        so the decoder's work is bounded by the payload, not by the size the header claims."""
        if self.ia + n > len(self.a):
            raise QgtFormatError("corrupt tree: the rank stream ends before the tree does")

    def phase(self, lvl, yy, xx, chunks, ctx, posF, F):
        n = len(yy)
        if self.ia + n > len(self.a):
            raise QgtFormatError("corrupt tree: the rank stream ends before the tree does")
        a = self.a[self.ia : self.ia + n]
        self.ia += n
        ia = np.flatnonzero(a)
        if self.ib + len(ia) > len(self.b):
            raise QgtFormatError("corrupt tree: the rank stream ends before the tree does")
        b = self.b[self.ib : self.ib + len(ia)]
        self.ib += len(ia)
        ib = ia[b]
        if self.ic + len(ib) > len(self.c):
            raise QgtFormatError("corrupt tree: the rank stream ends before the tree does")
        sorted_ranks = np.zeros(n, np.int32)  # ranks < 2**21 + 2
        sorted_ranks[ia] = 1
        sorted_ranks[ib] = 2 + self.c[self.ic : self.ic + len(ib)]
        self.ic += len(ib)
        ranks = np.empty(n, np.int32)
        ranks[np.argsort(ctx, kind="stable")] = sorted_ranks
        return np.concatenate([c.values(ranks[sl], F) for sl, c in chunks])


def _tree_bytes(qt: Quadtree) -> bytes:
    enc = _Encoder(qt.to_tpyramid().levels)
    _traverse(qt.height, qt.width, qt.num_levels, qt.num_classes, enc)
    ranks = np.concatenate(enc.ranks) if enc.ranks else np.zeros(0, np.int64)
    a = ranks > 0
    b = ranks[a] > 1
    c = ranks[ranks > 1] - 2
    a_bytes, b_bytes = np.packbits(a).tobytes(), np.packbits(b).tobytes()
    out = bytearray()
    _put_varint(out, len(a_bytes))
    _put_varint(out, len(b_bytes))
    return bytes(out) + a_bytes + b_bytes + _encode_varints(c)


def _check_bits(packed: bytes, used: int, what: str) -> None:
    if (used + 7) // 8 != len(packed):
        raise QgtFormatError(f"corrupt tree: the {what} stream has {len(packed)} bytes for {used} cells")
    if used % 8 and packed[-1] & ((1 << (8 - used % 8)) - 1):
        raise QgtFormatError(f"corrupt tree: the {what} stream has non-zero padding bits")


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """np.concatenate without the copy of a single part (a one-level tree's leaves)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _decode_tree(raw: bytes, height: int, width: int, levels: int, num_classes: int,
                 ignore: int | None) -> Quadtree:
    r = _Reader(raw, len(raw))
    len_a = r.varint("tree stream A length")
    len_b = r.varint("tree stream B length")
    a_bytes = r.take(len_a, "tree stream A")
    b_bytes = r.take(len_b, "tree stream B")
    c_bytes = raw[r.pos :]
    top = levels - 1
    ih, iw = -(-height >> top), -(-width >> top)
    if ih * iw > 8 * len_a:
        raise QgtFormatError(
            f"corrupt: {ih * iw} root cells need at least {ih * iw} bits, the tree stream has {8 * len_a}"
        )
    a_bits = np.unpackbits(np.frombuffer(a_bytes, np.uint8)).astype(bool)
    b_bits = np.unpackbits(np.frombuffer(b_bytes, np.uint8)).astype(bool)
    c_vals = _decode_varints(np.frombuffer(c_bytes, np.uint8))
    dec = _Decoder(a_bits, b_bits, c_vals)
    grids = _traverse(height, width, levels, num_classes, dec)
    _check_bits(a_bytes, dec.ia, "A")
    _check_bits(b_bytes, dec.ib, "B")
    if dec.ic != len(c_vals):
        raise QgtFormatError("corrupt tree: trailing data after the tree")
    lv, xs, ys, vs = _leaves(grids, top, num_classes)
    qt = Quadtree(
        _join(lv), _join(xs), _join(ys), _join(vs), levels, num_classes, ignore, height, width,
    )
    del lv, xs, ys, vs, grids, dec, a_bits, b_bits, c_vals  # only the leaves stay while validating
    try:
        qt.validate()
    except QuadtreeError as exc:
        raise QgtFormatError(f"corrupt tree: {exc}") from None
    return qt


def _leaves(grids: list[np.ndarray | None], top: int, num_classes: int) -> tuple[list, list, list, list]:
    """The leaves of the decoded levels, level by level from ``top``, as lists of arrays of their
    levels (uint8), x and y (int32) and values: the uniform cells that are roots or children of
    composite cells; children beyond the stored grids lie wholly in the padding and are VOID leaves."""
    void = num_classes + 1
    vdt = code_dtype(num_classes)
    lv, xs, ys, vs = [], [], [], []
    gh, gw = grids[top].shape
    y, x = np.divmod(np.arange(gh * gw, dtype=np.int32), np.int32(gw))  # the roots, row-major, int32
    for l in range(top, -1, -1):
        if len(y) == 0:
            break
        g = grids[l]
        if g is None:
            raise QgtFormatError("corrupt tree: composite cells without children")
        gh, gw = g.shape
        if l == top:  # the roots: the whole grid, row-major
            v = g.reshape(-1).astype(vdt)
        else:
            inside = (y < gh) & (x < gw)
            v = np.full(len(y), void, vdt)
            v[inside] = g[y[inside], x[inside]]
            del inside
        leaf = v != COMPOSITE
        n_leaves = int(np.count_nonzero(leaf))
        lv.append(np.full(n_leaves, l, np.uint8))
        if n_leaves == len(v):  # all leaves (always on level 0): no copies
            ys.append(y), xs.append(x), vs.append(v)
        else:
            ys.append(y[leaf]), xs.append(x[leaf]), vs.append(v[leaf])
        cy, cx = y[~leaf], x[~leaf]  # composite: their four children are cells of the next level
        if l == 0 and len(cy):
            raise QgtFormatError("corrupt tree: a pixel-level cell is composite")
        y = (2 * cy[:, None] + np.array([0, 0, 1, 1], np.int32)).ravel()
        x = (2 * cx[:, None] + np.array([0, 1, 0, 1], np.int32)).ravel()
        del v, leaf
    return lv, xs, ys, vs


# ---------------------------------------------------------------------------------------- classes
def _class_bytes(classes: ClassSet) -> bytes:
    out = bytearray()
    for name in classes.names:
        b = name.encode("utf-8")
        _put_varint(out, len(b))
        out += b
    for rgb in classes.palette:
        out += bytes(rgb)
    out += bytes(classes.ignore_color)
    if classes.ignore_index is None:
        out.append(0)
    else:
        out.append(1)
        _put_varint(out, _zigzag(int(classes.ignore_index)))
    return bytes(out)


def _decode_classes(raw: bytes, num_classes: int) -> ClassSet:
    r = _Reader(raw, len(raw))
    names = []
    for i in range(num_classes):
        n = r.varint(f"class {i} name length")
        try:
            names.append(r.take(n, f"class {i} name").decode("utf-8"))
        except UnicodeDecodeError:
            raise QgtFormatError(f"corrupt: class {i} name is not UTF-8") from None
    pal = r.take(3 * num_classes, "palette")
    palette = tuple(tuple(pal[3 * i : 3 * i + 3]) for i in range(num_classes))
    ignore_color = tuple(r.take(3, "ignore colour"))
    has_ignore = r.u8("class ignore flag")
    if has_ignore > 1:
        raise QgtFormatError(f"corrupt: class ignore flag {has_ignore}")
    ignore = _unzigzag(r.varint("class ignore value")) if has_ignore else None
    if r.pos != len(raw):
        raise QgtFormatError("corrupt: trailing bytes in the class block")
    try:
        return ClassSet(tuple(names), palette, ignore, ignore_color)  # type: ignore[arg-type]
    except ValueError as exc:
        raise QgtFormatError(f"corrupt: class block: {exc}") from None


def _compressed_max(raw_max: int) -> int:
    """The most compressed bytes a block of at most ``raw_max`` raw bytes is allowed (every method's
    worst-case expansion is far below this; a writer stores a block that would grow)."""
    return raw_max + raw_max // 8 + 1024


def _class_block_max(num_classes: int) -> int:
    """The most raw bytes of a class block for ``num_classes`` classes (see "Size bound")."""
    return num_classes * (9 + 3) + num_classes * MAX_NAME_BYTES_PER_CLASS + 3 + 1 + 9


def max_file_bytes(height: int, width: int, levels: int, num_classes: int, flags: int) -> int:
    """The largest a .qgt file with this header can honestly be (module docstring, "Size bound"):
    every cell of every level coded with the longest rank, and the class block's names bound."""
    ph, pw = padded_size(height, width, levels)
    cells = sum((ph >> level) * (pw >> level) for level in range(levels))
    tree_max = 18 + 2 * (-(-cells // 8)) + 3 * cells
    total = _HEADER_MAX + 19 + _compressed_max(tree_max) + 4
    if flags & _FLAG_CLASSES:
        total += 19 + _compressed_max(_class_block_max(num_classes))
    return total


def _check_file_length(length: int, flags: int, height: int, width: int, levels: int, num_classes: int) -> None:
    bound = max_file_bytes(height, width, levels, num_classes, flags)
    if length > bound:
        raise QgtFormatError(
            f"corrupt: the file is {length} bytes, more than a .qgt of a {width}x{height} map with {levels} levels "
            f"and {num_classes} classes can hold ({bound} bytes at most)"
        )


# ---------------------------------------------------------------------------------------- public
def check_readable_size(height: int, width: int, levels: int, fix: str = "use fewer levels or split the map") -> None:
    """ValueError unless a reader with the default ``max_pixels`` accepts this size: writers apply
    the reader's limit, so they never write a file that ``read_qgt`` then refuses. ``fix``: what
    the message tells the caller's user to do."""
    ph, pw = padded_size(height, width, levels)
    if ph * pw > padded_limit():
        raise ValueError(
            f"a {width}x{height} map ({pw}x{ph} padded for {levels} levels) is larger than a .qgt reader "
            f"accepts ({padded_limit()} padded pixels); {fix}"
        )
    from ..imagefile import check_pixels

    check_pixels(width, height, f"a {width}x{height} map")


def encode_qgt(qt: Quadtree, classes: ClassSet | None = None) -> bytes:
    """The .qgt bytes of a quadtree (and optional class names/colours).

    Raises QuadtreeError (a ValueError) if ``qt`` is not a valid canonical quadtree, ValueError if
    it is outside the format's limits or ``classes`` does not match it.
    """
    if not isinstance(qt, Quadtree):
        raise TypeError(f"encode_qgt needs a Quadtree, got {type(qt).__name__}")
    if not 1 <= qt.num_levels <= MAX_LEVELS:
        raise ValueError(f".qgt supports 1..{MAX_LEVELS} levels; the quadtree has {qt.num_levels}")
    if not 1 <= qt.num_classes <= MAX_CLASSES:
        raise ValueError(f".qgt supports 1..{MAX_CLASSES} classes; the quadtree has {qt.num_classes}")
    if qt.height < 1 or qt.width < 1:
        raise ValueError(f"the quadtree has an empty size {qt.height}x{qt.width}")
    check_readable_size(qt.height, qt.width, qt.num_levels)
    if classes is not None:
        if classes.num_classes != qt.num_classes:
            raise ValueError(
                f"the class list has {classes.num_classes} classes, the quadtree {qt.num_classes}"
            )
        if None not in (classes.ignore_index, qt.ignore_value) and classes.ignore_index != qt.ignore_value:
            raise ValueError(
                f"the class list's ignore value {classes.ignore_index} differs from the quadtree's {qt.ignore_value}"
            )
    for what, value in (("ignore value", qt.ignore_value), ("class ignore index", classes and classes.ignore_index)):
        if value is not None and not -(1 << 62) <= int(value) < 1 << 62:
            raise ValueError(f"the {what} {value} is out of the .qgt range (|v| < 2**62)")
    qt.validate()
    out = bytearray(MAGIC)
    out.append(VERSION)
    flags = (_FLAG_IGNORE if qt.ignore_value is not None else 0) | (_FLAG_CLASSES if classes is not None else 0)
    out.append(flags)
    for v in (qt.height, qt.width, qt.num_levels, qt.num_classes):
        _put_varint(out, int(v))
    if qt.ignore_value is not None:
        _put_varint(out, _zigzag(int(qt.ignore_value)))
    if classes is not None:
        _put_block(out, _class_bytes(classes))
    _put_block(out, _tree_bytes(qt))
    out += zlib.crc32(out).to_bytes(4, "little")
    return bytes(out)


def padded_limit() -> int:
    """The padded cell count a reader accepts by default: ``MAX_PIXELS``, or twice the pixel limit
    when ``QGN_MAX_PIXELS`` raises that above it."""
    from ..imagefile import max_pixels as image_pixel_limit

    return max(MAX_PIXELS, 2 * image_pixel_limit())


def decode_qgt(data: bytes, *, max_pixels: int | None = None) -> tuple[Quadtree, ClassSet | None]:
    """Parse .qgt bytes. ``max_pixels`` bounds the padded size accepted (memory is proportional);
    by default (None) ``padded_limit()``, and the map itself must be within the pixel limit every
    image reader applies (``qgn.imagefile.max_pixels``, ``QGN_MAX_PIXELS``).

    Raises QgtFormatError for anything that is not a valid .qgt file of a supported version.
    """
    try:
        data = bytes(data)
    except TypeError:
        raise QgtFormatError(f"expected bytes, got {type(data).__name__}") from None
    _check_magic_and_version(data)
    r = _Reader(data, len(data) - 4)
    r.pos = 5
    flags, height, width, levels, num_classes = _read_header(r)
    _check_size(height, width, levels, max_pixels)
    _check_file_length(len(data), flags, height, width, levels, num_classes)
    ignore = _unzigzag(r.varint("ignore value")) if flags & _FLAG_IGNORE else None
    class_block = _read_block_header(r, "class block") if flags & _FLAG_CLASSES else None
    tree_block = _read_block_header(r, "tree block")
    if r.pos != r.end:
        raise QgtFormatError(f"corrupt: {r.end - r.pos} unexpected bytes after the tree block")
    if len(data) < r.pos + 4:
        raise QgtFormatError("truncated: the checksum is missing")
    if zlib.crc32(data[: r.end]) != int.from_bytes(data[r.end :], "little"):
        raise QgtFormatError("corrupt: checksum mismatch (the file was damaged or truncated)")
    classes = None
    if class_block is not None:
        classes = _decode_classes(_decompress(*class_block, "class block"), num_classes)
    raw = _decompress(*tree_block, "tree block")
    try:
        qt = _decode_tree(raw, height, width, levels, num_classes, ignore)
    except QgtFormatError:
        raise
    except (ValueError, IndexError, OverflowError) as exc:  # defensive: never leak these
        raise QgtFormatError(f"corrupt tree: {exc}") from None
    return qt, classes


def _check_magic_and_version(data: bytes) -> None:
    """The magic number, at least the six bytes up to the flags, and a version this reader supports."""
    if len(data) < 4 or data[:4] != MAGIC:
        if len(data) < 4 and MAGIC.startswith(data):
            raise QgtFormatError(f"truncated: only {len(data)} bytes (not even the magic number)")
        raise QgtFormatError("not a .qgt file (bad magic number)")
    if len(data) < 6:
        raise QgtFormatError(f"truncated: only {len(data)} bytes")
    version = data[4]
    if version > VERSION:
        raise QgtFormatError(
            f"this file is .qgt version {version}; this reader supports up to version {VERSION} (upgrade qgn)"
        )
    if version < 1:
        raise QgtFormatError(f"corrupt: invalid version {version}")


def _read_header(r: _Reader) -> tuple[int, int, int, int, int]:
    """(flags, height, width, levels, number of classes), each checked against the format's bounds."""
    flags = r.u8("flags")
    if flags & ~(_FLAG_IGNORE | _FLAG_CLASSES):
        raise QgtFormatError(f"corrupt: unknown flags 0x{flags:02x}")
    height = r.varint("height")
    width = r.varint("width")
    levels = r.varint("levels")
    num_classes = r.varint("number of classes")
    if height < 1 or width < 1:
        raise QgtFormatError(f"corrupt: invalid size {height}x{width}")
    if not 1 <= levels <= MAX_LEVELS:
        raise QgtFormatError(f"corrupt: {levels} levels (the format allows 1..{MAX_LEVELS})")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise QgtFormatError(f"corrupt: {num_classes} classes (the format allows 1..{MAX_CLASSES})")
    return flags, height, width, levels, num_classes


def _check_size(height: int, width: int, levels: int, max_pixels: int | None) -> None:
    """Refuse a claimed size beyond the readers' pixel limit (when ``max_pixels`` is None) or a padded
    size beyond ``max_pixels`` (default ``padded_limit()``), before anything is allocated for it."""
    if max_pixels is None:  # the one pixel limit of every reader first: its message names QGN_MAX_PIXELS
        from ..imagefile import check_pixels

        try:
            check_pixels(width, height, "the file's label map")
        except ValueError as exc:
            raise QgtFormatError(str(exc)) from None
    ph, pw = padded_size(height, width, levels)
    limit = padded_limit() if max_pixels is None else max_pixels
    if ph * pw > limit:
        raise QgtFormatError(
            f"the file claims a {width}x{height} label map ({ph}x{pw} padded for {levels} levels), "
            f"more than max_pixels={limit} padded pixels (twice QGN_MAX_PIXELS, at least 2**27); use fewer levels"
        )


def _read_rest(f, expected: int, limit: int) -> bytes:
    """The rest of ``f``: ``expected`` bytes (what stat says is left; allocated once), and, should the
    file hold more (a pipe, a file being appended to), more in 1 MiB steps, but never more than
    ``limit`` + 1 bytes in all."""
    chunks = [f.read(max(expected, 0) + 1)]
    total = len(chunks[0])
    while chunks[-1] and total <= limit and total > expected:
        chunks.append(f.read(min(1 << 20, limit + 1 - total)))
        total += len(chunks[-1])
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def write_qgt(path: str | os.PathLike, qt: Quadtree, classes: ClassSet | None = None) -> None:
    """Write ``qt`` (and optional ``classes``) to ``path`` as .qgt, atomically."""
    atomic_write_bytes(path, encode_qgt(qt, classes))


def read_qgt(path: str | os.PathLike, *, max_pixels: int | None = None, file=None) -> tuple[Quadtree, ClassSet | None]:
    """Read a .qgt file: ``(Quadtree, ClassSet or None)``. QgtFormatError if it is not valid. ``file``: ``path``
    opened already (a binary file object of a regular file, read from its start and closed here)."""
    from ..fileio import open_regular

    path = Path(path)
    with open_regular(path) if file is None else file as f:  # a named pipe or device: refused, never waited on
        head = f.read(_HEADER_MAX)
        if not head:
            raise QgtFormatError(f"{path}: the file is empty")
        try:
            # before the rest is read: another file, a size past the limits, or more bytes than the
            # header allows (a valid header followed by gigabytes) is refused unread
            _check_magic_and_version(head)
            r = _Reader(head, len(head))
            r.pos = 5
            try:
                header = _read_header(r)
            except QgtFormatError:
                header = None  # a header cut short by the file's end: decode_qgt says how
            if header is not None:
                flags, height, width, levels, num_classes = header
                _check_size(height, width, levels, max_pixels)
                size = os.fstat(f.fileno()).st_size
                _check_file_length(size, *header)
                rest = _read_rest(f, size - len(head), max_file_bytes(*header[1:], header[0]) - len(head))
                _check_file_length(len(head) + len(rest), *header)
            else:
                rest = f.read()  # at most a few bytes: the header did not fit in them
        except QgtFormatError as exc:
            raise QgtFormatError(f"{path}: {exc}") from None
        data = head + rest
    try:
        return decode_qgt(data, max_pixels=max_pixels)
    except QgtFormatError as exc:
        raise QgtFormatError(f"{path}: {exc}") from None
