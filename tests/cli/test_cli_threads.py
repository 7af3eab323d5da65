"""`--threads N` sets torch's CPU threads for the commands that run a network."""
import argparse

import pytest
import torch

from qgn.cli.main import build_parser
from qgn.cli.threads import apply_threads


@pytest.mark.parametrize("command", ["train", "eval", "predict", "finetune", "bench"])
def test_every_network_command_takes_threads(command):
    required = {"predict": ["x.png"], "finetune": ["--images", "i", "--labels", "l", "--out", "o.safetensors"]}
    argv = [command, "--threads", "1", *required.get(command, [])]
    args = build_parser(argv).parse_args(argv)
    assert args.threads == 1


def test_apply_threads_sets_and_zero_keeps_the_default():
    before = torch.get_num_threads()
    try:
        apply_threads(argparse.Namespace(threads=1))
        assert torch.get_num_threads() == 1
        apply_threads(argparse.Namespace(threads=0))
        assert torch.get_num_threads() == 1  # 0 leaves the setting alone
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="--threads"):
        apply_threads(argparse.Namespace(threads=-2))


def test_a_thread_count_beyond_any_machine_is_refused_before_torch_starts_them(run_cli):
    """``qgn predict --threads 1000000`` crashed (SIGSEGV, exit 139) after seconds of starting threads."""
    before = torch.get_num_threads()
    code, _, err = run_cli("predict", "--threads", "1000000", "--device", "cpu", "nonexistent.png")
    assert code == 2 and "--threads 1000000: at most" in err, err
    assert torch.get_num_threads() == before
