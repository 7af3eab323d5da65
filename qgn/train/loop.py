"""The training loop (supplement A.2): SGD + polynomial decay, augmentation, logging, checkpoints.

A run writes into ``out/``: ``log.csv`` (one row per logged iteration), ``last.safetensors`` +
``last.json`` (the model), ``last.state.safetensors`` + ``last.state.json`` (optimizer momentum,
loss weights, iteration — enough to resume), and ``final.safetensors`` at the end. Ctrl-C saves a
checkpoint before exiting; ``resume=True`` continues from the last one.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from qgn.data.transforms import augment, collate
from qgn.loss import QuadtreeLoss
from qgn.quadtree import ROOT_LEVEL
from qgn.fileio import (FIXED_NAME_ADVICE, atomic_write_bytes, atomic_write_together, refuse_special_output,
                        remove_stale_temporaries)
from qgn.model.checkpoint import load_model, model_files, save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme
from qgn.train.distributed import gather_digests, init_distributed, shutdown, wait_for_all, wrap_model
from qgn.train.step import train_step


@dataclass
class TrainConfig:
    """Every knob of a run; loadable from TOML (``[train]`` table or top level) and the CLI."""

    dataset: str = "synthetic"  # a name or path for qgn.data.registry.open_dataset
    split: str = "train"
    model: str = "tiny"  # a preset of qgn.model.qgn.PRESETS
    init: str | None = None  # fine-tune from this checkpoint instead of a fresh model
    encoder_weights: str | None = None  # ImageNet ResNet weights for a fresh model's encoder (qgn.model.pretrained)
    iterations: int = 1000
    batch_size: int = 4
    optimizer: str = "sgd"  # sgd (the paper's recipe) | adamw (converges faster for tiny CPU models)
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9
    scheme: str = "all"  # training propagation: all | gtc | all+gtc (alternate per iteration)
    weighting: str = "fixed"  # fixed | adaptive
    gamma: float = 1.0
    composite_weight: float = 1.0  # cross-entropy weight of the composite class (>1: PC closer to All)
    scale_min: float = 0.5
    scale_max: float = 2.0
    # Wide scales: with probability ``scale_wide_share`` a sample is instead scaled by a factor drawn
    # log-uniformly from [scale_max, scale_wide] (0 = off) and cropped before it is resized, so a
    # crop at 8x costs what one at 1x does. A model that must run at native resolution learns there
    # that a small cell inside a large object is uniform (see benchmarks/RESULTS.md, "Scaling").
    scale_wide: float = 0.0
    scale_wide_share: float = 0.5
    flip: bool = True
    crop: int = 0  # random square crop after scaling (0 = full image, as in the paper)
    synthetic_n: int = 1000
    synthetic_size: int = 256
    log_every: int = 10
    checkpoint_every: int = 200
    class_weight_every: int = 0  # A.2: every N iterations double the weight of classes below median IoU
    class_weight_images: int = 100  # … measured on this many held-out images (the val split)
    class_balance: str = "none"  # none | median-frequency | sqrt-median-frequency (from the training labels)
    input_scale: float = 1.0  # the model's working scale, stored in its JSON: inference resizes by it
    evaluate_split: str = ""  # at the end, evaluate All/GTC/PC on this split and store it in the model's JSON
    seed: int = 0
    out: str = "runs/train"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from settings (TOML, ``--set``), each checked for type and range
        (``qgn.bounds``): ValueError naming the first bad one."""
        from qgn.bounds import TRAIN_BOUNDS, check_settings

        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(known)}")
        values = check_settings(values, TRAIN_BOUNDS, "training setting")
        if "extra" in values and not isinstance(values["extra"], dict):
            raise ValueError(f"training setting extra is {values['extra']!r}; expected a table")
        config = cls(**values)
        if config.scale_min > config.scale_max:
            raise ValueError(f"training settings scale_min {config.scale_min} > scale_max {config.scale_max}")
        return config


def training_schemes(name: str) -> list[Scheme]:
    """The propagation of each training iteration, in turn: ``all``, ``gtc``, or ``all+gtc``, which
    alternates them so that the network learns both dense context (for eval All) and the sparse
    context it sees when only composite cells go on (for eval GTC/PC)."""
    names = name.split("+")
    if not names or any(n not in ("all", "gtc") for n in names):
        raise ValueError(f"training propagates with 'all', 'gtc' or 'all+gtc' (PC is unreliable from scratch); "
                         f"got {name!r}")
    return [Scheme(n) for n in names]


def poly_lr(base: float, iteration: int, total: int, power: float) -> float:
    """α = α0 (1 - i / i_max)^ρ."""
    return base * (1.0 - min(iteration, total) / total) ** power


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on convolution/linear weights only, none on norms and biases (A.2)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, name: str, lr: float, momentum: float = 0.9,
                    weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over ``parameter_groups`` (shared by training and fine-tuning)."""
    groups = parameter_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {name!r}")


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return build_optimizer(model, config.optimizer, config.lr, config.momentum, config.weight_decay)


def crop_sample(sample, size: int, rng: np.random.Generator):
    """A random ``size``×``size`` crop (or the whole sample when smaller)."""
    from qgn.data.base import Sample

    h, w = sample.label.shape
    if size <= 0 or (h <= size and w <= size):
        return sample
    y = int(rng.integers(0, max(h - size, 0) + 1))
    x = int(rng.integers(0, max(w - size, 0) + 1))
    return Sample(sample.image[y:y + size, x:x + size], sample.label[y:y + size, x:x + size], sample.name)


class BatchStream:
    """An endless stream of augmented, collated batches drawn without replacement per epoch.
    ``cropped``: how many samples so far were cut to ``config.crop`` (those within it stay whole)."""

    def __init__(self, dataset, config: TrainConfig, rng: np.random.Generator):
        self.dataset, self.config, self.rng = dataset, config, rng
        self.order: list[int] = []
        self.cropped = 0
        self.collate = partial(collate, ignore_index=dataset.classes.ignore_index)

    def next(self):
        samples = []
        for _ in range(self.config.batch_size):
            if not self.order:
                self.order = list(self.rng.permutation(len(self.dataset)))
            sample = self.dataset[int(self.order.pop())]
            if getattr(self.config, "scale_wide", 0) > 0 and self.rng.random() < self.config.scale_wide_share:
                samples.append(self._wide_sample(sample))
                continue
            sample = augment(sample, self.rng, (self.config.scale_min, self.config.scale_max),
                             0.5 if self.config.flip else 0.0)
            samples.append(self._crop(sample))
        return self.collate(samples)

    def _wide_sample(self, sample):
        """``sample`` scaled by a log-uniform factor in [scale_max, scale_wide]: the window that
        becomes a ``crop``-pixel square is cut first, then resized (image bilinear, label nearest)."""
        from qgn.data.base import Sample
        from qgn.data.transforms import random_horizontal_flip, resize_image, resize_label

        lo, hi = sorted((self.config.scale_max, self.config.scale_wide))
        scale = float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))
        h, w = sample.label.shape
        crop = self.config.crop if self.config.crop > 0 else round(max(h, w) * scale)
        win_h, win_w = min(h, max(1, round(crop / scale))), min(w, max(1, round(crop / scale)))
        y = int(self.rng.integers(0, h - win_h + 1))
        x = int(self.rng.integers(0, w - win_w + 1))
        size = (max(1, round(win_h * scale)), max(1, round(win_w * scale)))
        image = resize_image(sample.image[y:y + win_h, x:x + win_w], size)
        label = resize_label(sample.label[y:y + win_h, x:x + win_w], size)
        image, label = random_horizontal_flip(image, label, self.rng, 0.5 if self.config.flip else 0.0)
        return self._crop(Sample(image, label, sample.name))

    def _crop(self, sample):
        cut = crop_sample(sample, self.config.crop, self.rng)
        self.cropped += cut is not sample
        return cut


def open_training_data(config: TrainConfig):
    from qgn.data.registry import open_dataset

    if config.dataset == "synthetic":
        return open_dataset("synthetic", config.split, n=config.synthetic_n, size=config.synthetic_size)
    return open_dataset(config.dataset, config.split)


def build_model(config: TrainConfig, classes) -> QGN:
    if config.init and config.encoder_weights:
        raise ValueError("encoder_weights starts a fresh model from ImageNet weights and init continues a QGN "
                         "checkpoint: set only one of them")
    if config.init:
        from qgn.resources import default_model

        model = load_model(default_model(config.init, "init"))  # a bundled name, a file or a run folder
        if model.config.classes.num_classes != classes.num_classes:
            raise ValueError(f"{config.init} predicts {model.config.classes.num_classes} classes, "
                             f"the data has {classes.num_classes}")
        return model
    if config.encoder_weights:
        return build_pretrained_model(config, classes)
    return QGN(QGNConfig.from_preset(config.model, classes, input_scale=config.input_scale))


def record_input_size(model: QGN, dataset) -> None:
    """A model trained at ``input_scale`` != 1 remembers the size of the images that scale refers
    to (the first training image's), so it can run any photo at the object size it learnt
    (``QGNConfig.working_scale``)."""
    if model.config.input_scale != 1.0 and model.config.input_size is None and len(dataset):
        model.config.input_size = tuple(int(v) for v in dataset[0].label.shape)


def label_frequencies(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(k,) pixel counts of each class over ``dataset``'s labels, and (k,) pixel counts of the
    images in which that class appears (ignore pixels excluded from both)."""
    k = dataset.classes.num_classes
    pixels, image_pixels = np.zeros(k), np.zeros(k)
    for i in range(len(dataset)):
        label = dataset[i].label
        counts = np.bincount(label[(label >= 0) & (label < k)].ravel(), minlength=k)[:k]
        pixels += counts
        image_pixels[counts > 0] += counts.sum()
    return pixels, image_pixels


def class_balance_weights(dataset, method: str) -> np.ndarray | None:
    """(k,) cross-entropy weights from the training labels: ``median-frequency`` is SegNet's
    median frequency balancing, w_c = median(f) / f_c with f_c = pixels of c / pixels of the images
    holding c; ``sqrt-median-frequency`` its square root (gentler on the common classes).
    Classes that never occur get weight 1. ``none`` returns None."""
    if method == "none":
        return None
    if method not in ("median-frequency", "sqrt-median-frequency"):
        raise ValueError(f"class_balance must be none, median-frequency or sqrt-median-frequency; got {method!r}")
    pixels, image_pixels = label_frequencies(dataset)
    present = pixels > 0
    weights = np.ones(len(pixels))
    if present.any():
        freq = pixels[present] / image_pixels[present]
        weights[present] = np.median(freq) / freq
    return np.sqrt(weights) if method.startswith("sqrt") else weights


def build_pretrained_model(config: TrainConfig, classes) -> QGN:
    """A fresh ``config.model`` QGN whose encoder starts from the ImageNet weights of
    ``config.encoder_weights``; the file's layout sets the encoder's stem and shortcuts."""
    from qgn.model.pretrained import copy_into_encoder, inspect_weights

    weights = inspect_weights(config.encoder_weights)
    from qgn.model.encoder import ENCODERS

    preset = QGNConfig.from_preset(config.model, classes)
    width = ENCODERS[preset.encoder].width * preset.encoder_width
    if preset.encoder != weights.encoder or width != 1.0:
        raise ValueError(f"encoder_weights {weights.path} holds {weights.encoder} weights, but model "
                         f"{config.model!r} has a {preset.encoder} encoder at width {width:g}; "
                         f"ImageNet weights need their own encoder at width 1.0: choose model r18, r34, r50 or r101 "
                         f"to match, or other weights")
    model = QGN(QGNConfig.from_preset(config.model, classes, input_scale=config.input_scale,
                                      **weights.encoder_options()))
    copy_into_encoder(model.encoder, weights)
    model.config.extra["encoder_weights"] = {"file": str(weights.path), "layout": weights.layout.name}
    return model


def save_train_state(out: Path, model, optimizer, loss_fn, iteration: int, config: TrainConfig) -> None:
    """The checkpoint's four files, all written whole before any is renamed into place: a kill while
    saving leaves the checkpoint before, still resumable (a torn one is refused: ``load_train_state``)."""
    files = model_files(out / "last.safetensors", model, extra={"train": asdict(config), "iteration": iteration})
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {f"loss.{k}": v.detach().cpu().contiguous() for k, v in loss_fn.state_dict().items()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for entry, value in optimizer.state.get(p, {}).items():  # momentum, Adam moments, step
                if torch.is_tensor(value):
                    tensors[f"opt.{entry}.{names[id(p)]}"] = value.detach().cpu().contiguous()
    atomic_write_together([*files, (out / "last.state.safetensors", save(tensors)),
                           (out / "last.state.json", json.dumps({"iteration": iteration}).encode())])


MAX_STATE_JSON_BYTES = 1 << 16  # {"iteration": N}


def read_train_state(path: Path) -> dict:
    """``{"iteration": N}`` of a checkpoint's ``last.state.json``; ValueError naming the file and the
    fixes when it is anything else."""
    from qgn.fileio import read_json

    fixes = ("--force starts over, or train from the checkpoint's weights with "
             f"--set init={path.with_name('last.safetensors')}")
    try:
        state = read_json(path, "training state", MAX_STATE_JSON_BYTES)
    except ValueError as exc:
        raise ValueError(f"{exc}; the checkpoint cannot be resumed: {fixes}") from None
    iteration = state.get("iteration") if isinstance(state, dict) else None
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        raise ValueError(f"{path} is not a training state ({{\"iteration\": N}} expected); the checkpoint cannot be "
                         f"resumed: {fixes}")
    return state


def load_train_state(out: Path, model, optimizer, loss_fn) -> int:
    """Restore optimizer state, loss weights and weights from ``out``; returns the iteration reached.
    A damaged ``last.state.json`` (not JSON, not ``{"iteration": N}``) is a ValueError naming it and
    the ways on, never json's bare reason."""
    state = read_train_state(out / "last.state.json")
    saved = load_model(out / "last.safetensors")
    reached = saved.config.extra.get("iteration")
    if reached is not None and reached != state.get("iteration"):
        raise ValueError(f"the checkpoint in {out} is torn: its weights are of iteration {reached}, its training "
                         f"state of iteration {state.get('iteration')} (a run killed while saving it), and resuming "
                         "would mix them; --force starts over, or train from its weights with --set init=...")
    weights = saved.state_dict()
    other = ("resume with the settings it was made with (its last.json holds them), --force to start over, "
             "or train from its weights with --set init=...")
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise ValueError(f"the checkpoint in {out} is of another model than these settings build; {other}") from None
    made = str((saved.config.extra.get("train") or {}).get("optimizer") or "").lower()
    if made and made != type(optimizer).__name__.lower():
        raise ValueError(f"the checkpoint in {out} was trained with the {made} optimizer, these settings use "
                         f"{type(optimizer).__name__.lower()}; {other}")
    try:
        tensors = load_file(str(out / "last.state.safetensors"))
    except Exception as exc:  # SafetensorError, OSError: a damaged or missing state file
        raise ValueError(f"{out / 'last.state.safetensors'} cannot be read ({exc}); --force starts over, or train "
                         "from the checkpoint's weights with --set init=...") from None
    loss_fn.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("loss.")}, strict=False)
    params = dict(model.named_parameters())
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, entry, name = key.split(".", 2)
            if name not in params:
                raise ValueError(f"the training state in {out} names a weight these settings do not build ({name}); "
                                 f"{other}")
            optimizer.state[params[name]][entry] = value.clone()
    if not isinstance(state.get("iteration"), int):
        raise ValueError(f"{out / 'last.state.json'} does not say which iteration it reached; --force starts over")
    return int(state["iteration"])


def class_weights_from_iou(iou: np.ndarray) -> np.ndarray:
    """(k,) IoU → (k,) weights: 2 for classes below the median IoU, else 1 (absent classes: 1)."""
    weights = np.ones(len(iou))
    present = np.isfinite(iou)
    if present.any():
        weights[present & (iou < np.median(iou[present]))] = 2.0
    return weights


def held_out_iou(model: QGN, config: TrainConfig, device: str) -> np.ndarray:
    """Per-class IoU of ``model`` (All scheme) on the first ``class_weight_images`` val images."""
    from qgn.evaluate import evaluate

    held = open_training_data(TrainConfig(**{**asdict(config), "split": "val",
                                             "synthetic_n": config.class_weight_images}))
    n = min(config.class_weight_images, len(held))
    model.eval()
    result = evaluate(model, (held[i] for i in range(n)), {"all": Scheme("all")}, device)["all"]
    model.train()
    return result.confusion.iou()


def final_evaluation(model: QGN, config: TrainConfig, device: str) -> dict:
    """All / GTC / PC on ``config.evaluate_split`` at the images' own resolution (the model resizes
    to its working scale by itself), as stored in the model's JSON."""
    from qgn.evaluate import evaluate, evaluation_record

    held = open_training_data(TrainConfig(**{**asdict(config), "split": config.evaluate_split}))
    schemes = {name: Scheme(name) for name in ("all", "gtc", "pc")}
    results = evaluate(model, iter(held), schemes, device)
    return evaluation_record(results, model.config.classes.names, config.dataset, config.evaluate_split, len(held))


class TrainingDiverged(ValueError):
    """The loss (or the weights) became NaN or infinite: the run stops, nothing is saved over
    the last good checkpoint."""


def count_labelled(labels: torch.Tensor, classes) -> int:
    """Pixels of a batch's labels that hold a class (not ignore, not padding)."""
    return int(((labels >= 0) & (labels < classes.num_classes)).sum())


def weights_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def diverged_message(loss: float, iteration: int, lr: float, out: Path, last_saved: int | None) -> str:
    kept = (f"the last good checkpoint (iteration {last_saved}) is kept in {out}/last.safetensors; lower lr and "
            "continue with --resume" if last_saved else f"nothing was saved in {out}; lower lr and start again")
    return f"training diverged: the loss became {loss} at iteration {iteration} (lr {lr:g}); {kept}"


def check_trainable(labelled: int, model: torch.nn.Module, iteration: int, lr: float, out: Path,
                    last_saved: int | None) -> None:
    """Before a checkpoint is written: the data had labelled pixels, and the weights are finite."""
    if not labelled:
        raise ValueError("the training labels hold no labelled pixel (every pixel is ignore or out of range): "
                         "nothing can be learnt; check the dataset's labels and classes")
    if not weights_finite(model):
        raise TrainingDiverged(diverged_message(float("nan"), iteration, lr, out, last_saved))


def train(config: TrainConfig, resume: bool = False, progress=None, device: str | None = None,
          replace: bool = False) -> Path:
    """Run ``config``; returns the path of the final model. ``progress(iteration, row)`` is called
    at every logged iteration (the CLI prints a bar with it). Under torchrun (WORLD_SIZE > 1) the
    same call trains with DistributedDataParallel; only rank 0 logs and writes files. A previous
    run in ``config.out`` is continued (``resume``) or replaced (``replace``), never overwritten
    unasked (``check_out_folder``)."""
    ctx, device = init_distributed(device)
    try:
        final = _train(config, resume, progress if ctx.is_main else None, device, ctx, replace)
        wait_for_all(ctx)  # on success only: after a failure the other ranks may never get here
        return final
    finally:
        shutdown(ctx)


def _train(config: TrainConfig, resume: bool, progress, device: str, ctx, replace: bool = False) -> Path:
    torch.manual_seed(config.seed)
    run = _prepare_run(config, resume, device, ctx, replace)
    iteration = _iterate(run, config, progress, device)
    return _finish(run, config, device, ctx, iteration)


@dataclass
class _Run:
    """What one training run works with, set up by ``_prepare_run``."""

    dataset: object
    model: QGN
    network: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    loss_fn: QuadtreeLoss
    optimizer: torch.optim.Optimizer
    schemes: list
    out: Path
    start_iter: int
    stream: BatchStream
    log_path: Path | None  # None: no log (a rank other than the first)
    save: object  # save(iteration, config): the train state (a no-op off rank 0)


RUN_FILES = ("last.safetensors", "last.json", "last.state.safetensors", "last.state.json", "final.safetensors",
             "final.json", "final.domain.json", "log.csv")


def check_out_folder(out: Path, config: TrainConfig, resume: bool, replace: bool) -> None:
    """ValueError (nothing written) when the run would replace what it must not: the model it
    starts from (``init`` a file or run folder whose files are the run's own outputs), or,
    without ``resume`` or ``replace``, a previous run's checkpoint and log in ``out``; and with
    ``resume``, a checkpoint without the training state to go on from (a run killed while saving
    its first one), which a fresh start would overwrite."""
    from qgn.resources import default_model

    if config.init:
        try:
            start = default_model(config.init, "init")
        except FileNotFoundError:
            start = None  # build_model says so
        for name in RUN_FILES:
            for source in (start, None if start is None else start.with_suffix(".json")):
                if source is not None and (out / name).exists() and source.exists() and os.path.samefile(out / name, source):
                    raise ValueError(f"--out {out}: its {name} is the model this run starts from (init {config.init}), "
                                     "which the run would overwrite; copy that model elsewhere or choose another --out")
    for name in RUN_FILES:  # a pipe or device at a name the run writes: said now, not after the data and model
        refuse_special_output(out / name, follow=name == "log.csv", advice=FIXED_NAME_ADVICE)  # (log.csv: opened)
    held = [name for name in RUN_FILES if (out / name).exists()]
    if not held or replace:
        return
    if not resume:
        raise ValueError(f"--out {out} holds a previous run ({', '.join(held)}); pass --resume to continue it, "
                         "--force to start over (its files are replaced), or choose another --out")
    if (out / "last.safetensors").exists() and not (out / "last.state.json").exists():
        raise ValueError(f"--out {out} has a checkpoint but not its training state (last.state.json: a run killed "
                         "while saving it), so it cannot be resumed; --force starts over, replacing it")


def _prepare_run(config: TrainConfig, resume: bool, device: str, ctx, replace: bool = False) -> _Run:
    """Data, model, loss, optimizer and batch stream, continued from the last checkpoint in
    ``config.out`` when ``resume`` (the model is built after ``torch.manual_seed``: same seed, same
    weights)."""
    # before wrap_model's collective: no rank writes until every rank has checked, so under
    # torchrun they all see the folder as it was (rank 0's new log.csv is no "previous run")
    check_out_folder(Path(config.out), config, resume, replace)
    rng = np.random.default_rng([config.seed, ctx.rank])
    dataset = open_training_data(config)
    model = build_model(config, dataset.classes).to(device)
    record_input_size(model, dataset)
    network = wrap_model(model, ctx, device)
    loss_fn = QuadtreeLoss(model.config.num_levels, config.weighting, config.gamma,
                           composite_weight=config.composite_weight).to(device)
    optimizer = make_optimizer(model, config)
    balance = class_balance_weights(dataset, config.class_balance)
    if balance is not None:
        loss_fn.set_class_weights(torch.from_numpy(balance))
    schemes = training_schemes(config.scheme)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # of a run killed mid-write
    start_iter = load_train_state(out, model, optimizer, loss_fn) if resume and (out / "last.state.json").is_file() else 0
    if resume:
        rng = np.random.default_rng([config.seed, ctx.rank, start_iter])
    stream = BatchStream(dataset, config, rng)
    log_path = out / "log.csv" if ctx.is_main else None  # the other ranks log nothing
    save = partial(save_train_state, out, model, optimizer, loss_fn) if ctx.is_main else (lambda *a: None)
    return _Run(dataset, model, network, loss_fn, optimizer, schemes, out, start_iter, stream, log_path, save)


def _iterate(run: _Run, config: TrainConfig, progress, device: str) -> int:
    """Train from ``run.start_iter`` to ``config.iterations``, logging to ``log.csv`` (appended to
    on resume), checkpointing every ``config.checkpoint_every`` and on Ctrl-C; then the last
    checkpoint. Returns the iteration reached."""
    model, loss_fn, optimizer, out = run.model, run.loss_fn, run.optimizer, run.out
    if run.start_iter >= config.iterations:  # a finished run resumed: its last checkpoint is the result
        return run.start_iter
    new_log = run.start_iter == 0 or run.log_path is None or not run.log_path.is_file()
    log = _Log(run.log_path, new_log, run.start_iter + 1)
    iteration = run.start_iter
    last_saved = run.start_iter if run.start_iter else None
    labelled = 0
    tick = time.perf_counter()
    try:
        while iteration < config.iterations:
            lr = _set_learning_rate(run, config, iteration, device)
            batch = run.stream.next()
            labelled += count_labelled(batch.labels, run.dataset.classes)
            result = train_step(model, loss_fn, optimizer, batch.images.to(device), batch.labels.to(device),
                                run.schemes[iteration % len(run.schemes)],
                                network=run.network)
            iteration += 1
            if not math.isfinite(result.loss):
                raise TrainingDiverged(diverged_message(result.loss, iteration, lr, out, last_saved))
            if iteration % config.log_every == 0 or iteration == config.iterations:
                secs = (time.perf_counter() - tick) / config.log_every
                tick = time.perf_counter()
                log.row(_log_row(iteration, result, lr, secs), iteration)
                if progress:
                    progress(iteration, dict(loss=result.loss, lr=lr, sec_per_iter=secs))
            if iteration % config.checkpoint_every == 0:
                check_trainable(labelled, model, iteration, lr, out, last_saved)
                run.save(iteration, config)
                last_saved = iteration
    except KeyboardInterrupt:
        if labelled and weights_finite(model):  # never a worse-than-finite checkpoint
            run.save(iteration, config)
        raise
    finally:
        log.close()
    check_trainable(labelled, model, iteration, lr, out, last_saved)
    run.save(iteration, config)
    return iteration


class _Log:
    """A run's ``log.csv`` (opened new with its header, or appended to on resume): a line that
    cannot be written (a full disk, an I/O error) never ends the run - it is said once on stderr,
    naming the file and the reason (``os_error_text``), and the log stops there; the checkpoints,
    whose own failures still end the run, are written as before."""

    HEADER = ["iteration", "loss", *[f"L{l}" for l in range(ROOT_LEVEL, -1, -1)], "lr", "sec_per_iter", "sites"]

    def __init__(self, path: Path | None, new: bool, iteration: int):  # iteration: the first to be logged
        self.path, self.file = (None if path is None else Path(path)), None
        if path is None:  # a rank other than the first: its rows are dropped (it was os.devnull, a device
            return  # that refuse_special_output rightly refuses)
        refuse_special_output(self.path, follow=True, advice=FIXED_NAME_ADVICE)  # a FIFO: the open would wait for ever
        try:
            self.file = open(self.path, "w" if new else "a", newline="")
            self.csv = csv.writer(self.file)
        except OSError as exc:
            self._failed(exc, iteration)
            return
        if new:
            self.row(self.HEADER, iteration)

    def row(self, values: list, iteration: int) -> None:
        if self.file is None:
            return
        try:
            self.csv.writerow(values)
            self.file.flush()
        except OSError as exc:
            self._failed(exc, iteration)

    def _failed(self, exc: OSError, iteration: int) -> None:
        import sys

        from qgn.fileio import os_error_text

        if not exc.filename:  # a failed flush names no file
            exc = OSError(exc.errno, exc.strerror or str(exc), str(self.path))
        print(f"qgn train: warning: {os_error_text(exc)}; training goes on without log lines from iteration "
              f"{iteration} (checkpoints are written as before)", file=sys.stderr, flush=True)
        self.close()

    def close(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # its buffer held the line already said to be lost


def _set_learning_rate(run: _Run, config: TrainConfig, iteration: int, device: str) -> float:
    """The poly-decayed learning rate of ``iteration``, set on the optimizer; every
    ``config.class_weight_every`` iterations the class weights are re-fitted to the held-out IoU."""
    lr = poly_lr(config.lr, iteration, config.iterations, config.power)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    if config.class_weight_every and iteration % config.class_weight_every == 0 and iteration:
        run.loss_fn.set_class_weights(torch.from_numpy(class_weights_from_iou(held_out_iou(run.model, config, device))))
    return lr


def _log_row(iteration: int, result, lr: float, secs: float) -> list:
    """One row of ``log.csv``: iteration, loss, the loss of each level Q5…Q0, lr, seconds per
    iteration, active sites."""
    return [iteration, f"{result.loss:.5f}",
            *[f"{result.level_losses.get(l, float('nan')):.5f}" for l in range(ROOT_LEVEL, -1, -1)],
            f"{lr:.6f}", f"{secs:.3f}", sum(result.active_sites.values())]


def _write_domain_reference(final: Path, model: QGN, dataset) -> None:
    """``final.domain.json``: the trained model's domain reference from its training images
    (``qgn.domain.build_reference``; the app warns on images unlike them and starts them empty).
    A failure costs the reference (no verdicts), never the model just saved: it is said on stderr."""
    import sys

    from qgn.domain import MIN_REFERENCE_IMAGES, REFERENCE_IMAGES, build_reference

    if len(dataset) < MIN_REFERENCE_IMAGES:
        print(f"qgn train: no domain reference: {len(dataset)} training images, and a fair one needs "
              f"{MIN_REFERENCE_IMAGES} (the app gives this model no in/out-of-domain verdicts)", file=sys.stderr)
        return
    print(f"qgn train: the domain reference, from {min(len(dataset), REFERENCE_IMAGES)} training images…",
          file=sys.stderr, flush=True)
    try:  # (``dataset``: the training split's images as they are, not the augmented crops)
        with torch.no_grad():
            build_reference(model.eval(), final, dataset)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"qgn train: warning: no domain reference for {final.name} ({exc}); the model is saved",
              file=sys.stderr)


def _finish(run: _Run, config: TrainConfig, device: str, ctx, iteration: int) -> Path:
    """Write ``final.safetensors`` (with the config, the iteration and, when asked, the final
    evaluation) and, under DDP, every replica's weight digest; returns the final model's path."""
    model, out = run.model, run.out
    digests = gather_digests(model, ctx)
    final = out / "final.safetensors"
    if ctx.is_main:
        extra = {"train": asdict(config), "iteration": iteration}
        if config.evaluate_split:
            extra["evaluation"] = final_evaluation(model.eval(), config, device)
        save_model(final, model.eval(), extra=extra)
        _write_domain_reference(final, model, run.dataset)
        if ctx.enabled:
            atomic_write_bytes(out / "replicas.json", json.dumps({"world_size": ctx.world_size,
                                                                 "digests": digests}).encode())
    return final
