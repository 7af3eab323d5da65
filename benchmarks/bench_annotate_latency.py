"""Latency of annotation interactions on the UI thread (offscreen), in ms.

Two parts:

Without ``--big``: a 2048×1024 image — starting a session, paint
strokes at four levels, a fill and its undo/redo, starting over, the repaint.

``--big``: a 4000×3000 image, one operation at a time, each measured as the app runs it: the
handler of the mouse press / key (the fill, the undo command…) and then the event loop turn by turn
until the canvas shows the result. Per operation it reports ``ui_ms``, the longest single turn of the
UI thread (the 50 ms rule: a turn longer than that is a frozen window), and ``done_ms``, the time
until the display is current. Operations: a fill of a huge region (about half the image) and of a
tiny one, a brush stroke (60 moves, level 3, radius 2), a wand click, starting over from an empty
map (computed on the job thread; measured: its landing), and the undo and redo of each.
With ``--baseline REV`` the same operations also run on the code of git revision ``REV`` (a copy
extracted with ``git archive``), in separate processes alternating with the current code, and the
table gives both medians and their ratio, measured in the same run on the same machine; it also
checks that both leave the same label map after every operation.

Run from the repository root:
  OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_annotate_latency.py
  OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_annotate_latency.py --big --baseline 5af1af8
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_MS = 50.0


def make_window(h: int, w: int, seed: int = 7):
    """An offscreen main window in annotation mode on a synthetic scene of h×w; (app, win, doc, image, label)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QGN_STUDIO_SCRATCH"] = tempfile.mkdtemp()  # keep autosaves out of the user's scratch project
    from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
    from qgn_studio.app import make_application
    from qgn_studio.document import ImageDocument
    from qgn_studio.main_window import MainWindow

    app = make_application()
    image, label = make_scene(seed, h, w)
    win = MainWindow(settings=None)
    win.projects.ask_unsaved = lambda *a: "discard"
    win.resize(1280, 800)
    win.show()
    doc = ImageDocument(f"/tmp/bench-annotate-{w}x{h}.png")
    doc.image = image
    win.workspace.docs, win.workspace.current = [doc], doc
    win.annotator.set_classes(SYNTHETIC_CLASSES)
    win.canvas.set_classes(SYNTHETIC_CLASSES)
    win.canvas.show_document(doc)
    win.annotator.show_document(doc)
    win.annotator.set_mode(True)
    return app, win, doc, image, label


def install(app, win, doc, label):
    from qgn.annotation import Annotation
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn_studio.annotation_doc import LivePyramid

    annotation = Annotation.from_prediction(label, SYNTHETIC_CLASSES)
    pyramid = LivePyramid(annotation.label, 8, 255)
    session = win.annotator._install(doc, annotation, pyramid, source="prediction")
    session.set_reference(label)
    win.canvas.refresh_layers(force=("changed",))
    app.processEvents()
    return session


# --------------------------------------------------------------------------- the 2048×1024 session part
def session_part() -> None:
    from qgn_studio.tools.commands import undo_bytes

    H, W = 1024, 2048
    app, win, doc, image, label = make_window(H, W)
    job, ui = [], []
    for _ in range(5):
        win.annotator.forget([doc])
        app.processEvents()
        t0 = time.perf_counter()
        from qgn.annotation import Annotation
        from qgn.data.synthetic import SYNTHETIC_CLASSES
        from qgn_studio.annotation_doc import LivePyramid

        annotation = Annotation.from_prediction(label, SYNTHETIC_CLASSES)
        pyramid = LivePyramid(annotation.label, 8, 255)
        t1 = time.perf_counter()
        session = win.annotator._install(doc, annotation, pyramid, source="prediction")
        session.set_reference(label)
        win.canvas.refresh_layers(force=("changed",))
        app.processEvents()
        job.append(1000 * (t1 - t0))
        ui.append(1000 * (time.perf_counter() - t1))
    print(f"start a session, 5 runs: job thread (map check + quadtree) min {min(job):.1f} ms; UI thread (install + "
          f"full render of the layers + repaint) min {min(ui):.1f}, median {statistics.median(ui):.1f} ms")
    win.set_layer_visible("changed", True)
    app.processEvents()
    tools = win.annotator.tools
    import numpy as np

    rng = np.random.default_rng(0)

    def timed(fn):
        t = time.perf_counter()
        fn()
        settle(app, session)
        return 1000 * (time.perf_counter() - t)

    for level in (0, 2, 3, 5):
        tools.set_level(level)
        tools.set_class(int(rng.integers(8)))
        x, y = 100.0, 100.0
        steps = [timed(lambda: tools.press(x, y))]
        for _ in range(60):
            nx, ny = x + rng.uniform(-40, 40), y + rng.uniform(-40, 40)
            nx, ny = min(max(nx, 0), W - 1), min(max(ny, 0), H - 1)
            steps.append(timed(lambda nx=nx, ny=ny: tools.move(nx, ny)))
            x, y = nx, ny
        rel = timed(tools.release)
        print(f"paint level {level}: move step median {statistics.median(steps):.2f} ms, max {max(steps):.2f} ms; "
              f"release (one undo step) {rel:.2f} ms")
    tools.set_tool("fill")
    tools.set_class(2)
    print(f"fill (region of {int((session.label == session.label[10, 10]).sum()):,} px): "
          f"{timed(lambda: tools.press(10, 10)):.1f} ms")
    print(f"undo fill: {timed(session.undo.undo):.1f} ms; redo: {timed(session.undo.redo):.1f} ms")
    over_job, over_ui, back = [], [], []
    for _ in range(5):
        t = time.perf_counter()
        win.annotator.start_from('empty')
        win.jobs.wait_idle()
        over_job.append(1000 * (time.perf_counter() - t))
        over_ui.append(timed(lambda: None))  # the job's callback: push the edit, render
        back.append(timed(session.undo.undo))
    print(f"start over from empty (one undoable edit of 2.1 M px), 5 runs: job thread min {min(over_job):.1f} ms; "
          f"UI thread min {min(over_ui):.1f}, median {statistics.median(over_ui):.1f} ms; "
          f"its undo: min {min(back):.1f}, median {statistics.median(back):.1f} ms")
    print(f"changed summary: {timed(win.annotator._update_summary):.1f} ms")
    print(f"autosave copy on the UI thread: {timed(lambda: session.label.copy()):.2f} ms")
    print(f"undo log: {session.undo.count()} steps, {undo_bytes(session.undo)/1e6:.2f} MB (map {session.label.nbytes/1e6:.2f} MB)")
    win.canvas.fit()
    app.processEvents()
    print(f"full repaint of the window at fit zoom: {timed(lambda: win.grab()):.1f} ms")
    win.canvas.zoom(8)
    app.processEvents()
    print(f"full repaint zoomed in 8x: {timed(lambda: win.grab()):.1f} ms")
    win.close()


def settle(app, session) -> None:
    """Run the event loop until the display shows the map (older code has no ``display_pending``)."""
    app.processEvents()
    while getattr(session, "display_pending", False):
        app.processEvents()


# --------------------------------------------------------------------------- the 4000×3000 part
TAIL_S = 0.2  # after the display is current: the annotator's summary of changes follows 150 ms after an edit


def measure(app, session, handler, flush: bool = True) -> tuple[float, float]:
    """(longest UI turn, time until the display is current) in ms of ``handler`` (one input event)
    followed by the event loop, turn by turn, until nothing is left to show, and on for ``TAIL_S``
    (the turns the edit causes later count too, not the idle time between them). ``flush``: run
    what is already queued first, untimed."""
    if flush:
        app.processEvents()
    t0 = time.perf_counter()
    handler()
    longest = time.perf_counter() - t0
    done = None
    while done is None or time.perf_counter() < done + TAIL_S:
        t = time.perf_counter()
        app.processEvents()
        longest = max(longest, time.perf_counter() - t)
        if done is None and not getattr(session, "display_pending", False):
            done = time.perf_counter()
        elif done is not None:
            time.sleep(0.002)
    return 1000 * longest, 1000 * (done - t0)


def regions(label):
    """Seeds (x, y) of the largest 4-connected region and of a small one (100–2000 px)."""
    import numpy as np
    from scipy import ndimage

    best, small = None, None
    for value in np.unique(label):
        parts, _ = ndimage.label(label == value)
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        i = int(sizes.argmax())
        if best is None or sizes[i] > best[0]:
            best = (int(sizes[i]), i, parts, int(value))
        fits = np.flatnonzero((sizes >= 100) & (sizes <= 2000))
        if small is None and len(fits):
            small = (int(sizes[fits[0]]), int(fits[0]), parts, int(value))
    seeds = []
    for size, i, parts, value in (best, small):
        ys, xs = np.nonzero(parts == i)
        seeds.append((float(xs[0]), float(ys[0]), size, value))
    return seeds


def big_part(repeats: int) -> dict:
    """The 4000×3000 operations; returns {op: {"ui": [..], "done": [..], "pixels": n, "map": sha1}}."""
    import numpy as np

    from qgn.annotation.working import WorkingImage
    from qgn_studio.tools.image_tools import ImageContext

    H, W = 3000, 4000
    app, win, doc, image, label = make_window(H, W)
    session = install(app, win, doc, label)
    win.set_layer_visible("changed", True)
    win.annotator.image_tools.contexts[doc.path] = ImageContext(WorkingImage(image))
    app.processEvents()
    tools = win.annotator.tools
    out: dict = {}

    def record(op, handler, flush=True):
        ui, done = measure(app, session, handler, flush)
        entry = out.setdefault(op, {"ui": [], "done": []})
        entry["ui"].append(ui)
        entry["done"].append(done)
        entry["map"] = hashlib.sha1(session.label.tobytes()).hexdigest()[:12]
        index = session.undo.index() - (0 if op.endswith("undo") else 1)  # the step it made, undid or redid
        if 0 <= index < session.undo.count():
            entry["pixels"] = int(session.undo.command(index).edit.pixel_count)

    (hx, hy, hsize, hvalue), (sx, sy, ssize, svalue) = regions(label)
    rng = np.random.default_rng(0)
    stroke = [(1000.0, 1500.0)]
    for _ in range(60):
        x, y = stroke[-1]
        stroke.append((min(max(x + rng.uniform(-40, 60), 0), W - 1), min(max(y + rng.uniform(-40, 40), 0), H - 1)))
    for _ in range(repeats):
        tools.set_tool("fill")
        for op, (x, y, value) in {"fill huge": (hx, hy, hvalue), "fill tiny": (sx, sy, svalue)}.items():
            tools.set_class((value + 1) % 8)
            record(op, lambda x=x, y=y: tools.press(x, y))
            tools.release()
            record(f"{op}: undo", session.undo.undo)
            record(f"{op}: redo", session.undo.redo)
            session.undo.undo()
            settle(app, session)
        tools.set_tool("paint")
        tools.set_level(3)
        tools.set_radius(2)
        tools.set_class(3)
        record("brush: press", lambda: tools.press(*stroke[0]))
        moves = [measure(app, session, lambda p=p: tools.move(*p)) for p in stroke[1:]]
        entry = out.setdefault("brush: move (max of 60)", {"ui": [], "done": []})
        entry["ui"].append(max(m[0] for m in moves))
        entry["done"].append(max(m[1] for m in moves))
        record("brush: release", tools.release)
        record("brush: undo", session.undo.undo)
        record("brush: redo", session.undo.redo)
        session.undo.undo()
        settle(app, session)
        tools.set_tool("wand")
        tools.set_class((hvalue + 1) % 8)
        record("wand (tolerance 16)", lambda: (tools.press(hx, hy), tools.release()))
        record("wand: undo", session.undo.undo)
        record("wand: redo", session.undo.redo)
        session.undo.undo()
        settle(app, session)
        tools.set_tool("paint")
        win.annotator.start_from("empty")  # the new map is read and diffed on the job thread
        win.jobs.wait_idle()
        record("start over (empty): lands", app.processEvents, flush=False)  # its callback pushes the edit
        record("start over (empty): undo", session.undo.undo)
        record("start over (empty): redo", session.undo.redo)
        session.undo.undo()
        settle(app, session)
    import qgn

    out["_sizes"] = {"huge_region": hsize, "tiny_region": ssize, "code": str(Path(qgn.__file__).parent.parent)}
    win.close()
    return out


def extract(rev: str) -> Path:
    """The ``qgn`` and ``qgn_studio`` packages of git revision ``rev`` in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-annotate-{rev}-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "qgn", "qgn_studio"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_variant(root: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    done = subprocess.run([sys.executable, __file__, "--big-child", str(repeats)], env=env, cwd=str(root),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_annotate_latency: error: the run on {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def merge(runs: list[dict]) -> dict:
    merged: dict = {}
    for run in runs:
        for op, entry in run.items():
            if op.startswith("_"):
                merged[op] = entry
                continue
            into = merged.setdefault(op, {"ui": [], "done": [], "maps": set()})
            into["ui"] += entry["ui"]
            into["done"] += entry["done"]
            if "map" in entry:
                into["maps"].add(entry["map"])
            if "pixels" in entry:
                into["pixels"] = entry["pixels"]
    return merged


def big(args) -> None:
    current = []
    baseline = []
    base_root = extract(args.baseline) if args.baseline else None
    for _ in range(args.rounds):
        if base_root is not None:
            baseline.append(run_variant(base_root, args.repeats))
        current.append(run_variant(REPO, args.repeats))
    cur = merge(current)
    base = merge(baseline) if baseline else None
    sizes = cur.pop("_sizes")
    if base:
        base.pop("_sizes", None)
    load = os.getloadavg()
    print(f"4000×3000 synthetic scene; huge region {sizes['huge_region']:,} px, tiny region {sizes['tiny_region']:,} px; "
          f"{args.rounds} process(es) × {args.repeats} repeats per variant, alternating; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs, load average {load[0]:.1f} "
          f"at the end")
    print("ui = the longest single turn of the UI thread (rule: <= 50 ms); done = until the display is current; "
          "medians in ms")
    head = f"{'operation':<26}{'pixels':>10}"
    if base:
        head += f"{'before ui':>11}{'after ui':>10}{'ratio':>7}{'before done':>13}{'after done':>12}{'ratio':>7}  same map"
    else:
        head += f"{'ui':>10}{'done':>10}"
    print(head)
    for op, entry in cur.items():
        ui, done = statistics.median(entry["ui"]), statistics.median(entry["done"])
        line = f"{op:<26}{entry.get('pixels', 0):>10,}"
        if base:
            b = base[op]
            bui, bdone = statistics.median(b["ui"]), statistics.median(b["done"])
            same = ("—" if not entry["maps"] else
                    "yes" if entry["maps"] == b["maps"] and len(entry["maps"]) == 1 else "NO")
            line += f"{bui:>11.1f}{ui:>10.1f}{bui / ui:>6.1f}x{bdone:>13.1f}{done:>12.1f}{bdone / done:>6.1f}x  {same}"
        else:
            line += f"{ui:>10.1f}{done:>10.1f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="the 4000×3000 operations (see the module docstring)")
    parser.add_argument("--baseline", metavar="REV", help="also run the 4000×3000 operations on git revision REV")
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant (alternating)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every operation per process")
    parser.add_argument("--big-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_child is not None:
        print(json.dumps(big_part(args.big_child)))
    elif args.big or args.baseline:
        big(args)
    else:
        session_part()


if __name__ == "__main__":
    main()
