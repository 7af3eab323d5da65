"""The per-project head: a small classifier on frozen QGN features that learns a project in seconds.

After every saved annotation, ``HeadTrainer.add`` reads the image's frozen encoder features (one
encoder pass, no decoder) and keeps a sample of its labelled pixels; ``fit`` trains a multinomial
logistic regression (a 1×1 convolution) on the samples of every image so far — seconds on a CPU.
``ProjectHead.predict`` then labels the next image: logits on the stride-2 feature grid,
probabilities upsampled bilinearly to the image, the most probable class per pixel, optionally
smoothed by a superpixel majority vote. The head works in the project's own class set from the
first saved image, whatever classes the model was trained on, so a model from another domain is
useful at once. It lives in its own file beside the project (``save`` / ``load``), never in the
model's.

Features per grid cell (``pixel_features``): the encoder's five maps (strides 2 … 32) resized
bilinearly to the stride-2 grid of the model's working size and concatenated, plus the cell's
position (y, x in 0 … 1) — within one project the camera and layout repeat, and where a class
sits is evidence.

A head fitted on one image has not shown that it generalises, and it can be worse than the model
it reads (a head fitted on 1 frame cost more actions than the model's start on the next frame in
both CamVid runs of ``benchmarks/RESULTS.md``). So the head keeps a record (``HeadTrainer.judge``):
when an image is saved for the first time, the head fitted before it and the model's start are
scored against the saved annotation (pixel accuracy), and ``ProjectHead.preferred``
(``prefer_head``) says whether new images should start from the head — only once it has done at
least as well as the model on saved images it had not trained on.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .fileio import read_json

HEAD_FORMAT, HEAD_VERSION = "qgn-project-head", 1
SAMPLES_PER_IMAGE = 4000
MAX_SAMPLES, MIN_SHARE = 20000, 400  # a fit sees at most this many samples (at least MIN_SHARE per image)
FEATURE_STRIDE = 2
PREDICT_PIXELS = 1 << 19  # probabilities are upsampled to at most this many pixels, then mapped back
MAX_HEAD_JSON_BYTES = 64 << 20  # names, counts and a record per judged image: ~40 bytes an image
HEAD_WINDOW = 3  # the head's record: its last this many judged images


def recent_accuracy(record, window: int = HEAD_WINDOW) -> tuple[int, float, float] | None:
    """(images, head's, model's mean pixel accuracy) over the last ``window`` entries of ``record``
    (see ``prefer_head``); None when nothing was judged yet."""
    recent = list(record)[-window:]
    if not recent:
        return None
    return len(recent), sum(h for h, _ in recent) / len(recent), sum(m for _, m in recent) / len(recent)


def prefer_head(record, window: int = HEAD_WINDOW) -> bool:
    """Whether a new image should start from the head rather than the model's prediction.

    record: per saved image the head had not trained on, in order, (head's, model's) pixel accuracy
    of their start maps against the saved annotation (``judge_start``). The head is preferred when
    over the last ``window`` such images it got at least as many pixels right as the model; with no
    judged image yet the model is (a head fitted on one image has not yet shown it generalises).
    Only saved work decides, so a person could apply the rule."""
    recent = recent_accuracy(record, window)
    return recent is not None and recent[1] >= recent[2]


def judge_start(head_map: np.ndarray, model_map: np.ndarray, label: np.ndarray, ignore_index: int | None):
    """(head's, model's) pixel accuracy (0 … 1) on the labelled pixels of ``label``, the saved
    annotation of an image the head had not trained on; None when nothing is labelled."""
    label = np.asarray(label)
    labelled = label != ignore_index if ignore_index is not None else np.ones(label.shape, bool)
    n = int(labelled.sum())
    if n == 0:
        return None
    return (float((np.asarray(head_map) == label)[labelled].sum()) / n,
            float((np.asarray(model_map) == label)[labelled].sum()) / n)


@torch.no_grad()
def pixel_features(model, image: np.ndarray) -> torch.Tensor:
    """(C, h, w) float32 features of ``image`` ((H, W, 3) uint8) on the stride-2 grid of the
    model's working size (the image's top-left part of the padded grid; see the module doc)."""
    import torch.nn.functional as F

    from qgn.infer import ImageSession

    session = ImageSession(model, image)
    feats = session.features()
    wh, ww = session.work_size
    gh, gw = -(-wh // FEATURE_STRIDE), -(-ww // FEATURE_STRIDE)
    ph, pw = session.padded_shape[0] // FEATURE_STRIDE, session.padded_shape[1] // FEATURE_STRIDE
    maps = [F.interpolate(f, size=(ph, pw), mode="bilinear", align_corners=False) if f.shape[2:] != (ph, pw) else f
            for f in feats]
    x = torch.cat(maps, dim=1)[0, :, :gh, :gw]
    ys = torch.linspace(0, 1, gh).view(1, gh, 1).expand(1, gh, gw)
    xs = torch.linspace(0, 1, gw).view(1, 1, gw).expand(1, gh, gw)
    return torch.cat([x.float().cpu(), ys, xs], dim=0).contiguous()


def encoder_fingerprint(model) -> str:
    """SHA-256 (hex) of the model's encoder parameters and buffers, name by name: what the head's
    features (``pixel_features``) depend on. Equal for a model and its frozen-encoder fine-tune,
    different once the encoder learnt."""
    sha = hashlib.sha256()
    for name, tensor in sorted(model.encoder.state_dict().items()):
        sha.update(name.encode("utf-8"))
        sha.update(str(tuple(tensor.shape)).encode("ascii"))
        sha.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def grid_labels(label: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(gh, gw) int64: the label of the full-size pixel at each grid cell's centre (nearest)."""
    h, w = label.shape
    gh, gw = grid
    ys = np.minimum(((np.arange(gh) + 0.5) * h / gh).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(gw) + 0.5) * w / gw).astype(np.int64), w - 1)
    return np.asarray(label)[np.ix_(ys, xs)].astype(np.int64)


@dataclass
class ProjectHead:
    """A fitted head. weight (k, C) and bias (k,) float32 act on standardised features
    ((f - mean) / std, each (C,)); classes the samples never showed get bias -inf (never
    predicted). names: the project's class names it was fitted for (a class edit makes it stale)."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    names: list[str]
    ignore_index: int | None
    images: int = 0
    samples: int = 0
    fit_seconds: float = 0.0
    model: str = ""  # the model file whose features it reads (its name)
    record: dict = field(default_factory=dict)  # image key → (head, model) accuracy, in order judged
    trained: list = field(default_factory=list)  # the image keys it was fitted on
    encoder: str = ""  # encoder_fingerprint of the model whose features it read ("" in older heads)

    def reads(self, model_name: str, fingerprint: str | None) -> bool:
        """Whether the head was fitted on the features of this model: the same file name and, where
        both are known, the same encoder (``encoder_fingerprint``). A fine-tuned model can take the
        name of another in another folder (``<stem>-ft1`` in the project's models/ beside an original
        ``<stem>-ft1`` elsewhere); if its encoder learnt, the head fitted on the other's features
        would read features it never saw."""
        if self.model != model_name:
            return False
        return not (self.encoder and fingerprint) or self.encoder == fingerprint

    @property
    def preferred(self) -> bool:
        """Whether new images should start from the head rather than the model (``prefer_head``)."""
        return prefer_head(self.record.values())

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def fits(self, classes) -> bool:
        """Whether the head predicts this class set (same names in the same order, same ignore)."""
        return list(classes.names) == list(self.names) and classes.ignore_index == self.ignore_index

    @torch.no_grad()
    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """(k, h, w) softmax probabilities of (C, h, w) features."""
        c, h, w = features.shape
        x = (features.reshape(c, -1).T - self.mean) / self.std
        logits = x @ self.weight.T + self.bias
        return torch.softmax(logits, dim=1).T.reshape(-1, h, w)

    @torch.no_grad()
    def predict(self, model, image: np.ndarray, features: torch.Tensor | None = None) -> np.ndarray:
        """(H, W) int64 class ids of ``image`` (H, W, 3): probabilities upsampled bilinearly (at
        most ``PREDICT_PIXELS``, then nearest to the full size), the most probable class."""
        import torch.nn.functional as F

        features = pixel_features(model, image) if features is None else features
        probs = self.probabilities(features)
        h, w = image.shape[:2]
        scale = min(1.0, (PREDICT_PIXELS / (h * w)) ** 0.5)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        # the grid covers the working image from its corner: cell centres at (i + 0.5) * stride
        up = F.interpolate(probs[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        label = up.argmax(dim=0).numpy().astype(np.int64)
        if (sh, sw) != (h, w):
            rows = np.minimum(((np.arange(h) + 0.5) * sh / h).astype(np.int64), sh - 1)
            cols = np.minimum(((np.arange(w) + 0.5) * sw / w).astype(np.int64), sw - 1)
            label = label[np.ix_(rows, cols)]
        return label

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the head to ``path`` (.safetensors) and its ``.json`` beside, together
        (`qgn.fileio.atomic_write_together`: a failure leaves the old pair). A crash (SIGKILL, a
        power cut) in the microseconds between the two renames can leave the new weights beside the
        old JSON: the JSON names the sha256 of its weights, so ``load`` refuses such a pair (the
        head is then fitted again) instead of using weights with another head's description."""
        from safetensors.torch import save

        from qgn.fileio import atomic_write_together

        path = Path(path)
        tensors = {"weight": self.weight.contiguous(), "bias": self.bias.clamp(min=-1e30).contiguous(),
                   "mean": self.mean.contiguous(), "std": self.std.contiguous()}
        meta = {"format": HEAD_FORMAT, "version": HEAD_VERSION, "names": list(self.names),
                "ignore_index": self.ignore_index, "images": self.images, "samples": self.samples,
                "fit_seconds": self.fit_seconds, "feature_stride": FEATURE_STRIDE, "model": self.model,
                "record": [[str(k), float(h), float(m)] for k, (h, m) in self.record.items()],
                "trained": [str(k) for k in self.trained], "encoder": self.encoder}
        weights = save(tensors)
        meta["weights_sha256"] = hashlib.sha256(weights).hexdigest()
        atomic_write_together([(path, weights),
                               (path.with_suffix(".json"), (json.dumps(meta, indent=1) + "\n").encode("utf-8"))])
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ProjectHead":
        """The head saved at ``path``; ValueError when it is not one (or of a newer version)."""
        from safetensors.torch import load

        path = Path(path)
        try:
            meta = read_json(path.with_suffix(".json"), "project head's description", MAX_HEAD_JSON_BYTES)
            if meta.get("format") != HEAD_FORMAT or meta.get("version") != HEAD_VERSION:
                raise ValueError(f"not a version-{HEAD_VERSION} project head")
            weights = path.read_bytes()
            sha = meta.get("weights_sha256")  # (absent from heads saved before it was written)
            if sha is not None and sha != hashlib.sha256(weights).hexdigest():
                raise ValueError(f"its weights are not the ones {path.with_suffix('.json').name} describes (a crash "
                                 "while both were written)")
            t = load(weights)
            names = list(meta["names"])
            _check_tensors(t, len(names))
            bias = t["bias"].clone()
            bias[bias <= -1e30] = -float("inf")
            return cls(t["weight"], bias, t["mean"], t["std"], names, meta["ignore_index"],
                       int(meta.get("images", 0)), int(meta.get("samples", 0)), float(meta.get("fit_seconds", 0.0)),
                       str(meta.get("model", "")), {str(k): (float(h), float(m)) for k, h, m in meta.get("record", [])},
                       [str(k) for k in meta.get("trained", [])], str(meta.get("encoder", "")))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable project head ({exc})") from None


class _Stopped(Exception):
    """``HeadTrainer.fit``'s ``should_stop`` said stop, in the middle of the optimiser's steps."""


def _check_tensors(t: dict, k: int) -> None:
    """ValueError unless ``t`` holds what ``ProjectHead.save`` writes for ``k`` classes: float32
    weight (k, C), bias (k,), mean and std (C,), finite (the bias may be -1e30: never predicted),
    std > 0. A damaged file otherwise loads, is offered as the start of every new image, and fails
    each time deep inside a matrix product (or predicts class ids past the last class)."""
    weight = t["weight"]
    if weight.dim() != 2 or weight.shape[0] != k:
        raise ValueError(f"weight is {list(weight.shape)}, not ({k} classes, channels)")
    shapes = {"bias": (k,), "mean": (weight.shape[1],), "std": (weight.shape[1],)}
    for name, tensor in {"weight": weight, **{n: t[n] for n in shapes}}.items():
        if tensor.dtype != torch.float32 or tuple(tensor.shape) != shapes.get(name, tuple(weight.shape)):
            raise ValueError(f"{name} is {tensor.dtype} {list(tensor.shape)}; float32 {list(shapes.get(name, weight.shape))} expected")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
    if not bool((t["std"] > 0).all()):
        raise ValueError("std holds values <= 0")


@dataclass
class HeadTrainer:
    """Collects samples of the project's saved annotations and fits ``ProjectHead``s.

    samples: per image key, (features (n, C) float32, labels (n,) int64). ``add`` replaces an
    image's samples (a re-saved annotation), ``remove`` drops them. A fit draws at most
    ``max_samples`` of them, evenly over the images (so its time stays bounded as images accumulate)."""

    classes: object  # qgn.classes.ClassSet of the project
    samples_per_image: int = SAMPLES_PER_IMAGE
    max_samples: int = MAX_SAMPLES
    seed: int = 0
    samples: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)  # image key → (head, model) accuracy (``judge``)

    def add(self, key: str, model, image: np.ndarray, label: np.ndarray,
            features: torch.Tensor | None = None) -> int:
        """Sample the labelled grid cells of one corrected image (label (H, W) in the project's
        classes); returns how many were kept."""
        features = pixel_features(model, image) if features is None else features
        c, gh, gw = features.shape
        lab = grid_labels(label, (gh, gw)).reshape(-1)
        ignore = self.classes.ignore_index
        ok = (lab >= 0) & (lab < self.classes.num_classes)
        if ignore is not None:
            ok &= lab != ignore
        cells = np.flatnonzero(ok)
        rng = np.random.default_rng([self.seed, len(self.samples)])
        if len(cells) > self.samples_per_image:
            cells = rng.choice(cells, self.samples_per_image, replace=False)
        flat = features.reshape(c, -1)
        self.samples[key] = (flat[:, torch.from_numpy(cells)].T.contiguous(), torch.from_numpy(lab[cells]))
        return len(cells)

    def remove(self, key: str) -> None:
        self.samples.pop(key, None)
        self.record.pop(key, None)

    def judge(self, key: str, head_map: np.ndarray, model_map: np.ndarray, label: np.ndarray) -> bool:
        """Record how the head's and the model's start maps of an image the head has not trained on
        (``key`` not added yet) agree with its saved annotation ``label`` (``judge_start``); an image
        already learnt or judged, or with nothing labelled, is not recorded. Returns whether it was."""
        if key in self.samples or key in self.record:
            return False
        judged = judge_start(head_map, model_map, label, self.classes.ignore_index)
        if judged is None:
            return False
        self.record[key] = judged
        return True

    def fit(self, iterations: int = 50, l2: float = 1e-3, should_stop=None) -> ProjectHead | None:
        """A head fitted on every image's samples (None without samples): standardised features,
        class-balanced cross-entropy (weights ∝ 1/sqrt(frequency)), L2 ``l2``, L-BFGS.
        ``should_stop()`` true before a step (the app is closing): None, nothing fitted."""
        if not self.samples or (should_stop is not None and should_stop()):
            return None
        start = time.perf_counter()
        share = max(MIN_SHARE, self.max_samples // len(self.samples))  # the fit's cost stays bounded
        rng = np.random.default_rng(self.seed)
        xs, ys = [], []
        for fx, fy in self.samples.values():
            keep = torch.from_numpy(np.sort(rng.permutation(len(fy))[:share]))
            xs.append(fx[keep])
            ys.append(fy[keep])
        x, y = torch.cat(xs), torch.cat(ys)
        if len(y) == 0:
            return None
        k = self.classes.num_classes
        mean = x.mean(dim=0)
        std = x.std(dim=0).clamp(min=1e-4)
        x = (x - mean) / std
        counts = torch.bincount(y, minlength=k).float()
        present = counts > 0
        weights = torch.where(present, counts.clamp(min=1).rsqrt(), torch.zeros(k))
        weights = weights / (weights[y].mean())
        weight = torch.zeros(k, x.shape[1], requires_grad=True)
        bias = torch.zeros(k, requires_grad=True)
        mask = torch.where(present, 0.0, -1e4)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, history_size=10,
                                      line_search_fn="strong_wolfe")

        def closure():
            if should_stop is not None and should_stop():
                raise _Stopped
            optimizer.zero_grad()
            logits = x @ weight.T + bias + mask
            loss = torch.nn.functional.cross_entropy(logits, y, weight=weights) + l2 * (weight ** 2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            try:
                optimizer.step(closure)
            except _Stopped:
                return None
        b = bias.detach().clone()
        b[~present] = -float("inf")
        return ProjectHead(weight.detach().clone(), b, mean, std, list(self.classes.names), self.classes.ignore_index,
                           len(self.samples), int(len(y)), time.perf_counter() - start,
                           record=dict(self.record), trained=list(self.samples))
