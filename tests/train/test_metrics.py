import numpy as np
import pytest

from qgn.metrics import ConfusionMatrix


def test_against_hand_computed_values():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])
    cm = ConfusionMatrix(3).add(gt, pred)
    assert cm.accuracy() == pytest.approx(5 / 7)
    # class 0: tp 1, fp 1 (gt 2 → 0), fn 1 → 1/3; class 1: tp 3, fp 1, fn 0 → 3/4; class 2: tp 1, fn 1 → 1/2
    assert np.allclose(cm.iou(), [1 / 3, 3 / 4, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)


def test_absent_classes_do_not_count_and_errors():
    cm = ConfusionMatrix(4).add(np.array([0, 1]), np.array([0, 1]))
    assert cm.miou() == 1.0
    with pytest.raises(ValueError):
        cm.add(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError):
        cm.add(np.array([0]), np.array([9]))
