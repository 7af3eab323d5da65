"""What the app knows about one image (no widgets, no torch at import time).

``ImageDocument``  an image file, its ground truth (if found), the result on screen and the
                   accuracy-vs-compute points measured so far.
``SchemeChoice``   the user's propagation choice (scheme, τ, entropy threshold, depth).
``RenderResult``   everything the canvas and panels show for one prediction, as numpy arrays
                   produced on the worker thread from a ``qgn.infer.Prediction``.
``pixel_info``     what lies under the mouse: a lookup in a ``RenderResult``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qgn.quadtree import ROOT_LEVEL
from qgn_studio.discovery import find_ground_truth

LEVELS = tuple(range(ROOT_LEVEL, -1, -1))  # 5 … 0, coarse to fine

# scheme choice → (label shown in the UI, qgn.propagation scheme name)
SCHEME_CHOICES = {
    "all": ("All", "all"),
    "pc": ("PC", "pc"),
    "pc_tau": ("PC, threshold τ", "pc"),
    "uncertainty": ("Uncertainty", "uncertainty"),
    "gtc": ("GTC (ground truth)", "gtc"),
}


@dataclass(frozen=True)
class SchemeChoice:
    """A propagation scheme as the explore panel offers it (with its τ, entropy threshold and depth).

    scheme:  a key of ``SCHEME_CHOICES``.
    tau:     the P(composite) threshold of "pc_tau" (0..1).
    entropy: the normalised-entropy threshold of "uncertainty" (0..1).
    depth:   the finest level computed, 5 (root only) … 0 (pixels).
    """

    scheme: str = "pc"
    tau: float = 0.5
    entropy: float = 0.5
    depth: int = 0

    def __post_init__(self):
        if self.scheme not in SCHEME_CHOICES:
            raise ValueError(f"unknown scheme {self.scheme!r}; choose one of {', '.join(SCHEME_CHOICES)}")
        if not 0 <= self.depth <= ROOT_LEVEL:
            raise ValueError(f"depth must be in 0..{ROOT_LEVEL}; got {self.depth}")

    def scheme_arguments(self) -> dict:
        """Keyword arguments of ``qgn.propagation.Scheme`` for this setting."""
        args = {"name": SCHEME_CHOICES[self.scheme][1], "depth": self.depth}
        if self.scheme == "pc_tau":
            args["tau"] = round(self.tau, 4)
        if self.scheme == "uncertainty":
            args["entropy"] = round(self.entropy, 4)
        return args

    def family(self) -> tuple:
        """The setting without its depth: points of one accuracy-vs-compute curve share it."""
        args = self.scheme_arguments()
        args.pop("depth")
        return tuple(sorted(args.items()))

    def describe(self) -> str:
        text = SCHEME_CHOICES[self.scheme][0]
        if self.scheme == "pc_tau":
            text = f"PC τ={self.tau:.2f}"
        elif self.scheme == "uncertainty":
            text = f"Uncertainty H>{self.entropy:.2f}"
        return f"{text}, depth Q{self.depth}"

    def with_depth(self, depth: int) -> "SchemeChoice":
        return SchemeChoice(self.scheme, self.tau, self.entropy, depth)


@dataclass
class LevelView:
    """One computed decoder level Q̂l, cropped to the cells that cover the image.

    codes:         (h, w) int16 argmax code: 0 composite, c+1 class c, -1 not computed.
    probabilities: (k+1, h, w) float32 softmax, NaN where not computed.
    entropy:       (h, w) float32 normalised entropy in [0, 1], NaN where not computed.
    num_sites:     active sites computed at this level.
    extras:        display objects kept with the view: the Qt paths the worker attaches, and the
                   pictures the canvas colours once per view (coarse views are shared by results).
    """

    level: int
    codes: np.ndarray
    probabilities: np.ndarray
    entropy: np.ndarray
    num_sites: int
    extras: dict = field(default_factory=dict, repr=False)

    @property
    def cell(self) -> int:
        return 1 << self.level

    @property
    def composite(self) -> np.ndarray:
        """(h, w) float32 P(composite), NaN where not computed."""
        return self.probabilities[0]


@dataclass
class RenderResult:
    """One prediction of one image, ready to display (built on the worker thread).

    label:            (H, W) int64 predicted class ids, original size (padding cropped).
    levels:           level → LevelView for each computed level, coarse first, at the working
                      size (the model's own resolution; see ``qgn.infer``).
    leaves:           (level, x, y) arrays of the predicted quadtree's leaves, at the working size,
                      as the image shows them (``qgn.quadtree.quadtree.image_leaves``: a cell
                      straddling the right/bottom edge is one leaf, clipped there by the canvas).
    working_size:     (h, w) the network saw; None or equal to ``size`` when it saw the image as is.
    truth_note:       why there are no metrics although ground truth exists (it does not fit the
                      model's classes), or None.
    domain:           the image's ``qgn.domain.DomainVerdict`` for the model (is it like the
                      model's training images?), or None when the model has no domain reference.
    cost:             the ``qgn.infer.Cost`` of this setting.
    metrics:          {"miou", "accuracy"} against the ground truth, or None without one.
    activation_bytes: decoder activation memory from qgn, or None when qgn cannot tell.
    """

    path: Path
    setting: SchemeChoice
    label: np.ndarray
    levels: dict[int, LevelView]
    leaves: tuple[np.ndarray, np.ndarray, np.ndarray]
    cost: object
    metrics: dict | None
    activation_bytes: int | None
    device: str
    working_size: tuple[int, int] | None = None
    truth_note: str | None = None
    domain: object = None
    extras: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.label.shape

    @property
    def grid_size(self) -> tuple[int, int]:
        """(h, w) of the grid the levels and leaves live on (the working size)."""
        return tuple(self.working_size) if self.working_size else tuple(self.size)

    @property
    def grid_scale(self) -> tuple[float, float]:
        """(fy, fx): image pixels per working pixel (1, 1 when the model saw the image as is)."""
        (H, W), (h, w) = self.size, self.grid_size
        return H / h, W / w

    @property
    def finest_level(self) -> int:
        return min(self.levels)


@dataclass(frozen=True)
class CurvePoint:
    """One point of the accuracy-vs-compute plot."""

    path: Path
    setting: SchemeChoice
    decoder_macs: int
    total_macs: int
    miou: float
    accuracy: float


@dataclass(frozen=True)
class PixelInfo:
    """What the finest computed cell under a pixel says (see ``pixel_info``)."""

    x: int
    y: int
    level: int
    cell_x: int
    cell_y: int
    code: int
    label: int
    confidence: float
    composite: float
    entropy: float
    truth: int | None


def pixel_info(result: RenderResult, x: float, y: float, truth: np.ndarray | None = None) -> PixelInfo | None:
    """The finest computed cell covering pixel (x, y): the cell whose prediction the pixel shows.

    ``label`` is the class the pixel is decoded to, ``confidence`` that class's probability in the
    cell, ``code`` the cell's own argmax (0 = composite). None outside the image.
    """
    h, w = result.size
    if not (0 <= x < w and 0 <= y < h):
        return None
    x, y = int(x), int(y)
    fy, fx = result.grid_scale
    gh, gw = result.grid_size
    gx, gy = min(int(x / fx), gw - 1), min(int(y / fy), gh - 1)
    for level in sorted(result.levels):
        view = result.levels[level]
        cx, cy = gx >> level, gy >> level
        if not (0 <= cy < view.codes.shape[0] and 0 <= cx < view.codes.shape[1]):
            return None
        code = int(view.codes[cy, cx])
        if code < 0:
            continue
        label = int(result.label[y, x])
        probs = view.probabilities[:, cy, cx]
        gt = int(truth[y, x]) if truth is not None and y < truth.shape[0] and x < truth.shape[1] else None
        return PixelInfo(x, y, level, cx, cy, code, label, float(probs[label + 1]), float(probs[0]),
                         float(view.entropy[cy, cx]), gt)
    return None


def hover_text(doc, result: RenderResult | None, classes, annotating: bool, x: float, y: float) -> str:
    """The status bar's readout of image pixel (x, y) (html; "" outside the image): its RGB, then
    while ``annotating`` the annotation's class there (and the prediction it started from), else
    the prediction's cell, class, confidence, composite probability, entropy and ground truth
    (``classes``: the model's; nothing of the prediction without them)."""
    parts = [f"x {int(x)}  y {int(y)}"]
    if doc is not None and doc.image is not None:
        h, w = doc.image.shape[:2]
        if not (0 <= x < w and 0 <= y < h):  # the mouse stayed where a larger image was (N/P)
            return ""
        r, g, b = doc.image[int(y), int(x)]
        parts.append(f"RGB {r} {g} {b}")
    session = None if doc is None else doc.annotation
    if annotating and session is not None and doc.image is not None:
        # annotating: the class under the pointer is the annotation's, not the prediction's
        names = session.classes.names
        value = int(session.label[int(y), int(x)])
        parts.append(f"annotation: <b>{names[value] if value < len(names) else 'ignore'}</b>")
        if session.reference is not None:
            ref = int(session.reference[int(y), int(x)])
            parts.append(f"prediction: {names[ref] if ref < len(names) else 'ignore'}")
        return "  │  ".join(parts)
    info = None if result is None else pixel_info(result, x, y, None if doc is None else doc.ground_truth)
    if info is not None and classes is not None:
        parts.append(f"Q̂{info.level} cell ({info.cell_x}, {info.cell_y})")
        parts.append(f"<b>{classes.names[info.label]}</b> {100 * info.confidence:.0f} %")
        state = "composite" if info.code == 0 else "leaf"
        parts.append(f"{state} · P(composite) {100 * info.composite:.0f} % · entropy {info.entropy:.2f}")
        if info.truth is not None:
            name = classes.names[info.truth] if 0 <= info.truth < classes.num_classes else "ignore"
            parts.append(f"truth: {name}")
    return "  │  ".join(parts)


def truth_note_html(note: str) -> str:
    """A result's ``truth_note`` (ground truth whose values are not the model's classes) as the
    canvas's warning: the bundled model that fits it, when the note names one, as a ``model:NAME`` link."""
    import html
    import re

    text = html.escape(note)
    fit = re.search(r"the bundled model '([^']+)' fits it", note)
    if not fit:
        return text + ". The prediction is shown; accuracy is not (open a model with these classes: Ctrl+M)."
    return (text.split("; the bundled model")[0] + ". The prediction is shown; accuracy is not. "
            f"<a href=\"model:{fit.group(1)}\" style=\"color:white\"><b>Use the bundled model "
            f"'{fit.group(1)}'</b></a>, whose classes fit it.")


class ImageDocument:
    """An image file and what belongs to it. ``load()`` runs on the worker thread.

    image:        (H, W, 3) uint8, None until loaded.
    ground_truth: (H, W) integer label map, or None.
    gt_path:      where the ground truth came from.
    gt_ignored:   why the ground-truth file found beside the image is not used (unreadable, another
                  size), naming it and what to do; None when there is none or it is used.
    notes:        messages for the user (e.g. why a ground-truth file was ignored).
    error:        why the image could not be read (then ``image`` stays None).
    result:       the RenderResult on screen for this image.
    curve:        (setting family, depth) → CurvePoint, measured so far.
    reference:    depth → total decoder MACs of the All scheme (for "MACs relative to All").
    truth_problem: why the ground truth cannot be used with the current model (its values are
                  not the model's classes), or None; set by the worker with each prediction.
    annotation:   the ``AnnotationSession`` being edited (``qgn_studio.annotation_doc``), or None;
                  it stays for the app's lifetime (with its undo log) once started.
    done:         the user marked the image's annotation finished.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.image: np.ndarray | None = None
        self.ground_truth: np.ndarray | None = None
        self.gt_path: Path | None = None
        self.gt_ignored: str | None = None
        self.notes: list[str] = []
        self.error: str | None = None
        self.result: RenderResult | None = None
        self.curve: dict[tuple, CurvePoint] = {}
        self.reference: dict[int, int] = {}
        self.truth_problem: str | None = None
        self._truth_checked: tuple | None = None
        self.annotation = None
        self.done = False
        self.file_stamp: tuple | None = None  # (size, mtime_ns) of the file when it was read

    @staticmethod
    def _stamp(path: Path) -> tuple | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def file_changed(self) -> bool:
        """Whether the file on disk is no longer the one that was read (or found missing)."""
        return self.loaded and self._stamp(self.path) != self.file_stamp

    def forget_load(self) -> None:
        """Forget what reading the file gave (an error, notes, results), so it is read again."""
        self.image = self.ground_truth = self.gt_path = self.gt_ignored = self.error = self.result = None
        self.notes, self.curve, self.reference = [], {}, {}
        self.truth_problem = self._truth_checked = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def loaded(self) -> bool:
        return self.image is not None or self.error is not None

    @property
    def size(self) -> tuple[int, int] | None:
        """(height, width) once loaded."""
        return None if self.image is None else self.image.shape[:2]

    def load(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Read the image and look for its ground truth; failures become ``error`` / ``notes``.
        ``should_stop()`` (None: never) is polled as the file's blocks are read (``read_rgb``):
        ImageReadStopped when true, nothing kept (it is read again when asked for)."""
        from qgn.imagefile import ImageReadStopped

        if self.loaded:
            return
        self.file_stamp = self._stamp(self.path)
        try:
            self.image = read_image(self.path, should_stop)
        except ImageReadStopped:
            raise
        except Exception as exc:  # any unreadable file becomes a message
            self.error = f"cannot read {self.path.name}: {describe_error(exc)}"
            return
        transparent = transparent_share(self.path)
        if transparent:
            self.notes.append(f"{self.path.name} has transparent pixels ({100 * transparent:.1f} %): the app shows "
                              "and predicts their colour as stored (the alpha channel is ignored)")
        gt_path = find_ground_truth(self.path)
        if gt_path is None:
            return
        try:
            label = read_ground_truth(gt_path)
        except Exception as exc:
            self._ignore_truth(gt_path, describe_error(exc))
            return
        if label.shape != self.image.shape[:2]:
            (lh, lw), (ih, iw) = label.shape, self.image.shape[:2]
            self._ignore_truth(gt_path, f"it is {lw}×{lh}, the image {iw}×{ih}")
            return
        self.ground_truth, self.gt_path = label, gt_path

    def _ignore_truth(self, gt_path: Path, why: str) -> None:
        self.notes.append(f"ground truth {gt_path.name} ignored: {why}")
        self.gt_ignored = f"the ground truth {gt_path} is not used: {why} (fix or replace that file)"

    def usable_truth(self, classes, model_name: str | None = None) -> np.ndarray | None:
        """The ground truth when its values are classes of ``classes`` (a qgn ClassSet) and its own
        ``classes.txt``, if one lies beside it, names them as ``classes`` does; else None with
        ``truth_problem`` saying which file holds which values or names, and which bundled model fits."""
        if self.ground_truth is None:
            self.truth_problem = None
            return None
        key = (id(classes), model_name)
        if self._truth_checked != key:
            from qgn.ground_truth import fitting_bundled_models, foreign_values, mismatch_message

            present = np.unique(self.ground_truth)  # once: every check below reads values, not pixels
            values = foreign_values(present, classes)
            source = self.gt_path.name if self.gt_path is not None else "the ground truth"
            self.truth_problem = None if not values.size else mismatch_message(
                values, classes, source, model_name, fitting_bundled_models(present, model_name))
            if self.truth_problem is None:
                self.truth_problem = self._misnamed_problem(present, classes, source, model_name)
            self._truth_checked = key
        return None if self.truth_problem else self.ground_truth

    def _misnamed_problem(self, present: np.ndarray, classes, source: str, model_name: str | None) -> str | None:
        """Why the ground truth, whose values are ``present``, does not fit ``classes`` by name (its
        own ``classes.txt`` calls its ids otherwise), or None: no class list beside it, an
        unreadable one, or the same names."""
        from qgn.ground_truth import fitting_bundled_models, misnamed_classes, misnamed_message
        from qgn.quadtree.label_io import read_classes_file
        from qgn_studio.discovery import find_classes_file

        classes_file = None if self.gt_path is None else find_classes_file(self.gt_path)
        if classes_file is None:
            return None
        try:
            truth_classes = read_classes_file(classes_file)
        except (OSError, ValueError):
            return None  # not a class list this app can read: the values alone decide
        misnamed = misnamed_classes(present, truth_classes, classes)
        if not misnamed:
            return None
        fitting = fitting_bundled_models(present, model_name, truth_classes)
        return misnamed_message(misnamed, source, classes_file.name, model_name, fitting)

    def unload(self) -> bool:
        """Drop the decoded image and ground truth (``load`` reads them again when the image is
        shown again), unless its annotation has unsaved edits; returns whether it did. A saved
        annotation stays (its map and undo log), as does what was measured (curve, reference):
        they are small and still true. (A map with unsaved edits keeps its image: were the file
        replaced meanwhile by one of another size, reading it again would set the map aside.)"""
        if (self.annotation is not None and self.annotation.dirty) or self.image is None:
            return False
        self.image = None
        self.ground_truth = None
        self.gt_path = self.gt_ignored = None
        self.notes = []
        self._truth_checked = None
        return True

    def forget_results(self) -> None:
        """Drop results and measurements (after a model or device change)."""
        self.result = None
        self.curve.clear()
        self.reference.clear()


def describe_error(exc: BaseException) -> str:
    """``exc`` in one line for a person; a system error (a full disk, a read-only folder) as
    "<file>: <reason> (<what to do>)" (``qgn.fileio.os_error_text``)."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        from qgn.fileio import os_error_text

        text = os_error_text(exc)
    else:
        text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def read_image(path: Path, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any image Pillow reads (8/16-bit, gray, RGBA …); ``should_stop``:
    ``qgn.data.imageio.read_rgb``'s."""
    from qgn.data.imageio import read_rgb

    image = read_rgb(path, should_stop)
    if image.size == 0:
        raise ValueError("the image is empty")
    return image


def transparent_share(path: Path) -> float:
    """The share of pixels an alpha channel (or a palette's transparency) makes less than opaque;
    0.0 for images without one (or unreadable)."""
    from qgn.imagefile import open_image

    try:
        with open_image(path) as image:
            if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
                return 0.0
            alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    except Exception:  # reading the image itself reports problems
        return 0.0
    return float(np.count_nonzero(alpha < 255)) / max(alpha.size, 1)


def read_ground_truth(path: Path) -> np.ndarray:
    """(H, W) integer label map from a .qgt file or a single-channel label image."""
    from qgn.quadtree.label_io import read_label_file

    return read_label_file(path)


def cell_size_text(level: int, result=None) -> str:
    """A level-``level`` cell's size on the image: ``1 << level`` px at the model's resolution,
    times the image / model scale when the model runs at a working scale (a half-scale model's
    Q2 cells are 8×8 image pixels)."""
    cell = float(1 << level)
    if result is not None and getattr(result, "grid_size", None) and tuple(result.grid_size) != tuple(result.size):
        cell *= result.size[1] / result.grid_size[1]
    text = f"{cell:.0f}" if abs(cell - round(cell)) < 0.05 else f"{cell:.1f}"
    return f"{text}×{text} px"


def human_count(value: float, unit: str = "") -> str:
    """1234567 → '1.23 M' (k, M, G, T)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        text = _three_digits(value / factor)
        if abs(float(text)) >= 1:  # as rounded: 999 700 is "1 M" (it was "1e+03 k")
            return f"{text} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _three_digits(value: float) -> str:
    """``value`` to three significant digits, never in exponent form (1234.5 → '1234')."""
    return f"{value:.3g}" if abs(value) < 999.5 else f"{value:.0f}"


def human_bytes(value: int | None) -> str:
    if value is None:
        return "–"
    for factor, prefix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        text = _three_digits(value / factor)
        if float(text) >= 1:  # as rounded: 1 MiB less 10 bytes is "1 MiB" (it was "1.02e+03 KiB")
            return f"{text} {prefix}"
    return f"{value} B"


TAU_SWEEP = (0.1, 0.3, 0.5, 0.7, 0.9)
# Background measurements stop above the level whose grid has more cells than this: a dense
# pixel level of a large image takes minutes on a CPU (and cannot be interrupted half-way).
REFERENCE_SITE_LIMIT = 400_000


def reference_depth(size: tuple[int, int]) -> int:
    """The finest depth the All reference is measured to for an image of ``size`` (H, W)."""
    ph, pw = -(-size[0] // 32) * 32, -(-size[1] // 32) * 32
    depth = 0
    while (ph >> depth) * (pw >> depth) > REFERENCE_SITE_LIMIT and depth < ROOT_LEVEL:
        depth += 1
    return depth


def measurement_plan(doc: ImageDocument, setting: SchemeChoice) -> list[tuple[str, SchemeChoice]]:
    """Background measurements for the explore panel, most wanted first, skipping known ones.

    With ground truth: the current scheme at every depth, All at the current depth, the τ sweep
    (scheme "pc_tau"), PC at every depth, then All at every depth ("curve" tasks). Without: only
    the All reference at the current depth ("reference"). Nothing below ``reference_depth``:
    on a large image a background run there would take minutes (and any scheme can come close
    to All).
    """
    tasks: list[tuple[str, SchemeChoice]] = []
    seen: set = set()
    finest_all = reference_depth(doc.size if doc.result is None else doc.result.grid_size)

    def want(kind: str, s: SchemeChoice) -> None:
        key = (kind, s.family(), s.depth)
        known = doc.curve if kind == "curve" else None
        if key in seen or s.depth < finest_all:  # any scheme can come close to All there
            return
        if (kind == "curve" and (s.family(), s.depth) in known) or (kind == "reference" and s.depth in doc.reference):
            return
        seen.add(key)
        tasks.append((kind, s))

    if doc.ground_truth is None or doc.truth_problem:
        want("reference", SchemeChoice("all", depth=setting.depth))
        return tasks
    for depth in LEVELS:
        want("curve", setting.with_depth(depth))
    want("curve", SchemeChoice("all", depth=setting.depth))
    if setting.scheme == "pc_tau":
        for tau in TAU_SWEEP:
            for depth in LEVELS:
                want("curve", SchemeChoice("pc_tau", tau=tau, depth=depth))
    for depth in LEVELS:
        want("curve", SchemeChoice("pc", depth=depth))
    for depth in LEVELS:
        want("curve", SchemeChoice("all", depth=depth))
    return tasks
