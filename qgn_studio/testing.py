"""Helpers for the app's tests and benchmarks: a small untrained model and sample files.

Nothing here is used by the app itself. The untrained model gets a bias towards the composite
class on its coarse levels so that the PC scheme refines part of the image (a freshly initialised
network almost never predicts "composite", and every level below the root would then be empty).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_dev_model(path: Path, seed: int = 0, composite_bias: float = 0.35) -> Path:
    """Write an untrained tiny QGN over the synthetic classes to ``path`` (.safetensors + .json)."""
    import torch

    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.model.checkpoint import save_model
    from qgn.model.qgn import QGN, QGNConfig

    torch.manual_seed(seed)
    model = QGN(QGNConfig.from_preset("tiny", SYNTHETIC_CLASSES)).eval()
    with torch.no_grad():
        model.decoder.head5.bias[0] += composite_bias
        for level, block in model.decoder.levels.items():
            if int(level) >= 1:
                block.head.bias[0] += composite_bias
    return save_model(Path(path), model)


def bundled_or_dev_model(tmp: Path) -> tuple[Path, str]:
    """The bundled demo model when present, else an untrained tiny one in ``tmp``; and which."""
    from qgn.resources import demo_model_path

    demo = demo_model_path()
    if demo.is_file():
        return demo, "bundled demo model"
    return make_dev_model(Path(tmp) / "dev.safetensors"), "untrained tiny model (demo model missing)"


def write_samples(folder: Path, count: int = 3, size: tuple[int, int] = (96, 128),
                  layout: str = "labels") -> list[Path]:
    """Synthetic scenes as PNG images with ground truth; returns the image paths.

    layout: "labels" → ``folder/images/NAME.png`` + ``folder/labels/NAME.png``;
            "beside" → ``folder/NAME.png`` + ``folder/NAME_label.png``;
            "none"   → images only.
    """
    from qgn.data.synthetic import make_scene

    folder = Path(folder)
    image_dir = folder / "images" if layout == "labels" else folder
    image_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image, label = make_scene(100 + i, *size)
        path = image_dir / f"scene_{i:02d}.png"
        Image.fromarray(image).save(path)
        if layout == "labels":
            (folder / "labels").mkdir(exist_ok=True)
            Image.fromarray(label.astype(np.uint8)).save(folder / "labels" / path.name)
        elif layout == "beside":
            Image.fromarray(label.astype(np.uint8)).save(folder / f"{path.stem}_label.png")
        paths.append(path)
    return paths


def isolate_app(tmp_path: Path, monkeypatch) -> None:
    """Keep a test's settings and scratch autosaves inside ``tmp_path``, and make the QApplication."""
    from qgn_studio.app import make_application

    monkeypatch.setenv("QGN_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("QGN_STUDIO_SCRATCH", str(tmp_path / "scratch"))
    make_application()


def answering_window(recover: str = "later", unsaved: str = "discard"):
    """A MainWindow whose recover / unsaved-edits questions answer themselves (no modal dialogs)."""
    from qgn_studio.main_window import MainWindow, make_settings

    win = MainWindow(settings=make_settings())
    win.projects.ask_recover = lambda names: recover
    win.projects.ask_unsaved = lambda count, what: unsaved
    win.projects.ask_classes = lambda current: current  # a new project keeps the current classes
    win.projects.ask_add_images = lambda count, name: "add"  # images opened in a project join it
    win.projects.ask_remove = lambda names, project: True
    win.annotator.choose_merge_target = lambda class_id, pixels, images: None  # delete to ignore
    return win
