"""torchrun + DDP (gloo, CPU): two ranks train on different samples and stay identical replicas."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qgn.model.checkpoint import load_model

pytestmark = pytest.mark.slow


def test_two_process_gloo_training_keeps_replicas_identical(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "qgn", "train", "--out", str(out),
           "--set", "synthetic_size=64", "--set", "synthetic_n=8", "--set", "iterations=3",
           "--set", "batch_size=2", "--set", "crop=0", "--set", "log_every=1", "--set", "checkpoint_every=100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QGN_SPARSE_BACKEND": "torch"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    replicas = json.loads((out / "replicas.json").read_text())
    assert replicas["world_size"] == 2
    assert len(set(replicas["digests"])) == 1, "ranks diverged: gradients were not synchronised"
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3  # header + one row per iteration, written by rank 0 only
    load_model(out / "final.safetensors")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from Linux's /proc")
def test_training_under_torchrun_leaves_no_gloo_thread_running(tmp_path):
    """When ``train`` returns, each rank's gloo process group is gone, its threads with it. A group
    still alive then is torn down inside the interpreter's own shutdown, and a rank sometimes died
    there ("terminate called without an active exception") after training had succeeded. It stayed
    alive because DDP's first use imports torch.distributed.nn.functional, whose functions take the
    live default group as their ``group=`` default, so destroy_process_group could not free it."""
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).with_name("gloo_threads_after_train.py")), str(tmp_path)]
    # a script's folder, not the working one, starts its import path: this checkout's qgn goes first
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QGN_SPARSE_BACKEND": "torch", "PYTHONPATH": path}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    threads = [json.loads((tmp_path / f"threads-{rank}.json").read_text()) for rank in (0, 1)]
    assert any("gloo" in name for name in threads[0]["during"]), threads[0]  # they can be seen by name
    for rank, names in enumerate(threads):
        assert [n for n in names["after"] if "gloo" in n] == [], f"rank {rank}: {names['after']}"


def test_ddp_finds_every_levels_logits_among_a_training_forwards_outputs(model_path):
    """DDP (find_unused_parameters) marks as used the parameters behind the tensors it finds in a
    forward's outputs, looking into lists and dataclass fields (its ``_find_tensors``, what
    ``DistributedDataParallel.forward`` calls): each level's logits must be found there, or every
    parameter is marked ready twice and training stops (the two-process test above)."""
    import numpy as np
    import torch
    from torch.nn.parallel.distributed import _find_tensors

    from qgn.infer import ImageSession
    from qgn.propagation import Scheme

    model = load_model(model_path).train()
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    session = ImageSession(model, image, at_image_size=True)
    with torch.enable_grad():
        outputs = model.decoder(session.features(), session.images, Scheme("all"))
    found = {id(t) for t in _find_tensors(outputs)}
    assert len(outputs) == 6 and all(id(o.logits) in found for o in outputs)
    assert all(o.logits.requires_grad for o in outputs)
