"""Pure-PyTorch submanifold convolution: gather -> matmul -> scatter-add, one kernel tap at a time.

Runs on any device PyTorch runs on. Per tap (i, j) with neighbour pairs (in_idx, out_idx):
    out[out_idx] += feats[in_idx] @ W_ij^T          W_ij = weight[:, i, j, :]  (Cout, Cin)
The centre tap pairs every site with itself and is a plain matmul. Processing taps one by one
keeps the temporary at (P_ij, C) instead of an (N, k*k*C) im2col matrix, which was 7x slower.

The backward pass is written out (an autograd.Function) so that only `feats` and the weight are
kept for backward, not the k*k gathered copies that autograd through the loop would store.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from qgn.sparse.backend import SubmConvBackend
from qgn.sparse.rulebook import NeighbourRulebook, neighbour_rulebook
from qgn.sparse.sites import ActiveSites


class TorchBackend(SubmConvBackend):
    """Submanifold convolution from standard PyTorch ops; rulebook cached on the sites."""

    name = "torch"

    def prepare_rulebook(self, sites: ActiveSites, kernel_size: int) -> None:
        neighbour_rulebook(sites, kernel_size)

    def subm_conv_kxk(self, feats: torch.Tensor, weight: torch.Tensor, sites: ActiveSites) -> torch.Tensor:
        rulebook = neighbour_rulebook(sites, int(weight.shape[1]))
        return _RulebookConv.apply(feats, weight, rulebook)


def weight_to_taps(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, k, k, Cin) weight -> (k*k, Cin, Cout) contiguous, tap i*k + j = weight[:, i, j, :]^T."""
    out_channels, kernel_size, _, in_channels = weight.shape
    return weight.permute(1, 2, 3, 0).reshape(kernel_size * kernel_size, in_channels, out_channels).contiguous()


def taps_to_weight(taps: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Inverse of `weight_to_taps`: (k*k, Cin, Cout) -> (Cout, k, k, Cin) contiguous."""
    _, in_channels, out_channels = taps.shape
    return taps.reshape(kernel_size, kernel_size, in_channels, out_channels).permute(3, 0, 1, 2).contiguous()


def rulebook_conv_forward(feats: torch.Tensor, taps: torch.Tensor, rulebook: NeighbourRulebook) -> torch.Tensor:
    """(N, Cin) features, (k*k, Cin, Cout) taps -> (N, Cout) output of the submanifold conv."""
    centre = rulebook.centre_offset
    out = feats @ taps[centre]
    for tap, (in_index, out_index) in enumerate(zip(rulebook.in_index, rulebook.out_index, strict=True)):
        if tap == centre or in_index.numel() == 0:
            continue
        out.index_add_(0, out_index, feats.index_select(0, in_index) @ taps[tap])
    return out


class _RulebookConv(torch.autograd.Function):
    """Autograd wrapper of `rulebook_conv_forward` with weight in (Cout, k, k, Cin) layout."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, feats: torch.Tensor, weight: torch.Tensor, rulebook: NeighbourRulebook
    ) -> torch.Tensor:
        taps = weight_to_taps(weight)
        # save the weight (alive anyway as a parameter), not its tap-major copy: backward rebuilds
        # the taps, so training holds no second copy of every 3x3 weight
        ctx.save_for_backward(feats, weight)
        ctx.rulebook = rulebook  # type: ignore[attr-defined]
        with torch.autocast(feats.device.type, enabled=False):  # inputs already share one dtype
            return rulebook_conv_forward(feats, taps, rulebook)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        feats, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        taps = weight_to_taps(weight)
        rulebook: NeighbourRulebook = ctx.rulebook  # type: ignore[attr-defined]
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]  # type: ignore[attr-defined]
        grad_out = grad_out.contiguous()
        centre = rulebook.centre_offset
        grad_feats = grad_out @ taps[centre].t() if need_feats else None
        grad_taps = torch.zeros_like(taps) if need_weight else None
        if grad_taps is not None:
            grad_taps[centre] = feats.t() @ grad_out
        for tap, (in_index, out_index) in enumerate(zip(rulebook.in_index, rulebook.out_index, strict=True)):
            if tap == centre or in_index.numel() == 0:
                continue
            grad_at_out = grad_out.index_select(0, out_index)  # (P, Cout)
            if grad_feats is not None:
                grad_feats.index_add_(0, in_index, grad_at_out @ taps[tap].t())
            if grad_taps is not None:
                grad_taps[tap] = feats.index_select(0, in_index).t() @ grad_at_out
        grad_weight = taps_to_weight(grad_taps, rulebook.kernel_size) if grad_taps is not None else None
        return grad_feats, grad_weight, None
