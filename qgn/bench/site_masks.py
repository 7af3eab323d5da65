"""Which sites a propagation scheme switches on, as per-level masks that any decoder can replay.

``gtc_site_masks`` reads them off a label map (ground-truth composite cells, Eq. 2 merges);
``predicted_site_masks`` off a trained model's prediction (PC: cells predicted composite). Replayed
with ``Scheme("mask", site_masks=...)``, a decoder of any width computes exactly those sites, so
the memory of PC can be measured for ResNet-50-sized decoders that were never trained.
"""
from __future__ import annotations

import numpy as np
import torch

from qgn.infer import ImageSession
from qgn.loss import pyramid_targets
from qgn.model.qgn import QGN
from qgn.quadtree import NUM_LEVELS
from qgn.propagation import Scheme


def gtc_site_masks(label: np.ndarray, num_classes: int, ignore_index: int | None) -> list[torch.Tensor]:
    """Per level l = 0 … 5, (1, H >> l, W >> l) bool: the composite cells of ``label`` (H, W),
    H and W multiples of 32 — the ``gt_composite`` argument of the decoder for scheme GTC."""
    labels = torch.from_numpy(np.asarray(label).astype(np.int64))[None]
    return [t == 0 for t in pyramid_targets(labels, num_classes, ignore_index, NUM_LEVELS)]


def predicted_site_masks(model: QGN, image: np.ndarray, scheme: Scheme) -> dict[int, torch.Tensor]:
    """Level → (1, H_l, W_l) bool on CPU: the sites of level l that ``model`` with ``scheme`` sent
    on to level l-1 for ``image`` (H, W, 3) uint8 (H, W multiples of 32). The model runs on the
    image at its given size (not at the model's working scale), so the masks fit that size's grid."""
    prediction = ImageSession(model, image, at_image_size=True).run(scheme)
    masks = {}
    for out in prediction.outputs:
        if out.selected is None:
            continue
        h, w = out.features.spatial_shape
        grid = torch.zeros((1, h, w), dtype=torch.bool)
        chosen = out.coords[out.selected].cpu()
        grid[chosen[:, 0], chosen[:, 1], chosen[:, 2]] = True
        masks[out.level] = grid
    return masks
