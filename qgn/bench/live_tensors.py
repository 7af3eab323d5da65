"""Peak bytes of tensors alive on CPU: a ``TorchDispatchMode`` that watches storages come and go.

CPU has no allocator statistics like CUDA's ``max_memory_allocated``, so ``LiveTensorTracker``
keeps its own: every tensor an aten op returns whose storage is new (not the storage of one of the
op's inputs — views and in-place results are not allocations) is recorded with its storage's
``nbytes()``, and a ``weakref.finalize`` on the storage records its release. Storages made before
the tracker was entered (parameters, inputs) are never counted.

What it sees: every tensor the program holds (activations, saved tensors, outputs, index tensors,
cached rulebooks, gradients). What it cannot see: scratch memory an op allocates and frees inside
its own kernel (e.g. a convolution's workspace), and allocator overhead. On CUDA,
``torch.cuda.max_memory_allocated`` sees those too.

The event log (``events``) keeps the order of allocations and releases, so a peak can be computed
afterwards without some storages, e.g. the parameter gradients of a training step
(``peak_bytes(excluding=...)``).
"""
from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from qgn.bench.shape_only import leaves


def storage_id(t: torch.Tensor) -> int:
    """Identity of ``t``'s storage while it is alive (the C++ StorageImpl address)."""
    return t.untyped_storage()._cdata


class LiveTensorTracker(TorchDispatchMode):
    """Records allocations (new storages returned by aten ops) and their releases.

    Use as a context manager; read ``current_bytes``, ``peak`` and ``events`` inside or after.
    ``events``: list of (serial, +nbytes) at allocation and (serial, -nbytes) at release, in order.
    Entered on top of ``ShapeOnlyMode`` it records that mode's allocations, which are those of a
    real run (see qgn.bench.shape_only).
    """

    def __init__(self) -> None:
        super().__init__()
        self.current_bytes: int = 0
        self.peak: int = 0
        self.events: list[tuple[int, int]] = []
        self._live: dict[int, int] = {}  # storage id -> serial
        self._index: set[int] = set()  # serials of integer / bool storages (indices, masks)
        self._serial = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {storage_id(t) for t in leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        for t in leaves(out):
            if isinstance(t, torch.Tensor):
                key = storage_id(t)
                if key not in inputs and key not in self._live:
                    self._allocate(t.untyped_storage(), key, not (t.is_floating_point() or t.is_complex()))
        return out

    def _allocate(self, storage: torch.UntypedStorage, key: int, index: bool) -> None:
        nbytes = int(storage.nbytes())
        self._serial += 1
        serial = self._serial
        if index:
            self._index.add(serial)
        self._live[key] = serial
        self.events.append((serial, nbytes))
        self.current_bytes += nbytes
        self.peak = max(self.peak, self.current_bytes)
        weakref.finalize(storage, self._release, key, serial, nbytes)

    def _release(self, key: int, serial: int, nbytes: int) -> None:
        if self._live.get(key) == serial:
            del self._live[key]
        self.events.append((serial, -nbytes))
        self.current_bytes -= nbytes

    def serial_of(self, t: torch.Tensor) -> int | None:
        """Serial of ``t``'s storage if the tracker allocated it and it is alive, else None."""
        return self._live.get(storage_id(t))

    def serials_of(self, tensors: Iterable[torch.Tensor | None]) -> set[int]:
        """Serials of the live tracked storages behind ``tensors`` (untracked ones are skipped)."""
        ids = {storage_id(t) for t in tensors if t is not None}
        return {self._live[i] for i in ids if i in self._live}

    def peak_bytes(self, excluding: set[int] = frozenset(), since: int = 0) -> int:
        """Peak of live bytes over ``events[since:]`` without the storages ``excluding`` (serials),
        starting from the bytes alive at event ``since``."""
        live = sum(n for s, n in self.events[:since] if s not in excluding)
        peak = live
        for serial, nbytes in self.events[since:]:
            if serial in excluding:
                continue
            live += nbytes
            peak = max(peak, live)
        return peak

    def live_bytes(self, excluding: set[int] = frozenset()) -> int:
        """Bytes alive now, without the storages ``excluding`` (serials)."""
        return sum(n for s, n in self.events if s not in excluding)

    def live_index_bytes(self) -> int:
        """Bytes alive now in integer / bool storages (site coordinates, rulebooks, masks, pooling
        indices), as opposed to float activations."""
        return sum(n for s, n in self.events if s in self._index)
