"""Run under torchrun by test_distributed.py: trains (``qgn.train.loop.train``) and writes which of
this process's native threads run - by name, from /proc - while it trains (rank 0, from the progress
callback) and once it has returned, to ``OUT/threads-RANK.json``."""
import json
import os
import sys
from pathlib import Path

from qgn.train.loop import TrainConfig, train


def thread_names() -> list[str]:
    tasks = Path("/proc/self/task")
    return sorted((tasks / t / "comm").read_text().strip() for t in os.listdir(tasks))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    config = TrainConfig.from_dict({"out": str(out / "run"), "synthetic_size": 64, "synthetic_n": 8, "iterations": 2,
                                    "batch_size": 2, "crop": 0, "log_every": 1, "checkpoint_every": 100})
    during: list[str] = []
    train(config, progress=lambda iteration, row: during.extend(thread_names()))
    (out / f"threads-{os.environ['RANK']}.json").write_text(json.dumps({"during": during, "after": thread_names()}))
