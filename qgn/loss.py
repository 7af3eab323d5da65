"""The quadtree loss (paper Eqs. 4, 6, 7, 8) and T-pyramid targets as tensors.

Targets per level are (B, H_l, W_l) int64: 0 composite, 1..k class c+1, -1 VOID (ignore and
padding, excluded from the loss). They equal ``TPyramid.loss_target`` of each image (tested).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _merge_2x2(codes: torch.Tensor, void: int, wildcard: bool) -> torch.Tensor:
    """M (Eq. 2) on (B, 2h, 2w) int codes → (B, h, w); with ``wildcard`` VOID agrees with anything."""
    q = [codes[:, 0::2, 0::2], codes[:, 0::2, 1::2], codes[:, 1::2, 0::2], codes[:, 1::2, 1::2]]
    if not wildcard:
        uniform = (q[0] == q[1]) & (q[0] == q[2]) & (q[0] == q[3])
        return torch.where(uniform, q[0], torch.zeros_like(q[0]))
    rep = q[3]
    for part in q[2::-1]:
        rep = torch.where(part != void, part, rep)
    uniform = rep != 0
    for part in q:
        uniform &= (part == rep) | (part == void)
    return torch.where(uniform, rep, torch.zeros_like(rep))


def pyramid_targets(
    labels: torch.Tensor, num_classes: int, ignore_value: int | None, levels: int, policy: str = "class"
) -> list[torch.Tensor]:
    """Loss targets of every level for a batch of label maps.

    labels: (B, H, W) int64, H and W multiples of 2**(levels-1) (pad with ``ignore_value``).
    Returns ``levels`` tensors; entry l is (B, H >> l, W >> l) int64 (see module docstring).
    """
    if labels.ndim != 3:
        raise ValueError(f"labels must be (B, H, W); got {tuple(labels.shape)}")
    cell = 1 << (levels - 1)
    if labels.shape[1] % cell or labels.shape[2] % cell:
        raise ValueError(f"label size {tuple(labels.shape[1:])} is not a multiple of {cell}; pad it first")
    void = num_classes + 1
    is_void = labels == ignore_value if ignore_value is not None else torch.zeros_like(labels, dtype=torch.bool)
    bad = ~is_void & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise ValueError(f"label values {labels[bad].unique()[:8].tolist()} are not classes 0..{num_classes - 1}")
    codes = torch.where(is_void, torch.full_like(labels, void), labels + 1)
    out = [codes]
    for _ in range(levels - 1):
        out.append(_merge_2x2(out[-1], void, policy == "wildcard"))
    return [torch.where(t == void, torch.full_like(t, -1), t) for t in out]


def level_loss(
    logits: torch.Tensor, coords: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 4: mean cross-entropy over a level's active sites against the T-pyramid.

    logits: (N, k+1); coords: (N, 3) int64 (b, y, x); target: (B, H_l, W_l) int64 (-1 = ignore);
    class_weights: (k+1,) or None. Sites whose target is VOID are excluded. Returns a scalar
    (0 with a gradient path when no site counts).
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    t = target[coords[:, 0], coords[:, 1], coords[:, 2]]
    if not (t >= 0).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, t, weight=class_weights, ignore_index=-1)


class QuadtreeLoss(nn.Module):
    """Eq. 6: L = Σ_l β_l L_l, with fixed (Eq. 7, β_0 = 1, β_{l+1} = γ β_l) or adaptive (Eq. 8,
    β_l ← δ β_l + (1-δ) L_l, β initialised to 1) level weights. β is a buffer, so it is saved and
    restored with checkpoints.

    ``composite_weight`` is the cross-entropy weight of the composite class 0 (1 in the paper).
    Above 1 the network says "composite" more readily, so predicted-composite (PC) propagation
    misses fewer boundaries and comes closer to All, at the price of more active sites.
    """

    def __init__(self, num_levels: int, weighting: str = "fixed", gamma: float = 1.0, delta: float = 0.99,
                 composite_weight: float = 1.0):
        super().__init__()
        if weighting not in ("fixed", "adaptive"):
            raise ValueError(f"weighting must be 'fixed' or 'adaptive'; got {weighting!r}")
        if composite_weight <= 0:
            raise ValueError(f"composite_weight must be positive; got {composite_weight}")
        self.weighting, self.gamma, self.delta = weighting, gamma, delta
        self.composite_weight = float(composite_weight)
        beta = torch.ones(num_levels) if weighting == "adaptive" else gamma ** torch.arange(num_levels).float()
        self.register_buffer("beta", beta)
        self.register_buffer("class_weights", torch.empty(0))

    def set_class_weights(self, weights: torch.Tensor | None) -> None:
        """(k,) weights of the real classes (composite keeps ``composite_weight``), or None for uniform."""
        if weights is None:
            self.class_weights = torch.empty(0, device=self.beta.device)
        else:
            w = torch.as_tensor(weights, dtype=torch.float32, device=self.beta.device)
            self.class_weights = torch.cat([torch.full((1,), self.composite_weight, device=w.device), w])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """``class_weights`` has no fixed length (empty = uniform; k+1 once set): a saved state takes
        the length it was saved with instead of failing on the empty buffer's shape."""
        saved = state_dict.get(prefix + "class_weights")
        if saved is not None:
            self.class_weights = torch.empty_like(saved, device=self.beta.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _weights(self, num_outputs: int) -> torch.Tensor | None:
        """(k+1,) cross-entropy weights, or None when every weight is 1."""
        if self.class_weights.numel():
            return self.class_weights
        if self.composite_weight == 1.0:
            return None
        w = torch.ones(num_outputs, device=self.beta.device)
        w[0] = self.composite_weight
        return w

    def forward(self, outputs, targets: list[torch.Tensor]) -> tuple[torch.Tensor, dict[int, float]]:
        """outputs: iterable of objects with ``level``, ``coords`` (N,3), ``logits`` (N,k+1);
        targets: per-level target tensors from ``pyramid_targets``. Returns (total, {level: L_l})."""
        total = None
        per_level: dict[int, float] = {}
        for out in outputs:
            loss = level_loss(out.logits, out.coords, targets[out.level], self._weights(out.logits.shape[1]))
            per_level[out.level] = float(loss.detach())
            term = self.beta[out.level] * loss
            total = term if total is None else total + term
        if self.training and self.weighting == "adaptive":
            with torch.no_grad():
                for lvl, value in per_level.items():
                    self.beta[lvl] = self.delta * self.beta[lvl] + (1 - self.delta) * value
        if total is None:
            raise ValueError("no decoder level produced an output to compute a loss on")
        return total, per_level
