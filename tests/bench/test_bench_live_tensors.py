"""LiveTensorTracker counts what is alive, and ShapeOnlyMode allocates exactly what a real run does."""
from __future__ import annotations

import contextlib

import torch

from qgn.bench.live_tensors import LiveTensorTracker
from qgn.bench.shape_only import ShapeOnlyMode, leaves
from qgn.classes import ClassSet
from qgn.model.dilated import DilatedBaseline
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme


def test_tracker_counts_new_storages_once_and_sees_them_die() -> None:
    x = torch.randn(10, 10)  # made outside: never counted
    with LiveTensorTracker() as tracker:
        a = x + 1  # 400 bytes
        view = a[2:]  # a view: no allocation
        a.mul_(2)  # in place: no allocation
        b = torch.relu(a)  # 400 more
        assert tracker.current_bytes == 800
        del a, b
        assert tracker.current_bytes == 400  # the view keeps a's storage alive
        del view
        assert tracker.current_bytes == 0
    assert tracker.peak == 800
    assert tracker.peak_bytes() == 800


def test_peak_can_leave_storages_out_afterwards() -> None:
    with LiveTensorTracker() as tracker:
        keep = torch.zeros(100)  # 400
        temp = torch.zeros(50)  # 200
        del temp
        later = torch.zeros(25)  # 100
        excluded = tracker.serials_of([keep])
    assert tracker.peak == 600
    assert tracker.peak_bytes(excluding=excluded) == 200  # without `keep`: the 200-byte temporary
    assert tracker.live_bytes() == 500 and tracker.live_bytes(excluded) == 100
    assert tracker.serial_of(later) is not None and tracker.serial_of(torch.zeros(1)) is None


def test_integer_storages_are_counted_as_index_bytes() -> None:
    with LiveTensorTracker() as tracker:
        idx = torch.arange(10)  # int64: 80 bytes
        mask = idx > 3  # bool: 10 bytes
        feats = torch.zeros(4, 2)  # float: 32 bytes
        assert tracker.live_index_bytes() == 90 and tracker.current_bytes == 122
        del idx, mask
        assert tracker.live_index_bytes() == 0
    assert feats.numel() == 8


def test_leaves_flattens_nested_arguments() -> None:
    t = torch.zeros(1)
    assert leaves(((t, [1, (2, None)]), {"a": 3, "b": [t]})) == [t, 1, 2, None, 3, t]


def _tiny_qgn() -> QGN:
    torch.manual_seed(0)
    return QGN(QGNConfig.from_preset("tiny", ClassSet(tuple("abcde"))))


def _trace(fn, shape_only: bool) -> tuple[int, int, list[int]]:
    """(bytes alive after fn's forward, peak over forward + backward, allocation sizes in order)."""
    mode = ShapeOnlyMode() if shape_only else contextlib.nullcontext()
    with mode, LiveTensorTracker() as tracker:
        out = fn()
        forward = tracker.current_bytes
        loss = sum(o.logits.sum() for o in out) if isinstance(out, list) else out.sum()
        loss.backward()
    return forward, tracker.peak, [n for _, n in tracker.events if n > 0]


def test_shape_only_execution_allocates_exactly_like_real_execution() -> None:
    model = _tiny_qgn()
    dil = DilatedBaseline("tiny", 5)
    image = torch.randn(1, 3, 96, 128)
    for module, fn in ((model, lambda: model(image, Scheme("all"))), (dil, lambda: dil(image))):
        real = _trace(fn, shape_only=False)
        module.zero_grad(set_to_none=True)  # both runs start without parameter gradients
        assert real == _trace(fn, shape_only=True)


def test_shape_only_runs_index_arithmetic_for_real_and_skips_float_math() -> None:
    mask = torch.tensor([[False, True], [True, True]])
    with ShapeOnlyMode() as mode:
        coords = torch.nonzero(mask)  # integer: real
        y = torch.ones(3, 4) @ torch.ones(4, 5)  # float: shape only
    assert coords.tolist() == [[0, 1], [1, 0], [1, 1]]
    assert y.shape == (3, 5) and y.dtype == torch.float32
    assert mode.shape_ops >= 1 and mode.real_ops >= 1
