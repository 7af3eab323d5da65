"""The anytime curve: accuracy (mIoU) against decoder MACs for every depth limit and several
propagation schemes of a trained model — the curve the app's depth/τ sliders walk along.

Schemes: All, PC (argmax), PC with thresholds τ (P(composite) ≥ τ; small τ refines more), the
uncertainty scheme (PC plus sites whose normalised entropy exceeds a threshold), each at depths
5 … 0, and GTC at depth 0 as the ground-truth upper bound (not a practical scheme). Every image is
encoded once (``ImageSession``); each scheme runs to depth 0 once and shallower depths reuse its
levels, so a point's MACs and labels are exactly those of that scheme and depth alone.

``within_one_point`` picks the cheapest practical scheme (PC / τ / uncertainty, any depth) whose
mIoU is at most 1 point below All at depth 0, and its share of All's decoder MACs.
"""
from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qgn.data.base import Sample
from qgn.data.transforms import rescale
from qgn.infer import ImageSession
from qgn.metrics import ConfusionMatrix
from qgn.model.qgn import QGN
from qgn.propagation import Scheme

DEPTHS = (5, 4, 3, 2, 1, 0)
DEFAULT_TAUS = (0.05, 0.1, 0.2, 0.3, 0.5)
DEFAULT_ENTROPIES = (0.3, 0.5)


@dataclass(frozen=True)
class SchemeCurve:
    """A propagation scheme without its depth: a curve of the plot."""

    label: str
    scheme: Scheme  # depth 0
    practical: bool = True  # False for GTC (needs ground truth)

    def at(self, depth: int) -> Scheme:
        s = self.scheme
        return Scheme(s.name, tau=s.tau, entropy=s.entropy, depth=depth)


def default_schemes(taus: Iterable[float] = DEFAULT_TAUS, entropies: Iterable[float] = DEFAULT_ENTROPIES) -> list[SchemeCurve]:
    schemes = [SchemeCurve("All", Scheme("all")), SchemeCurve("PC", Scheme("pc"))]
    schemes += [SchemeCurve(f"PC τ={t:g}", Scheme("pc", tau=t)) for t in taus]
    schemes += [SchemeCurve(f"uncertainty H>{e:g}", Scheme("uncertainty", entropy=e)) for e in entropies]
    schemes.append(SchemeCurve("GTC", Scheme("gtc"), practical=False))
    return schemes


@dataclass
class Point:
    """One (scheme, depth) point accumulated over the images; ``scheme`` is its curve's label."""

    scheme: str
    depth: int
    practical: bool
    confusion: ConfusionMatrix
    decoder_macs: list[int] = field(default_factory=list)
    encoder_macs: list[int] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def miou(self) -> float:
        return self.confusion.miou()

    @property
    def mean_decoder_macs(self) -> float:
        return statistics.fmean(self.decoder_macs)


@dataclass
class AnytimeCurve:
    points: list[Point]
    images: int
    scale: float

    def point(self, scheme: str, depth: int) -> Point:
        return next(p for p in self.points if p.scheme == scheme and p.depth == depth)

    @property
    def reference(self) -> Point:
        """All at depth 0: full accuracy, full decoder cost."""
        return self.point("All", 0)

    def share(self, p: Point) -> float:
        return p.mean_decoder_macs / self.reference.mean_decoder_macs

    def within_one_point(self) -> Point | None:
        """The cheapest practical non-All scheme within 1 mIoU point of All (None if none is)."""
        floor = self.reference.miou - 0.01
        ok = [p for p in self.points if p.practical and p.scheme != "All" and p.miou >= floor]
        return min(ok, key=lambda p: p.mean_decoder_macs) if ok else None


def anytime_curve(model: QGN, samples: Iterable[Sample], schemes: list[SchemeCurve], scale: float = 1.0,
                  progress: Callable[[int], None] | None = None) -> AnytimeCurve:
    """Evaluate every scheme at every depth on ``samples`` (labels: class ids, ignore excluded)."""
    k = model.config.classes.num_classes
    points = {(r.label, d): Point(r.label, d, r.practical, ConfusionMatrix(k)) for r in schemes for d in DEPTHS}
    count = 0
    for count, sample in enumerate(samples, 1):
        sample = rescale(sample, scale)
        label = np.asarray(sample.label)
        session = ImageSession(model, sample.image, label)
        for curve in schemes:
            for depth in sorted(DEPTHS):  # depth 0 first: the shallower depths reuse its levels
                pred = session.run(curve.at(depth))
                cost = pred.cost()
                p = points[(curve.label, depth)]
                p.confusion.add(label, pred.label())
                p.decoder_macs.append(cost.total_decoder_macs)
                p.encoder_macs.append(cost.encoder_macs)
                p.sites.append(sum(cost.active_sites.values()))
                p.seconds.append(sum(cost.decoder_seconds.values()))
        if progress:
            progress(count)
    if count == 0:
        raise ValueError("the anytime curve needs at least one image")
    return AnytimeCurve(list(points.values()), count, scale)


CSV_COLUMNS = ("scheme", "depth", "practical", "miou", "acc", "decoder_macs", "total_macs", "share_of_all",
               "active_sites", "decoder_seconds")


def curve_rows(curve: AnytimeCurve) -> list[dict]:
    """One dict per point, CSV_COLUMNS keys (mIoU and accuracy in 0..1, means per image)."""
    return [{
        "scheme": p.scheme, "depth": p.depth, "practical": p.practical, "miou": p.miou,
        "acc": p.confusion.accuracy(), "decoder_macs": p.mean_decoder_macs,
        "total_macs": p.mean_decoder_macs + statistics.fmean(p.encoder_macs), "share_of_all": curve.share(p),
        "active_sites": statistics.fmean(p.sites), "decoder_seconds": statistics.fmean(p.seconds),
    } for p in curve.points]


def write_csv(curve: AnytimeCurve, path: Path) -> Path:
    from qgn.fileio import refuse_special_output

    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_special_output(path, follow=True)  # a FIFO there: the open would wait for a reader for ever
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in curve_rows(curve):
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def read_csv(path: Path) -> list[dict]:
    """The rows ``write_csv`` wrote, with numbers parsed back (inverse of ``write_csv`` up to 6 digits)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints, floats = {"depth"}, set(CSV_COLUMNS) - {"scheme", "depth", "practical"}
    return [{k: int(v) if k in ints else float(v) if k in floats else (v == "True") if k == "practical" else v
             for k, v in row.items()} for row in rows]
