"""The QGN sparse decoder (paper §3.2, Fig. 2, Table 7): level 5 → level 0.

    level 5  (stride 32, every site)  reduce: 1×1 conv of the encoder's stride-32 output → C5
                                       head: 1×1 conv → Q̂5 (k+1 classes, 0 = composite)
    level l  (l = 4 … 0)               select sites of level l+1 (the propagation scheme)
                                       upsample them 2×2 (Eq. 11) → sites of level l
                                       + skip: 1×1 conv of the encoder features at stride 2^l,
                                         gathered at the new sites (level 0: of the input image)
                                       Trans_l: residual units of submanifold 3×3 convs
                                       head: 1×1 conv → Q̂l

Channels at width 1.0 follow Table 7: C5 = 512; Trans4 512→256 (6 units), Trans3 256→128 (4),
Trans2 128→64 (3), Trans1 64→64 (3), Trans0 64→64 (3); a width multiplier scales them all.

Each level reports what it cost (active sites, multiply-accumulates, seconds). A run can resume
from the outputs of an earlier run (``resume``), so moving a depth slider does not recompute the
levels above.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
import torch
from torch import nn

from qgn.model.encoder import scale_channels
from qgn.model.folding import folded
from qgn.propagation import Scheme, select_sites
from qgn.quadtree import ROOT_LEVEL
from qgn.sparse.gather_linear import gather_linear
from qgn.sparse.derived import caching_allowed
from qgn.sparse.level import SparseLevel
from qgn.sparse.rulebook import count_neighbour_pairs
from qgn.sparse.sites import ActiveSites
from qgn.sparse.nn import SparseBatchNorm, SparseLinear, SubMConv2d

TABLE7_CHANNELS = (512, 256, 128, 64, 64, 64)  # C5, then the outputs of Trans4 … Trans0
TABLE7_UNITS = (6, 4, 3, 3, 3)  # Trans4 … Trans0


@dataclass
class LevelOutput:
    """One decoder level's result.

    level:    l (cells of 2^l pixels).
    features: SparseLevel, the decoder activation after Trans_l, (N, C_l) at (N, 3) (b, y, x).
    logits:   (N, k+1) float, Q̂l at the active sites (class 0 = composite).
    selected: (N,) bool, the sites that went on to level l-1 (None until the next level ran); a
              property over the field ``_selected`` (see `select_every_site`), which is also the
              constructor's and ``dataclasses.replace``'s name for it.
    macs:     multiply-accumulates spent at this level (skip + convs + head; not the encoder).
    seconds:  wall time of this level.
    feature_bytes: bytes of ``features.feats`` when computed (kept after `release_features`).

    A dataclass, so that DistributedDataParallel finds the logits among a forward's outputs (its
    ``_find_tensors`` looks into lists and dataclass fields): it marks the parameters that produced
    them as used; without it every parameter was marked ready twice and training stopped.
    """

    level: int
    features: SparseLevel
    logits: torch.Tensor
    _selected: torch.Tensor | None
    macs: int
    seconds: float
    feature_bytes: int = -1
    # an init field, so dataclasses.replace carries a selection not made yet (select_every_site)
    _every_site_selected: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self):
        if self.feature_bytes < 0:
            self.feature_bytes = self.features.feats.nbytes

    @property
    def selected(self) -> torch.Tensor | None:
        if self._every_site_selected:  # made on first read: All's runs rarely read it
            self._selected = torch.ones(self.num_sites, dtype=torch.bool, device=self.logits.device)
            self._every_site_selected = False
        return self._selected

    @selected.setter
    def selected(self, value: torch.Tensor | None) -> None:
        self._selected, self._every_site_selected = value, False

    def select_every_site(self) -> None:
        """Every site went on to the next level (All): ``selected`` reads as an (N,) all-True
        tensor of this output's own, made when first read - no tensor op while the decoder runs."""
        self._selected, self._every_site_selected = None, True

    def release_features(self) -> None:
        """Drop the feature rows (kept: sites, logits, selection, costs). Inference does this for
        levels between the root and the finest, which nothing reads again: their memory goes back
        at once instead of staying allocated for the whole prediction."""
        feats = self.features.feats
        if feats.shape[1]:
            self.features = self.features.replace_feats(feats.new_empty((feats.shape[0], 0)))

    @property
    def coords(self) -> torch.Tensor:
        return self.features.coords

    @property
    def num_sites(self) -> int:
        return self.features.num_sites


def dense_linear(x: torch.Tensor, layer: SparseLinear) -> torch.Tensor:
    """A per-site linear layer on every cell of (B, C, H, W): one matmul over the channels-last
    rows; the result is channels-last (B, C', H, W)."""
    return _dense_matmul(x, layer.weight, layer.bias)


def dense_rows(x: torch.Tensor, layer: SparseLinear) -> torch.Tensor:
    """`dense_linear` as its matmul gives it: (B*H*W, C') rows in canonical (row-major) order."""
    return torch.nn.functional.linear(x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]), layer.weight, layer.bias)


def _dense_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    b, _, h, w = x.shape
    return _dense_matmul_rows(x, weight, bias).view(b, h, w, -1).permute(0, 3, 1, 2)


def _dense_matmul_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (B, C, H, W) -> (B*H*W, C') rows in canonical order: one matmul over the channels."""
    return torch.nn.functional.linear(x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]), weight, bias)


def conv2d_weight(weight: torch.Tensor) -> torch.Tensor:
    """A `SubMConv2d` weight (Cout, k, k, Cin) as `conv2d` takes it, (Cout, Cin, k, k): a view
    whose strides are channels-last, oneDNN's fastest CPU layout."""
    return weight.permute(0, 3, 1, 2)


def _dense_conv_bn(x: torch.Tensor, conv: SubMConv2d, bn: SparseBatchNorm) -> torch.Tensor:
    """conv then BatchNorm (running statistics) on every cell: one conv2d with the BatchNorm
    folded into its weight and bias (qgn.model.folding)."""
    weight, bias = folded(conv.weight, conv.bias, bn, conv2d_weight)
    return torch.nn.functional.conv2d(x, weight, bias, padding=conv.kernel_size // 2)


def _dense_linear_bn(x: torch.Tensor, layer: SparseLinear, bn: SparseBatchNorm) -> torch.Tensor:
    return _dense_matmul(x, *folded(layer.weight, layer.bias, bn))


class ResidualUnit(nn.Module):
    """A sparse BasicBlock: conv3×3-BN-ReLU-conv3×3-BN + shortcut (1×1 + BN when widths differ), ReLU."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = SubMConv2d(in_ch, out_ch, 3, bias=False)
        self.bn1 = SparseBatchNorm(out_ch)
        self.conv2 = SubMConv2d(out_ch, out_ch, 3, bias=False)
        self.bn2 = SparseBatchNorm(out_ch)
        self.shortcut = None
        if in_ch != out_ch:
            self.shortcut = nn.ModuleDict({"proj": SparseLinear(in_ch, out_ch, bias=False), "bn": SparseBatchNorm(out_ch)})
        self.in_ch, self.out_ch = in_ch, out_ch

    def forward(self, x: SparseLevel) -> SparseLevel:
        out = self.bn1(self.conv1(x))
        out = out.replace_feats(torch.relu_(out.feats))  # BN's output is fresh and not saved: in place
        out = self.bn2(self.conv2(out))
        identity = x.feats if self.shortcut is None else self.shortcut["bn"](self.shortcut["proj"](x)).feats
        return out.replace_feats(out.feats.add_(identity).relu_())

    def dense_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The unit on every cell of a channels-last (B, C, H, W) grid (inference, BN running
        stats, folded into the convolutions)."""
        out = torch.relu_(_dense_conv_bn(x, self.conv1, self.bn1))
        out = _dense_conv_bn(out, self.conv2, self.bn2)
        identity = x if self.shortcut is None else _dense_linear_bn(x, self.shortcut["proj"], self.shortcut["bn"])
        return out.add_(identity).relu_()

    def macs(self, num_sites: int, num_pairs: int) -> int:
        total = num_pairs * (self.in_ch * self.out_ch + self.out_ch * self.out_ch)
        if self.shortcut is not None:
            total += num_sites * self.in_ch * self.out_ch
        return total


class DecoderLevel(nn.Module):
    """Skip connection + Trans_l (residual units) + prediction head of one level l < 5."""

    def __init__(self, skip_ch: int, in_ch: int, out_ch: int, units: int, num_outputs: int):
        super().__init__()
        self.skip = SparseLinear(skip_ch, in_ch, bias=True)
        chans = [in_ch] + [out_ch] * units
        self.units = nn.ModuleList(ResidualUnit(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.head = SparseLinear(out_ch, num_outputs, bias=True)
        self.skip_ch, self.in_ch, self.out_ch, self.num_outputs = skip_ch, in_ch, out_ch, num_outputs

    def forward(self, x: SparseLevel, skip_source: torch.Tensor) -> tuple[SparseLevel, torch.Tensor]:
        """x: upsampled parent features (N, in_ch); skip_source: (B, skip_ch, H_l, W_l) dense.

        A level whose sites fill the grid (All, and often the coarse levels of PC) runs as a dense
        channels-last block at inference: the same arithmetic as the sparse path, in one layout."""
        if x.sites.is_full() and not self.training and not torch.is_grad_enabled():
            return self.dense_forward(x, skip_source)
        x = x.replace_feats(gather_linear(skip_source, x.sites, self.skip.weight, self.skip.bias).add_(x.feats))
        for unit in self.units:
            x = unit(x)
        return x, self.head(x).feats

    def dense_forward(self, x: SparseLevel, skip_source: torch.Tensor) -> tuple[SparseLevel, torch.Tensor]:
        """`forward` on a full grid as dense channels-last ops; rows of the results are the sites."""
        (height, width), batch = x.spatial_shape, x.batch_size
        grid, logits = self.dense_grid(x.feats.view(batch, height, width, -1).permute(0, 3, 1, 2), skip_source)
        return x.replace_feats(_grid_rows(grid)), logits

    def dense_grid(self, grid: torch.Tensor, skip_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The level on every cell: upsampled features ``grid`` (B, in_ch, H, W) channels-last, which
        it overwrites -> (features (B, out_ch, H, W) channels-last, logits (B*H*W, k+1) rows in
        canonical order: the head's matmul output as it comes, no view taken)."""
        # in place into the upsampled features (fresh, held by the caller until this returns): the
        # skip's output is freed at once, so no second grid-sized buffer stays alive through the
        # units (one fewer fresh allocation per level than otherwise)
        grid = grid.add_(dense_linear(skip_source, self.skip))
        for unit in self.units:
            grid = unit.dense_forward(grid)
        return grid, dense_rows(grid, self.head)

    def macs(self, x: SparseLevel) -> int:
        """Multiply-accumulates of this level on ``x``'s sites (skip, units, head)."""
        return self.macs_of_sites(x.sites)

    def macs_of_sites(self, sites: ActiveSites) -> int:
        n = sites.num_sites
        if n == 0:
            return 0
        pairs = count_neighbour_pairs(sites, 3)
        total = n * self.skip_ch * self.in_ch + n * self.out_ch * self.num_outputs
        return total + sum(unit.macs(n, pairs) for unit in self.units)


class QGNDecoder(nn.Module):
    """Sparse decoder from the encoder's five feature maps (strides 2..32) and the input image."""

    def __init__(
        self,
        encoder_channels: tuple[int, ...],
        num_classes: int,
        width: float = 1.0,
        units: tuple[int, ...] = TABLE7_UNITS,
        image_channels: int = 3,
    ):
        super().__init__()
        if len(encoder_channels) != 5 or len(units) != 5:
            raise ValueError("the decoder needs 5 encoder feature maps (strides 2..32) and 5 unit counts")
        chans = [scale_channels(c, width) for c in TABLE7_CHANNELS]
        self.num_outputs = num_classes + 1
        self.reduce = SparseLinear(encoder_channels[4], chans[0], bias=False)
        self.reduce_bn = SparseBatchNorm(chans[0])
        self.head5 = SparseLinear(chans[0], self.num_outputs, bias=True)
        skip_channels = (image_channels,) + tuple(encoder_channels[:4])  # level 0 … 4
        self.levels = nn.ModuleDict()
        for i, level in enumerate(range(ROOT_LEVEL - 1, -1, -1)):
            self.levels[str(level)] = DecoderLevel(skip_channels[level], chans[i], chans[i + 1], units[i], self.num_outputs)
        self.channels = tuple(chans)
        self._full_parts: dict[tuple, tuple] = {}  # see `_full_grid_parts`

    def __getstate__(self):
        """A copy (``copy.deepcopy``, pickling) starts with no remembered shapes: `_full_parts` is a
        cache the inference thread may add to while another thread copies the model (the uncertainty
        order and the fine-tune copy it beside running predictions), and copying it then failed with
        "dictionary changed size during iteration" (seen in CI)."""
        state = super().__getstate__()
        state["_full_parts"] = {}
        return state

    def root(self, top: torch.Tensor) -> LevelOutput:
        """Level 5 on every site of the encoder's stride-32 output ``top`` (B, C, H/32, W/32)."""
        start = time.perf_counter()
        b, _, h, w = top.shape
        sites = ActiveSites.full(b, (h, w), device=top.device)
        x = SparseLevel(sites, gather_linear(top, sites, self.reduce.weight, None))
        x = self.reduce_bn(x)
        x = x.replace_feats(torch.relu(x.feats))
        logits = self.head5(x).feats
        n = x.num_sites
        macs = n * top.shape[1] * self.channels[0] + n * self.channels[0] * self.num_outputs
        return LevelOutput(ROOT_LEVEL, x, logits, None, macs, time.perf_counter() - start)

    def step(self, parent: LevelOutput, skip_source: torch.Tensor, scheme: Scheme, gt_composite) -> LevelOutput:
        """Select sites of ``parent`` (sets ``parent.selected``), upsample, run level parent.level-1."""
        start = time.perf_counter()
        parent.selected = select_sites(scheme, parent.level, lambda: parent.coords, parent.logits, gt_composite)
        x = parent.features.upsample2x(parent.selected)
        if parent.level < ROOT_LEVEL and x.num_sites and not torch.is_grad_enabled():
            parent.release_features()  # read by nothing but this upsampling: its memory is free for the child
        block = self.levels[str(parent.level - 1)]
        macs = block.macs(x)
        x, logits = block(x, skip_source)
        feature_bytes = x.feats.nbytes
        if parent.level - 1 == 0 and not torch.is_grad_enabled():
            x = x.replace_feats(x.feats.new_empty((x.num_sites, 0)))  # nothing lies below level 0 to resume
        return LevelOutput(parent.level - 1, x, logits, None, macs, time.perf_counter() - start, feature_bytes)

    def forward(
        self,
        features: list[torch.Tensor],
        image: torch.Tensor,
        scheme: Scheme,
        gt_composite: list[torch.Tensor] | None = None,
        resume: list[LevelOutput] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[LevelOutput]:
        """Run the decoder; ``progress(level)`` after each level it computes (the root is 5).

        features:     the encoder's five maps, (B, C_i, H/s, W/s) for s = 2, 4, 8, 16, 32.
        image:        (B, 3, H, W), the normalised input (skip source of level 0).
        scheme:       the propagation scheme; levels below ``scheme.depth`` are not computed.
        gt_composite: per level l, (B, H_l, W_l) bool ground-truth composite cells (GTC only).
        resume:       outputs of an earlier run whose levels are still valid, root first; the run
                      continues below the last of them (their ``selected`` is recomputed).
        Returns the outputs of the computed levels, root first.
        """
        sources = [image] + list(features[:4])  # skip source of level l
        if scheme.name == "all" and self._runs_densely(resume[-1] if resume else None):
            return self._forward_all(features[4], list(resume or ()), sources, scheme.depth, progress)
        outputs = list(resume) if resume else [self.root(features[4])]
        if progress is not None and not resume:
            progress(ROOT_LEVEL)
        while outputs[-1].level > scheme.depth:
            parent = outputs[-1]
            gt = gt_composite[parent.level] if gt_composite is not None else None
            child = self.step(parent, sources[parent.level - 1], scheme, gt)
            if progress is not None:
                progress(child.level)
            if child.num_sites == 0:
                break
            if len(outputs) > 1 and not torch.is_grad_enabled():
                parent.release_features()  # neither the root nor the finest level: never read again
            outputs.append(child)
        return outputs

    def _runs_densely(self, parent: LevelOutput | None) -> bool:
        """True if All can run below ``parent`` (None: from the root) as one dense decoder:
        inference, and ``parent`` fills its grid and still holds its features."""
        if self.training or torch.is_grad_enabled():
            return False
        return parent is None or (parent.features.sites.is_full() and parent.features.num_channels > 0)

    def dense_root(self, top: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Level 5 on every cell of ``top`` (B, C, H/32, W/32) as dense channels-last ops (inference):
        (features (B, C5, H/32, W/32) channels-last, the same features as (B*H/32*W/32, C5) rows
        in canonical order - the matmul's output, of which the grid is a view - and logits
        (B*H/32*W/32, k+1) rows)."""
        b, c, h, w = top.shape
        rows = torch.relu_(_dense_matmul_rows(top, *folded(self.reduce.weight, self.reduce.bias, self.reduce_bn)))
        logits = torch.nn.functional.linear(rows, self.head5.weight, self.head5.bias)
        return rows.view(b, h, w, -1).permute(0, 3, 1, 2), rows, logits

    def dense_levels(self, grid: torch.Tensor, sources: list[torch.Tensor], below: int, depth: int):
        """Levels ``below``-1 … ``depth`` on every cell, from level ``below``'s features ``grid``
        (B, C, H, W) channels-last: the plain dense decoder - nearest upsampling and
        `DecoderLevel.dense_grid`, no masks. Yields (level, features, logits, seconds) per level:
        the features a channels-last grid (overwritten by the next level's), the logits rows."""
        for level in range(below - 1, depth - 1, -1):
            start = time.perf_counter()
            grid = torch.nn.functional.interpolate(grid, scale_factor=2, mode="nearest")
            grid, logits = self.levels[str(level)].dense_grid(grid.contiguous(memory_format=torch.channels_last),
                                                             sources[level])
            yield level, grid, logits, time.perf_counter() - start

    def _forward_all(self, top: torch.Tensor, outputs: list[LevelOutput], sources: list[torch.Tensor],
                     depth: int, progress: Callable[[int], None] | None = None) -> list[LevelOutput]:
        """The All scheme at inference: every level fills its grid, so the decoder runs as the
        plain dense decoder does (`dense_root`, `dense_levels`: the ops of
        ``qgn.bench.dense_decoder.dense_decode``, in its order) with no site selection or
        gathering, below ``outputs[-1]`` (none: from the root). Each level's features and logits
        are row views of its grids (canonical order is row-major), so the outputs are those of
        `step`, computed as cheaply as dense."""
        if outputs:
            parent = outputs[-1]
            (height, width), batch = parent.features.spatial_shape, parent.features.batch_size
            grid = parent.features.feats.view(batch, height, width, -1).permute(0, 3, 1, 2)
            if len(outputs) > 1 and parent.level > depth:
                parent.release_features()  # neither the root nor the finest level: never read again
            root = None
        else:
            start = time.perf_counter()
            grid, root_rows, root_logits = self.dense_root(top)
            root = (root_rows, root_logits, time.perf_counter() - start)
            if progress is not None:
                progress(ROOT_LEVEL)
        # the levels first, as the dense decoder runs them; the outputs' bookkeeping after, in one
        # go: between the levels the same few ops measured 1-3 % more of the decoder at 240x180
        below = outputs[-1].level if outputs else ROOT_LEVEL
        computed = []
        for level, grid, logits, seconds in self.dense_levels(grid, sources, below, depth):
            # features are kept for the finest level only (a later run resumes there), and not
            # at level 0, below which nothing lies
            kept = grid if level == depth and level > 0 else None
            computed.append((level, kept, logits, grid.nbytes, seconds))
            if progress is not None:
                progress(level)
        if root is not None:
            outputs.append(self._root_output(top, *root))
        parent = outputs[-1]
        (height, width), batch = parent.features.spatial_shape, parent.features.batch_size
        parts = self._full_grid_parts(batch, height, width, below, depth, grid.device)
        for (level, kept, logits, feature_bytes, seconds), (level_macs, no_feats) in zip(computed, parts):
            parent.select_every_site()
            height, width = 2 * height, 2 * width
            sites = ActiveSites.full(batch, (height, width), device=logits.device)
            features = SparseLevel.trusted(sites, _grid_rows(kept) if kept is not None else no_feats)
            parent = LevelOutput(level, features, logits, None, level_macs, seconds, feature_bytes)
            outputs.append(parent)
        return outputs

    def _root_output(self, top: torch.Tensor, rows: torch.Tensor, logits: torch.Tensor, seconds: float) -> LevelOutput:
        """The root's `LevelOutput` from `dense_root`'s rows (canonical order), as `root` gives."""
        b, _, h, w = top.shape
        x = SparseLevel.trusted(ActiveSites.full(b, (h, w), device=top.device), rows)
        n = x.num_sites
        macs = n * top.shape[1] * self.channels[0] + n * self.channels[0] * self.num_outputs
        return LevelOutput(ROOT_LEVEL, x, logits, None, macs, seconds)

    def _full_grid_parts(self, batch: int, height: int, width: int, below: int, depth: int,
                         device: torch.device) -> tuple[tuple[int, torch.Tensor], ...]:
        """Per level ``below``-1 … ``depth`` below a full level of (height, width), what All's
        outputs hold that depends on the shape alone: (MACs of the level's full grid, a (N, 0)
        feature tensor for a level whose features are not kept). Remembered per shape and shared
        by every run - integers, and tensors without elements, which no write can change - so All's
        bookkeeping makes fewer tensors: each op right after a level's kernels measured ~10 us.
        Not remembered under a dispatch mode (qgn.sparse.derived)."""
        key = (batch, height, width, below, depth, device)
        if key in self._full_parts:
            return self._full_parts[key]
        parts = []
        for level in range(below - 1, depth - 1, -1):
            h, w = height << (below - level), width << (below - level)
            macs = self.levels[str(level)].macs_of_sites(ActiveSites.full(batch, (h, w)))
            parts.append((macs, torch.empty((batch * h * w, 0), device=device)))
        if caching_allowed():
            if len(self._full_parts) >= 64:
                self._full_parts.clear()
            self._full_parts[key] = tuple(parts)
        return tuple(parts)


def _grid_rows(grid: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) channels-last -> (B*H*W, C) rows in canonical (row-major) order: a view."""
    return grid.permute(0, 2, 3, 1).reshape(-1, grid.shape[1])
