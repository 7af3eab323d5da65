"""Progress of `qgn bench`'s long stages that said nothing while they ran: the stand-in images
loaded, the compute section's decoder passes, the memory section's encoder passes, the sparse_conv
shapes, the scaling measurements and the annotate section's images (per image, per start). Each
library function reports ``progress(i, n, …)`` with counts that never go back and end at ``n``;
the CLI draws them on a terminal only."""
from __future__ import annotations

import re

import sys

import pytest
import torch

from qgn.cli.main import main
from qgn.data.synthetic import SYNTHETIC_CLASSES
from qgn.model.qgn import QGN, QGNConfig
from qgn.resources import demo_model_path


def _counts_end_at_their_total(calls: list[tuple], total: int) -> None:
    counts = [c[0] for c in calls]
    assert calls and all(c[1] == total for c in calls), calls
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == total, counts


def _tiny_model() -> QGN:
    torch.manual_seed(0)
    return QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES))


def test_loading_compute_and_memory_encoders_report_their_counts() -> None:
    from qgn.bench.compute import compute_rows, decoder_passes
    from qgn.bench.memory_table import NetworkSettings, memory_rows
    from qgn.bench.workload import load_workload

    loaded: list[tuple] = []
    work = load_workload((64, 64), 3, data="synthetic", pc_model=_tiny_model(),
                         progress=lambda i, n: loaded.append((i, n)))
    _counts_end_at_their_total(loaded, 3)
    assert [c[0] for c in loaded] == [0, 1, 2, 3]
    settings = NetworkSettings(torch.device("cpu"), ("tiny",), shape_only=True)
    passes: list[tuple] = []
    compute_rows([work], settings, progress=lambda size, i, n: passes.append((i, n, size)))
    assert decoder_passes(work) == 1 + 2 * 3  # All, then GTC and PC per image
    _counts_end_at_their_total(passes, 7)
    assert {p[2] for p in passes} == {"64x64"} and len(passes) == 8
    encoders: list[tuple] = []
    memory_rows([work], settings, encoder_progress=lambda size, i, n: encoders.append((i, n)))
    assert encoders == [(0, 2), (1, 2), (2, 2)]  # the Dil encoder, then the QGN encoder


def test_sparse_conv_reports_each_shape() -> None:
    from qgn.bench.sparse_conv import sparse_conv_rows

    calls: list[tuple] = []
    sparse_conv_rows((16, 32), (0.1,), repeats=1, backward_channels=(16,), progress=lambda i, n: calls.append((i, n)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]  # C16 fwd, C16 fwd+bwd, C32 fwd


def test_scaling_reports_each_measurement_and_the_part_under_way() -> None:
    from qgn.bench.scaling import scaling_rows
    from qgn.data.registry import open_dataset

    data = open_dataset("synthetic", "val", n=2, size=64)
    calls: list[tuple] = []
    scaling_rows(_tiny_model().eval(), "tiny", (data[i] for i in range(2)), data.classes, (1, 2), 1,
                 progress=lambda i, n, what: calls.append((i, n, what)), images=2)
    _counts_end_at_their_total(calls, 4)
    done = [c for c in calls if not c[2]]
    assert [c[0] for c in done] == [1, 2, 3, 4]
    parts = [c[2] for c in calls if c[0] == 1 and c[2]]  # image 1 at x2, while one was done
    assert parts[0] == "image 1 x2: resizing" and "image 1 x2: encoder" in parts
    assert any(p.startswith("image 1 x2: timing") for p in parts) and "image 1 x2: pc peak memory" in parts


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_annotate_reports_each_image_and_start_and_the_time_left(capsys, monkeypatch) -> None:
    """The annotate section (minutes on CamVid: ~9 s per image with nothing said within one)
    reports per image and per start; its per-image lines say the time left."""
    import qgn.progress
    from qgn.bench.annotate import AnnotateConfig, annotate_bench
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    data = open_dataset("synthetic", "val", n=3, size=64)
    model = load_model(demo_model_path())
    calls: list[tuple] = []
    logged: list[str] = []
    config = AnnotateConfig(every=2, iterations=2, batch_size=1,
                            scenarios=("scratch", "model", "assist_model", "assist_head", "loop"))
    annotate_bench(model, [data[i] for i in range(3)], data.classes, config, logged.append,
                   progress=lambda name, i, n, what: calls.append((name, i, n, what)))
    for name in ("anchors", "per image", "loop"):
        _counts_end_at_their_total([c[1:] for c in calls if c[0] == name], 3)
    assert [c[0] for c in calls] == sorted((c[0] for c in calls), key=["anchors", "per image", "loop"].index)
    image2 = [c[3] for c in calls if c[0] == "per image" and c[1] == 1 and c[3]]
    assert image2[:3] == ["image 2: prediction", "image 2: scratch", "image 2: from the model, cell tools"]
    assert "image 2: head fit" in image2 and "image 2: from the head, image tools" in image2
    loop = [c[3] for c in calls if c[0] == "loop" and c[3]]
    assert "fine-tuning on 2 images, 2/2" in loop and loop[-1] == "image 3"
    lines = [m for m in logged if m.startswith("image ")]
    assert len(lines) == 3 and " left" not in lines[2], lines
    assert re.search(r" · (about [1-9]\d* (s|min \d\d s)|under a second) left$", lines[1]), lines  # (never "about 0 s")


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
@pytest.mark.parametrize("tty", [True, False])
def test_the_cli_draws_the_annotate_images_on_a_terminal_only(capsys, monkeypatch, tty) -> None:
    import qgn.progress
    from tests.cli.test_cli_progress_line import screen

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "2", "--quick", "--threads", "1", "--scenarios", "scratch,model"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "\r" not in out
    lines = err.splitlines()
    if not tty:
        assert "\r" not in err
        assert [line[:len("qgn bench: image 1/2")] for line in lines if line.startswith("qgn bench: image ")] \
            == ["qgn bench: image 1/2", "qgn bench: image 2/2"]
        return
    drawn = [part.strip() for part in err.replace("\n", "\r").split("\r") if part.strip()]
    assert "qgn bench: annotate: 0/2 images · image 1: scratch" in drawn
    assert "qgn bench: annotate: 1/2 images · image 2: from the model, cell tools" in drawn
    rows = [row for row in screen(err, 400) if row]  # (the first line, the run's settings, is long)
    assert all(row.startswith("qgn bench: ") and row.count("qgn bench:") == 1 for row in rows), rows
    assert not any(" images · " in row or row.endswith(" images") for row in rows), rows  # blanked at the end
    assert [row.split(":")[1] for row in rows[1:]] == [" image 1/2", " image 2/2"]


def test_a_stage_line_counts_its_time_left_down_between_counts(capsys, monkeypatch) -> None:
    """Redrawn for the next part of image 3 while 2 of 10 are done, the line said a longer time
    left each time (the mean per image grew with the clock); it now counts down from the estimate
    made when the count moved."""
    import qgn.progress
    from qgn.cli.bench import stage_line

    now = [100.0]
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(qgn.progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    line = stage_line()
    for i, t, what in [(0, 100, "a"), (1, 110, "a"), (2, 120, "a"), (2, 125, "b"), (2, 130, "c"), (10, 140, "")]:
        now[0] = t
        line("annotate", i, 10, "images", what)  # (the last blanks it: no line left drawn for later tests)
    drawn = [part.strip() for part in capsys.readouterr().err.split("\r") if part.strip()][:-1]
    assert drawn[-3:] == ["qgn bench: annotate: 2/10 images · about 1 min 20 s left · a",
                          "qgn bench: annotate: 2/10 images · about 1 min 15 s left · b",
                          "qgn bench: annotate: 2/10 images · about 1 min 10 s left · c"]


@pytest.mark.parametrize("passes, expected", [
    # memory: 8 GTC/PC decoder passes of 10 s, then the encoder passes (2 s each) under the same
    # stage name: it said "2/4 encoder passes · about 2 min 48 s left" from the decoder's clock
    ([("memory 2048x1024", i, 8, "GTC/PC passes", 10) for i in range(9)]
     + [("memory 2048x1024", i, 4, "encoder passes", 2) for i in range(3)],
     "qgn bench: memory 2048x1024: 2/4 encoder passes · about 4 s left"),
    # compute --architectures R18,R50: two decoders' passes (1 s each), one stage and unit, the count
    # back to 0 for the second: "about 21 s left" at its 2/5
    ([("compute 2048x1024", i, 5, "decoder passes", 1) for i in range(6)]
     + [("compute 2048x1024", i, 5, "decoder passes", 1) for i in range(3)],
     "qgn bench: compute 2048x1024: 2/5 decoder passes · about 3 s left"),
])
def test_a_new_unit_or_a_count_going_back_starts_a_new_estimate(passes, expected, capsys, monkeypatch) -> None:
    import qgn.progress
    from qgn.cli.bench import stage_line

    now = [100.0]
    monkeypatch.setattr(qgn.progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    line = stage_line()
    for stage, i, n, unit, seconds in passes:
        line(stage, i, n, unit)
        now[0] += seconds
    line("end", 1, 1, "")  # (blanks it: no line left drawn for later tests)
    drawn = [part.strip() for part in capsys.readouterr().err.split("\r") if part.strip()]
    assert drawn[-2] == expected


def test_speed_reports_each_timed_run_of_a_scheme() -> None:
    from qgn.bench.memory_table import NetworkSettings
    from qgn.bench.speed import speed_rows
    from qgn.bench.workload import load_workload

    work = load_workload((64, 64), 1, data="synthetic", pc_model=_tiny_model())
    settings = NetworkSettings(torch.device("cpu"), ("tiny",), shape_only=True)
    calls: list[tuple] = []
    speed_rows(work, settings, repeats=1, backends=["torch"], progress=lambda i, n, what: calls.append((i, n, what)))
    _counts_end_at_their_total(calls, 3)
    assert [c for c in calls if not c[2]] == [(1, 3, ""), (2, 3, ""), (3, 3, "")]
    assert calls[:3] == [(0, 3, "building tiny"), (0, 3, "random encoder features"), (0, 3, "All: its sites")]
    runs = [c for c in calls if "run" in c[2]]  # torch and dense-masked, a warm-up round and a timed one: 4 runs
    assert runs[:4] == [(0, 3, f"All: run {k}/4") for k in range(1, 5)] and runs[4] == (1, 3, "GTC: run 1/4")
