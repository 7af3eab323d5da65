"""The anytime curve as a PNG: mIoU against the share of All's decoder MACs, one line per scheme.

Needs matplotlib, the optional extra ``bench`` (``pip install -e .[bench]``; scripts/setup installs
it); imported only when a plot is drawn.
"""
from __future__ import annotations

from pathlib import Path

from qgn.bench.anytime import AnytimeCurve


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "drawing the anytime plot needs matplotlib: install the 'bench' extra "
            "(pip install -e '.[bench]', or re-run scripts/setup)"
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _draw(ax, curve: AnytimeCurve) -> None:
    schemes = list(dict.fromkeys(p.scheme for p in curve.points))
    colours = iter(COLOURS)
    for scheme in schemes:
        pts = sorted((p for p in curve.points if p.scheme == scheme), key=lambda p: -p.depth)
        xs = [100 * curve.share(p) for p in pts]
        ys = [100 * p.miou for p in pts]
        if scheme == "All":
            style = dict(color="black", lw=2)
        elif scheme == "GTC":
            style = dict(ls="--", color="0.5")
        else:
            style = dict(color=next(colours))
        label = scheme + (" (needs ground truth)" if scheme == "GTC" else "")
        ax.plot(xs, ys, marker="o", ms=3.5, label=label, **style)
    ref = curve.reference
    ax.plot([100.0], [100 * ref.miou], marker="*", ms=16, color="black", zorder=5)
    ax.axhline(100 * ref.miou - 1, color="0.3", ls=":", lw=1)
    best = curve.within_one_point()
    if best is not None:
        ax.plot([100 * curve.share(best)], [100 * best.miou], marker="o", ms=15, mfc="none", mec="red", mew=2, zorder=6)


def _annotate(ax, curve: AnytimeCurve) -> None:
    """Labels for All, the All − 1 line and the circled scheme (after the axis limits are set)."""
    ref, best = curve.reference, curve.within_one_point()
    ax.annotate(f"All, depth 0: {100 * ref.miou:.1f} mIoU", (100.0, 100 * ref.miou), textcoords="offset points",
                xytext=(-8, 10), ha="right", fontsize=9)
    ax.text(ax.get_xlim()[0], 100 * ref.miou - 1, "  All − 1 point", va="top", ha="left", fontsize=8, color="0.3")
    if best is not None:
        x, y = 100 * curve.share(best), 100 * best.miou
        ax.annotate(f"cheapest within 1 point of All:\n{best.scheme}, depth {best.depth}: {y:.1f} mIoU\n"
                    f"at {x:.0f} % of All's decoder MACs", (x, y), textcoords="axes fraction", xytext=(0.97, 0.06),
                    ha="right", va="bottom", fontsize=9, color="red",
                    bbox=dict(boxstyle="round", fc="white", ec="red", alpha=0.9),
                    arrowprops=dict(arrowstyle="->", color="red"))


def plot_curve(curve: AnytimeCurve, path: Path, title: str) -> Path:
    """Draw ``curve`` to ``path`` (PNG), two panels: every scheme (left) and the region near All
    (right). Lines per scheme over depths 5 … 0; All at depth 0 starred; the cheapest scheme within
    1 mIoU point of All circled in red and labelled; All − 1 point dotted."""
    from qgn.fileio import refuse_special_output

    refuse_special_output(path, follow=True)  # savefig opens the path itself: a FIFO would hang it
    plt = _pyplot()
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(13, 5.6), dpi=110, gridspec_kw=dict(width_ratios=(1, 1.15)))
    for ax in (full, zoom):
        _draw(ax, curve)
        ax.set_xscale("log")
        ax.set_xlabel("decoder MACs, % of All at depth 0 (log scale)")
        ax.set_ylabel("mIoU (%)")
        ax.grid(True, which="both", alpha=0.3)
    full.set_title("every scheme (depth 5 … 0 along each line)", fontsize=9)
    full.legend(fontsize=8, loc="lower right", ncol=2)
    top = 100 * curve.reference.miou
    zoom.set_ylim(top - 5, top + 1)
    zoom.set_xlim(3, 160)
    zoom.set_title("near All (zoom)", fontsize=9)
    _annotate(zoom, curve)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
