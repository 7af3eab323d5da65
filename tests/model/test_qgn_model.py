"""The QGN decoder against a dense reference, its site bookkeeping, inference decoding and files."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qgn.classes import ClassSet
from qgn.infer import ImageSession
from qgn.model.checkpoint import load_model, save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme


def _model(k=4, seed=0):
    torch.manual_seed(seed)
    model = QGN(QGNConfig.from_preset("tiny", ClassSet.generic(k, 255)))
    # non-trivial BN statistics so the eval-mode reference checks them too
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _lin(x, lin):
    return F.conv2d(x, lin.weight[:, :, None, None], lin.bias)


def _conv3(x, conv):
    return F.conv2d(x, conv.weight.permute(0, 3, 1, 2), conv.bias, padding=1)


def dense_reference(model, images):
    """The decoder written densely (every site active): logits per level, (B, k+1, H_l, W_l)."""
    dec = model.decoder
    feats = model.encode(images)
    x = torch.relu(_bn(_lin(feats[4], dec.reduce), dec.reduce_bn))
    out = {5: _lin(x, dec.head5)}
    sources = [images] + list(feats[:4])
    for level in range(4, -1, -1):
        block = dec.levels[str(level)]
        x = F.interpolate(x, scale_factor=2, mode="nearest") + _lin(sources[level], block.skip)
        for unit in block.units:
            y = torch.relu(_bn(_conv3(x, unit.conv1), unit.bn1))
            y = _bn(_conv3(y, unit.conv2), unit.bn2)
            short = x if unit.shortcut is None else _bn(_lin(x, unit.shortcut["proj"]), unit.shortcut["bn"])
            x = torch.relu(y + short)
        out[level] = _lin(x, block.head)
    return out


@torch.no_grad()
def test_all_scheme_equals_dense_decoder():
    model = _model()
    images = model.normalise(torch.rand(2, 3, 64, 96) * 255)
    outputs = model(images, Scheme("all"))
    ref = dense_reference(model, images)
    assert [o.level for o in outputs] == [5, 4, 3, 2, 1, 0]
    for o in outputs:
        c = o.coords
        want = ref[o.level][c[:, 0], :, c[:, 1], c[:, 2]]
        assert o.num_sites == 2 * (64 >> o.level) * (96 >> o.level)
        assert torch.allclose(o.logits, want, atol=1e-4), o.level


@torch.no_grad()
def test_sparse_levels_equal_dense_reference_at_their_sites():
    """With PC the sites differ, but every computed value must still match a masked dense run."""
    model = _model(seed=3)
    images = model.normalise(torch.rand(1, 3, 64, 64) * 255)
    outputs = model(images, Scheme("uncertainty", entropy=0.3))
    assert outputs[-1].level < 5
    # Level 4's sites are children of selected level-5 cells; their logits depend only on level 5
    # (computed densely) and on convolutions among active sites: check the child set.
    parent, child = outputs[0], outputs[1]
    sel = parent.coords[parent.selected]
    kids = {(int(b), 2 * int(y) + dy, 2 * int(x) + dx) for b, y, x in sel for dy in (0, 1) for dx in (0, 1)}
    assert kids == {tuple(map(int, c)) for c in child.coords}


def _labels_with_composite(h=64, w=64, k=4, seed=0):
    rng = np.random.default_rng(seed)
    lab = np.kron(rng.integers(0, k, (h // 16, w // 16)), np.ones((16, 16), np.int64))
    lab[5:9, 3:40] = (lab[5:9, 3:40] + 1) % k
    return lab


@torch.no_grad()
def test_gtc_sites_are_children_of_ground_truth_composite_cells():
    from qgn.quadtree import build_tpyramid

    model = _model()
    lab = _labels_with_composite()
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    pred = ImageSession(model, image, lab).run(Scheme("gtc"))
    tp = build_tpyramid(lab, 4, 255)
    for o in pred.outputs[1:]:
        parent_comp = tp.levels[o.level + 1] == 0
        want = {(0, y, x) for y, x in zip(*np.nonzero(np.kron(parent_comp, np.ones((2, 2), bool))))}
        assert {tuple(map(int, c)) for c in o.coords} == want


@torch.no_grad()
def test_resume_equals_a_fresh_run_and_reuses_levels():
    model = _model()
    image = (np.random.default_rng(1).random((70, 50, 3)) * 255).astype(np.uint8)
    session = ImageSession(model, image)
    shallow = session.run(Scheme("uncertainty", entropy=0.5, depth=3))
    assert shallow.finest_level >= 3
    deep = session.run(Scheme("uncertainty", entropy=0.5, depth=0))
    assert deep.outputs[0] is shallow.outputs[0]  # cached levels are reused, not recomputed
    fresh = ImageSession(model, image).run(Scheme("uncertainty", entropy=0.5))
    assert deep.levels == fresh.levels
    for a, b in zip(deep.outputs, fresh.outputs):
        assert torch.equal(a.coords, b.coords) and torch.allclose(a.logits, b.logits, atol=1e-5)
    assert np.array_equal(deep.label(), fresh.label())


def test_dense_decoding_matches_a_per_pixel_reference():
    model = _model()
    image = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    pred = ImageSession(model, image).run(Scheme("uncertainty", entropy=0.6))
    label = pred.label()
    cells = {}
    for o in pred.outputs:
        for c, lg in zip(o.coords.tolist(), o.logits):
            cells[(o.level, c[1], c[2])] = lg
    for y in range(0, 64, 3):
        for x in range(0, 64, 5):
            finest = min(l for l in range(6) if (l, y >> l, x >> l) in cells)
            logits = cells[(finest, y >> finest, x >> finest)]
            order = torch.argsort(logits, descending=True).tolist()
            best = order[1] if order[0] == 0 else order[0]  # composite → second best
            assert label[y, x] == best - 1


def test_prediction_crops_padding_and_exports_a_quadtree():
    model = _model()
    image = (np.random.default_rng(3).random((45, 70, 3)) * 255).astype(np.uint8)
    pred = ImageSession(model, image).run(Scheme("pc"))
    assert pred.padded_shape == (64, 96)
    assert pred.label().shape == (45, 70)
    assert np.array_equal(pred.quadtree().to_label(), pred.label())
    assert pred.level_classes(5).shape == (1, 2, 3)
    cost = pred.cost()
    assert cost.active_sites[5] == 6 and cost.total_macs > cost.encoder_macs > 0
    want = sum(o.num_sites * (o.features.num_channels + 5) * 4 for o in pred.outputs)
    assert pred.activation_bytes() == want


def test_macs_follow_active_sites():
    model = _model()
    image = (np.random.default_rng(4).random((64, 64, 3)) * 255).astype(np.uint8)
    session = ImageSession(model, image, _labels_with_composite())
    full, gtc = session.run(Scheme("all")).cost(), session.run(Scheme("gtc")).cost()
    assert gtc.active_sites[0] < full.active_sites[0]
    for level in range(5):
        assert gtc.decoder_macs[level] <= full.decoder_macs[level]
    # 1×1 layers and heads cost N·Cin·Cout: the level's MACs minus its 3×3 convs must be linear in N
    block = model.decoder.levels["0"]
    per_site = block.skip_ch * block.in_ch + block.out_ch * block.num_outputs
    unit = block.units[0]
    pairs_full = 64 * 64 * 9 - 4 * 64 * 3 + 4  # 3×3 neighbours inside a 64×64 grid, brute-force count
    assert sum(1 for y in range(64) for x in range(64) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if 0 <= y + dy < 64 and 0 <= x + dx < 64) == pairs_full
    want = 64 * 64 * per_site + unit.macs(64 * 64, pairs_full)
    assert full.decoder_macs[0] == want


def test_checkpoint_round_trip(tmp_path):
    model = _model()
    path = save_model(tmp_path / "m.safetensors", model, extra={"note": "test"})
    again = load_model(path)
    assert again.config.classes == model.config.classes
    image = (np.random.default_rng(5).random((32, 64, 3)) * 255).astype(np.uint8)
    a = ImageSession(model, image).run(Scheme("all")).label()
    b = ImageSession(again, image).run(Scheme("all")).label()
    assert np.array_equal(a, b)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")
    model = _model()
    path = save_model(tmp_path / "m.safetensors", model)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(path)
    other = QGN(QGNConfig.from_preset("tiny", ClassSet.generic(7, 255)))
    save_model(tmp_path / "o.safetensors", other)
    (tmp_path / "o.json").write_bytes((tmp_path / "m.json").read_bytes())
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path / "o.safetensors")


@pytest.mark.parametrize("encoder, stem, shortcut", [("resnet18", "deep", "conv"), ("resnet50", "deep", "conv"),
                                                     ("resnet18", "classic", "avgpool")])
def test_encoder_macs_from_one_tile_equal_the_meta_count(encoder: str, stem: str, shortcut: str) -> None:
    """The MACs of a padded input, scaled from one output-stride tile, equal a full count on the
    meta device (the independent reference)."""
    import copy

    from qgn.infer import _ENCODER_MACS, encoder_macs
    from qgn.model.macs import count_macs

    config = QGNConfig(classes=ClassSet.generic(3), encoder=encoder, encoder_width=0.25, decoder_width=0.25,
                       encoder_stem=stem, encoder_shortcut=shortcut)
    model = QGN(config).eval()
    stride = model.encoder.output_stride
    for shape in [(1, 3, stride, stride), (2, 3, 3 * stride, 5 * stride), (1, 3, 64, 96), (1, 3, 480, 352)]:
        _ENCODER_MACS.clear()
        want = count_macs(copy.deepcopy(model.encoder).to("meta"), torch.empty(shape, device="meta"))
        assert encoder_macs(model, shape) == want, shape
    with pytest.raises(ValueError, match="multiples"):  # as the encoder itself refuses it
        encoder_macs(model, (1, 3, stride + 6, stride))


def test_encoder_macs_are_kept_apart_by_stem() -> None:
    """Two encoders of one name and width but another stem count their own MACs (the cache key
    holds the whole architecture); each equals its own meta count."""
    import copy

    from qgn.model.macs import count_macs

    from qgn.infer import encoder_macs

    for stem in ("deep", "classic"):
        config = QGNConfig(classes=ClassSet.generic(3), encoder="resnet18", encoder_width=0.25,
                           decoder_width=0.25, encoder_stem=stem)
        model = QGN(config)
        want = count_macs(copy.deepcopy(model.encoder).to("meta"), torch.empty((1, 3, 64, 64), device="meta"))
        assert encoder_macs(model, (1, 3, 64, 64)) == want, stem
