"""A fine-tune whose encoder learns (``encoder="train"``): the default rule that picks it
(``auto_encoder``), its memory bound on big images (``train_crop``), and its record; the project
head's check that the features it read are still the model's (``encoder_fingerprint``)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import qgn.train.finetune as ft
from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
from qgn.model.qgn import QGN, QGNConfig
from qgn.train.finetune import ENCODER_CROP, FinetuneConfig, auto_encoder, finetune, finetune_metadata

FAST = dict(batch_size=2, scale_min=1.0, scale_max=1.0)


def tiny_model(seed: int = 0) -> QGN:
    torch.manual_seed(seed)
    return QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()


def test_automatic_lets_the_encoder_learn_from_32_images_trained_on():
    # benchmarks/RESULTS.md: its start paid from 32 frames, about even at 8 and 16
    assert [auto_encoder(k) for k in (0, 1, 8, 16, 31)] == ["frozen"] * 5
    assert [auto_encoder(k) for k in (32, 33, 500)] == ["train"] * 3


def record_batches(monkeypatch) -> list:
    seen = []
    real_step = ft.train_step

    def spy(model, loss_fn, optimizer, images, labels, scheme, **kwargs):
        seen.append((tuple(images.shape), kwargs.get("features") is not None))
        return real_step(model, loss_fn, optimizer, images, labels, scheme, **kwargs)

    monkeypatch.setattr(ft, "train_step", spy)
    return seen


def test_an_encoder_that_learns_on_big_images_trains_on_bounded_crops(monkeypatch):
    """Each step of an encoder that learns holds ~500 bytes of activations a working pixel: whole
    4.2-megapixel images (a 24-megapixel photo's working size) in batches of four took ~13 GB.
    Batches are now random crops of at most ENCODER_CROP a side; the encoder still learns."""
    seen = record_batches(monkeypatch)
    side = ENCODER_CROP + 160
    big, big_label = make_scene(3, side, side + 96)
    model = tiny_model()
    config = FinetuneConfig(iterations=2, encoder="train", **FAST)
    result = finetune(model, [big, big], [big_label.astype(np.int64)] * 2, config)
    assert len(seen) == 2
    for shape, cached in seen:
        assert not cached and shape[0] == 2 and max(shape[2:]) <= ENCODER_CROP, shape
    enc0, enc1 = model.encoder.state_dict(), result.model.encoder.state_dict()
    assert any(not torch.equal(enc0[k], enc1[k]) for k in enc0 if "running" not in k and "tracked" not in k)
    assert result.config == dataclasses.replace(config, crop=ENCODER_CROP)  # the recipe as it ran

    seen.clear()  # an image within the crop stays whole; a crop asked for is kept
    small, small_label = make_scene(4, 64, 96)
    finetune(model, [small], [small_label.astype(np.int64)], FinetuneConfig(iterations=1, encoder="train", **FAST))
    assert seen[0][0][2:] == (64, 96)
    seen.clear()
    finetune(model, [big], [big_label.astype(np.int64)], FinetuneConfig(iterations=1, encoder="train", crop=128, **FAST))
    assert max(seen[0][0][2:]) <= 128


def test_the_record_says_what_learnt_and_the_recipe_it_ran():
    images, labels = zip(*(make_scene(10 + i, 64, 64) for i in range(2)))
    labels = [label.astype(np.int64) for label in labels]
    for encoder, learnt, crop in (("frozen", "decoder", 0), ("train", "decoder and encoder", ENCODER_CROP)):
        config = FinetuneConfig(iterations=1, lr=0.002, encoder=encoder, **FAST)
        result = finetune(tiny_model(), list(images), labels, config)
        record = finetune_metadata(result.config, result, "a.safetensors", ["a", "b"])["finetune"]
        assert record["learnt"] == learnt and record["config"]["crop"] == crop
        assert record["cropped"] == 0  # 64x64 images: nothing was cut, whatever the bound
        assert record["config"]["encoder"] == encoder and record["config"]["lr"] == 0.002


def test_the_record_has_one_truthful_crop_the_bound_it_ran_and_how_many_samples_were_cut():
    """Review of this branch: an encoder that learnt on crop 0 recorded a top-level crop of 512 beside
    config.crop 0, and said 512 even where nothing was cut; a frozen encoder with crop 256 recorded
    crop 256 though its feature cache trains on whole images. The record's one crop is now its
    config.crop, the bound as it ran (random squares of at most that many pixels a side), with
    ``cropped``: how many samples were cut; a frozen encoder refuses a crop."""
    model = tiny_model()
    side = ENCODER_CROP + 160
    big, big_label = make_scene(5, side, side + 96)
    small, small_label = make_scene(6, 64, 96)
    config = FinetuneConfig(iterations=2, encoder="train", **FAST)  # crop 0: ENCODER_CROP
    for images, labels, cut in (([big, big], [big_label] * 2, 4), ([small], [small_label], 0)):
        result = finetune(model, images, [label.astype(np.int64) for label in labels], config)
        assert result.cropped == cut
        # the CLI and qgn serve pass the config they made, not the result's
        record = finetune_metadata(config, result, "a.safetensors", ["a"])["finetune"]
        assert record["config"]["crop"] == ENCODER_CROP and record["cropped"] == cut
        assert "crop" not in record  # no second crop value beside config.crop

    frozen = FinetuneConfig(iterations=1, crop=256, **FAST)
    with pytest.raises(ValueError, match="crop 256 applies only when the encoder learns"):
        finetune(model, [big], [big_label.astype(np.int64)], frozen)
    result = finetune(model, [big], [big_label.astype(np.int64)], FinetuneConfig(iterations=1, **FAST))
    record = finetune_metadata(result.config, result, "a.safetensors", ["a"])["finetune"]
    assert record["config"]["crop"] == 0 and record["cropped"] == 0  # whole images, as its feature cache trains


def test_the_heads_encoder_fingerprint_follows_the_features_it_reads(tmp_path):
    from qgn.project_head import ProjectHead, encoder_fingerprint

    images, labels = zip(*(make_scene(20 + i, 64, 64) for i in range(2)))
    labels = [label.astype(np.int64) for label in labels]
    model = tiny_model()
    frozen = finetune(model, list(images), labels, FinetuneConfig(iterations=2, **FAST)).model
    learnt = finetune(model, list(images), labels, FinetuneConfig(iterations=2, encoder="train", **FAST)).model
    assert encoder_fingerprint(frozen) == encoder_fingerprint(model)  # same features: the head holds
    assert encoder_fingerprint(learnt) != encoder_fingerprint(model)

    k = SYNTHETIC_CLASSES.num_classes
    head = ProjectHead(torch.zeros(k, 4), torch.zeros(k), torch.zeros(4), torch.ones(4),
                       list(SYNTHETIC_CLASSES.names), SYNTHETIC_CLASSES.ignore_index, model="m-ft1.safetensors",
                       encoder=encoder_fingerprint(model))
    again = ProjectHead.load(head.save(tmp_path / "head.safetensors"))
    assert again.encoder == head.encoder
    assert again.reads("m-ft1.safetensors", encoder_fingerprint(frozen))
    assert not again.reads("m-ft1.safetensors", encoder_fingerprint(learnt))  # same name, other features
    assert not again.reads("other.safetensors", encoder_fingerprint(model))
    again.encoder = ""  # a head from before the fingerprint: the name alone, as before
    assert again.reads("m-ft1.safetensors", encoder_fingerprint(learnt))
