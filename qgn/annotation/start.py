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
