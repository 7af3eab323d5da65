"""Loss targets equal the numpy T-pyramid; the level loss and level weights follow Eqs. 4, 6-8."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qgn.loss import QuadtreeLoss, level_loss, pyramid_targets
from qgn.quadtree import build_tpyramid


@pytest.mark.parametrize("policy", ["class", "wildcard"])
def test_pyramid_targets_equal_numpy_tpyramid(policy):
    rng = np.random.default_rng(0)
    for trial in range(6):
        k = int(rng.integers(1, 5))
        # blocky maps so that upper levels hold uniform cells, plus scattered ignore pixels
        coarse = rng.integers(0, k, (2, 4, 6))
        labels = np.kron(coarse, np.ones((1, 8 << (trial % 3), 8 << (trial % 3)), np.int64))[:, :64, :96]
        labels = np.pad(labels, ((0, 0), (0, 64 - labels.shape[1]), (0, 96 - labels.shape[2])), constant_values=255)
        labels[rng.random(labels.shape) < 0.01] = 255
        got = pyramid_targets(torch.from_numpy(labels), k, 255, 6, policy)
        for b in range(2):
            tp = build_tpyramid(labels[b], k, 255, 6, policy)
            for lvl in range(6):
                assert np.array_equal(got[lvl][b].numpy(), tp.loss_target(lvl)), (trial, b, lvl)


def test_pyramid_targets_reject_bad_labels():
    with pytest.raises(ValueError, match="not classes"):
        pyramid_targets(torch.full((1, 32, 32), 7), 3, 255, 6)
    with pytest.raises(ValueError, match="multiple of 32"):
        pyramid_targets(torch.zeros((1, 30, 32), dtype=torch.int64), 3, 255, 6)


def test_level_loss_is_mean_cross_entropy_over_non_void_sites():
    torch.manual_seed(0)
    target = torch.tensor([[[0, 1], [2, -1]]])
    coords = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    logits = torch.randn(4, 3)
    want = sum(F.cross_entropy(logits[i:i + 1], target[0].flatten()[i:i + 1]) for i in range(3)) / 3
    assert torch.allclose(level_loss(logits, coords, target), want)
    # no counted site: zero, but still differentiable
    z = level_loss(logits[3:].requires_grad_(), coords[3:], target)
    assert float(z.detach()) == 0.0 and z.requires_grad


class _Out:
    def __init__(self, level, coords, logits):
        self.level, self.coords, self.logits = level, coords, logits


def test_fixed_weights_are_powers_of_gamma():
    loss = QuadtreeLoss(6, "fixed", gamma=1.25)
    assert torch.allclose(loss.beta, torch.tensor([1.25 ** l for l in range(6)]))


def test_adaptive_weights_follow_eq8():
    loss = QuadtreeLoss(2, "adaptive", delta=0.9).train()
    coords = torch.tensor([[0, 0, 0]])
    targets = [torch.tensor([[[1]]]), torch.tensor([[[1]]])]
    outs = [_Out(1, coords, torch.tensor([[0.0, 0.0]])), _Out(0, coords, torch.tensor([[0.0, 5.0]]))]
    total, per_level = loss(outs, targets)
    assert total.item() == pytest.approx(per_level[0] + per_level[1])  # beta starts at 1
    assert loss.beta[1].item() == pytest.approx(0.9 + 0.1 * per_level[1])
    assert loss.beta[0].item() == pytest.approx(0.9 + 0.1 * per_level[0])


def test_composite_weight_scales_the_composite_terms_only():
    torch.manual_seed(1)
    coords = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    target = torch.tensor([[[0, 1], [0, 2]]])  # two composite sites, two real-class sites
    logits = torch.randn(4, 3)
    ce = F.cross_entropy(logits, target[0].flatten(), reduction="none")
    w = torch.tensor([3.0, 1.0, 3.0, 1.0])
    want = (w * ce).sum() / w.sum()  # PyTorch's weighted mean
    loss = QuadtreeLoss(1, composite_weight=3.0)
    total, _ = loss([_Out(0, coords, logits)], [target])
    assert torch.allclose(total, want)
    # with class re-weighting on top, the composite keeps its weight
    loss.set_class_weights(torch.tensor([2.0, 1.0]))
    total, _ = loss([_Out(0, coords, logits)], [target])
    w = torch.tensor([3.0, 2.0, 3.0, 1.0])
    assert torch.allclose(total, (w * ce).sum() / w.sum())
    with pytest.raises(ValueError, match="positive"):
        QuadtreeLoss(1, composite_weight=0)


def test_class_weights_load_back_at_the_length_they_were_saved_with():
    weighted = QuadtreeLoss(6, composite_weight=0.5)
    weighted.set_class_weights(torch.tensor([1.0, 2.0, 3.0]))
    fresh = QuadtreeLoss(6, composite_weight=0.5)  # uniform: an empty buffer
    fresh.load_state_dict(weighted.state_dict())
    assert torch.equal(fresh.class_weights, torch.tensor([0.5, 1.0, 2.0, 3.0]))
    fresh.load_state_dict(QuadtreeLoss(6).state_dict())  # and back to uniform
    assert fresh.class_weights.numel() == 0
