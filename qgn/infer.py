"""Inference (paper §3.2): from decoder outputs to dense labels, level maps, quadtrees and costs.

Working resolution: a model whose config has ``input_scale`` != 1 (``QGNConfig.working_size``)
sees the image resized (bilinear, antialiased) to its working size; the levels, costs and quadtree
of the decoder live at that size, and ``Prediction.label`` maps the dense labels back to the
original pixels (nearest neighbour: every original pixel takes the class of the working pixel
whose area holds its centre). Ground truth for GTC is resized the same way (nearest).

Dense decoding: each pixel takes the prediction of the *finest computed cell* covering it; where
that cell's argmax is the composite class, the second-best class is used. Both cases are "the best
real class" (argmax over classes 1..k), which is what ``Prediction.labels`` computes.

``ImageSession`` keeps one image's encoder features and decoder levels, so a new propagation
scheme recomputes only what changed: a deeper depth limit continues from the finest level already
computed with the same scheme; another scheme or threshold reuses the root level.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from qgn.loss import pyramid_targets
from qgn.model.decoder import LevelOutput
from qgn.model.macs import count_macs
from qgn.model.qgn import QGN
from qgn.propagation import Scheme, normalised_entropy, select_sites
from qgn.quadtree import ROOT_LEVEL, Quadtree


@dataclass
class Cost:
    """What one prediction cost. Per-level dicts are keyed by level (5 … depth)."""

    active_sites: dict[int, int]
    decoder_macs: dict[int, int]
    decoder_seconds: dict[int, float]
    encoder_macs: int
    encoder_seconds: float
    image_size: tuple[int, int] | None = None  # (H, W) of the image as given
    working_size: tuple[int, int] | None = None  # (h, w) the network saw (see the module doc)

    @property
    def resized(self) -> bool:
        return self.image_size is not None and self.working_size is not None and self.image_size != self.working_size

    @property
    def total_decoder_macs(self) -> int:
        return sum(self.decoder_macs.values())

    @property
    def total_macs(self) -> int:
        return self.encoder_macs + self.total_decoder_macs

    @property
    def seconds(self) -> float:
        return self.encoder_seconds + sum(self.decoder_seconds.values())

    def to_json(self) -> dict:
        return {
            "active_sites": {str(k): v for k, v in self.active_sites.items()},
            "macs": self.total_macs,
            "decoder_macs": self.total_decoder_macs,
            "encoder_macs": self.encoder_macs,
            "seconds": self.seconds,
            **({"image_size": list(self.image_size)} if self.image_size else {}),
            **({"working_size": list(self.working_size)} if self.working_size else {}),
        }


@dataclass
class Prediction:
    """The decoder's levels for a batch of images, and everything derived from them.

    outputs:      LevelOutput per computed level, root (5) first.
    num_classes:  k.
    padded_shape: (H, W) of the network input (multiples of 32).
    sizes:        per image, the (height, width) the network saw (the top-left part of the padded
                  grid): the working size.
    output_sizes: per image, the (height, width) of the image as given, when the network saw it
                  resized (``label`` maps back to it); None when ``sizes`` are the image sizes.
    """

    outputs: list[LevelOutput]
    num_classes: int
    padded_shape: tuple[int, int]
    sizes: list[tuple[int, int]]
    encoder_macs: int = 0
    encoder_seconds: float = 0.0
    output_sizes: list[tuple[int, int]] | None = None
    _labels: torch.Tensor | None = field(default=None, repr=False)

    @property
    def levels(self) -> list[int]:
        return [o.level for o in self.outputs]

    @property
    def finest_level(self) -> int:
        return self.outputs[-1].level

    def output(self, level: int) -> LevelOutput:
        for o in self.outputs:
            if o.level == level:
                return o
        raise KeyError(f"level {level} was not computed (computed: {self.levels})")

    def _grid(self, level: int) -> tuple[int, int, int]:
        h, w = self.padded_shape
        return len(self.sizes), h >> level, w >> level

    def labels(self) -> torch.Tensor:
        """(B, H, W) int64 dense class ids 0..k-1 on the padded grid (see module docstring)."""
        if self._labels is None:
            grid = None
            for out in self.outputs:
                if grid is not None:
                    grid = grid.repeat_interleave(2, 1).repeat_interleave(2, 2)
                else:
                    grid = torch.zeros(self._grid(out.level), dtype=torch.int64, device=out.logits.device)
                c = out.coords
                grid[c[:, 0], c[:, 1], c[:, 2]] = out.logits[:, 1:].argmax(dim=1)
            scale = 1 << self.finest_level
            self._labels = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
        return self._labels

    def working_label(self, index: int = 0) -> np.ndarray:
        """(h, w) int64 class ids of image ``index`` at the working size, padding cropped away."""
        h, w = self.sizes[index]
        return self.labels()[index, :h, :w].cpu().numpy()

    def image_size(self, index: int = 0) -> tuple[int, int]:
        """(H, W) of image ``index`` as given."""
        return tuple(self.output_sizes[index]) if self.output_sizes else tuple(self.sizes[index])

    def working_scale(self, index: int = 0) -> tuple[float, float]:
        """(fy, fx): image pixels per working pixel, vertically and horizontally (1, 1 when the
        network saw the image as given)."""
        (H, W), (h, w) = self.image_size(index), self.sizes[index]
        return H / h, W / w

    def label(self, index: int = 0) -> np.ndarray:
        """(H, W) int64 class ids of image ``index`` at the size it was given (see module doc)."""
        label = self.working_label(index)
        size = self.image_size(index)
        if label.shape != size:
            from qgn.data.transforms import resize_label

            label = resize_label(label, size)
        return label

    def quadtree(self, index: int = 0) -> Quadtree:
        """The predicted label map of image ``index`` (at the size it was given) as quadtree
        leaves, ready for a .qgt."""
        return Quadtree.from_label(self.label(index), self.num_classes, None)

    def working_quadtree(self, index: int = 0) -> Quadtree:
        """The quadtree the decoder predicted, at the working size (cells of 32 … 1 working px)."""
        return Quadtree.from_label(self.working_label(index), self.num_classes, None)

    def _level_map(self, level: int, values: torch.Tensor, fill) -> torch.Tensor:
        out = self.output(level)
        grid = torch.full(self._grid(level), fill, dtype=values.dtype, device=values.device)
        c = out.coords
        grid[c[:, 0], c[:, 1], c[:, 2]] = values
        return grid

    def level_classes(self, level: int) -> torch.Tensor:
        """(B, H_l, W_l) int64: argmax code of Q̂l (0 composite, c+1 class c), -1 where not computed."""
        return self._level_map(level, self.output(level).logits.argmax(dim=1), -1)

    def level_probabilities(self, level: int) -> torch.Tensor:
        """(B, k+1, H_l, W_l) float32 softmax of Q̂l, NaN where not computed."""
        probs = torch.softmax(self.output(level).logits.detach().float(), dim=1)
        grid = torch.full((*self._grid(level), probs.shape[1]), math.nan, device=probs.device)
        c = self.output(level).coords
        grid[c[:, 0], c[:, 1], c[:, 2]] = probs
        return grid.permute(0, 3, 1, 2)

    def level_composite_probability(self, level: int) -> torch.Tensor:
        """(B, H_l, W_l) float32 P(composite), NaN where not computed."""
        p = torch.softmax(self.output(level).logits.detach().float(), dim=1)[:, 0]
        return self._level_map(level, p, math.nan)

    def level_entropy(self, level: int) -> torch.Tensor:
        """(B, H_l, W_l) float32 normalised entropy in [0, 1], NaN where not computed."""
        return self._level_map(level, normalised_entropy(self.output(level).logits.detach()), math.nan)

    def activation_bytes(self) -> int:
        """Decoder activations this prediction holds: per computed level, the features after the
        level's block and its logits, active sites × (channels + k + 1) × element size. It
        follows the active sites exactly; a training pass keeps a constant multiple of it per
        level (see ``qgn.bench.memory``)."""
        return sum(o.feature_bytes + o.logits.nbytes for o in self.outputs)

    def cost(self) -> Cost:
        return Cost(
            {o.level: o.num_sites for o in self.outputs},
            {o.level: o.macs for o in self.outputs},
            {o.level: o.seconds for o in self.outputs},
            self.encoder_macs,
            self.encoder_seconds,
            self.image_size(0) if len(self.sizes) == 1 else None,
            tuple(self.sizes[0]) if len(self.sizes) == 1 else None,
        )


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB of an (H, W, 3) RGB or (H, W) gray array; ValueError for anything else."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"an image must be (H, W, 3) RGB or (H, W) gray; got shape {image.shape}")
    return image


def image_to_tensor(image: np.ndarray, multiple: int = 32) -> tuple[torch.Tensor, tuple[int, int]]:
    """(H, W, 3) uint8 (or (H, W) gray) → ((1, 3, H', W') float32 in 0..255 padded with 0 to a
    multiple of ``multiple``, (H, W))."""
    image = as_rgb(image)
    h, w = image.shape[:2]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    t = torch.zeros((1, 3, ph, pw), dtype=torch.float32)
    t[0, :, :h, :w] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    return t, (h, w)


def gt_composite_masks(label: np.ndarray, model: QGN, padded: tuple[int, int], device) -> list[torch.Tensor]:
    """Per level l, (1, H_l, W_l) bool ground-truth composite cells of ``label`` (for GTC)."""
    classes = model.config.classes
    ignore = classes.ignore_index
    pad_value = ignore if ignore is not None else -1
    lab = torch.full((1, *padded), pad_value, dtype=torch.int64)
    h, w = label.shape
    lab[0, :h, :w] = torch.from_numpy(np.asarray(label).astype(np.int64))
    targets = pyramid_targets(lab, classes.num_classes, pad_value, model.config.num_levels)
    return [(t == 0).to(device) for t in targets]


_ENCODER_MACS: dict[tuple, int] = {}


def encoder_macs(model: QGN, shape: tuple[int, ...]) -> int:
    """MACs of the dense encoder for an input of ``shape`` (B, C, H, W), H and W multiples of its
    output stride s (as the encoder itself requires; ValueError otherwise).

    Every conv's output is then exactly its input over its stride, so the count is (H/s)(W/s) B
    times that of one (1, C, s, s) tile - counted once per architecture by a real forward of that
    tile through a copy of the encoder. (A forward on the 'meta' device, as before, imported
    torch._dynamo on first use: ~0.7 s of imports, ~1 s in the app, holding the GIL in 100-ms
    pieces.)"""
    batch, channels, height, width = shape
    model.encoder.check_input(torch.empty(shape, device="meta"))  # reads the shape only
    stride = model.encoder.output_stride
    config = model.config
    key = (config.encoder, config.encoder_width, config.encoder_stem, config.encoder_shortcut, channels)
    if key not in _ENCODER_MACS:
        copy_ = copy.deepcopy(model.encoder).cpu()  # hooks on a copy: another thread may run the model
        _ENCODER_MACS[key] = count_macs(copy_, torch.zeros((1, channels, stride, stride)))
    return batch * (height // stride) * (width // stride) * _ENCODER_MACS[key]


class ImageSession:
    """One image under one model: cached encoder features and decoder levels (see module doc).

    image: (H, W, 3) uint8 (any size; resized to the model's working size, ``work_size``, and
           padded to a multiple of 32 internally).
    label: optional (H, W) ground truth (needed for the GTC scheme).
    size:  (H, W) of the image as given; ``work_size`` (h, w) what the network sees.
    at_image_size: run the network on the image as given, whatever the model's working scale
           (the benchmarks replay a model's sites on stand-in images of a fixed size).
    resolution: "working" (the model's working size), "native" (the photo at full resolution, up
           to ``max_native_pixels()``) or "auto" (``QGNConfig.resolution_for``: the
           working size for a model with a working scale, native for a scale-1 model that learnt
           the photo's scale).
    """

    def __init__(self, model: QGN, image: np.ndarray, label: np.ndarray | None = None, device=None,
                 at_image_size: bool = False, resolution: str = "working"):
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        image = as_rgb(image)
        self.size = tuple(image.shape[:2])
        self.work_size = self.size if at_image_size else model.config.network_size(*self.size, resolution)
        if self.work_size != self.size:
            from qgn.data.transforms import resize_image

            image = resize_image(image, self.work_size)
        tensor, _ = image_to_tensor(image)
        self.images = model.normalise(tensor.to(self.device))
        self.padded_shape = tuple(self.images.shape[2:])
        self.label = None if label is None else np.asarray(label)
        if self.label is not None and self.label.shape != self.size:
            raise ValueError(f"ground truth is {self.label.shape[::-1]} but the image is {self.size[::-1]} (W×H)")
        self._features: list[torch.Tensor] | None = None
        self._encoder_seconds = 0.0
        self._gt: list[torch.Tensor] | None = None
        self._runs: dict[tuple, list[LevelOutput]] = {}

    @torch.no_grad()
    def features(self, progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
        """The encoder's feature maps (computed once); ``progress(k)`` after the k-th map is made."""
        if self._features is None:
            start = time.perf_counter()
            self._features = self.model.encode(self.images) if progress is None else \
                self.model.encode(self.images, progress)
            self._encoder_seconds = time.perf_counter() - start
        return self._features

    def gt_composite(self) -> list[torch.Tensor] | None:
        if self.label is None:
            return None
        if self._gt is None:
            label = self.label
            if self.work_size != self.size:
                from qgn.data.transforms import resize_label

                label = resize_label(label, self.work_size)
            self._gt = gt_composite_masks(label, self.model, self.padded_shape, self.device)
        return self._gt

    def _plan(self, scheme: Scheme):
        """What ``run(scheme)`` starts from and computes: (the cached levels it resumes, or None;
        whether it decodes; the encoder stages it runs; the first decoder level it computes)."""
        cached = self._runs.get(scheme.key())
        if cached is None:
            root = next(iter(self._runs.values()))[:1] if self._runs else None
            cached = [copy.copy(root[0])] if root else None
        decoding = cached is None or cached[-1].level > scheme.depth
        stages = 0 if self._features is not None else len(self.model.encoder.strides)
        first = ROOT_LEVEL if cached is None else cached[-1].level - 1  # the first level computed
        return cached, decoding, stages, first

    def pending(self, scheme: Scheme) -> list[tuple[str, int]]:
        """The steps ``run(scheme)`` would compute, in order: ``("encoder", k)`` for each encoder
        stage not run yet, ``("level", l)`` for each decoder level not cached (the decoder may
        stop early, where no site is left). Nothing is computed."""
        _cached, decoding, stages, first = self._plan(scheme)
        steps = [("encoder", k) for k in range(1, stages + 1)]
        return steps + ([("level", level) for level in range(first, scheme.depth - 1, -1)] if decoding else [])

    @torch.no_grad()
    def next_sites(self, scheme: Scheme) -> int:
        """The active sites of the first decoder level ``run(scheme)`` would compute (0: none), which
        its parent's selection decides - what that level costs (a sparse level's cost follows its
        sites, not the image's pixels). Nothing is computed but that selection."""
        cached, decoding, _stages, _first = self._plan(scheme)
        if not decoding:
            return 0
        if cached is None:  # the root: every cell of the padded image
            cell = 2 ** ROOT_LEVEL
            return int(self.images.shape[0]) * (self.padded_shape[0] // cell) * (self.padded_shape[1] // cell)
        parent = cached[-1]
        if scheme.name == "all":
            return 4 * parent.num_sites
        gt = self.gt_composite()[parent.level] if scheme.needs_ground_truth else None
        return 4 * int(select_sites(scheme, parent.level, lambda: parent.coords, parent.logits, gt).sum())

    @torch.no_grad()
    def run(self, scheme: Scheme, progress: Callable[[int, int, str], None] | None = None) -> Prediction:
        """Predict with ``scheme``, recomputing only levels that no earlier run already has.
        ``progress(done, total, what)`` after each encoder stage and decoder level computed
        (``what``: ``"encoder 2/5"``, ``"decoder level 3"``), ``done`` rising to ``total`` (a 24 MP
        photo at full resolution takes seconds in each part)."""
        if scheme.needs_ground_truth and self.label is None:
            raise ValueError("the GTC scheme needs ground truth for this image, and none was found")
        key = scheme.key()
        cached, decoding, stages, first = self._plan(scheme)
        total = stages + (first - scheme.depth + 1 if decoding else 0)
        if progress is None:
            encoded = decoded = None
        else:
            def encoded(k: int) -> None:
                progress(k, total, f"encoder {k}/{stages}")

            def decoded(level: int) -> None:
                progress(stages + first - level + 1, total, f"decoder level {level}")

        feats = self.features(encoded)
        if decoding:
            gt = self.gt_composite() if scheme.needs_ground_truth else None
            cached = self.model(self.images, scheme, gt, features=feats, resume=cached, progress=decoded)
            self._runs[key] = cached
        if progress is not None and total:
            progress(total, total, "done")  # (the decoder stops early where no site is left)
        outputs = [o for o in cached if o.level >= scheme.depth]
        return Prediction(
            outputs, self.model.num_classes, self.padded_shape, [self.work_size],
            encoder_macs(self.model, tuple(self.images.shape)), self._encoder_seconds,
            output_sizes=[self.size] if self.work_size != self.size else None,
        )


def predict(model: QGN, image: np.ndarray, scheme: Scheme | None = None, label: np.ndarray | None = None,
            resolution: str = "working") -> Prediction:
    """One-shot prediction of one image (H, W, 3) uint8 with ``scheme`` (default: PC)."""
    return ImageSession(model, image, label, resolution=resolution).run(scheme or Scheme("pc"))
