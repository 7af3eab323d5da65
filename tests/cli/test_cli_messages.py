"""Refusals of bad input name the option or file and the fix, in one line: a config that is not
TOML or missing, a folder or device given as a classes file, an output under a file or in a folder
no file can be created in, label values past the .qgt's classes, an --ignore no label holds, and
file names that are not UTF-8 in formats that store names as text."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sample_files import qgt_claiming, write_mask, write_photo


def one_line(err: str, command: str) -> str:
    assert err.startswith(f"qgn {command}: error: ") and len(err.strip().splitlines()) == 1, err
    assert "unexpected" not in err and "Errno" not in err
    return err


def test_train_config_errors_name_the_option_and_the_file(tmp_path, run_cli, monkeypatch):
    import qgn.train.loop as loop

    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("training started"))
    bad = tmp_path / "bad.toml"
    bad.write_text("iterations = [\n")
    code, _, err = run_cli("train", "--config", bad, "--out", tmp_path / "run")
    assert code == 2 and f"--config {bad} is not valid TOML" in one_line(err, "train")
    code, _, err = run_cli("train", "--config", tmp_path / "nosuch.toml", "--out", tmp_path / "run")
    assert code == 2 and "--config" in one_line(err, "train") and "no such file" in err
    code, _, err = run_cli("train", "--config", tmp_path, "--out", tmp_path / "run")
    assert code == 2 and "is a folder" in one_line(err, "train")
    table = tmp_path / "t.toml"
    table.write_text("train = 3\n")
    code, _, err = run_cli("train", "--config", table, "--out", tmp_path / "run")
    assert code == 2 and "'train' must be a table" in one_line(err, "train")
    assert not (tmp_path / "run").exists()


def test_classes_that_are_not_a_classes_file_say_what_they_are(tmp_path, run_cli):
    mask = write_mask(tmp_path / "m.png")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "classes.txt").write_text("a\nb\n")
    code, _, err = run_cli("convert", mask, tmp_path / "o.qgt", "--classes", tmp_path / "ds")
    assert code == 2 and "is a folder, not a classes file" in one_line(err, "convert")
    assert f"did you mean {tmp_path / 'ds' / 'classes.txt'}" in err
    if Path("/dev/zero").exists():
        code, _, err = run_cli("convert", mask, tmp_path / "o.qgt", "--classes", "/dev/zero")
        assert code == 2 and "not a regular file" in one_line(err, "convert")
    code, _, err = run_cli("stats", mask, "--classes", tmp_path / "nosuch.txt")
    assert code == 2 and "--classes" in one_line(err, "stats") and "no such classes file" in err


def test_convert_output_under_a_file_or_in_an_unwritable_folder(tmp_path, run_cli):
    mask = write_mask(tmp_path / "m.png")
    (tmp_path / "a.qgt").write_bytes(b"")
    code, _, err = run_cli("convert", mask, tmp_path / "a.qgt" / "o.qgt")
    assert code == 2 and f"{tmp_path / 'a.qgt'} is a file, not a folder" in one_line(err, "convert")
    if Path("/proc/self").is_dir():
        code, _, err = run_cli("convert", mask, "/proc/o.qgt")
        assert code == 2 and "/proc/o.qgt: the folder /proc is not writable" in one_line(err, "convert")
        assert ".tmp" not in err


@pytest.mark.parametrize("command", ["predict", "samples", "convert", "export", "import"])
def test_an_output_folder_that_is_a_link_to_nothing_is_named_as_one(tmp_path, run_cli, command):
    """An output folder given as a symbolic link whose target does not exist: the message was
    "File exists (check the file, the disk and the path)", though ls shows no such file; import
    blamed each item in turn ("skipped ([Errno 17] File exists: ...)") for the project it could
    not create."""
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone" / "elsewhere")
    mask = write_mask(tmp_path / "in" / "m.png")
    if command == "export":
        run_cli("convert", tmp_path / "in", tmp_path / "qgt")
    argv = {"predict": ["predict", write_photo(tmp_path / "in" / "p.png"), "--out", out],
            "samples": ["samples", out, "--count", "1"],
            "convert": ["convert", mask.parent, out],
            "export": ["export", tmp_path / "qgt", "--format", "png", "--out", out],
            "import": ["import", tmp_path / "ds", "--project", out, "--format", "png", "--images", tmp_path / "in"]}[command]
    write_mask(tmp_path / "ds" / "p.png", size=(40, 32))
    (tmp_path / "ds" / "classes.txt").write_text("a\nb\nc\n")
    code, said, err = run_cli(*argv)
    assert code == 2, err + said
    line = [line for line in err.splitlines() if "error:" in line][0]
    assert f"{out}: is a link to {tmp_path / 'gone' / 'elsewhere'}, which does not exist" in line, err + said
    assert "File exists" not in err and "Errno" not in err + said
    assert out.is_symlink() and not (tmp_path / "gone").exists()


def test_a_link_to_nothing_is_named_by_what_is_missing_at_the_end(tmp_path, run_cli):
    """The review of the eighth hostile-inputs round: a chain link -> inner -> gone named ``inner``
    as not existing, though it is a link; a target whose bytes are not UTF-8 was shown as
    ``\\udcff``, not as the CLI shows such names (``\\xff``)."""
    import os

    (tmp_path / "inner").symlink_to(tmp_path / "gone" / "x")
    (tmp_path / "chain").symlink_to(tmp_path / "inner")
    code, said, err = run_cli("samples", tmp_path / "chain", "--count", "1")
    assert code == 2, err + said
    assert (f"{tmp_path / 'chain'}: is a chain of 2 links ending at {tmp_path / 'gone' / 'x'}, which does not "
            "exist (make the folder it points to, or remove the link)") in err, err
    os.symlink(os.fsencode(tmp_path) + b"/gone\xff", os.fsencode(tmp_path) + b"/bytes")
    code, said, err = run_cli("samples", tmp_path / "bytes", "--count", "1")
    assert code == 2 and f"is a link to {tmp_path}/gone\\xff, which does not exist" in err, err
    assert "udc" not in err


def test_a_file_made_where_a_link_to_nothing_stands_is_not_called_a_folder(tmp_path):
    """An exclusive create of a FILE (``qgn serve``'s version names) on a link to nothing said
    "make the folder it points to"; a loop of links was "a link to" itself."""
    import os

    from qgn.fileio import os_error_text

    (tmp_path / "new.json").symlink_to(tmp_path / "gone.json")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    said = []
    for name in ("new.json", "loop"):
        with pytest.raises(FileExistsError) as raised:
            os.close(os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        said.append(os_error_text(raised.value))
    assert said[0] == (f"{tmp_path / 'new.json'}: is a link to {tmp_path / 'gone.json'}, which does not exist "
                       "(make what it points to, or remove the link)"), said
    assert said[1] == f"{tmp_path / 'loop'}: is a loop of symbolic links, which leads nowhere (remove the link)", said


def test_atomic_writes_name_the_file_not_the_temporary(tmp_path):
    from qgn.fileio import atomic_write_bytes

    with pytest.raises(OSError) as caught:
        atomic_write_bytes(tmp_path / "nosuch" / "o.qgt", b"x")
    assert caught.value.filename == str(tmp_path / "nosuch" / "o.qgt") and ".tmp" not in caught.value.strerror


def test_label_values_past_the_qgt_classes_name_the_file_and_hint_ignore(tmp_path, run_cli):
    label = np.zeros((8, 8), np.uint16)
    label[0, 0] = 65535
    path = tmp_path / "deep.png"
    Image.fromarray(label).save(path)
    code, _, err = run_cli("convert", path, tmp_path / "o.qgt")
    assert code == 2 and f"{path}: label values reach 65535" in one_line(err, "convert")
    assert "pass --ignore 65535" in err
    assert run_cli("convert", path, tmp_path / "o.qgt", "--ignore", "65535")[0] == 0
    code, _, err = run_cli("convert", path, tmp_path / "p.qgt", "--classes", "4")
    assert code == 2 and "--ignore" in one_line(err, "convert")


@pytest.mark.parametrize("command", ["stats", "convert", "finetune"])
@pytest.mark.parametrize("value", ["-99999999999999999999", "-1", "65536"])
def test_an_ignore_value_no_label_can_hold_is_refused(tmp_path, run_cli, command, value):
    mask = write_mask(tmp_path / "m.png")
    argv = {"stats": ["stats", mask], "convert": ["convert", mask, tmp_path / "o.qgt"],
            "finetune": ["finetune", "--images", tmp_path, "--labels", tmp_path, "--out", tmp_path / "f.safetensors"]}
    code, _, err = run_cli(*argv[command], "--ignore", value)
    assert code == 2 and f"--ignore {value}: a label value is 0..65535" in one_line(err, command)


@pytest.mark.parametrize("fmt", ["coco", "labelstudio"])
def test_a_file_name_that_is_not_utf8_is_skipped_with_its_name(tmp_path, run_cli, fmt):
    src = tmp_path / "qgt"
    src.mkdir()
    bad = os.fsdecode(b"bad\xff\xfe")
    try:
        (src / f"{bad}.qgt").write_bytes(qgt_claiming(8, 8))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    (src / "good.qgt").write_bytes(qgt_claiming(8, 8))
    for stem in (bad, "good"):
        Image.new("RGB", (8, 8)).save(src / f"{stem}.png")
    code, out, err = run_cli("export", src, "--format", fmt, "--out", tmp_path / "out")
    assert code == 2 and "exported 1 of 2" in out, err
    first, summary = err.strip().splitlines()  # the bad file's line, then the batch's count naming it
    assert "is not valid UTF-8" in one_line(first, "export") and "bad\\xff\\xfe" in first and "surrogates" not in err
    assert summary.startswith("qgn export: 1 of 2 file(s) failed") and "bad\\xff\\xfe" in summary
    written = [p for p in (tmp_path / "out").rglob("*.json")]
    assert written and all("good" in p.read_text(encoding="utf-8") or not p.read_text() for p in written)
    for path in written:
        json.loads(path.read_bytes().decode("utf-8"))  # valid UTF-8 JSON, no escaped lone surrogates
        assert "\\udc" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["predict", "convert", "stats", "import", "export"])
def test_a_file_name_holding_a_line_break_keeps_every_failure_one_line(tmp_path, run_cli, command):
    """A file named ``bad\\nname`` split each failure naming it in two lines (and ``qgn import`` cut
    its reason at the break): the break is shown escaped, as ``\\n``, and the lines stay whole."""
    folder = tmp_path / "in"
    folder.mkdir()
    suffix = ".qgt" if command == "export" else ".png"
    write_mask(folder / f"good\nname{suffix.replace('.qgt', '.png')}")
    (folder / f"bad\nname{suffix}").write_bytes(b"not a picture, nor a quadtree")
    if command == "export":
        (folder / "good\nname.png").unlink()
        (folder / "good\nname.qgt").write_bytes(qgt_claiming(4, 4))
    if command == "import":  # masks both fine, the image of one not a picture
        images = tmp_path / "images"
        images.mkdir()
        write_photo(images / "good\nname.png", size=(8, 6))
        (folder / "bad\nname.png").replace(images / "bad\nname.png")
        write_mask(folder / "bad\nname.png")
    args = {"predict": ["--device", "cpu", "--threads", "1"], "convert": [tmp_path / "o", "--classes", "3"],
            "stats": [], "export": ["--png", tmp_path / "o"],
            "import": ["--format", "png", "--images", tmp_path / "images", "--classes", classes_file(tmp_path),
                       "--project", tmp_path / "p"]}[command]
    code, out, err = run_cli(command, folder, *args)
    assert code == 2, out + err
    assert err and all(line.startswith(f"qgn {command}: ") for line in err.splitlines()), err
    assert "bad\\nname" in err and "bad\nname" not in err + out, err
    assert "not a readable image" in err or "magic" in err or "not a .qgt" in err, err


def classes_file(folder: Path) -> Path:
    path = folder / "classes.txt"
    path.write_text("a\nb\nc\n")
    return path


def test_one_line_escapes_what_would_break_a_line_and_keeps_the_rest():
    from qgn.shown import echo, one_line

    assert one_line("a\nb\rc\x1b[2J\u2028d\udcff") == "a\\nb\\rc\\x1b[2J\\u2028d\\udcff"
    assert one_line("été 東京 ok") == "été 東京 ok"
    assert echo("x" * 300 + "\n") == "x" * 200 + "… (301 characters)"
    assert echo("a\tb", quote=True) == "'a\\tb'"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("model", ["pipe", "dangling"])
def test_a_model_that_is_a_pipe_or_a_link_to_nothing_is_named_as_one(tmp_path, run_cli, model):
    """`--model /dev/zero` or a pipe said "model … not found", a link to a moved model too."""
    path = tmp_path / "m.safetensors"
    if model == "pipe":
        os.mkfifo(path)
        said = f"{path} is a named pipe (FIFO), not a file"
    else:
        path.symlink_to(tmp_path / "moved" / "m.safetensors")
        said = f"{path}: is a link to {tmp_path / 'moved' / 'm.safetensors'}, which does not exist"
    code, _, err = run_cli("eval", "--model", path, "--device", "cpu", "--limit", "1")
    assert code == 2 and said in err and "not found" not in err, err


def test_an_import_into_a_project_path_that_is_a_file_says_so(tmp_path, run_cli):
    """It said "… is not an empty folder and holds no project" of a file."""
    from sample_files import ids_dataset

    source = ids_dataset(tmp_path / "ds", count=1)
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\n")
    target = tmp_path / "p.txt"
    target.write_text("mine")
    code, _, err = run_cli("import", source, "--format", "ids", "--classes", tmp_path / "classes.txt",
                           "--project", target)
    assert code == 2 and f"{target} is a file, not a folder" in err, err
    assert target.read_text() == "mine"


def test_run_as_python_m_qgn_cli_main_a_refusal_is_one_line(tmp_path):
    """``python -m qgn.cli.main`` runs the file as ``__main__`` while the subcommands import
    ``qgn.cli.main`` again: their CLIError was another class than the one ``__main__`` caught, and a
    plain refusal came out as 'unexpected CLIError' with a crash log. The same line as ``python -m qgn``."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    args = ["export", "--project", str(tmp_path), "--format", "coco", str(tmp_path / "out")]
    lines = {}
    for module in ("qgn", "qgn.cli.main"):
        done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 2, (module, done.stderr)
        lines[module] = done.stderr.strip()
    assert lines["qgn.cli.main"] == lines["qgn"]
    assert "unexpected" not in lines["qgn.cli.main"] and len(lines["qgn"].splitlines()) == 1


@pytest.mark.parametrize("form", [("--format", "png", "--out", "OUT"), ("--format", "coco,png", "--out", "OUT"),
                                  ("--png", "OUT")])
def test_a_project_folder_exported_as_a_folder_of_qgt_files_says_to_use_project(tmp_path, run_cli, monkeypatch,
                                                                                  form):
    """`qgn export PROJECT_DIR` without --project exported the project's .qgt files as a loose
    folder (the images not found, named after annotations/…), exit 0. Refused in one line, nothing
    written, saying the command that exports the project; that command runs as printed."""
    import shlex

    from qgn.classes import ClassSet
    from qgn.project import Project

    monkeypatch.chdir(tmp_path)
    photo = write_photo(tmp_path / "img.png", (12, 8))
    project = Project.create(tmp_path / "my project", [photo], ClassSet(("car", "sky"), (), 255))
    project.save_annotation(project.images[0], np.zeros((8, 12), np.uint8))
    code, out, err = run_cli("export", "my project", *form)
    assert code == 2 and len(err.splitlines()) == 1 and "--project" in err, err
    assert err.startswith("qgn export: error: my project is a QGN Studio project"), err
    assert not (tmp_path / "OUT").exists()
    advice = err.split("`")[1]
    assert advice.startswith("qgn export --project")
    code, out, err = run_cli(*shlex.split(advice)[1:])
    assert code == 0, err
    assert (tmp_path / "OUT" / "png" / "img.png").is_file()
    code, out, err = run_cli("export", "my project/annotations", *form)  # its .qgt files alone: as asked
    assert code == 0, err
