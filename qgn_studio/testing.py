"""Helpers for the app's tests and benchmarks: a small untrained model and sample files.

Nothing here is used by the app itself. The untrained model gets a bias towards the composite
class on its coarse levels so that the PC scheme refines part of the image (a freshly initialised
network almost never predicts "composite", and every level below the root would then be empty).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_dev_model(path: Path, seed: int = 0, composite_bias: float = 0.35, classes=None) -> Path:
    """Write an untrained tiny QGN over ``classes`` (default: the synthetic classes) to ``path``
    (.safetensors + .json)."""
    import torch

    from qgn.data.synthetic import SYNTHETIC_CLASSES
    from qgn.model.checkpoint import save_model
    from qgn.model.qgn import QGN, QGNConfig

    torch.manual_seed(seed)
    model = QGN(QGNConfig.from_preset("tiny", classes or SYNTHETIC_CLASSES)).eval()
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


def answering_window(recover: str = "later", unsaved: str = "discard"):
    """A MainWindow whose recover / unsaved-edits / unkept fine-tune questions answer themselves (no
    modal dialogs; ``unsaved`` and an unkept fine-tuned model are discarded unless told)."""
    from qgn_studio.main_window import MainWindow, make_settings

    win = MainWindow(settings=make_settings())
    win.projects.ask_recover = lambda question: recover
    win.projects.ask_unsaved = lambda count, what: unsaved
    win.projects.ask_keep_unsaved = lambda count, why, where: False  # a failed save at close: stay
    win.projects.ask_classes = lambda current: current  # a new project keeps the current classes
    win.projects.ask_add_images = lambda count, name: "add"  # images opened in a project join it
    win.projects.ask_remove = lambda names, project: True
    win.annotator.choose_merge_target = lambda class_id, pixels, images: None  # delete to ignore
    win.finetuner.ask_unkept = lambda running, detail, path: "discard"
    win.finetuner.ask_set_aside = lambda detail, path: "later"
    return win


class Answers:
    """An ``AskUser`` (``qgn_studio.ask``) that answers every question at once, as given; what it
    was asked is listed in ``asked`` (method names, in order)."""

    def __init__(self, recover: str = "later", unsaved: str = "discard", folder=None, add_images: str = "add",
                 remove: bool = True, classes="keep", class_name=None, mask_file=None, colour=None,
                 merge_target=None, model_path=None, unkept_model: str = "discard", stop_finetune: bool = True,
                 unkept_at_start: str = "later", keep_unsaved: bool = False, kept_copy=None):
        self.answers = dict(recover=recover, unsaved=unsaved, folder=folder, add_images=add_images, remove=remove,
                            class_name=class_name, mask_file=mask_file, colour=colour, merge_target=merge_target,
                            model_path=model_path, unkept_model=unkept_model,
                            stop_finetune=stop_finetune, unkept_at_start=unkept_at_start,
                            keep_unsaved=keep_unsaved, kept_copy=kept_copy)
        self.keep_classes = classes == "keep"
        self.new_classes = None if self.keep_classes else classes
        self.asked: list[str] = []

    def _answer(self, name: str):
        self.asked.append(name)
        return self.answers[name]

    def recover(self, question):
        return self._answer("recover")

    def folder(self, title, new):
        return self._answer("folder")

    def add_images(self, count, name):
        return self._answer("add_images")

    def remove(self, names, project):
        return self._answer("remove")

    def unsaved(self, count, what):
        return self._answer("unsaved")

    def keep_unsaved(self, count, why, where):
        return self._answer("keep_unsaved")

    def classes(self, current):
        self.asked.append("classes")
        return current if self.keep_classes else self.new_classes

    def class_name(self):
        return self._answer("class_name")

    def mask_file(self):
        return self._answer("mask_file")

    def kept_copy(self, name, copies):
        return self._answer("kept_copy")

    def colour(self, rgb, name):
        return self._answer("colour")

    def merge_target(self, names, class_id, pixels, images):
        return self._answer("merge_target")

    def model_path(self, default):
        return self._answer("model_path")

    def unkept_model(self, running, detail, path):
        return self._answer("unkept_model")

    def unkept_at_start(self, detail, path):
        return self._answer("unkept_at_start")

    def stop_finetune(self, steps, seconds):
        return self._answer("stop_finetune")


class FakeShell:
    """A ``Shell`` (``qgn_studio.shell``) without a window, over ``workspace``: opening makes the
    documents (read at once) and makes the first one current, closing drops them, a requested
    selection becomes current; models asked for are listed in ``models``."""

    def __init__(self, workspace, annotator=None):
        self.workspace, self.annotator = workspace, annotator
        self.models: list = []
        workspace.select_requested.connect(workspace.set_current)

    def open_paths(self, paths, append: bool = False) -> None:
        from qgn_studio.discovery import expand_paths

        self._list(expand_paths(list(paths))[0], append)

    def show_project_images(self, opening, docs, dropped) -> None:
        if self.annotator is not None:
            self.annotator.forget(dropped)
        self.workspace.set_documents(docs)
        self._shown(docs, 0)

    def _list(self, images, append: bool) -> None:
        ws = self.workspace
        if not append and self.annotator is not None:
            keep = set(images)
            self.annotator.forget([d for d in ws.docs if d.path not in keep])
        self._shown(*ws.open_documents(images, append))

    def _shown(self, new, first) -> None:
        ws = self.workspace
        for doc in new:
            doc.load()
        if ws.current is None and ws.docs:
            ws.set_current(ws.docs[first])

    def close_documents(self, docs, forget: bool = True) -> None:
        if self.annotator is not None and forget:
            self.annotator.forget(docs)
        self.workspace.close_documents(docs)

    def list_again(self, docs, rows) -> list:
        ws = self.workspace
        back = [(row, d) for row, d in zip(rows, docs) if ws.doc_for(d.path) is None]
        listed = list(ws.docs)
        for row, doc in sorted(back, key=lambda pair: pair[0]):
            listed.insert(min(row, len(listed)), doc)
        ws.set_documents(listed)
        return [d for _row, d in back]

    def load_model(self, path) -> None:
        self.models.append(Path(path))
