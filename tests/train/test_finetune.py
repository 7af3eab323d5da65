"""Fine-tuning on corrections: the library (finetune, compare_models, save_new_model) and `qgn finetune`."""
from pathlib import Path
import json

import numpy as np
import pytest
import torch

import qgn.train.finetune as ft
from qgn.cli.main import main
from qgn.cli.samples import write_samples
from qgn.data.synthetic import SYNTHETIC_CLASSES, make_scene
from qgn.infer import predict
from qgn.metrics import ConfusionMatrix
from qgn.model.checkpoint import load_model, save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme
from qgn.quadtree.label_io import write_label_png
from qgn.quadtree.qgt import write_qgt
from qgn.quadtree import Quadtree
from qgn.resources import demo_model_path
from qgn.train.finetune import (Comparison, FinetuneConfig, cell_agreement, changed_cells, compare_models,
                                finetune, save_new_model)
from sample_files import digest, write_mask, write_photo

FAST = dict(batch_size=2, scale_min=1.0, scale_max=1.0)


def tiny_model(seed: int = 0) -> QGN:
    torch.manual_seed(seed)
    return QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()


@pytest.fixture(scope="module")
def scenes():
    pairs = [make_scene(seed, 64, 64) for seed in (11, 12)]
    return [p[0] for p in pairs], [p[1].astype(np.int64) for p in pairs]


def state_copy(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------ finetune
def test_finetune_changes_a_copy_and_never_the_input_model(scenes):
    model = tiny_model()
    before = state_copy(model)
    result = finetune(model, *scenes, FinetuneConfig(iterations=2, **FAST))
    assert result.model is not model and result.iterations_done == 2 and not result.cancelled
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and not result.model.training
    changed = [k for k, v in result.model.state_dict().items() if not torch.equal(before[k], v)]
    assert changed and all("running" not in k for k in changed)  # frozen norms: statistics kept


def test_corrections_that_label_no_pixel_are_refused(scenes):
    """All-void corrections 'fine-tuned' 40 iterations on nothing (weight decay alone moved 25
    tensors) and saved the model, where qgn train refuses the same data."""
    images, labels = scenes
    void = [np.full_like(label, SYNTHETIC_CLASSES.ignore_index) for label in labels]
    with pytest.raises(ValueError, match="label no pixel"):
        finetune(tiny_model(), images, void, FinetuneConfig(iterations=2, **FAST))


def test_training_norms_updates_running_statistics(scenes):
    model = tiny_model()
    result = finetune(model, *scenes, FinetuneConfig(iterations=1, freeze_norm=False, encoder="train", **FAST))
    assert not torch.equal(model.encoder.state_dict()["stem.0.1.running_mean"],
                           result.model.encoder.state_dict()["stem.0.1.running_mean"])


def test_loss_falls_when_overfitting_one_image(scenes):
    images, labels = scenes
    config = FinetuneConfig(iterations=30, batch_size=1, optimizer="adamw", lr=0.003, flip=False,
                            scale_min=1.0, scale_max=1.0, scheme="all")
    result = finetune(tiny_model(), images[:1], labels[:1], config)
    assert len(result.losses) == 30
    assert np.mean(result.losses[-5:]) < 0.6 * np.mean(result.losses[:5])


def test_progress_every_step_and_should_stop_cancels_at_that_step(scenes):
    calls = []
    result = finetune(tiny_model(), *scenes, FinetuneConfig(iterations=10, **FAST),
                      progress=lambda i, loss: calls.append((i, loss)), should_stop=lambda: len(calls) == 3)
    assert result.cancelled and result.iterations_done == 3
    assert [i for i, _ in calls] == [1, 2, 3] and [loss for _, loss in calls] == result.losses
    calls.clear()
    result = finetune(tiny_model(), *scenes, FinetuneConfig(iterations=4, **FAST),
                      progress=lambda i, loss: calls.append((i, loss)), should_stop=lambda: False)
    assert not result.cancelled and [i for i, _ in calls] == [1, 2, 3, 4]
    stopped_at_once = finetune(tiny_model(), *scenes, FinetuneConfig(iterations=4, **FAST), should_stop=lambda: True)
    assert stopped_at_once.cancelled and stopped_at_once.iterations_done == 0 and stopped_at_once.losses == []


def test_all_plus_gtc_alternates_the_training_propagation(scenes, monkeypatch):
    import qgn.train.finetune as ft

    seen = []
    real_step = ft.train_step

    def spy(model, loss_fn, optimizer, images, labels, scheme, **kwargs):
        seen.append(scheme.name)
        return real_step(model, loss_fn, optimizer, images, labels, scheme, **kwargs)

    monkeypatch.setattr(ft, "train_step", spy)
    result = finetune(tiny_model(), *scenes, FinetuneConfig(iterations=4, scheme="all+gtc", **FAST))
    assert seen == ["all", "gtc", "all", "gtc"] and len(result.losses) == 4


def test_same_seed_same_model(scenes):
    a = finetune(tiny_model(), *scenes, FinetuneConfig(iterations=2, batch_size=2))
    b = finetune(tiny_model(), *scenes, FinetuneConfig(iterations=2, batch_size=2))
    assert a.losses == b.losses


def test_bad_input_is_refused_with_the_image_named(scenes):
    images, labels = scenes
    model = tiny_model()
    bad = labels[1].copy()
    bad[0, :3] = [8, 9, 200]
    with pytest.raises(ValueError, match=r"second: label values \[8, 9, 200\] are not classes"):
        finetune(model, images, [labels[0], bad], names=["first", "second"])
    with pytest.raises(ValueError, match="width×height"):
        finetune(model, images, [labels[0], labels[1][:, :10]])
    with pytest.raises(ValueError, match="2 images but 1 label"):
        finetune(model, images, labels[:1])
    with pytest.raises(ValueError, match="no corrected images"):
        finetune(model, [], [])
    with pytest.raises(ValueError, match="'all\\+gtc'"):
        finetune(model, images, labels, FinetuneConfig(scheme="pc"))
    with pytest.raises(ValueError, match="iterations"):
        finetune(model, images, labels, FinetuneConfig(iterations=0))
    ignored = labels[0].copy()
    ignored[:8] = SYNTHETIC_CLASSES.ignore_index  # the ignore value is fine
    assert finetune(model, images[:1], [ignored], FinetuneConfig(iterations=1, **FAST)).iterations_done == 1


# ------------------------------------------------------------------------------------ comparison
def brute_force_leaves(values: np.ndarray, levels: int = 6):
    """Leaves (level, y, x, value) of the quadtree of ``values`` (H, W) int >= 0 by recursive splitting;
    padding to a multiple of 2^(levels-1) gets the value -1."""
    cell = 1 << (levels - 1)
    h, w = values.shape
    padded = np.full((-(-h // cell) * cell, -(-w // cell) * cell), -1, np.int64)
    padded[:h, :w] = values
    leaves = []

    def visit(level, y, x):
        size = 1 << level
        block = padded[y * size:(y + 1) * size, x * size:(x + 1) * size]
        if (block == block.flat[0]).all():
            leaves.append((level, y, x, int(block.flat[0])))
            return
        for dy in (0, 1):
            for dx in (0, 1):
                visit(level - 1, 2 * y + dy, 2 * x + dx)

    for y in range(padded.shape[0] // cell):
        for x in range(padded.shape[1] // cell):
            visit(levels - 1, y, x)
    return leaves


def blocky_map(rng, h, w, k):
    """A random label map with regions at several scales (so leaves of many levels occur)."""
    out = rng.integers(0, k, (h, w))
    for size in (32, 16, 8, 4):
        for _ in range(3):
            y, x = rng.integers(0, h), rng.integers(0, w)
            out[y:y + size, x:x + size] = rng.integers(0, k)
    big = rng.integers(0, k, (-(-h // 16), -(-w // 16))).repeat(16, 0).repeat(16, 1)[:h, :w]
    keep = rng.random((h, w)) < 0.8
    return np.where(keep, big, out)


@pytest.mark.parametrize("seed", range(4))
def test_changed_cells_counts_changed_leaves_of_the_change_quadtree(seed):
    rng = np.random.default_rng(seed)
    h, w = 70, 45
    before = blocky_map(rng, h, w, 3)
    after = np.where(blocky_map(rng, h, w, 2) == 1, rng.integers(0, 3, (h, w)), before)
    expected = sum(1 for *_, v in brute_force_leaves((before != after).astype(np.int64)) if v == 1)
    assert changed_cells(before, after) == expected
    assert changed_cells(before, before) == 0
    one = before.copy()
    one[5, 7] = (one[5, 7] + 1) % 3
    assert changed_cells(before, one) == 1
    block = before.copy()
    block[32:64, 0:32] = (block[32:64, 0:32] + 1) % 3
    assert changed_cells(before, block) == 1  # one aligned 32×32 cell


@pytest.mark.parametrize("seed", range(4))
def test_cell_agreement_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    h, w, k, ignore = 50, 67, 4, 9
    label = blocky_map(rng, h, w, k + 1)
    label[label == k] = ignore  # some ignore regions
    prediction = np.where(rng.random((h, w)) < 0.02, rng.integers(0, k, (h, w)), np.where(label == ignore, 0, label))
    agree = total = 0
    for level, y, x, v in brute_force_leaves(label):
        if v in (-1, ignore):
            continue
        size = 1 << level
        total += 1
        region = (slice(y * size, (y + 1) * size), slice(x * size, (x + 1) * size))
        agree += bool((prediction[region] == v).all())
    assert cell_agreement(label, prediction, k, ignore) == (agree, total)
    assert cell_agreement(label, np.where(label == ignore, 0, label), k, ignore) == (total, total)


def test_compare_models_scores_each_prediction_against_the_labels(scenes):
    images, labels = scenes
    model, other = tiny_model(0), tiny_model(1)
    same = compare_models(model, model, images, labels)
    assert same.changed_cells == 0 and same.changed_pixels == 0 and same.before == same.after
    comparison = compare_models(model, other, images, labels, "pc")
    assert isinstance(comparison, Comparison) and len(comparison.per_image) == 2
    total = ConfusionMatrix(8)
    for image, label, record in zip(images, labels, comparison.per_image):
        pred = predict(other, image, Scheme("pc")).label()
        total.add(label, pred)
        assert record["after"]["acc"] == ConfusionMatrix(8).add(label, pred).accuracy()
        assert record["changed_pixels"] == int((pred != predict(model, image, Scheme("pc")).label()).sum())
    assert comparison.after["acc"] == pytest.approx(total.accuracy())
    assert comparison.after["miou"] == pytest.approx(total.miou())
    assert comparison.changed_cells == sum(r["changed_cells"] for r in comparison.per_image) > 0
    assert json.loads(json.dumps(comparison.to_json()))["scheme"] == "pc"
    gtc = compare_models(model, other, images, labels, "gtc")  # GTC predicts with the labels' composite cells
    assert gtc.scheme == "gtc"


# ------------------------------------------------------------------------------------------ saving
def test_save_new_model_never_overwrites_silently(tmp_path):
    model = tiny_model()
    original = save_model(tmp_path / "orig.safetensors", model)
    path = save_new_model(model, tmp_path / "new.safetensors", extra={"finetune": {"iterations_done": 3}})
    assert load_model(path).config.extra["finetune"]["iterations_done"] == 3
    assert all(torch.equal(a, b) for a, b in zip(load_model(path).state_dict().values(), model.state_dict().values()))
    with pytest.raises(FileExistsError, match="new.safetensors exists"):
        save_new_model(model, path)
    (tmp_path / "lonely.json").write_text("{}")
    with pytest.raises(FileExistsError, match="lonely.json exists"):
        save_new_model(model, tmp_path / "lonely.safetensors")
    assert save_new_model(model, path, overwrite=True) == path
    with pytest.raises(ValueError, match="original model"):
        save_new_model(model, tmp_path / "." / "orig.safetensors", overwrite=True, original=original)
    with pytest.raises(ValueError, match="end in .safetensors"):
        save_new_model(model, tmp_path / "x.pt")


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def finetune_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    write_samples(root / "s", 2, 64, 48, 4321)
    return root


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_finetunes_the_demo_model_and_saves_under_a_new_name(finetune_data, capsys):
    demo = demo_model_path()
    demo_digest = digest(demo)
    out = finetune_data / "tuned.safetensors"
    args = ["finetune", "--images", str(finetune_data / "s" / "images"), "--labels", str(finetune_data / "s" / "labels"),
            "--iters", "3", "--batch-size", "2", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["iterations_done"] == 3 and report["from"] == str(demo)
    comparison = report["comparison"]
    assert len(comparison["per_image"]) == 2 and {"acc", "miou", "agreement"} <= set(comparison["after"])
    assert "3/3" in captured.err
    extra = load_model(out).config.extra["finetune"]
    assert extra["iterations_done"] == 3 and extra["from"] == str(demo) and len(extra["images"]) == 2
    assert digest(demo) == demo_digest  # the original is never written
    assert main(args) == 2  # --out exists now
    assert "pass --force" in capsys.readouterr().err
    assert main([*args, "--force", "--iters", "1"]) == 0
    table = capsys.readouterr().out
    assert "scene_01" in table and "changed cells" in table and "saved" in table


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_shows_the_encoding_and_the_comparison_on_a_terminal(finetune_data, capsys, monkeypatch, tmp_path):
    # before the first iteration (the images' features) and after the last (before and after on
    # every image) `qgn finetune` said nothing: minutes each for 300 photos
    import sys

    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)  # no time estimate
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    args = ["finetune", "--images", str(finetune_data / "s" / "images"), "--labels", str(finetune_data / "s" / "labels"),
            "--iters", "1", "--batch-size", "2", "--out", str(tmp_path / "t.safetensors"), "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays pure JSON
    blank = "\r" + " " * 72 + "\r"
    encoding = "".join(f"\rqgn finetune: encoding {i}/2 images".ljust(72) for i in (0, 1)) + blank
    comparing = "".join(f"\rqgn finetune: comparing before and after on {i}/2 images".ljust(72) for i in (0, 1)) + blank
    assert encoding in captured.err
    assert comparing in captured.err
    assert captured.err.index(encoding) < captured.err.index("1/1 loss") < captured.err.index(comparing)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert main([*args, "--force"]) == 0
    assert "encoding" not in capsys.readouterr().err, "off a terminal: no \\r lines of these passes"


def test_cli_encoder_auto_is_the_docks_automatic_and_the_default(finetune_data, capsys, tmp_path, monkeypatch):
    """`qgn finetune` had no Automatic (``--encoder frozen`` by default, ``auto`` refused) where the
    Fine-tune dock's default is Automatic: now ``--encoder auto`` (the default) is
    ``auto_encoder`` on the images it trains on — the decoder alone under ENCODER_LEARNS_FROM
    images, the encoder too from there — and frozen / train still force either."""
    model = save_model(tmp_path / "m.safetensors", tiny_model())
    base = ["finetune", "--model", str(model), "--images", str(finetune_data / "s" / "images"),
            "--labels", str(finetune_data / "s" / "labels"), "--iters", "1", "--batch-size", "2", "--json"]

    def learnt(*more, name):
        out = tmp_path / f"{name}.safetensors"
        assert main([*base, "--out", str(out), *more]) == 0
        err = capsys.readouterr().err
        return load_model(out).config.extra["finetune"]["config"]["encoder"], err

    encoder, err = learnt(name="default")  # 2 images, under 32: the decoder alone, and it says so
    assert encoder == "frozen" and "--encoder auto: 2 image(s): the decoder alone learns" in err
    assert learnt("--encoder", "auto", name="auto")[0] == "frozen"
    monkeypatch.setattr(ft, "ENCODER_LEARNS_FROM", 2)  # the same rule as the dock's: 2 images are now enough
    encoder, err = learnt(name="auto2")
    assert encoder == "train" and "the encoder learns too" in err
    assert learnt("--encoder", "frozen", name="frozen")[0] == "frozen"  # forced either way
    monkeypatch.setattr(ft, "ENCODER_LEARNS_FROM", 32)
    assert learnt("--encoder", "train", name="train")[0] == "train"


def test_cli_refuses_to_write_over_the_model_even_with_force(finetune_data, capsys, tmp_path):
    model = save_model(tmp_path / "m.safetensors", tiny_model())
    model_digest = digest(model)
    rc = main(["finetune", "--model", str(model), "--images", str(finetune_data / "s" / "images"),
               "--labels", str(finetune_data / "s" / "labels"), "--out", str(model), "--force"])
    assert rc == 2 and "is the model being fine-tuned" in capsys.readouterr().err
    assert digest(model) == model_digest


def test_cli_label_errors_ignore_value_and_qgt_labels(finetune_data, capsys, tmp_path):
    model = save_model(tmp_path / "m.safetensors", tiny_model())
    images = tmp_path / "images"
    labels = tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    image, label = make_scene(5, 32, 40)
    from PIL import Image

    Image.fromarray(image).save(images / "a.png")
    Image.fromarray(image).save(images / "b.png")  # no label: skipped
    bad = label.copy()
    bad[:4, :4] = 77
    write_label_png(labels / "a.png", bad)
    base = ["finetune", "--model", str(model), "--images", str(images), "--labels", str(labels), "--iters", "1"]
    assert main([*base, "--out", str(tmp_path / "o1.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "a.png: label values [77]" in err and "--ignore" in err
    assert not (tmp_path / "o1.safetensors").exists()
    assert main([*base, "--ignore", "77", "--out", str(tmp_path / "o2.safetensors")]) == 0
    assert "1 image(s) without a label skipped" in capsys.readouterr().err
    (labels / "a.png").unlink()
    write_qgt(labels / "a.qgt", Quadtree.from_label(bad, 8, 77))
    assert main([*base, "--out", str(tmp_path / "o3.safetensors"), "--json"]) == 0  # .qgt ignore value mapped
    assert json.loads(capsys.readouterr().out)["iterations_done"] == 1
    assert main([*base[:-2], "--labels", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o4.safetensors")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "o5.bin")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err


def test_cli_ctrl_c_saves_nothing(finetune_data, capsys, tmp_path, monkeypatch):
    model = save_model(tmp_path / "m.safetensors", tiny_model())
    real_step = ft.train_step
    steps = []

    def interrupt_at_second_step(*args, **kwargs):
        steps.append(1)
        if len(steps) == 2:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(ft, "train_step", interrupt_at_second_step)
    out = tmp_path / "tuned.safetensors"
    rc = main(["finetune", "--model", str(model), "--images", str(finetune_data / "s" / "images"),
               "--labels", str(finetune_data / "s" / "labels"), "--iters", "5", "--batch-size", "1", "--out", str(out)])
    assert rc == 130
    assert "interrupted after 1 iterations; nothing saved" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".json").exists()



def test_cli_ctrl_c_while_comparing_saves_nothing_and_says_so_on_its_own_line(finetune_data, capsys, tmp_path,
                                                                               monkeypatch):
    # the comparison sat outside the Ctrl-C handling: 'qgn finetune: interrupted' was glued onto
    # the end of 'qgn finetune: comparing before and after on 2/12 images · about 4 s left'
    import sys

    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    model = save_model(tmp_path / "m.safetensors", tiny_model())
    real_predict, calls = ft.predict, []

    def interrupt_at_the_second_image(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # (before and after on each image)
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(ft, "predict", interrupt_at_the_second_image)
    out = tmp_path / "tuned.safetensors"
    rc = main(["finetune", "--model", str(model), "--images", str(finetune_data / "s" / "images"),
               "--labels", str(finetune_data / "s" / "labels"), "--iters", "1", "--batch-size", "1", "--out", str(out)])
    assert rc == 130
    err = capsys.readouterr().err
    assert "comparing before and after on 1/2 images" in err
    last = err.split("\n")[-2]
    assert last.split("\r")[-1].startswith("qgn finetune: interrupted while comparing before and after; nothing saved")
    assert last.split("\r")[-2].strip() == ""  # the comparison's line was blanked first
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_compare_models_stops_before_the_next_image_when_asked(scenes):
    images, labels = scenes
    model, other = tiny_model(0), tiny_model(1)
    seen = []
    stop = compare_models(model, other, images * 2, labels * 2, progress=lambda done, total: seen.append(done),
                          should_stop=lambda: len(seen) == 3)  # asked after (0, 4) and two images
    assert stop is None and seen == [0, 1, 2]
    whole = compare_models(model, other, images, labels, should_stop=lambda: False)
    assert len(whole.per_image) == 2

# --------------------------------------------------------- the CLI checks everything before training
def finetune_inputs(tmp_path: Path) -> tuple[Path, Path]:
    write_photo(tmp_path / "imgs" / "a.png", (32, 32))
    write_mask(tmp_path / "labels" / "a.png", 1, (32, 32))
    return tmp_path / "imgs", tmp_path / "labels"


def test_finetune_checks_out_before_training(tmp_path, capsys, model_path, run_cli):
    images, labels = finetune_inputs(tmp_path)
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("finetune", "--model", model_path, "--images", images, "--labels", labels,
                           "--iters", "1", "--out", tmp_path / "file" / "new.safetensors")
    assert code == 2 and "is a file, not a folder" in err and "finetune: 1/" not in err


def test_finetune_hint_only_for_label_values(tmp_path, capsys, model_path, run_cli):
    images, labels = finetune_inputs(tmp_path)
    write_mask(labels / "a.png", 1, (16, 16))  # the wrong size, values fine
    code, _, err = run_cli("finetune", "--model", model_path, "--images", images, "--labels", labels,
                           "--iters", "1", "--out", tmp_path / "new.safetensors")
    assert code == 2 and "--ignore" not in err


def test_finetune_bad_image_is_one_line_before_training(tmp_path, capsys, model_path, run_cli):
    images, labels = finetune_inputs(tmp_path)
    (images / "a.png").write_bytes(b"not an image")
    code, _, err = run_cli("finetune", "--model", model_path, "--images", images, "--labels", labels,
                           "--iters", "1", "--out", tmp_path / "new.safetensors")
    assert code == 2 and "a.png" in err and len(err.strip().splitlines()) == 1, err
