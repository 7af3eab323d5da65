"""Submanifold-convolution backends: the interface every backend implements, and the registry.

Weight layout (shared by all backends, so checkpoints are backend-independent): (Cout, kh, kw, Cin),
spconv's native layout. The equivalent `torch.nn.functional.conv2d` weight is
`weight.permute(0, 3, 1, 2)`.

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
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from qgn.sparse.rulebook import check_kernel_size
from qgn.sparse.sites import ActiveSites

BACKEND_ENV_VAR = "QGN_SPARSE_BACKEND"
AUTO = "auto"


class SparseBackendWarning(UserWarning):
    """Issued once when auto-selection falls back to the pure-PyTorch backend."""


class SubmConvBackend(ABC):
    """Computes a k x k submanifold convolution (stride 1, 'same' padding, no bias) over a site set."""

    name: str = ""

    def subm_conv(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        """Convolve the features of the active sites; inactive sites count as zeros.

        Args:
            feats: (N, Cin) float, one row per site of `sites`, same device as `sites`.
            weight: (Cout, k, k, Cin) same dtype and device as `feats`; k odd.
            sites: the N active sites (inputs and outputs).
        Returns:
            (N, Cout) float, differentiable w.r.t. `feats` and `weight`.

        Under `torch.autocast` both inputs are first cast to the autocast dtype (as autocast does
        for conv2d), so backends always see one dtype. 1 x 1 kernels and empty site sets are a
        plain matmul with the centre tap in every backend.
        """
        if torch.is_autocast_enabled(feats.device.type):
            autocast_dtype = torch.get_autocast_dtype(feats.device.type)
            feats, weight = feats.to(autocast_dtype), weight.to(autocast_dtype)
        check_conv_arguments(feats, weight, sites)
        kernel_size = int(weight.shape[1])
        if kernel_size == 1 or sites.num_sites == 0:
            centre = kernel_size // 2
            return feats @ weight[:, centre, centre, :].t()
        return self.subm_conv_kxk(feats, weight, sites)

    @abstractmethod
    def prepare_rulebook(self, sites: ActiveSites, kernel_size: int) -> None:
        """Build and cache this backend's neighbour rulebook of `sites` for a k x k kernel, k >= 3.

        Happens automatically on the first convolution; call it to time or pre-compute that step.
        """

    @abstractmethod
    def subm_conv_kxk(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        """`subm_conv` for k >= 3 and N >= 1 with checked arguments."""


def check_conv_arguments(feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> None:
    """Raise ValueError if the shapes, dtypes or devices of a `subm_conv` call do not fit."""
    if feats.dim() != 2 or feats.shape[0] != sites.num_sites:
        raise ValueError(f"feats must be ({sites.num_sites}, Cin), got {tuple(feats.shape)}")
    if weight.dim() != 4 or weight.shape[1] != weight.shape[2] or weight.shape[3] != feats.shape[1]:
        raise ValueError(f"weight must be (Cout, k, k, {feats.shape[1]}), got {tuple(weight.shape)}")
    check_kernel_size(int(weight.shape[1]))
    if not feats.is_floating_point() or feats.dtype != weight.dtype:
        raise ValueError(f"feats and weight must share a float dtype, got {feats.dtype} and {weight.dtype}")
    if feats.device != weight.device or feats.device != sites.device:
        raise ValueError(f"devices differ: feats {feats.device}, weight {weight.device}, sites {sites.device}")


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
    """None if spconv can be used, else a short human-readable reason."""
    from qgn.sparse import selfcheck

    try:
        _instance("spconv")
    except Exception as error:  # report whatever went wrong
        return f"spconv cannot be imported ({type(error).__name__}: {error})"
    return selfcheck.run_self_check("spconv")
