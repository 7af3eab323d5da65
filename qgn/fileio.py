"""Writing files so that a reader never sees a partial one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, flushed and
    fsynced, then renamed over ``path`` (readers never see a partial file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, (path.stat().st_mode & 0o7777) if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class OutsideRootError(ValueError):
    """A file name that would place a file outside the folder it was meant for."""


def path_inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root / parts…``, refused (OutsideRootError) unless it resolves strictly inside ``root``.

    Every writer that builds a file name from data it did not choose itself (an image key from
    project.json, a stem from a file name) goes through this, so no name — ``../x``, an absolute
    path, a symbolic link pointing away — can make it write or delete a file elsewhere."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = root.resolve()
    target = path.resolve()
    if target == base or base not in target.parents:
        raise OutsideRootError(
            f"refusing to write {path}: the name {'/'.join(map(str, parts))!r} leads outside {root}"
        )
    return path
