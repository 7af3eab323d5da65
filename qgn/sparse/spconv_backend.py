"""spconv 2.x submanifold convolution, called through spconv's functional ops.

We bypass `spconv.pytorch.SubMConv2d` and `SparseConvTensor`: the rulebook is computed with
`spconv.pytorch.ops` once per (sites, kernel size, algorithm) and cached on `ActiveSites` (our
equivalent of spconv's `indice_key`), and our own (Cout, kh, kw, Cin) weight - spconv's native
layout - goes straight into spconv's autograd functions without a copy.

Algorithms: on CPU only `ConvAlgo.Native` works (implicit GEMM asks for a CUDA stream); on CUDA
spconv's default `ConvAlgo.MaskImplicitGemm` is used. Bias and 1x1 kernels are handled outside
(see backend.py / nn.py; spconv's 1x1 fast path reinterprets weight memory, spconv issue #450).

spconv is imported when `SpconvBackend` is constructed, never at `import qgn.sparse`.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import torch

from qgn.sparse.backend_base import SubmConvBackend
from qgn.sparse.sites import ActiveSites


def import_spconv() -> ModuleType:
    """Import `spconv.pytorch` (takes seconds), hiding its deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import spconv.pytorch as spconv_pytorch
        # loaded for their side effect: they make `spconv_pytorch.functional` and `.ops` available
        import spconv.pytorch.functional
        import spconv.pytorch.ops  # noqa: F401 - the name `spconv` bound here is not used
    return spconv_pytorch


class SpconvBackend(SubmConvBackend):
    """Submanifold convolution with spconv (Native on CPU, MaskImplicitGemm on CUDA)."""

    name = "spconv"

    def __init__(self) -> None:
        self._spconv: ModuleType = import_spconv()
        from spconv.tools import CUDAKernelTimer

        self._no_timer: Any = CUDAKernelTimer(False)

    def prepare_rulebook(self, sites: ActiveSites, kernel_size: int) -> None:
        if sites.device.type == "cuda":
            self._cached_implicit_gemm_rulebook(sites, kernel_size)
        else:
            self._cached_native_rulebook(sites, kernel_size)

    def subm_conv_kxk(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        feats = feats.contiguous()
        weight = weight.contiguous()
        if feats.is_cuda:
            return self._implicit_gemm_conv(feats, weight, sites)
        return self._native_conv(feats, weight, sites)

    # ------------------------------------------------------------------------------ Native (CPU)

    def _native_conv(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        pairs, pair_counts = self._cached_native_rulebook(sites, int(weight.shape[1]))
        algo = self._spconv.ConvAlgo.Native
        return self._spconv.functional.indice_subm_conv(
            feats, weight, pairs, pair_counts, sites.num_sites, algo, self._no_timer
        )

    def _cached_native_rulebook(self, sites: ActiveSites, kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("spconv_native_rulebook", kernel_size)
        return sites.cached(key, lambda: self._native_rulebook(sites, kernel_size))

    def _native_rulebook(self, sites: ActiveSites, kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(pairs (2, k*k, N) int32, pair_counts (k*k,) int32) from `ops.get_indice_pairs`."""
        _, pairs, pair_counts = self._spconv.ops.get_indice_pairs(
            spconv_indices(sites),
            sites.batch_size,
            list(sites.spatial_shape),
            self._spconv.ConvAlgo.Native,
            *_conv_geometry(kernel_size),
            subm=True,
            transpose=False,
        )
        return pairs, pair_counts

    # ----------------------------------------------------------------------- implicit GEMM (CUDA)

    def _implicit_gemm_conv(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        rulebook = self._cached_implicit_gemm_rulebook(sites, int(weight.shape[1]))
        _, _, pair_fwd, pair_bwd, pair_mask_fwd, pair_mask_bwd, argsort_fwd, argsort_bwd, masks = rulebook
        is_train = torch.is_grad_enabled() and (feats.requires_grad or weight.requires_grad)
        # autograd.Function.apply takes positional arguments only; order as in spconv's conv.py.
        return self._spconv.functional.implicit_gemm(
            feats,
            weight,
            pair_fwd,
            pair_bwd,
            pair_mask_fwd,
            pair_mask_bwd,
            argsort_fwd,
            argsort_bwd,
            sites.num_sites,
            masks,
            is_train,
            True,  # is_subm
            self._no_timer,
            None,  # fp32_accum: spconv's default
            None,  # bias: added by the caller
        )

    def _cached_implicit_gemm_rulebook(self, sites: ActiveSites, kernel_size: int) -> tuple[Any, ...]:
        key = ("spconv_implicit_gemm_rulebook", kernel_size)
        return sites.cached(key, lambda: self._implicit_gemm_rulebook(sites, kernel_size))

    def _implicit_gemm_rulebook(self, sites: ActiveSites, kernel_size: int) -> tuple[Any, ...]:
        """The 9-tuple of `ops.get_indice_pairs_implicit_gemm`, built for training (has backward pairs)."""
        return self._spconv.ops.get_indice_pairs_implicit_gemm(
            spconv_indices(sites),
            sites.batch_size,
            list(sites.spatial_shape),
            self._spconv.ConvAlgo.MaskImplicitGemm,
            *_conv_geometry(kernel_size),
            subm=True,
            transpose=False,
            is_train=True,
        )


def spconv_indices(sites: ActiveSites) -> torch.Tensor:
    """(N, 3) int32 contiguous (b, y, x): the index layout of spconv's SparseConvTensor. Cached."""
    return sites.cached("spconv_indices", lambda: sites.coords.to(torch.int32).contiguous())


def _conv_geometry(kernel_size: int) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """(ksize, stride, padding, dilation, out_padding) of a 2-D submanifold conv with odd `kernel_size`."""
    radius = kernel_size // 2
    return [kernel_size] * 2, [1, 1], [radius] * 2, [1, 1], [0, 0]
