"""`qgn predict --model M IMAGE... [--scheme …] [--tau T] [--depth D] [--labels GT] [--out DIR] [--json]
[--resolution auto|working|native]`

Writes OUT/NAME.png (indexed-palette label map) and OUT/NAME.qgt (the predicted quadtree) per
image. With --json, prints one JSON object per image (one per line): active sites per level,
MACs, seconds, and acc/miou when ground truth is given. Ground truth that cannot score its image
(another size, values that are not the model's classes, unreadable) never stops a prediction: that
image is predicted, its accuracy is reported unavailable with the reason (``accuracy_unavailable``
in its JSON record, a line on stderr naming the file), and the exit status is 2. Only GTC, which
follows the ground truth, skips such an image. A missing ground truth stops the run before the
first inference.
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

from qgn.cli.main import CLIError
from qgn.cli.files import MODEL_HELP, Failures, failure_text
from qgn.cli.progress_line import ItemParts
from qgn.cli.threads import add_threads_argument, apply_threads
from qgn.progress import TimeLeft
from qgn.shown import one_line


def add_arguments(p) -> None:
    add_threads_argument(p)
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--scheme", default="pc", choices=["all", "pc", "gtc", "uncertainty"])
    p.add_argument("--tau", type=float, help="PC: propagate where P(composite) >= tau")
    p.add_argument("--entropy", type=float, default=0.5, help="uncertainty: normalised entropy threshold")
    p.add_argument("--depth", type=int, default=0, help="finest level computed (0 = pixels, 5 = root only)")
    p.add_argument("--labels", help="ground truth: a label file (one image) or a folder matched by file stem")
    p.add_argument("--out", help="output folder for NAME.png and NAME.qgt (default: nothing written)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument("--resolution", default="auto", choices=["auto", "working", "native"],
                   help="native: run a photo larger than the model's working size at full resolution (PC "
                        "cost follows the boundaries); working: at the working size, labels mapped back; "
                        "auto (default): working for a model with a working scale (the street model, "
                        "which measured better there), native for a scale-1 model whose JSON records "
                        "training at the photo's scale")


def collect_images(paths: list[str]) -> list[Path]:
    from qgn.cli.files import collect_files
    from qgn.imagefile import IMAGE_EXTENSIONS

    return collect_files(paths, IMAGE_EXTENSIONS, "images")


def find_label(labels: str | None, image: Path, single: bool) -> Path | None:
    if labels is None:
        return None
    root = Path(labels)
    if root.is_file():
        if not single:
            raise ValueError("--labels is a single file but several images were given; pass a folder")
        return root
    for suffix in (".png", ".qgt"):
        candidate = root / f"{image.stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no ground truth for {image.name} in {root} (looked for {image.stem}.png / .qgt)")


def read_ground_truth(path: Path):
    from qgn.quadtree.label_io import read_label_file

    return read_label_file(path)


def ground_truth_problem(label, image_shape: tuple[int, int], label_path: Path, path: Path, model,
                         model_name: str | None) -> str | None:
    """Why the ground truth ``label`` of the image ``path`` cannot score its prediction (another
    size, values that are not the model's classes), naming the file and the values; None when it can.
    Such a ground truth never blocks the prediction (``qgn.ground_truth``): it leaves that image's
    accuracy unavailable, with this reason."""
    from qgn.ground_truth import GroundTruthMismatch, check_ground_truth

    height, width = image_shape
    if label.shape != (height, width):
        return (f"ground truth {label_path} is {label.shape[1]}×{label.shape[0]} but {path} is "
                f"{width}×{height}")
    try:
        check_ground_truth(label, model.config.classes, str(label_path), model_name or "demo")
    except GroundTruthMismatch as exc:
        return str(exc)
    return None


def run(args) -> int:
    apply_threads(args)

    from qgn.model.checkpoint import load_model
    from qgn.propagation import Scheme
    from qgn.resources import default_model

    from qgn.cli.device import resolve_device

    device = resolve_device(args.device)
    model = load_model(default_model(args.model), device)
    classes = model.config.classes
    check_depth(args.depth, model.config.num_levels)
    scheme = Scheme(args.scheme, tau=args.tau, entropy=args.entropy, depth=args.depth)
    if scheme.needs_ground_truth and args.labels is None:
        raise CLIError("--scheme gtc follows the ground truth: pass --labels FILE|DIR, or use --scheme pc")
    images = collect_images(args.images)
    label_paths = [find_label(args.labels, path, len(images) == 1) for path in images]  # all, before inference
    out = Path(args.out) if args.out else None
    if out:
        prepare_out(out, images, label_paths)
    failed = Failures("predict", len(images), "image(s)")
    unscored = Failures("predict", len(images), "image(s)",  # predicted; the ground truth cannot score them
                        "predicted without accuracy (their ground truth cannot score them)")
    time_left = TimeLeft()
    parts = ItemParts("predict", len(images), writes=2 if out else 0, time_left=time_left)
    for i, (path, label_path) in enumerate(zip(images, label_paths)):
        parts.begin(i, path)
        parts.part("reading")
        try:
            if out:  # a .qgt no reader would open is said before the prediction, not after it
                check_writable(path)
            pred, record, label = predict_one(model, path, label_path, device, scheme, args.resolution, args.model,
                                              parts.session)
            if out:
                write_outputs(out, path.stem, pred, classes, parts.writing)
        except (ValueError, OSError) as exc:  # one bad file: report it, go on with the rest
            parts.clear()
            failed.report(path, str(exc) if "ground truth" in str(exc) else failure_text(path, exc))
            continue
        parts.clear()  # before its line on stdout (the same terminal, often)
        if "accuracy_unavailable" in record:
            unscored.report(path, f"{record['accuracy_unavailable']}; accuracy of {path} unavailable")
        print_record(record, i, len(images), path, label is not None, args.json, time_left.suffix(i + 1, len(images)))
    return max(failed.code(), unscored.code())  # 2 if any image failed or went unscored


def check_writable(path: Path) -> None:
    """ValueError (naming the image) when the prediction of the image at ``path``, which has its size,
    would be a .qgt larger than a reader accepts (``check_readable_size``): from its header alone."""
    from qgn.imagefile import upright_size
    from qgn.quadtree import NUM_LEVELS
    from qgn.quadtree.qgt import check_readable_size

    width, height = upright_size(path)
    try:
        check_readable_size(height, width, NUM_LEVELS, fix="crop the image, or predict it without --out")
    except ValueError as exc:
        raise ValueError(f"{path}: its prediction would not fit a .qgt: {exc}") from None


def prepare_out(out: Path, images: list[Path], label_paths: list) -> None:
    """Make the output folder, refusing one that is a file or outputs that would overwrite an input."""
    from qgn.cli.files import check_output_folder, check_outputs
    from qgn.fileio import make_folder, remove_stale_temporaries

    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder; name a folder for the outputs")
    check_outputs(images + [p for p in label_paths if p],
                  [(out / f"{path.stem}{suffix}", path) for path in images for suffix in (".png", ".qgt")])
    check_output_folder(out)  # read-only: said once, not once per image
    make_folder(out)  # a link to nothing or a file in the way: named as what it is
    remove_stale_temporaries(out)


def predict_one(model, path: Path, label_path: Path | None, device, scheme, resolution, model_name=None,
                progress=None):
    """Predict one image; returns (prediction, its JSON record — cost, and scores when there is ground
    truth —, the ground truth or None). ``progress``: ``ImageSession.run``'s. Ground truth that cannot score the prediction (unreadable,
    another size, foreign values) leaves the record's scores out and says why in its
    ``accuracy_unavailable``; the prediction is made all the same, except for a scheme that follows
    the ground truth (GTC). Raises ValueError/OSError on a bad image (or such ground truth for GTC)."""
    from qgn.data.imageio import read_rgb
    from qgn.infer import ImageSession
    from qgn.metrics import ConfusionMatrix

    image = read_rgb(path)
    label, problem = None, None
    if label_path:
        try:
            label = read_ground_truth(label_path)
        except (ValueError, OSError) as exc:
            problem = str(exc) if str(label_path) in str(exc) else f"ground truth {label_path}: {exc}"
        else:
            problem = ground_truth_problem(label, image.shape[:2], label_path, path, model, model_name)
        if problem is not None:
            if scheme.needs_ground_truth:
                raise ValueError(f"{problem}; --scheme {scheme.name} follows the ground truth, so {path} is not "
                                 "predicted")
            label = None
    with naming(label_path if label is not None else None):  # these fail on ground truth only
        if progress is not None:
            progress(0, 0, "preparing")  # resized to the working size, normalised: ~1 s for 24 MP
        pred = ImageSession(model, image, label, device, resolution=resolution).run(scheme, progress)
        record = {"image": str(path), **pred.cost().to_json()}
        if label is not None:
            record.update(ConfusionMatrix(model.config.classes.num_classes).add(label, pred.label()).to_json())
        elif problem is not None:
            record["accuracy_unavailable"] = problem
    return pred, record, label


def print_record(record: dict, i: int, n: int, path: Path, scored: bool, as_json: bool, left: str = "") -> None:
    """One line per image: its JSON record, or its sites, MACs, time (and scores) and ``left``
    (`qgn.progress.TimeLeft.suffix`)."""
    if as_json:
        print(json.dumps(record), flush=True)
    else:
        extra = f"  acc {record['acc']:.4f}  mIoU {record['miou']:.4f}" if scored else ""
        if "accuracy_unavailable" in record:
            extra = "  accuracy unavailable (see stderr)"
        sites = " ".join(f"Q{k}:{v}" for k, v in record["active_sites"].items())
        print(f"[{i + 1}/{n}] {one_line(path.name)}: {sites}  {record['macs'] / 1e9:.3f} GMAC"
              f"  {record['seconds'] * 1e3:.0f} ms{extra}{left}", file=sys.stdout)


@contextmanager
def naming(label_path: Path | None):
    """Prefix a ValueError raised inside with the ground-truth file it is about."""
    try:
        yield
    except ValueError as exc:
        if label_path is None:
            raise
        raise ValueError(f"ground truth {label_path}: {exc}") from None


def check_depth(depth: int, levels: int) -> None:
    """--depth must name a level of the model: 0 (pixels) … levels-1 (root only)."""
    if not 0 <= depth < levels:
        raise CLIError(f"--depth {depth}: the model has levels 0 (pixels) … {levels - 1} (root only); "
                       f"choose --depth between 0 and {levels - 1}")


def write_outputs(out: Path, stem: str, pred, classes, step=None) -> None:
    """OUT/STEM.png and OUT/STEM.qgt, both or neither: the .png goes again when the .qgt fails.
    ``step(k, what)`` before the k-th file (1, 2) is made."""
    from qgn.quadtree.label_io import write_label_png
    from qgn.quadtree.qgt import write_qgt

    png = out / f"{stem}.png"
    if step is not None:
        step(1, f"writing {one_line(png.name)}")
    write_label_png(png, pred.label(), classes)
    try:
        if step is not None:
            step(2, f"writing {one_line(stem)}.qgt")
        write_qgt(out / f"{stem}.qgt", pred.quadtree(), classes)
    except BaseException:
        png.unlink(missing_ok=True)
        raise
