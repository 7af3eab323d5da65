"""A 6000×4000 photo in the app's engine: seconds and peak memory to its PC prediction, as a ratio
against decoding the same image from PNG (measured in the same run).

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_big_photo.py [--model demo]

The engine is warmed on a bundled sample first (as in an app that is already open); the photo is a
bundled synthetic scene scaled to 6000×4000. Above ``QGN_MAX_WORKING_PIXELS`` (4.2 M by default)
the network runs on the photo resized to that many pixels, and the labels come back at full size.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--size", default="6000x4000")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from qgn.resources import samples_dir
    from qgn_studio.document import ImageDocument, SchemeChoice
    from qgn_studio.engine import Engine
    from qgn_studio.workers import attach_paths

    w, h = (int(v) for v in args.size.split("x"))
    sample = sorted((samples_dir() / "images").glob("*.png"))[0]
    engine = Engine()
    engine.load_model(args.model, "cpu")
    warm = ImageDocument(sample)
    warm.load()
    attach_paths(engine.predict(warm, SchemeChoice("pc")))
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.png"
        Image.open(sample).convert("RGB").resize((w, h), Image.BILINEAR).save(photo)
        start = time.perf_counter()
        np.asarray(Image.open(photo).convert("RGB"))
        decode = time.perf_counter() - start
        before = peak_mb()
        start = time.perf_counter()
        doc = ImageDocument(photo)
        doc.load()
        result = engine.predict(doc, SchemeChoice("pc"))
        attach_paths(result)
        seconds = time.perf_counter() - start
    print(f"{w}×{h}, model {args.model}: PNG decode {decode:.2f} s; open + PC prediction {seconds:.2f} s "
          f"= {seconds / decode:.1f}× the decode; network at {result.grid_size[1]}×{result.grid_size[0]}; "
          f"peak RSS {peak_mb():.0f} MB (warm engine {before:.0f} MB)")


if __name__ == "__main__":
    main()
