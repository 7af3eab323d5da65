"""Is an image inside the model's domain? A confidence signal that does not trust the softmax.

A model's softmax says nothing about images unlike its training set: the street model calls a cat
"building" at 90 % with an entropy of 0.14. What does change on such an image is the encoder's
activations. ``image_descriptor`` pools every encoder stage (the mean and the standard deviation of
each channel over the image, at the model's working size) into one vector; ``DomainReference``
holds their distribution over the model's training images (probabilistic PCA: 32 principal
directions and one residual variance), and ``score`` is the Mahalanobis distance of an image's
descriptor from them, in units of the training images' own distances: ``score`` <= 1 for 95 % of
the training images (``threshold`` is their 95th percentile). An image scoring above ``WARN_AT`` is
called out of domain. That percentile is only a fair bar with many more images than directions:
``build_reference`` makes none from fewer than ``MIN_REFERENCE_IMAGES``.

The reference is stored beside the model (``<model>.domain.json``) with the model file's SHA-256:
a retrained model no longer matches its old reference and gets no verdict rather than a wrong one.
``benchmarks/bench_domain.py`` builds the references of the bundled models and measures how well
the score separates CamVid from other photos.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .fileio import file_sha256, read_json

DOMAIN_FORMAT, DOMAIN_VERSION = "qgn-domain", 1
WARN_AT = 1.5  # scores above this (1.5 × the training images' 95th percentile) are out of domain
MAX_REFERENCE_BYTES = 64 << 20  # a reference holds 32 directions of the descriptor: a few MB at most
SIZE_SLACK = 2.0  # session_descriptor: working sizes up to this factor outside a reference's pixels are taken as they are
COMPONENTS = 32  # principal directions of the training descriptors kept (the rest: one residual variance)
# the least a stored std, variance, residual or threshold may be: ``fit`` makes none below 1e-6 (its
# std is floored at 1e-6, its variances at the residual, itself floored at 1e-6), and a hand-edited
# 1e-300 passes "finite and positive" yet overflows every distance (a NaN score flagged every image)
VALUE_FLOOR = 1e-7
# the fewest working-size pixels a reference's "pixels" may name (32×32; the bundled references'
# recipes make 43,200 and 65,536): [1, 1] would judge every image as a speck; the most is qgn's
# native pixel cap (qgn.model.qgn.max_native_pixels), beyond which no image runs at all
MIN_REFERENCE_PIXELS = 1024


@torch.no_grad()
def image_descriptor(model, image: np.ndarray, pixels: tuple[int, int] | None = None) -> np.ndarray:
    """(D,) float64: per encoder stage, each channel's mean and standard deviation over ``image``
    ((H, W, 3) uint8) at the model's working size (padding excluded); ``pixels``: see
    ``session_descriptor``."""
    from qgn.infer import ImageSession

    return session_descriptor(ImageSession(model, image), image, pixels)


def working_pixels(model, height: int, width: int) -> int:
    """Pixels the model works on for an image of ``height``×``width`` at its working size."""
    h, w = model.config.network_size(height, width, "working")
    return int(h) * int(w)


@torch.no_grad()
def session_descriptor(session, image: np.ndarray, pixels: tuple[int, int] | None = None) -> np.ndarray:
    """``image_descriptor`` of ``image`` from its ``qgn.infer.ImageSession``'s own encoder features
    (computed once for its prediction too) when the session runs at the model's working size, as
    the reference was made; else from a pass of its own at that size (a photo run at full
    resolution). ``pixels`` (lo, hi): the working sizes, in pixels, of the images the reference was
    made from; an image whose working size has fewer or more is described resized into that range
    (same aspect) — beyond a slack of ``SIZE_SLACK`` either way, as that costs an encoder pass of
    its own — and never above ``qgn.model.qgn.max_working_pixels()``. A model that works at each image's own size (the demo model) sees small objects
    in a small image, and its statistics then differ with the size alone: 96×128 scenes of its own
    kind scored 2.7–3.2 against ≤ 1.6 from 192×256 up."""
    from qgn.infer import ImageSession, as_rgb

    working = session.model.config.network_size(*session.size, "working")
    area = working[0] * working[1]
    if pixels is not None and not pixels[0] / SIZE_SLACK <= area <= pixels[1] * SIZE_SLACK:
        from qgn.data.transforms import resize_image
        from qgn.model.qgn import max_working_pixels

        # never more than a network input may have (a reference made by hand, or under a larger
        # QGN_MAX_WORKING_PIXELS, would otherwise resize every image to its "pixels" whatever they are)
        factor = (min(max(area, pixels[0]), pixels[1], max_working_pixels()) / area) ** 0.5
        size = (max(1, round(working[0] * factor)), max(1, round(working[1] * factor)))
        session = ImageSession(session.model, resize_image(as_rgb(image), size), device=session.device,
                               at_image_size=True)
    elif tuple(session.work_size) != tuple(working):
        session = ImageSession(session.model, image, device=session.device)
    h, w = session.work_size
    parts = []
    for f in session.features():
        stride = session.padded_shape[0] // f.shape[2]
        fh, fw = max(1, -(-h // stride)), max(1, -(-w // stride))
        x = f[0, :, :fh, :fw].reshape(f.shape[1], -1).double().cpu()
        parts += [x.mean(dim=1), x.std(dim=1, unbiased=False)]
    return torch.cat(parts).numpy()


@dataclass
class DomainReference:
    """The training descriptors' distribution as probabilistic PCA: per-dimension ``mean`` and
    ``std`` (D,), the top ``components`` (k, D) of the standardised descriptors with their
    ``variances`` (k,), and the ``residual`` variance of the other directions. ``threshold``: the
    95th percentile of the training images' own distances; model_sha256: the model file it belongs
    to; images: how many it saw. (A full covariance of ~1,000 channels from a few hundred images
    would be noise, and megabytes.)"""

    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual: float
    threshold: float = 1.0
    model_sha256: str = ""
    images: int = 0
    source: str = ""
    pixels: tuple[int, int] | None = None  # (fewest, most) working-size pixels of its images (session_descriptor)

    @classmethod
    def fit(cls, descriptors: np.ndarray, model_sha256: str = "", source: str = "",
            rank: int = COMPONENTS, pixels: tuple[int, int] | None = None) -> "DomainReference":
        d = np.asarray(descriptors, np.float64)
        if d.ndim != 2 or len(d) < 3:
            raise ValueError("a domain reference needs at least 3 image descriptors")
        mean, std = d.mean(axis=0), d.std(axis=0) + 1e-6
        z = (d - mean) / std
        _, sv, vt = np.linalg.svd(z, full_matrices=False)
        eig = sv ** 2 / len(d)
        k = max(1, min(rank, len(d) - 2, len(eig) - 1))
        residual = float(max(eig[k:].sum() / max(1, z.shape[1] - k), 1e-6))
        ref = cls(mean, std, vt[:k], np.maximum(eig[:k], residual), residual, 1.0, model_sha256, len(d), source,
                  None if pixels is None else (int(pixels[0]), int(pixels[1])))
        ref.threshold = float(np.percentile(ref.distance(d), 95))
        return ref

    def check(self) -> None:
        """ValueError unless the arrays fit together: ``mean`` and ``std`` (D,), ``components``
        (k, D), ``variances`` (k,), all finite, and positive ``std``, ``variances``, ``residual`` and
        ``threshold``, none of them below ``VALUE_FLOOR``."""
        d = self.mean.shape
        if self.mean.ndim != 1 or self.std.shape != d or self.components.ndim != 2 \
                or self.components.shape[1:] != d or self.variances.shape != self.components.shape[:1]:
            raise ValueError(f"arrays of mismatched shapes (mean {self.mean.shape}, std {self.std.shape}, "
                             f"components {self.components.shape}, variances {self.variances.shape})")
        arrays = (self.mean, self.std, self.components, self.variances, np.array([self.residual, self.threshold]))
        if not all(np.isfinite(x).all() for x in arrays):
            raise ValueError("values that are not finite")
        if (self.std < VALUE_FLOOR).any() or (self.variances < VALUE_FLOOR).any() or self.residual < VALUE_FLOOR \
                or self.threshold < VALUE_FLOOR:
            raise ValueError(f"a standard deviation, variance or threshold below {VALUE_FLOOR:g}")

    def distance(self, descriptors: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of (N, D) descriptors (or one (D,)) under the PPCA model;
        ValueError when D is not the reference's (a reference of another encoder)."""
        descriptors = np.atleast_2d(np.asarray(descriptors, np.float64))
        if descriptors.shape[1:] != self.mean.shape:
            raise ValueError(f"descriptors of {descriptors.shape[1]} values against a reference of "
                             f"{self.mean.shape[0]}: the reference was made for another encoder")
        with np.errstate(all="ignore"):  # an overflow is a ValueError of score's
            z = (descriptors - self.mean) / self.std
            proj = z @ self.components.T
            inside = (proj ** 2 / self.variances).sum(axis=1)
            rest = np.maximum((z ** 2).sum(axis=1) - (proj ** 2).sum(axis=1), 0.0) / self.residual
            return np.sqrt(inside + rest)

    def score(self, descriptor: np.ndarray) -> float:
        """The distance in units of ``threshold`` (<= 1 for 95 % of the training images);
        ValueError when it is not a finite number (a reference whose values overflow the distance):
        no verdict rather than one that flags every image."""
        with np.errstate(all="ignore"):
            value = float(self.distance(descriptor)[0] / self.threshold)
        if not np.isfinite(value):
            raise ValueError(f"its distance is not a finite number ({value}): the reference's values do not "
                             "fit this model's images")
        return value

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        from qgn.fileio import atomic_write_bytes

        def r(a):
            return [float(f"{v:.6g}") for v in np.asarray(a).reshape(-1)]
        doc = {"format": DOMAIN_FORMAT, "version": DOMAIN_VERSION, "model_sha256": self.model_sha256,
               "images": self.images, "source": self.source, "threshold": self.threshold,
               "residual": self.residual, "mean": r(self.mean), "std": r(self.std), "variances": r(self.variances),
               "components": [r(c) for c in self.components]}
        if self.pixels is not None:
            doc["pixels"] = list(self.pixels)
        atomic_write_bytes(Path(path), json.dumps(doc).encode("utf-8"))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "DomainReference":
        try:
            doc = read_json(path, "domain reference", MAX_REFERENCE_BYTES)
            if doc.get("format") != DOMAIN_FORMAT or doc.get("version") != DOMAIN_VERSION:
                raise ValueError(f"not a version-{DOMAIN_VERSION} domain reference")
            def a(key):
                return np.array(doc[key], np.float64)
            ref = cls(a("mean"), a("std"), a("components"), a("variances"), float(doc["residual"]),
                      float(doc["threshold"]), str(doc.get("model_sha256", "")), int(doc.get("images", 0)),
                      str(doc.get("source", "")), _pixels(doc.get("pixels")))
            ref.check()
            return ref
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable domain reference ({exc})") from None


def _pixels(value) -> tuple[int, int] | None:
    """A reference's optional "pixels": two whole numbers, ``MIN_REFERENCE_PIXELS`` <= fewest <=
    most <= qgn's native pixel cap (ValueError otherwise)."""
    from qgn.model.qgn import max_native_pixels

    if value is None:
        return None
    top = max_native_pixels()
    if not isinstance(value, list) or len(value) != 2 or not all(type(v) is int for v in value) \
            or not MIN_REFERENCE_PIXELS <= value[0] <= value[1] <= top:
        raise ValueError(f'"pixels" must be [fewest, most] whole numbers from {MIN_REFERENCE_PIXELS:,} to '
                         f'{top:,} (the native pixel cap); got {str(value)[:80]}')
    return value[0], value[1]


def reference_path(model_path: str | Path) -> Path:
    """Where a model's domain reference lives: ``<model>.domain.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".domain.json")


def reference_for(model_path: str | Path) -> DomainReference | None:
    """The model's domain reference when one exists for this very file (same SHA-256), else None."""
    return load_reference(model_path)[0]


def load_reference(model_path: str | Path) -> tuple[DomainReference | None, str | None]:
    """(the model's domain reference, None) as ``reference_for``; else (None, why not): no
    reference beside it, one that cannot be read (damaged, another format), or one made for
    another file (its SHA-256), each naming the reference's path."""
    path = reference_path(model_path)
    if not path.is_file():
        return None, _no_reference(path)
    try:
        ref = DomainReference.load(path)
    except ValueError as exc:
        return None, str(exc)
    if ref.model_sha256 and ref.model_sha256 != file_sha256(model_path):
        return None, f"{path} was made for another model file (its SHA-256 differs from {Path(model_path).name}'s)"
    return ref, None


def _no_reference(path: Path) -> str:
    """Why ``path``, where a model's reference belongs, is none: nothing there, or what is there
    instead (a folder, a named pipe, a device through a link, a link to nothing or in a loop)."""
    import errno
    import os

    from qgn.fileio import special_kind

    try:
        kind = special_kind(path)
    except OSError as exc:
        what = "a link in a loop" if exc.errno == errno.ELOOP else f"not readable ({exc.strerror or exc})"
        return f"{path} is {what}, not a domain reference file"
    if kind is not None:
        return f"{path} is {kind}, not a domain reference file"
    if path.is_symlink():
        return f"{path} is a link to {os.readlink(path)}, which does not exist: no domain reference"
    return f"no domain reference beside the model ({path})"


REFERENCE_IMAGES = 400  # at most this many training images, evenly spaced, make a trained model's reference
# fewer training images make no reference: its own images' 95th percentile is then no bar for new ones
# (fitted on 10-60 CamVid frames, the street model's flagged 98-100 % of CamVid val; on 100, 0 %; the
# demo model's on 50 synthetic scenes flagged all new ones, on 100 22 %, on 200 none): 32 directions
# need some six times as many images
MIN_REFERENCE_IMAGES = 200


def build_reference(model, model_path: str | Path, dataset, limit: int = REFERENCE_IMAGES,
                    stop=lambda: False, minimum: int = MIN_REFERENCE_IMAGES) -> DomainReference | None:
    """The domain reference of ``model`` (saved at ``model_path``) from the images of ``dataset``
    (its training set: ``len`` and ``[i].image``, (H, W, 3) uint8), at most ``limit`` of them
    evenly spaced, written beside the model (``reference_path``). None when the dataset has fewer
    than ``MIN_REFERENCE_IMAGES`` images (``minimum``) or ``stop()`` said so."""
    count = len(dataset)
    if count < minimum:
        return None
    picks = sorted({round(i * (count - 1) / max(1, min(limit, count) - 1)) for i in range(min(limit, count))})
    descriptors, areas = [], []
    for i in picks:
        if stop():
            return None
        image = dataset[i].image
        descriptors.append(image_descriptor(model, image))
        areas.append(working_pixels(model, *image.shape[:2]))
    reference = DomainReference.fit(np.stack(descriptors), file_sha256(model_path),
                                    f"{len(picks)} training images", pixels=(min(areas), max(areas)))
    reference.save(reference_path(model_path))
    return reference


def carry_reference(original: str | Path, saved: str | Path, model,
                    reference: DomainReference | None = None) -> Path | None:
    """For ``model``, fine-tuned from the model file ``original`` and saved at ``saved``: where
    ``original`` has a domain reference and ``model``'s encoder is still ``original``'s, tensor for
    tensor (a frozen-encoder fine-tune, the default), the same reference bound to the new file,
    written beside it. The descriptor reads the encoder alone, so its verdicts still hold; and a few
    corrected images do not make a model's start pay on a scene it did not know (benchmarks/RESULTS.md,
    "The domain check decides the start"). Returns the reference's path, or None: no reference,
    or the encoder changed (``encoder="train"``), whose old reference would judge wrongly.
    ``reference``: ``original``'s, as the caller loaded it (``qgn serve`` holds its served
    version's: the file beside ``original`` may have been deleted or replaced since); else the one
    beside ``original`` made for it (``reference_for``). It is copied, never changed."""
    reference = reference_for(original) if reference is None else dataclasses.replace(reference)
    if reference is None:
        return None
    from safetensors import safe_open

    state = {k: v for k, v in model.state_dict().items() if k.startswith("encoder.")}
    with safe_open(str(original), "pt") as weights:
        keys = [k for k in weights.keys() if k.startswith("encoder.")]
        if not keys or set(keys) != set(state):
            return None
        for key in keys:
            if not torch.equal(weights.get_tensor(key), state[key].detach().cpu()):
                return None
    reference.model_sha256 = file_sha256(saved)
    reference.source = f"{reference.source}; carried from {Path(original).name} (encoder unchanged by fine-tuning)"
    return reference.save(reference_path(saved))


@dataclass
class DomainVerdict:
    """score (1 = the training images' 95th percentile), inside: score <= WARN_AT."""

    score: float

    @property
    def inside(self) -> bool:
        return self.score <= WARN_AT

    def describe(self, model_name: str) -> str:
        if self.inside:
            return f"{model_name}: this image looks like its training images (domain score {self.score:.2f})"
        return (f"{model_name}: this image is unlike its training images (domain score {self.score:.1f}; theirs ≤ 1).<br>"
                f"Its prediction may be confidently wrong.")


def judge(model, image: np.ndarray, reference: DomainReference) -> DomainVerdict:
    """The verdict on ``image`` for ``model`` with its ``reference``."""
    return DomainVerdict(reference.score(image_descriptor(model, image, reference.pixels)))


def judge_session(session, image: np.ndarray, reference: DomainReference) -> DomainVerdict:
    """The verdict on ``image``, whose ``qgn.infer.ImageSession`` is ``session``, from the
    session's own encoder features where it runs at the working size (``session_descriptor``): no
    second encoder pass."""
    return DomainVerdict(reference.score(session_descriptor(session, image, reference.pixels)))
