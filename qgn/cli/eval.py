"""`qgn eval [--model M] [DATA] [--split val] [--modes all,gtc,pc] [--depths 5,…,0] [--tau T] [--json]`

DATA: a dataset name or folder (see ``qgn.data.registry.open_dataset``); without it, the bundled
sample images and their ground truth. Prints a table like the paper's Table 1; ``--json`` prints
``{"all": {"acc", "miou", "active_sites", "macs", …}, "gtc": {…}, "pc": {…}}`` (fractions 0..1).
"""
from __future__ import annotations

import json
import sys

from qgn.cli.threads import add_threads_argument, apply_threads

def add_arguments(p) -> None:
    add_threads_argument(p)
    p.add_argument("data", nargs="?", help="dataset name or folder (default: the bundled samples)")
    p.add_argument("--model", help="model .safetensors (default: the bundled demo model)")
    p.add_argument("--split", default="val")
    p.add_argument("--modes", default="all,gtc,pc", help="comma-separated eval schemes")
    p.add_argument("--depths", default="", help="also evaluate PC at these depth limits, e.g. 5,4,3")
    p.add_argument("--tau", type=float, help="PC threshold (default: argmax rule)")
    p.add_argument("--limit", type=int, help="evaluate only the first N images")
    p.add_argument("--scale", type=float, default=1.0,
                   help="resize images (bilinear) and labels (nearest) by this factor first, e.g. 0.5")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")


def open_eval_data(args):
    from qgn.data.registry import open_dataset
    from qgn.resources import samples_dir

    if args.data:
        return open_dataset(args.data, args.split)
    root = samples_dir()
    if not (root / "images").is_dir():
        raise FileNotFoundError(f"no data given and the bundled samples are missing ({root})")
    return open_dataset(f"folder:{root}", args.split)


def rescale(sample, scale: float):
    """The sample resized by ``scale`` (image bilinear, label nearest); unchanged at 1.0."""
    if scale == 1.0:
        return sample
    from qgn.data.base import Sample
    from qgn.data.transforms import resize_image, resize_label

    h, w = sample.label.shape
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return Sample(resize_image(sample.image, size), resize_label(sample.label, size), sample.name)


def run(args) -> int:
    apply_threads(args)
    import torch

    from qgn.evaluate import evaluate, format_table
    from qgn.model.checkpoint import load_model
    from qgn.propagation import Scheme
    from qgn.resources import default_model

    from qgn.cli.device import resolve_device

    device = resolve_device(args.device)
    model = load_model(default_model(args.model), device)
    data = open_eval_data(args)
    if data.classes.num_classes != model.config.classes.num_classes:
        raise ValueError(f"the data has {data.classes.num_classes} classes, the model {model.config.classes.num_classes}")
    schemes = {m: Scheme(m, tau=args.tau if m == "pc" else None) for m in args.modes.split(",") if m}
    for d in filter(None, args.depths.split(",")):
        schemes[f"pc@{int(d)}"] = Scheme("pc", tau=args.tau, depth=int(d))
    n = len(data) if args.limit is None else min(args.limit, len(data))
    samples = (rescale(data[i], args.scale) for i in range(n))

    def progress(i: int) -> None:
        print(f"\rqgn eval: {i}/{n}", end="", file=sys.stderr, flush=True)

    results = evaluate(model, samples, schemes, device, progress)
    print(file=sys.stderr)
    if args.json:
        print(json.dumps({name: r.to_json() for name, r in results.items()}))
    else:
        print(format_table(results))
    return 0
