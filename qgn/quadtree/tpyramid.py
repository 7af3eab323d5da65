"""T-pyramids (paper §3.1): a label map merged 2×2 level by level.

Codes inside a pyramid (``TPyramid.levels[l]``):

* ``0``             — COMPOSITE: the cell holds more than one code (it has children in the quadtree);
* ``1 .. k``        — class ``c`` of the label map is stored as ``c + 1``;
* ``k + 1``         — VOID: the label map's ignore value, *and* the padding added to reach a multiple
                      of ``2**(levels-1)``. Void is kept losslessly; it is never a training target.

Level 0 is the (padded) label map itself in these codes; level ``l`` has cells of ``2**l`` pixels.

Ignore policy (how void takes part in the merge ``M``):

* ``"class"`` (default, lossless): void merges as a class of its own. A block mixing void with a
  class is composite. This is the representation of ``Quadtree`` and ``.qgt`` files and the
  convention of ``qgn stats`` (and of ``../shared/data/README.md``).
* ``"wildcard"`` (a training-target view): void never breaks uniformity; a block whose non-void
  pixels are all class ``c`` merges to ``c``, an all-void block stays void. Only level 0 then
  records where the void pixels are; upper levels do not, so this view is for loss targets only.

In both policies void cells are excluded from the loss (``loss_target`` maps them to -1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPOSITE = 0
IGNORE_POLICIES = ("class", "wildcard")

#: The number of quadtree levels: cells of 1 (level 0, pixels) … 32 pixels (level 5), one level per
#: decoder block of a stride-32 encoder. The default of every pyramid, quadtree, file and model.
NUM_LEVELS = 6
#: The coarsest level (cells of ``2**ROOT_LEVEL`` pixels), where the decoder starts.
ROOT_LEVEL = NUM_LEVELS - 1


MAX_CLASSES = 65534  # codes 0 … k+1 must fit in uint16


def code_dtype(num_classes: int) -> np.dtype:
    """The smallest unsigned dtype holding codes ``0 .. num_classes + 1``."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"the number of classes must be in 1..{MAX_CLASSES}; got {num_classes}")
    return np.dtype(np.uint8) if num_classes + 1 <= 255 else np.dtype(np.uint16)


def label_value_dtype(num_classes: int, void_value: int) -> np.dtype:
    """The smallest integer dtype holding class ids ``0 .. num_classes-1`` and ``void_value``."""
    lo, hi = min(0, int(void_value)), max(num_classes - 1, int(void_value))
    candidates = (np.int8, np.int16, np.int32, np.int64) if lo < 0 else (np.uint8, np.uint16, np.uint32, np.uint64)
    return np.dtype(next(t for t in candidates if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max))


def padded_size(height: int, width: int, levels: int) -> tuple[int, int]:
    """``(height, width)`` rounded up to a multiple of the root cell size ``2**(levels-1)``."""
    cell = 1 << (levels - 1)
    return -(-height // cell) * cell, -(-width // cell) * cell


def merge_2x2(codes: np.ndarray) -> np.ndarray:
    """The merge operator M (Eq. 2) on every 2×2 block.

    codes: (2h, 2w) unsigned int — returns (h, w) of the same dtype: the block's code where all
    four agree, else COMPOSITE (so four composite children give a composite parent).
    """
    a = codes[0::2, 0::2]
    uniform = (a == codes[0::2, 1::2]) & (a == codes[1::2, 0::2]) & (a == codes[1::2, 1::2])
    return np.where(uniform, a, codes.dtype.type(COMPOSITE))


def merge_2x2_wildcard(codes: np.ndarray, void: int) -> np.ndarray:
    """M with ``void`` as a wildcard: void children agree with anything, all-void stays void."""
    quads = [codes[0::2, 0::2], codes[0::2, 1::2], codes[1::2, 0::2], codes[1::2, 1::2]]
    # Representative: the first non-void child (void if all are void).
    rep = quads[3].copy()
    for q in quads[2::-1]:
        rep = np.where(q != void, q, rep)
    uniform = np.ones(rep.shape, bool)
    for q in quads:
        uniform &= (q == rep) | (q == void)
    uniform &= rep != COMPOSITE
    return np.where(uniform, rep, codes.dtype.type(COMPOSITE))


def label_to_codes(label: np.ndarray, num_classes: int, ignore_value: int | None, levels: int) -> np.ndarray:
    """Level-0 codes of a label map, padded with VOID to a multiple of ``2**(levels-1)``.

    label: (H, W) integer array, classes ``0..num_classes-1`` plus ``ignore_value``.
    Returns (H', W') codes of ``code_dtype(num_classes)``.
    Raises ValueError for non-integer or non-2-D input, or values outside the class range.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"a label map must be 2-D (H, W); got shape {label.shape}")
    if not (np.issubdtype(label.dtype, np.integer) or label.dtype == np.bool_):
        raise ValueError(f"a label map must hold integers; got dtype {label.dtype}")
    if label.size == 0:
        raise ValueError("a label map must not be empty")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    void = num_classes + 1
    height, width = label.shape
    ph, pw = padded_size(height, width, levels)
    codes = np.full((ph, pw), void, code_dtype(num_classes))
    band = max(1, (1 << 16) // width)  # a band of rows at a time: the temporaries stay a band long
    try:
        for y in range(0, height, band):
            codes[y:min(y + band, height), :width] = _label_codes(label[y:y + band], num_classes, ignore_value)
    except ValueError:
        _raise_bad_values(label, num_classes, ignore_value)  # naming the values of the whole map
        raise
    return codes


def _label_codes(label: np.ndarray, num_classes: int, ignore_value: int | None) -> np.ndarray:
    """(H, W) codes of a label map: class c → c + 1, ignore → VOID. Raises for other values.

    Works in the code dtype with a few vectorised passes when all values fit it (the usual
    uint8/uint16 masks); other maps (negative ignore values, wide ints) go through a table lookup.
    """
    dtype = code_dtype(num_classes)
    lo, hi = int(label.min()), int(label.max())
    if lo < 0 or hi >= np.iinfo(dtype).max:
        return _codes_by_lookup(label, num_classes, ignore_value)
    lab = label.astype(dtype, copy=False)
    invalid = lab >= num_classes
    codes = lab + dtype.type(1)
    if ignore_value is not None and lo <= ignore_value <= hi:
        is_void = lab == ignore_value
        invalid &= ~is_void
        np.putmask(codes, is_void, num_classes + 1)
    if invalid.any():
        _raise_bad_values(label, num_classes, ignore_value)
    return codes


def _codes_by_lookup(label: np.ndarray, num_classes: int, ignore_value: int | None) -> np.ndarray:
    """Map label values to codes with one table lookup; raise for values that are not classes.

    The table spans [min, max] of the label map and maps every value that is neither a class nor
    the ignore value to COMPOSITE, which no level-0 code may be, so one check finds them all.
    """
    lo, hi = int(label.min()), int(label.max())
    if hi - lo >= 1 << 24:  # no table that wide: classes 0..k-1 and an ignore value far from them
        return _codes_by_comparison(label, num_classes, ignore_value)
    table = np.zeros(hi - lo + 1, code_dtype(num_classes))
    classes = np.arange(max(lo, 0), min(hi + 1, num_classes))
    table[classes - lo] = classes + 1
    if ignore_value is not None and lo <= ignore_value <= hi:
        table[ignore_value - lo] = num_classes + 1
    index = label if lo == 0 else label.astype(np.int64) - lo
    codes = table[index]
    if (codes == COMPOSITE).any():
        _raise_bad_values(label, num_classes, ignore_value)
    return codes


def _codes_by_comparison(label: np.ndarray, num_classes: int, ignore_value: int | None) -> np.ndarray:
    """``_codes_by_lookup`` for a value range too wide for a table (a few full-size temporaries)."""
    is_void = label == ignore_value if ignore_value is not None else np.zeros(label.shape, bool)
    is_class = (label >= 0) & (label < num_classes)
    if not (is_void | is_class).all():
        _raise_bad_values(label, num_classes, ignore_value)
    codes = np.where(is_class, label, 0).astype(code_dtype(num_classes)) + 1
    codes[is_void] = num_classes + 1
    return codes


def _raise_bad_values(label: np.ndarray, num_classes: int, ignore_value: int | None) -> None:
    lab = label.astype(np.int64)
    bad = (lab < 0) | (lab >= num_classes)
    if ignore_value is not None:
        bad &= lab != ignore_value
    values = np.unique(lab[bad])[:8].tolist()
    raise ValueError(
        f"label values {values} are outside the classes 0..{num_classes - 1}"
        + (f" and are not the ignore value {ignore_value}" if ignore_value is not None else " (no ignore value set)")
    )


@dataclass(frozen=True, eq=False)
class TPyramid:
    """A complete quadtree of label codes (see module docstring for the codes).

    levels:       ``levels[l]`` is an (H' >> l, W' >> l) array of codes (uint8, or uint16 when
                  k + 1 > 255); H', W' are the padded size, multiples of ``2**(num_levels-1)``.
    num_classes:  k, the number of real classes.
    ignore_value: the label value that became VOID (None if the map had none).
    height/width: the original, unpadded size of the label map.
    policy:       "class" or "wildcard" (how VOID merged).
    """

    levels: tuple[np.ndarray, ...]
    num_classes: int
    ignore_value: int | None
    height: int
    width: int
    policy: str = "class"

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def void(self) -> int:
        """The VOID code, ``k + 1``."""
        return self.num_classes + 1

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.levels[0].shape

    def value(self, level: int, x: int, y: int) -> int:
        """T(l, x, y) (Eq. 5): the code of cell column ``x``, row ``y`` at ``level``. O(1)."""
        return int(self.levels[level][y, x])

    def composite_mask(self, level: int) -> np.ndarray:
        """(H' >> l, W' >> l) bool: cells of ``level`` that are composite (the GTC sites' parents)."""
        return self.levels[level] == COMPOSITE

    def loss_target(self, level: int) -> np.ndarray:
        """(H' >> l, W' >> l) int64 targets for the k+1-way level loss: 0 composite, 1..k classes,
        -1 for VOID cells (excluded from the loss)."""
        t = self.levels[level].astype(np.int64)
        t[t == self.void] = -1
        return t

    def to_label(self) -> np.ndarray:
        """The original label map back: (height, width), ignore pixels = ``ignore_value``, in the
        smallest integer dtype holding the class ids and the ignore value (``label_value_dtype``;
        uint8 for up to 255 classes with ignore 255), one table lookup with no wider temporary.

        Lossless for both policies (level 0 is the label map itself). A map without an ignore
        value uses -1 for VOID, which can then only come from padding (which is cropped away).
        """
        void_out = self.ignore_value if self.ignore_value is not None else -1
        dtype = label_value_dtype(self.num_classes, void_out)
        table = np.arange(-1, self.void, dtype=np.int64)  # code c+1 -> class c, for codes 0 .. void
        table[0] = 0  # composite: never on level 0
        table[self.void] = void_out
        return table.astype(dtype)[self.levels[0][: self.height, : self.width]]


def build_tpyramid(
    label: np.ndarray,
    num_classes: int,
    ignore_value: int | None = None,
    levels: int = NUM_LEVELS,
    policy: str = "class",
) -> TPyramid:
    """Build the T-pyramid of a label map: T_0 = padded codes, T_{l+1} = M(T_l) (Eq. 3).

    label: (H, W) integer array of class ids ``0..num_classes-1`` and ``ignore_value``.
    levels: number of levels L (default 6: cells of 1 … 32 pixels).
    policy: "class" (void merges as its own class; lossless) or "wildcard" (see module doc).
    Padding: up to a multiple of ``2**(levels-1)`` with VOID, cropped away by ``to_label``.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1; got {levels}")
    if policy not in IGNORE_POLICIES:
        raise ValueError(f"ignore policy must be one of {IGNORE_POLICIES}; got {policy!r}")
    codes = label_to_codes(label, num_classes, ignore_value, levels)
    pyramid = [codes]
    for _ in range(levels - 1):
        if policy == "class":
            pyramid.append(merge_2x2(pyramid[-1]))
        else:
            pyramid.append(merge_2x2_wildcard(pyramid[-1], num_classes + 1))
    height, width = np.asarray(label).shape
    return TPyramid(tuple(pyramid), num_classes, ignore_value, height, width, policy)
