"""Shape-only execution: run a model with every allocation it makes, but without the arithmetic.

``ShapeOnlyMode`` is a ``TorchDispatchMode`` for measuring the memory of networks too large to
run on this machine (a ResNet-101 dilated to output stride 8 at 2048×1024 keeps ~14 GiB for
backward). For every aten op that produces or writes floating-point data it asks the op's ``meta``
kernel for the output's size, stride and dtype and returns an *uninitialised* tensor of exactly
that layout on the real device (or, for in-place and ``out=`` ops, the real argument itself).
Every other op — views, and the integer/bool index arithmetic of the sparse decoder (active sites,
neighbour rulebooks, masks) — runs for real. So the program makes the same allocations with the
same sizes and the same lifetimes as a real run; only float values are garbage. The meta answer
is cached per (op, argument sizes/strides/dtypes, other arguments), as it depends on nothing else.

Uninitialised memory is never written, so the OS does not back it with pages: a 14 GiB pass costs
little resident memory and seconds of time. Valid only for programs whose control flow and index
arithmetic do not depend on float values: the decoder with the All, GTC and mask schemes, dense
encoders and the dilated baseline qualify; predicted-composite selection (argmax of logits) does
not — measure PC by passing its site masks (Scheme "mask"). Tested against real execution in
tests/bench/test_bench_memory.py.
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

META = torch.device("meta")
_REAL = object()  # cache entry: run the op for real


def leaves(obj) -> list:
    """The leaves of nested tuples / lists / dict values (an op's arguments or results), in order."""
    if isinstance(obj, (tuple, list)):
        return [leaf for item in obj for leaf in leaves(item)]
    if isinstance(obj, dict):
        return [leaf for item in obj.values() for leaf in leaves(item)]
    return [obj]


def _rebuild(obj, values: list, start: int = 0):
    """``obj`` with its leaves replaced by ``values[start:]`` in order; returns (new obj, next index)."""
    if isinstance(obj, (tuple, list)):
        items = []
        for item in obj:
            new, start = _rebuild(item, values, start)
            items.append(new)
        return type(obj)(items) if isinstance(obj, list) else tuple(items), start
    if isinstance(obj, dict):
        new_dict = {}
        for key, item in obj.items():
            new_dict[key], start = _rebuild(item, values, start)
        return new_dict, start
    return values[start], start + 1


def _to_meta(x):
    if isinstance(x, torch.Tensor):
        return torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, device=META)
    if isinstance(x, torch.device):
        return META
    return x


def _signature(func, flat: list) -> tuple:
    key = [func]
    for x in flat:
        if isinstance(x, torch.Tensor):
            key.append((tuple(x.shape), x.stride(), x.dtype, x.device))
        else:
            key.append(x)
    return tuple(key)


class ShapeOnlyMode(TorchDispatchMode):
    """Skip floating-point arithmetic, keep allocations (see the module docstring).

    ``real_ops`` counts the ops that ran for real, ``shape_ops`` those answered from meta kernels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.real_ops = 0
        self.shape_ops = 0
        self._cache: dict[tuple, object] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.is_view or func in _ALWAYS_REAL:
            return self._real(func, args, kwargs)
        flat = leaves((args, kwargs))
        try:
            key = _signature(func, flat)
            entry = self._cache.get(key)
        except TypeError:  # an unhashable argument: no caching
            key, entry = None, None
        if entry is None:
            entry = self._plan(func, args, kwargs)
            if key is not None:
                self._cache[key] = entry
        if entry is _REAL:
            return self._real(func, args, kwargs)
        self.shape_ops += 1
        template, outputs = entry
        device = next((t.device for t in flat if isinstance(t, torch.Tensor)), None) or kwargs.get("device") or "cpu"
        made = []
        for kind, spec in outputs:
            if kind == "alias":
                made.append(flat[spec])
            elif kind == "new":
                size, stride, dtype = spec
                made.append(torch.empty_strided(size, stride, dtype=dtype, device=device))
            else:
                made.append(spec)
        return _rebuild(template, made)[0]

    def _plan(self, func, args, kwargs):
        """_REAL, or (result template, [("alias", input index) | ("new", (size, stride, dtype)) | ("value", v)])."""
        meta_args, meta_kwargs = _to_meta_tree((args, kwargs))
        try:
            meta_out = func(*meta_args, **meta_kwargs)
        except Exception:  # data-dependent shapes (nonzero, unique, .item()): run it
            return _REAL
        flat_out = leaves(meta_out)
        if not any(isinstance(t, torch.Tensor) and t.is_floating_point() for t in flat_out):
            return _REAL  # integer/bool results feed index arithmetic
        meta_in = leaves((meta_args, meta_kwargs))
        outputs = []
        for t in flat_out:
            if not isinstance(t, torch.Tensor):
                outputs.append(("value", t))
                continue
            alias = next((i for i, m in enumerate(meta_in) if m is t), None)
            if alias is not None:  # in-place or out=: the op returns its (real) argument
                outputs.append(("alias", alias))
            else:
                outputs.append(("new", (tuple(t.shape), t.stride(), t.dtype)))
        if func is torch.ops.aten.native_batch_norm.default and not args[5]:
            # in eval mode the CPU kernel returns empty statistics where the meta kernel has C-sized ones
            outputs[1:3] = [("new", ((0,), (1,), spec[2])) for _, spec in outputs[1:3]]
        return meta_out, outputs

    def _real(self, func, args, kwargs):
        self.real_ops += 1
        return func(*args, **kwargs)


def _to_meta_tree(obj):
    return _rebuild(obj, [_to_meta(x) for x in leaves(obj)])[0]


_ALWAYS_REAL = {
    torch.ops.aten.detach.default,
    torch.ops.aten.alias.default,
    torch.ops.aten.lift_fresh.default,
    torch.ops.aten._local_scalar_dense.default,
}
