"""The progress line `qgn stats` and `qgn convert` rewrite on a terminal (qgn.cli.progress_line):
the exact bytes on stderr, a failure's line on a line of its own."""
from __future__ import annotations

import itertools
import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def masks_one_bad(tmp_path, monkeypatch):
    """25 label PNGs, the 16th not a PNG; no time estimate (a slow clock)."""
    import qgn.progress

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(25):
        Image.fromarray(np.full((8, 8), i % 3, np.uint8)).save(masks / f"m{i:02d}.png")
    (masks / "m15.png").write_text("not a png")
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)
    return masks


def split_at_failure(err: str, command: str):
    before, rest = err.split(f"qgn {command}: error: ", 1)
    failure, after = rest.split("\n", 1)
    return before, failure, after


def test_stats_draws_every_tenth_file_and_moves_off_the_line_for_a_failure(masks_one_bad, run_cli, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    code, _, err = run_cli("stats", masks_one_bad)
    assert code == 2
    before, failure, after = split_at_failure(err, "stats")
    assert "m15.png" in failure
    assert before == "\rqgn stats: 10/25 files".ljust(48) + "\n"
    line = after.split("\n", 1)[0]
    assert line == "\rqgn stats: 20/25 files".ljust(48) + "\rqgn stats: 25/25 files".ljust(48)
    assert after.split("\n", 1)[1].startswith("qgn stats: 1 of 25 file(s) failed")


def test_convert_draws_both_passes_and_moves_off_the_line_for_a_failure(masks_one_bad, tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    code, _, err = run_cli("convert", masks_one_bad, tmp_path / "out")
    assert code == 2
    scan = "".join(f"\rqgn convert: reading the class values of {i}/25 files".ljust(64) for i in (0, 10, 20, 25))
    before, failure, after = split_at_failure(err, "convert")
    assert "m15.png" in failure
    assert before == scan + "\n" + "".join(f"\rqgn convert: converted {i}/25 files".ljust(64) for i in (0, 10)) + "\n"
    line = after.split("\n", 1)[0]
    assert line == "".join(f"\rqgn convert: converted {i}/25 files".ljust(64) for i in (20, 25))


def test_samples_prints_each_path_as_written_with_the_scene_count_under_it(tmp_path, run_cli, monkeypatch):
    """`qgn samples` printed its paths only once every scene was written: 300 scenes of 960x720
    were 109 s without a word. Now each path as its scene is written, and on a terminal the line
    `qgn samples: i/n scenes` under them, blanked before each path and at the end."""
    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)  # no time estimate
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # capsys's stderr
    printed = []
    real_print = print

    def spy(*args, **kwargs):  # the order of stdout and stderr writes
        printed.append((kwargs.get("file") is sys.stderr, " ".join(map(str, args))))
        real_print(*args, **kwargs)

    monkeypatch.setattr("builtins.print", spy)
    code, out, err = run_cli("samples", tmp_path / "s", "--count", 25, "--size", "16x12")
    assert code == 0
    paths = [str(tmp_path / "s" / "images" / f"scene_{i:02d}.png") for i in range(1, 26)]
    assert out.splitlines() == paths
    blank = "\r" + " " * 64 + "\r"
    assert err == "\rqgn samples: 1/25 scenes".ljust(64) + "".join(
        blank + f"\rqgn samples: {i}/25 scenes".ljust(64) for i in range(2, 25)) + blank
    # each path printed with the progress line blanked, and the line drawn again after it
    kinds = [to_err for to_err, _ in printed]
    assert kinds == [False, True] + [True, False, True] * 23 + [True, False]


def test_samples_draws_nothing_on_stderr_off_a_terminal_or_for_few_scenes(tmp_path, run_cli, monkeypatch):
    code, out, err = run_cli("samples", tmp_path / "a", "--count", 25, "--size", "16x12")
    assert (code, err, len(out.splitlines())) == (0, "", 25)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run_cli("samples", tmp_path / "b", "--count", 3, "--size", "16x12")
    assert (code, err, len(out.splitlines())) == (0, "", 3)


def screen(raw: str, columns: int) -> list[str]:
    """The rows a terminal of ``columns`` that wraps at its edge shows for ``raw`` (\\r, \\n and
    printable characters), trailing blanks dropped."""
    rows, col = [[]], 0
    for ch in raw:
        if ch == "\r":
            col = 0
            continue
        if ch == "\n":
            rows.append([])
            col = 0
            continue
        if col >= columns:  # the terminal wraps
            rows.append([])
            col = 0
        row = rows[-1]
        row.extend(" " * (col + 1 - len(row)))
        row[col] = ch
        col += 1
    return ["".join(row).rstrip() for row in rows]


def interrupt_samples_at(monkeypatch, scene: int, exc: BaseException):
    import qgn.cli.samples as samples

    real = samples.write_samples

    def write(out, count, width, height, seed, wrote=None):
        def wrote_then_fail(path, done):
            if done == scene:
                raise exc
            wrote(path, done)

        return real(out, count, width, height, seed, wrote_then_fail)

    monkeypatch.setattr(samples, "write_samples", write)


@pytest.mark.parametrize("exc, last", [(KeyboardInterrupt(), "qgn samples: interrupted"),
                                       (OSError(28, "No space left on device"), "qgn samples: error: ")])
def test_an_interrupt_or_a_failure_is_printed_on_a_line_of_its_own(tmp_path, run_cli, monkeypatch, exc, last):
    """Ctrl-C during `qgn samples` printed 'qgn samples: interrupted' glued onto the end of
    'qgn samples: 14/200 scenes · about 46 s left'; the CLI's error path blanks the line first."""
    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "100")
    interrupt_samples_at(monkeypatch, 5, exc)
    code, out, err = run_cli("samples", tmp_path / "s", "--count", 25, "--size", "16x12")
    assert code == (130 if isinstance(exc, KeyboardInterrupt) else 2)
    assert len(out.splitlines()) == 4
    rows = screen(err, 100)
    assert rows[-1] == "" and rows[-2].startswith(last), rows  # the message alone on its row
    assert len(rows) == 2


def test_a_line_longer_than_the_terminal_is_cut_and_blanked_whole(monkeypatch, capsys):
    """A line longer than the width the command asked for (72 for `qgn finetune`) left its end on
    the screen after clear(), and one longer than the terminal wrapped (and \\r then rewrote only
    its second row)."""
    from qgn.cli.progress_line import ProgressLine

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    long = "qgn finetune: comparing before and after on 2/300 images · about 2 h 29 min left"  # 81
    for columns in (200, 60):
        monkeypatch.setenv("COLUMNS", str(columns))
        line = ProgressLine(72)
        line.show("qgn finetune: comparing before and after on 1/300 images")
        line.show(long)
        rows = screen(capsys.readouterr().err, columns)
        assert rows == [long[:columns - 1].rstrip()], rows  # one row, never wrapped
        line.show("short")
        assert screen(long[:columns - 1] + capsys.readouterr().err, columns) == ["short"]
        line.clear()
        print("next line", file=sys.stderr)
        assert screen(long[:columns - 1] + capsys.readouterr().err, columns) == ["next line", ""]


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def train_lines(monkeypatch, capsys, tty: bool, columns: str | None):
    """The stderr of `qgn train`'s progress at iterations 10 (estimating) and 20, 30 (about 33 min
    22 s left: 770 × 2.6 s) of 800."""
    from qgn.cli.train import TrainProgress
    from qgn.progress import TimeLeft

    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    if columns is not None:
        monkeypatch.setenv("COLUMNS", columns)
    clock = _Clock()
    progress = TrainProgress(800)
    progress.time_left = TimeLeft(clock)
    row = dict(loss=1.2345, lr=0.0123, sec_per_iter=2.6)
    clock.now += 300
    for iteration in (10, 20, 30):
        clock.now += 10 * 2.6
        progress(iteration, row)
    progress.off_the_line()
    return capsys.readouterr().err


@pytest.mark.parametrize("columns", ["80", "60", "40"])
def test_train_line_fits_the_terminal_and_keeps_the_time_left(monkeypatch, capsys, columns):
    """`qgn train`'s line is ~100 columns: an 80-column terminal showed it cut to 79, without the
    time left. Narrower forms drop the learning rate, the seconds per iteration, the bar, the
    loss, in that order; each drawn row fits and ends with the time left."""
    err = train_lines(monkeypatch, capsys, True, columns)
    width = int(columns)
    rows = screen(err, width)
    assert len(rows) == 2 and rows[-1] == "", rows  # one row rewritten in place, never wrapped
    drawn = [part.rstrip() for part in err.rstrip("\n").split("\r") if part.strip()]
    assert len(drawn) == 3 and all(len(part) <= width - 1 for part in drawn), drawn
    assert drawn[0].endswith(" · estimating the time left…") and "10/800" in drawn[0]
    assert drawn[2].endswith(" · about 33 min 22 s left") and "30/800" in drawn[2], drawn
    if width == 80:
        assert drawn[2] == "[" + " " * 20 + "] 30/800 loss 1.2345 2.60 s/it · about 33 min 22 s left"
    if width == 40:
        assert drawn[2] == "30/800 · about 33 min 22 s left"


@pytest.mark.parametrize("tty, columns", [(False, None), (True, None), (True, "200")])
def test_train_line_off_a_terminal_or_on_a_wide_one_is_the_whole_line(monkeypatch, capsys, tty, columns):
    """A log or a pipe (scripts read it), and a terminal wide enough, keep the whole line."""
    err = train_lines(monkeypatch, capsys, tty, columns)
    whole = "[#" + " " * 29 + "] 30/800 loss 1.2345 lr 0.0123 2.60 s/it · about 33 min 22 s left"
    assert err.rstrip("\n").split("\r")[-1].rstrip() == whole


@pytest.fixture(scope="module")
def eval_workspace(tmp_path_factory):
    import torch

    from qgn.cli.samples import write_samples
    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.model.checkpoint import save_model
    from qgn.model.qgn import QGN, QGNConfig

    root = tmp_path_factory.mktemp("eval_progress")
    torch.manual_seed(0)
    model = save_model(root / "m.safetensors", QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)))
    write_samples(root / "s", 3, 64, 48, 7)
    return ["eval", root / "s", "--model", model, "--device", "cpu", "--threads", "1", "--modes", "pc", "--json"]


def test_eval_says_it_is_loading_at_once_on_a_terminal(eval_workspace, run_cli, monkeypatch, capsys):
    """`qgn eval` said nothing for the seconds it loaded the model and read and checked every
    label (~4 s for CamVid's test split); its first line came with the first image evaluated."""
    import qgn.model.checkpoint
    import qgn.progress

    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 1e9)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    real_load, seen = qgn.model.checkpoint.load_model, []

    def load_model(*args, **kwargs):  # what stderr holds when the model starts loading
        seen.append(capsys.readouterr().err)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(qgn.model.checkpoint, "load_model", load_model)
    code, out, err = run_cli(*eval_workspace)
    assert code == 0 and set(json.loads(out)) == {"pc"}
    assert seen == ["\rqgn eval: loading the model…".ljust(48)]
    assert err == "".join(f"\r{text}".ljust(48) for text in (
        "qgn eval: loading 3 images…", "qgn eval: 1/3", "qgn eval: 2/3", "qgn eval: 3/3")) + "\n"


def test_eval_draws_no_line_off_a_terminal(eval_workspace, run_cli):
    """Off a terminal (a log, a pipe) `qgn eval` drew its line all the same: stderr held
    `\\rqgn eval: 1/3 ...` however it was redirected. Now nothing; stdout is the same."""
    code, out, err = run_cli(*eval_workspace)
    assert code == 0 and err == "" and set(json.loads(out)) == {"pc"}


def test_an_exported_columns_does_not_cut_a_line_written_to_a_file(monkeypatch, capsys):
    """`$COLUMNS` exported by a shell with stderr redirected to a log cut the log's progress lines to
    that width (the time left lost); only a terminal's width cuts them."""
    from qgn.cli.progress_line import ProgressLine

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.setenv("COLUMNS", "40")
    long = "qgn finetune: comparing before and after on 2/300 images · about 2 h 29 min left"
    line = ProgressLine(72, True)
    line.show(long)
    line.off_the_line()
    assert long in capsys.readouterr().err


def test_convert_of_one_file_says_which_part_it_is_in(tmp_path, run_cli, monkeypatch):
    """A 24 MP mask took ~1.2 s with nothing said (~0.8 s of it encoding the .qgt): one file now
    shows reading, building the quadtree and writing on a terminal, blanked before the summary on
    stdout; off a terminal nothing is drawn."""
    Image.fromarray(np.full((8, 8), 1, np.uint8)).save(tmp_path / "m.png")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run_cli("convert", tmp_path / "m.png", tmp_path / "m.qgt", "--classes", "3")
    assert code == 0 and "converted 1 file" in out
    drawn = [part.strip() for part in err.split("\r") if part.strip()]
    assert drawn == ["qgn convert: [1/1] m.png: reading (0/3)", "qgn convert: [1/1] m.png: building the quadtree (1/3)",
                     "qgn convert: [1/1] m.png: writing m.qgt (2/3)"]
    assert [row for row in screen(err, 80) if row] == []  # blanked
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    code, out, err = run_cli("convert", tmp_path / "m.png", tmp_path / "n.qgt", "--classes", "3")
    assert code == 0 and err == ""


def test_a_line_drawn_blanks_another_commands_line_first(capsys, monkeypatch):
    """Two lines of one command (a file count and a big file's part) drawn in turn on one row left
    the longer one's end behind the shorter."""
    from qgn.cli.progress_line import ProgressLine

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    count, part = ProgressLine(10), ProgressLine(10)
    count.show("qgn convert: converted 10/25 files · about 1 min 10 s left")
    part.show("qgn convert: [11/25] m.png: writing")
    assert [row for row in screen(capsys.readouterr().err, 100) if row] == ["qgn convert: [11/25] m.png: writing"]
    assert not count.on_line
    part.clear()  # no line left drawn for a later test's failure to blank


def test_a_batch_of_big_masks_keeps_its_count_and_time_left_on_the_row(tmp_path, run_cli, monkeypatch):
    """`qgn convert` of 25 masks that each take long enough to draw their parts: the count line
    (every 10th file) was blanked at once by the next file's parts, so the batch's count and time
    left were almost never seen. Each part now ends with the batch's time left, and after each file
    the row holds the count."""
    import re

    import qgn.progress
    from qgn.cli.progress_line import ItemParts

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(25):
        Image.fromarray(np.full((8, 8), i % 3, np.uint8)).save(masks / f"m{i:02d}.png")
    monkeypatch.setattr(ItemParts, "SHOWN_AFTER_S", 0.0)  # every file "big"
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    # the batch's clock moves 1 s at each reading: each file reads it as often, so no file runs past
    # its estimate and every part of a file after the 2nd ends with a time left of whole seconds
    monkeypatch.setattr(qgn.progress, "time", SimpleNamespace(monotonic=itertools.count(1000.0).__next__))
    code, _, err = run_cli("convert", masks, tmp_path / "out", "--classes", "3")
    assert code == 0
    drawn = [p.strip() for p in err.split("\r") if p.strip()]
    for k in range(1, 25):  # what the row held when file k+1's parts came: the count of the k done
        start = next(j for j, p in enumerate(drawn) if p.startswith(f"qgn convert: [{k + 1}/25] m{k:02d}.png: reading"))
        assert drawn[start - 1].startswith(f"qgn convert: converted {k}/25 files"), (k, drawn[start - 1])
    parts = [p for p in drawn if p.startswith("qgn convert: [")]
    later = [p for p in parts if int(re.match(r"qgn convert: \[(\d+)/", p)[1]) >= 3]  # 2 done: an estimate
    assert len(later) >= 23 * 3 and all(
        re.fullmatch(r"qgn convert: \[\d+/25\] m\d\d\.png: .* \(\d/3\) · about [1-9]\d* (s|min \d\d s) left", p)
        for p in later), [p for p in later if not p.endswith(" left")][:3]  # each part, not each file's first alone


def test_a_batch_items_time_left_survives_a_narrow_terminal(tmp_path, capsys, monkeypatch):
    """On a terminal narrower than the line the item's name and part are cut, not the time left."""
    from qgn.cli.progress_line import ItemParts
    from qgn.progress import TimeLeft

    now = [100.0]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "50")
    monkeypatch.setattr(ItemParts, "SHOWN_AFTER_S", 0.0)
    time_left = TimeLeft(lambda: now[0])
    parts = ItemParts("convert", 5, writes=3, time_left=time_left)
    for i in range(3):
        parts.begin(i, tmp_path / f"a_rather_long_mask_name_{i}.png")
        parts.writing(1, "reading")
        now[0] += 10
    parts.clear()
    drawn = [p.strip() for p in capsys.readouterr().err.split("\r") if p.strip()]
    assert drawn[-1] == "qgn convert: [3/5] a_rather_lo… · about 30 s left" and len(drawn[-1]) == 49
