"""Propagation schemes (paper §3.3): which active sites of level l go on to level l-1.

One place decides this for training, the CLI and the app. A scheme looks at one level's
prediction (and, for GTC, the ground-truth T-pyramid) and returns a boolean mask over that
level's active sites; the decoder upsamples the selected sites 2×2 (Eq. 11) to the next level.

Schemes (``Scheme.name``):

* ``all``          every site goes on: the dense decoder, the most compute.
* ``gtc``          sites whose ground-truth T-pyramid cell is composite (training; an upper bound
                   at evaluation). Needs the ground truth.
* ``pc``           sites predicted composite: argmax over the k+1 classes is class 0, or, when
                   ``tau`` is set, P(composite) ≥ tau (tau → 0 approaches All, tau → 1 nothing).
* ``uncertainty``  PC plus every site whose normalised prediction entropy H(p)/log(k+1) exceeds
                   ``entropy`` (1.0 gives PC, 0.0 gives All): refine where the network doubts.
* ``mask``         only the user's ``site_masks``.

Modifiers for every scheme: ``depth`` (the finest level computed; 0 = down to pixels, 5 = stop after
the root level), ``priority_classes`` (sites whose best real class is one of these always go on),
``site_masks`` (level → (B, H_l, W_l) bool; selected sites are added to the scheme's choice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

SCHEMES = ("all", "gtc", "pc", "uncertainty", "mask")


@dataclass(frozen=True)
class Scheme:
    """A propagation scheme; see the module docstring. Immutable, so it can key a cache."""

    name: str = "pc"
    tau: float | None = None
    entropy: float = 0.5
    depth: int = 0
    priority_classes: tuple[int, ...] = ()
    site_masks: Mapping[int, object] | None = field(default=None, hash=False, compare=False)

    def __post_init__(self):
        if self.name not in SCHEMES:
            raise ValueError(f"unknown propagation scheme {self.name!r}; choose one of {', '.join(SCHEMES)}")
        if self.tau is not None and not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1]; got {self.tau}")
        if not 0.0 <= self.entropy <= 1.0:
            raise ValueError(f"the entropy threshold must be in [0, 1]; got {self.entropy}")
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0; got {self.depth}")
        if self.name == "mask" and not self.site_masks:
            raise ValueError("scheme 'mask' needs site_masks")
        object.__setattr__(self, "priority_classes", tuple(int(c) for c in self.priority_classes))

    @property
    def needs_ground_truth(self) -> bool:
        return self.name == "gtc"

    def key(self) -> tuple:
        """What decides the sites below the root: equal keys give equal decoder runs."""
        masks = None if self.site_masks is None else id(self.site_masks)
        return (self.name, self.tau, self.entropy if self.name == "uncertainty" else None,
                self.priority_classes, masks)


def normalised_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(N, k+1) logits → (N,) entropy of the softmax divided by log(k+1), in [0, 1]."""
    logp = torch.log_softmax(logits.float(), dim=1)
    ent = -(logp.exp() * logp).sum(dim=1)
    return ent / math.log(logits.shape[1])


def predicted_composite(logits: torch.Tensor, tau: float | None) -> torch.Tensor:
    """(N, k+1) logits → (N,) bool: argmax is composite, or P(composite) ≥ tau when tau is set."""
    if tau is None:
        return logits.argmax(dim=1) == 0
    return torch.softmax(logits.float(), dim=1)[:, 0] >= tau


def _mask_at_sites(mask, coords: torch.Tensor) -> torch.Tensor:
    """Look up a (B, H_l, W_l) bool mask (numpy or torch) at (N, 3) (b, y, x) coords → (N,) bool."""
    mask = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask, device=coords.device)
    if mask.ndim == 2:
        mask = mask[None]
    return mask[coords[:, 0], coords[:, 1], coords[:, 2]].bool()


def select_sites(
    scheme: Scheme,
    level: int,
    coords: torch.Tensor,
    logits: torch.Tensor,
    gt_composite: torch.Tensor | None = None,
) -> torch.Tensor:
    """Which of a level's active sites go on to level ``level - 1``.

    coords:       (N, 3) int64 (batch, y, x) of the active sites at ``level``, or a callable
                  returning them (read only by schemes that look sites up: GTC, site masks).
    logits:       (N, k+1) the level's prediction at those sites (class 0 = composite).
    gt_composite: (B, H_l, W_l) bool, the ground-truth composite cells (GTC only).
    Returns (N,) bool on the coords' device. Empty when ``level <= scheme.depth``.
    """
    n, device = logits.shape[0], logits.device
    if callable(coords):
        coords_of = coords
    else:
        def coords_of():
            return coords
    if level <= scheme.depth or n == 0:
        return torch.zeros(n, dtype=torch.bool, device=device)
    with torch.no_grad():
        if scheme.name == "all":
            chosen = torch.ones(n, dtype=torch.bool, device=device)
        elif scheme.name == "gtc":
            if gt_composite is None:
                raise ValueError("the GTC scheme needs ground truth (a label map) for every image")
            chosen = _mask_at_sites(gt_composite, coords_of())
        elif scheme.name == "pc":
            chosen = predicted_composite(logits, scheme.tau)
        elif scheme.name == "uncertainty":
            chosen = predicted_composite(logits, scheme.tau) | (normalised_entropy(logits) > scheme.entropy)
        else:  # "mask"
            chosen = torch.zeros(n, dtype=torch.bool, device=device)
        if scheme.priority_classes:
            best_real = logits[:, 1:].argmax(dim=1)
            prio = torch.tensor(scheme.priority_classes, device=device)
            chosen |= torch.isin(best_real, prio)
        if scheme.site_masks and level in scheme.site_masks:
            chosen |= _mask_at_sites(scheme.site_masks[level], coords_of())
    return chosen
