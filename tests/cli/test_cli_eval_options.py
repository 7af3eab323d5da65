"""`qgn eval` refuses options that would make no evaluation, or a wrong one, before it evaluates:
one line naming the option, exit 2 — not an IndexError, an overflow, a huge allocation, a table of
NaN, or a --record refused (or overwritten) after the whole run."""
import shutil

import pytest
import torch

from qgn.cli.samples import write_samples
from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.model.checkpoint import save_model
from qgn.model.qgn import QGN, QGNConfig


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_options")
    torch.manual_seed(0)
    model_path = save_model(root / "m.safetensors", QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    write_samples(root / "s1", 2, 64, 48, 7)
    return root, model_path


def eval_args(workspace, *extra, data=None):
    root, model = workspace
    return ["eval", data or root / "s1", "--model", model, "--device", "cpu", "--threads", "1", "--json", *extra]


@pytest.mark.parametrize("extra, named", [
    (["--depths", "9"], "--depths 9: 9 is not a level of this model; use 0..5"),
    (["--depths", "-1"], "use 0..5"),
    (["--depths", "x"], "--depths x: 'x' is not a whole number"),
    (["--scale", "nan"], "--scale nan: expected a finite factor > 0"),
    (["--scale", "0"], "--scale 0: expected a finite factor > 0"),
    (["--scale", "-1"], "--scale -1"),
    (["--scale", "1e9"], "more than the limit"),
    (["--scale", "1000", "--limit", "1"], "use a smaller --scale"),
    # 1e-9 evaluated 1x1 images and exited 0; 48 px * 0.5 is below one coarsest cell (32 px)
    (["--scale", "1e-9"], "1×1 pixels, less than one cell of the model's coarsest level (32 px)"),
    (["--scale", "0.5"], "32×24 pixels, less than one cell of the model's coarsest level (32 px) on its shorter "
                         "side; use --scale 0.667 or more"),
    (["--limit", "0"], "--limit 0: expected a number of images >= 1"),
    (["--limit", "-1"], "--limit -1"),
    (["--modes", ","], "--modes ',' names no scheme"),
    (["--modes", "foo"], "--modes foo: unknown propagation scheme"),
    (["--tau", "2"], "--tau 2.0: tau must be in [0, 1]"),
])
def test_bad_options_are_refused_naming_the_option(workspace, run_cli, extra, named):
    code, out, err = run_cli(*eval_args(workspace, *extra))
    assert code == 2 and out == ""
    assert err.startswith("qgn eval: error: ") and named in err and len(err.strip().splitlines()) == 1
    assert "unexpected" not in err


def test_a_scale_within_the_pixel_limit_still_runs(workspace, run_cli, monkeypatch):
    monkeypatch.setenv("QGN_MAX_PIXELS", str(128 * 96))
    assert run_cli(*eval_args(workspace, "--scale", "2", "--modes", "pc"))[0] == 0
    code, out, err = run_cli(*eval_args(workspace, "--scale", "2.1", "--modes", "pc"))
    assert code == 2 and "QGN_MAX_PIXELS" in err and "--scale" in err


def test_a_split_a_folder_does_not_have_is_refused_or_said_not_to_apply(workspace, tmp_path, run_cli):
    root, _ = workspace
    code, out, err = run_cli(*eval_args(workspace, "--split", "nosuch", "--modes", "pc"))
    assert code == 0 and "--split nosuch does not apply" in err  # a folder without splits: said, not silent
    split_root = tmp_path / "splits"
    shutil.copytree(root / "s1", split_root / "val")
    shutil.copy(root / "s1" / "classes.txt", split_root / "classes.txt")
    code, out, err = run_cli(*eval_args(workspace, "--split", "val", "--modes", "pc", data=split_root))
    assert code == 0 and "does not apply" not in err
    code, out, err = run_cli(*eval_args(workspace, "--split", "test", "--modes", "pc", data=split_root))
    assert code == 2 and "--split test" in err and "it has val" in err


def test_record_is_checked_before_evaluating_and_needs_force_to_replace(workspace, tmp_path, run_cli, monkeypatch):
    import qgn.cli.eval as eval_cli

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated although --record was unusable")

    root, _ = workspace
    monkeypatch.setattr("qgn.evaluate.evaluate", no_evaluation)
    label = root / "s1" / "labels" / "scene_01.png"
    before = label.read_bytes()
    code, out, err = run_cli(*eval_args(workspace, "--record", label))
    assert code == 2 and "--record must end in .safetensors" in err and label.read_bytes() == before
    existing = tmp_path / "old.safetensors"
    existing.write_bytes(b"precious")
    code, out, err = run_cli(*eval_args(workspace, "--record", existing))
    assert code == 2 and "pass --force" in err and existing.read_bytes() == b"precious"
    (tmp_path / "file").write_text("")
    code, out, err = run_cli(*eval_args(workspace, "--record", tmp_path / "file" / "r.safetensors"))
    assert code == 2 and "is a file, not a folder" in err
    monkeypatch.undo()
    code, out, err = run_cli(*eval_args(workspace, "--record", existing, "--force", "--modes", "pc"))
    assert code == 0 and existing.read_bytes() != b"precious"
    assert eval_cli.DEFAULT_SPLIT == "val"
