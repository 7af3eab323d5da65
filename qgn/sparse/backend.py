"""Submanifold-convolution backends: the registry of the implementations of
`qgn.sparse.backend_base.SubmConvBackend` (torch_backend.py, spconv_backend.py), and the choice
of one.

Choosing a backend (`get_backend(None)`), first match wins:
  1. `set_default_backend(name)` called in this process,
  2. the environment variable QGN_SPARSE_BACKEND = "torch" | "spconv" | "auto",
  3. auto: without CUDA "torch" (faster than spconv's CPU path since its gather-GEMM and dense
     algorithms, torch_backend.py; and no 5-7 s spconv import);
     with CUDA "spconv" if it imports and passes a self-check (selfcheck.py), else "torch" with
     one `SparseBackendWarning` saying why. The choice is made once per process.
A backend named explicitly (argument, default or environment) is used without a self-check.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

from qgn.sparse.backend_base import SubmConvBackend

BACKEND_ENV_VAR = "QGN_SPARSE_BACKEND"
AUTO = "auto"


class SparseBackendWarning(UserWarning):
    """Issued once when auto-selection falls back to the pure-PyTorch backend."""


# ------------------------------------------------------------------------------------ registry


def _make_torch_backend() -> SubmConvBackend:
    from qgn.sparse.torch_backend import TorchBackend

    return TorchBackend()


def _make_spconv_backend() -> SubmConvBackend:
    from qgn.sparse.spconv_backend import SpconvBackend  # imports spconv (slow) on construction

    return SpconvBackend()


_FACTORIES: dict[str, Callable[[], SubmConvBackend]] = {
    "torch": _make_torch_backend,
    "spconv": _make_spconv_backend,
}
_INSTANCES: dict[str, SubmConvBackend] = {}
_default_name: str | None = None
_auto_name: str | None = None


def register_backend(name: str, factory: Callable[[], SubmConvBackend]) -> None:
    """Make a backend available under `name`; `factory` is called at most once, on first use."""
    _FACTORIES[name] = factory
    _INSTANCES.pop(name, None)


def backend_names() -> list[str]:
    """Names of all registered backends, whether or not they can be constructed here."""
    return list(_FACTORIES)


def available_backends() -> list[str]:
    """Registered backends that can be constructed in this process (imports them; no self-check)."""
    names = []
    for name in _FACTORIES:
        try:
            _instance(name)
        except Exception:  # any import/initialisation failure means "not available"
            continue
        names.append(name)
    return names


def set_default_backend(name: str | None) -> None:
    """Set the process-wide backend used when none is named; None restores env/auto selection."""
    global _default_name
    if name is not None and name != AUTO and name not in _FACTORIES:
        raise ValueError(f"unknown sparse backend {name!r}; registered: {backend_names()}")
    _default_name = name


def get_backend(name: str | None = None) -> SubmConvBackend:
    """The backend called `name`, or the process default (see the module docstring) if None."""
    if name is None:
        name = _default_name if _default_name is not None else os.environ.get(BACKEND_ENV_VAR, "").strip() or AUTO
    if name == AUTO:
        name = _auto_selected_name()
    if name not in _FACTORIES:
        raise ValueError(f"unknown sparse backend {name!r}; registered: {backend_names()}")
    return _instance(name)


def _instance(name: str) -> SubmConvBackend:
    if name not in _INSTANCES:
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def _auto_selected_name() -> str:
    """On a CUDA machine 'spconv' if it imports and passes the self-check, else 'torch' (warns
    once). Without CUDA 'torch': measured faster than spconv's CPU path (Native) at the decoder's
    shapes (`qgn bench --only sparse_conv`) and it spares the 5-7 s spconv import. Cached."""
    global _auto_name
    if _auto_name is None and not _cuda_available():
        _auto_name = "torch"
    if _auto_name is None:
        reason = _reason_spconv_unusable()
        if reason is None:
            _auto_name = "spconv"
        else:
            warnings.warn(
                f"qgn.sparse: using the pure-PyTorch sparse-convolution backend because {reason}. "
                f"Set {BACKEND_ENV_VAR}=torch to choose it explicitly and silence this warning.",
                SparseBackendWarning,
                stacklevel=3,
            )
            _auto_name = "torch"
    return _auto_name


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _reason_spconv_unusable() -> str | None:
    """None if spconv can be used, else a short human-readable reason. The self-check gets the
    backends it compares from this registry by name: the one mutual dependency of qgn's modules,
    by design (choosing a backend includes proving it; selfcheck.py), imported here on first use."""
    from qgn.sparse.selfcheck import run_self_check

    try:
        _instance("spconv")
    except Exception as error:  # report whatever went wrong
        return f"spconv cannot be imported ({type(error).__name__}: {error})"
    return run_self_check("spconv")
