"""The ideal sparse decoder's activation memory: active sites × channels × bytes, per kept tensor.

An ideal implementation of the QGN decoder keeps, after a training forward, exactly the tensors a
standard backward pass of its layers needs (no recomputation, no fused kernels), each restricted to
the active sites: N_l rows of C channels at level l. Per active site of level l it keeps

    level 5 (root)   the reduction's output (BatchNorm input)        C5
                     its ReLU output                                 C5
                     the logits Q̂5 (an output)                       k + 1
    level l < 5      upsampled parent + skip (input of Trans_l)      C_in
                     per residual unit a → b: conv1 output (BN input), ReLU output (conv2 input),
                     conv2 output (BN input), block output (ReLU output)                  4 b
                     and, where a ≠ b, the 1×1 shortcut's output (BN input)                 b
                     the logits Q̂l                                   k + 1

and nothing else: no coordinates, no neighbour lists, no dense index grids, no per-channel
statistics. ``ideal_decoder_bytes`` sums that over the levels for given active-site counts; the
measured ``forward_bytes`` of our decoder divided by it is our implementation's overhead.
"""
from __future__ import annotations

from qgn.model.decoder import DecoderLevel, QGNDecoder
from qgn.quadtree import ROOT_LEVEL


def level_kept_channels(block: DecoderLevel) -> int:
    """Channels per active site that level ``block`` keeps for backward (see the module docstring)."""
    total = block.in_ch + block.num_outputs
    for unit in block.units:
        total += 4 * unit.out_ch + (unit.out_ch if unit.shortcut is not None else 0)
    return total


def kept_channels(decoder: QGNDecoder) -> dict[int, int]:
    """Level → channels per active site kept for backward, for every level 5 … 0."""
    channels = {ROOT_LEVEL: 2 * decoder.channels[0] + decoder.num_outputs}
    for name, block in decoder.levels.items():
        channels[int(name)] = level_kept_channels(block)
    return channels


def ideal_decoder_bytes(decoder: QGNDecoder, active_sites: dict[int, int], element_size: int = 4) -> int:
    """Σ_l active_sites[l] × kept_channels[l] × element_size (bytes).

    active_sites: level → number of active sites at that level (levels not computed: absent or 0).
    """
    channels = kept_channels(decoder)
    unknown = set(active_sites) - set(channels)
    if unknown:
        raise ValueError(f"levels {sorted(unknown)} are not decoder levels (0 … {ROOT_LEVEL})")
    return sum(n * channels[level] for level, n in active_sites.items()) * element_size
