"""Output paths are checked before any work, and a refusal names the output the user gave and
what is wrong with its folder — never a temporary file's name or a bare errno; files a command
names in a series sort in their order."""
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
    import os
    import re

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


def test_samples_sort_in_scene_order_past_99(tmp_path, run_cli):
    """`qgn samples --count 101` named scene_100 and scene_101 between scene_10 and scene_11, so
    every file listing (and a project imported from them, and its exports) had them out of order."""
    code, out, err = run_cli("samples", tmp_path / "s", "--count", "101", "--size", "16x16")
    assert code == 0, err
    printed = [Path(line).name for line in out.splitlines()]
    assert len(printed) == 101 and printed == sorted(printed)
    assert sorted(p.name for p in (tmp_path / "s" / "labels").iterdir()) == printed
