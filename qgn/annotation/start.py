"""Where an image's annotation starts: empty, the model's prediction, or the project head's.

``smooth_start`` turns a prediction into the map an annotator starts from: the class probabilities
of the finest computed cell of every working pixel (composite left out, renormalised), upsampled
*bilinearly* to the image instead of copying each working pixel's class to a block (a model with a
working scale of 0.5 otherwise draws 2×2 staircases along every boundary), then, optionally, a
superpixel majority vote (``qgn.annotation.superpixels.majority_vote``) so boundaries follow the
image's edges. ``benchmarks/RESULTS.md`` measures what each step saves.

The bilinear step works at most at ``UPSAMPLE_PIXELS`` (then nearest). Where the working grid
already has that many pixels (a big photo run near full resolution) it would only blur what the
network computed, at the cost of a pass over every class channel of the grid: there the start is
the working grid's classes, resized nearest (``bilinear_size``).

``confident_start`` keeps only what the model is sure of: the same map where the bilinear
probability of its class is at least τ, unlabelled (the empty start's value) elsewhere. Measured
as a start and not taken into the app: it costs more actions than an empty map on a scene the
model never saw, and in domain more than the unmasked start (benchmarks/RESULTS.md, "A start that
keeps only what the model is sure of").

``START_CHOICES`` are the starts the app offers per image.
"""
from __future__ import annotations

import numpy as np
import torch

START_CHOICES = ("empty", "model", "head")
UPSAMPLE_PIXELS = 1 << 19  # probabilities are upsampled to at most this many pixels, then nearest


def dense_probabilities(prediction, index: int = 0) -> torch.Tensor:
    """(k, h, w) float32 class probabilities at the working size: every pixel takes the softmax of
    its finest computed cell, without the composite class (renormalised)."""
    grid = None
    for out in prediction.outputs:
        probs = torch.softmax(out.logits.detach().float(), dim=1)[:, 1:]
        probs = probs / probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
        b, hl, wl = prediction._grid(out.level)
        if grid is None:
            grid = torch.zeros((b, probs.shape[1], hl, wl))
        else:
            grid = grid.repeat_interleave(2, 2).repeat_interleave(2, 3)
        c = out.coords
        grid[c[:, 0], :, c[:, 1], c[:, 2]] = probs
    scale = 1 << prediction.finest_level
    if scale > 1:
        grid = grid.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    h, w = prediction.sizes[index]
    return grid[index, :, :h, :w]


def bilinear_size(working: tuple[int, int], image: tuple[int, int]) -> tuple[int, int] | None:
    """(sh, sw): the size the probabilities of a (h, w) working grid are resized to bilinearly for
    an (H, W) image - the image's, scaled down to at most ``UPSAMPLE_PIXELS``; None when that has no
    more pixels than the working grid (resizing there would not add detail, only blur it)."""
    sh, sw = _capped(image)
    return None if sh * sw <= working[0] * working[1] else (sh, sw)


def _capped(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (H, W) scaled down to at most ``UPSAMPLE_PIXELS`` pixels."""
    height, width = size
    scale = min(1.0, (UPSAMPLE_PIXELS / (height * width)) ** 0.5)
    return max(1, round(height * scale)), max(1, round(width * scale))


def upsampled_label(probabilities: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(H, W) int64 argmax of (k, h, w) probabilities resized bilinearly to ``size`` (H, W) (at most
    ``UPSAMPLE_PIXELS``, then nearest)."""
    import torch.nn.functional as F

    h, w = size
    sh, sw = _capped(size)
    if probabilities.shape[1:] == (sh, sw):
        label = probabilities.argmax(dim=0).numpy()
    else:
        label = F.interpolate(probabilities[None], size=(sh, sw), mode="bilinear", align_corners=False)[0].argmax(0).numpy()
    if (sh, sw) != (h, w):
        rows = np.minimum(((np.arange(h) + 0.5) * sh / h).astype(np.int64), sh - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * sw / w).astype(np.int64), sw - 1)
        label = label[np.ix_(rows, cols)]
    return label.astype(np.int64)


def upsampled_confidence(probabilities: torch.Tensor, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """((H, W) int64 label, (H, W) float32 confidence): ``upsampled_label``'s map and, per pixel, the
    largest of its bilinearly resized class probabilities (the probability of the class it shows)."""
    import torch.nn.functional as F

    h, w = size
    sh, sw = _capped(size)
    if probabilities.shape[1:] != (sh, sw):
        probabilities = F.interpolate(probabilities[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
    confidence, label = probabilities.max(dim=0)
    label, confidence = label.numpy(), confidence.numpy()
    if (sh, sw) != (h, w):
        rows = np.minimum(((np.arange(h) + 0.5) * sh / h).astype(np.int64), sh - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * sw / w).astype(np.int64), sw - 1)
        label, confidence = label[np.ix_(rows, cols)], confidence[np.ix_(rows, cols)]
    return label.astype(np.int64), confidence.astype(np.float32)


def masked_start(label: np.ndarray, confidence: np.ndarray, threshold: float, ignore_index: int) -> np.ndarray:
    """(H, W) int64: ``label`` where ``confidence`` >= ``threshold``, ``ignore_index`` (unlabelled,
    what an empty start holds) elsewhere."""
    label, confidence = np.asarray(label), np.asarray(confidence)
    if label.shape != confidence.shape:
        raise ValueError(f"label {label.shape} and confidence {confidence.shape} differ in shape")
    return np.where(confidence >= threshold, label, ignore_index).astype(np.int64)


def start_confidence(prediction, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """((H, W) int64 label, (H, W) float32 confidence) at the image's size: the classes of
    ``smooth_start`` (no vote) and the probability of each; a big working grid (``bilinear_size``
    None) is read nearest, as ``smooth_start`` reads it."""
    size = prediction.image_size(index)
    probabilities = dense_probabilities(prediction, index)
    if bilinear_size(tuple(prediction.sizes[index]), size) is not None:
        return upsampled_confidence(probabilities, size)
    h, w = size
    ph, pw = probabilities.shape[1:]
    rows = np.minimum(((np.arange(h) + 0.5) * ph / h).astype(np.int64), ph - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * pw / w).astype(np.int64), pw - 1)
    confidence, label = probabilities.max(dim=0)
    return (label.numpy()[np.ix_(rows, cols)].astype(np.int64),
            confidence.numpy()[np.ix_(rows, cols)].astype(np.float32))


def confident_start(prediction, threshold: float, ignore_index: int, index: int = 0) -> np.ndarray:
    """(H, W) int64: ``smooth_start``'s map (no vote) kept where the model's probability of the class
    it shows is at least ``threshold``, unlabelled elsewhere: confident regions come free, doubtful
    ones cost what an empty start costs."""
    return masked_start(*start_confidence(prediction, index), threshold, ignore_index)


def prediction_start(model, image: np.ndarray, scheme: str = "pc") -> np.ndarray:
    """(H, W) int64: the start map the app shows for ``model``'s prediction of ``image`` (H, W, 3)
    uint8 — ``smooth_start`` where the model works at another scale (as the app's engine does)."""
    from qgn.infer import predict
    from qgn.propagation import Scheme

    prediction = predict(model, image, Scheme(scheme))
    if prediction.output_sizes:
        return smooth_start(prediction)
    return prediction.label(0).astype(np.int64, copy=False)


def smooth_start(prediction, over=None, granularity: int = 2, index: int = 0) -> np.ndarray:
    """(H, W) int64: the prediction's start map (module docstring); ``over`` an
    ``Oversegmentation`` of the image for the majority vote (None: no vote)."""
    size = prediction.image_size(index)
    if bilinear_size(tuple(prediction.sizes[index]), size) is None:
        label = prediction.label(index).astype(np.int64, copy=False)  # the working grid's classes, nearest
    else:
        label = upsampled_label(dense_probabilities(prediction, index), size)
    if over is not None:
        from .superpixels import majority_vote

        label = majority_vote(label, over, granularity).astype(np.int64)
    return label
