"""The ideal decoder's bytes: a hand count on a toy decoder, and a lower bound of what we measure."""
from __future__ import annotations

import pytest
import torch

from qgn.bench.ideal import ideal_decoder_bytes, kept_channels
from qgn.bench.memory import measure_decoder_pass
from qgn.model.decoder import QGNDecoder
from qgn.propagation import Scheme

CPU = torch.device("cpu")


def test_kept_channels_by_hand() -> None:
    # width 0.125: channels C5..C0 = 64, 32, 16, 8, 8, 8; units (2, 1, 1, 1, 1); k = 3 → 4 outputs
    decoder = QGNDecoder((8, 8, 16, 32, 64), num_classes=3, width=0.125, units=(2, 1, 1, 1, 1))
    assert decoder.channels == (64, 32, 16, 8, 8, 8)
    channels = kept_channels(decoder)
    assert channels[5] == 2 * 64 + 4  # reduction output, its ReLU, logits
    # level 4: input 64; unit 64→32 keeps 4×32 + 32 (shortcut); unit 32→32 keeps 4×32; logits 4
    assert channels[4] == 64 + (4 * 32 + 32) + 4 * 32 + 4
    assert channels[3] == 32 + (4 * 16 + 16) + 4  # 32 → 16, with shortcut
    assert channels[2] == 16 + (4 * 8 + 8) + 4
    assert channels[1] == channels[0] == 8 + 4 * 8 + 4  # 8 → 8, identity shortcut


def test_ideal_bytes_by_hand() -> None:
    decoder = QGNDecoder((8, 8, 16, 32, 64), num_classes=3, width=0.125, units=(2, 1, 1, 1, 1))
    sites = {5: 6, 4: 8, 0: 12}
    expected = 4 * (6 * 132 + 8 * 356 + 12 * 44)
    assert ideal_decoder_bytes(decoder, sites) == expected
    assert ideal_decoder_bytes(decoder, sites, element_size=2) == expected // 2
    with pytest.raises(ValueError, match="not decoder levels"):
        ideal_decoder_bytes(decoder, {6: 1})


def test_measured_decoder_memory_is_at_least_the_ideal() -> None:
    torch.manual_seed(0)
    decoder = QGNDecoder((16, 16, 32, 64, 128), num_classes=5, width=0.25, units=(1, 1, 1, 1, 1))
    h, w = 64, 96
    feats = [torch.randn(1, c, h // s, w // s, requires_grad=True)
             for c, s in zip((16, 16, 32, 64, 128), (2, 4, 8, 16, 32))]
    image = torch.randn(1, 3, h, w)
    sites = {}

    def run():
        out = decoder(feats, image, Scheme("all"))
        sites.update({o.level: o.num_sites for o in out})
        return out

    measured = measure_decoder_pass(run, decoder, feats, CPU).pass_memory.forward_bytes
    assert sites == {l: (h >> l) * (w >> l) for l in range(6)}
    ideal = ideal_decoder_bytes(decoder, sites)
    assert ideal <= measured < 3 * ideal
