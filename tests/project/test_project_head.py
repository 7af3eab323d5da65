"""The per-project head (qgn.project_head) and the out-of-domain score (qgn.domain), issue #21."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qgn.classes import ClassSet
from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
from qgn.model.qgn import QGN, QGNConfig
from qgn.resources import demo_model_path


def demo_or_tiny():
    if demo_model_path().is_file():
        from qgn.model.checkpoint import load_model

        return load_model(demo_model_path())
    torch.manual_seed(0)
    return QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()


def test_head_learns_a_new_class_set_from_one_image_and_round_trips(tmp_path):
    from qgn.project_head import HeadTrainer, ProjectHead, grid_labels, pixel_features

    model = demo_or_tiny()
    # the project's own classes: "sky-ish" (the scene's class 0) against everything else
    classes = ClassSet(("top", "rest"), (), 255)
    image, label = make_scene(21, 96, 128)
    mine = np.where(label == 0, 0, 1).astype(np.int64)
    mine[:4] = 255  # unlabelled rows are not learnt
    features = pixel_features(model, image)
    assert features.shape[1:] == (48, 64) and features.dtype == torch.float32
    assert grid_labels(mine, (48, 64))[0, 0] == 255
    trainer = HeadTrainer(classes)
    assert trainer.add("a", model, image, mine, features) > 0
    head = trainer.fit()
    assert head.images == 1 and head.num_classes == 2 and head.fits(classes)
    other, truth = make_scene(22, 96, 128)
    predicted = head.predict(model, other)
    assert predicted.shape == truth.shape
    assert (predicted == np.where(truth == 0, 0, 1)).mean() > 0.8  # a new image, one image learnt
    path = head.save(tmp_path / "head.safetensors")
    meta = json.loads((tmp_path / "head.json").read_text())
    assert meta["format"] == "qgn-project-head" and meta["names"] == ["top", "rest"]
    again = ProjectHead.load(path)
    assert np.array_equal(again.predict(model, other), predicted)
    assert not again.fits(ClassSet(("rest", "top"), (), 255))  # a class edit makes it stale
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a readable project head"):
        ProjectHead.load(tmp_path / "bad.safetensors")


def test_head_never_predicts_a_class_it_never_saw_and_fits_stay_bounded():
    from qgn.project_head import HeadTrainer

    model = demo_or_tiny()
    classes = ClassSet(("a", "b", "c"), (), 255)
    trainer = HeadTrainer(classes, samples_per_image=300, max_samples=600)
    for seed in range(4):
        image, label = make_scene(30 + seed, 64, 96)
        trainer.add(str(seed), model, image, np.where(label == 0, 0, 1))  # class "c" is never labelled
    head = trainer.fit()
    assert head.samples <= 4 * 300 and head.samples >= 600 - 10  # at most max_samples, evenly (>= MIN_SHARE each)
    assert (head.predict(model, make_scene(40, 64, 96)[0]) != 2).all()


def test_head_is_preferred_only_after_beating_the_model_on_images_it_had_not_trained_on(tmp_path):
    """The record: a judged image is one the head never trained on, scored against its saved
    annotation beside the model's start (pixel accuracy); the head is preferred once it got at least
    as many pixels right over the last HEAD_WINDOW judged images; the record travels with the head file."""
    from qgn.project_head import HEAD_WINDOW, HeadTrainer, ProjectHead, prefer_head

    assert not prefer_head([])  # a head nobody has tested: the model's start
    assert prefer_head([(0.9, 0.8)]) and not prefer_head([(0.8, 0.9)])
    window = [(0.1, 0.9)] + [(0.9, 0.8)] * HEAD_WINDOW  # only the last HEAD_WINDOW count
    assert prefer_head(window) and not prefer_head(window[:2])

    model = demo_or_tiny()
    classes = ClassSet(("a", "b"), (), 255)
    image, label = make_scene(50, 64, 96)
    saved = np.where(label == 0, 0, 1).astype(np.int64)
    saved[:8] = 255  # unlabelled pixels are not judged
    trainer = HeadTrainer(classes)
    trainer.add("first", model, image, saved)
    wrong = 1 - np.clip(saved, 0, 1)  # every labelled pixel wrong
    assert not trainer.judge("first", saved, wrong, saved)  # trained on: never judged
    assert trainer.judge("second", wrong, saved, saved)  # the head all wrong, the model all right
    assert not trainer.judge("second", saved, wrong, saved)  # judged once, when first saved
    assert trainer.record == {"second": (0.0, 1.0)}
    trainer.add("second", model, image, saved)
    head = trainer.fit()
    assert head.record == {"second": (0.0, 1.0)} and head.trained == ["first", "second"] and not head.preferred
    again = ProjectHead.load(head.save(tmp_path / "head.safetensors"))
    assert again.record == head.record and again.trained == head.trained and not again.preferred
    trainer.judge("third", saved, wrong, saved)
    trainer.judge("fourth", saved, wrong, saved)
    assert trainer.fit().preferred  # the last 3 judged: the head right on 2 of 3, the model on 1
    meta = json.loads((tmp_path / "head.json").read_text())
    del meta["record"], meta["trained"]  # a head written before the record: the model's start
    (tmp_path / "head.json").write_text(json.dumps(meta))
    old = ProjectHead.load(tmp_path / "head.safetensors")
    assert old.record == {} and not old.preferred


def test_domain_reference_separates_and_round_trips(tmp_path):
    from qgn.domain import WARN_AT, DomainReference, DomainVerdict, image_descriptor, reference_for
    from qgn.fileio import file_sha256

    rng = np.random.default_rng(0)
    inside = rng.normal(0, 1, (200, 40)) @ rng.normal(0, 1, (40, 40))
    ref = DomainReference.fit(inside)
    assert np.percentile(ref.distance(inside), 95) == pytest.approx(ref.threshold)
    far = inside[:20] + 8 * inside.std(axis=0)
    assert min(ref.score(x) for x in far) > WARN_AT
    model_file = tmp_path / "m.safetensors"
    model_file.write_bytes(b"weights")
    ref.model_sha256 = file_sha256(model_file)
    ref.save(tmp_path / "m.domain.json")
    again = reference_for(model_file)
    assert again is not None and np.allclose(again.distance(far), ref.distance(far), rtol=1e-4)
    model_file.write_bytes(b"retrained")  # another model: its old reference gives no verdict
    assert reference_for(model_file) is None
    assert DomainVerdict(3.0).inside is False and "unlike its training images" in DomainVerdict(3.0).describe("m")
    # descriptors of a real model: per stage each channel's mean and standard deviation
    model = demo_or_tiny()
    d = image_descriptor(model, make_scene(3, 64, 96)[0])
    assert d.shape == (2 * sum(model.encoder.out_channels),) and np.isfinite(d).all()


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_bundled_demo_model_flags_noise_and_not_its_own_scenes():
    from qgn.domain import judge, reference_for
    from qgn.model.checkpoint import load_model

    reference = reference_for(demo_model_path())
    if reference is None:
        pytest.skip("no domain reference beside the demo model (benchmarks/bench_domain.py --write)")
    model = load_model(demo_model_path())
    scenes = [judge(model, make_scene(7000 + i, 256, 256)[0], reference) for i in range(3)]
    noise = judge(model, np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8), reference)
    assert all(v.inside for v in scenes) and not noise.inside


def test_a_head_save_that_fails_on_its_json_leaves_the_old_pair(tmp_path, monkeypatch):
    """The weights and their JSON are one file to a reader: a save that cannot write the JSON
    (a full disk) must not leave new weights of three classes beside the old JSON of two."""
    import qgn.fileio
    from qgn.project_head import ProjectHead

    def head(n):
        return ProjectHead(torch.ones(n, 4), torch.zeros(n), torch.zeros(4), torch.ones(4),
                           [f"c{i}" for i in range(n)], 255)

    path = head(2).save(tmp_path / "head.safetensors")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    staged = qgn.fileio._staged

    def full_disk_for_json(target, data, *rest):
        if target.suffix == ".json":
            raise OSError(28, "No space left on device", str(target))
        return staged(target, data, *rest)

    monkeypatch.setattr(qgn.fileio, "_staged", full_disk_for_json)
    with pytest.raises(OSError):
        head(3).save(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert ProjectHead.load(path).num_classes == 2


def test_a_fit_told_to_stop_ends_at_its_next_step_with_nothing_fitted():
    from qgn.project_head import HeadTrainer

    model = demo_or_tiny()
    classes = ClassSet(("a", "b"), (), 255)
    trainer = HeadTrainer(classes)
    image, label = make_scene(50, 64, 96)
    trainer.add("x", model, image, np.where(label == 0, 0, 1))
    asked = []

    def stop_after_three() -> bool:  # the app closed while L-BFGS was in its third step
        asked.append(1)
        return len(asked) > 3

    assert trainer.fit(should_stop=stop_after_three) is None
    assert len(asked) == 4  # asked before each step, and not one step more
    assert trainer.fit().images == 1  # the same trainer still fits when let run


@pytest.mark.parametrize("case", ["weight columns", "two classes more", "mean of 3", "whole-number weight",
                                  "NaN std", "zero std", "one-dimensional weight", "deeply nested json"])
def test_a_damaged_head_file_is_refused_when_read_not_at_every_start(tmp_path, case):
    # such a file loaded, was offered as the start of every new image and failed there each time
    # ("mat1 and mat2 shapes cannot be multiplied"), or predicted nonsense (NaN std) without a word
    from safetensors.torch import load_file, save_file

    from qgn.project_head import ProjectHead

    k, c = 3, 8
    head = ProjectHead(torch.randn(k, c), torch.zeros(k), torch.zeros(c), torch.ones(c), ["a", "b", "c"], 255)
    path = head.save(tmp_path / "head.safetensors")
    ProjectHead.load(path)  # the file as written reads
    t = load_file(str(path))
    changes = {"weight columns": {"weight": torch.zeros(k, c + 5)},
               "two classes more": {"weight": torch.zeros(k + 2, c), "bias": torch.zeros(k + 2)},
               "mean of 3": {"mean": torch.zeros(3)}, "whole-number weight": {"weight": torch.zeros(k, c, dtype=torch.int64)},
               "NaN std": {"std": torch.full((c,), float("nan"))}, "zero std": {"std": torch.zeros(c)},
               "one-dimensional weight": {"weight": torch.zeros(k * c)}}
    if case == "deeply nested json":
        path.with_suffix(".json").write_text("[" * 100000 + "]" * 100000)
    else:
        save_file({**t, **changes[case]}, str(path))
    with pytest.raises(ValueError, match="not a readable project head"):
        ProjectHead.load(path)


def test_a_deeply_nested_domain_reference_is_not_a_reference(tmp_path):
    from qgn.domain import DomainReference

    path = tmp_path / "m.domain.json"
    path.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ValueError, match="not a readable domain reference"):
        DomainReference.load(path)


def test_an_image_outside_the_references_sizes_is_described_resized_into_them(tmp_path):
    """A model that works at each image's own size sees other statistics in a smaller image of the
    same kind: the descriptor of an image whose working size is outside the reference's "pixels"
    range is that of the image resized into the range (same aspect), and "pixels" round-trips."""
    from qgn.data.transforms import resize_image
    from qgn.domain import DomainReference, image_descriptor, working_pixels

    model = demo_or_tiny()
    small = make_scene(11, 64, 96)[0]
    lo, hi = working_pixels(model, 128, 192), working_pixels(model, 256, 384)
    assert lo > working_pixels(model, 64, 96)  # (a model at its images' own size)
    up = image_descriptor(model, small, (lo, hi))
    np.testing.assert_allclose(up, image_descriptor(model, resize_image(small, (128, 192))), rtol=1e-6)
    assert not np.allclose(up, image_descriptor(model, small))
    within = make_scene(12, 192, 256)[0]
    np.testing.assert_array_equal(image_descriptor(model, within, (lo, hi)), image_descriptor(model, within))
    rng = np.random.default_rng(0)
    ref = DomainReference.fit(rng.normal(0, 1, (20, up.size)), pixels=(lo, hi))
    again = DomainReference.load(ref.save(tmp_path / "m.domain.json"))
    assert again.pixels == (lo, hi)
    doc = json.loads((tmp_path / "m.domain.json").read_text())
    for bad in ([0, 5], [9, 3], [1.5, 3], "many"):
        doc["pixels"] = bad
        (tmp_path / "bad.domain.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="not a readable domain reference"):
            DomainReference.load(tmp_path / "bad.domain.json")



KILLED_BETWEEN_THE_RENAMES = r'''
import os, signal, sys
import torch
import qgn.fileio
from qgn.project_head import ProjectHead
real, renames = os.replace, [0]
def replace(src, dst, *args, **kwargs):
    renames[0] += 1
    if renames[0] == 2:  # the weights are in place, the JSON not yet
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *args, **kwargs)
qgn.fileio.os.replace = replace
ProjectHead(torch.full((2, 4), 5.0), torch.zeros(2), torch.zeros(4), torch.ones(4), ["x", "y"], 255).save(sys.argv[1])
'''


def test_a_head_save_killed_between_its_renames_is_not_read_as_a_mixed_pair(tmp_path):
    """SIGKILL between the weights' rename and the JSON's leaves the new weights beside the old
    JSON (files written together are put back after a failed rename, not after a crash): ``load``
    refuses that pair - the head is fitted again - rather than using weights with another head's
    description (the same two classes here: their shapes alone cannot tell)."""
    import signal
    import subprocess
    import sys

    from qgn.project_head import ProjectHead

    path = ProjectHead(torch.ones(2, 4), torch.zeros(2), torch.zeros(4), torch.ones(4), ["x", "y"],
                       255).save(tmp_path / "head.safetensors")
    run = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_THE_RENAMES, str(path)])
    assert run.returncode == -signal.SIGKILL
    with pytest.raises(ValueError, match="not the ones"):
        ProjectHead.load(path)
