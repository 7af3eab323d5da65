"""The app's fine-tune guard end to end on real frames: ``qgn_studio.finetuner.FinetuneJob`` (run
synchronously) fine-tunes the bundled street model on the first K-1 of K CamVid 0001TP frames,
compares before and after on the frame it did not train on, and the Fine-tune panel shows the
comparison — with "Worse after fine-tuning" when it is worse.

    QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_finetune_guard.py 4 0.001
    QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_finetune_guard.py 4 0.05
"""
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402


def main(k: int, lr: float) -> int:
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model
    from qgn.train.finetune import FinetuneConfig
    from qgn_studio.finetuner import Correction, FinetuneJob
    from qgn_studio.panels.finetune import FinetunePanel

    torch.set_num_threads(1)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])  # noqa: F841
    model = load_model(default_model("camvid")).eval()
    data = open_dataset("camvid", "train")
    samples = [data[i] for i in range(len(data)) if data[i].name.startswith("0001TP")][:k]
    corrections = [Correction(s.name, Path(s.name), s.image, np.asarray(s.label).astype(np.int64)) for s in samples]
    config = FinetuneConfig(iterations=300, lr=lr, batch_size=min(4, k))  # the panel's settings but lr
    job = FinetuneJob(model, corrections, config, "pc", classes=model.config.classes)
    got = {}
    job.compared.connect(lambda result, comparison: got.update(comparison=comparison))
    job.failed.connect(lambda message: got.update(failed=message))
    job.run()
    if "failed" in got:
        print("failed:", got["failed"])
        return 1
    c = got["comparison"]
    shown = [r["name"] for r in c.per_image]
    print("compared on", shown, "(held out)" if c.held_out else "(trained on)",
          "trained on", [n for n in job.names if n not in shown])
    print("before", {key: round(100 * v, 2) for key, v in c.before.items()},
          "after", {key: round(100 * v, 2) for key, v in c.after.items()})
    panel = FinetunePanel()
    panel.show_comparison(c)
    print("panel:", re.sub("<[^>]+>", " ", panel.changed.text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), float(sys.argv[2])))
