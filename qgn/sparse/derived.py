"""When a tensor derived from parameters may be remembered between calls.

Inference re-derives the same tensors from unchanged weights conv after conv, image after image:
a sparse conv's weight in taps layout (torch_backend.inference_taps), a convolution with its
BatchNorm folded in (qgn.model.folding). Both are remembered keyed by `tensor_state` of every
source tensor - its storage and version counter, which an optimiser step, ``load_state_dict`` or
any in-place write changes - so a changed weight is derived anew.

Nothing is remembered under a ``TorchDispatchMode`` (`caching_allowed`): the shape-only execution
of the memory benchmarks computes no values there, tracing makes fake tensors, and a tracker
counting a pass's allocations should see the pass derive what it needs, every time alike.
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import is_in_torch_dispatch_mode


def caching_allowed() -> bool:
    """False under a TorchDispatchMode (see the module docstring)."""
    return not is_in_torch_dispatch_mode()


def tensor_state(t: torch.Tensor | None) -> tuple | None:
    """What identifies ``t``'s current values without reading them: storage address, version
    counter, dtype, device (None for None)."""
    return None if t is None else (t.data_ptr(), t._version, t.dtype, t.device)
