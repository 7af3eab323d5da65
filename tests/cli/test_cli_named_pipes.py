"""A named pipe the user names on the command line (``--config <(printf …)``, ``--classes
/dev/stdin``) is read, within a bounded wait for its data; one with no writer is a one-line error
after that wait, never a hang. Pipes found inside folders stay refused (tests/formats/test_special_files.py)."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def pipe_with_writer(tmp_path):
    """``pipe_with_writer(text)``: a named pipe whose writer (a thread) writes ``text`` once a reader
    opens it, then closes it. A writer no reader came for is let go at the end."""
    made: list = []

    def make(text: str):
        path = tmp_path / f"pipe{len(made)}"
        os.mkfifo(path)

        def write():
            with open(path, "w") as f:  # waits for the reader
                f.write(text)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        made.append((path, thread))
        return path

    yield make
    for path, thread in made:
        if thread.is_alive():  # no reader opened it: open one so the writer ends
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(5)
            os.close(fd)


@pytest.fixture
def lone_pipe(tmp_path, monkeypatch):
    """A named pipe no one writes into, with the wait for a named pipe's data cut to 0.2 s; should a
    reader wait on it regardless, a writer lets it go after 30 s (and the test fails)."""
    import qgn.fileio

    monkeypatch.setattr(qgn.fileio, "NAMED_PIPE_WAIT_S", 0.2)
    path = tmp_path / "lone"
    os.mkfifo(path)
    done = threading.Event()
    released: list = []

    def release():
        if not done.wait(30):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            released.append(path)

    threading.Thread(target=release, daemon=True).start()
    yield path
    done.set()
    assert not released, "a reader waited on a pipe with no writer"


def test_train_reads_a_config_from_a_pipe(tmp_path, run_cli, pipe_with_writer, monkeypatch):
    import qgn.train.loop as loop

    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("training started"))
    config = pipe_with_writer("iterations = [\n")  # read, then refused as TOML: proof it was read
    code, _, err = run_cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2 and f"--config {config} is not valid TOML" in err, err


def test_a_pipe_named_with_no_writer_is_one_line_after_a_bounded_wait(tmp_path, run_cli, lone_pipe):
    code, _, err = run_cli("train", "--config", lone_pipe, "--out", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("qgn train: error: ") and f"{lone_pipe} is a named pipe (FIFO) and nothing came" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["stats", "convert"])
def test_classes_read_from_a_pipe(tmp_path, run_cli, pipe_with_writer, command):
    Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8)).save(tmp_path / "a.png")
    classes = pipe_with_writer("sky\nroad\ncar\n")
    extra = [tmp_path / "o"] if command == "convert" else []
    code, out, err = run_cli(command, tmp_path / "a.png", *extra, "--classes", classes)
    assert code == 0, out + err


def test_read_text_within_reads_a_named_pipe_only_when_named(tmp_path, pipe_with_writer, lone_pipe):
    from qgn.fileio import NotAFileError, read_text_within

    assert read_text_within(pipe_with_writer("a = 1\n"), "config", named=True) == "a = 1\n"
    with pytest.raises(NotAFileError, match="nothing came through it"):
        read_text_within(lone_pipe, "config", named=True)
    with pytest.raises(NotAFileError, match="named pipe"):  # found by a reader, not named: refused
        read_text_within(lone_pipe, "config")
    with pytest.raises(ValueError, match="too big"):  # the bound holds for a pipe too
        read_text_within(pipe_with_writer("x" * 5000), "config", limit=1000, named=True)


def test_a_writer_that_never_finishes_is_given_up_in_bounded_time_and_said_so(tmp_path, monkeypatch):
    """Each piece of data reset the wait, so a writer sending a byte every 9 s kept a reader for
    months; and one that sent its data but never closed the pipe was said to have sent nothing."""
    import qgn.fileio as fileio

    monkeypatch.setattr(fileio, "NAMED_PIPE_WAIT_S", 0.3)
    monkeypatch.setattr(fileio, "NAMED_PIPE_TOTAL_S", 1.0)
    path = tmp_path / "slow"
    os.mkfifo(path)
    stop = threading.Event()

    def trickle():
        fd = os.open(path, os.O_WRONLY)  # waits for the reader
        try:
            while not stop.wait(0.1):
                os.write(fd, b"a")
        except BrokenPipeError:  # the reader gave up, as the test wants
            pass
        finally:
            os.close(fd)

    writer = threading.Thread(target=trickle, daemon=True)
    writer.start()
    try:
        with pytest.raises(fileio.NotAFileError, match=r"whose writer sent \d+ bytes and did not finish in time"):
            fileio.read_at_most(path, 1 << 20, named=True)
    finally:
        stop.set()
        writer.join(5)
