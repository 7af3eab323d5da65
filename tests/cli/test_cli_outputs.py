"""Output paths are checked before any work, and a refusal names the output the user gave and
what is wrong with its folder — never a temporary file's name or a bare errno."""
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
