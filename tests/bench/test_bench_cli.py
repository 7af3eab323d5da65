"""`qgn bench` end to end on tiny networks: JSON rows, the anytime files, and errors."""
from __future__ import annotations

import re

import json

import pytest
import torch

from qgn.cli.main import main
from qgn.model.checkpoint import save_model
from qgn.model.qgn import QGN, QGNConfig
from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.resources import demo_model_path


def test_json_rows_of_every_section(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    model_path = tmp_path / "m.safetensors"
    save_model(model_path, QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    code = main(["bench", "--json", "--sizes", "64x64", "--images", "1", "--architectures", "tiny",
                 "--data", "synthetic", "--model", str(model_path), "--speed-size", "64x64", "--repeats", "1",
                 "--anytime-images", "2", "--out", str(tmp_path / "out"), "--threads", "1"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len({r["name"] for r in rows}) == len(rows)
    assert {r["section"] for r in rows} == {"memory", "compute", "speed", "anytime"}
    for r in rows:
        assert list(r)[:5] == ["name", "bytes", "macs", "seconds", "device"]
    memory = {r["column"]: r for r in rows if r["section"] == "memory"}
    assert memory["GTC"]["bytes"] < memory["All"]["bytes"] and "PC" in memory
    assert all(r["seconds"] > 0 for r in rows if r["section"] == "speed")
    assert (tmp_path / "out" / "anytime-synthetic.csv").is_file()
    summary = next(r for r in rows if r["name"] == "anytime/within 1 mIoU point of All")
    assert summary["images"] == 2
    # every row says where it came from, the same record (qgn.bench.provenance), last
    record = rows[0]["provenance"]
    assert all(r["provenance"] == record and list(r)[-1] == "provenance" for r in rows)
    assert record["threads"] == 1 and record["torch"] == torch.__version__
    assert record["command"].startswith("qgn bench --json --sizes 64x64 ") and record["command"].endswith("--threads 1")
    assert record["commit"] == _checkout_commit()


def _checkout_commit() -> str | None:
    """git's own short hash of the checkout these tests run from; None without git or a checkout."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture
def no_bundled_model(monkeypatch):
    """No bundled model installed: the sections that need one are skipped (a run without loading one)."""
    import qgn.resources

    monkeypatch.setattr(qgn.resources, "bundled_model_path", lambda name: None)


def test_without_the_default_model_pc_and_anytime_are_skipped(tmp_path, capsys, no_bundled_model) -> None:
    code = main(["bench", "--only", "memory,anytime", "--sizes", "64x64", "--images", "1", "--architectures",
                 "tiny", "--data", "synthetic"])
    assert code == 0
    captured = capsys.readouterr()
    assert "no trained model" in captured.err and "anytime: skipped" in captured.out
    assert "decoder PC" not in captured.out and "decoder GTC" in captured.out


def test_a_model_named_that_is_missing_is_an_error_not_a_skip(tmp_path, capsys) -> None:
    """``--model none.safetensors`` (a typo) ran on with PC and the anytime curve "skipped (no
    trained model)" and exit 0: a measurement without what was asked for."""
    missing = tmp_path / "none.safetensors"
    code = main(["bench", "--only", "memory,anytime", "--sizes", "64x64", "--images", "1", "--architectures",
                 "tiny", "--data", "synthetic", "--model", str(missing), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith(f"qgn bench: error: --model {missing}: model {missing} not found") \
        and captured.err.count("\n") == 1, captured.err
    assert "skipped" not in captured.out and "decoder GTC" not in captured.out


@pytest.mark.parametrize("argv, message", [
    (["--only", "memory,speedy"], "unknown sections"),
    (["--sizes", "100x64"], "multiples of 32"),
    (["--sizes", "64"], "WIDTHxHEIGHT"),
    (["--architectures", "R999", "--only", "memory"], "unknown architectures"),
])
def test_bad_arguments_are_reported(argv, message, capsys, tmp_path, no_bundled_model) -> None:
    code = main(["bench", "--data", "synthetic", "--images", "1", *argv])
    assert code == 2
    assert message in capsys.readouterr().err


# Found by a hostile sweep: a size or factor past the pixel limit was an "unexpected RuntimeError"
# (a 120 GB tensor asked for), --channels 10000000 took 13 GB before failing the same way, and
# --densities 2 / nan, --repeats 0 and --scale nan ran (or failed after the sections' minutes).
@pytest.mark.parametrize("bad, message", [
    (["--sizes", "100000x100000"], "size 100000x100000 is 1e+04 megapixels, more than the limit"),
    (["--channels", "10000000"], "--channels 10000000: at most 4096 channels"),
    (["--densities", "2"], "--densities 2: a share of active sites is in (0, 1]"),
    (["--densities", "nan"], "--densities takes positive numbers; got 'nan'"),
    (["--repeats", "0"], "--repeats 0: expected a number of timed runs >= 1"),
    (["--scale", "nan"], "--scale nan: expected a finite factor > 0"),
    (["--device", "bogus"], "--device bogus: not a device name"),
    # silently ignored: only the annotate section's domain scenarios use it
    (["--domain-model", "demo"], "--domain-model demo: only the annotate section uses it, and --only memory does "
                                 "not run it; add annotate to --only or drop --domain-model"),
    (["--record-lag", "1"], "--record-lag 1: only the annotate section uses it, and --only memory does not run "
                            "it; add annotate to --only or drop --record-lag"),
])
def test_an_option_no_section_can_use_is_refused_before_any_runs(bad, message, capsys, tmp_path,
                                                                  no_bundled_model) -> None:
    argv = ["--only", "memory", "--sizes", "64x64", "--architectures", "tiny", "--images", "1"]
    code = main(["bench", "--data", "synthetic", *argv, *bad])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "unexpected" not in err, err


def test_the_anytime_curve_says_its_time_left(tmp_path, capsys, monkeypatch) -> None:
    """`anytime: 10/11 images` lines (minutes on CamVid val) end with the time left, not the last."""
    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    torch.manual_seed(0)
    model_path = tmp_path / "m.safetensors"
    save_model(model_path, QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    code = main(["bench", "--only", "anytime", "--data", "synthetic", "--model", str(model_path),
                 "--anytime-images", "11", "--scale", "0.25", "--out", str(tmp_path / "out"), "--threads", "1"])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "anytime: " in line and " images" in line]
    assert [line.split("anytime: ")[1].split(" images")[0] for line in lines] == ["10/11", "11/11"], lines
    assert re.search(r" · (about [1-9]\d* (s|min \d\d s)|under a second) left$", lines[0]), lines  # (never "about 0 s")
    assert " left" not in lines[1], lines


def test_a_quick_run_leaves_the_measured_anytime_curve_alone(tmp_path, capsys, monkeypatch) -> None:
    """`qgn bench --quick` (the README's smoke test) wrote its 3-image curve over the committed
    benchmarks/results/anytime-camvid.{csv,png} of the checkout it ran in; it now writes into a
    temporary folder of its own, which it names. A run without --quick still writes there."""
    import tempfile

    torch.manual_seed(0)
    model_path = tmp_path / "m.safetensors"
    save_model(model_path, QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    checkout = tmp_path / "checkout"
    results = checkout / "benchmarks" / "results"
    results.mkdir(parents=True)
    measured = results / "anytime-synthetic.csv"
    measured.write_text("the measured curve\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(checkout)
    argv = ["bench", "--only", "anytime", "--data", "synthetic", "--model", str(model_path), "--scale", "0.25",
            "--threads", "1", "--json"]
    assert main([*argv, "--quick"]) == 0
    assert measured.read_text() == "the measured curve\n" and not (results / "anytime-synthetic.png").exists()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = next(r for r in rows if r["name"] == "anytime/within 1 mIoU point of All")
    written = [p for p in scratch.rglob("anytime-synthetic.csv")]
    assert len(written) == 1 and summary["csv"] == str(written[0])
    assert main([*argv, "--anytime-images", "1"]) == 0
    assert measured.read_text() != "the measured curve\n"


@pytest.mark.parametrize("tty", [True, False])
def test_a_stage_draws_its_count_on_a_terminal(tmp_path, capsys, monkeypatch, tty) -> None:
    """`qgn bench` printed one line per stage and nothing inside it (`--quick` is ~60 s; a full
    run's speed and memory stages take minutes). On a terminal a stage's line counts its schemes,
    GTC/PC passes or images in place (stderr), each stage line of its own on its own row; off a
    terminal stderr has only the stage lines, as before. The stand-in images loaded, the memory
    section's encoder passes and the compute section's decoder passes are counted too (all 101
    CamVid stand-ins at 2048x1024 took ~75 s to load, the compute section ~40 s, without a word)."""
    import sys

    import qgn.progress
    from tests.cli.test_cli_progress_line import screen

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)  # no time estimate
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    torch.manual_seed(0)
    model_path = tmp_path / "m.safetensors"
    save_model(model_path, QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    code = main(["bench", "--sizes", "64x64", "--images", "2", "--architectures", "tiny", "--data", "synthetic",
                 "--model", str(model_path), "--speed-size", "64x64", "--repeats", "1", "--anytime-images", "3",
                 "--out", str(tmp_path / "out"), "--threads", "1"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "\r" not in out and "speed" in out
    drawn = [part.strip() for part in err.replace("\n", "\r").split("\r") if part.strip()]
    counts = [d for d in drawn if d.endswith((" schemes", " passes", "anytime: 1/3 images", "anytime: 2/3 images"))
              or d.startswith("qgn bench: loading 64x64: ")]
    if not tty:
        assert counts == [] and "\r" not in err
        assert "qgn bench: loading 2 stand-in image(s) at 64x64" in err and "qgn bench: compute: MACs" in err
        return
    assert counts == ([f"qgn bench: loading 64x64: {i}/2 images" for i in range(3)]
                      + [f"qgn bench: memory 64x64: {i}/4 GTC/PC passes" for i in range(5)]
                      + [f"qgn bench: memory 64x64: {i}/2 encoder passes" for i in range(3)]
                      + [f"qgn bench: compute 64x64: {i}/5 decoder passes" for i in range(6)]
                      + [f"qgn bench: speed 64x64: {i}/3 schemes" for i in range(1, 4)]  # (0/3 with what it does)
                      + ["qgn bench: anytime: 1/3 images", "qgn bench: anytime: 2/3 images"]), counts
    rows = [row for row in screen(err, 120) if row]
    assert all(row.startswith("qgn bench: ") and row.count("qgn bench:") == 1 for row in rows), rows
    assert not any(row.endswith(("schemes", "passes")) for row in rows)  # blanked when its stage ends
    assert rows[-1] == "qgn bench: anytime: 3/3 images"


@pytest.mark.parametrize("data, stem", [("camvid", "anytime-camvid"), ("synthetic", "anytime-synthetic"),
                                        ("/data/CamVid/", "anytime-CamVid"), ("camvid:/data/CamVid", "anytime-camvid"),
                                        ("../my data/street\nscenes", "anytime-street_scenes"), ("/", "anytime-data")])
def test_the_anytime_files_are_named_after_the_dataset_not_its_path(data, stem):
    """`--data /data/camvid` wrote OUT/anytime-/data/camvid.csv (folders made under OUT) - a path's
    last part names the files, in characters every file system takes; a dataset name as before."""
    from qgn.cli.bench import anytime_stem

    assert anytime_stem(data) == stem


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_annotate_runs_beside_the_other_sections(capsys) -> None:
    """`--only annotate,sparse_conv` printed no row at all and exited 0: annotate ran only alone and
    the standalone sections only without it, and a combination fell through to the network
    sections' path, which runs neither."""
    code = main(["bench", "--only", "annotate,sparse_conv,compute", "--json", "--model", str(demo_model_path()),
                 "--data", "synthetic", "--images", "1", "--quick", "--threads", "1", "--scenarios", "scratch",
                 "--channels", "16", "--densities", "0.5", "--repeats", "1", "--sizes", "64x64",
                 "--architectures", "tiny"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["section"] for r in rows} >= {"sparse_conv", "compute"}
    assert [r["name"] for r in rows if "section" not in r or r["section"] not in ("sparse_conv", "compute")] == ["scratch"]


def test_a_bad_annotate_option_is_said_before_the_other_sections_run(capsys) -> None:
    code = main(["bench", "--only", "sparse_conv,annotate", "--tolerance", "9", "--channels", "16",
                 "--densities", "0.5", "--repeats", "1", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "--tolerance" in err


@pytest.mark.parametrize("bad, message", [
    (["--only", "sparse_conv,scaling", "--factors", "1,1000000"],
     "factor 1e+06 makes a 256×256 image 256000000×256000000 = 6.554e+10 megapixels, more than the limit"),
    (["--only", "sparse_conv,speed", "--speed-size", "100000x100000"],
     "--speed-size size 100000x100000 is 1e+04 megapixels, more than the limit"),
    (["--only", "sparse_conv,memory", "--speed-size", "100x100"],  # named: the speed section is not even asked
     "--speed-size sizes must be positive multiples of 32; got '100x100'"),
    (["--only", "scaling", "--factors", ""],  # was an unexpected TypeError, a traceback logged
     "--factors takes positive numbers, e.g. 1,2,4,8; got ''"),
])
def test_factors_and_speed_size_past_the_limit_are_refused_before_any_section(bad, message, capsys, tmp_path,
                                                                             monkeypatch) -> None:
    """The pixel checks of --factors and --speed-size were made when their section came to that
    value: `--only sparse_conv,scaling --factors 1,1000000` ran sparse_conv and factor 1 (28 s),
    then failed, the rows measured thrown away."""
    import qgn.bench.sparse_conv

    def no_section(*_a, **_k):
        raise AssertionError("a section ran before the refusal")

    monkeypatch.setattr(qgn.bench.sparse_conv, "sparse_conv_rows", no_section, raising=False)
    monkeypatch.setattr("qgn.cli.bench._load_model", no_section)
    monkeypatch.setattr("qgn.cli.bench._standalone_sections", no_section)
    code = main(["bench", "--model", "demo", "--data", "synthetic", "--images", "1", "--threads", "1", *bad])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "unexpected" not in err, err


def test_an_anytime_scale_below_one_cell_is_refused_before_any_section(capsys, tmp_path, monkeypatch) -> None:
    """`qgn bench --only speed,anytime --scale 0.001` ran the speed section (and loaded the model), and
    only the anytime section's first image refused the scale: it is said before any section starts."""
    import qgn.bench.sparse_conv

    def no_section(*_a, **_k):
        raise AssertionError("a section ran before the refusal")

    monkeypatch.setattr(qgn.bench.sparse_conv, "sparse_conv_rows", no_section, raising=False)
    monkeypatch.setattr("qgn.cli.bench._load_model", no_section)
    monkeypatch.setattr("qgn.cli.bench._standalone_sections", no_section)
    code = main(["bench", "--model", "demo", "--data", "synthetic", "--threads", "1", "--only", "sparse_conv,anytime",
                 "--scale", "0.001", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    # the synthetic set's images are 256 px on their shorter side: 32 px is scale 0.125
    assert code == 2 and err.count("\n") == 1 and err.startswith("qgn bench: error: --scale 0.001 makes ") and (
        "less than one cell of the model's coarsest level (32 px) on its shorter side; use --scale 0.125 or more"
        in err), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("scenarios", [[], ["--scenarios", "scratch,app"]])
def test_a_domain_model_no_scenario_uses_is_refused_before_any_runs(scenarios, capsys, monkeypatch) -> None:
    """`--domain-model M` was silently ignored unless an app_* scenario that takes domain verdicts ran
    (none of the default scenarios does)."""
    def no_model(*_a, **_k):
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr("qgn.model.checkpoint.load_model", no_model)
    code = main(["bench", "--only", "annotate", "--quick", "--data", "synthetic", "--domain-model", "demo",
                 *scenarios])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("qgn bench: error: --domain-model demo: only the scenarios ") and err.endswith(
        " use it, and none of them runs; add one to --scenarios (e.g. --scenarios app_domain) or drop "
        "--domain-model\n") and err.count("\n") == 1, err
    named = err.split("only the scenarios ")[1].split(" use it")[0].split(", ")
    assert sorted(named) == sorted(DOMAIN_TAKERS), err


# every scenario that loads the domain reference (annotate_section) - app_domain, app_confident and the judged rules
DOMAIN_TAKERS = ("app_domain", "app_confident", "app_effort", "app_own", "app_edge2", "app_tol3", "app_scaled",
                 "app_domain_edge2")


@pytest.mark.parametrize("scenario", DOMAIN_TAKERS)
def test_a_domain_model_is_taken_by_every_scenario_that_uses_the_domain_check(scenario) -> None:
    """The --domain-model check had its own list (app_effort, app_domain, app_confident, app_own) and refused
    `--scenarios app_edge2 --domain-model M` though app_edge2 ... app_domain_edge2 take its verdicts."""
    from types import SimpleNamespace

    from qgn.cli.bench_annotate import check_domain_model

    check_domain_model(SimpleNamespace(domain_model="demo"), (scenario,))


@pytest.mark.parametrize("bad, message", [
    (["--record-lag", "-1"], "--record-lag must be 0 or more images; got -1"),
    (["--record-lag", "1", "--scenarios", "assist_scratch,app_domain"],
     "--record-lag 1: only the scenarios app_effort, app_own, "),
    (["--confidence", "2"], "--confidence is a probability, 0 … 1; got 2.0"),
])
def test_an_annotate_option_is_refused_before_the_model_and_data_load(bad, message, capsys, monkeypatch) -> None:
    """--record-lag -1 and --confidence 2 were refused only once the annotate section had loaded its model
    and data (after every other section's minutes), and --record-lag was silently ignored where no judged
    rule ran (the integration review)."""
    def no_model(*_a, **_k):
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr("qgn.model.checkpoint.load_model", no_model)
    code = main(["bench", "--only", "memory,annotate", "--quick", "--data", "synthetic", *bad])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"qgn bench: error: {message}") and err.count("\n") == 1, err


def test_an_anytime_scale_too_small_for_a_later_val_image_is_refused_before_any_section(
        capsys, tmp_path, monkeypatch) -> None:
    """A folder dataset of a 480×360 then a 100×60 val image, `--only compute,anytime --scale 0.4`. Fails
    before: only the first image (192×144 at 0.4) was checked, so the compute section ran and the anytime
    section failed at the second one (40×24), its rows lost. Now every image the anytime section will use is
    checked first, from its header alone (no image is decoded)."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True)
    for name, (w, h) in (("a", (480, 360)), ("b", (100, 60))):
        Image.new("RGB", (w, h), (90, 90, 90)).save(root / "images" / f"{name}.png")
        Image.fromarray(np.zeros((h, w), np.uint8)).save(root / "labels" / f"{name}.png")
    (root / "classes.txt").write_text("a\nb\n")

    def no_section(*_a, **_k):
        raise AssertionError("a section ran, or an image was decoded, before the refusal")

    monkeypatch.setattr("qgn.cli.bench._load_model", no_section)
    monkeypatch.setattr("qgn.cli.bench._standalone_sections", no_section)
    monkeypatch.setattr("qgn.data.base.read_rgb", no_section)
    code = main(["bench", "--model", "demo", "--data", str(root), "--threads", "1", "--only", "compute,anytime",
                 "--scale", "0.4", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("qgn bench: error: --scale 0.4 makes b 40×24 pixels, "
                                                                 "less than one cell"), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
