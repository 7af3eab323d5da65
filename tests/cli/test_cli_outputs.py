"""Output paths are checked before any work, and a refusal names the output the user gave and
what is wrong with its folder — never a temporary file's name or a bare errno; files a command
names in a series sort in their order."""
import os
import re
from pathlib import Path

import pytest

from qgn.cli.finetune import check_out
from qgn.cli.main import CLIError


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_no_file_can_be_created_in_is_not_writable_even_for_root(tmp_path):
    with pytest.raises(CLIError, match=r"--record /proc/x.safetensors: the folder /proc is not writable"):
        check_out(Path("/proc/x.safetensors"), tmp_path / "m.safetensors", False, option="--record")


def test_an_unwritable_output_folder_says_why(tmp_path, monkeypatch):
    """The refusal says why the folder cannot be written, in the words the app uses for a project
    (``qgn.fileio.write_problem``): no permission (here the system's answer for a non-root user in a
    read-only folder), or no file could be created there (/proc, even for root)."""

    from qgn.cli.files import check_writable_folder

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and real_access(path, mode, **kw))
    with pytest.raises(CLIError, match="^" + re.escape(f"--out {locked / 'o.qgt'}: the folder {locked} is not writable "
                                                       "(you have no permission to write there); choose another --out")):
        check_writable_folder(locked / "o.qgt")
    if Path("/proc/self").is_dir():
        with pytest.raises(CLIError, match=r"^/proc/o.qgt: the folder /proc is not writable \(no file can be "
                                           r"created in it\); choose another output path$"):
            check_writable_folder(Path("/proc/o.qgt"), "")


def test_the_option_is_named_and_the_model_json_is_never_the_output(tmp_path):
    model = tmp_path / "m.safetensors"
    (tmp_path / "old.safetensors").write_bytes(b"")
    with pytest.raises(CLIError, match="choose a new --record or pass --force"):
        check_out(tmp_path / "old.safetensors", model, False, option="--record")
    check_out(tmp_path / "old.safetensors", model, True, option="--record")
    with pytest.raises(CLIError, match="--out .* is the model being fine-tuned"):
        check_out(model, model, True)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("name", ["new.safetensors", "new.json"])
def test_a_model_output_or_its_json_that_is_a_pipe_is_refused_before_any_work(tmp_path, name):
    """``qgn finetune --out pipe.safetensors --force`` (and eval's --record) fine-tuned, then failed
    as it saved: the run was lost."""
    os.mkfifo(tmp_path / name)
    with pytest.raises(CLIError, match=f"--out {re.escape(str(tmp_path / name))} is a named pipe"):
        check_out(tmp_path / "new.safetensors", tmp_path / "m.safetensors", True)
    assert (tmp_path / name).is_fifo()


def test_samples_sort_in_scene_order_past_99(tmp_path, run_cli):
    """`qgn samples --count 101` named scene_100 and scene_101 between scene_10 and scene_11, so
    every file listing (and a project imported from them, and its exports) had them out of order."""
    code, out, err = run_cli("samples", tmp_path / "s", "--count", "101", "--size", "16x16")
    assert code == 0, err
    printed = [Path(line).name for line in out.splitlines()]
    assert len(printed) == 101 and printed == sorted(printed)
    assert sorted(p.name for p in (tmp_path / "s" / "labels").iterdir()) == printed


def test_samples_refuse_to_replace_files_unless_forced(tmp_path, run_cli):
    """`qgn samples OUT` wrote over a classes.txt and scene images already in OUT without a word:
    it refuses (one line naming the file and the fix, nothing written) unless --force; other files
    in OUT stay, and --force replaces a link rather than writing into the file it points to."""
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    mine = {out / "classes.txt": b"my classes\n", out / "images" / "scene_02.png": b"my photo",
            out / "notes.txt": b"my notes"}
    for path, data in mine.items():
        path.write_bytes(data)
    code, stdout, err = run_cli("samples", out, "--count", "2", "--size", "16x16")
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith(f"qgn samples: error: {out / 'images' / 'scene_02.png'} exists ")
    assert "--force" in err and "empty or new folder" in err
    assert {p: p.read_bytes() for p in mine} == mine and not (out / "labels").exists()
    assert run_cli("samples", tmp_path / "fresh", "--count", "1", "--size", "16x16")[0] == 0
    code, _, err = run_cli("samples", tmp_path / "fresh", "--count", "1", "--size", "16x16")
    assert code == 2 and "classes.txt exists" not in err and "scene_01.png exists (and 2 more" in err

    outside = tmp_path / "photo.png"
    outside.write_bytes(b"not a sample")
    (out / "images" / "scene_01.png").symlink_to(outside)
    code, _, err = run_cli("samples", out, "--count", "2", "--size", "16x16", "--force")
    assert code == 0, err
    assert outside.read_bytes() == b"not a sample" and not (out / "images" / "scene_01.png").is_symlink()
    assert (out / "notes.txt").read_bytes() == b"my notes"
    assert (out / "classes.txt").read_text().splitlines()[0].startswith("sky")
    assert (out / "images" / "scene_02.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("option, value, named", [
    ("--size", "0x0", "--size"), ("--size", "16x0", "--size"), ("--size", "100000x100000", "(QGN_MAX_PIXELS); choose a smaller size"),
    ("--count", "0", "--count"), ("--count", "-3", "--count"), ("--count", "100000000", "--count"),
    ("--seed", "-1", "--seed"),
])
def test_samples_refuse_a_bad_option_naming_it_before_writing(tmp_path, run_cli, option, value, named):
    """`--size 0x0` failed with numpy's "zero-size array to reduction operation maximum", `--seed -1`
    with "expected non-negative integer", `--count 0` or `-3` wrote an empty dataset and exited 0, and
    `--size 100000x100000` or `--count 100000000` went on to take all memory (no pixel limit, and a
    list of every file name first). One line naming the option, exit 2, nothing written."""
    out = tmp_path / "s"
    args = {"--size": "16x16", "--count": "1", option: value}
    code, stdout, err = run_cli("samples", out, *[a for kv in args.items() for a in kv])
    assert code == 2 and err.count("\n") == 1 and err.startswith("qgn samples: error: ") and named in err, err
    assert not out.exists()


def test_a_file_where_the_samples_folder_goes_is_said_once_with_one_fix(tmp_path, run_cli):
    """The line said what to do twice: "… move it away (nothing was written) (a file where a folder
    should be, or the reverse); fix the path"."""
    blocker = tmp_path / "out"
    blocker.write_text("mine")
    code, _, err = run_cli("samples", blocker, "--count", "1", "--size", "16x16")
    assert code == 2 and err == f"qgn samples: error: {blocker}: is a file where a folder belongs; move it away " \
                                "(nothing was written)\n", err


def test_a_folder_where_a_samples_file_goes_is_said_with_one_fix(tmp_path, run_cli):
    """A folder at classes.txt said "… is a folder; a file cannot be written in its place" and no
    fix at all (the generic one was dropped for messages of ours, and this one had none)."""
    out = tmp_path / "out"
    (out / "classes.txt").mkdir(parents=True)
    code, _, err = run_cli("samples", out, "--count", "1", "--size", "64x64", "--force")
    assert code == 2 and err == (f"qgn samples: error: {out / 'classes.txt'}: is a folder; a file cannot be written "
                                 "in its place (move the folder away or choose another name)\n"), err
