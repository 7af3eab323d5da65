"""The errors a project raises: ``ProjectError`` (a folder that is not a readable project, a request
it cannot honour) and its two kinds that a caller answers differently - ``ProjectChangedError``
(reload and try again) and ``ProjectBusyError`` (another writer holds the lock). Raised by
``qgn.project`` and ``qgn.project_file`` (reading project.json); callers import them from
``qgn.project``, which hands them on.
"""
from __future__ import annotations


class ProjectError(ValueError):
    """A folder that is not a (readable) project, or a request the project cannot honour."""


class ProjectChangedError(ProjectError):
    """Another window or command changed the project since this copy read it (its classes, or the
    whole file); nothing was written. Reload the project (``Project.open``) and try again."""


class ProjectBusyError(ProjectError):
    """Another writer held the project's lock for longer than ``qgn.project.lock_timeout_s()``."""
