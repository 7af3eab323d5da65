"""`qgn eval [--model M] [DATA] [--split val] [--modes all,gtc,pc] [--depths 5,…,0] [--tau T] [--json]`

DATA: a dataset name or folder (see ``qgn.data.registry.open_dataset``); without it, the bundled
sample images and their ground truth. Prints a table like the paper's Table 1; ``--json`` prints
``{"all": {"acc", "miou", "active_sites", "macs", …}, "gtc": {…}, "pc": {…}}`` (fractions 0..1).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from qgn.cli.files import MODEL_HELP
from qgn.cli.progress_line import ProgressLine, end_drawn_line
from qgn.cli.threads import add_threads_argument, apply_threads

DEFAULT_SPLIT = "val"


def add_arguments(p) -> None:
    add_threads_argument(p)
    p.add_argument("data", nargs="?", help="dataset name or folder (default: the bundled samples)")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--split", help=f"the split of a dataset with splits (default {DEFAULT_SPLIT})")
    p.add_argument("--modes", default="all,gtc,pc", help="comma-separated eval schemes")
    p.add_argument("--depths", default="", help="also evaluate PC at these depth limits, e.g. 5,4,3")
    p.add_argument("--tau", type=float, help="PC threshold (default: argmax)")
    p.add_argument("--limit", type=int, help="evaluate only the first N images (N >= 1)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="resize images (bilinear) and labels (nearest) by this factor first, e.g. 0.5 "
                        "(default 1: the images as stored; a model with a working scale resizes by itself "
                        "and is scored on the original pixels)")
    p.add_argument("--record", metavar="OUT.safetensors",
                   help="write a copy of the model to OUT with this evaluation stored in its JSON "
                        "(what `qgn models` shows); the model given is never changed")
    p.add_argument("--force", action="store_true", help="overwrite --record if it exists (never the --model itself)")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")


def open_eval_data(args):
    from qgn.data.registry import open_dataset
    from qgn.resources import samples_dir

    split = args.split or DEFAULT_SPLIT
    if args.data:
        check_folder_split(args.data, args.split)
        return open_dataset(args.data, split)
    root = samples_dir()
    if not (root / "images").is_dir():
        raise FileNotFoundError(f"no data given and the bundled samples are missing ({root})")
    return open_dataset(f"folder:{root}", split)


def check_folder_split(data_arg: str, split: str | None) -> None:
    """A folder dataset (``classes.txt``) reads ``FOLDER/SPLIT/`` when it exists and the whole folder
    otherwise: a --split that names no split of a folder with splits is an error, and one given for
    a folder without splits is said not to apply (instead of being silently ignored)."""
    from qgn.data.base import DatasetLayoutError
    from qgn.data.registry import detect_layout

    if split is None:
        return
    named = data_arg.startswith("folder:")
    root = Path(data_arg.partition(":")[2] if named else data_arg)
    if not root.is_dir() or (root / split / "images").is_dir():
        return
    if not named:
        try:
            if detect_layout(root, split) != "folder":
                return
        except DatasetLayoutError:
            return  # open_dataset says what the folder lacks
    splits = sorted(d.name for d in root.iterdir() if (d / "images").is_dir())
    if splits:
        raise ValueError(f"--split {split}: {root} has no such split; it has {', '.join(splits)}")
    end_drawn_line()  # the 'loading' line, on a terminal
    print(f"qgn eval: note: --split {split} does not apply: {root} has no split folders, so all of it "
          "is evaluated", file=sys.stderr)


def check_options(args) -> None:
    """ValueError naming the option for a --scale, --limit or --modes that would make no evaluation."""
    import math

    if not (math.isfinite(args.scale) and args.scale > 0):
        raise ValueError(f"--scale {args.scale:g}: expected a finite factor > 0, e.g. 0.5")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: expected a number of images >= 1")
    if not [m for m in args.modes.split(",") if m.strip()]:
        raise ValueError(f"--modes {args.modes!r} names no scheme; e.g. --modes all,gtc,pc")


def parse_depths(text: str, levels: int) -> list[int]:
    """The --depths list: whole numbers in 0..levels-1 (levels of the model's decoder)."""
    depths = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            depth = int(part)
        except ValueError:
            raise ValueError(f"--depths {text}: {part!r} is not a whole number; e.g. --depths 5,4,3") from None
        if not 0 <= depth < levels:
            raise ValueError(f"--depths {text}: {depth} is not a level of this model; use 0..{levels - 1} "
                             f"(0 = down to pixels, {levels - 1} = the coarsest level only)")
        depths.append(depth)
    return depths


def check_classes(data, model, model_name: str) -> None:
    """The data's class count must be the model's; otherwise say which bundled model fits."""
    from qgn.resources import bundled_models

    have, want = model.config.classes, data.classes
    if have.num_classes == want.num_classes:
        return
    fits = [m.name for m in bundled_models() if m.classes.num_classes == want.num_classes]
    hint = f"; the bundled model {fits[0]!r} has {want.num_classes} (--model {fits[0]})" if fits else ""
    raise ValueError(f"the data has {want.num_classes} classes ({', '.join(want.names[:6])}…), model "
                     f"{model_name} has {have.num_classes} ({', '.join(have.names[:6])}…){hint}")


def check_pairs(data, n: int, classes, scale: float = 1.0) -> None:
    """Read every label (and each image's header) before the first inference, so an unusable pair
    (or a --scale that makes one too large) stops the run at once, naming the files."""
    from qgn.data.transforms import scaled_size
    from qgn.ground_truth import check_ground_truth
    from qgn.imagefile import upright_size

    pairs = getattr(data, "pairs", None)
    if pairs is None:
        return
    for image_path, label_path in pairs[:n]:
        label = data.map_label(data.read_raw_label(label_path), label_path)
        width, height = upright_size(image_path)
        scaled_size(height, width, scale, image_path)
        if label.shape != (height, width):
            raise ValueError(f"label {label_path} is {label.shape[1]}×{label.shape[0]} but its image "
                             f"{image_path} is {width}×{height}")
        ignore = data.classes.ignore_index
        if ignore is not None and classes.ignore_index is not None and ignore != classes.ignore_index:
            label = label.copy()
            label[label == ignore] = classes.ignore_index
        check_ground_truth(label, classes, str(label_path))


def _check_record(args, model_path) -> None:
    """``--record``: never the model evaluated; refused now, not after the whole evaluation."""
    from qgn.fileio import resolved

    if args.record and resolved(args.record) in (resolved(model_path), resolved(model_path.with_suffix(".json"))):
        raise ValueError(f"--record {args.record} would overwrite the model evaluated; name a new file")
    if args.record:  # refused now, not after the whole evaluation; replaced only with --force, as finetune's --out
        from qgn.cli.finetune import check_out

        check_out(Path(args.record), model_path, args.force, option="--record", role="evaluated")


def _schemes(args, model) -> dict:
    """{name: Scheme} of ``--modes``, ``--tau`` and ``--depths``."""
    from qgn.propagation import Scheme

    try:
        schemes = {m: Scheme(m, tau=args.tau if m == "pc" else None)
                   for m in (m.strip() for m in args.modes.split(",")) if m}
    except ValueError as exc:  # an unknown scheme or a --tau outside [0, 1]
        raise ValueError(f"--modes {args.modes} --tau {args.tau}: {exc}" if args.tau is not None
                         else f"--modes {args.modes}: {exc}") from None
    for d in parse_depths(args.depths, model.config.num_levels):
        schemes[f"pc@{d}"] = Scheme("pc", tau=args.tau, depth=d)
    return schemes


def _print_results(args, results, names) -> None:
    from qgn.evaluate import format_class_table, format_table

    if args.json:
        print(json.dumps({name: r.to_json(names) for name, r in results.items()}))
    else:
        print(format_table(results))
        print()
        print(format_class_table(results, names))


def _write_record(args, model, data, results, names, n: int) -> None:
    """The model saved to ``--record`` with this evaluation in its extra."""
    from qgn.evaluate import evaluation_record
    from qgn.model.checkpoint import save_model

    from qgn.train.loop import record_input_size

    if args.scale == 1.0:  # a scaled model from before input_size existed learns its reference size
        record_input_size(model, data)
    extra = dict(model.config.extra or {})
    extra["evaluation"] = evaluation_record(results, names, args.data or "samples", args.split or DEFAULT_SPLIT, n,
                                            args.scale)
    model.config.extra = extra
    save_model(Path(args.record), model.cpu(), extra=None)
    print(f"qgn eval: wrote {args.record} (+ .json) with this evaluation recorded", file=sys.stderr)


def run(args) -> int:
    # seconds before the first image is evaluated (torch, the model, the data set, each label read
    # and checked): said at once, on a terminal only - stdout, a log or a pipe get no progress line
    line = ProgressLine(48, shown=sys.stderr.isatty())
    line.show("qgn eval: loading the model…")
    apply_threads(args)

    from qgn.evaluate import evaluate
    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model

    from qgn.cli.device import resolve_device

    check_options(args)
    device = resolve_device(args.device)
    model_path = default_model(args.model)
    _check_record(args, model_path)
    model = load_model(model_path, device)
    data = open_eval_data(args)
    check_classes(data, model, args.model or "demo")
    schemes = _schemes(args, model)
    n = len(data) if args.limit is None else min(args.limit, len(data))
    line.show(f"qgn eval: loading {n} images…")
    check_pairs(data, n, model.config.classes, args.scale)
    from qgn.data.transforms import rescale

    samples = (rescale(data[i], args.scale) for i in range(n))

    from qgn.progress import TimeLeft

    line.time_left = TimeLeft()  # from the first image on

    def progress(i: int) -> None:
        line.show(f"qgn eval: {i}/{n}{line.time_left.suffix(i, n)}")

    results = evaluate(model, samples, schemes, device, progress)
    line.off_the_line()
    names = model.config.classes.names
    _print_results(args, results, names)
    if args.record:
        _write_record(args, model, data, results, names, n)
    return 0
