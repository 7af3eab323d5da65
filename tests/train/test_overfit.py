"""A tiny QGN overfits one real CamVid image (the network can learn; All and GTC training both work)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qgn.classes import ClassSet
from qgn.data.transforms import collate
from qgn.data.base import Sample
from qgn.infer import ImageSession
from qgn.loss import QuadtreeLoss
from qgn.metrics import ConfusionMatrix
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme
from qgn.train.step import train_step

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camvid" / "val"

pytestmark = [pytest.mark.slow, pytest.mark.data]
STEPS = 150


def _half_size_pair():
    name = sorted((CAMVID / "images").glob("*.jpg"))[0].stem
    image = Image.open(CAMVID / "images" / f"{name}.jpg").resize((240, 180), Image.BILINEAR)
    label = Image.open(CAMVID / "labels" / f"{name}.png").resize((240, 180), Image.NEAREST)
    return np.array(image), np.array(label).astype(np.int64)


@pytest.mark.skipif(not CAMVID.is_dir(), reason="../shared/data/camvid not present")
@pytest.mark.parametrize("scheme", ["all", "gtc"])
def test_tiny_model_overfits_one_camvid_image(scheme):
    torch.manual_seed(0)
    image, label = _half_size_pair()
    classes = ClassSet.generic(11, 11)
    model = QGN(QGNConfig.from_preset("tiny", classes))
    batch = collate([Sample(image, label, "x")], ignore_index=11)
    loss_fn = QuadtreeLoss(6)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    # 150 steps, the same bars (was 250; the two cases were 25 s of the suite): measured with seed 0, All
    # reaches 0.978 pixel accuracy (0.953 at 50, 0.971 at 100) and a loss 0.8 % of the first, GTC 0.999 by 100
    for step in range(STEPS):
        result = train_step(model, loss_fn, optimizer, batch.images, batch.labels, Scheme(scheme))
        first = first if first is not None else result.loss
    model.eval()
    pred = ImageSession(model, image, label).run(Scheme(scheme))
    acc = ConfusionMatrix(11).add(label, pred.label()).accuracy()
    assert result.loss < 0.2 * first
    assert acc >= 0.95, f"pixel accuracy {acc:.3f} after {STEPS} steps ({scheme})"
