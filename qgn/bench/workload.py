"""The site sets a benchmark replays at one size: ground-truth composite cells (GTC) and, with a
trained model, its predicted composite cells (PC), for each stand-in image (qgn.bench.standin).

Loaded once per size and shared by the memory, compute and speed sections, so all three measure
the same decoder runs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from qgn.bench.site_masks import gtc_site_masks, predicted_site_masks
from qgn.bench.standin import Size, load_standins
from qgn.model.qgn import QGN
from qgn.propagation import Scheme


@dataclass
class Workload:
    """size: (W, H). gt: per image, per level l = 0 … 5 (1, H_l, W_l) bool composite cells.
    pc: per image, level → (1, H_l, W_l) bool sites sent on (None without a model).
    source: where the images came from (CamVid val, or synthetic when it is absent)."""

    size: Size
    gt: list[list[torch.Tensor]]
    pc: list[dict[int, torch.Tensor]] | None
    source: str

    @property
    def images(self) -> int:
        return len(self.gt)

    def gtc_scheme_args(self, index: int, device) -> tuple[Scheme, list[torch.Tensor]]:
        """(scheme, gt_composite) that make a decoder compute image ``index``'s GTC sites."""
        return Scheme("gtc"), [m.to(device) for m in self.gt[index]]

    def pc_scheme(self, index: int, device) -> Scheme:
        """A scheme that makes a decoder compute the sites the model chose for image ``index``."""
        if self.pc is None:
            raise ValueError("this workload has no PC site masks (no trained model was given)")
        return Scheme("mask", site_masks={level: m.to(device) for level, m in self.pc[index].items()})


def load_workload(size: Size, images: int | None, data: str = "camvid", pc_model: QGN | None = None,
                  pc_scheme: Scheme = Scheme("pc"), progress: Callable[[int, int], None] | None = None) -> Workload:
    """The first ``images`` (None: all) samples of ``data`` val at ``size`` and their GTC (and PC)
    site masks; the samples are read one at a time and not kept. ``progress(i, n)``: ``i`` of the
    ``n`` images read and their masks made (0 before the first; all 101 of CamVid at 2048x1024
    with PC sites take over a minute)."""
    if size[0] % 32 or size[1] % 32:
        raise ValueError(f"benchmark sizes must be multiples of 32; got {size[0]}x{size[1]}")
    standins = load_standins(images, size, data=data)
    gt, pc = [], [] if pc_model is not None else None
    total = len(standins)
    if progress is not None:
        progress(0, total)
    for sample in standins:
        gt.append(gtc_site_masks(sample.label, standins.num_classes, standins.ignore_index))
        if pc is not None:
            pc.append(predicted_site_masks(pc_model, sample.image, pc_scheme))
        if progress is not None:
            progress(len(gt), total)
    if not gt:
        raise ValueError(f"no {data} images to benchmark")
    return Workload(tuple(size), gt, pc, standins.source)
