"""A batch's time left (qgn.progress): the estimate the command line's and the dialogs' progress
lines end with."""
from __future__ import annotations

import re
import time

import pytest

from qgn.progress import TimeLeft, format_duration


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def says_time_left(line: str) -> bool:
    """``line`` ends with a time left as people read it: ``" · about 12 s left"`` (never "about 0
    s") or ``" · under a second left"``."""
    return re.search(r" · (about [1-9]\d* (s|min \d\d s|h \d\d min)|under a second) left$", line) is not None


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (0.4, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"),
                                           (187, "3 min 07 s"), (3599.4, "59 min 59 s"), (3600, "1 h 00 min"),
                                           (7529, "2 h 05 min"), (-3, "0 s")])
def test_durations_read_as_people_write_them(seconds, text):
    assert format_duration(seconds) == text


def test_time_left_is_the_mean_time_per_item_after_the_first_report_times_the_items_left():
    clock = Clock()
    left = TimeLeft(clock)
    assert left(0, 10) == "" and left.suffix(0, 10) == ""  # nothing done: nothing known
    clock.now += 0.5
    assert left(1, 10) == "" and left.estimating(1, 10)  # the first report: no estimate
    clock.now += 1.5  # the second item took 1.5 s
    assert left.seconds(2, 10) == pytest.approx(12.0)
    assert left(2, 10) == "about 12 s left" and left.suffix(2, 10) == " · about 12 s left"
    assert not left.estimating(2, 10)
    clock.now += 118  # 119.5 s for items 2 and 3: 59.75 s each, 7 left
    assert left(3, 10) == "about 6 min 58 s left"
    assert left(10, 10) == "" and left(11, 10) == "" and not left.estimating(10, 10)  # done


def test_the_start_up_in_the_first_report_does_not_inflate_the_estimate():
    """`qgn train` reports every 10 iterations; its first report came after 5 min of start-up
    (reading the data, building the model) and 10 iterations of 2.6 s: the estimate said ~7 h for a
    run of 800 iterations that had 35 min left. The first report's time is left out: the estimate
    comes from the next report on, and is the true 2.6 s an iteration."""
    from qgn.cli.train import TrainProgress

    clock = Clock()
    progress = TrainProgress(800)
    progress.time_left = TimeLeft(clock)
    lines = []
    progress.show = lines.append
    row = dict(loss=1.0, lr=0.01, sec_per_iter=2.6)
    clock.now += 300 + 10 * 2.6
    progress(10, row)
    assert "estimating the time left" in lines[-1] and " h " not in lines[-1]
    for iteration in (20, 30):
        clock.now += 10 * 2.6
        progress(iteration, row)
    assert lines[-1].endswith(" · about 33 min 22 s left"), lines[-1]  # 770 × 2.6 s = 2002 s


def test_qgn_train_help_lists_every_preset_of_the_registry(capsys):
    from qgn.cli.main import main
    from qgn.train.presets import PRESETS

    with pytest.raises(SystemExit) as ended:
        main(["train", "--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    listed = " ".join(out.split())  # argparse wraps the help
    assert len(PRESETS) >= 5 and all(name in listed for name in PRESETS), listed


def test_import_and_export_lines_end_with_the_time_left(tmp_path, capsys, run_cli, monkeypatch):
    """`qgn import` and `qgn export` print `[i/n] item: what happened · about … left` once a batch
    has run a second, from the second item on (the first one's time holds the start-up), and no
    estimate on the last line."""
    import numpy as np
    from PIL import Image

    import qgn.progress

    images, labels = tmp_path / "ds" / "images", tmp_path / "ds" / "labels"
    for folder in (images, labels):
        folder.mkdir(parents=True)
    for name in "abc":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / f"{name}.png")
        Image.fromarray(np.full((8, 8), 1, np.uint8)).save(labels / f"{name}.png")
    (tmp_path / "ds" / "classes.txt").write_text("sky\nroad\n")
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)  # every line after the first item
    code, out, err = run_cli("import", tmp_path / "ds", "--format", "ids", "--project", tmp_path / "p")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == 3
    assert " left" not in lines[0]  # the first item holds the start-up: no estimate from it
    assert says_time_left(lines[1]), lines
    assert " left" not in lines[2]
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--out", tmp_path / "out", "--formats", "png")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [says_time_left(line) for line in lines] == [False, True, False], lines


def test_convert_of_a_folder_shows_its_progress_and_time_left_on_a_terminal(tmp_path, run_cli, monkeypatch):
    """`qgn convert DIR OUT` on more than 20 masks rewrites `qgn convert: converted i/n files · about
    … left` on stderr when stderr is a terminal (like `qgn stats`), for the pass that finds the
    number of classes too, and ends on n/n; stdout keeps its one summary line."""
    import sys

    import numpy as np
    from PIL import Image

    import qgn.progress

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(25):
        Image.fromarray(np.full((8, 8), i % 3, np.uint8)).save(masks / f"m{i:02d}.png")
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run_cli("convert", masks, tmp_path / "out")
    assert code == 0, err
    assert out.startswith("converted 25 file(s)") and len(out.splitlines()) == 1
    lines = [line.strip() for line in err.replace("\r", "\n").splitlines() if line.strip()]
    converted = [line for line in lines if line.startswith("qgn convert: converted ")]
    assert converted[-1] == "qgn convert: converted 25/25 files"
    assert any(line.startswith("qgn convert: converted 20/25 files · ") and says_time_left(line)
               for line in converted), converted
    assert any(line.startswith("qgn convert: reading the class values of 25/25") for line in lines), lines
    assert len(list((tmp_path / "out").glob("*.qgt"))) == 25


def test_a_resumed_training_estimates_from_its_own_iterations(tmp_path, run_cli, monkeypatch):
    """`qgn train --resume` at iteration 900 of 1000, 1 s an iteration: after 10 iterations the
    line says about 1 min 30 s left (the 900 iterations of the interrupted run took no time in
    this one; counting them gave about 1 s)."""
    import time

    import qgn.train.loop

    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    monkeypatch.setattr(time, "perf_counter", clock)

    def resumed(config, resume, progress, device, replace):
        for iteration in range(901, 911):
            clock.now += 1.0
            progress(iteration, {"loss": 0.5, "lr": 0.01, "sec_per_iter": 1.0})
        return "final.safetensors"

    monkeypatch.setattr(qgn.train.loop, "train", resumed)
    code, out, err = run_cli("train", "--preset", "demo", "--set", "iterations=1000", "--out", tmp_path / "run",
                             "--resume")
    assert code == 0, err
    last = err.split("\r")[-1].splitlines()[0].rstrip()
    assert last.startswith("[") and " 910/1000 " in last, last
    assert last.endswith(" · about 1 min 30 s left"), last


@pytest.mark.parametrize("form", [["--png", "{out}"], ["--format", "png", "--out", "{out}"],
                                  ["--format", "coco,labelme", "--out", "{out}"]])
def test_export_of_a_folder_of_qgt_says_each_file_and_the_time_left(tmp_path, run_cli, monkeypatch, form):
    """`qgn export DIR …` said nothing for seconds (--png, a per-image --format) or printed
    `[i/n] file` with no time left (dataset formats); every form now prints `[i/n] file · about …
    left`, like `qgn export --project`."""
    import numpy as np
    from PIL import Image

    import qgn.progress

    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(masks / f"m{i}.png")
    assert run_cli("convert", masks, tmp_path / "qgt", "--classes", "3")[0] == 0
    monkeypatch.setattr(qgn.progress, "SHOW_AFTER_S", 0.0)
    code, out, err = run_cli("export", tmp_path / "qgt", *[a.format(out=tmp_path / "out") for a in form])
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"], out
    assert [says_time_left(line) for line in lines] == [False, True, False], lines
    assert out.splitlines()[-1].startswith("exported 3 ")


def test_under_a_second_left_reads_the_same_on_every_line(monkeypatch, capsys):
    """A batch whose time left fell under a second said "about 0 s left" on the command line
    (``TimeLeft``, ``ItemParts``, ``qgn bench``'s stage line) and in the export and import dialogs,
    where the app's own lines said "a moment left": every one now says "under a second left", and
    once a count-down ran past its estimate, the estimate of the files after it, during the last
    "longer than estimated" (``qgn.progress.left_phrase``, ``count_down_suffix``)."""
    import sys
    from pathlib import Path

    import qgn.cli.progress_line as progress_line
    from qgn.cli.bench import stage_line
    from qgn.cli.progress_line import ItemParts

    clock = Clock()
    left = TimeLeft(clock)
    left(1, 100)
    clock.now += 1.2
    for done in range(90, 100):  # 1.2 s for 89 items: ~0.15 s left at most
        clock.now += 0.01
        assert left(done, 100) == "under a second left", (done, left.seconds(done, 100))
        assert left.suffix(done, 100) == " · under a second left"

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(progress_line, "room", lambda: None)
    shown = []
    parts = ItemParts("convert", 4, time_left=TimeLeft(clock))
    parts.show = shown.append
    monkeypatch.setattr(ItemParts, "SHOWN_AFTER_S", 0.0)
    for i in range(3):
        parts.begin(i, Path(f"m{i}.png"))
        clock.now += 0.6  # 0.6 s a file: 1.2 s after the third, 0.6 s left
        parts.part("reading")
    assert shown[-1] == "qgn convert: [3/4] m2.png: reading · under a second left", shown
    clock.now += 5  # past its estimate, with m3.png after it: that file's, at the mean of the files done (0.6 s)
    parts.part("writing")
    assert shown[-1] == "qgn convert: [3/4] m2.png: writing · under a second left", shown
    parts.begin(3, Path("m3.png"))
    clock.now += 5  # the last file, past its estimate: said so
    parts.part("writing")
    assert shown[-1] == "qgn convert: [4/4] m3.png: writing · longer than estimated", shown

    monkeypatch.setattr(time, "monotonic", clock)
    line = stage_line()
    for i in range(5):
        line("speed", i, 5, "schemes")  # 0.3 s a scheme: 0.3 s left at the fifth
        clock.now += 0.3
    err = capsys.readouterr().err
    assert "about 0 s" not in err and "qgn bench: speed: 4/5 schemes · under a second left" in err, err


def test_counting_down_subtracts_the_time_since_the_count_moved():
    """Redrawn while a count stands still, the estimate made when it moved counts down (``seconds``
    grows with the clock then); a new count makes a new estimate."""
    clock = Clock()
    left = TimeLeft(clock)
    left.counting_down(0, 10)
    clock.now += 1
    assert left.counting_down(1, 10) is None  # the first report: nothing known yet
    clock.now += 2
    assert left.counting_down(2, 10) == pytest.approx(16.0)  # 2 s per item, 8 left
    clock.now += 1
    assert left.counting_down(2, 10) == pytest.approx(15.0) and left.seconds(2, 10) == pytest.approx(24.0)
    clock.now += 30  # never below the 7 items after the one under way, at the mean of those done
    assert left.counting_down(2, 10) == pytest.approx(14.0)
    assert left.counting_down(3, 10) == pytest.approx(33 / 2 * 7)  # the count moved: a new estimate


def test_a_file_past_its_estimate_keeps_the_time_left_of_the_files_after_it(monkeypatch):
    """100 files of 6 s, the 60th taking 400 s (more than the ~4 min estimated for all 41 left):
    its line counted down to no time left at all (~150 s with nothing, "about 0 s left" before)
    while 40 files of ~6 s were known to remain; it now holds at their estimate at the mean of the
    files done (40 × 6 s = 4 min, what is known to remain at the least: the overrun says nothing of
    the files after it; counting it as done now made the line climb to 8 min 29 s). Once the count
    moves the estimate is the mean of all files done, the 400 s one's included, as any estimate;
    the last file run past its estimate says so (``TimeLeft.counting_down``, ``left_phrase``)."""
    from qgn.progress import format_duration
    import sys
    from pathlib import Path

    import qgn.cli.progress_line as progress_line
    from qgn.cli.progress_line import ItemParts

    clock = Clock()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(progress_line, "room", lambda: None)
    monkeypatch.setattr(ItemParts, "SHOWN_AFTER_S", 0.0)
    parts = ItemParts("predict", 100, time_left=TimeLeft(clock))
    shown = []
    parts.show = shown.append
    for i in range(100):
        parts.begin(i, Path(f"f{i:03d}.png"))
        for step in ([3] + [50] * 8 if i in (59, 99) else [6]):  # the 60th and the last: 403 s
            clock.now += step
            parts.part("computing")
    stuck = [line for line in shown if "[60/100]" in line]
    assert stuck[0] == "qgn predict: [60/100] f059.png: computing · about 4 min 03 s left", stuck  # 246 s - 3 s
    assert stuck[1:] == ["qgn predict: [60/100] f059.png: computing · about 4 min 00 s left"] * 8, stuck
    after = next(line for line in shown if "[61/100]" in line)
    mean = (58 * 6 + 403) / 59  # the 59 files since the first report (1 file done at 106 s), 6 s of the next one later
    assert after.endswith(f"about {format_duration(mean * 40 - 6)} left"), after
    assert shown[-1] == "qgn predict: [100/100] f099.png: computing · longer than estimated", shown[-3:]


def test_a_finished_training_leaves_no_line_for_the_next_command_to_blank(tmp_path, run_cli, monkeypatch):
    """`qgn train` ends its progress line as its own before 'done': it ended it with a plain newline,
    so the line stayed the one drawn, and the next command of the process (an in-process caller's)
    blanked it with '\\r' + spaces before its own one-line error."""
    import qgn.train.loop
    from qgn.cli import progress_line

    def quick(config, resume, progress, device, replace):
        progress(1, {"loss": 0.5, "lr": 0.01, "sec_per_iter": 1.0})
        return "final.safetensors"

    monkeypatch.setattr(qgn.train.loop, "train", quick)
    code, out, err = run_cli("train", "--preset", "demo", "--set", "iterations=1", "--out", tmp_path / "run")
    assert code == 0, err
    assert progress_line._drawn is None
    assert "\nqgn train: done: final.safetensors\n" in err and "\n\n" not in err, err


def test_step_costs_say_nothing_until_every_step_to_come_was_measured():
    """``StepCosts``: seconds per unit of work of each kind of step, their sum over the steps to
    come scaled by each one's work, and no estimate while one kind was never measured."""
    from qgn.progress import StepCosts

    costs = StepCosts()
    assert costs.seconds([]) == 0.0
    assert costs.seconds([("encoder", 100)]) is None
    costs.record("encoder", 100, 2.0)
    costs.record(("level", 0), 100, 8.0)
    assert costs.seconds([("encoder", 300), (("level", 0), 50)]) == 6.0 + 4.0
    assert costs.seconds([("encoder", 300), (("level", 1), 50)]) is None
    costs.record("encoder", 100, 1.0)  # the latest run counts
    assert costs.seconds([("encoder", 100)]) == 1.0


def test_step_costs_scale_a_step_not_known_yet_as_the_latest_run_grew():
    """A decoder level whose sites are not known yet (its parent is not computed) is the level
    before's sites scaled as in the latest run that measured both; no such run: no estimate; none
    below a level with no sites."""
    from qgn.progress import StepCosts, TimedText, left_phrase

    costs = StepCosts()
    costs.record("a", 10, 1.0)  # 0.1 s a site
    costs.record("b", 40, 2.0)  # 0.05 s a site, four times a's sites
    assert costs.seconds([("a", 20), ("b", None)]) == pytest.approx(2.0 + 0.05 * 80)
    assert costs.seconds([("b", None)]) is None
    assert costs.seconds([("a", 20), ("c", None)]) is None
    assert costs.seconds([("a", 0), ("b", None)]) == 0.0
    costs.record("c", 0, 0.5)  # the decoder stopped: no sites
    assert costs.seconds([("b", 40), ("c", None)]) == pytest.approx(2.0)
    assert left_phrase(0.4) == "under a second left" and left_phrase(12.2) == "about 12 s left"
    assert left_phrase(0) == "under a second left"  # an estimate of 0 s (two reports in one clock tick)
    assert TimedText("finishing", 0.0) == "finishing · under a second left"  # (an estimate of 0 s)
    text = TimedText("computing Q̂0", 5.0)
    assert text == "computing Q̂0 · about 5 s left" and (text.head, text.left) == ("computing Q̂0", 5.0)


def test_a_fresh_estimate_of_no_time_reads_under_a_second_and_only_a_count_down_that_ran_out_overran():
    """Two reports within one tick of a coarse clock (Windows' monotonic ticks 15.6 ms) estimate 0 s:
    the line said "longer than estimated" from that first estimate. A fresh estimate of 0 s reads
    "under a second left"; "longer than estimated" is said only by a count-down that ran past its
    estimate with nothing known after it (``count_down_suffix``, the one home)."""
    from qgn.progress import TimeLeft

    now = [0.0]

    def tick():  # a 15.625 ms clock
        return int(now[0] / 0.015625) * 0.015625

    left = TimeLeft(tick)
    now[0] = 1.20
    assert left.suffix(1, 50) == ""  # the first report: nothing known yet
    now[0] = 1.202  # the next file 2 ms later, the same tick
    assert left.suffix(2, 50) == " · under a second left"
    assert left(2, 50) == "under a second left"
    from qgn.progress import count_down_suffix

    now[0] = 3.0
    down = TimeLeft(tick)
    now[0] = 5.0
    down.count_down_suffix(1, 3)
    now[0] = 5.002
    assert down.count_down_suffix(2, 3) == " · under a second left"  # a fresh 0 s, the last item under way
    now[0] = 9.0
    assert down.count_down_suffix(2, 3) == " · longer than estimated"  # it ran out, nothing after it
    assert count_down_suffix(0.0, 0.0) == " · under a second left"
    assert count_down_suffix(6.0, 7.0, 5.0) == " · about 5 s left"  # the items after the one under way
    assert count_down_suffix(6.0, 7.0) == " · longer than estimated"
    assert count_down_suffix(None, 3.0) == ""


def test_a_count_down_with_items_after_the_one_under_way_never_says_longer_than_estimated():
    """An estimate of 0 s for the 48 files left (two reports in one tick of a coarse clock) said
    "longer than estimated" one tick later with 48 files still to do: only the last item
    (``done == total - 1``) overruns; ``after`` None means "nothing after" (``count_down_suffix``)."""
    from qgn.progress import TimeLeft, count_down_suffix

    now = [0.0]

    def tick():  # a 15.625 ms clock
        return int(now[0] / 0.015625) * 0.015625

    left = TimeLeft(tick)
    now[0] = 1.20
    left.count_down_suffix(1, 50)
    now[0] = 1.202
    assert left.count_down_suffix(2, 50) == " · under a second left"
    now[0] = 1.220  # the next tick, the same file
    assert left.count_down_suffix(2, 50) == " · under a second left"
    now[0] = 3.0  # its 47 files after it, at the mean were the one under way done now (~0.9 s a file)
    assert left.count_down_suffix(2, 50) == " · about 43 s left"
    assert count_down_suffix(0.0, 2.0, 0.0) == " · under a second left"  # work after it, its estimate 0 s
    assert count_down_suffix(0.0, 2.0, None) == " · longer than estimated"  # nothing after it
    assert count_down_suffix(3.0, 1.0, 0.0) == " · about 2 s left"


@pytest.mark.parametrize("second", [1.202, 1.21])  # in the first report's tick (0 s), in the next (15.6 ms)
def test_an_estimate_of_no_time_with_files_after_it_grows_as_the_file_under_way_runs(second):
    """Two reports in one tick of a coarse clock estimate 0 s for the 48 files left (one tick apart:
    0.7 s); the third file then ran 20 s and the line said "under a second left" all along (its
    floor, the estimate of the 47 files after it, stayed under a second). Where the files done took
    no measurable time (under MEASURABLE_S), the floor is what the estimate would be were the file
    under way done now: the mean since the first report over the files done and that one, times the
    files after it - what the line says anyway once the count moves, so it never jumps up there."""
    from qgn.progress import TimeLeft

    now = [0.0]

    def tick():  # a 15.625 ms clock
        return int(now[0] / 0.015625) * 0.015625

    left = TimeLeft(tick)
    now[0] = 1.20
    left.count_down_suffix(1, 50)  # the first report
    first = tick()
    now[0] = second
    assert left.count_down_suffix(2, 50) == " · under a second left"  # a fresh estimate under a second
    for seconds in (5.0, 20.0):
        now[0] = second + seconds
        floor = (tick() - first) / 2 * 47  # 2 files since the first report (the one under way counted done now)
        assert left.counting_down(2, 50) == pytest.approx(floor)
        assert left.count_down_suffix(2, 50) == f" · about {format_duration(floor)} left"
        assert left.counting_down(2, 50) == pytest.approx(left.seconds(3, 50))  # its count moving says the same
