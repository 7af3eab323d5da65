"""Latency of the image-aware tools in the app, and the per-project head's fit times (issue #21).

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_image_tools.py [--head]

Gestures, in ms (median of 7, UI thread, the canvas's redraw included: the gesture is sent to the
annotator's tool controller and the event loop runs until it is idle), on a synthetic scene at
480×360 and at 6000×4000 (the tools work at ``qgn.annotation.working.TOOL_PIXELS``):
superpixel click, superpixel drag across the image, wand click, snap-brush stroke (level 3,
radius 1, across half the image); and the over-segmentation an image gets when it opens (a job
thread, not the UI's). ``--head``: the head's fit after 1 … 10 saved CamVid val images with the
street model and with the demo model (features of the new image + the fit), from ../shared/data.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QGN_STUDIO_SCRATCH"] = tempfile.mkdtemp()  # keep autosaves out of the user's scratch project
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np


def gestures(size: tuple[int, int], repeats: int = 7) -> dict:
    from PIL import Image

    from qgn.annotation import Annotation
    from qgn.annotation.superpixels import oversegment
    from qgn.annotation.working import WorkingImage
    from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
    from qgn_studio.annotation_doc import LivePyramid
    from qgn_studio.app import make_application
    from qgn_studio.document import ImageDocument
    from qgn_studio.main_window import MainWindow
    from qgn_studio.tools.image_tools import ImageContext

    app = make_application()
    h, w = size
    small, _ = make_scene(7, 360, 480)
    image = small if (h, w) == (360, 480) else np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))
    t = time.perf_counter()
    working = WorkingImage(image)
    over = oversegment(working)
    overseg = time.perf_counter() - t
    win = MainWindow(settings=None)
    win.projects.ask_unsaved = lambda *a: "discard"
    win.resize(1280, 800)
    win.show()
    doc = ImageDocument(f"/tmp/bench-{w}x{h}.png")
    doc.image = image
    win.docs, win.current = [doc], doc
    win.annotator.set_classes(SYNTHETIC_CLASSES)
    win.canvas.set_classes(SYNTHETIC_CLASSES)
    win.canvas.show_document(doc)
    win.annotator.show_document(doc)
    win.annotator.set_mode(True)
    win.annotator.image_tools.contexts[doc.path] = ImageContext(working, over)
    annotation = Annotation.empty(h, w, SYNTHETIC_CLASSES)
    session = win.annotator._install(doc, annotation, LivePyramid(annotation.label, 8, 255), source="empty")
    app.processEvents()
    tools = win.annotator.tools

    def timed(tool, points, **settings):
        tools.set_tool(tool)
        for key, value in settings.items():
            getattr(tools, f"set_{key}")(value)
        out = []
        for i in range(repeats):
            tools.set_class(i % 2)
            t0 = time.perf_counter()
            tools.press(*points[0])
            for p in points[1:]:
                tools.move(*p)
            tools.release()
            app.processEvents()
            out.append(1000 * (time.perf_counter() - t0))
            session.undo.undo()
            app.processEvents()
        return statistics.median(out)

    drag = [(w * x, h * 0.6) for x in np.linspace(0.05, 0.95, 12)]
    result = {
        "size": f"{w}x{h}", "working": "x".join(map(str, working.working_shape[::-1])),
        "oversegment_ms": 1000 * overseg, "segments": over.counts,
        "superpixel_click_ms": timed("superpixel", [(w * 0.5, h * 0.3)]),
        "superpixel_drag_ms": timed("superpixel", drag),
        "wand_click_ms": timed("wand", [(w * 0.5, h * 0.2)]),
        "snap_stroke_ms": timed("snap", [(w * x, h * 0.7) for x in np.linspace(0.1, 0.6, 8)], level=3, radius=1),
    }
    win.close()
    return result


def head_fits(model_name: str, images: int = 10) -> list[dict]:
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model
    from qgn.project_head import HeadTrainer
    from qgn.resources import default_model

    data = open_dataset("camvid", "val")
    model = load_model(default_model(model_name))
    trainer = HeadTrainer(data.classes)
    rows = []
    for i in range(images):
        s = data[i]
        t = time.perf_counter()
        trainer.add(s.name, model, s.image, s.label)
        head = trainer.fit()
        rows.append({"model": model_name, "images": i + 1, "seconds": time.perf_counter() - t,
                     "fit_seconds": head.fit_seconds, "samples": head.samples})
    return rows


def main() -> int:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    for size in ((360, 480), (4000, 6000)):
        r = gestures(size)
        print(f"{r['size']} (tools at {r['working']}): over-segmentation {r['oversegment_ms']:.0f} ms "
              f"(segments {r['segments']}, job thread); superpixel click {r['superpixel_click_ms']:.1f} ms, "
              f"drag {r['superpixel_drag_ms']:.1f} ms; wand {r['wand_click_ms']:.1f} ms; "
              f"snap stroke {r['snap_stroke_ms']:.1f} ms", flush=True)
    if "--head" in sys.argv:
        for name in ("camvid", "demo"):
            rows = head_fits(name)
            print(f"head on {name} features, seconds after each saved image (features + fit): "
                  + ", ".join(f"{r['seconds']:.2f}" for r in rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
