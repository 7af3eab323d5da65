"""`qgn bench --only annotate [--model M] [--data DIR] [--split S] [--images N] [--quick] [--json]`

The annotation-effort section of ``qgn bench`` (``qgn.bench.annotate``): actions per image of a
simulated annotator from scratch, from the model's prediction, and with the model fine-tuned every
5 images (in the given and in the uncertainty order). ``--model`` defaults to the bundled street
model (``resources/models/camvid.safetensors``), ``--data`` to CamVid (found in ../shared/data or
``QGN_DATA``); a model with other classes than the data's is transferred to them first. ``--quick``:
3 images at half size, 2 fine-tune iterations every 2 images.
"""
from __future__ import annotations

from pathlib import Path

STREET_MODEL = "models/camvid.safetensors"
QUICK_IMAGES, FULL_IMAGES = 3, 30


def street_model_path() -> Path:
    from qgn.resources import resources_dir

    return resources_dir() / STREET_MODEL


class _Resized:
    """A sample at ``scale`` (image bilinear, label nearest)."""

    def __init__(self, sample, scale: float):
        from PIL import Image

        import numpy as np

        h, w = sample.label.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        self.image = np.array(Image.fromarray(sample.image).resize(size, Image.BILINEAR))
        self.label = np.asarray(Image.fromarray(sample.label.astype(np.int32)).resize(size, Image.NEAREST)).astype(np.int64)
        self.name = sample.name


def annotate_section(args, log):
    """(rows, text) of the annotate section."""
    from qgn.bench.annotate import AnnotateConfig, annotate_bench, bench_rows, format_table
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model
    from qgn.model.transfer import needs_transfer, transfer_model

    default = getattr(args, "_model_default", None)
    path = street_model_path() if args.model in (None, default) else Path(args.model)
    if not path.is_file():
        raise FileNotFoundError(f"--model {path}: no such model file (the bundled street model is "
                                f"resources/{STREET_MODEL}; pass --model M)")
    model = load_model(path)
    data = open_dataset(args.data, args.split or "val")
    classes = data.classes
    if needs_transfer(model, classes):
        model, report = transfer_model(model, classes)
        log(f"annotate: {path.name} transferred to the classes of {args.data}: {report.summary()}")
    count = min(args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES), len(data))
    samples = [data[i] for i in range(count)]
    heldout_count = min(getattr(args, "heldout", None) or 0, len(data) - count)
    heldout = [data[i] for i in range(count, count + heldout_count)]
    config = AnnotateConfig()
    if args.quick:
        samples = [_Resized(s, 0.5) for s in samples]
        config = AnnotateConfig(every=2, iterations=2, batch_size=1)
    if getattr(args, "annotate_iters", None):
        config.iterations = args.annotate_iters
    log(f"annotate: {count} image(s) of {args.data} {args.split or 'val'}, model {path}, "
        f"fine-tune {config.iterations} iterations every {config.every} images")
    sequences, anchors = annotate_bench(model, samples, classes, config, log, heldout)
    rows = bench_rows(sequences, anchors, str(path))
    return rows, f"annotation effort ({count} images, model {path}):\n" + format_table(rows)
