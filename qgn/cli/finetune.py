"""`qgn finetune [--model M] --images DIR --labels DIR [--classes FILE] [--ignore V] [--iters N] --out M2.safetensors`

Fine-tunes a model on corrected labels (``qgn.train.finetune``) and saves it under a new name.
Images and labels pair by file stem (labels: ``STEM.png`` of class ids, or ``STEM.qgt``); images
without a label are skipped (and counted). Progress goes to stderr; stdout gets the before/after
table on the fine-tuned images (pixel accuracy, mIoU, cell agreement, changed cells), or with
``--json`` one JSON object. ``--out`` must be new unless ``--force``, and is never the input model.
Ctrl-C stops the run and saves nothing: the original model is untouched and no --out is written.
What learns is ``--encoder``: ``auto`` (the default, as the Fine-tune dock's Automatic) lets the
encoder learn once there are ``ENCODER_LEARNS_FROM`` (32) images to train on, else the decoder alone.

The labels' class set comes from ``--classes`` (a ``classes.txt`` / palette file, or a project
folder or its project.json), else from a ``classes.txt`` beside the labels (in the labels folder
or its parent), else it is the model's. When it differs from the model's, the model is first
transferred to it (``qgn.model.transfer``: rows of classes both sets name are kept, new classes
start fresh, the others are dropped) and stderr says what was kept, new and dropped.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from qgn.cli.files import MODEL_HELP
from qgn.cli.progress_line import ProgressLine
from qgn.cli.threads import add_threads_argument, apply_threads
from qgn.fileio import no_input_error

PROGRESS_INTERVAL_S = 0.25  # at most four progress lines a second


def add_arguments(p) -> None:
    add_threads_argument(p)
    p.add_argument("--model", help="model to start from: " + MODEL_HELP)
    p.add_argument("--images", required=True, help="folder of images (or one image file)")
    p.add_argument("--labels", required=True, help="folder of corrected labels STEM.png / STEM.qgt (or one file)")
    p.add_argument("--out", required=True, help="the fine-tuned model, NEW.safetensors (+ NEW.json)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists (never the --model itself)")
    p.add_argument("--classes", help="the labels' classes: classes.txt / palette file, or a project folder "
                                      "(default: classes.txt beside the labels, else the model's classes); "
                                      "a model with other classes is transferred to them first")
    p.add_argument("--ignore", type=int, help="label value that marks unlabelled pixels (mapped to the model's ignore)")
    from qgn.train.finetune import FinetuneConfig

    d = FinetuneConfig()
    p.add_argument("--iters", type=int, default=d.iterations, help=f"iterations (default {d.iterations})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"initial learning rate, poly decay (default {d.lr})")
    p.add_argument("--optimizer", default=d.optimizer, choices=["adamw", "sgd"], help=f"(default {d.optimizer})")
    p.add_argument("--scheme", default=d.scheme, choices=["pc+gtc", "gtc", "all", "all+gtc"],
                   help=f"training propagation (default {d.scheme}: the sites PC visits plus the labels' composite "
                        f"cells; all+gtc alternates the dense decoder and GTC, ~5x slower, and keeps eval-All good too)")
    from qgn.train.finetune import ENCODER_LEARNS_FROM

    p.add_argument("--encoder", default="auto", choices=["auto", "frozen", "train"],
                   help=f"what learns. auto (default, the Fine-tune dock's Automatic): the encoder too once the "
                        f"fine-tune trains on {ENCODER_LEARNS_FROM} images or more, else the decoder alone "
                        "(qgn.train.finetune.auto_encoder); frozen: only the decoder learns, on encoder features "
                        "computed once, and the model keeps its domain check; train: the whole network; images "
                        "larger than 512x512 are cut to random crops of at most that size (a memory bound), and no "
                        "domain reference is kept (measured on whole 240x180 CamVid frames: about 1.5-2x slower, and "
                        "on a scene the model never saw its start paid from 32 corrected images)")
    p.add_argument("--eval-scheme", default="pc", choices=["pc", "all", "gtc"],
                   help="propagation for the before/after comparison (default pc)")
    p.add_argument("--train-norm", action="store_true", help="update BatchNorm statistics too (default: frozen)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, … (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the comparison as one JSON object")


def find_pairs(images_arg: str, labels_arg: str) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(image, label) pairs by stem, and the images that have no label."""
    from qgn.cli.predict import collect_images

    images = collect_images([images_arg])
    labels = Path(labels_arg)
    if labels.is_file():
        if len(images) != 1:
            raise ValueError(f"--labels is one file but --images has {len(images)} images; pass a folder")
        return [(images[0], labels)], []
    if not labels.is_dir():
        raise no_input_error(labels)
    pairs, unlabelled = [], []
    for image in images:
        found = [labels / f"{image.stem}{s}" for s in (".png", ".qgt") if (labels / f"{image.stem}{s}").is_file()]
        if found:
            pairs.append((image, found[0]))
        else:
            unlabelled.append(image)
    if not pairs:
        raise FileNotFoundError(f"no image in {images_arg} has a label in {labels} (looked for STEM.png / STEM.qgt)")
    return pairs, unlabelled


def read_correction(path: Path, ignore_value: int | None, model_ignore: int, classes):
    """(H, W) int64 label of ``path`` (``read_label_file``: a .qgt's classes matched by name to
    ``classes``, the model's ClassSet) with ``ignore_value`` → the model's ignore."""
    import numpy as np

    from qgn.quadtree.label_io import read_label_file

    label = read_label_file(path, classes).astype(np.int64)
    if ignore_value is not None:
        label[label == ignore_value] = model_ignore
    return label


def load_pairs(pairs, model, ignore_value):
    from qgn.data.imageio import read_rgb
    from qgn.train.finetune import check_corrections

    images = [read_rgb(image) for image, _ in pairs]
    classes = model.config.classes
    labels = [read_correction(label, ignore_value, classes.ignore_index, classes) for _, label in pairs]
    try:
        check_corrections(model, images, labels, [str(label) for _, label in pairs])
    except ValueError as exc:  # the --ignore hint only where label values are the problem
        about_values = "label values" in str(exc)
        hint = "; if a value marks unlabelled pixels, pass --ignore VALUE" if about_values and ignore_value is None else ""
        raise ValueError(f"{exc}{hint}") from None
    return images, labels


def resolve_classes(classes_arg: str | None, labels_arg: str):
    """The labels' ClassSet (see the module docstring), or None to use the model's."""
    from qgn.quadtree.label_io import find_classes_file, read_classes_file

    if classes_arg:
        path = Path(classes_arg)
        if path.is_dir() or path.name == "project.json":
            from qgn.project import Project

            return Project.open(path if path.is_dir() else path.parent).classes
        return read_classes_file(path, named=True)
    labels = Path(labels_arg)
    folder = labels if labels.is_dir() else labels.parent
    classes_file = find_classes_file(folder)
    return None if classes_file is None else read_classes_file(classes_file)


def transfer_if_needed(model, classes, log):
    """``model``, or its transfer to ``classes`` when they differ (``log`` says what was kept)."""
    from qgn.model.transfer import needs_transfer, transfer_model

    if classes is None or not needs_transfer(model, classes):
        return model
    if classes.ignore_index is None:
        raise ValueError("the labels' class set has no ignore value, which fine-tuning needs; add an 'ignore: V' "
                         "line to the classes file")
    model, report = transfer_model(model, classes)
    log(f"the model's classes differ from the labels'; transferred: {report.summary()}")
    return model


def check_out(out: Path, model_path: Path, force: bool, option: str = "--out", role: str = "fine-tuned") -> None:
    """CLIError before any work when the model file ``out`` (given as ``option``) is not a new
    .safetensors in a writable folder (``force`` allows replacing one), or is the model ``role``."""
    from qgn.cli.main import CLIError
    from qgn.model.checkpoint import config_path
    from qgn.train.finetune import same_file

    if out.suffix != ".safetensors":
        raise CLIError(f"{option} must end in .safetensors; got {out.name}")
    if same_file(out, model_path) or same_file(config_path(out), config_path(model_path)):
        raise CLIError(f"{option} {out} is the model being {role}; choose a new name (--force does not apply)")
    if out.is_dir():
        raise CLIError(f"{option} {out} is a folder; name a new .safetensors file")
    if not force:
        for existing in (out, config_path(out)):
            if existing.exists():
                raise CLIError(f"{existing} exists; choose a new {option} or pass --force to overwrite it")
    from qgn.cli.files import check_writable_folder

    check_writable_folder(out, option)
    check_writable_folder(config_path(out), option)


def percent(x: float) -> str:
    return "   n/a" if x is None or not math.isfinite(x) else f"{100 * x:6.2f}"


def format_comparison(comparison) -> str:
    """The before/after table: one row per image, then the total."""
    lines = [f"{'image':<28} {'acc %':>15} {'mIoU %':>15} {'cells agree %':>15} {'changed cells':>14}",
             f"{'':<28} {'before  after':>15} {'before  after':>15} {'before  after':>15}"]

    def row(name, before, after, changed):
        cols = [f"{percent(before[k])} {percent(after[k])}" for k in ("acc", "miou", "agreement")]
        return f"{name[:28]:<28} {cols[0]:>15} {cols[1]:>15} {cols[2]:>15} {changed:>14}"

    for r in comparison.per_image:
        lines.append(row(Path(r["name"]).stem, r["before"], r["after"], r["changed_cells"]))
    lines.append(row(f"all ({comparison.scheme})", comparison.before, comparison.after, comparison.changed_cells))
    lines.append(f"changed pixels: {comparison.changed_pixels} of {comparison.pixels}")
    return "\n".join(lines)


def finite_or_none(value):
    """JSON-safe copy: NaN/inf → None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value


def run(args) -> int:
    apply_threads(args)

    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model
    from qgn.train.finetune import compare_models, finetune, finetune_metadata, save_new_model

    model_path = default_model(args.model)
    out = Path(args.out)
    check_out(out, model_path, args.force)
    config = finetune_config(args)  # bounded options, before any model or image is read
    from qgn.cli.stats import check_ignore

    check_ignore(args.ignore)
    from qgn.fileio import remove_stale_temporaries

    remove_stale_temporaries(out.parent)  # of a save killed mid-write
    from qgn.cli.device import resolve_device

    device = resolve_device(args.device)
    model = load_model(model_path, device)
    model = transfer_if_needed(model, resolve_classes(args.classes, args.labels),
                               lambda m: print(f"qgn finetune: {m}", file=sys.stderr))
    pairs, images, labels = load_corrections(args, model)
    names = [str(label) for _, label in pairs]
    config.encoder = learns(args.encoder, len(images))
    config.validate()
    progress = FinetuneProgress(config.iterations)
    print(f"qgn finetune: {len(pairs)} image(s), {config.iterations} iterations from {model_path}", file=sys.stderr)
    try:
        result = finetune(model, images, labels, config, progress=progress, names=names,
                          preparing=ImageSteps("encoding"))
    except KeyboardInterrupt:
        progress.off_the_line()
        print(f"qgn finetune: interrupted after {progress.done} iterations; nothing saved ({model_path} is unchanged)",
              file=sys.stderr)
        return 130
    seconds = time.perf_counter() - progress.start
    progress.off_the_line()
    comparing = ImageSteps("comparing before and after on")
    try:
        comparison = compare_models(model, result.model, images, labels, args.eval_scheme, names, progress=comparing)
    except KeyboardInterrupt:
        comparing.clear()  # (the message was glued onto the comparison's line)
        print(f"qgn finetune: interrupted while comparing before and after; nothing saved ({model_path} is "
              "unchanged)", file=sys.stderr)
        return 130
    comparing.off_the_line()
    saved = save_new_model(result.model, out, overwrite=args.force, original=model_path,
                           extra=finetune_metadata(config, result, model_path, names))
    report(args, model_path, saved, result, comparison, seconds)
    return 0


def finetune_config(args):
    """The ``FinetuneConfig`` of the command line, validated (a bad value raises ValueError naming it).
    ``--encoder auto`` is decided once the images are counted (``learns``); validated here as frozen."""
    from qgn.train.finetune import FinetuneConfig

    config = FinetuneConfig(iterations=args.iters, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                            scheme=args.scheme, seed=args.seed, freeze_norm=not args.train_norm,
                            encoder="frozen" if args.encoder == "auto" else args.encoder)
    config.validate()
    return config


def learns(encoder: str, images: int) -> str:
    """What learns for ``--encoder`` on ``images`` corrected images (it trains on all of them):
    ``auto`` is the Fine-tune dock's Automatic (``qgn.train.finetune.auto_encoder``), said on stderr."""
    from qgn.train.finetune import ENCODER_LEARNS_FROM, auto_encoder

    if encoder != "auto":
        return encoder
    decided = auto_encoder(images)
    what = ("the encoder learns too" if decided == "train" else "the decoder alone learns (the encoder from "
            f"{ENCODER_LEARNS_FROM} images)")
    print(f"qgn finetune: --encoder auto: {images} image(s): {what}", file=sys.stderr)
    return decided


def load_corrections(args, model):
    """The (image, label) path pairs found, and their images and label maps in the model's classes;
    images without a label are skipped with a note."""
    pairs, unlabelled = find_pairs(args.images, args.labels)
    if unlabelled:
        print(f"qgn finetune: {len(unlabelled)} image(s) without a label skipped, e.g. {unlabelled[0].name}",
              file=sys.stderr)
    images, labels = load_pairs(pairs, model, args.ignore)
    return pairs, images, labels


class FinetuneProgress(ProgressLine):
    """``progress(iteration, loss)`` for ``finetune``: one line on stderr, rewritten at most every
    ``PROGRESS_INTERVAL_S`` and at the last iteration, with the rate since ``start``."""

    def __init__(self, iterations: int):
        super().__init__(72)
        self.iterations = iterations
        self.start = self.last_print = time.perf_counter()
        self.done = 0

    def __call__(self, iteration: int, loss: float) -> None:
        self.done = iteration
        now = time.perf_counter()
        if now - self.last_print >= PROGRESS_INTERVAL_S or iteration == self.iterations:
            self.last_print = now
            self.show(f"qgn finetune: {iteration}/{self.iterations} loss {loss:.4f} "
                      f"{iteration / (now - self.start):.2f} it/s{self.time_left.suffix(iteration, self.iterations)}")


class ImageSteps(ProgressLine):
    """``progress(done, total)`` of a pass over the images before or after the iterations (the
    frozen encoder's features, the comparison: minutes for hundreds of photos): ``qgn finetune:
    WHAT i/n images · about … left`` on stderr, on a terminal only; the line is blanked at the end
    (the iterations' line or the report takes its place)."""

    def __init__(self, what: str):
        super().__init__(72, sys.stderr.isatty())
        self.what = what

    def __call__(self, done: int, total: int) -> None:
        if done < total:
            self.show(f"qgn finetune: {self.what} {done}/{total} images{self.time_left.suffix(done, total)}")
        else:
            self.clear()


def report(args, model_path, saved, result, comparison, seconds: float) -> None:
    """The comparison and where the model was saved: JSON with ``--json``, else a table and a line."""
    if args.json:
        print(json.dumps(finite_or_none({
            "model": str(saved), "from": str(model_path), "iterations_done": result.iterations_done,
            "final_loss": result.losses[-1], "first_loss": result.losses[0], "seconds": seconds,
            "comparison": comparison.to_json()})))
    else:
        print(format_comparison(comparison))
        print(f"saved {saved} (+ {saved.with_suffix('.json').name}); {result.iterations_done} iterations in "
              f"{seconds:.1f} s, loss {result.losses[0]:.4f} → {result.losses[-1]:.4f}")
