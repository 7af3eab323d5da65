"""The QGN decoder computed with dense convolutions and multiplicative 0/1 masks.

The paper's sanity check (supplement A.1): submanifold sparse convolutions emulated by dense
``conv2d`` over the whole grid of every level, with the inactive cells zeroed after every layer.
It uses the weights of a ``QGNDecoder`` as they are and gives the same logits at the active sites
(tested), but its cost is that of the full grid whatever the scheme: the baseline against which
the sparse backends' wall time is compared.

Which cells are active comes from outside (``level_masks``: level → (B, H_l, W_l) bool), e.g.
``masks_of_outputs`` of a sparse run, so both decoders compute the same site sets. BatchNorm uses
its running statistics (eval mode): this decoder is for inference timing and equivalence checks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from qgn.model.decoder import DecoderLevel, LevelOutput, QGNDecoder, ResidualUnit
from qgn.quadtree import ROOT_LEVEL
from qgn.sparse.nn import SparseBatchNorm, SparseLinear, SubMConv2d


def masks_of_outputs(outputs: list[LevelOutput], batch_size: int = 1) -> dict[int, torch.Tensor]:
    """Level → (B, H_l, W_l) bool: the active sites of each level of a sparse decoder run."""
    masks = {}
    for o in outputs:
        h, w = o.features.spatial_shape
        grid = torch.zeros((batch_size, h, w), dtype=torch.bool, device=o.coords.device)
        c = o.coords
        grid[c[:, 0], c[:, 1], c[:, 2]] = True
        masks[o.level] = grid
    return masks


def _conv1x1(x: torch.Tensor, layer: SparseLinear) -> torch.Tensor:
    return F.conv2d(x, layer.weight[:, :, None, None], layer.bias)


def _conv3x3(x: torch.Tensor, layer: SubMConv2d) -> torch.Tensor:
    return F.conv2d(x, layer.weight.permute(0, 3, 1, 2), layer.bias, padding=layer.kernel_size // 2)


def _bn(x: torch.Tensor, layer: SparseBatchNorm) -> torch.Tensor:
    return F.batch_norm(x, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps)


def _unit(x: torch.Tensor, unit: ResidualUnit, mask: torch.Tensor) -> torch.Tensor:
    out = torch.relu(_bn(_conv3x3(x, unit.conv1), unit.bn1)) * mask
    out = _bn(_conv3x3(out, unit.conv2), unit.bn2)
    identity = x if unit.shortcut is None else _bn(_conv1x1(x, unit.shortcut["proj"]), unit.shortcut["bn"])
    return torch.relu(out + identity) * mask


def _level(x: torch.Tensor, skip_source: torch.Tensor, block: DecoderLevel, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = (x + _conv1x1(skip_source, block.skip)) * mask
    for unit in block.units:
        x = _unit(x, unit, mask)
    return x, _conv1x1(x, block.head)


@torch.no_grad()
def dense_masked_decode(
    decoder: QGNDecoder, features: list[torch.Tensor], image: torch.Tensor, level_masks: dict[int, torch.Tensor]
) -> dict[int, torch.Tensor]:
    """Run ``decoder`` densely on every level in ``level_masks`` (5 first, then consecutive levels).

    features:    the encoder's five maps, (B, C_i, H/s, W/s) for s = 2, 4, 8, 16, 32.
    image:       (B, 3, H, W) normalised input (skip source of level 0).
    level_masks: level → (B, H_l, W_l) bool active cells; level 5 must be all True.
    Returns level → (B, k+1, H_l, W_l) float logits (meaningful at the active cells only).
    """
    if decoder.training:
        raise ValueError("dense_masked_decode uses BatchNorm running statistics: call decoder.eval() first")
    levels = sorted(level_masks, reverse=True)
    if not levels or levels[0] != ROOT_LEVEL or levels != list(range(ROOT_LEVEL, levels[-1] - 1, -1)):
        raise ValueError(f"level_masks must cover levels 5, 4, … consecutively; got {levels}")
    x = torch.relu(_bn(_conv1x1(features[4], decoder.reduce), decoder.reduce_bn))
    logits = {ROOT_LEVEL: _conv1x1(x, decoder.head5)}
    sources = [image] + list(features[:4])
    for level in levels[1:]:
        mask = level_masks[level][:, None].to(x.dtype)
        x = F.interpolate(x, scale_factor=2, mode="nearest") * mask
        x, logits[level] = _level(x, sources[level], decoder.levels[str(level)], mask)
    return logits


@torch.no_grad()
def dense_decode(decoder: QGNDecoder, features: list[torch.Tensor], image: torch.Tensor, depth: int = 0) -> dict[int, torch.Tensor]:
    """The best dense choice: ``decoder`` computing every cell of every level 5 … ``depth`` with
    channels-last ``conv2d`` (oneDNN's fastest CPU layout), BatchNorm folded into the
    convolutions and no masks (`QGNDecoder.dense_root`, `QGNDecoder.dense_levels`) — the plain
    dense decoder that the sparse All path must not be slower than. Same weights, BatchNorm
    running statistics.

    Returns level → (B*H_l*W_l, k+1) logits, rows in canonical (row-major) order, as the head's
    matmul gives them (equal to the sparse All decoder's ``logits`` at every cell).
    """
    if decoder.training:
        raise ValueError("dense_decode uses BatchNorm running statistics: call decoder.eval() first")
    grid, _, root_logits = decoder.dense_root(features[4])
    logits = {ROOT_LEVEL: root_logits}
    sources = [image] + list(features[:4])
    for level, _, level_logits, _ in decoder.dense_levels(grid, sources, ROOT_LEVEL, depth):
        logits[level] = level_logits
    return logits
