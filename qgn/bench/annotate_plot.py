"""Actions per image along the annotation sequence, as a PNG and a Markdown table, from the JSON rows
of ``qgn bench --only annotate --json`` (one file per model).

Needs matplotlib (the ``bench`` extra), imported only when a plot is drawn.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qgn.bench.anytime_plot import _pyplot

STYLES = {"scratch": dict(color="0.5", ls="--"), "model": dict(color="#1f77b4"),
          "assist_scratch": dict(color="#ff7f0e", ls="--"), "assist_model": dict(color="#ff7f0e"),
          "assist_head": dict(color="#9467bd"), "best": dict(color="#d62728", lw=2.2),
          "loop": dict(color="#2ca02c", marker="o", ms=3), "loop_uncertainty": dict(color="#d62728", marker="s", ms=3)}


def read_rows(path: str | Path) -> list[dict]:
    """The annotate rows of one JSON-lines file."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("section") == "annotate"]


def plot_sequences(runs: dict[str, list[dict]], out: str | Path, every: int = 5) -> Path:
    """One panel per model (``runs``: title → rows): actions of each image in the order annotated,
    one line per scenario, vertical marks where the loops fine-tuned."""
    from qgn.fileio import refuse_special_output

    refuse_special_output(out, follow=True)  # savefig opens the path itself: a FIFO would hang it
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), sharey=True, squeeze=False)
    for ax, (title, rows) in zip(axes[0], runs.items()):
        for r in rows:
            ys = r["actions"]
            ax.plot(np.arange(1, len(ys) + 1), ys, label=f"{r['name']} ({r['actions_per_image']:.0f}/image)",
                    **STYLES.get(r["name"], {}))
        n = max(len(r["actions"]) for r in rows)
        for x in range(every, n, every):
            ax.axvline(x + 0.5, color="0.85", lw=0.8, zorder=0)
        first = rows[0]
        ax.axhline(first["polygon_vertices_per_image"], color="#9467bd", ls=":", lw=1,
                   label=f"polygon vertices at 1 px ({first['polygon_vertices_per_image']:.0f})")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("image in the order annotated (grey lines: fine-tune)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("actions (clicks + strokes) to 99 % pixel accuracy")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def markdown_table(runs: dict[str, list[dict]]) -> str:
    """The effort table: per model and scenario, actions per image (mean, first 5, last 5), fine-tunes."""
    lines = ["| model | scenario | actions / image | first 5 | last 5 | fine-tunes (s each) | start accuracy |",
             "|---|---|---:|---:|---:|---|---:|"]
    for title, rows in runs.items():
        for r in rows:
            a = r["actions"]
            ft = r["finetune_seconds"]
            fts = ", ".join(f"{s:.0f}" for s in ft) if ft else "–"
            lines.append(f"| {title} | {r['name']} | {r['actions_per_image']:.1f} | {np.mean(a[:5]):.1f} | "
                         f"{np.mean(a[-5:]):.1f} | {fts} | {100 * np.mean(r['start_accuracy']):.1f} % |")
    return "\n".join(lines)
