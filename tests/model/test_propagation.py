"""Propagation schemes choose the sites the paper (and our extensions) say they choose."""

import numpy as np
import pytest
import torch

from qgn.propagation import Scheme, normalised_entropy, select_sites


def _coords(h=4, w=4):
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([torch.zeros(h * w, dtype=torch.int64), yy.flatten(), xx.flatten()], 1)


def test_all_gtc_pc():
    torch.manual_seed(0)
    coords = _coords()
    logits = torch.randn(16, 4)
    assert select_sites(Scheme("all"), 3, coords, logits).all()
    gt = torch.rand(1, 4, 4) > 0.5
    assert torch.equal(select_sites(Scheme("gtc"), 3, coords, logits, gt), gt.flatten())
    assert torch.equal(select_sites(Scheme("pc"), 3, coords, logits), logits.argmax(1) == 0)
    p0 = torch.softmax(logits, 1)[:, 0]
    assert torch.equal(select_sites(Scheme("pc", tau=0.3), 3, coords, logits), p0 >= 0.3)


def test_gtc_without_ground_truth_is_a_clear_error():
    with pytest.raises(ValueError, match="ground truth"):
        select_sites(Scheme("gtc"), 3, _coords(), torch.randn(16, 3))


def test_depth_limit_stops_propagation():
    sel = select_sites(Scheme("all", depth=3), 3, _coords(), torch.randn(16, 3))
    assert not sel.any()
    assert select_sites(Scheme("all", depth=3), 4, _coords(), torch.randn(16, 3)).all()


def test_uncertainty_is_pc_plus_entropy_and_monotone():
    torch.manual_seed(1)
    logits = torch.randn(16, 5) * 2
    coords = _coords()
    pc = select_sites(Scheme("pc"), 2, coords, logits)
    prev = None
    for thr in [1.0, 0.8, 0.5, 0.2, 0.0]:
        sel = select_sites(Scheme("uncertainty", entropy=thr), 2, coords, logits)
        assert (sel | ~pc).all()  # superset of PC
        if prev is not None:
            assert (sel | ~prev).all()  # lower threshold → more sites
        prev = sel
    assert torch.equal(select_sites(Scheme("uncertainty", entropy=1.0), 2, coords, logits), pc)


def test_normalised_entropy_range():
    assert normalised_entropy(torch.zeros(1, 7)).item() == pytest.approx(1.0)
    assert normalised_entropy(torch.tensor([[100.0, 0, 0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_priority_classes_and_user_masks_add_sites():
    coords = _coords()
    logits = torch.zeros(16, 4)
    logits[:, 1] = 5  # every site: class 0 (code 1), not composite
    logits[3, 3] = 10  # site 3: class 2
    assert not select_sites(Scheme("pc"), 2, coords, logits).any()
    prio = select_sites(Scheme("pc", priority_classes=(2,)), 2, coords, logits)
    assert prio.nonzero().flatten().tolist() == [3]
    mask = np.zeros((1, 4, 4), bool)
    mask[0, 1, 1] = True
    sel = select_sites(Scheme("mask", site_masks={2: mask}), 2, coords, logits)
    assert sel.nonzero().flatten().tolist() == [5]
    assert not select_sites(Scheme("mask", site_masks={3: mask}), 2, coords, logits).any()


def test_bad_schemes_are_rejected():
    for kwargs in [dict(name="nope"), dict(tau=1.5), dict(entropy=-0.1), dict(depth=-1), dict(name="mask")]:
        with pytest.raises(ValueError):
            Scheme(**kwargs)
