"""The errors a project raises: ``ProjectError`` (a folder that is not a readable project, a request
it cannot honour) and its two kinds that a caller answers differently - ``ProjectChangedError``
(reload and try again) and ``ProjectBusyError`` (another writer holds the lock); and the advice
their messages give for a link to nothing where the user's files are (``RESTORE_ADVICE``). Raised by
``qgn.project`` and ``qgn.project_file`` (reading project.json); callers import them from
``qgn.project``, which hands them on.
"""
from __future__ import annotations

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
