"""The anytime curve: every rule at every depth, its CSV round trip, the within-1-point pick, the plot."""
from __future__ import annotations

import pytest
import torch

from qgn.bench.anytime import (
    DEPTHS, AnytimeCurve, Point, anytime_curve, curve_rows, default_schemes, read_csv, write_csv,
)
from qgn.classes import ClassSet
from qgn.data.registry import open_dataset
from qgn.metrics import ConfusionMatrix
from qgn.model.qgn import QGN, QGNConfig


@pytest.fixture(scope="module")
def curve() -> AnytimeCurve:
    torch.manual_seed(0)
    data = open_dataset("synthetic", "val", n=2, size=64)
    model = QGN(QGNConfig.from_preset("tiny", data.classes)).eval()
    return anytime_curve(model, data, default_schemes(taus=(0.2,), entropies=(0.5,)), scale=1.0)


def test_every_rule_at_every_depth(curve) -> None:
    rules = {p.scheme for p in curve.points}
    assert rules == {"All", "PC", "PC τ=0.2", "uncertainty H>0.5", "GTC"}
    assert len(curve.points) == len(rules) * len(DEPTHS) and curve.images == 2
    assert curve.share(curve.reference) == 1.0
    for rule in rules:  # deeper settings compute everything shallower ones do, and more
        macs = [curve.point(rule, d).mean_decoder_macs for d in DEPTHS]
        assert macs == sorted(macs)
    # the root level alone is the same for every rule
    assert len({curve.point(r, 5).mean_decoder_macs for r in rules}) == 1
    assert not curve.point("GTC", 0).practical


def test_csv_round_trip(curve, tmp_path) -> None:
    path = write_csv(curve, tmp_path / "a.csv")
    back, rows = read_csv(path), curve_rows(curve)
    assert [(r["scheme"], r["depth"], r["practical"]) for r in back] == [(r["scheme"], r["depth"], r["practical"]) for r in rows]
    for got, want in zip(back, rows):
        for key in ("miou", "acc", "decoder_macs", "share_of_all", "active_sites"):
            assert got[key] == pytest.approx(want[key], rel=1e-5)


class _FixedMiou(Point):
    """A point with a given mIoU (no confusion matrix needed)."""

    @property
    def miou(self) -> float:
        return self.__dict__["_miou"]


def _curve(points: list[tuple[str, int, float, int, bool]]) -> AnytimeCurve:
    made = []
    for rule, depth, miou, macs, practical in points:
        p = _FixedMiou(rule, depth, practical, ConfusionMatrix(2), [macs], [0], [1], [0.0])
        p.__dict__["_miou"] = miou
        made.append(p)
    return AnytimeCurve(made, 1, 1.0)


def test_within_one_point_is_the_cheapest_eligible_setting() -> None:
    c = _curve([
        ("All", 0, 0.50, 100, True), ("All", 1, 0.495, 40, True),   # All itself never counts
        ("PC", 0, 0.492, 60, True), ("PC", 1, 0.489, 30, True),     # 0.489 < 0.50 - 0.01: too far
        ("PC τ=0.1", 0, 0.491, 45, True), ("GTC", 0, 0.60, 10, False),  # GTC is not practical
    ])
    best = c.within_one_point()
    assert (best.scheme, best.depth) == ("PC τ=0.1", 0) and c.share(best) == 0.45
    brute = min((p for p in c.points if p.practical and p.scheme != "All" and p.miou >= 0.49),
                key=lambda p: p.mean_decoder_macs)
    assert best is brute
    assert _curve([("All", 0, 0.5, 100, True), ("PC", 0, 0.3, 10, True)]).within_one_point() is None


def test_plot_writes_a_png(curve, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from qgn.bench.anytime_plot import plot_curve

    path = plot_curve(curve, tmp_path / "curve.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_empty_sample_list_is_an_error() -> None:
    model = QGN(QGNConfig.from_preset("tiny", ClassSet(("a", "b"))))
    with pytest.raises(ValueError, match="at least one image"):
        anytime_curve(model, [], default_schemes())
