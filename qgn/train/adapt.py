"""A model's normalisation re-estimated on a project's own images, without labels (AdaBN).

Li et al. 2016, "Revisiting Batch Normalization For Practical Domain Adaptation": a BatchNorm's
running mean and variance are those of the training images' activations; on images of another
domain (a dusk scene for a model trained on daytime streets) the activations have other
statistics, and every layer then sees inputs shifted from what it learnt. Re-estimating the
statistics on the target images — forward passes only, no labels, no gradients — re-centres them.

``adapt_norm(model, images)`` does that for every BatchNorm of the encoder (and, with
``decoder=True``, of the sparse decoder too):

- each image runs as inference runs it (``qgn.infer.ImageSession``: resized to the model's working
  size, padded to whole root cells); the statistics are taken over the image's own cells only, the
  padding left out (at a 240×180 working size the padding, black, is 12 % of the 256×192 input:
  the statistics are the images');
- ``batch_size`` images of one working size go through together, each BatchNorm normalising them
  with their own statistics as in training (where batches were 8 crops);
- the new running statistics are the pooled mean and variance of every image's cells
  (float64, Chan's parallel update: an exact population figure, not torch's average of
  per-batch variances, which leaves out the spread between batches), written into the buffers
  in place, so a folded BatchNorm (``qgn.model.folding``) sees a new version and refolds;
- the decoder's levels run with the All scheme (every cell: no labels, so no GTC sites) on the
  sparse path; a level with fewer than two valid cells in a batch adds nothing (the rule of
  ``qgn.sparse.nn.SparseBatchNorm``).

The model is left in evaluation mode, with its parameters untouched; only the running statistics
(and ``num_batches_tracked``, the version counter folding keys on) change. Memory holds one batch.

Measured (``benchmarks/RESULTS.md``, "Adapting the normalisation"; ``benchmarks/bench_adabn.py``):
a street model that never saw CamVid's dusk sequence 0001TP, adapted on its frames 17–62, scores
30.1 / 31.7 % mIoU (All / PC) on frames 1–16 instead of 22.6 / 22.9, yet its start still costs the
simulated annotator more actions than an empty map; the bundled model adapted on CamVid val, a
sequence it trained on, loses 4.8 / 3.6 points. Hence a library function, offered by no command or
panel; an adapted model gets no domain reference (its encoder's statistics are no longer those the
reference describes).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_BATCH = 8


@dataclass
class _Pooled:
    """Running per-channel count, mean and sum of squared deviations (float64)."""

    count: float = 0.0
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None

    def add(self, rows: torch.Tensor) -> None:
        """rows: (N, C) values of one batch."""
        n = rows.shape[0]
        if n == 0:
            return
        rows = rows.double()
        mean = rows.mean(dim=0)
        m2 = ((rows - mean) ** 2).sum(dim=0)
        if self.mean is None:
            self.count, self.mean, self.m2 = float(n), mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * n / total)
        self.count = total

    def variance(self) -> torch.Tensor:
        """Unbiased, as torch stores ``running_var``."""
        return self.m2 / max(1.0, self.count - 1.0)


class _Batch:
    """What the hooks need to know of the batch in flight: the padded input's height and each
    image's valid (h, w) at the input's resolution."""

    padded: tuple[int, int] = (0, 0)
    sizes: list[tuple[int, int]] = []


def _valid_rows_dense(x: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """(N, C) of a dense (B, C, H, W) input: every image's cells that hold some of the image."""
    stride = batch.padded[0] // x.shape[2]
    parts = []
    for i, (h, w) in enumerate(batch.sizes):
        fh, fw = max(1, -(-h // stride)), max(1, -(-w // stride))
        parts.append(x[i, :, :fh, :fw].reshape(x.shape[1], -1).t())
    return torch.cat(parts)


def _valid_mask_sparse(level, batch: _Batch) -> torch.Tensor:
    """(N,) bool of a SparseLevel's sites: those whose cell holds some of its image."""
    stride = batch.padded[0] // level.spatial_shape[0]
    coords = level.coords  # (N, 3): batch index, row, column
    limits = torch.tensor([[max(1, -(-h // stride)), max(1, -(-w // stride))] for h, w in batch.sizes],
                          dtype=coords.dtype, device=coords.device)
    lim = limits[coords[:, 0].long()]
    return (coords[:, 1] < lim[:, 0]) & (coords[:, 2] < lim[:, 1])


def _normalise(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, bn, channel_dim: int) -> torch.Tensor:
    shape = [1] * x.dim()
    shape[channel_dim] = -1
    scale = torch.rsqrt(var.to(x.dtype) + bn.eps)
    out = (x - mean.to(x.dtype).view(shape)) * scale.view(shape)
    if bn.weight is not None:
        out = out * bn.weight.view(shape) + bn.bias.view(shape)
    return out


def norm_layers(model, decoder: bool = False) -> list[tuple[str, torch.nn.modules.batchnorm._BatchNorm]]:
    """(name, module) of the BatchNorms ``adapt_norm`` re-estimates: the encoder's, and the
    decoder's with ``decoder``."""
    from qgn.sparse.nn import SparseBatchNorm

    found = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.modules.batchnorm._BatchNorm) or module.running_mean is None:
            continue
        if name.startswith("encoder."):
            found.append((name, module))
        elif decoder and name.startswith("decoder.") and isinstance(module, SparseBatchNorm):
            found.append((name, module))
    return found


class _Gathering:
    """One adaptation in flight: the hooks that gather every BatchNorm's statistics while
    normalising with them, and the batches of images they run on."""

    def __init__(self, model, layers, decoder: bool, progress: Callable[[int, int], None] | None):
        self.model, self.layers, self.decoder, self.progress = model, layers, decoder, progress
        self.pooled = {name: _Pooled() for name, _ in layers}
        self.batch = _Batch()
        self.pass_index = 0
        self.pending: list[torch.Tensor] = []
        self.sizes: list[tuple[int, int]] = []
        self.used = 0

    def statistics(self, module, rows):
        if self.pass_index == 0:  # the batch's own, as in training
            return rows.mean(dim=0), rows.var(dim=0, unbiased=False)
        return module.running_mean, module.running_var  # the previous pass's estimate

    def hook_for(self, name):
        from qgn.sparse.level import SparseLevel

        def hook(module, inputs, output):
            x = inputs[0]
            if isinstance(x, SparseLevel):
                rows = x.feats[_valid_mask_sparse(x, self.batch)]
                if rows.shape[0] < 2:  # no statistics (SparseBatchNorm's rule): running ones, unchanged
                    return x.replace_feats(_normalise(x.feats, module.running_mean, module.running_var, module, 1))
                self.pooled[name].add(rows)
                return x.replace_feats(_normalise(x.feats, *self.statistics(module, rows), module, 1))
            rows = _valid_rows_dense(x, self.batch)
            self.pooled[name].add(rows)
            return _normalise(x, *self.statistics(module, rows), module, 1)
        return hook

    def start_pass(self, index: int) -> None:
        self.pass_index, self.used = index, 0
        for name in self.pooled:
            self.pooled[name] = _Pooled()

    def add_image(self, session, batch_size: int) -> None:
        """Queue one image's input; a batch runs when full or when the working size changes."""
        if self.pending and tuple(session.images.shape[2:]) != tuple(self.pending[0].shape[2:]):
            self.flush()
        self.pending.append(session.images)
        self.sizes.append(tuple(session.work_size))
        if len(self.pending) >= batch_size:
            self.flush()

    def flush(self) -> None:
        """Run the queued images through the model together (the hooks gather as they go)."""
        from qgn.propagation import Scheme

        if not self.pending:
            return
        inputs = torch.cat(self.pending)
        self.batch.padded, self.batch.sizes = tuple(inputs.shape[2:]), list(self.sizes)
        with torch.no_grad():
            features = self.model.encode(inputs)
            if self.decoder:
                self.model.decoder(features, inputs, Scheme("all"))
        self.used += len(self.pending)
        self.pending.clear()
        self.sizes.clear()
        if self.progress is not None:
            self.progress(self.pass_index, self.used)

    def write_estimate(self) -> None:
        """The pass's pooled statistics into the running buffers, in place."""
        with torch.no_grad():
            for name, m in self.layers:
                p = self.pooled[name]
                if p.mean is not None:  # (a decoder level no batch reached with two cells: unchanged)
                    m.running_mean.copy_(p.mean.to(m.running_mean.dtype))
                    m.running_var.copy_(p.variance().to(m.running_var.dtype))


def _check_arguments(images, batch_size: int, passes: int) -> None:
    if batch_size < 1 or passes < 1:
        raise ValueError(f"batch_size and passes must be at least 1; got {batch_size} and {passes}")
    if passes > 1 and not callable(images) and iter(images) is images:
        raise ValueError("more than one pass reads the images again: give a list, or a function returning them")


def _saved_statistics(layers) -> dict:
    """Each layer's running statistics, momentum and batch count as they were, to restore."""
    return {name: (m.running_mean.clone(), m.running_var.clone(), m.momentum,
                   None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for name, m in layers}


def _enter_gathering_mode(model, layers, decoder: bool) -> None:
    model.eval()
    if decoder:
        # the sparse path (the dense one folds the BatchNorms away); momentum 0 keeps the
        # buffers as they are while the hooks replace every output
        model.decoder.train()
        for _, m in layers:
            m.momentum = 0.0


def _restore_layers(layers, saved: dict, changed: bool) -> None:
    """Momentum back; the statistics too unless ``changed``; and the batch count one up when
    ``changed``."""
    with torch.no_grad():
        for name, m in layers:
            mean, var, momentum, tracked = saved[name]
            m.momentum = momentum
            if not changed:  # stopped or failed: the model as it was
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
            if tracked is not None:  # (a training-mode forward counts its batches) one more when
                # changed: a new version, so a folded copy (qgn.model.folding) is recomputed
                m.num_batches_tracked.copy_(tracked + (1 if changed else 0))


def _run_pass(gathering: _Gathering, index: int, images, batch_size: int, should_stop: Callable[[], bool],
              device) -> bool:
    """One pass over ``images``, its estimate written into the buffers; False when stopped."""
    from qgn.infer import ImageSession

    gathering.start_pass(index)
    for image in (images() if callable(images) else images):
        if should_stop():
            return False
        gathering.add_image(ImageSession(gathering.model, image, device=device), batch_size)
    gathering.flush()
    if gathering.used == 0:
        raise ValueError("no images to adapt the normalisation to")
    gathering.write_estimate()
    return True


def adapt_norm(model, images: Iterable[np.ndarray] | Callable[[], Iterable[np.ndarray]], *, decoder: bool = False, batch_size: int = DEFAULT_BATCH, passes: int = 1,
               progress: Callable[[int, int], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> int:
    """Re-estimate ``model``'s BatchNorm running statistics on ``images`` (see the module
    docstring): an iterable of (H, W, 3) uint8 or (H, W) gray arrays, read one at a time, or a
    function returning a new such iterable (needed for ``passes`` > 1). Changes ``model`` in place
    and leaves it in evaluation mode; returns the number of images used (per pass).

    ``decoder``: the decoder's BatchNorms too (else the encoder's alone). ``passes``: 1 normalises
    each batch with its own statistics while they are gathered (AdaBN as published); every further
    pass runs the model with the previous pass's estimate and gathers the statistics again, which
    converges to the statistics of the model as inference runs it. ``progress(pass, done)`` after
    every batch; ``should_stop()`` before each image: True stops with the model as it was
    (returns 0). ValueError when ``images`` holds none (the statistics would be undefined)."""
    _check_arguments(images, batch_size, passes)
    layers = norm_layers(model, decoder)
    gathering = _Gathering(model, layers, decoder, progress)
    saved = _saved_statistics(layers)
    handles = [m.register_forward_hook(gathering.hook_for(name)) for name, m in layers]
    device = next(model.parameters()).device
    done = False
    try:
        _enter_gathering_mode(model, layers, decoder)
        for index in range(passes):
            if not _run_pass(gathering, index, images, batch_size, should_stop, device):
                return 0
        if should_stop():
            return 0
        done = True
        return gathering.used
    finally:
        for h in handles:
            h.remove()
        _restore_layers(layers, saved, done)
        model.eval()
