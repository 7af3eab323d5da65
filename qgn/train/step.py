"""One optimisation step of a QGN on a batch: the unit the training loop, fine-tuning and tests share."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from qgn.loss import QuadtreeLoss, pyramid_targets
from qgn.model.qgn import QGN
from qgn.propagation import Scheme


@dataclass
class StepResult:
    """loss: the weighted total (Eq. 6); level_losses: {level: L_l}; active_sites: {level: N}."""

    loss: float
    level_losses: dict[int, float]
    active_sites: dict[int, int]


def batch_targets(model: QGN, labels: torch.Tensor, policy: str = "class") -> list[torch.Tensor]:
    """Per-level targets (B, H_l, W_l) of padded labels (B, H, W) int64 (void = the ignore value)."""
    classes = model.config.classes
    return pyramid_targets(labels, classes.num_classes, classes.ignore_index, model.config.num_levels, policy)


def train_step(
    model: QGN,
    loss_fn: QuadtreeLoss,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    scheme: Scheme,
    policy: str = "class",
    network: torch.nn.Module | None = None,
    features: list[torch.Tensor] | None = None,
) -> StepResult:
    """Forward (with ``scheme``: All or GTC for training), loss against the T-pyramid, backward, step.

    images: (B, 3, H, W) float32 normalised like ``qgn.data.transforms.collate`` does; labels: (B, H, W) int64 padded with the
    ignore value; H, W multiples of 32. ``network``: what to call for the forward pass when it is
    not ``model`` itself (its DistributedDataParallel wrapper). ``features``: the encoder's five
    maps of ``images`` when they are already known (cached by a frozen-encoder fine-tune).
    """
    model.train()
    loss_fn.train()
    targets = batch_targets(model, labels, policy)
    gt_composite = [t == 0 for t in targets] if scheme.needs_ground_truth else None
    if features is None:
        outputs = (network or model)(images, scheme, gt_composite)
    else:  # the encoder's features given (a fine-tune with a frozen encoder): the decoder alone runs
        outputs = (network or model)(images, scheme, gt_composite, features=features)
    loss, per_level = loss_fn(outputs, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return StepResult(float(loss.detach()), per_level, {o.level: o.num_sites for o in outputs})
