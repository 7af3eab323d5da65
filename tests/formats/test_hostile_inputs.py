"""Hostile inputs (issue #20): every import format fuzzed (Hypothesis mutations of a valid
dataset's documents), sizes a file claims, paths that lead outside the dataset, malformed
settings, a diverging training run, and exceptions nobody anticipated. What must hold: every
failure is one line and exit 2, a batch reports a bad item and goes on, memory follows what the
input honestly contains, and nothing is read or written outside the folders the user named."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from qgn.cli.main import main
from qgn.project import Project

from hostile_cases import (
    HOSTILE_VALUES, NAMES, TEXT_SOURCE, VALID_TEXT, claimed_size_cases, coco_doc, honest_baseline_case, image,
    json_paths, labelme_doc, labelstudio_doc, mutate, run_measured, write_json_dataset, write_text_dataset,
)

REPO = Path(__file__).resolve().parents[2]
UNEXPECTED = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b: |Traceback|unexpected ")
BASE_DOCS = {"coco": coco_doc, "labelme": labelme_doc, "labelstudio": labelstudio_doc}
SOURCES = {"coco": lambda r: r, "labelme": lambda r: r, "labelstudio": lambda r: r / "tasks.json"}


def check_clean(code: int, out: str, err: str, command: str = "import") -> None:
    """Exit 0 or 2; at most one error line, of the form 'qgn CMD: error: …'; no traceback and no
    exception nobody anticipated (in the error or in any item's reason)."""
    assert code in (0, 2), (code, out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(f"qgn {command}: warning: ")]
    assert len(lines) <= 1 and all(line.startswith(f"qgn {command}: error: ") for line in lines), err
    assert not UNEXPECTED.search(err) and not UNEXPECTED.search(out), out + err
    if code == 2:
        assert lines, "exit 2 says why"


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VALUES = st.one_of(st.sampled_from(HOSTILE_VALUES), st.integers(-(2**70), 2**70),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                   st.lists(st.integers(-5, 300), max_size=5))


# --------------------------------------------------------------------------- schema fuzzing
@pytest.mark.parametrize("fmt", ["coco", "labelme", "labelstudio"])
@FUZZ
@given(data=st.data())
def test_json_import_formats_fuzzed(fmt, data, tmp_path_factory, capsys, snapshot, run_cli):
    doc = BASE_DOCS[fmt]()
    path = data.draw(st.sampled_from(json_paths(doc)), label="path")
    delete = data.draw(st.booleans(), label="delete") and isinstance(path[-1], str)
    value = None if delete else data.draw(VALUES, label="value")
    base = tmp_path_factory.mktemp(fmt)
    root = write_json_dataset(base / "ds", fmt, mutate(doc, path, value, delete))
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes((root / "images" / "a.png").read_bytes())
    before, around = snapshot(root), snapshot(outside)
    code, out, err = run_cli("import", SOURCES[fmt](root), "--project", base / "p")
    check_clean(code, out, err)
    assert snapshot(root) == before and snapshot(outside) == around  # inputs and other folders untouched
    assert files_of(base) <= files_of(base) & ({"ds", "outside", "p"} | {f for f in files_of(base)
                                                                        if f.split("/")[0] in ("ds", "outside", "p")})
    if (base / "p" / "project.json").is_file():
        project = Project.open(base / "p")
        assert all(str(im.path).startswith(str(root)) for im in project.images)  # never an image from outside
        assert all(name.strip() and name != "None" for name in project.classes.names)


@pytest.mark.parametrize("fmt", ["cvat", "camvid", "cityscapes", "ids"])
@FUZZ
@given(lines=st.lists(st.one_of(
    st.sampled_from(["background:0,0,0::", "sky:1,2,3::", "sky:128,128,128::", "1 2 3 sky", "0 0 0 background",
                     "sky", "road", "ignore: 999", "ignore: x", "999 0 0 road", "-1 0 0 road", "x:y:z", ":::",
                     "a b c d e", "# comment", "", "\u00e9t\u00e9 1 2 3", "road:1,2", "car 9 9 9"]),
    st.text(max_size=12)), max_size=6))
def test_text_import_formats_fuzzed(fmt, lines, tmp_path_factory, capsys, snapshot, run_cli):
    base = tmp_path_factory.mktemp(fmt)
    root = write_text_dataset(base / "ds", fmt, VALID_TEXT[fmt] + "\n".join(lines) + "\n")
    before = snapshot(root)
    code, out, err = run_cli("import", TEXT_SOURCE[fmt](root), "--project", base / "p", "--format", fmt)
    check_clean(code, out, err)
    assert snapshot(root) == before


# --------------------------------------------------------------------------- claimed sizes
def test_claimed_sizes_are_refused_before_anything_is_allocated(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    _, baseline, err, _ = run_measured(honest_baseline_case(tmp_path), env)
    assert baseline > 0, err
    worst = 0
    for name, args in claimed_size_cases(tmp_path).items():
        code, peak, err, _seconds = run_measured(args, env)  # (time: benchmarks/bench_hostile_inputs.py)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"qgn {args[0]}: error: "), (name, err)
        assert not UNEXPECTED.search(err), (name, err)
        assert peak - baseline < 100_000, f"{name}: {peak / 1e3:.0f} MB peak, honest baseline {baseline / 1e3:.0f} MB"
        worst = max(worst, peak)
    print(f"worst peak of the claimed-size cases: {worst / 1e3:.0f} MB (honest baseline {baseline / 1e3:.0f} MB)")


def test_a_claimed_size_within_the_limit_is_checked_against_the_image(tmp_path, capsys, run_cli):
    doc = coco_doc()
    doc["images"][0]["width"] = 40
    root = write_json_dataset(tmp_path / "ds", "coco", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "a: skipped" in out and "claims 40×8 pixels but its image" in out
    assert "imported 1 of 2" in out  # the batch went on


def test_qgt_readers_apply_the_one_pixel_limit(tmp_path, monkeypatch, capsys, run_cli):
    from hostile_cases import qgt_claiming

    path = tmp_path / "big.qgt"
    path.write_bytes(qgt_claiming(11585, 11585))
    code, out, err = run_cli("export", path, "--png", tmp_path / "out.png")
    assert code == 2 and "QGN_MAX_PIXELS" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()
    monkeypatch.setenv("QGN_MAX_PIXELS", str(300 * 200))
    path.write_bytes(qgt_claiming(300, 200))
    assert run_cli("export", path, "--png", tmp_path / "ok.png")[0] == 0
    path.write_bytes(qgt_claiming(301, 200))
    assert run_cli("export", path, "--png", tmp_path / "no.png")[0] == 2


# --------------------------------------------------------------------------- paths outside the dataset
@pytest.mark.parametrize("image_path", ["../../outside/secret.png", "ABSOLUTE"])
def test_labelme_image_path_outside_the_dataset_is_refused(tmp_path, capsys, image_path, run_cli):
    outside = tmp_path / "outside"
    image(outside / "secret.png")
    doc = labelme_doc()
    doc["imagePath"] = str(outside / "secret.png") if image_path == "ABSOLUTE" else image_path
    root = tmp_path / "ds" / "sub"
    root.mkdir(parents=True)
    (root / "a.json").write_text(json.dumps(doc))
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "outside the dataset folder" in out + err or "absolute path" in out + err
    assert not (tmp_path / "p").exists()  # nothing imported: no project either


def test_coco_absolute_file_name_is_refused(tmp_path, capsys, run_cli):
    outside = tmp_path / "outside"
    image(outside / "secret.png")
    doc = coco_doc()
    doc["images"][0]["file_name"] = str(outside / "secret.png")
    root = write_json_dataset(tmp_path / "ds", "coco", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "absolute path" in out and "imported 1 of 2" in out
    assert all("secret" not in str(im.path) for im in Project.open(tmp_path / "p").images)


@pytest.mark.parametrize("layout", ["coco", "labelme", "labelstudio"])
def test_an_image_name_longer_than_a_file_name_can_be_is_one_skipped_item(tmp_path, capsys, layout, run_cli):
    """A COCO ``file_name`` (or labelme ``imagePath``, Label Studio local-files path) of 300
    characters: the file system's "File name too long" stopped the whole import, nothing imported;
    it is an image not found."""
    long_name = "x" * 300 + ".png"
    if layout == "labelstudio":
        tasks = labelstudio_doc() + labelstudio_doc()
        tasks[0]["data"]["image"] = "/data/local-files/?d=" + long_name
        tasks[1] = {**tasks[1], "id": 2, "data": {"image": "b.png"}}
        root = write_json_dataset(tmp_path / "ds", "labelstudio", tasks)
        image(root / "b.png")
        root = root / "tasks.json"
    elif layout == "coco":
        doc = coco_doc()
        doc["images"][0]["file_name"] = long_name
        root = write_json_dataset(tmp_path / "ds", "coco", doc)
    else:
        doc = labelme_doc("a")
        doc["imagePath"] = long_name
        root = write_json_dataset(tmp_path / "ds", "labelme", doc)
        (root / "b.json").write_text(json.dumps(labelme_doc("b")))
        image(root / "b.png")
        (root / "a.png").unlink()  # else found by the JSON's own name, as labelme does
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "imported 1 of 2" in out and len(err.strip().splitlines()) == 1, out + err
    assert [Path(im.path).name for im in Project.open(tmp_path / "p").images] == ["b.png"]


def test_a_camvid_list_line_naming_an_image_longer_than_a_file_name_is_one_skipped_item(tmp_path, run_cli):
    """The CamVid (Datumaro) list's image path of 300 characters stopped the whole import ("File
    name too long"), as COCO's did: the line's mask is an item whose image is not found."""
    root = write_text_dataset(tmp_path / "camvid", "camvid", VALID_TEXT["camvid"])
    (root / "default.txt").write_text("/default/a.png /defaultannot/a.png\n/default/" + "x" * 300 +
                                      ".png /defaultannot/b.png\n")
    shutil.copy(root / "defaultannot" / "a.png", root / "defaultannot" / "b.png")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p", "--format", "camvid")
    assert code == 2 and "imported 1 of 2" in out and "no image found" in err, out + err
    assert [Path(im.path).name for im in Project.open(tmp_path / "p").images] == ["a.png"]


def test_a_fiftyone_manifest_naming_an_image_longer_than_a_file_name_does_not_stop_the_import(tmp_path, run_cli):
    """FiftyOne's data.json mapping a mask to an image path of 300 characters stopped the whole
    import; that path is passed over (the mask's image is then looked up by name, as for any path
    that is not there)."""
    root = tmp_path / "ds"
    (root / "labels").mkdir(parents=True)
    (root / "data").mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.ones((8, 12), np.uint8), "L").save(root / "labels" / f"{name}.png")
        Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(root / "data" / f"{name}.png")
    (root / "data.json").write_text(json.dumps({"a.png": "data/a.png", "b.png": "data/" + "x" * 300 + ".png"}))
    (tmp_path / "classes.txt").write_text("a\nb\n")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p", "--format", "fiftyone",
                             "--classes", tmp_path / "classes.txt")
    assert code == 0 and "imported 2 of 2" in out, out + err


@pytest.mark.parametrize("fmt", ["cvat", "cityscapes", "ids"])
def test_mask_links_pointing_outside_are_refused(tmp_path, capsys, fmt, run_cli):
    root = write_text_dataset(tmp_path / "ds", fmt, VALID_TEXT[fmt])
    mask = next(p for p in root.rglob("*.png") if "JPEGImages" not in str(p) and "leftImg8bit" not in str(p)
                and "images" not in p.parts)
    private = tmp_path / "private.png"
    shutil.copy(mask, private)
    mask.unlink()
    mask.symlink_to(private)
    code, out, err = run_cli("import", TEXT_SOURCE[fmt](root), "--project", tmp_path / "p", "--format", fmt)
    assert code == 2 and "outside the dataset folder" in out + err, out + err
    assert not (tmp_path / "p").exists()


def test_image_links_pointing_outside_are_not_imported(tmp_path, capsys, run_cli):
    root = write_text_dataset(tmp_path / "ds", "cvat", VALID_TEXT["cvat"])
    image(tmp_path / "private.png")
    (root / "JPEGImages" / "a.png").unlink()
    (root / "JPEGImages" / "a.png").symlink_to(tmp_path / "private.png")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "no image found" in out


# --------------------------------------------------------------------------- schema: one line, no guesses
def test_malformed_labelme_shapes_are_refused_not_guessed(tmp_path, capsys, run_cli):
    for name, shape in {"null_label": {"label": None, "points": [[0, 0], [5, 0], [5, 5]]},
                        "nan": {"label": "sky", "points": [[0, 0], [float("nan"), 0], [5, 5]]},
                        "inf": {"label": "sky", "points": [[0, 0], [1e999, 0], [5, 5]]}}.items():
        doc = labelme_doc()
        doc["shapes"].append(shape)
        root = tmp_path / name
        write_json_dataset(root, "labelme", doc)
        code, out, err = run_cli("import", root, "--project", tmp_path / f"p-{name}")
        assert code == 2 and len(err.strip().splitlines()) == 1 and not UNEXPECTED.search(out + err), out + err
        assert not (tmp_path / f"p-{name}").exists()


@pytest.mark.parametrize("setting", ["log_every=0", "checkpoint_every=0", "iterations=abc", "lr=1e9", "lr=nan",
                                     "lr=inf", "batch_size=100000", "input_scale=0", "crop=-1", "flip=3"])
def test_training_settings_are_bounded(tmp_path, capsys, setting, run_cli):
    code, out, err = run_cli("train", "--preset", "demo", "--set", setting, "--out", tmp_path / "run",
                         "--threads", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and setting.split("=")[0] in err, err
    assert not (tmp_path / "run").exists()


def test_a_training_config_is_read_only_as_far_as_a_config_goes(tmp_path, capsys, run_cli):
    """A 1 GiB --config (before: read whole, 2.3 GB peak, then 'Invalid statement') is one line
    naming the file; a binary one too."""
    config = tmp_path / "train.toml"
    config.write_text("iterations = 5\n")
    os.truncate(config, 1 << 30)  # (how far it is read: tests/quadtree/test_label_io.py, the same reader)
    code, out, err = run_cli("train", "--config", config, "--out", tmp_path / "run", "--threads", "1")
    assert code == 2 and err.strip() == (f"qgn train: error: {config} is over 1 MiB: too big for a training config "
                                         "(TOML) - is it the right file?"), err
    assert not (tmp_path / "run").exists()
    config.write_bytes(b"iterations = 5\n\x00\x00")
    code, out, err = run_cli("train", "--config", config, "--out", tmp_path / "run", "--threads", "1")
    assert code == 2 and "is a binary file" in err and len(err.strip().splitlines()) == 1, err


def test_finetune_options_are_bounded_before_anything_is_read(tmp_path, capsys, run_cli):
    code, out, err = run_cli("finetune", "--model", "demo", "--images", tmp_path / "nowhere", "--labels",
                         tmp_path / "nowhere", "--out", tmp_path / "new.safetensors", "--batch-size", "100000")
    assert code == 2 and "batch_size" in err and len(err.strip().splitlines()) == 1, err


def test_model_config_sizes_are_bounded_before_allocating(tmp_path, capsys, run_cli):
    from qgn.resources import default_model

    source = default_model("demo")
    for field, value in {"encoder_width": 64, "input_scale": 0, "decoder_units": [1, 1, 1, 1, 100]}.items():
        weights = tmp_path / f"{field}.safetensors"
        shutil.copy(source, weights)
        doc = json.loads(source.with_suffix(".json").read_text())
        doc["config"][field] = value
        weights.with_suffix(".json").write_text(json.dumps(doc))
        image(tmp_path / "photo.png", (64, 64))
        code, out, err = run_cli("predict", "--model", weights, tmp_path / "photo.png", "--out", tmp_path / "o",
                             "--threads", "1")
        assert code == 2 and field in err and len(err.strip().splitlines()) == 1, err


# --------------------------------------------------------------------------- batches go on; the catch-all
@pytest.mark.parametrize("failure", [MemoryError, KeyError, TypeError, Image.DecompressionBombError, OverflowError])
def test_an_import_batch_reports_any_failure_and_goes_on(tmp_path, capsys, monkeypatch, failure, run_cli):
    import qgn.formats.labelme as labelme

    root = tmp_path / "ds"
    write_json_dataset(root, "labelme", labelme_doc("a"))
    (root / "b.json").write_text(json.dumps(labelme_doc("b")))
    image(root / "b.png")
    real = labelme.read_labelme_document

    def flaky(doc, classes, source, mapping=None):
        if Path(source).stem == "a":
            raise failure("boom")
        return real(doc, classes, source, mapping)

    monkeypatch.setattr(labelme, "read_labelme_document", flaky)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "a: skipped" in out and "imported 1 of 2" in out, out + err
    assert len(err.strip().splitlines()) == 1
    assert [im.key for im in Project.open(tmp_path / "p").images] == ["b"]


def test_an_unanticipated_exception_is_one_line_and_a_log(tmp_path, capsys, monkeypatch, run_cli):
    import qgn.cli.stats as stats

    def broken(args):
        raise TypeError("something nobody foresaw")

    monkeypatch.setattr(stats, "run", broken)
    monkeypatch.setenv("QGN_LOG_DIR", str(tmp_path / "logs"))
    code, out, err = run_cli("stats", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "TypeError: something nobody foresaw" in err
    logs = list((tmp_path / "logs").glob("qgn-stats-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    assert "Traceback" in logs[0].read_text() and "something nobody foresaw" in logs[0].read_text()


def test_an_import_where_every_item_fails_creates_no_project(tmp_path, capsys, run_cli):
    doc = labelme_doc()
    doc["shapes"][0]["label"] = "zebra"
    root = write_json_dataset(tmp_path / "ds", "labelme", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p", "--classes",
                         write_classes(tmp_path))
    assert code == 2 and "no project was created" in err and not (tmp_path / "p").exists()


def write_classes(folder: Path) -> Path:
    path = folder / "classes.txt"
    path.write_text("\n".join(NAMES) + "\n")
    return path


# --------------------------------------------------------------------------- duplicate class names and ids
def test_duplicate_class_names_are_refused_with_file_and_line(tmp_path, capsys, run_cli):
    from qgn.classes import ClassSet, parse_classes_txt

    with pytest.raises(ValueError, match=r"classes.txt line 4: class 'Sky' repeats 'sky' of line 1"):
        parse_classes_txt("sky\nroad\ncar\nSky\n", "classes.txt")
    with pytest.raises(ValueError, match="names must differ"):
        ClassSet(("sky", "road", "sky"))
    root = write_text_dataset(tmp_path / "cvat", "cvat", VALID_TEXT["cvat"] + "sky:1,2,3::\n")
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "labelmap.txt line 5" in err and "repeats 'sky' of line 3" in err, err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("case", ["same name", "renamed twin", "same id", "image ids"])
def test_coco_duplicates_are_refused(tmp_path, capsys, case, run_cli):
    doc = coco_doc()
    if case == "same name":
        doc["categories"].append({"id": 9, "name": "sky"})
    elif case == "renamed twin":
        doc["categories"].append({"id": 9, "name": "Sky "})
    elif case == "same id":
        doc["categories"][2]["id"] = 1
    else:
        doc["images"][1]["id"] = 1  # the second image would get the first one's annotations
        doc["annotations"][1]["image_id"] = 1
    root = write_json_dataset(tmp_path / "ds", "coco", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "instances_default.json" in out + err and not UNEXPECTED.search(out + err), out + err
    words = {"same name": "categories", "renamed twin": "categories", "same id": "id 1",
             "image ids": "has the id 1 of images[0]"}[case]
    assert words in out + err
    if case != "image ids":
        assert not (tmp_path / "p").exists()


def test_a_project_json_with_duplicate_class_names_is_refused(tmp_path):
    from qgn.classes import ClassSet
    from qgn.project import ProjectError

    Project.create(tmp_path / "p", [], ClassSet(("sky", "road"), (), 255))
    doc = json.loads((tmp_path / "p" / "project.json").read_text())
    doc["classes"]["names"] = ["sky", "sky"]
    (tmp_path / "p" / "project.json").write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="project.json.*sky"):
        Project.open(tmp_path / "p")


# --------------------------------------------------------------------------- training never loses a good checkpoint
def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys, run_cli):
    import qgn.train.loop as loop

    real = loop.train_step
    calls = [0]

    def diverging(*args, **kwargs):
        result = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] >= 3:
            result.loss = float("nan")
        return result

    monkeypatch.setattr(loop, "train_step", diverging)
    out = tmp_path / "run"
    args = ["train", "--preset", "demo", "--set", "iterations=6", "--set", "checkpoint_every=2", "--set",
            "synthetic_n=4", "--set", "synthetic_size=64", "--set", "batch_size=1", "--set", "crop=0",
            "--set", "log_every=1", "--out", out, "--threads", "1", "--device", "cpu"]
    code, _, err = run_cli(*args)
    assert code == 2 and "diverged" in err and "iteration 2" in err and "--resume" in err, err
    assert len([line for line in err.splitlines() if "error" in line]) == 1
    assert json.loads((out / "last.state.json").read_text())["iteration"] == 2
    assert not (out / "final.safetensors").exists()
    from qgn.model.checkpoint import load_model

    load_model(out / "last.safetensors")  # finite: it loads (NaN weights are refused)


def test_training_on_labels_without_a_labelled_pixel_saves_nothing(tmp_path, capsys, run_cli):
    data = tmp_path / "data"
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    for i in range(2):
        image(data / "images" / f"{i}.png", (64, 64))
        Image.fromarray(np.full((64, 64), 255, np.uint8), "L").save(data / "labels" / f"{i}.png")
    (data / "classes.txt").write_text("sky\nroad\n")
    code, _, err = run_cli("train", "--set", f"dataset='{data}'", "--set", "iterations=2", "--set",
                       "batch_size=1", "--set", "crop=0", "--out", tmp_path / "run", "--threads", "1",
                       "--device", "cpu")
    assert code == 2 and "no labelled pixel" in err, err
    assert not list((tmp_path / "run").glob("*.safetensors"))


# --------------------------------------------------------------------------- stale temporaries
def test_stale_temporaries_are_cleaned_where_commands_write(tmp_path, capsys, run_cli):
    import time

    from qgn.formats import FORMATS
    from qgn.classes import ClassSet

    classes = ClassSet(NAMES, (), 255)
    FORMATS["qgt"].write(np.zeros((8, 12), np.int64), classes, tmp_path, "m")
    old = time.time() - 3600

    def stale(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".x.png.abc12345.tmp"
        tmp.write_bytes(b"half")
        os.utime(tmp, (old, old))
        return tmp

    png_tmp = stale(tmp_path / "png")
    deep_tmp = stale(tmp_path / "cs" / "gtFine" / "train" / "default")
    assert run_cli("export", tmp_path / "m.qgt", "--png", tmp_path / "png" / "m.png")[0] == 0
    assert run_cli("export", tmp_path / "m.qgt", "--format", "cityscapes", "--out", tmp_path / "cs")[0] == 0
    assert not png_tmp.exists() and not deep_tmp.exists()


# --------------------------------------------------------------------------- export memory per output pixel
def test_qgt_to_png_export_needs_about_two_bytes_per_pixel(tmp_path, capsys):
    import tracemalloc

    from qgn.classes import ClassSet
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import write_qgt

    side = 2048
    label = np.zeros((side, side), np.uint8)
    label[300:900, 100:1900] = 1
    label[1000:1999, 7:1500] = 2
    write_qgt(tmp_path / "m.qgt", Quadtree.from_label(label, 3, 255, 6), ClassSet(NAMES, (), 255))
    del label
    tracemalloc.start()
    try:
        code = main(["export", str(tmp_path / "m.qgt"), "--png", str(tmp_path / "m.png")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0
    per_pixel = peak / side**2
    print(f"{per_pixel:.2f} bytes per output pixel")
    assert per_pixel < 3.0, f"{per_pixel:.2f} bytes per output pixel"  # now 2.45; 7d1642e: 3.7


@pytest.mark.parametrize("fmt", ["labelme", "coco", "labelstudio"])
@pytest.mark.parametrize("how", ["../data/x/ds", "data/x/ds", "./data/../data/x/ds"])
def test_a_dataset_named_by_a_relative_path_imports_as_by_its_full_path(tmp_path, monkeypatch, run_cli, fmt, how):
    """`qgn import ../out/x/labelme` refused every file ('leads outside the dataset folder'): walk-found
    paths, relative already, were joined to the relative root again. The root is made absolute first."""
    doc = BASE_DOCS[fmt]()
    write_json_dataset(tmp_path / "data" / "x" / "ds", fmt, doc)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / ("cwd" if how.startswith("..") else ""))
    code, out, err = run_cli("import", how, "--format", fmt, "--project", tmp_path / "p")
    assert code == 0 and re.search(r"imported (\d+) of \1 ", out), out + err
    code, whole, err = run_cli("import", tmp_path / "data" / "x" / "ds", "--format", fmt, "--project", tmp_path / "q")
    assert code == 0 and out.splitlines()[1:] == [line.replace("/q", "/p") for line in whole.splitlines()[1:]], err
