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
