"""Annotation effort (issue #14): actions a simulated annotator needs per image, four ways.

- ``scratch``: from an empty map (every pixel ignore);
- ``model``: from the model's prediction (PC);
- ``loop``: like ``model``, but after every ``every`` images the model is fine-tuned on all images
  corrected so far (``qgn.train.finetune``, starting from the latest model);
- ``loop_uncertainty``: ``loop`` taking, before each block of ``every`` images, the remaining
  images most uncertain under the latest model first (``qgn.uncertainty``).

The annotator and the anchors (quadtree leaves, polygon vertices) are ``qgn.bench.annotate_sim``.
A model whose classes differ from the data's is transferred first (``qgn.model.transfer``).
Besides the actions, the ``model`` run records both uncertainty measures of every image and their
Spearman correlation with its actions; ``loop_uncertainty`` orders by the better-correlated one
unless ``measure`` is given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from qgn.bench.annotate_sim import gt_leaves, polygon_vertices, simulate_annotator
from qgn.bench.rows import BenchRow
from qgn.propagation import Scheme
from qgn.uncertainty import MEASURES, image_uncertainty, order_by_uncertainty, spearman

SCENARIOS = ("scratch", "model", "loop", "loop_uncertainty")


@dataclass
class AnnotateConfig:
    """every: fine-tune after this many images; iterations: per fine-tune; target: pixel accuracy
    an image is corrected to; measure: uncertainty order of loop_uncertainty (None: the measure
    with the higher Spearman correlation with the ``model`` actions)."""

    every: int = 5
    iterations: int = 40
    batch_size: int = 2
    target: float = 0.99
    scheme: str = "pc"
    measure: str | None = None
    seed: int = 0
    scenarios: tuple[str, ...] = SCENARIOS


@dataclass
class Sequence:
    """One scenario's run: per image in the order annotated, its name, actions, clicks, strokes and
    the starting map's pixel accuracy; the seconds of each fine-tune."""

    name: str
    names: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    clicks: list = field(default_factory=list)
    strokes: list = field(default_factory=list)
    start_accuracy: list = field(default_factory=list)
    finetune_seconds: list = field(default_factory=list)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def add(self, name, effort) -> None:
        self.names.append(name)
        self.actions.append(effort.actions)
        self.clicks.append(effort.clicks)
        self.strokes.append(effort.strokes)
        self.start_accuracy.append(effort.accuracy_start)


def model_scale(model) -> float:
    """The image scale the benchmark feeds ``model``: its training ``input_scale`` (recorded in
    ``extra["train"]``) when the model config has no ``input_scale`` of its own — with one,
    inference resizes by itself — else 1."""
    if hasattr(model.config, "input_scale"):
        return 1.0
    train = model.config.extra.get("train", {}) if isinstance(model.config.extra, dict) else {}
    return float(train.get("input_scale") or 1.0)


def resize_pair(image: np.ndarray | None, label: np.ndarray | None, scale: float, size=None):
    """``image`` (H, W, 3) uint8 bilinear and ``label`` (H, W) int nearest, resized by ``scale``
    (or to ``size`` (w, h)); None stays None."""
    from PIL import Image

    ref = image if image is not None else label
    h, w = ref.shape[:2]
    size = size or (max(1, round(w * scale)), max(1, round(h * scale)))
    out_image = None if image is None else np.array(Image.fromarray(image).resize(size, Image.BILINEAR))
    out_label = None if label is None else np.array(
        Image.fromarray(np.asarray(label).astype(np.int32)).resize(size, Image.NEAREST)).astype(np.int64)
    return out_image, out_label


class _Predicted:
    """A prediction at the model's scale and its label at the image's full size."""

    def __init__(self, prediction, label):
        self.prediction, self._label = prediction, label

    def label(self) -> np.ndarray:
        return self._label


def _predict(model, image, scheme):
    from qgn.infer import predict

    scale = model_scale(model)
    if scale == 1.0:
        prediction = predict(model, image, Scheme(scheme))
        return _Predicted(prediction, prediction.label())
    small, _ = resize_pair(image, None, scale)
    prediction = predict(model, small, Scheme(scheme))
    _, label = resize_pair(None, prediction.label(), 1.0, (image.shape[1], image.shape[0]))
    return _Predicted(prediction, label)


def _finetune(model, images, labels, config: AnnotateConfig):
    from qgn.train.finetune import FinetuneConfig, finetune

    scale = model_scale(model)
    pairs = [resize_pair(im, lab, scale) if scale != 1.0 else (im, lab.astype(np.int64))
             for im, lab in zip(images, labels)]
    cfg = FinetuneConfig(iterations=config.iterations, batch_size=config.batch_size, seed=config.seed)
    start = time.perf_counter()
    tuned = finetune(model, [p[0] for p in pairs], [p[1] for p in pairs], cfg).model
    return tuned, time.perf_counter() - start


def run_scratch(samples, classes, config, log) -> Sequence:
    seq = Sequence("scratch")
    start = time.perf_counter()
    for i, s in enumerate(samples):
        empty = np.full(s.label.shape, classes.ignore_index)
        effort, _ = simulate_annotator(s.label, empty, classes, config.target)
        seq.add(s.name, effort)
        log(f"scratch {i + 1}/{len(samples)}: {effort.actions} actions")
    seq.seconds = time.perf_counter() - start
    return seq


def run_model(model, samples, classes, config, log) -> Sequence:
    seq = Sequence("model")
    start = time.perf_counter()
    scores = {m: [] for m in MEASURES}
    for i, s in enumerate(samples):
        prediction = _predict(model, s.image, config.scheme)
        unc = image_uncertainty(prediction.prediction)
        for m in MEASURES:
            scores[m].append(unc.score(m))
        effort, _ = simulate_annotator(s.label, prediction.label(), classes, config.target)
        seq.add(s.name, effort)
        log(f"model {i + 1}/{len(samples)}: {effort.actions} actions")
    seq.seconds = time.perf_counter() - start
    seq.extra = {"uncertainty": scores,
                 "spearman": {m: spearman(scores[m], seq.actions) for m in MEASURES}}
    return seq


def run_loop(model, samples, classes, config, log, measure: str | None = None) -> Sequence:
    """``loop`` (``measure`` None: the given order) or ``loop_uncertainty`` (ordered by ``measure``)."""
    seq = Sequence("loop" if measure is None else "loop_uncertainty")
    start = time.perf_counter()
    remaining = list(range(len(samples)))
    images, corrected = [], []
    current = model
    while remaining:
        block = remaining[: config.every]
        predictions = {}
        if measure is not None:
            for j in remaining:
                predictions[j] = _predict(current, samples[j].image, config.scheme)
            scores = [image_uncertainty(predictions[j].prediction).score(measure) for j in remaining]
            block = [remaining[k] for k in order_by_uncertainty(scores)[: config.every]]
        for j in block:
            s = samples[j]
            prediction = predictions.get(j) or _predict(current, s.image, config.scheme)
            effort, label = simulate_annotator(s.label, prediction.label(), classes, config.target)
            seq.add(s.name, effort)
            images.append(s.image)
            corrected.append(label)
            log(f"{seq.name} {len(seq.actions)}/{len(samples)}: {effort.actions} actions")
        remaining = [j for j in remaining if j not in block]
        if remaining:
            current, seconds = _finetune(current, images, corrected, config)
            seq.finetune_seconds.append(seconds)
            log(f"{seq.name}: fine-tuned on {len(images)} images in {seconds:.0f} s")
    seq.seconds = time.perf_counter() - start
    seq.extra["final_model"] = current
    return seq


def heldout_scores(model, samples, classes, scheme: str = "pc") -> dict:
    """{"miou", "acc"} (0 … 1) of ``model`` on ``samples`` (full-size predictions)."""
    from qgn.metrics import ConfusionMatrix

    confusion = ConfusionMatrix(classes.num_classes)
    for s in samples:
        label = np.asarray(s.label).astype(np.int64)
        confusion.add(np.where(label == classes.ignore_index, -1, label) if classes.ignore_index is not None else label,
                      _predict(model, s.image, scheme).label())
    return {"miou": float(confusion.miou()), "acc": float(confusion.accuracy())}


def annotate_bench(model, samples, classes, config: AnnotateConfig | None = None,
                   log: Callable[[str], None] = lambda m: None, heldout=()) -> tuple[list[Sequence], dict]:
    """Every scenario of ``config.scenarios`` on ``samples`` (objects with ``image`` (H, W, 3)
    uint8, ``label`` (H, W) int, ``name``) in ``classes``; and the anchors {"gt_leaves",
    "polygon_vertices"}: per-image lists. With ``heldout`` samples, each loop records the
    model's scores on them before and after its fine-tunes (``heldout_before``/``heldout_after``)."""
    config = config or AnnotateConfig()
    if classes.ignore_index is None:
        raise ValueError("the annotation benchmark needs a class set with an ignore value (the empty map)")
    anchors = {"gt_leaves": [gt_leaves(s.label, classes) for s in samples],
               "polygon_vertices": [polygon_vertices(s.label, classes) for s in samples]}
    out: list[Sequence] = []
    measure = config.measure
    before = heldout_scores(model, heldout, classes, config.scheme) if heldout else None
    for name in config.scenarios:
        if name == "scratch":
            out.append(run_scratch(samples, classes, config, log))
        elif name == "model":
            out.append(run_model(model, samples, classes, config, log))
        elif name == "loop":
            out.append(run_loop(model, samples, classes, config, log))
        elif name == "loop_uncertainty":
            if measure is None:
                found = next((s for s in out if s.name == "model"), None)
                rho = found.extra["spearman"] if found else {}
                measure = max(MEASURES, key=lambda m: -1 if not np.isfinite(rho.get(m, np.nan)) else rho[m])
            seq = run_loop(model, samples, classes, config, log, measure)
            seq.extra["measure"] = measure
            out.append(seq)
        else:
            raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        if heldout and out[-1].name.startswith("loop"):
            out[-1].extra["heldout_before"] = before
            out[-1].extra["heldout_after"] = heldout_scores(out[-1].extra["final_model"], heldout, classes,
                                                            config.scheme)
            log(f"{out[-1].name}: held-out mIoU {before['miou']:.3f} -> {out[-1].extra['heldout_after']['miou']:.3f}")
    return out, anchors


def bench_rows(sequences: list[Sequence], anchors: dict, model_name: str) -> list[BenchRow]:
    """One ``BenchRow`` per scenario (section "annotate", name = the scenario)."""
    rows = []
    n = len(anchors["gt_leaves"])
    for seq in sequences:
        extra = {
            "actions_per_image": float(np.mean(seq.actions)) if seq.actions else None,
            "images": len(seq.actions), "model": model_name,
            "actions": seq.actions, "clicks": seq.clicks, "strokes": seq.strokes, "order": seq.names,
            "start_accuracy": seq.start_accuracy, "finetune_seconds": seq.finetune_seconds,
            "gt_leaves_per_image": float(np.mean(anchors["gt_leaves"])) if n else None,
            "polygon_vertices_per_image": float(np.mean(anchors["polygon_vertices"])) if n else None,
        }
        for key in ("spearman", "measure", "uncertainty", "heldout_before", "heldout_after"):
            if key in seq.extra:
                extra[key] = seq.extra[key]
        if "spearman" in extra:  # JSON has no NaN
            extra["spearman"] = {m: (v if np.isfinite(v) else None) for m, v in extra["spearman"].items()}
        rows.append(BenchRow(seq.name, "annotate", "cpu", None, None, seq.seconds, extra))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    """The effort table: actions per image (mean, first and last block of 5), beside the anchors."""
    lines = [f"{'scenario':<18}{'actions/image':>14}{'first 5':>9}{'last 5':>9}{'fine-tunes (s)':>16}",]
    for r in rows:
        a = r.extra["actions"]
        ft = r.extra["finetune_seconds"]
        lines.append(f"{r.name:<18}{r.extra['actions_per_image']:>14.1f}{np.mean(a[:5]):>9.1f}{np.mean(a[-5:]):>9.1f}"
                     f"{(f'{np.mean(ft):.0f} x{len(ft)}' if ft else '-'):>16}")
    if rows:
        x = rows[0].extra
        lines.append(f"anchors per image: {x['gt_leaves_per_image']:.0f} quadtree leaves of the ground truth, "
                     f"{x['polygon_vertices_per_image']:.0f} polygon vertices at 1 px tolerance")
    for r in rows:
        if "spearman" in r.extra:
            rho = ", ".join(f"{m} {v:+.2f}" if v is not None else f"{m} n/a" for m, v in r.extra["spearman"].items())
            lines.append(f"Spearman correlation of uncertainty with the model's actions: {rho}")
        if "measure" in r.extra:
            lines.append(f"loop_uncertainty ordered by {r.extra['measure']}")
        if "heldout_after" in r.extra:
            b, a = r.extra["heldout_before"], r.extra["heldout_after"]
            lines.append(f"{r.name}: held-out mIoU {100 * b['miou']:.1f} -> {100 * a['miou']:.1f} %, "
                         f"pixel accuracy {100 * b['acc']:.1f} -> {100 * a['acc']:.1f} %")
    return "\n".join(lines)
