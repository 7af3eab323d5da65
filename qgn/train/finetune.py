"""Fine-tune a model on a user's corrected labels, compare it with the original, save it under a new name.

The unit the app's "Fine-tune" button and ``qgn finetune`` share. ``finetune`` is a pure function
(no prints, no global state): it trains a deep copy of the model with the training recipe of
``qgn.train.loop`` (augmentation, ``train_step``, the level loss, poly LR, no weight decay on norms and
biases) and reports each step through ``progress(iteration, loss)``; ``should_stop()`` is polled
before every step, so a worker thread can cancel it. By default the normalisation layers keep their
running statistics (``freeze_norm``): a few images seen hundreds of times would otherwise replace the
statistics the model learned on its whole training set.

``compare_models`` measures, on the corrected images, how well the original and the fine-tuned
model agree with the corrections (see ``Comparison``); ``save_new_model`` writes the result next to
the original without ever overwriting a file unless asked to, and never the original itself.

The recipe (issue #21). By default only the decoder learns: the encoder is frozen and its features
of every corrected image (at the ends of the scale range and 1, flipped and not) are computed once
(``FeatureCache``), so a step costs the sparse decoder alone. Training propagates with ``pc+gtc``:
the sites PC visits — the children of the cells the model itself predicts composite — plus the
corrections' ground-truth composite cells (``pc_and_gtc``).

Why: the former recipe (the whole network, All and GTC in turn) taught the decoder in two contexts
PC never uses — every site (All) and the true boundaries (GTC) — while PC at inference also visits
the cells the model wrongly calls composite, with their sparse neighbourhood. After a fine-tune on
a few images the decoder's answers there turned into small wrong blobs on new frames: for the demo
model transferred to CamVid (4 corrected frames, 100 iterations, 5 frames it did not train on),
wrong blobs per frame went from 80 to 578, 61 % of the wrong pixels sat at those "off-GTC" sites
(which hold 34 % of the pixels), and the annotator's actions barely fell (542 → 480) although pixel
accuracy doubled; the dense All steps were also 80 % of the time. ``pc+gtc`` trains exactly there:
234 blobs, the off-GTC share of the errors at the sites' own share (34 %), the same actions (482)
in 13–24 % of the time (two runs on a loaded machine) (``benchmarks/RESULTS.md``, ``benchmarks/bench_finetune_pc.py``).
``encoder="train"`` and ``scheme="all+gtc"`` give the former recipe (a model far from the images'
domain gains more pixel accuracy from training its encoder, at several times the cost).

The encoder learning (``encoder="train"``, still ``pc+gtc``) pays on a scene the model never saw
once enough corrected images are trained on: on a held-out CamVid sequence its start cost 12 % / 11 %
fewer actions than an empty map at 32 frames, about as many at 8 and 16, while with the encoder
frozen it cost 3–14 % more at every count; it takes about 1.5–2× the time (``benchmarks/RESULTS.md``,
"A fine-tune whose encoder learns"). ``auto_encoder`` is that rule (``ENCODER_LEARNS_FROM``), the
app's default. With the encoder learning there are no cached features: each step runs the encoder
forward and backward on augmented whole images, so images are cut to random crops of at most
``ENCODER_CROP`` pixels a side (``train_crop``): a 24-megapixel photo works at 4.2 megapixels and
a batch of four of them would hold about 13 GB of activations (500 bytes a pixel, measured).
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from qgn.ground_truth import foreign_values
from qgn.data.base import Sample, SegmentationDataset
from qgn.infer import predict
from qgn.loss import QuadtreeLoss
from qgn.metrics import ConfusionMatrix
from qgn.model.checkpoint import config_path, save_model
from qgn.model.qgn import QGN
from qgn.quadtree import NUM_LEVELS
from qgn.propagation import Scheme
from qgn.quadtree import Quadtree
from qgn.train.loop import BatchStream, build_optimizer, poly_lr, training_schemes
from qgn.train.step import train_step

TRAINING_SCHEMES = ("gtc", "all", "all+gtc", "pc+gtc")
#: What learns: the decoder alone on the frozen encoder's cached features, or the encoder too.
ENCODER_MODES = ("frozen", "train")
#: ``auto_encoder``: the encoder learns once a fine-tune trains on this many corrected images.
ENCODER_LEARNS_FROM = 32
#: With the encoder learning (``encoder="train"``, ``crop`` 0), batches are random crops of at most
#: this many pixels a side (``train_crop``): an encoder training step holds about 500 bytes of
#: activations a working pixel (the demo model at 1280×1280: 0.8 GB for one image), so four whole
#: 24-megapixel photos (4.2 megapixels each at the working size, 6.6 at scale 1.25) would take 13 GB;
#: four 512×512 crops take well under 1 GB. CamVid frames at the street model's working size
#: (240×180, the measurements of benchmarks/RESULTS.md) are whole.
ENCODER_CROP = 512


@dataclass
class FinetuneConfig:
    """The fine-tuning recipe. ``scheme``: training propagation (``all+gtc`` alternates the dense
    decoder and the one on the corrections' composite cells; see the module docstring). Scale range and flip are the
    augmentation of ``qgn.data.transforms.augment``; ``crop`` > 0 cuts random squares of at most
    ``crop`` pixels a side (an image within it stays whole), only with the encoder learning: a frozen
    encoder's features are computed once on whole images (``FeatureCache``), so ``validate`` refuses
    a crop there. With the encoder learning, 0 means ``ENCODER_CROP`` (``train_crop``); the result's
    ``config`` is the recipe as it ran, its ``crop`` resolved.

    The defaults (AdamW, lr 0.001, batch 2) were chosen on CamVid (``runs/camvid-cpu-all``, one val
    image, 60 iterations): AdamW 1e-3 raised that image's mIoU 43.5 → 52.3 %, AdamW 3e-4 to 47.7 %,
    while SGD with momentum 0.9 at lr 0.002 / 0.005 made the loss jump and the image worse."""

    iterations: int = 300
    batch_size: int = 2
    lr: float = 0.001
    optimizer: str = "adamw"  # adamw | sgd (SGD + momentum diverged at lr >= 0.002 from the CamVid model)
    scheme: str = "pc+gtc"  # pc+gtc (the sites PC visits + the corrections' composites) | all+gtc | gtc | all
    scale_min: float = 0.75
    scale_max: float = 1.25
    flip: bool = True
    crop: int = 0
    seed: int = 0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    power: float = 0.9  # poly LR exponent
    freeze_norm: bool = True  # keep BatchNorm running statistics (eval-mode norms while training)
    encoder: str = "frozen"  # frozen: decoder only, on cached encoder features (module docstring) | train

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work (types and ranges:
        ``qgn.bounds.FINETUNE_BOUNDS``)."""
        from dataclasses import asdict

        from qgn.bounds import FINETUNE_BOUNDS, check_settings

        check_settings(asdict(self), FINETUNE_BOUNDS, "fine-tune setting")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1; got {self.iterations}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number; got {self.lr}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {self.optimizer!r}")
        if self.scheme not in TRAINING_SCHEMES:
            raise ValueError(f"fine-tuning propagates with 'pc+gtc', 'gtc', 'all' or 'all+gtc'; got {self.scheme!r}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"need 0 < scale_min <= scale_max; got {self.scale_min}, {self.scale_max}")
        if self.crop < 0:
            raise ValueError(f"crop must be 0 (whole images) or a size in pixels; got {self.crop}")
        if self.encoder not in ("frozen", "train"):
            raise ValueError(f"encoder must be 'frozen' or 'train'; got {self.encoder!r}")
        if self.encoder == "frozen" and self.crop > 0:
            raise ValueError(f"crop {self.crop} applies only when the encoder learns (encoder='train'): a frozen "
                             "encoder's features are computed once on whole images; set crop to 0")


@dataclass
class FinetuneResult:
    """model: the fine-tuned copy (eval mode, on the input model's device); losses: the total loss
    of every step done (len == iterations_done); cancelled: ``should_stop`` ended it early; config:
    the recipe it ran (``finetune`` sets it, its ``crop`` as it ran: ``train_crop``; its record,
    ``finetune_metadata``, says what learnt); cropped: how many of the batches' samples were cut to
    ``config.crop`` (0: every one trained whole)."""

    model: QGN
    losses: list[float]
    iterations_done: int
    cancelled: bool
    config: FinetuneConfig | None = None  # the recipe it ran (what learnt: ``config.encoder``)
    cropped: int = 0  # samples cut to ``config.crop``


class CorrectionSet(SegmentationDataset):
    """The corrected images as a dataset: Sample i = (images[i], labels[i] as int64, names[i])."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], classes, names: Sequence[str]):
        self.classes = classes
        self.samples = [Sample(np.asarray(im), np.asarray(lab).astype(np.int64), str(name))
                        for im, lab, name in zip(images, labels, names)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def check_corrections(model: QGN, images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                      names: Sequence[str] | None = None) -> list[str]:
    """Check that images (H, W, 3) uint8 and labels (H, W) integer pair up and that every label value
    is one of the model's classes 0..k-1 or its ignore value. Returns the names (default
    ``image 0`` …); raises ValueError naming the image and the offending values."""
    classes = model.config.classes
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label maps")
    if not images:
        raise ValueError("nothing to fine-tune on: no corrected images")
    if classes.ignore_index is None:
        raise ValueError("the model's class set has no ignore value, which fine-tuning needs for padding")
    names = [f"image {i}" for i in range(len(images))] if names is None else [str(n) for n in names]
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    for image, label, name in zip(images, labels, names):
        image, label = np.asarray(image), np.asarray(label)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{name}: an image must be (H, W, 3) uint8; got {image.shape} {image.dtype}")
        if label.shape != image.shape[:2]:
            raise ValueError(f"{name}: the label map is {label.shape[1::-1]} but the image is "
                             f"{image.shape[1::-1]} (width×height)")
        if not np.issubdtype(label.dtype, np.integer):
            raise ValueError(f"{name}: a label map must hold integers; got {label.dtype}")
        bad = foreign_values(label, classes)
        if bad.size:
            raise ValueError(f"{name}: label values {bad[:8].tolist()} are not classes of the model "
                             f"(0..{classes.num_classes - 1}, ignore {classes.ignore_index})")
    if all(not np.any(np.asarray(label) != classes.ignore_index) for label in labels):
        raise ValueError("the corrections label no pixel (every pixel is the ignore value): there is nothing to "
                         "fine-tune on, and no model is saved; label some pixels first")
    return names


def at_working_size(model: QGN, images: Sequence[np.ndarray], labels: Sequence[np.ndarray]):
    """Images (bilinear) and labels (nearest) resized to the model's working size
    (``QGNConfig.working_size``), so a model fine-tunes at the resolution it predicts at; as
    given for a model that works at the image size."""
    from qgn.data.transforms import resize_image, resize_label

    out_images, out_labels = [], []
    for image, label in zip(images, labels):
        size = model.config.working_size(*np.asarray(label).shape)
        if size != np.asarray(label).shape:
            image, label = resize_image(np.asarray(image), size), resize_label(np.asarray(label), size)
        out_images.append(image)
        out_labels.append(label)
    return out_images, out_labels


class FrozenNormNetwork(torch.nn.Module):
    """Calls ``model`` with every BatchNorm in eval mode (running statistics used, not updated)."""

    def __init__(self, model: QGN):
        super().__init__()
        self.model = model
        self.norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def forward(self, *args, **kwargs):
        for norm in self.norms:
            norm.eval()
        return self.model(*args, **kwargs)


def finetune(
    model: QGN,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    config: FinetuneConfig | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    names: Sequence[str] | None = None,
    preparing: Callable[[int, int], None] | None = None,
) -> FinetuneResult:
    """Train a deep copy of ``model`` on the corrected images; ``model`` itself is never modified.

    images: list of (H, W, 3) uint8 RGB; labels: list of (H, W) integer label maps in the model's
    class set (ignore = ``model.config.classes.ignore_index``); sizes may differ between images.
    ``progress(iteration, loss)`` is called after every step (iteration counts from 1);
    ``should_stop()`` is called before every step, and before each image's features are made with a
    frozen encoder, and ends the run with ``cancelled=True`` (the model then holds the steps done so
    far). ``preparing(done, total)``: with a frozen encoder, from (0, total) and after each image's
    features are made, before the first step (200 photos' features take minutes on a CPU).
    Runs on the device of ``model``'s parameters.
    Raises ValueError on bad input (see ``check_corrections``) or when the loss stops being finite.
    """
    config = config or FinetuneConfig()
    config.validate()
    if train_crop(config) != config.crop:  # the recipe as it runs, and as its record says
        config = replace(config, crop=train_crop(config))
    names = check_corrections(model, images, labels, names)
    tuned = copy.deepcopy(model)
    device = next(tuned.parameters()).device
    images, labels = at_working_size(tuned, images, labels)
    data = CorrectionSet(images, labels, tuned.config.classes, names)
    rng = np.random.default_rng(config.seed)
    source = _batch_source(tuned, data, config, device, rng, should_stop, preparing)
    if source is None:  # stopped while the features were made
        return FinetuneResult(tuned.eval(), [], 0, True, config)
    loss_fn = QuadtreeLoss(tuned.config.num_levels).to(device)
    optimizer = build_optimizer(tuned, config.optimizer, config.lr, config.momentum, config.weight_decay)
    network = FrozenNormNetwork(tuned) if config.freeze_norm else None
    schemes = [None] if config.scheme == "pc+gtc" else training_schemes(config.scheme)
    losses: list[float] = []
    cancelled = False
    for iteration in range(config.iterations):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        for group in optimizer.param_groups:
            group["lr"] = poly_lr(config.lr, iteration, config.iterations, config.power)
        result = _step(tuned, loss_fn, optimizer, network, schemes[iteration % len(schemes)], source, rng,
                       config.batch_size, device)
        if not math.isfinite(result.loss):
            raise ValueError(f"the loss became {result.loss} at iteration {iteration + 1}; try a lower learning rate")
        losses.append(result.loss)
        if progress is not None:
            progress(iteration + 1, result.loss)
    for p in tuned.parameters():
        p.requires_grad_(True)
    return FinetuneResult(tuned.eval(), losses, len(losses), cancelled, config, getattr(source, "cropped", 0))


def auto_encoder(trained: int) -> str:
    """What learns by default for a fine-tune on ``trained`` corrected images: ``"train"`` (the
    encoder too) from ``ENCODER_LEARNS_FROM`` on, else ``"frozen"`` (the decoder alone). On a scene
    the model never saw, the encoder learning made the model's start pay from 32 frames (12 % / 11 %
    fewer actions than empty) and about even at 8 and 16, where the frozen encoder's start cost 3–14 %
    more at every count; the encoder learning takes about 1.5–2× the time, and a model whose encoder
    learnt has no domain reference (``qgn.domain.carry_reference``), so with few images the faster
    frozen run that keeps the verdicts is the default (benchmarks/RESULTS.md, "A fine-tune whose
    encoder learns")."""
    return "train" if trained >= ENCODER_LEARNS_FROM else "frozen"


def train_crop(config: FinetuneConfig) -> int:
    """The square crop batches are cut to: ``config.crop``; with the encoder learning and ``crop`` 0
    (whole images), ``ENCODER_CROP`` — its memory grows with the pixels of a batch (module docstring).
    An image no larger than the crop stays whole. A frozen encoder trains on whole images (0)."""
    if config.encoder == "train" and config.crop <= 0:
        return ENCODER_CROP
    return config.crop


def _batch_source(tuned: QGN, data: CorrectionSet, config: FinetuneConfig, device, rng, should_stop=None,
                  preparing=None):
    """Where the batches come from: with a frozen encoder, a ``FeatureCache`` of its features (and the
    encoder's parameters stop taking gradients; None when ``should_stop()`` said so while it was
    made: 200 photos' features take minutes); else a ``BatchStream`` of augmented crops."""
    if config.encoder == "frozen":
        cache = FeatureCache(tuned, data, config, device, should_stop, preparing)
        if cache.stopped:
            return None
        for p in tuned.encoder.parameters():
            p.requires_grad_(False)
        return cache
    return BatchStream(data, config, rng)  # batch_size, scales, flip, crop (``finetune`` resolved it)


def _step(tuned: QGN, loss_fn, optimizer, network, scheme: Scheme | None, source, rng, batch_size: int, device):
    """One training step on the next batch of ``source``; ``scheme`` None: the sites PC visits plus
    the batch's ground-truth composites."""
    if isinstance(source, FeatureCache):
        batch_images, batch_labels, features = source.batch(rng, batch_size)
        scheme = scheme or pc_and_gtc(tuned, batch_labels)
        return train_step(tuned, loss_fn, optimizer, batch_images, batch_labels, scheme, network=network,
                          features=features)
    batch = source.next()
    scheme = scheme or pc_and_gtc(tuned, batch.labels.to(device))
    return train_step(tuned, loss_fn, optimizer, batch.images.to(device), batch.labels.to(device),
                      scheme, network=network)


def pc_and_gtc(model: QGN, labels: torch.Tensor) -> Scheme:
    """The sites PC visits (the model's own predicted composites) plus the ground-truth composite
    cells of ``labels`` (B, H, W): the decoder learns in the sparse context it meets at inference,
    including where it wrongly refines a uniform cell."""
    from qgn.train.step import batch_targets

    targets = batch_targets(model, labels)
    return Scheme("pc", site_masks={level: targets[level] == 0 for level in range(1, len(targets))})


class FeatureCache:
    """The frozen encoder's features of every corrected image, computed once.

    Per image, per scale of ``cached_scales(config)`` and per flip (when ``config.flip``): the
    padded normalised image (1, 3, H, W), its padded labels (1, H, W) int64 and the encoder's five
    feature maps. ``batch`` draws ``batch_size`` entries of one size (stacked), so a step costs
    the decoder alone. Entries beyond ``CACHE_BYTES`` in all keep scale 1 only. ``should_stop()``
    is asked before each image; when it says so, making them ends (``stopped``). ``progress(done,
    total)`` from (0, total), then after each image."""

    def __init__(self, model: QGN, data: CorrectionSet, config: FinetuneConfig, device, should_stop=None,
                 progress=None):
        from qgn.data.transforms import collate, resize_image, resize_label

        ignore = data.classes.ignore_index
        self.entries: list[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]] = []
        scales = cached_scales(config)
        flips = (False, True) if config.flip else (False,)
        model.encoder.eval()
        used = 0
        self.stopped = False
        total = len(data.samples)
        if progress is not None:
            progress(0, total)
        with torch.no_grad():
            for done, sample in enumerate(data.samples, 1):
                if should_stop is not None and should_stop():
                    self.stopped = True
                    break
                for scale in scales:
                    if scale != 1.0 and used > CACHE_BYTES:
                        continue
                    h, w = sample.label.shape
                    size = (max(32, round(h * scale)), max(32, round(w * scale)))
                    image, label = resize_image(sample.image, size), resize_label(sample.label, size)
                    for flip in flips:
                        im, lab = (image[:, ::-1], label[:, ::-1]) if flip else (image, label)
                        batch = collate([Sample(np.ascontiguousarray(im), np.ascontiguousarray(lab), sample.name)],
                                        ignore)
                        x = batch.images.to(device)
                        feats = [f.detach() for f in model.encode(x)]
                        used += sum(f.numel() * f.element_size() for f in feats)
                        self.entries.append((x, batch.labels.to(device), feats))
                if progress is not None:
                    progress(done, total)
        self.bytes = used

    def batch(self, rng: np.random.Generator, batch_size: int):
        """(images, labels, features) of up to ``batch_size`` random entries of one padded size."""
        first = self.entries[int(rng.integers(len(self.entries)))]
        same = [e for e in self.entries if e[0].shape == first[0].shape and e is not first]
        picks = [first] + [same[i] for i in rng.permutation(len(same))[: batch_size - 1]]
        images = torch.cat([e[0] for e in picks])
        labels = torch.cat([e[1] for e in picks])
        features = [torch.cat([e[2][k] for e in picks]) for k in range(len(first[2]))]
        return images, labels, features


CACHE_BYTES = 1 << 30  # features cached at more than one scale up to this size


def cached_scales(config: FinetuneConfig) -> tuple[float, ...]:
    """The scales a frozen-encoder fine-tune caches: the ends of the scale range and 1."""
    return tuple(sorted({float(config.scale_min), 1.0, float(config.scale_max)}))


# ------------------------------------------------------------------------------------ comparison
def comparison_split(count: int) -> tuple[list[int], list[int]]:
    """(train, held out) indices of ``count`` corrected images: with two or more, every fourth
    from the last (at least one) is held out, so before/after is compared on images the fine-tune
    did not see — on the images it trained on, the untouched regions match "before" by
    construction and memorised corrections flatter "after". One image: trained and compared on
    itself (say so)."""
    if count < 2:
        return list(range(count)), []
    held = sorted(list(range(count - 1, -1, -4))[: max(1, count // 4)])
    return [i for i in range(count) if i not in held], held


def cell_agreement(label: np.ndarray, prediction: np.ndarray, num_classes: int, ignore_index: int | None,
                   levels: int = NUM_LEVELS) -> tuple[int, int]:
    """(agreeing, total) leaves of the correction's quadtree.

    The leaves are those of ``Quadtree.from_label(label, num_classes, ignore_index, levels)`` whose
    value is a class (VOID leaves — ignore and padding — are not counted). A leaf agrees when
    ``prediction`` (H, W) int equals the leaf's class on every image pixel of the leaf.
    label, prediction: (H, W) integer arrays of one size.
    """
    qt = Quadtree.from_label(label, num_classes, ignore_index, levels)
    correct = np.ones(qt.padded_shape, bool)  # padding never disagrees
    h, w = label.shape
    correct[:h, :w] = np.asarray(prediction) == np.asarray(label)
    all_correct = [correct]  # level l: the 2^l-cell is correct everywhere
    for _ in range(levels - 1):
        c = all_correct[-1]
        all_correct.append(c[0::2, 0::2] & c[0::2, 1::2] & c[1::2, 0::2] & c[1::2, 1::2])
    is_class = qt.value != qt.void
    lv, ys, xs = qt.level[is_class].astype(np.int64), qt.y[is_class], qt.x[is_class]
    agree = sum(int(all_correct[l][ys[lv == l], xs[lv == l]].sum()) for l in range(levels))
    return agree, int(is_class.sum())


def changed_cells(before: np.ndarray, after: np.ndarray, levels: int = NUM_LEVELS) -> int:
    """Number of quadtree cells whose predicted class changed between two predictions.

    before, after: (H, W) integer predictions of one image. The changed pixels (before != after)
    form a binary map; its quadtree (``Quadtree.from_label(changed, 2, None, levels)``: aligned
    cells of 1 … 2^(levels-1) pixels, merged 2×2 wherever uniform) tiles them with the fewest
    cells, and this counts its leaves that are changed. 0 means identical predictions; a changed
    32×32-aligned block counts 1, a changed isolated pixel counts 1.
    """
    changed = (np.asarray(before) != np.asarray(after)).astype(np.uint8)
    if not changed.any():
        return 0
    qt = Quadtree.from_label(changed, 2, None, levels)
    return int((qt.value == 2).sum())  # code c+1 for class 1 = changed


@dataclass
class Comparison:
    """How the original (before) and fine-tuned (after) model agree with the corrected labels.

    before, after: over all images, {"acc": pixel accuracy, "miou": mean IoU (from the summed
    confusion matrix, classes present in correction or prediction), "agreement": share of the
    corrections' quadtree leaves predicted right on every pixel (``cell_agreement``)}, each 0..1
    (NaN when nothing is labelled). per_image: per image {"name", "before": {...}, "after": {...},
    "changed_cells", "changed_pixels", "pixels"}. changed_cells / changed_pixels: summed over the
    images (``changed_cells``; pixels whose predicted class differs). scheme: the propagation
    scheme both models predicted with.
    """

    before: dict
    after: dict
    per_image: list[dict]
    changed_cells: int = 0
    changed_pixels: int = 0
    scheme: str = "pc"
    pixels: int = 0
    held_out: bool = False  # compared on images the fine-tune did not train on

    def to_json(self) -> dict:
        return asdict(self)


def _scores(confusion: ConfusionMatrix, agree: int, cells: int) -> dict:
    return {"acc": confusion.accuracy(), "miou": confusion.miou(), "agreement": agree / cells if cells else math.nan}


def compare_models(before: QGN, after: QGN, images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                   scheme: str | Scheme = "pc", names: Sequence[str] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> Comparison | None:
    """Predict every image with both models (``scheme``; GTC uses the labels) and score each
    prediction against the corrected labels. images: (H, W, 3) uint8; labels: (H, W) integer in
    the models' class set. See ``Comparison`` for the numbers. ``progress(done, total)``: from
    (0, total), then after each image (two predictions each: minutes for hundreds of photos).
    ``should_stop()`` is asked before each image: True stops the comparison and returns None (a
    cancel; a comparison of some of the images would be taken for one of all)."""
    scheme = scheme if isinstance(scheme, Scheme) else Scheme(scheme)
    classes = before.config.classes
    if after.config.classes.num_classes != classes.num_classes:
        raise ValueError(f"the models predict {classes.num_classes} and {after.config.classes.num_classes} classes")
    names = check_corrections(before, images, labels, names)
    levels = before.config.num_levels
    totals = {key: [ConfusionMatrix(classes.num_classes), 0, 0] for key in ("before", "after")}
    per_image: list[dict] = []
    if progress is not None:
        progress(0, len(names))
    for image, label, name in zip(images, labels, names):
        if should_stop is not None and should_stop():
            return None
        label = np.asarray(label).astype(np.int64)
        gt = label if scheme.needs_ground_truth else None
        preds = {"before": predict(before, image, scheme, gt).label(), "after": predict(after, image, scheme, gt).label()}
        record: dict = {"name": name}
        for key, pred in preds.items():
            confusion = ConfusionMatrix(classes.num_classes).add(label, pred)
            agree, cells = cell_agreement(label, pred, classes.num_classes, classes.ignore_index, levels)
            record[key] = _scores(confusion, agree, cells)
            totals[key][0].merge(confusion)
            totals[key][1] += agree
            totals[key][2] += cells
        record["changed_cells"] = changed_cells(preds["before"], preds["after"], levels)
        record["changed_pixels"] = int((preds["before"] != preds["after"]).sum())
        record["pixels"] = int(label.size)
        per_image.append(record)
        if progress is not None:
            progress(len(per_image), len(names))
    return Comparison(
        before=_scores(*totals["before"]), after=_scores(*totals["after"]), per_image=per_image,
        changed_cells=sum(r["changed_cells"] for r in per_image),
        changed_pixels=sum(r["changed_pixels"] for r in per_image),
        scheme=scheme.name, pixels=sum(r["pixels"] for r in per_image),
    )


# ------------------------------------------------------------------------------------ saving
def save_new_model(model: QGN, path: str | os.PathLike, *, overwrite: bool = False, extra: dict | None = None,
                   original: str | os.PathLike | None = None, reference=None) -> Path:
    """Save ``model`` to ``path`` (.safetensors) and ``path``.json (``save_model``; ``extra`` is
    merged into the JSON's ``extra``); with ``original``, the original's domain reference comes
    along where the encoder is unchanged (``qgn.domain.carry_reference``; ``reference``: that
    reference as the caller holds it, else the one beside ``original`` made for it). Raises FileExistsError when either file exists and
    ``overwrite`` is False, and ValueError when ``path`` is ``original`` (the model it was
    fine-tuned from) whatever ``overwrite`` says."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors; got {path.name}")
    if original is not None and same_file(path, Path(original)):
        raise ValueError(f"{path} is the original model; save the fine-tuned one under a new name")
    if not overwrite:
        for existing in (path, config_path(path)):
            if existing.exists():
                raise FileExistsError(f"{existing} exists; choose a new name (or allow overwriting it)")
    saved = save_model(path, model, extra=extra)
    if original is not None:
        keep_domain_reference(Path(original), saved, model, reference)
    return saved


def keep_domain_reference(original: Path, saved: Path, model: QGN, reference=None) -> None:
    """The original's domain reference beside the fine-tuned model when its encoder is unchanged
    (``qgn.domain.carry_reference``). A reference that cannot be read or written only costs the
    domain warning (no verdict), never the model just saved."""
    from qgn.domain import carry_reference

    try:  # an older reference left beside an overwritten model names the old file's SHA-256: not read
        carry_reference(original, saved, model, reference)
    except (OSError, ValueError, RuntimeError):
        pass


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (resolving links; also for files not yet created)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    from ..fileio import resolved

    return resolved(a) == resolved(b)  # a link loop: one line naming it (LinkLoopError)


def finetune_metadata(config: FinetuneConfig, result: FinetuneResult, source: str | os.PathLike | None,
                      names: Sequence[str]) -> dict:
    """The ``extra`` a fine-tuned model's JSON records: {"finetune": {from, learnt, cropped, images,
    iterations_done, final_loss, config}}; config: the recipe as it ran (``result.config`` where the
    result has one, else ``config``), its ``crop`` the bound its batches were cut to (random squares
    of at most that many pixels a side; 0: whole images); learnt: "decoder" (frozen encoder) or
    "decoder and encoder"; cropped: how many of the batches' samples were cut (0: every one whole)."""
    config = result.config if result.config is not None else config
    return {"finetune": {
        "from": None if source is None else str(source),
        "learnt": "decoder and encoder" if config.encoder == "train" else "decoder",
        "cropped": result.cropped,
        "images": [str(n) for n in names],
        "iterations_done": result.iterations_done,
        "final_loss": result.losses[-1] if result.losses else None,
        "config": asdict(config),
    }}
