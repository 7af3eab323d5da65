"""What a controller asks of the window that holds it, beyond the ``Workspace``: one small interface.

Opening and closing images touches the list, the thumbnails and the canvas, and loading a model
goes to the inference worker; the window does these (``MainWindow`` implements ``Shell``). A test
of a controller without a window passes ``qgn_studio.testing.FakeShell`` instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Shell(Protocol):
    def open_paths(self, paths: list, append: bool = False) -> None:
        """Open images, folders or a project (``append``: keep the open images too)."""

    def show_project_images(self, opening, docs: list, dropped: list) -> None:
        """List ``docs``, the images of the project just opened (``project_open.ProjectOpening``:
        its files on disk, those missing), instead of the open ones; ``dropped`` leave (their
        unsaved edits were dealt with). Asks nothing."""

    def close_documents(self, docs: list, forget: bool = True) -> None:
        """Take ``docs`` out of the workspace (nothing on disk changes); ``forget`` False: their
        annotations and undo logs are kept, for ``list_again``."""

    def list_again(self, docs: list, rows: list) -> list:
        """``docs`` taken out with ``forget`` False join the workspace again at ``rows``, as they
        were; the current image stays. Returns those listed (not one whose image is open again)."""

    def load_model(self, path: Path) -> None:
        """Load the model at ``path`` (off the UI thread); ``Workspace.model_changed`` follows."""
