"""The export lock: an export into a folder holds it over each image's files there (each set aside,
written and taken back) and over a read-modify-write of a file its exports share (a CVAT export's
``default.txt``), so that two exports into one folder - two windows, the app and the command line,
two machines sharing the folder - never replace or undo each other's files unseen.

The lock-file protocol (``export_lock``): the lock is an exclusive advisory lock (``flock``) on the
folder's own ``EXPORT_LOCK`` file, never on the folder itself (``qgn.fileio.lock_folder``: a
``qgn serve`` holds its --train-out, a project's writes its root; an export neither waits for them
nor stops them). The file is opened never waiting and never through a link, and only where it is a
regular file with one name (``_open_export_lock``); its holder writes who it is into it (pid, host,
since when: ``lock_holder_text``) and removes it as it lets go, so a waiter that then gets the removed
file's lock tries the name again (``_take_export_lock``; on NFS, ESTALE too, ``STALE_RETRIES``). A dead
holder is never waited for (the system drops the lock when the last descriptor closes) and a live
one is never taken over. A wait for another process is said once after ``LOCK_WAIT_SAY_S`` and can be
stopped (``saying_waits``, ``unstoppable_waits`` for a take-back); where no lock can be taken (no
working locks, something else at the name, Windows) the export goes on serialised only within this
process and says so (``noting_unlocked``)."""
from __future__ import annotations

import contextvars
import errno
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .fileio import NO_LOCKS, NotAFileError, mode_kind, open_regular, unlink_quietly
from .processes import process_gone


@contextmanager
def export_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the export lock of the (existing) ``folder`` while the block runs: an exclusive advisory
    lock (``flock``) on its ``EXPORT_LOCK`` file, which an export holds over an image's files there
    (each set aside, written and taken back) and over a read-modify-write of a file its exports
    share (a CVAT export's ``default.txt``). Its own file, never the folder itself: other writers lock
    the folder (``lock_folder``: a ``qgn serve`` its --train-out for its whole life, a project's
    writes its root, ``qgn.project._folder_lock`` over ``fileio.folder_locked``), and an export must neither wait for them nor stop them.

    The holder writes who it is into the file (pid, host, since when) and removes the file as it
    lets go (a waiter that then gets the removed file's lock tries the name again, ``_take_export_lock``).
    Where another process holds it, a wait longer than ``LOCK_WAIT_SAY_S`` is said once
    (``saying_waits``' ``say``, else on stderr) naming the holder, and can be stopped
    (``saying_waits``' ``should_stop``: LockWaitStopped; Ctrl-C: KeyboardInterrupt) with nothing
    taken. A dead holder is never waited for: the system drops a lock when the last descriptor
    holding it closes, however its process ended (SIGKILL too; on NFS, when the server ends the dead
    client's lease), so a lock still held is a live process's - one the noted holder started, where
    the note's pid is gone (a forked child keeps the descriptor) - and is never taken over.

    Where no lock can be taken (a file system without working locks, ENOLCK; something other than a
    file at the lock file's name; Windows, unsaid) it only serialises the writers of this process, and
    says so once (``_say_unlocked``): refusing would leave no way to export there at all, while the
    only file at risk is one that another export into the same folder writes at the same moment."""
    fd = _export_lock_fd(Path(folder))
    if fd is None:
        with _PROCESS_LOCK:
            yield
        return
    try:
        yield
    finally:
        unlink_quietly(Path(folder) / EXPORT_LOCK)  # before the lock goes: never the next holder's file
        os.close(fd)  # closing releases the lock


#: The file whose lock is a folder's export lock (``export_lock``); while held, it names its holder
EXPORT_LOCK = ".qgn-export-lock"

def _export_lock_fd(folder: Path) -> int | None:
    """The descriptor that holds ``folder``'s export lock (waiting for another holder, ``_wait_for_lock``),
    its note written; None where no lock can be taken there (``export_lock``)."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        fd = _take_export_lock(folder, wait=False)
        if fd is None:
            fd = _wait_for_lock(folder)
    except NotAFileError as exc:
        _say_unlocked(folder, str(exc), str(exc))
        return None
    except OSError as exc:
        if exc.errno in NO_LOCKS:
            _say_unlocked(folder, f"the file system gives no locks: {exc.strerror}", exc.errno)
        elif exc.errno == errno.ELOOP:  # O_NOFOLLOW: a link at the lock file's name
            _say_unlocked(folder, f"{_lock_path_text(folder)} is a link, not qgn's lock file; move it away",
                          str(folder))
        elif exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):  # (a folder it cannot write in:
            if exc.filename is None:  # the export's own write says so, naming its file)
                raise OSError(exc.errno, f"{exc.strerror} (taking the export lock)", str(folder / EXPORT_LOCK)) from exc
            raise
        return None
    _write_lock_note(fd)
    return fd


def _lock_path_text(folder: Path) -> str:
    from .shown import path_text

    return path_text(folder / EXPORT_LOCK)


_UNLOCKED_SAID: set = set()
_UNLOCKED_NOTES: contextvars.ContextVar = contextvars.ContextVar("qgn_unlocked_notes", default=None)


@contextmanager
def noting_unlocked() -> Iterator[list[str]]:
    """While the block runs (in this thread), ``_say_unlocked``'s line is said once per file system and
    reason in this block - one export - instead of once per process, and kept in the list yielded
    (for the export's end line: the progress line it is said on is replaced by the next)."""
    notes: list[str] = []
    token = _UNLOCKED_NOTES.set((set(), notes))
    try:
        yield notes
    finally:
        _UNLOCKED_NOTES.reset(token)


def _say_unlocked(folder: Path, why: str, key) -> None:
    """Said once per file system and reason (one line, naming ``folder``) in an export
    (``noting_unlocked``), else in a process: an export into ``folder`` goes on without the export
    lock, ``why``."""
    from .shown import path_text

    try:
        device = os.stat(folder).st_dev
    except OSError:
        device = None
    text = (f"{path_text(folder)}: exporting without the folder's export lock ({why}): another export into "
            "the same folder at the same time could replace this one's files unseen - run one at a time there")
    say_export_note(text, (device, key))


def say_export_note(text: str, key) -> None:
    """``text``, one line to keep in sight after an export, said once per ``key`` in an export
    (``noting_unlocked``: kept in its notes too, which the app shows at its end), else in a process:
    on the export's progress line (``saying_waits``), else on stderr."""
    noting = _UNLOCKED_NOTES.get()
    said = noting[0] if noting is not None else _UNLOCKED_SAID
    if key in said:
        return
    said.add(key)
    if noting is not None:
        noting[1].append(text)
    say = (_LOCK_WAIT.get() or (_say_on_stderr, None, None))[0]
    say(text)


def _open_export_lock(folder: Path) -> tuple[int, bool]:
    """``folder``'s ``EXPORT_LOCK`` opened (created), never waiting (a named pipe there) and never through a
    link, and whether this call created it: NotAFileError where it is no regular file (a socket
    too, which no open takes: ENXIO) or one with other names (a hard link: another file's data,
    never written into). Another user's, which this one cannot write, is opened to read: locked
    all the same, without a note."""
    path = folder / EXPORT_LOCK
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    stale = 0
    while True:
        try:
            try:
                return _checked_lock_fd(folder, os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o644)), True
            except FileExistsError:
                pass
            try:
                fd = os.open(path, os.O_RDWR | flags)
            except PermissionError:
                if not path.is_file() or path.is_symlink():
                    raise
                fd = os.open(path, os.O_RDONLY | flags)
            return _checked_lock_fd(folder, fd), False
        except FileNotFoundError:  # removed between the two opens (its holder let go): again
            continue
        except IsADirectoryError:
            raise NotAFileError(f"{_lock_path_text(folder)} is a folder, not qgn's lock file; move it away") from None
        except OSError as exc:
            if exc.errno == errno.ESTALE and stale < STALE_RETRIES:  # NFS: removed on another machine
                stale += 1
                continue
            kind = None
            if exc.errno == errno.ENXIO:  # a socket (or a device without its driver)
                try:
                    kind = mode_kind(os.lstat(path).st_mode)
                except OSError:
                    pass
            if kind is None:
                raise
            raise NotAFileError(f"{_lock_path_text(folder)} is {kind}, not qgn's lock file; move it away") from None


def _checked_lock_fd(folder: Path, fd: int) -> int:
    """``fd`` where it is a regular file with no other name; else closed, and NotAFileError."""
    try:
        st = os.fstat(fd)
        kind = mode_kind(st.st_mode)
        if kind is None and st.st_nlink > 1:
            kind = f"a hard link to another file's data ({st.st_nlink} names)"
        if kind is not None:
            raise NotAFileError(f"{_lock_path_text(folder)} is {kind}, not qgn's lock file; move it away")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _take_export_lock(folder: Path, wait: bool) -> int | None:
    """A descriptor holding ``folder``'s export lock; None where another process holds it (``wait``
    False). A holder removes the file as it lets go: a lock got on a file no longer at the name
    (a waiter's, on the file its holder just removed) is let go, and the name tried again."""
    import fcntl

    stale = 0
    while True:
        fd, created = _open_export_lock(folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.lstat(folder / EXPORT_LOCK)):
                return fd
        except BlockingIOError:
            os.close(fd)
            return None
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno == errno.ESTALE and stale < STALE_RETRIES:  # NFS: the holder removed the file
                stale += 1  # as we locked it (another machine's): the name changed, try it again
            else:
                if created and exc.errno in NO_LOCKS:  # no lock here: never leave the file made for it
                    _unlink_if_same(folder / EXPORT_LOCK, fd)
                os.close(fd)
                raise
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


#: How often ``_take_export_lock`` tries the name again after ESTALE (NFS: a file another machine
#: removed as this one locked or read it)
STALE_RETRIES = 20


def _unlink_if_same(path: Path, fd: int) -> None:
    """Remove ``path`` where it is still ``fd``'s file (never a file another process made there since)."""
    try:
        if os.path.samestat(os.fstat(fd), os.lstat(path)):
            os.unlink(path)
    except OSError:
        pass


class LockWaitStopped(Exception):
    """A writer waiting for another's lock on a folder was stopped (``saying_waits``' ``should_stop``):
    it took nothing and wrote nothing there."""


_LOCK_WAIT: contextvars.ContextVar = contextvars.ContextVar("qgn_lock_wait", default=None)


@contextmanager
def saying_waits(say, should_stop=None, stopping: str | None = None) -> Iterator[None]:
    """While the block runs (in this thread), an ``export_lock`` that must wait for another process says
    so once with ``say(text)`` (a progress line) and gives up with LockWaitStopped when
    ``should_stop()`` is true (None: it waits until the lock is free or Ctrl-C). ``stopping``: the
    line's last clause, how the user stops the wait (default: cancelling, where ``should_stop`` is
    given - the export dialog's Cancel - else Ctrl-C, the command line's)."""
    if stopping is None:
        stopping = CANCEL_STOPS if should_stop is not None else CTRL_C_STOPS
    token = _LOCK_WAIT.set((say, should_stop, stopping))
    try:
        yield
    finally:
        _LOCK_WAIT.reset(token)


#: ``saying_waits``' ``stopping``: a caller whose ``should_stop`` is a Cancel; the command line's;
#: ``unstoppable_waits``' (no way to stop the wait is offered)
CANCEL_STOPS = "cancelling this export loses nothing"
CTRL_C_STOPS = "Ctrl-C stops this export, losing nothing"
UNSTOPPABLE = ""


@contextmanager
def unstoppable_waits() -> Iterator[None]:
    """``saying_waits`` without its ``should_stop`` while the block runs: a take-back (an undo) waits
    for its lock rather than leave half its item, and its line says it cannot be cancelled."""
    current = _LOCK_WAIT.get()
    with saying_waits(current[0] if current else _say_on_stderr, None, UNSTOPPABLE):
        yield


def _say_on_stderr(text: str) -> None:
    import sys

    print(f"qgn: {text}", file=sys.stderr, flush=True)


def _write_lock_note(fd: int) -> None:
    """Who holds the export lock (pid, host, since when), written into its file (``fd``). Best effort:
    a lock file that takes no note (opened to read, a full disk) is still locked."""
    import json
    import socket

    note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode("utf-8")
    try:
        os.pwrite(fd, note, 0)
        if os.fstat(fd).st_size > len(note):  # a killed holder's longer note (a truncate of an empty file costs)
            os.ftruncate(fd, len(note))
    except OSError:
        pass


def lock_holder_text(folder: Path) -> str:
    """Who holds ``folder``'s export lock, as its ``EXPORT_LOCK`` file says: "pid N on host H, since
    HH:MM:SS", with "(that process has ended: a process it started holds the folder)" where H is
    this host and N is gone; "its holder left no note" where there is none (an older qgn, another
    user's lock file, or it is just letting go). Read never waiting (``open_regular``)."""
    import json
    import socket

    try:
        with open_regular(folder / EXPORT_LOCK) as f:
            note = json.loads(f.read(4096).decode("utf-8"))
        pid, host, since = int(note["pid"]), str(note["host"]), float(note["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return "its holder left no note"
    from .shown import one_line

    text = f"pid {pid} on host {one_line(host)}, since {time.strftime('%H:%M:%S', time.localtime(since))}"
    if host == socket.gethostname() and process_gone(pid):
        text += "; that process has ended: a process it started holds the folder"
    return text


def export_lock_held(folder: Path) -> bool:
    """Whether another process holds ``folder``'s export lock now (taken and let go at once where not)."""
    fd = _take_export_lock(folder, wait=False)
    if fd is None:
        return True
    unlink_quietly(folder / EXPORT_LOCK)
    os.close(fd)
    return False


def remove_stale_export_lock(folder: Path) -> None:
    """``folder``'s ``EXPORT_LOCK`` file removed where no process holds it: one a killed export left
    (its holder removes it as it lets go), which would otherwise stay in the user's output folder
    until an export writes an image there again. Taken and let go at once, never waiting; left where
    another export holds it, where no lock can be taken there (nothing proves it free) and where it
    is no regular file of one name (a link, a pipe: said by the export that meets it)."""
    if not os.path.lexists(folder / EXPORT_LOCK):
        return
    try:
        fd = _take_export_lock(folder, wait=False)
    except (OSError, NotAFileError):
        return
    if fd is not None:
        unlink_quietly(folder / EXPORT_LOCK)  # before the lock goes: never the next holder's file
        os.close(fd)


#: How long a wait for another writer's lock goes unsaid: two exports into one folder take turns
#: (an image each) all the time; a wait is worth a line once it is more than a turn
LOCK_WAIT_SAY_S = 0.5


def _wait_text(folder: Path, stopping: str) -> str:
    """The line of a wait for another export's lock on ``folder``: how it can be stopped (``stopping``), or
    that it cannot (``UNSTOPPABLE``: a take-back)."""
    from .shown import path_text

    head = f"waiting for another export into {path_text(folder)} ({lock_holder_text(folder)})"
    if stopping == UNSTOPPABLE:
        return (f"{head} - it holds the folder while it writes an image; this export is taking back an image "
                "it could not finish and must wait for it: that cannot be cancelled (it would leave half the image)")
    return f"{head} - it holds the folder while it writes an image; {stopping}"


def _wait_for_lock(folder: Path) -> int:
    """``_take_export_lock(folder)`` where another process holds it: said once after ``LOCK_WAIT_SAY_S``,
    stoppable (``export_lock``).
    A helper thread waits in the system's lock call (woken as the holder lets go, as a plain wait
    is, never polling past a short gap between the holder's items); this thread watches
    ``should_stop``. Stopped, the helper lets the lock go the moment it gets it."""
    say, should_stop, stopping = _LOCK_WAIT.get() or (_say_on_stderr, None, CTRL_C_STOPS)
    state = {"done": False, "abandoned": False, "error": None, "fd": None}
    cond = threading.Condition()

    def take() -> None:
        fd = error = None
        try:
            fd = _take_export_lock(folder, wait=True)
        except BaseException as exc:
            error = exc
        with cond:
            if state["abandoned"]:
                if fd is not None:  # nobody waits for it any more: let go at once, as export_lock does
                    unlink_quietly(folder / EXPORT_LOCK)  # (the name first: never the next holder's file)
                    os.close(fd)
                return
            state["done"], state["error"], state["fd"] = True, error, fd
            cond.notify_all()

    threading.Thread(target=take, name="qgn-lock-wait", daemon=True).start()
    started, said = time.monotonic(), False
    try:
        with cond:
            while not state["done"]:
                if should_stop is not None and should_stop():
                    from .shown import path_text

                    raise LockWaitStopped(f"stopped while waiting for another export into {path_text(folder)}")
                if not said and time.monotonic() - started >= LOCK_WAIT_SAY_S:  # not a moment's turn
                    said = True
                    say(_wait_text(folder, stopping))
                cond.wait(0.1)
    except BaseException:
        with cond:
            if state["done"]:
                if state["fd"] is not None:
                    unlink_quietly(folder / EXPORT_LOCK)
                    os.close(state["fd"])
            else:
                state["abandoned"] = True
        raise
    if state["error"] is not None:
        raise state["error"]
    return state["fd"]


_PROCESS_LOCK = threading.RLock()  # ``export_lock`` where no lock can be taken: this process's writers
