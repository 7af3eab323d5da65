"""measure_pass, and encoder + decoder measured apart and composed, against the whole network."""
from __future__ import annotations

import pytest
import torch

from qgn.bench.memory import compose, measure_decoder_pass, measure_encoder_pass, measure_pass
from qgn.bench.site_masks import gtc_site_masks
from qgn.classes import ClassSet
from qgn.data.synthetic import make_scene
from qgn.model.dilated import DilatedBaseline
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme

CPU = torch.device("cpu")
H, W = 96, 128


@pytest.fixture(scope="module")
def model() -> QGN:
    torch.manual_seed(0)
    return QGN(QGNConfig.from_preset("tiny", ClassSet(tuple("abcde"))))


def _leaves(feats):
    return [f.detach().requires_grad_(True) for f in feats]


@pytest.mark.parametrize("shape_only", [False, True])
@pytest.mark.parametrize("scheme_name", ["all", "gtc"])
def test_composed_parts_equal_the_whole_qgn(model: QGN, shape_only: bool, scheme_name: str) -> None:
    image = torch.randn(1, 3, H, W)
    gt = gtc_site_masks(make_scene(3, H, W)[1], 8, 255) if scheme_name == "gtc" else None
    scheme = Scheme(scheme_name)
    whole = measure_pass(lambda: model(image, scheme, gt), model, CPU, shape_only)
    encoder = measure_encoder_pass(model.encoder, image, range(5), CPU, shape_only)
    with torch.no_grad():
        feats = _leaves(model.encoder(image))
    decoder = measure_decoder_pass(lambda: model.decoder(feats, image, scheme, gt), model.decoder, feats, CPU, shape_only)
    assert compose(encoder, decoder) == whole
    assert all(p.grad is None for p in model.parameters()) and all(f.grad is None for f in feats)


def test_composed_parts_equal_the_whole_dilated_baseline() -> None:
    torch.manual_seed(0)
    dil = DilatedBaseline("tiny", 5)
    image = torch.randn(1, 3, H, W)
    whole = measure_pass(lambda: dil(image), dil, CPU)
    encoder = measure_encoder_pass(dil.encoder, image, [4], CPU)
    with torch.no_grad():
        feats = _leaves(dil.encoder(image))
    decoder = measure_decoder_pass(lambda: dil.decoder_forward(feats, (H, W)), dil, feats, CPU)
    assert compose(encoder, decoder) == whole
    # the Dil decoder keeps nothing for backward: what is alive is its upsampled output (Table 6's 0.15 GB)
    assert decoder.pass_memory.forward_bytes == 5 * H * W * 4
    assert decoder.pass_memory.saved_bytes == 0


def test_measure_pass_by_hand_and_restores_the_mode() -> None:
    lin = torch.nn.Linear(8, 16, bias=False)
    lin.eval()
    x = torch.randn(100, 8, requires_grad=True)  # an input: never counted
    m = measure_pass(lambda: torch.relu(lin(x)), lin, CPU)
    # linear saves x (an input) and its weight (a parameter), relu saves its output; the linear
    # output is freed once relu has read it, so after the forward only relu's output is alive
    assert m.forward_bytes == 100 * 16 * 4
    assert m.saved_bytes == 100 * 16 * 4
    assert m.infer_peak_bytes == 2 * 100 * 16 * 4  # linear output and relu output, briefly together
    assert m.fwd_bwd_peak_bytes >= m.forward_bytes
    assert not lin.training and lin.weight.grad is None
