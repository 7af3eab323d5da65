"""The fine-tune of issue #21: a frozen encoder on cached features, the pc+gtc training scheme (the
sites PC visits plus the corrections' composite cells), before/after on held-out images."""
from __future__ import annotations

import numpy as np
import torch

import qgn.train.finetune as ft
from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
from qgn.model.qgn import QGN, QGNConfig
from qgn.train.finetune import FinetuneConfig, comparison_split, finetune, pc_and_gtc

FAST = dict(batch_size=2, scale_min=1.0, scale_max=1.0)


def tiny_model(seed: int = 0) -> QGN:
    torch.manual_seed(seed)
    return QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()


def scenes(n=2, size=64):
    pairs = [make_scene(50 + i, size, size) for i in range(n)]
    return [p[0] for p in pairs], [p[1].astype(np.int64) for p in pairs]


def test_frozen_encoder_learns_the_decoder_only_and_trains_where_pc_goes(monkeypatch):
    seen = []
    real_step = ft.train_step

    def spy(model, loss_fn, optimizer, images, labels, scheme, **kwargs):
        seen.append((scheme, kwargs.get("features") is not None, labels.clone()))
        return real_step(model, loss_fn, optimizer, images, labels, scheme, **kwargs)

    monkeypatch.setattr(ft, "train_step", spy)
    model = tiny_model()
    result = finetune(model, *scenes(), FinetuneConfig(iterations=3, **FAST))
    enc0, enc1 = model.encoder.state_dict(), result.model.encoder.state_dict()
    assert all(torch.equal(enc0[k], enc1[k]) for k in enc0)  # the encoder never moves
    dec0, dec1 = model.decoder.state_dict(), result.model.decoder.state_dict()
    assert any(not torch.equal(dec0[k], dec1[k]) for k in dec0 if "running" not in k)
    assert all(p.requires_grad for p in result.model.parameters())  # a later fine-tune may train it all
    for scheme, cached, labels in seen:
        assert cached and scheme.name == "pc" and scheme.site_masks  # PC's sites plus the masks
        expected = pc_and_gtc(model, labels).site_masks
        assert set(scheme.site_masks) == set(range(1, 6))
        assert all(torch.equal(scheme.site_masks[lv], expected[lv]) for lv in expected)  # = the GT composites


def test_frozen_features_equal_the_encoders_and_the_loss_falls():
    images, labels = scenes(1, 64)
    model = tiny_model()
    data = ft.CorrectionSet(images, labels, SYNTHETIC_CLASSES, ["a"])
    cache = ft.FeatureCache(model, data, FinetuneConfig(flip=True, **FAST), torch.device("cpu"))
    assert len(cache.entries) == 2  # one scale, two flips
    x, _, feats = cache.entries[1]
    with torch.no_grad():
        again = model.encode(x)
    assert all(torch.allclose(a, b) for a, b in zip(feats, again))
    assert torch.allclose(x[0, :, :, 0], cache.entries[0][0][0, :, :, 63])  # the flipped copy
    config = FinetuneConfig(iterations=30, batch_size=1, lr=0.003, flip=False, scale_min=1.0, scale_max=1.0)
    result = finetune(tiny_model(), images, labels, config)
    assert np.mean(result.losses[-5:]) < 0.7 * np.mean(result.losses[:5])


def test_comparison_split_holds_out_images_it_does_not_train_on():
    assert comparison_split(1) == ([0], [])
    assert comparison_split(2) == ([0], [1])
    assert comparison_split(4) == ([0, 1, 2], [3])
    train, held = comparison_split(9)
    assert held == [4, 8] and sorted(train + held) == list(range(9)) and not set(train) & set(held)


def test_a_stop_asked_for_while_the_features_are_made_ends_the_fine_tune_there(monkeypatch):
    """``should_stop`` was asked only between steps, so a stop during the frozen encoder's features
    (minutes for qgn serve's 200 photos) waited for all of them: qgn serve's stop gave up waiting
    and the process left with torch running on the fine-tune's thread (SIGABRT)."""
    encoded = []
    model = tiny_model()
    real_encode = QGN.encode
    monkeypatch.setattr(QGN, "encode", lambda self, x: encoded.append(1) or real_encode(self, x))
    asked = []

    def stop_after_two_images():
        asked.append(1)
        return len(encoded) >= 2

    result = finetune(model, *scenes(6), FinetuneConfig(iterations=5, flip=False, **FAST),
                      should_stop=stop_after_two_images)
    assert result.cancelled and result.iterations_done == 0 and result.losses == []
    assert len(encoded) == 2  # of six images: it stopped at the first ask after the second
    dec0, dec1 = model.decoder.state_dict(), result.model.decoder.state_dict()
    assert all(torch.equal(dec0[k], dec1[k]) for k in dec0)  # no step was taken


def test_a_frozen_encoder_fine_tune_keeps_the_domain_reference_and_a_trained_one_does_not(tmp_path):
    """The descriptor reads the encoder alone: a model fine-tuned with its encoder frozen is judged
    by its original's reference (bound to the new file), one whose encoder learnt gets none."""
    from qgn.domain import DomainReference, image_descriptor, judge, reference_for, reference_path
    from qgn.fileio import file_sha256
    from qgn.model.checkpoint import load_model, save_model
    from qgn.train.finetune import save_new_model

    model = tiny_model()
    original = save_model(tmp_path / "base.safetensors", model)
    images = [make_scene(300 + i, 64, 64)[0] for i in range(12)]
    DomainReference.fit(np.stack([image_descriptor(model, im) for im in images]),
                        file_sha256(original)).save(reference_path(original))
    frozen = finetune(model, *scenes(), FinetuneConfig(iterations=2, **FAST)).model
    kept = save_new_model(frozen, tmp_path / "frozen.safetensors", original=original)
    carried = reference_for(kept)
    assert carried is not None and carried.model_sha256 == file_sha256(kept)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    base_ref = reference_for(original)
    for image in (images[0], noise):
        assert judge(load_model(kept), image, carried).score == judge(model, image, base_ref).score
    trained = finetune(model, *scenes(), FinetuneConfig(iterations=2, encoder="train", **FAST)).model
    kept = save_new_model(trained, tmp_path / "trained.safetensors", original=original)
    assert reference_for(kept) is None and not reference_path(kept).exists()
    assert save_new_model(frozen, tmp_path / "no-original.safetensors") and \
        not reference_path(tmp_path / "no-original.safetensors").exists()


def test_the_features_and_the_comparison_report_each_image():
    # the frozen encoder's features (minutes for 200 photos on a CPU) and the before/after
    # comparison (two predictions an image) said nothing of how far they were: `qgn finetune` and
    # the app's panel were silent until the first step and after the last
    from qgn.train.finetune import compare_models

    images, labels = scenes(3)
    steps, prepared = [], []
    result = finetune(tiny_model(), images, labels, FinetuneConfig(iterations=2, **FAST),
                      progress=lambda i, loss: steps.append(("step", i)),
                      preparing=lambda done, total: steps.append((done, total)))
    assert steps == [(0, 3), (1, 3), (2, 3), (3, 3), ("step", 1), ("step", 2)]
    compared = []
    comparison = compare_models(tiny_model(), result.model, images, labels, progress=lambda *a: compared.append(a))
    assert compared == [(0, 3), (1, 3), (2, 3), (3, 3)] and len(comparison.per_image) == 3
    stopped = finetune(tiny_model(), images, labels, FinetuneConfig(iterations=2, **FAST),
                       should_stop=lambda: len(prepared) >= 2, preparing=lambda *a: prepared.append(a))
    assert stopped.cancelled and prepared == [(0, 3), (1, 3)]
