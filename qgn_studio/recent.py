"""Recently opened projects, images and folders, remembered in the app's settings (no widgets).

``RecentPaths(settings)``: ``add(path)`` puts a path first (at most ``LIMIT``, no repeats);
``paths()`` lists those that still exist, newest first. With no settings (screenshots, some
tests) nothing is remembered."""
from __future__ import annotations

from pathlib import Path

LIMIT = 8
KEY = "files/recent"


class RecentPaths:
    def __init__(self, settings, key: str = KEY, limit: int = LIMIT):
        self.settings, self.key, self.limit = settings, key, limit

    def _stored(self) -> list[str]:
        if self.settings is None:
            return []
        value = self.settings.value(self.key, [])
        if isinstance(value, str):  # QSettings gives a lone string for a one-item list
            value = [value]
        return [str(v) for v in value or []]

    def add(self, path) -> None:
        if self.settings is None:
            return
        text = str(Path(path).absolute())
        items = [text] + [p for p in self._stored() if p != text]
        self.settings.setValue(self.key, items[: self.limit])

    def paths(self) -> list[Path]:
        return [Path(p) for p in self._stored() if Path(p).exists()]


def is_inside(path, folder) -> bool:
    """Whether ``path`` lies in ``folder`` (resolving links; a symbolic link loop is taken as it is)."""
    from qgn_studio.discovery import resolved

    try:
        resolved(path).relative_to(resolved(folder))
        return True
    except ValueError:
        return False
