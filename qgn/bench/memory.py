"""Activation memory, measured on any device: bytes of the tensors autograd keeps for backward.

``saved_activation_bytes(fn)`` runs ``fn()`` under ``torch.autograd.graph.saved_tensors_hooks``
and sums the bytes of every distinct storage saved for the backward pass, excluding parameters
(they are weights, not activations). This is the activation memory a training forward pass
holds until backward — the quantity of the paper's Table 6 — and it is exact and deterministic
on CPU, where no allocator statistics exist. On CUDA, ``cuda_peak_bytes`` gives the allocator's
peak for comparison.
"""
from __future__ import annotations

from typing import Callable

import torch


def _storage_key(t: torch.Tensor) -> tuple:
    s = t.untyped_storage()
    return (t.device.type, t.device.index, s.data_ptr())


def saved_activation_bytes(fn: Callable[[], object], exclude: list[torch.Tensor] | tuple = ()) -> tuple[int, object]:
    """Run ``fn`` with grad enabled; return (bytes saved for backward, fn's result).

    exclude: tensors not to count (pass ``model.parameters()`` so weights are not activations).
    """
    excluded = {_storage_key(t) for t in exclude}
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        key = _storage_key(t)
        if key not in excluded and key not in seen:
            seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return sum(seen.values()), result


def cuda_peak_bytes(fn: Callable[[], object], device: torch.device) -> tuple[int, object]:
    """Peak CUDA memory allocated while running ``fn`` above what was allocated before it."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base, result


def active_site_bytes(outputs, element_size: int = 4) -> int:
    """The ideal's yardstick: Σ over computed levels of active sites × channels × element size
    (one activation per level). An ideal sparse decoder's memory is a constant multiple of this
    (the number of activations each level keeps per site), the same for every scheme, so
    ``bytes / active_site_bytes`` compares a scheme's memory to the ideal's."""
    return sum(o.num_sites * o.features.num_channels for o in outputs) * element_size
