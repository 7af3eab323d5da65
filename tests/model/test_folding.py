"""BatchNorm folded into the layer before it: the same results as the two layers, never stale."""
from __future__ import annotations

import copy

import pytest
import torch

from qgn.model.decoder import QGNDecoder
from qgn.model.folding import fold_batch_norm, folded
from qgn.propagation import Scheme


def _bn(channels: int, seed: int = 0) -> torch.nn.BatchNorm1d:
    torch.manual_seed(seed)
    bn = torch.nn.BatchNorm1d(channels)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.2, 3)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    return bn.eval()


@pytest.mark.parametrize("with_bias", [False, True])
def test_folded_conv_equals_conv_then_batch_norm(with_bias: bool) -> None:
    bn = _bn(6)
    weight = torch.randn(6, 4, 3, 3)
    bias = torch.randn(6) if with_bias else None
    x = torch.randn(2, 4, 9, 11)
    reference = torch.nn.functional.batch_norm(torch.nn.functional.conv2d(x, weight, bias, padding=1),
                                               bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    w, b = fold_batch_norm(weight, bias, bn)
    torch.testing.assert_close(torch.nn.functional.conv2d(x, w, b, padding=1), reference, rtol=1e-5, atol=1e-5)


def test_folded_linear_equals_linear_then_batch_norm_without_affine() -> None:
    bn = torch.nn.BatchNorm1d(5, affine=False).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.2, 3)
    weight, x = torch.randn(5, 7), torch.randn(10, 7)
    w, b = fold_batch_norm(weight, None, bn)
    torch.testing.assert_close(x @ w.t() + b, bn(x @ weight.t()), rtol=1e-5, atol=1e-5)


def test_fold_is_cached_and_redone_when_a_source_changes() -> None:
    bn, weight = _bn(3), torch.nn.Parameter(torch.randn(3, 2))
    first = folded(weight, None, bn)
    assert folded(weight, None, bn)[0] is first[0]  # cached

    optimiser = torch.optim.SGD([weight], lr=0.5)
    weight.grad = torch.ones_like(weight)
    optimiser.step()  # an in-place update of the weight
    after_step = folded(weight, None, bn)
    torch.testing.assert_close(after_step[0], fold_batch_norm(weight, None, bn)[0])
    assert not torch.equal(after_step[0], first[0])

    bn.load_state_dict(_bn(3, seed=1).state_dict())  # new statistics, copied in place
    torch.testing.assert_close(folded(weight, None, bn)[1], fold_batch_norm(weight, None, bn)[1])

    bn.train()  # running statistics updated in place by the kernel: num_batches_tracked moves
    bn(torch.randn(8, 3) * 4 + 2)
    bn.eval()
    torch.testing.assert_close(folded(weight, None, bn)[1], fold_batch_norm(weight, None, bn)[1])


def test_a_deep_copy_folds_its_own_weights() -> None:
    bn, weight = _bn(3), torch.randn(3, 2)
    folded(weight, None, bn)
    other_bn, other_weight = copy.deepcopy(bn), weight * 2
    torch.testing.assert_close(folded(other_weight, None, other_bn)[0], fold_batch_norm(other_weight, None, bn)[0])


def test_decoder_all_route_follows_a_fine_tune_of_its_weights() -> None:
    """The dense All route folds BatchNorm; after the weights and statistics change (as a
    fine-tune changes them), its logits equal a fresh copy's (which folds anew) and the sparse
    route's (grad on: conv + BatchNorm as layers)."""
    torch.manual_seed(0)
    channels = (16, 16, 32, 64, 128)
    decoder = QGNDecoder(channels, num_classes=4, width=0.25, units=(1, 2, 1, 1, 1)).eval()
    feats = [torch.randn(1, c, 64 // s, 96 // s) for c, s in zip(channels, (2, 4, 8, 16, 32))]
    image = torch.randn(1, 3, 64, 96)
    for round_ in range(2):
        with torch.no_grad():
            dense_route = decoder(feats, image, Scheme("all"))
            fresh = copy.deepcopy(decoder)(feats, image, Scheme("all"))
        sparse_route = decoder(feats, image, Scheme("all"))
        for d, f, s in zip(dense_route, fresh, sparse_route):
            torch.testing.assert_close(d.logits, f.logits, rtol=0, atol=0)
            scale = float(s.logits.detach().abs().max())
            torch.testing.assert_close(d.logits, s.logits.detach(), rtol=1e-4, atol=1e-5 * scale)
        decoder.train()
        for m in decoder.modules():
            if isinstance(m, torch.nn.BatchNorm1d):  # SparseBatchNorm is one
                torch.nn.BatchNorm1d.forward(m, torch.randn(32, m.num_features) * 3 + 1)
        with torch.no_grad():
            for p in decoder.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        decoder.eval()


def test_nothing_derived_under_shape_only_execution_is_kept() -> None:
    """The memory benchmarks run passes under ShapeOnlyMode (no arithmetic): a fold or taps made
    there hold no values, so a later real run must not find them remembered."""
    from qgn.bench.shape_only import ShapeOnlyMode
    from qgn.sparse import torch_backend

    torch.manual_seed(0)
    channels = (16, 16, 32, 64, 128)
    decoder = QGNDecoder(channels, num_classes=4, width=0.25, units=(1, 2, 1, 1, 1)).eval()
    feats = [torch.randn(1, c, 64 // s, 96 // s) for c, s in zip(channels, (2, 4, 8, 16, 32))]
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = {name: copy.deepcopy(decoder)(feats, image, Scheme(name)) for name in ("all", "pc")}
    torch_backend._taps_cache.clear()
    for m in decoder.modules():
        m.__dict__.pop("_qgn_folded", None)
    with ShapeOnlyMode(), torch.no_grad():
        for name in ("all", "pc"):
            decoder(feats, image, Scheme(name))
    assert not torch_backend._taps_cache and not decoder._full_parts
    assert not any("_qgn_folded" in m.__dict__ for m in decoder.modules())
    with torch.no_grad():
        for name in ("all", "pc"):
            for got, expected in zip(decoder(feats, image, Scheme(name)), want[name]):
                torch.testing.assert_close(got.logits, expected.logits)
