"""Where a project keeps a file aside instead of deleting it: its folders ``removed/``,
``conflicts/``, ``replaced/`` and ``discarded/`` (made when missing, never through a symbolic link:
``kept_folder``), each file under a new name that never replaces another (``kept_path``:
``<stem>.<YYYYmmdd-HHMMSS>.qgt``, ``…-2.qgt`` when taken). Nothing a project keeps aside is ever
deleted by it. The autosave of edits undone back to the saved map (redo still holds them) is kept
under a name of its content, ``discarded/<stem>.undone-<sha256, 12 hex>.qgt`` (``keep_undone``): an
undo/redo cycle without new edits finds its bytes kept already and adds nothing, while every other
state - another window's, an image's that had the key before, edits whose redo a new edit dropped -
gets a file of its own; no file there is ever replaced.
"""
from __future__ import annotations

import bisect
import errno
import hashlib
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .fileio import OutsideRootError, file_sha256, make_folder, path_inside, sync_folder
from .processes import process_gone


MAX_KEPT_STEM = 170  # bytes
# a file under its private ``.taking`` name (``taking_name``: ``.<name>.<pid>-<wall clock ns>.taking``) is
# a crashed writer's once its taker's process is gone and the clock in its name is this far behind (a
# live writer holds it for microseconds); or, whatever the pid says (reused; a writer on another host
# of a shared folder), once that clock is ``TAKEN_ABANDONED_SECONDS`` behind. Never by the file's times:
# on Windows st_ctime is the creation time, which a rename keeps (a live take looked stale at once)
TAKEN_STALE_SECONDS = 60.0
TAKEN_ABANDONED_SECONDS = 24 * 3600.0
_TAKEN = re.compile(r"\.(?P<name>.+\.qgt)\.(?P<pid>\d+)-(?P<ns>\d+)\.taking")
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: os.open is in text mode without it (CRLF, 0x1A)
# os.link's errors that mean "this file system gives no second name": Linux vfat/exfat EPERM, macOS
# ENOTSUP, Windows exFAT/FAT and SMB shares EINVAL (ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED), FUSE ENOSYS
_NO_HARD_LINK = (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EINVAL,
                 errno.ENOSYS)


def _cut(stem: str) -> str:
    """``stem`` cut to ``MAX_KEPT_STEM`` bytes (a character cut in two is left out)."""
    name = os.fsencode(stem)
    return name[:MAX_KEPT_STEM].decode("utf-8", "ignore") if len(name) > MAX_KEPT_STEM else stem


def undone_path(folder: Path, stem: str, digest: str) -> Path:
    """``folder/<stem>.undone-<first 12 hex of digest>.qgt``: the name of an image's autosave undone
    back to the saved map whose bytes have the SHA-256 ``digest`` (a Discard's, ``kept_path``, never has
    it: its names end in a time)."""
    return folder / f"{_cut(stem)}.undone-{digest[:12]}.qgt"


def keep_undone(path: Path, folder: Path, stem: str, version=None, remove: bool = True) -> Path | None:
    """Move the autosave ``path`` (edits undone back to the saved map) into ``folder`` under its
    content's name (``undone_path``), never over a file there: given a second name (a hard link; where
    the file system has none, copied into a file created only where none is, and fsynced), the folder
    fsynced, and only then ``path`` removed. A name taken already holds the same bytes (checked in
    full): the content is kept, and ``path`` is simply removed. A name taken by other bytes (a 48-bit
    clash, a file changed by hand) is left as it is: the autosave is kept under ``kept_path``'s
    timestamped ``<stem>.<time>.undone-<hex>.qgt`` instead. Where it is kept; None when ``path`` was
    not there, or is not the ``version`` (inode, mtime_ns, size) the caller judged, or was replaced
    meanwhile by another writer (left in place; one landing just as ``path`` is removed is kept in
    ``folder`` too: ``_remove_if_same``). OSError (``path`` left as it is) when it cannot be kept or
    removed; a copy already made stays (the same bytes: a later try finds them kept). ``remove``
    False: ``path`` stays where it is (an autosave about to be written over by a state undo shortened)."""
    fd = _open_no_link(path)
    if fd is None:
        return None
    try:
        was = os.fstat(fd)
        if version is not None and (was.st_ino, was.st_mtime_ns, was.st_size) != tuple(version):
            return None  # another writer's autosave now: left in place
        sha = hashlib.sha256()
        for block in iter(lambda: os.read(fd, 1 << 20), b""):
            sha.update(block)
        digest = sha.hexdigest()
        target = undone_path(folder, stem, digest)
        made = _new_name(path, target, fd, was)
        if made is False and file_sha256(target) != digest:  # other bytes under the name: left as they are
            while made is False:
                target = kept_path(folder, _cut(stem), f".undone-{digest[:12]}.qgt")
                made = _new_name(path, target, fd, was)
        if made is None:
            return None  # another writer's autosave now: left in place
    finally:
        os.close(fd)
    sync_folder(folder)
    if remove:
        _remove_if_same(path, was, folder, stem)
    return target


def _read_no_link(path: Path) -> int:
    """``path`` opened to read its bytes (``_BINARY``, read when called), never through a link at its name
    (OSError)."""
    return os.open(path, os.O_RDONLY | _BINARY | getattr(os, "O_NOFOLLOW", 0))


def _open_no_link(path: Path) -> int | None:
    """``_read_no_link``; None when ``path`` is not there."""
    try:
        return _read_no_link(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def remove_kept(path: Path, version, folder: Path, stem: str) -> None:
    """Remove the file ``path`` whose bytes ``keep_undone(remove=False)`` kept in ``folder``, if it is still
    ``version`` (inode, mtime_ns, size): ``_remove_if_same`` (another writer's file landing meanwhile is kept
    in ``folder`` too, never deleted). Another file there by now, or none: left as it is. Its OSError
    (a file taken put back by another process meanwhile, an I/O error) is about the removal only: the
    bytes are kept already."""
    try:
        was = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if (was.st_ino, was.st_mtime_ns, was.st_size) != tuple(version):
        return  # another writer's now: left in place
    _remove_if_same(path, was, folder, stem)


def move_aside(path: Path, folder: Path, stem: str, suffix: str = ".qgt") -> Path | None:
    """Move the file ``path`` into ``folder`` under ``kept_path``'s name, never over a file there:
    given the new name first (``_new_name``: a hard link, or a copy created only where no file is),
    the folder fsynced, and only then ``path`` removed (``_remove_if_same``: another writer's file
    landing at ``path`` meanwhile is kept beside it, never deleted). A rename (``os.replace``) would
    replace a file another writer gave the same name in the same second where the project lock keeps
    no two processes apart. Where it went; None when ``path`` was not there, or another writer's file
    replaced it before it was named (left in place)."""
    fd = _open_no_link(path)
    if fd is None:
        return None
    try:
        was = os.fstat(fd)
        while True:
            target = kept_path(folder, stem, suffix)
            made = _new_name(path, target, fd, was)
            if made is None:
                return None
            if made:
                break
    finally:
        os.close(fd)
    sync_folder(folder)
    _remove_if_same(path, was, folder, stem)
    return target


def move_into_place(source: Path, target: Path) -> None:
    """Move the file ``source`` to ``target``, never over a file there (FileExistsError, ``source``
    left as it is): a hard link, then ``source``'s name removed - the very file, its times kept.
    Where the file system has no hard links, a rename after a check (a file landing between the two
    is replaced: the lock keeps writers apart there)."""
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINK:
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(source, target)
        return
    try:
        os.unlink(source)
    except OSError:
        pass  # both names of one file: the one in place counts, the other is a spare


def name_aside(source: Path, folder: Path, stem: str, suffix: str = ".qgt", copy: bool = False) -> Path:
    """A second name for the file ``source`` in ``folder``, under ``kept_path``'s name, never over a
    file there (one taken meanwhile by another writer: the next name): a hard link (``copy``: never;
    where the file system has none) or a copy into a file created only where none is, fsynced."""
    while True:
        target = kept_path(folder, stem, suffix)
        try:
            if copy:
                fd = _read_no_link(source)
                try:
                    _copy_into_new(fd, target)
                finally:
                    os.close(fd)
            else:
                _second_name(source, target)
        except FileExistsError:
            continue
        return target


def _remove_if_same(path: Path, was: os.stat_result, folder: Path, stem: str) -> None:
    """Remove ``path`` if it is still the file ``was`` describes (its bytes are kept). Taken first
    under a private name, so another writer's autosave landing at ``path`` between a check and an
    unlink is never what gets removed: a file taken that is not ``was`` is another writer's, kept in
    ``folder`` under ``kept_path``'s name (as a move of it would have) - or, where that fails (a
    full disk), put back at ``path`` (unless a newer file stands there) before the OSError."""
    private = taking_name(path)
    try:
        os.rename(path, private)  # what stands at path now, whoever wrote it
    except FileNotFoundError:
        return
    if _same_file(private, was):
        try:
            private.unlink()
        except FileNotFoundError as exc:  # put back (or kept) by another process meanwhile: not removed
            raise _moved_meanwhile(path, exc, f"it is back at {path}, or where that process keeps it") from None
        return
    try:
        _keep_beside(private, folder, stem)
    except OSError as exc:
        if not os.path.lexists(private):  # no longer under this writer's private name: someone moved it
            raise _moved_meanwhile(path, exc, f"it is back at {path} or kept in {folder}") from None
        _put_back(private, path)
        raise


def _moved_meanwhile(path: Path, exc: OSError, where: str) -> OSError:
    """The plain error of a file taken under its private ``.taking`` name that another process moved
    (put back: ``bring_back_taken`` on another host of a shared folder) before this one was done."""
    return OSError(f"{path.name} was moved by another process while this one set it aside "
                   f"({exc.strerror or exc}); nothing was deleted: {where}. Try again")


def remove_if_version(path: Path, version) -> bool:
    """Remove the file ``path`` if it is ``version`` (inode, mtime_ns, size): this writer's own. Taken
    first under a private name, so another writer's file landing at ``path`` between a check and an
    unlink is never what is removed: a file taken that is not ``version`` goes back to ``path`` (never
    over a newer one there; else left under the private name, which an open puts back:
    ``bring_back_taken``). True when removed or none was there; False when another's was kept. The
    file moved from its private name meanwhile (another process put it back): a plain OSError, nothing
    removed."""
    private = taking_name(path)
    try:
        os.rename(path, private)  # what stands at path now, whoever wrote it
    except FileNotFoundError:
        return True
    try:
        now = os.lstat(private)
        ours = (now.st_ino, now.st_mtime_ns, now.st_size) == tuple(version)
    except OSError:
        ours = False
    if ours:
        try:
            private.unlink()
        except FileNotFoundError as exc:  # put back (or kept) by another process meanwhile: not removed
            raise _moved_meanwhile(path, exc, f"it is back at {path}, or where that process keeps it") from None
        return True
    _put_back(private, path)
    return False


def taking_name(path: Path) -> Path:
    """The private name a writer takes the file ``path`` under before it removes or keeps it:
    ``.<name>.<pid>-<wall clock ns>.taking`` beside it - whose it is and since when, read by
    ``bring_back_taken`` from the name alone (a file's times cannot tell: see ``TAKEN_STALE_SECONDS``)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{time.time_ns()}.taking")


def taken_stale(name: str, now_ns: int | None = None) -> bool:
    """Whether the private name ``name`` (``taking_name``) is a crashed writer's leftover: the clock in
    its name ``TAKEN_STALE_SECONDS`` behind and its taker's process gone, or that clock
    ``TAKEN_ABANDONED_SECONDS`` behind whatever the pid (reused, or of another host)."""
    match = _TAKEN.fullmatch(name)
    if match is None:
        return False
    age = ((time.time_ns() if now_ns is None else now_ns) - int(match["ns"])) / 1e9
    if age > TAKEN_ABANDONED_SECONDS:
        return True
    return age > TAKEN_STALE_SECONDS and process_gone(int(match["pid"]))


#: ``bring_back_taken``'s why of a leftover whose private name another process opening the project at
#: once took first (put it back, or kept it in conflicts/): nothing of it is left to this one
TAKEN_BY_ANOTHER = "kept by another process"


def bring_back_taken(folder: Path, left: list | None = None, keep=None) -> list[Path]:
    """Put the files a crashed writer left in ``folder`` (the autosave folder; the annotation folder,
    where ``Project._park_unless`` takes another writer's save to conflicts/) under their private
    ``.taking`` names (killed between ``_remove_if_same``'s taking and its removal or keeping: maybe
    another writer's edits) back under their own names, where an open offers them - never over a file
    there (a newer one: the leftover stays, put back at a later open), never deleted; only those
    ``taken_stale`` says are a crashed writer's (a live writer's take is left alone). As far as the
    folder lets (read-only: left as they are). One whose name a newer file has is given to ``keep``
    (private name, its own name) -> where it is kept now (``Project._bring_back_taken``: conflicts/,
    where Kept copy… lists it); without ``keep``, or where that fails, it stays. The paths put back;
    ``left`` gets (the private name, its own name, why, where kept or None, the error) of each crashed
    writer's file that could not be put back (a read-only folder, a newer file at its name; gone from its
    private name meanwhile: ``TAKEN_BY_ANOTHER``, another opener took it first): to be said
    (``Project.taken_left_text``)."""
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if entry.name.endswith(".taking")]
    except OSError:
        return []
    back, now = [], time.time_ns()
    for name in names:
        match = _TAKEN.fullmatch(name)
        private = Path(folder) / name
        if match is None or not os.path.isfile(private) or os.path.islink(private):
            continue
        if not taken_stale(name, now):
            continue  # a live writer's, or too recent to tell
        path = Path(folder) / match["name"]
        try:
            _second_name(private, path)
        except FileExistsError:  # taken by a newer file: kept aside where it is listed (never over one)
            if _same_inode(private, path):
                continue  # both names of one file (a put-back whose unlink failed): its bytes are at its name
            kept, error = None, None
            if keep is not None:
                try:
                    kept = keep(private, path.name)
                except (OSError, ValueError) as exc:  # a read-only project, conflicts/ a link out: it stays
                    error = exc
            if kept is None and not os.path.lexists(private):
                why = TAKEN_BY_ANOTHER  # another opener kept it (or put it back) first
            else:
                why = "a newer file has its name"
            if left is not None:
                left.append((private, path.name, why, kept, error))
            continue
        except OSError as exc:  # a read-only folder (or another failure): left where it is
            if left is not None:
                moved = isinstance(exc, FileNotFoundError) and not os.path.lexists(private)
                left.append((private, path.name, TAKEN_BY_ANOTHER if moved else exc.strerror or str(exc), None, exc))
            continue
        try:
            private.unlink()
        except OSError:
            pass  # both names of one file: the next open finds the name taken
        back.append(path)
    return back


def _same_inode(one: Path, other: Path) -> bool:
    try:
        a, b = os.lstat(one), os.lstat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _keep_beside(private: Path, folder: Path, stem: str) -> Path:
    """Keep the file ``private`` in ``folder`` under ``kept_path``'s name, never over a file there: that name.
    Where ``folder`` holds it already (the same inode under a kept name of ``stem``: a writer killed
    between its link and its unlink, or another opener keeping it at once) that name, no second copy;
    two openers linking it at once each look again after linking, and the one whose name ``kept_path``
    gave later (its time, then its ``-n``) drops its own (the other holds the file; both never drop) -
    where one looked again before the other linked under an earlier time (a second boundary between
    naming and linking, clocks of two hosts apart) both names stay: the same bytes twice, nothing lost. Its
    private name gone meanwhile (another opener let it go
    after keeping it): FileNotFoundError before the link; after it, the name given here holds it all the
    same. ``folder`` is synced before the private name goes, whichever name holds the file. On a file
    system without hard links (``_second_name`` copies) a writer killed between its copy and its unlink
    leaves two copies - the private name and the kept one - and the next open keeps the private one again:
    two kept copies of the same bytes, nothing lost."""
    other = _kept_already(private, folder, _cut(stem))
    if other is None:
        while True:
            other = kept_path(folder, _cut(stem))
            try:
                _second_name(private, other)
            except FileExistsError:
                continue
            break
        try:
            mine = os.lstat(other)
        except OSError:
            mine = None
        first = None if mine is None else _kept_already(other, folder, _cut(stem), was=mine)
        if first is not None and first != other:  # another opener linked it too, under an earlier name
            other.unlink(missing_ok=True)
            other = first
    sync_folder(folder)  # the name that holds it made durable before the private name goes
    private.unlink(missing_ok=True)  # gone: another opener let it go, the name given here holds it
    return other


def _kept_already(private: Path, folder: Path, stem: str, was: os.stat_result | None = None) -> Path | None:
    """The first name ``kept_path`` gives in ``folder`` (``<stem>.<time>[-n].qgt``, by time then n) that is the
    file ``private`` too (``was``: its lstat, when known), or None: looked for only where the file has
    another name (its link count)."""
    if was is None:
        try:
            was = os.lstat(private)
        except FileNotFoundError:
            raise
        except OSError:
            return None
    if was.st_nlink < 2:
        return None
    try:
        with os.scandir(folder) as entries:
            kept = [(match["time"], int(match["n"] or 1), entry.name) for entry in entries
                    if entry.name.startswith(stem + ".")
                    and (match := _KEPT_TIME.fullmatch(entry.name[len(stem) + 1:])) is not None]
        names = [name for _time, _n, name in sorted(kept)]  # in the order kept_path gives them
    except OSError:
        return None
    for name in names:
        try:
            now = os.lstat(folder / name)
        except OSError:
            continue
        if (now.st_dev, now.st_ino) == (was.st_dev, was.st_ino) and stat.S_ISREG(now.st_mode):
            return folder / name
    return None


def _put_back(private: Path, path: Path) -> None:
    """``private`` back at ``path``, where the next open offers it, never over a file there (a newer
    autosave: then it stays at ``private``, its bytes on disk); as far as it can (a full disk)."""
    try:
        _second_name(private, path)
    except OSError:
        return
    private.unlink()


def _second_name(source: Path, target: Path) -> None:
    """Give the file ``source`` the name ``target`` too, never over a file there (FileExistsError): a
    hard link, or where the file system has none a copy into ``target`` created only where none is
    (O_EXCL), fsynced - never a rename, which replaces what stands at its target."""
    try:
        os.link(source, target, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINK:
            raise
    fd = _read_no_link(source)
    try:
        _copy_into_new(fd, target)
        was = os.fstat(fd)
    finally:
        os.close(fd)
    try:  # its times, as a link keeps them (an autosave's is compared with its saved annotation's)
        os.utime(target, ns=(was.st_atime_ns, was.st_mtime_ns), follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass


def _same_file(path: Path, was: os.stat_result) -> bool:
    """Whether ``path`` is still the file ``was`` describes (not replaced by another writer's)."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino, now.st_mtime_ns, now.st_size) == (was.st_dev, was.st_ino, was.st_mtime_ns,
                                                                       was.st_size)


def _new_name(path: Path, target: Path, fd: int, was: os.stat_result) -> bool | None:
    """Give the file ``path`` (open as ``fd``, ``was``) the new name ``target``, never over a file
    there: True when given, False when ``target`` is taken, None when ``path`` is another file now
    (another writer replaced it: nothing named). A hard link, or where the file system takes none a
    copy of ``fd``'s bytes into ``target`` created only where none is (O_EXCL), fsynced; a copy cut
    short is removed (OSError)."""
    try:
        os.link(path, target, follow_symlinks=False)
    except FileExistsError:
        return False
    except FileNotFoundError:
        return None  # path gone (another writer's Discard or save): nothing to keep
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINK:
            raise
    else:
        if _same_file(target, was):
            return True
        target.unlink(missing_ok=True)  # path was replaced before the link: not the file read (still at path)
        return None
    try:
        _copy_into_new(fd, target)
    except FileExistsError:
        return False
    return True


def _copy_into_new(fd: int, target: Path) -> None:
    """The bytes of the open file ``fd`` (from its start) into ``target``, created only where no file
    is (FileExistsError), fsynced; a copy cut short is removed (its OSError raised)."""
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY | getattr(os, "O_NOFOLLOW", 0), 0o644)
    made = os.fstat(out)
    try:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            for block in iter(lambda: os.read(fd, 1 << 20), b""):
                view = memoryview(block)
                while view:
                    view = view[os.write(out, view):]
            os.fsync(out)
        finally:
            os.close(out)
    except BaseException:
        try:
            now = os.lstat(target)
            ours = (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino)
        except OSError:
            ours = False
        if ours:  # the copy cut short, not a file another writer put at the name meanwhile
            target.unlink(missing_ok=True)
        raise


def kept_path(folder: Path, stem: str, suffix: str = ".qgt") -> Path:
    """``folder/<stem>.<YYYYmmdd-HHMMSS>.qgt`` (or ``suffix``), or ``…-2.qgt``, ``…-3.qgt`` when
    taken: a name for a file kept aside (``removed/``, ``conflicts/``) that never replaces another.
    A stem over ``MAX_KEPT_STEM`` bytes (an image's long file name) is cut: the name, its record's
    and their temporaries' must fit a file system's 255 bytes."""
    base = f"{_cut(stem)}.{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{base}{suffix}", 1
    while path.exists() or path.is_symlink():
        n += 1
        path = folder / f"{base}-{n}{suffix}"
    return path


def keep_aside(root: Path, name: str, stem: str, suffix: str = ".qgt") -> Path:
    """A new name (``kept_path``) for a file the project keeps aside in its folder ``name``
    (``kept_folder``: never through a symbolic link)."""
    return kept_path(kept_folder(root, name), stem, suffix)


def kept_folder(root: Path, name: str) -> Path:
    """``root/name`` — ``removed/``, ``conflicts/``, ``replaced/``, ``discarded/``: where the
    project keeps files aside — made when missing. OutsideRootError (nothing moved) when it is a symbolic link: a
    project unpacked or copied from elsewhere must not make its writes land in another folder."""
    folder = Path(root) / name
    if folder.is_symlink():
        raise OutsideRootError(
            f"{folder} is a symbolic link ({os.readlink(folder)}): the project keeps files aside only in a folder of "
            f"its own, never elsewhere. Nothing was moved; replace the link by a real folder named {name!r}")
    return make_folder(folder)


# ---------------------------------------------------------------------------------- kept copies, listed
#: a kept name's time (``kept_path``: local time, ``-<n>`` when the second was taken) and an undone state's hash
_TIME = r"(?P<time>\d{8}-\d{6})(?:-\d+)?"
_UNDONE = r"undone-[0-9a-f]{12}"
_KEPT_TIME = re.compile(r"(?P<time>\d{8}-\d{6})(?:-(?P<n>\d+))?\.qgt")  # what ``kept_path`` puts after ``<stem>.``
#: (folder, the rest of a kept name after ``<head>.``, what its head is - "key": the image's key, "stem":
#: its file's stem -, why it was kept in plain words); the first that matches says why. Those who write
#: them, all by the image's key but one: ``Project.discard_autosave`` (``move_aside``), ``keep_undone``,
#: ``Project._park_unless`` (a save's ``<key>``, an autosave's ``<key>.autosave``),
#: ``Project.replace_annotation`` (``name_aside`` into replaced/), ``Project.remove_image``
#: (``<key>.<annotation|autosave>``, each with a ``.qgt.json`` record naming the image file); and only
#: ``Project.keep_conflict`` (a class change's unsaved map it cannot take: ``follow_or_keep``) by the
#: image file's stem - two images of one stem (``x/a.png``, ``y/a.png``) share those names.
KEPT_NAMES = (
    ("discarded", rf"{_TIME}\.qgt", "key", "unsaved edits discarded"),
    ("discarded", rf"(?:{_TIME}\.)?{_UNDONE}\.qgt", "key", "edits undone back to the saved annotation"),
    ("conflicts", rf"autosave\.{_TIME}\.qgt", "key", "another window's unsaved edits"),
    ("conflicts", rf"(?:{_TIME}\.)?{_UNDONE}\.qgt", "key", "edits undone back to the saved annotation"),
    ("conflicts", rf"{_TIME}\.qgt", "key", "another window's save it replaced"),
    ("conflicts", rf"{_TIME}\.qgt", "stem", "unsaved edits a class change elsewhere could not take"),
    ("replaced", rf"{_TIME}\.qgt", "key", "the saved annotation an import of corrections replaced"),
    ("removed", rf"annotation\.{_TIME}\.qgt", "key", "the saved annotation, kept when the image was removed"),
    ("removed", rf"autosave\.{_TIME}\.qgt", "key", "unsaved edits, kept when the image was removed"),
)
KEPT_FOLDER_NAMES = tuple(dict.fromkeys(folder for folder, _rest, _by, _why in KEPT_NAMES))
_RULES = {folder: [(re.compile(rest), by, why) for name, rest, by, why in KEPT_NAMES if name == folder]
          for folder in KEPT_FOLDER_NAMES}


@dataclass(frozen=True)
class KeptCopy:
    """A file the project kept aside for an image: ``path``, its ``folder`` (``discarded``…), ``why``
    (plain words), ``when`` it was kept (seconds since the epoch: the time in its name, else - an undone
    state's name has none - the file's modification time) and ``written`` (its modification time: when
    its map was written; a link keeps the autosave's). ``unsure``: maybe not this image's, ``why`` saying why -
    its name fits another image of the project too; its removed/ record names another picture of this image's
    file, a file no image has now, or the same picture in another file still there or of another image, or this
    image was in the project before (``_judged``); it was kept before another image of its key was removed
    (``_earlier_holder``); or a class edit kept it as no image's (``_class_edit_leftovers``). Never said in the
    banner; listed, preselected only where no copy is sure."""

    path: Path
    folder: str
    why: str
    when: float
    written: float
    unsure: bool = False

    def describe(self) -> str:
        """``2026-12-07 21:03  edits undone back to the saved annotation (discarded/)``."""
        return f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(self.when))}  {self.why} ({self.folder}/)"


def kept_copies(root, key: str, stem: str | None = None, others=(), image_path=None,
                folders=KEPT_FOLDER_NAMES, file_owner=None, since: float | None = None) -> list[KeptCopy]:
    """The files the project at ``root`` kept aside (``folders``: those of ``KEPT_NAMES``) for the image
    of ``key`` (and file stem ``stem``: ``Project.kept_copies``), newest first. A name counts as the
    image's only where ``KEPT_NAMES`` says its writer names it so (by the key; by the stem only a class
    change's leftover in conflicts/): every way a name splits into ``<head>.<rest>`` is tried, so a key
    ``a`` never lists ``a.b``'s, nor - ``others``, the project's other images as (key, stem, name), or
    a callable (by: "key"|"stem", head) -> the names of the other images of that key or stem - a
    name that is another image's too (a key ``a.20260101-000000``'s undone state; a stem two images
    share): such a copy is listed ``unsure``, its ``why`` naming the others. A file of removed/ with its
    record (``<name>.json``: the image file's path, and where the project had noted it the file's size
    and SHA-256) is judged by that record, whatever its name's key (``_judged``): the file ``image_path``
    (``file_owner``: recorded path -> the key of the project's image of that file, or None) - this image's,
    unless the record notes another picture (then ``unsure``); the same picture as ``image_path``'s
    elsewhere (the image moved, renamed or copied since: bring-back matches the same path only, so Kept
    copy… is its only way back) - this image's, unless that file is still there with that picture (another
    current image's or none's), or this image was in the project before the removal (``since``: when it was added, or the oldest of
    its own files, ``Project._in_project_since``) - a duplicate file of one picture: ``unsure``; another current image's file - skipped; a file no image has now - ``unsure``,
    "removed from" it, where its name is this image's. Only plain files (never a link, nor hidden: a
    writer's private ``.…writing.qgt``), never through a folder that is a link (a project unpacked from
    elsewhere: nothing out of the project is listed). One scan of each folder while it is unchanged
    (``_listed``); a folder that cannot be read lists nothing. Reads the image file once while it is
    unchanged where a record notes a file of its size (``_note_of``): job threads only."""
    if not key:
        return []
    # each cut as kept names are (``_cut``), and whole: as versions before that cut named them (a longer one)
    mine = {("key", _cut(key)), ("key", key)}
    if stem:
        mine |= {("stem", _cut(stem)), ("stem", stem)}
    owners_of = others if callable(others) else _owners_index(others, key)
    heads = sorted({head for _by, head in mine})
    picture = _Picture(image_path, since)
    holder = _Lazy(lambda: _earlier_holder(Path(root) / "removed", picture, file_owner, key))
    found: list[KeptCopy] = []
    for folder in folders:
        rules = _RULES.get(folder, [])
        listed: set[str] = set()
        for path in _plain_entries(Path(root) / folder, heads):
            name = path.name
            whys, time_text, theirs = _name_whys(name, rules, mine, owners_of)
            if not whys:
                continue
            try:
                written = os.lstat(path).st_mtime
            except OSError:
                continue
            try:
                judged = _whose(path, folder, written, picture, file_owner, key, holder, image_path)
            except Exception as exc:  # noqa: BLE001 - a failure to tell whose it is never hides a copy
                judged = [_untold(exc)], "", False
            if judged is None:
                continue  # its record names another current image's file: that image's
            doubts, extra, by_record = judged
            listed.add(name)
            if by_record:
                theirs = []  # the record says whose it is, not the name
            if theirs:
                named = ", ".join(dict.fromkeys(theirs))
                doubts.append(f"its name fits {named} too: open it there, or check it before using it")
            why = ", or ".join(whys) + extra
            if doubts:
                why = f"maybe not this image's ({'; '.join(doubts)}): {why}"
            found.append(KeptCopy(path, folder, why, _name_time(time_text) or written, written, bool(doubts)))
        if folder == "removed":
            found.extend(_class_edit_leftovers(Path(root) / folder, key))
        if folder == "removed" and image_path is not None:
            try:
                found.extend(_recorded_for(Path(root) / folder, picture, listed, rules, file_owner, key))
            except Exception:  # noqa: BLE001 - the records unreadable: only the copies found by name (above)
                pass
    return newest_first(found)


def _whose(path: Path, folder: str, written: float, picture: _Picture, file_owner, key: str, holder,
           image_path) -> tuple[list[str], str, bool] | None:
    """(the doubts, what its why adds, whether a removed/ record said it) of the kept file ``path`` (``folder``'s, its map ``written`` then) found by
    ``picture``'s image's names; None: another current image's (its removed/ record names that image's file).
    ``holder``: ``_earlier_holder``'s answer, asked once. Any error out of here is ``kept_copies``' to list the
    copy "maybe" (``_untold``): the judgement never hides a copy."""
    doubt, extra = None, ""
    record = _removed_record(path) if folder == "removed" else None
    if record is not None:
        verdict = _judged(record, picture, file_owner, key)
        if verdict is None:
            return None
        doubt, extra = verdict
    doubts = [doubt] if doubt else []
    if folder != "removed" and image_path is not None and holder() is not None and written <= holder()[0]:
        doubts.append(_kept_before_text(holder(), image_path))
    return doubts, extra, record is not None


def _kept_before_text(holder: tuple, image_path) -> str:
    """The doubt of a copy kept before ``holder`` (when, the file), the latest removal of another image of the key:
    that file may be this very image's (``image_path``), when it held another picture."""
    removed_from = holder[1]
    if removed_from == _resolved(image_path):
        return ("kept before an image of this file was removed, when this image's file held another picture: check it "
                "before using it")
    return (f"kept before {removed_from}, the image of its key then, was removed: open that image to use it, or "
            "check it before using it")


def _untold(exc: BaseException) -> str:
    """The doubt of a copy whose owner could not be told (an error reading its record, the image file, a folder)."""
    return f"whose it is could not be told ({exc.__class__.__name__}: {exc}): check it before using it"


#: what a class edit names a file of its old generation's folders it found no image for, kept in removed/
#: (``project_generations._keep_leftovers``: ``<folder without its dot>-<key>.<time>.qgt``, cut as ``kept_path`` cuts)
_LEFTOVER = re.compile(rf"(?P<stem>(?P<kind>(?P<folder>annotations|autosave)(?:\.g\d+)?)-.+)\.{_TIME}\.qgt")


def _class_edit_leftovers(folder: Path, key: str) -> list[KeptCopy]:
    """The files of removed/ ``folder`` a class edit kept there as no image's (``_LEFTOVER``) that name the
    key ``key``: ``unsure`` - no image had the key then (a removal killed, project.json edited by hand), and
    they hold the classes before that edit (a load says so where they differ)."""
    names = _listed(folder)
    found = []
    for prefix in ("annotations", "autosave"):
        at = bisect.bisect_left(names, prefix)
        while at < len(names) and names[at].startswith(prefix):
            name, at = names[at], at + 1
            match = _LEFTOVER.fullmatch(name)
            if match is None or match["stem"] not in (f"{match['kind']}-{key}", _cut(f"{match['kind']}-{key}")):
                continue
            try:
                now = os.lstat(folder / name)
            except OSError:
                continue
            if not stat.S_ISREG(now.st_mode):
                continue
            what = "a saved annotation" if match["folder"] == "annotations" else "unsaved edits"
            why = (f"maybe not this image's (a class edit found no image of its key then: check it before using "
                   f"it): {what} a class edit did not carry (in the classes before it)")
            found.append(KeptCopy(folder / name, "removed", why, _name_time(match["time"]) or now.st_mtime,
                                  now.st_mtime, True))
    return found


def _earlier_holder(folder: Path, picture: _Picture, file_owner, key: str) -> tuple[float, str] | None:
    """(when, the file) of the latest removal from the project of another image of ``key`` (removed/
    ``folder``'s records of the key that ``_judged`` says are not ``picture``'s): a copy named by the key and
    kept before it is that image's - the key was given to ``picture``'s image after. None: none."""
    by_name, _by_file, _by_note, by_key = _records_index(folder)
    latest = None
    for removed, name in by_key.get(key, ()):
        # another image's: its record names another current image's file, or notes another picture (a record
        # without a note, or an image file that cannot be read, proves nothing: fb6a229's rule, its own)
        theirs = _judged(by_name[name], picture, file_owner, key) is None or picture.same(by_name[name][1]) is False
        if theirs and (latest is None or removed > latest[0]):
            latest = (removed, by_name[name][0])
    return latest


def _owners_index(others, key: str):
    """``others`` as (key, stem, name) triples -> ``kept_copies``' callable (by, head) -> the other images' names
    (each head cut, and whole)."""
    owners: dict[tuple[str, str], list[str]] = {}
    for other_key, other_stem, name in others:
        if other_key and other_key != key:
            for by, head in (("key", other_key), ("stem", other_stem)):
                for form in dict.fromkeys((_cut(head), head) if head else ()):
                    owners.setdefault((by, form), []).append(name)
    return lambda by, head: owners.get((by, head), ())


def _name_whys(name: str, rules, mine=None, owners_of=None) -> tuple[list[str], str | None, list[str]]:
    """(why kept, the time in the name or None, the other images it fits too) of the kept file ``name`` under
    ``rules`` (a folder's ``KEPT_NAMES``), tried at every split ``<head>.<rest>``; with ``mine`` (the image's
    (by, head) pairs) only its heads give whys and times, ``owners_of`` naming the others; without, every head
    does, and the third is the heads (``_recorded_for``: whose key the name is)."""
    whys, time_text, theirs = [], None, []
    at = name.find(".")
    while at > 0:
        head, rest = name[:at], name[at + 1:]
        for rule, by, why in rules:
            match = rule.fullmatch(rest)
            if match is None:
                continue
            if mine is None or (by, head) in mine:
                if why not in whys:
                    whys.append(why)
                time_text = time_text or match.groupdict().get("time")
            if mine is None:
                theirs.append(head)
            elif owners_of is not None:
                theirs.extend(owners_of(by, head))
        at = name.find(".", at + 1)
    return whys, time_text, theirs


class _Picture:
    """The image file a listing is for, as removed/ records name it: ``resolved`` (``_resolved``), and
    ``same(noted)``: whether its content is the (bytes, sha256) a record noted - read only where the size
    is the same, once while the file is unchanged (``_note_of``)."""

    def __init__(self, image_path, since: float | None = None):
        self.path = image_path
        self.resolved = _resolved(image_path)
        self.since = since  # the image in the project since at least then (when added, else its oldest own file), None: unknown

    def size(self) -> int | None:
        try:
            return None if self.path is None else os.stat(self.path).st_size
        except (OSError, ValueError):
            return None

    def note(self) -> tuple | None:
        return None if self.path is None else _note_of(self.path)

    def same(self, noted: tuple | None) -> bool | None:
        """True/False; None where either side is unknown (no note in the record, the file unreadable)."""
        size = None if noted is None else self.size()
        if size is None:
            return None
        if size != noted[0]:
            return False
        note = self.note()
        return None if note is None else note == noted


def _judged(record: tuple, picture: _Picture, file_owner, key: str, kept_as: str | None = None):
    """Whose the removed/ file whose ``record`` is (recorded path, noted (bytes, sha256) or None) is, for the
    image ``picture`` of ``key``: None - not this image's (another current image's file, or a file no image
    has under another key's name); else (doubt or None, what its why adds). ``kept_as``: the keys its name is
    of, where it is not this image's name (``_recorded_for``). See ``kept_copies``."""
    recorded, noted, removed = record
    owner = _Lazy(lambda: file_owner(recorded) if file_owner is not None else None)
    same = picture.same(noted)
    if recorded == picture.resolved or owner() == key:
        if same is False:
            reason = (f"removed from this image's file when it held another picture ({noted[0]:,} bytes, "
                      "another SHA-256 than its own now)")
        elif same or kept_as is None:
            return None, ""
        else:
            reason = f"an image of this file before, removed from {recorded}"
        kept = "" if kept_as is None else f"kept as {kept_as}'s, "
        return f"{kept}{reason}: check it before using it", ""
    if same:  # the same picture in another file: this image's file moved, renamed or copied since - or a duplicate
        if _note_of(recorded) == noted:  # the file still there with that picture: another file of one picture
            shown = ", which the project shows too" if owner() is not None else ", still there"
            return f"removed from {recorded}, the same picture as this image's{shown}: check it before using it", ""
        if picture.since is not None and picture.since < removed:
            return (f"removed from {recorded}, the same picture as this image's, which was in the project then "
                    "too: check it before using it"), ""
        return None, f" (removed from {recorded}: the same picture, moved, renamed or copied since)"
    if owner() is not None or kept_as is not None:
        return None
    other = ", another picture than this image's" if same is False else ""
    return f"removed from {recorded}, not this image's file{other}: check it before using it", ""


class _Lazy:
    """A value computed once, when first asked."""

    def __init__(self, make):
        self.make, self.done, self.value = make, False, None

    def __call__(self):
        if not self.done:
            self.value, self.done = self.make(), True
        return self.value


def _recorded_for(folder: Path, picture: _Picture, listed: set[str], rules, file_owner, key: str) -> list[KeptCopy]:
    """The files of removed/ ``folder`` whose record names ``picture``'s file, or notes its picture, though
    their name is another key's (not in ``listed``: those ``kept_copies`` found by this image's names) - an
    image of this file removed under another key, or this picture's file moved or renamed since and added
    again under another key - judged by ``_judged``; else no image would offer them."""
    by_name, by_file, by_note, _by_key = _records_index(folder)
    names = list(by_file.get(picture.resolved, ()))
    if by_note and picture.size() in {size for size, _sha in by_note}:
        names += by_note.get(picture.note(), ())
    found = []
    for name in dict.fromkeys(names):
        if name in listed:
            continue
        whys, time_text, heads = _name_whys(name, rules)
        if not whys:
            continue
        try:
            verdict = _judged(by_name[name], picture, file_owner, key, ", ".join(dict.fromkeys(heads)))
        except Exception as exc:  # noqa: BLE001 - a failure to tell whose it is never hides a copy
            verdict = _untold(exc), ""
        if verdict is None:
            continue
        path = folder / name
        try:
            now = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(now.st_mode):
            continue
        (doubt, extra) = verdict
        why = ", or ".join(whys) + extra
        if doubt:
            why = f"maybe not this image's ({doubt}): {why}"
        found.append(KeptCopy(path, "removed", why, _name_time(time_text) or now.st_mtime, now.st_mtime, bool(doubt)))
    return found


def _resolved(image_path) -> str:
    """An image file's path as removed/ records spell it (``project_removed.path_key``); "" for none.
    One spelling on both sides: ``Path.resolve`` gave up on a file that is a loop of links inside a
    linked folder (the unresolved path) where the record resolved the folder, so its copy was listed
    under another image."""
    from .project_removed import path_key

    if image_path is None:
        return ""
    try:
        return path_key(image_path)
    except (OSError, ValueError):  # (a NUL in the name)
        return str(image_path)


def _removed_record(path: Path) -> tuple | None:
    """(the image file, its noted (bytes, sha256) or None) a removed/ file's record (``qgn.project_removed``)
    names; None when it has none that can be read."""
    from .project_removed import _read_record, record_path

    record = record_path(path)
    if os.path.islink(record) or not os.path.isfile(record):
        return None
    doc = _read_record(record)
    return None if doc is None else _recorded(doc)


def _recorded(doc: dict) -> tuple:
    """(path, (bytes, sha256) or None, when removed) of a removed/ record read by ``project_removed._read_record``."""
    noted = doc.get("file")
    if (isinstance(noted, dict) and type(noted.get("bytes")) is int and isinstance(noted.get("sha256"), str)):
        return doc["path"], (noted["bytes"], noted["sha256"]), doc["removed"]
    return doc["path"], None, doc["removed"]


#: image file → ((device, inode, size, mtime_ns, ctime_ns), (bytes, sha256) or None): a file read once while unchanged
_NOTES: dict[str, tuple[tuple, tuple | None]] = {}


def _note_of(path) -> tuple | None:
    """``project_removed.file_note`` of the file ``path`` (bytes, sha256), None when it cannot be read; read
    again only when the file changed (the app lists an image's kept copies after every autosave)."""
    from .project_removed import file_note

    try:
        now = os.stat(path)
    except (OSError, ValueError):
        return None
    mark = (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns)
    key = os.fspath(path)
    with _LISTED_LOCK:
        known = _NOTES.get(key)
    if known is not None and known[0] == mark:
        return known[1]
    note = file_note(Path(path))
    with _LISTED_LOCK:
        if len(_NOTES) > 256:
            _NOTES.clear()
        _NOTES[key] = (mark, note)
    return note


def check_kept_copy(path) -> Path:
    """``path`` (a ``KeptCopy``'s, listed earlier) as it is now, to be read: ValueError (``OutsideRootError``
    where it leads out of its project) when it or its kept folder has become a symbolic link since the
    listing, or its folder no longer stands inside its project (``path_inside``, not following the file's
    own name) - a kept copy is read only as a file of the project, as ``kept_copies`` lists them."""
    path = Path(path)
    folder, root = path.parent, path.parent.parent
    for link in (path, folder):
        if os.path.islink(link):
            raise OutsideRootError(f"{link} is a symbolic link now: a kept copy is read only as a file of the "
                                   "project, never through a link. Nothing was read")
    return path_inside(root, folder.name, path.name, follow=False)


#: whether this system opens a name relative to a folder's descriptor (``os.open(dir_fd=)``: not Windows)
_DIR_FDS = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY") and hasattr(os, "O_NOFOLLOW")


def open_kept_copy(path):
    """``path`` (a ``KeptCopy``'s, listed earlier) opened to be read (a binary file object), as it is now: its
    kept folder opened as a folder of its project (``O_DIRECTORY | O_NOFOLLOW``, relative to the project's
    folder: ``_open_kept_folder``), then the file in that very folder (``O_NOFOLLOW``, ``dir_fd=``) - what was checked is what is
    read: a folder swapped for a link between a check and a read is never read through. OutsideRootError
    (a ValueError) where the folder or the file is a symbolic link now, or the folder is not one of
    ``KEPT_FOLDER_NAMES``; NotAFileError for a pipe or a device; OSError as ``os.open``. Where the system
    has no ``dir_fd`` (Windows): ``check_kept_copy``, then the open - the race left open there."""
    from .fileio import mode_kind, not_a_file_error, open_regular

    path = Path(path)
    folder, root = path.parent, path.parent.parent
    if folder.name not in KEPT_FOLDER_NAMES or path.name in ("", ".", ".."):
        raise OutsideRootError(f"{path} is not a file of a project's kept folders ({', '.join(KEPT_FOLDER_NAMES)}): "
                               "nothing was read")
    if not _DIR_FDS:
        return open_regular(check_kept_copy(path))
    inside = _open_kept_folder(root, folder)
    try:
        fd = _open_at(path.name, _BINARY | getattr(os, "O_NONBLOCK", 0), inside, path)
    finally:
        os.close(inside)
    try:
        kind = mode_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise not_a_file_error(path, kind)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


#: how the project's own folder is opened to look names up in it: ``O_PATH`` (Linux) needs no permission to read
#: it - a project folder of mode 0711 (search only) is a project all the same; elsewhere read-only
_LOOK_UP = getattr(os, "O_PATH", os.O_RDONLY)


def _open_kept_folder(root: Path, folder: Path) -> int:
    """The kept ``folder`` (``root``'s) opened as a folder of the project, never through a symbolic link at its own
    name (``_open_at``): relative to ``root`` opened (``_LOOK_UP``; ``root`` itself may be reached through a link,
    as a user may open a project). Where ``root`` cannot be opened so (no ``O_PATH``, and a folder that may be
    searched but not read: EACCES), ``folder`` by its whole path - ``O_NOFOLLOW`` refuses it as a link all the same."""
    try:
        top = os.open(root, _LOOK_UP | os.O_DIRECTORY)
    except PermissionError:
        return _open_at(os.fspath(folder), os.O_DIRECTORY, None, folder)
    try:
        return _open_at(folder.name, os.O_DIRECTORY, top, folder)
    finally:
        os.close(top)


def _open_at(name: str, flags: int, dir_fd: int | None, shown: Path) -> int:
    """``name`` in the folder open as ``dir_fd`` (None: ``name`` is a path), read-only, never through a symbolic
    link at ``name`` (OutsideRootError naming ``shown``)."""
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | flags, dir_fd=dir_fd)
    except OSError as exc:
        try:
            link = stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
        except OSError:
            link = False
        if link or exc.errno == errno.ELOOP:
            raise OutsideRootError(f"{shown} is a symbolic link now: a kept copy is read only as a file of the "
                                   "project, never through a link. Nothing was read") from None
        raise type(exc)(exc.errno, exc.strerror, os.fspath(shown)) from None  # the whole path, not the name


def read_kept_copy(path, classes, shape: tuple[int, int]):
    """The label map (H, W) of ``label_dtype(classes)`` of the kept copy ``path`` (``open_kept_copy``: never
    through a link, whenever one appears), read by the import's capped, checked .qgt reader: ValueError when
    it is not a .qgt of ``classes``, or its size is not ``shape`` (H, W), the image's."""
    from .formats.qgt import read_qgt_file

    with open_kept_copy(path) as file:
        label = read_qgt_file(Path(path), classes, file=file)
    if tuple(label.shape) != tuple(shape):
        raise ValueError(f"{path}: the mask is {label.shape[1]}×{label.shape[0]} but the image is "
                         f"{shape[1]}×{shape[0]}")
    return label


def newest_first(copies) -> list[KeptCopy]:
    """``copies`` in ``kept_copies``' order: newest kept first (then newest written, then by name)."""
    return sorted(copies, key=lambda copy: (copy.when, copy.written, copy.path.name), reverse=True)


#: folder → ((device, inode, mtime_ns) when listed, its names sorted, when listed): each kept folder is
#: scanned once while unchanged - 20,000 images' files in each of the four took 200 ms a key to scan every time
_LISTED: dict[str, tuple[tuple, list[str], float]] = {}
_LISTED_LOCK = threading.Lock()
#: a scan made this soon after its folder's last change is not trusted: a file added in the same tick of a
#: coarse clock (FAT's 2 s) leaves the folder's time as it was
_FRESH_SECONDS = 3.0


def _plain_entries(folder: Path, stems: list[str]) -> list[os.DirEntry | Path]:
    """The plain files (not links, not hidden) of ``folder`` named ``<one of stems>.….qgt``; none when
    ``folder`` is a link (a link out of the project in its place: never followed), not a folder, or
    cannot be read. The names come from ``_listed`` (one scan while the folder is unchanged); each
    match is checked on disk as it is now."""
    names = _listed(folder)
    found = []
    for stem in stems:
        head = stem + "."
        at = bisect.bisect_left(names, head)
        while at < len(names) and names[at].startswith(head):
            path = folder / names[at]
            at += 1
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                continue
    return list(dict.fromkeys(found))


def _listed(folder: Path) -> list[str]:
    """The sorted names of ``.qgt`` files (not hidden) in ``folder``: scanned again only when it changed."""
    try:
        if os.path.islink(folder):
            return []
        now = os.stat(folder)
    except OSError:
        return []
    mark = (now.st_dev, now.st_ino, now.st_mtime_ns)
    key = os.fspath(folder)
    with _LISTED_LOCK:
        listed = _LISTED.get(key)
    if listed is not None and listed[0] == mark and listed[2] - now.st_mtime > _FRESH_SECONDS:
        return listed[1]  # unchanged since a scan made well after its last change
    listed_at = time.time()
    try:
        with os.scandir(folder) as entries:
            names = sorted(entry.name for entry in entries if entry.name.endswith(".qgt") and not entry.name.startswith("."))
    except OSError:
        return []
    with _LISTED_LOCK:
        if len(_LISTED) > 64:
            _LISTED.clear()
        _LISTED[key] = (mark, names, listed_at)
    return names


#: removed/ folder → ((device, inode, mtime_ns), ``_records_index``'s three, when read): each record read once while
#: the folder is unchanged (a record is written by a rename, which changes the folder) - 20,000 of them take a
#: second to read
_RECORDS: dict[str, tuple[tuple, tuple, float]] = {}


def _records_index(folder: Path) -> tuple[dict, dict, dict, dict]:
    """({kept name: (the image file its record names, resolved; its noted (bytes, sha256) or None)},
    {image file: [kept names]}, {(bytes, sha256): [kept names]}, {key: [(when removed, kept name)]}) of the
    records of removed/ ``folder``
    whose kept ``.qgt`` file is there: only plain files, never through a link; read again only when the
    folder changed (as ``_listed``). Reads every record: job threads only."""
    from .project_removed import RECORD_SUFFIX, REMOVAL_KIND, _read_record

    nothing: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})
    try:
        if os.path.islink(folder):
            return nothing
        now = os.stat(folder)
    except OSError:
        return nothing
    mark = (now.st_dev, now.st_ino, now.st_mtime_ns)
    key = os.fspath(folder)
    with _LISTED_LOCK:
        read = _RECORDS.get(key)
    if read is not None and read[0] == mark and read[2] - now.st_mtime > _FRESH_SECONDS:
        return read[1]
    read_at = time.time()
    names = set(_listed(folder))
    try:
        with os.scandir(folder) as entries:
            records = [entry.name for entry in entries if (_REMOVAL.fullmatch(entry.name) or (
                entry.name.endswith(".qgt" + RECORD_SUFFIX) and entry.name[:-len(RECORD_SUFFIX)] in names))
                and entry.is_file(follow_symlinks=False)]
    except OSError:
        return nothing
    by_name, by_file, by_note, by_key = nothing
    for record in sorted(records):
        doc = _read_record(folder / record)
        if doc is not None and _REMOVAL.fullmatch(record):  # a removal that moved no file: it dates the key only
            if doc.get("kind") == REMOVAL_KIND and isinstance(doc.get("key"), str):
                by_name[record] = _recorded(doc)
                by_key.setdefault(doc["key"], []).append((doc["removed"], record))
        elif doc is not None:
            name = record[:-len(RECORD_SUFFIX)]
            by_name[name] = recorded, noted, _removed = _recorded(doc)
            by_file.setdefault(recorded, []).append(name)
            if noted is not None:
                by_note.setdefault(noted, []).append(name)
            if isinstance(doc.get("key"), str):
                by_key.setdefault(doc["key"], []).append((doc["removed"], name))
    with _LISTED_LOCK:
        if len(_RECORDS) > 16:
            _RECORDS.clear()
        _RECORDS[key] = (mark, (by_name, by_file, by_note, by_key), read_at)
    return by_name, by_file, by_note, by_key


#: ``Project._write_removal``'s name: the record alone of a removal that moved no file
_REMOVAL = re.compile(rf".+\.removal\.{_TIME}\.json")


def _name_time(text: str | None) -> float | None:
    """A kept name's ``YYYYmmdd-HHMMSS`` (local time) in seconds since the epoch; None when absent or not a time."""
    if not text:
        return None
    try:
        return time.mktime(time.strptime(text, "%Y%m%d-%H%M%S"))
    except (ValueError, OverflowError):
        return None

