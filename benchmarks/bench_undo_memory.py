"""Benchmark: memory of the undo history under big edits on a 4000×3000 image.

An offscreen main window in annotation mode (``bench_annotate_latency.make_window``) on a 4000×3000
synthetic scene whose annotation starts uniform (class 0); each edit is a click of the fill tool
at the top-left pixel, alternating classes 1 and 0, so every edit changes all 12 M pixels and is
one undo step of about 36 MB (the row mask and the values before and after, uint8 labels). After
each edit the event loop runs until the canvas shows it.

Reported every ``--every`` edits: the process's resident set size (RSS, /proc/self/statm), the
undo steps the image keeps, the bytes they hold (``undo_bytes``), and the growth of RSS per edit
over the last half of the run (a bounded history: ~0 once the budget is reached). At the end: the
newest step is the last fill (undone and redone: the map is the one before and after it).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_undo_memory.py [--edits 200] [--every 10]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_annotate_latency import install, make_window, settle  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    from qgn_studio.tools import commands
    from qgn_studio.tools.commands import undo_bytes

    h, w = 3000, 4000
    app, win, doc, _image, _label = make_window(h, w)
    session = install(app, win, doc, np.zeros((h, w), np.uint8))
    tools = win.annotator.tools
    tools.set_tool("fill")
    budget = getattr(commands, "UNDO_BUDGET_BYTES", None)
    print(f"4000×3000, uint8 labels, whole-image fills; undo budget: {budget if budget else 'none'}")
    settle(app, session)
    base = rss_bytes()
    print(f"RSS before the first edit: {base / 2**20:,.0f} MiB")
    rows = []
    for i in range(1, args.edits + 1):
        tools.set_class(i % 2)
        before = session.label.copy() if i == args.edits else None
        tools.press(0.5, 0.5)
        tools.release()
        settle(app, session)
        rss = rss_bytes()
        rows.append(rss)
        if i % args.every == 0 or i == args.edits:
            print(f"edit {i:4d}: RSS {rss / 2**20:8,.0f} MiB   steps kept {session.undo.count():4d}   "
                  f"undo bytes {undo_bytes(session.undo) / 2**20:8,.0f} MiB", flush=True)
    half = rows[len(rows) // 2:]
    slope = (half[-1] - half[0]) / max(1, len(half) - 1)
    print(f"RSS growth per edit over the last {len(half)} edits: {slope / 2**20:,.1f} MiB")
    after = session.label.copy()
    win.annotator.undo_action.trigger()
    settle(app, session)
    newest_undone = bool(np.array_equal(session.label, before))
    win.annotator.redo_action.trigger()
    settle(app, session)
    print(f"the newest step undoes the last fill: {newest_undone}; redo gives it back: "
          f"{bool(np.array_equal(session.label, after))}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
