"""The errors a project raises: ``ProjectError`` (a folder that is not a readable project, a request
it cannot honour) and its two kinds that a caller answers differently - ``ProjectChangedError``
(reload and try again) and ``ProjectBusyError`` (another writer holds the lock); and the advice
their messages give for a link to nothing where the user's files are (``RESTORE_ADVICE``). Raised by
``qgn.project`` and ``qgn.project_file`` (reading project.json); callers import them from
``qgn.project``, which hands them on. ``ReadStopped`` is no error: a read that its caller's
``should_stop()`` stopped (``stopping``: a loop over a project's entries that polls it).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

#: The advice for a link to nothing where the project keeps the user's files (its project file, its
#: saved annotations, its autosaves): the files are where it points - making something there, or
#: removing the link, opens the project without them
RESTORE_ADVICE = "restore or mount what it points to: a drive, a synced or backed-up folder"


class ProjectError(ValueError):
    """A folder that is not a (readable) project, or a request the project cannot honour."""


class ProjectChangedError(ProjectError):
    """Another window or command changed the project since this copy read it (its classes, or the
    whole file); nothing was written. Reload the project (``Project.open``) and try again."""


class ProjectBusyError(ProjectError):
    """Another writer held the project's lock for longer than ``qgn.project.lock_timeout_s()``."""


class ReadStopped(Exception):
    """A read of a project (``Project.open``'s ``should_stop``: an open the user cancelled) stopped
    before its end; nothing was written or changed."""


#: Entries a loop over a project's images goes through between two polls of its ``should_stop``:
#: ~25 ms of ``Project.open`` (~24 µs an entry at 100,000 images).
STOP_CHECK_EVERY = 1000


def stopping(items: Iterable, should_stop: Callable[[], bool] | None) -> Iterable:
    """``items``, with ``should_stop()`` polled before the first and every ``STOP_CHECK_EVERY``
    after it: ReadStopped when true. ``items`` itself when ``should_stop`` is None."""
    return items if should_stop is None else _polled(items, should_stop, STOP_CHECK_EVERY)


def _polled(items: Iterable, should_stop: Callable[[], bool], every: int) -> Iterator:
    for n, item in enumerate(items):
        if n % every == 0 and should_stop():
            raise ReadStopped("the read was stopped")
        yield item
