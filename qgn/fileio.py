"""Writing files so that a reader never sees a partial one; reading small text files whatever
size they claim."""
from __future__ import annotations

import contextvars
import errno
import os
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


def atomic_write_bytes(path: str | os.PathLike, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or an iterable of bytes written one after another, so that a big file
    need not be whole in memory) to ``path`` atomically: a temporary file in the same folder,
    flushed and fsynced, then renamed over ``path`` (readers never see a partial file)."""
    atomic_write_together([(path, data)])


def atomic_write_together(files: list[tuple[str | os.PathLike, bytes | Iterable[bytes]]]) -> None:
    """Write one file atomically, or several that belong together (a model's weights and its JSON)
    so that a crash leaves the old set or the new one but for a window of microseconds: each is
    written whole to a temporary beside it (flushed, fsynced), and only then are they renamed into
    place, in order, and their folders are fsynced, so that a saved file stays saved through a
    power cut (a rename is durable only once its folder is). A failure before the renames removes
    the temporaries and names the file; a rename that fails after others (an I/O error) puts the
    files those replaced back (kept under a second name until all are in place), so that no mixed
    set - new weights beside the old JSON - is left where hard links can be made. A crash (SIGKILL,
    a power cut) between two renames can still leave a mixed set (and the second names, removed
    as stale leftovers later): a reader that must know checks that the files match (a hash of
    one in the other: ``qgn.project_head.ProjectHead.save``)."""
    staged: list[tuple[str, Path]] = []
    kept: dict[Path, str | None] = {}  # path -> a second name of the file it held, or None: there was none
    renamed: list[Path] = []

    def keep_fresh(current: str) -> None:  # the temporaries staged so far are a live writer's, not a killed
        for tmp in [*(tmp for tmp, _ in staged), current]:  # one's: their mtime (``remove_stale_temporaries``)
            try:  # follows the set's progress (the one being written too: its last part may be in a buffer)
                os.utime(tmp)
            except OSError:
                pass

    try:
        for path, data in files:
            staged.append((_staged(Path(path), data, keep_fresh if staged else None), Path(path)))
        for _, path in staged:  # inside ``keeping_replaced``: the files replaced are kept
            set_aside_replaced(path)
        if len(staged) > 1:  # a rename that fails after others (an I/O error) puts theirs back: no mixed set
            kept = {path: _second_name(path) for _, path in staged}
        replaced = _REPLACED.get()
        for tmp, path in staged:
            st = os.lstat(tmp) if replaced is not None else None  # the file that goes there (``take_back``)
            os.replace(tmp, path)
            renamed.append(path)
            if replaced is not None:
                replaced.wrote(path, st)
        for folder in dict.fromkeys(path.parent for _, path in staged):
            sync_folder(folder)
    except BaseException as exc:
        if len(renamed) < len(staged):  # a set half in place: the renamed ones go back
            for path in renamed:
                _put_back(path, kept.get(path, ""))
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        _drop_second_names(kept)
        named = {tmp: path for tmp, path in staged}
        if isinstance(exc, OSError) and exc.filename in named and exc.errno is not None:  # a rename
            raise OSError(exc.errno, exc.strerror, str(named[exc.filename])) from exc
        raise
    _drop_second_names(kept)


def _second_name(path: Path) -> str | None:
    """A hard link to the file at ``path`` under a temporary's name in its folder (``.aside.<8
    random characters>.tmp``, ``is_temporary``: a killed writer's is removed as a leftover), so that it can be put back; None when there is no file
    there; "" when no link can be made (no hard links there): it cannot be put back."""
    if not os.path.lexists(path):
        return None
    for _ in range(3):
        # short, whatever the file's name: ``.<name>.aside...`` would pass the 255 bytes a name
        # may have for a name of 236 bytes or more, and nothing would be kept
        name = path.with_name(f"{SET_ASIDE}{os.urandom(6).hex()[:8]}.tmp")
        try:
            os.link(path, name, follow_symlinks=False)  # a link standing there is put back as the link
            return str(name)
        except FileExistsError:
            continue
        except OSError:
            return ""
    return ""


def _put_back(path: Path, second: str | None) -> None:
    """Best effort, after a failed set of renames: ``path`` as it was before them - its old file
    (``second``) renamed back, or removed where there was none; left as it is where its old file
    was not kept ("")."""
    try:
        if second:
            os.replace(second, path)
        elif second is None:
            os.unlink(path)
    except OSError:
        pass


def _drop_second_names(kept: dict) -> None:
    for second in kept.values():
        if second:
            try:
                os.unlink(second)
            except OSError:
                pass


class ReplacedFiles:
    """The files a block of writes replaced (``keeping_replaced``), so that the block can be taken
    back (``take_back``). Each earlier file is kept under a second name in its folder - a hard link
    named ``.aside.<random>.tmp`` (a temporary's name, short whatever the file's: a crash leaves only
    what ``remove_stale_temporaries`` clears), remembered here. Where no hard link can be made
    (exFAT, FAT32, some SMB shares) nothing is kept - a copy of every file replaced would make each
    re-export pay for an undo that rarely happens: there, as before the set-asides, taking the
    block back removes what it wrote and the earlier file is lost. ``written``: what the block put
    at each path (st_dev, st_ino), so that a file another writer put there since is left alone."""

    def __init__(self):
        self.kept: dict[Path, str | None] = {}  # path -> its earlier file's second name; None: none; "": not kept
        self.written: dict[Path, tuple[int, int]] = {}
        self._open: list[int] = []  # a descriptor of each file written: its inode number is not reused while kept

    @property
    def new(self) -> list[Path]:
        return [path for path, second in self.kept.items() if second is None]

    def set_aside(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if path not in self.kept:  # else the first write's: the file as it was before the block
            self.kept[path] = _second_name(path)

    def wrote(self, path: str | os.PathLike, st: os.stat_result) -> None:
        """The block put the file ``st`` (its ``lstat``) at ``path``."""
        self.written[Path(path)] = (st.st_dev, st.st_ino)
        try:  # held open until ``drop``: once another writer replaced it, no later file can take its number
            fd = os.open(path, getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return
        try:
            same = (os.fstat(fd).st_dev, os.fstat(fd).st_ino) == self.written[Path(path)]
        except OSError:
            same = False
        if same:
            self._open.append(fd)
        else:
            os.close(fd)

    def _still_written(self, path: Path) -> bool:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return self.written.get(path) == (st.st_dev, st.st_ino)

    def take_back(self, paths: Iterable[str | os.PathLike] = (), skip=lambda path: False) -> None:
        """Best effort: each path the block wrote (and ``paths``, less those ``skip(path)`` is true
        for), where the file it wrote still stands there, as it was before the block - its earlier
        file renamed straight over it (never a moment without either: a crash leaves the new file or
        the earlier one, never only a set-aside), or removed where there was none or it was not kept.
        A file another writer has put there since is left as it is. A path in ``paths`` that the
        block did not write through ``atomic_write_bytes`` or ``place_image`` is removed."""
        for path in dict.fromkeys([*map(Path, paths), *self.kept]):
            if skip(path):
                continue
            try:
                if path not in self.kept:
                    path.unlink(missing_ok=True)
                elif not self._still_written(path):
                    if self.kept[path] and path not in self.written and not os.path.lexists(path):
                        os.replace(self.kept[path], path)  # removed, and nothing written in its place
                    elif path in self.written:
                        self._hand_over(path)
                    continue  # else never replaced by the block, or another writer's file now
                elif self.kept[path]:
                    try:
                        os.replace(self.kept[path], path)
                    except FileNotFoundError:  # its writer was taken back since (``_hand_over``): none
                        if not os.path.lexists(self.kept[path]):
                            os.unlink(path)
                else:
                    os.unlink(path)
            except OSError:
                pass
        self.drop()

    def _hand_over(self, path: Path) -> None:
        """The file this block wrote at ``path`` was replaced by another writer, which keeps it
        under a second name to put back if it is taken back too: this block's file is taken back,
        so that second name gets what this block replaced (its own second name), or goes where there
        was nothing - the other writer, taken back, then puts back the file before this block, never
        this block's undone one. Nothing where no such second name is found (the other writer
        succeeded and dropped it, or kept nothing)."""
        mine = self.written[path]
        try:
            entries = list(os.scandir(path.parent))
        except OSError:
            return
        for entry in entries:
            if not (entry.name.startswith(SET_ASIDE) and entry.name.endswith(".tmp")):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != mine:
                continue
            second = self.kept.get(path)
            if second and not os.path.lexists(second):
                second = None  # its own earlier writer was taken back since and handed it nothing
            if second:
                os.replace(second, entry.path)
                self.kept[path] = ""
            elif second is None:
                os.unlink(entry.path)
            return

    def drop(self) -> None:
        for fd in self._open:
            try:
                os.close(fd)
            except OSError:
                pass
        self._open = []
        _drop_second_names(self.kept)
        self.kept = {path: None if second is None else "" for path, second in self.kept.items()}


_REPLACED: contextvars.ContextVar[ReplacedFiles | None] = contextvars.ContextVar("qgn_replaced_files", default=None)


@contextmanager
def keeping_replaced() -> Iterator[ReplacedFiles]:
    """While the block runs (in this thread), ``atomic_write_bytes`` (and ``set_aside_replaced``,
    for other writes) keep each file it replaces under a second name, in the ``ReplacedFiles``
    yielded: a caller that takes the block's writes back (an export's item that failed in another
    format) puts the earlier files back with it. The caller ends with ``take_back`` or ``drop``."""
    replaced = ReplacedFiles()
    token = _REPLACED.set(replaced)
    try:
        yield replaced
    finally:
        _REPLACED.reset(token)


def set_aside_replaced(path: str | os.PathLike) -> None:
    """Inside ``keeping_replaced``: keep the file at ``path``, about to be replaced or removed."""
    replaced = _REPLACED.get()
    if replaced is not None:
        replaced.set_aside(path)


def note_written(path: str | os.PathLike) -> None:
    """Inside ``keeping_replaced``: the block has put a file (or a link) at ``path`` (after
    ``set_aside_replaced``)."""
    replaced = _REPLACED.get()
    if replaced is not None:
        try:
            replaced.wrote(path, os.lstat(path))
        except OSError:
            pass


def unlink_quietly(path: str | os.PathLike) -> None:
    """Remove the file at ``path``; nothing when it cannot be (gone already, or its folder read-only)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def make_folder(folder: str | os.PathLike) -> Path:
    """``folder`` made (with its parents) when missing, and returned. Instead of ``mkdir``'s bare
    "File exists", it raises:

    - FileExistsError (EEXIST) naming the symbolic link to nothing that stands where ``folder`` or
      a parent belongs, marked as a folder wanted (``os_error_text`` then says "is a link to
      TARGET, which does not exist (make the folder it points to, or remove the link)",
      ``dangling_link_text``);
    - NotADirectoryError (ENOTDIR) naming the plain file (a sync tool's, a script's) that stands
      there, saying to move it away.

    - LinkLoopError (an OSError, and a ValueError) naming the loop of symbolic links that stands there.

    Other failures of ``mkdir`` (no permission, a full or read-only disk) pass through as they are."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        dangling = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
        if dangling is not None and resolved_or_none(dangling) is None:  # a loop: mkdir said "File exists"
            raise LinkLoopError(dangling_link_text(dangling)) from None
        if dangling is not None:  # named as what it is by os_error_text
            error = FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dangling))
            error.qgn_wanted = "folder"  # the advice: make the folder it points to
            raise error from None
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, "is a file where a folder belongs; move it away (nothing was "
                                 "written)", str(blocker)) from None
    return folder


def sync_folder(folder: str | os.PathLike) -> None:
    """fsync ``folder`` so that the renames and new names in it survive a power cut; a no-op where
    folders cannot be opened or synced (Windows, some network file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def same_bytes(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two files hold the same bytes (compared in chunks, sizes first); False when either
    cannot be read."""
    import filecmp

    try:
        return os.stat(a).st_size == os.stat(b).st_size and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


WRITE_SLICE = 16 << 20  # _staged writes one bytes object in parts of this size, ``progress`` between


def _slices(data: bytes | bytearray | memoryview) -> Iterable[memoryview]:
    """``data`` as views of at most ``WRITE_SLICE`` bytes (one, empty, for no bytes)."""
    view = memoryview(data).cast("B")
    return [view[i:i + WRITE_SLICE] for i in range(0, len(view), WRITE_SLICE)] or [view]


def _staged(path: Path, data: bytes | Iterable[bytes], progress=None) -> str:
    """``data`` in a new temporary file beside ``path`` (its name returned), flushed and fsynced,
    with ``path``'s permissions; every error names ``path``, never the temporary. ``progress(tmp)``
    before and after each part of ``data`` written (a bytes object in parts of ``WRITE_SLICE``: a
    big one on a slow disk may take minutes, and ``progress`` keeps a set's temporaries fresh)."""
    refuse_input(path)
    if path.is_dir():  # else the rename fails naming the temporary file, which the user never chose
        raise IsADirectoryError(errno.EISDIR, "is a folder; a file cannot be written in its place (move the folder "
                                "away or choose another name)", str(path))
    refuse_special_output(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file being written and its folder, not the temporary's name
        raise OSError(exc.errno, f"{exc.strerror}: no file can be created in the folder {path.parent}",
                      str(path)) from exc
    try:
        if progress is not None:
            progress(tmp)
        with os.fdopen(fd, "wb") as f:
            for part in _slices(data) if isinstance(data, (bytes, bytearray, memoryview)) else data:
                f.write(part)
                if progress is not None:
                    progress(tmp)
            f.flush()
            os.fsync(f.fileno())
        # the mode of the file replaced; a link's target is not read (an export's link to a file elsewhere)
        keep_mode = path.exists() and not path.is_symlink()
        os.chmod(tmp, (path.stat().st_mode & 0o7777) if keep_mode else 0o644)
        return tmp
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename in (None, tmp) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # say which file (disk full …), never tmp
        raise


class OutsideRootError(ValueError):
    """A file name that would place a file outside the folder it was meant for."""


class InputOverwriteError(ValueError):
    """A write that would replace one of the files a run reads (``protected_inputs``)."""


_PROTECTED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("qgn_protected_inputs", default=None)


def _file_key(path: str | os.PathLike, follow: bool = True) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


@contextmanager
def protected_inputs(paths: Iterable[str | os.PathLike], why: str) -> Iterator[None]:
    """While the block runs (in this thread), ``atomic_write_bytes`` and ``refuse_input`` refuse
    (InputOverwriteError) to replace any of ``paths`` - the same file by any name, a hard link
    too; a symbolic link standing where an output goes is replaced, not followed, so it is no
    input's. ``why`` says what the files are ("the project's images and annotations"). An export
    names its files from data (image names, keys), so which names it writes is not known before
    it runs: this is the check at the moment of writing."""
    keys = {}
    for path in paths:
        key = _file_key(path)
        if key is not None:
            keys.setdefault(key, Path(path))
    token = _PROTECTED.set({"keys": keys, "why": why})
    try:
        yield
    finally:
        _PROTECTED.reset(token)


def is_protected_input(path: str | os.PathLike) -> bool:
    """Whether ``path`` (that very file, not a link's target) is one of ``protected_inputs``."""
    protected = _PROTECTED.get()
    return bool(protected) and _file_key(path, follow=False) in protected["keys"]


def refuse_input(path: str | os.PathLike) -> None:
    """InputOverwriteError when writing ``path`` would replace a file of ``protected_inputs``."""
    protected = _PROTECTED.get()
    if not protected or not protected["keys"]:
        return
    key = _file_key(path, follow=False)
    if key is not None and key in protected["keys"]:
        same = protected["keys"][key]
        from .shown import path_text

        alias = "" if Path(same).absolute() == Path(path).absolute() else f"{path_text(same)}, "
        raise InputOverwriteError(f"refusing to write {path_text(path)}: it is {alias}one of {protected['why']}; "
                                  "export into another folder (inputs are never replaced)")


def write_problem(folder: str | os.PathLike) -> str | None:
    """Why nothing can be written into ``folder`` — "it is on a read-only medium" (a mount, a
    CD, a locked card) or "you have no permission to write there" — or None when it can be."""
    try:
        if os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 0):
            return "it is on a read-only medium"
    except (OSError, AttributeError):
        pass  # no statvfs (Windows), or no folder: the access check below answers
    if not os.access(folder, os.W_OK | os.X_OK):
        return "you have no permission to write there"
    return None


#: What to do about a failed write, by its errno (``os_error_text``); a refused permission's hint
#: fits a read too (the app and the CLI pass reads through it as well).
WRITE_FAULT_HINTS = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "your disk quota is used up: free some space",
    errno.EROFS: "the disk is read-only: choose a folder on another",
    errno.EACCES: "you lack the permission for it: check its owner and permissions, or choose another",
    errno.EPERM: "you lack the permission for it: check its owner and permissions, or choose another",
    errno.EIO: "the disk or its connection failed: check it, and keep your work on another disk",
}


def os_error_text(exc: OSError, hint: str | None = None) -> str:
    """``exc`` as a person reads it: "<file>: <reason> (<what to do>)" — the file it names, the
    system's reason and, for a failed write (a full disk, a read-only folder, an I/O error), what to
    do (``WRITE_FAULT_HINTS``; else ``hint``, if given) — instead of Python's "[Errno 28] No space
    left on device: '<file>'". The one home of that sentence (the ``qgn`` CLI's, the app's)."""
    if getattr(exc, "qgn_complete", False):  # our own text, which already says what to do
        return str(exc)
    filename = getattr(exc, "filename", None)
    if exc.errno in (errno.EEXIST, errno.ENOENT, errno.ELOOP) and filename and os.path.islink(filename) \
            and not os.path.exists(filename):
        # "File exists" (mkdir, an exclusive create) for a symbolic link whose target is missing,
        # which ls shows as there
        said = dangling_link_text(filename, getattr(exc, "qgn_wanted", None))
        if said is not None:
            return said
    if exc.errno in (errno.ENOENT, errno.ELOOP) and filename:
        # "Too many levels of symbolic links" for DIR/LOOP/sub named neither the link nor that it was one
        in_the_way = link_in_the_way(filename)
        if in_the_way is not None:
            from .shown import path_text

            return f"{path_text(filename)}: {in_the_way}"
    where = f"{filename}: " if filename else ""
    reason = exc.strerror or str(exc)
    hint = WRITE_FAULT_HINTS.get(exc.errno, hint)
    return f"{where}{reason}" + (f" ({hint})" if hint else "")


def straight_path(path: str | os.PathLike) -> Path:
    """``path`` absolute, its ``..`` taken as the system takes them: the part up to the last ``..``
    resolved, symbolic links followed (``link/..`` is the folder above the link's target, not the
    folder the link stands in: straightened on its text, ``link/../x`` named another folder, or
    none), the rest kept as written (a link there stays a link); without ``..``, only made
    absolute, ``.`` and doubled separators dropped."""
    absolute = Path(path).absolute()
    parts = absolute.parts
    if ".." not in parts:
        return Path(os.path.normpath(absolute))
    last = len(parts) - 1 - parts[::-1].index("..")
    head = Path(os.path.realpath(Path(*parts[:last + 1])))
    return Path(os.path.normpath(head.joinpath(*parts[last + 1:])))


def link_in_the_way(path: str | os.PathLike) -> str | None:
    """"the folder P on its path is a loop of symbolic links …" (or a link to something missing:
    ``dangling_link_text``) for the first folder above ``path`` that is a symbolic link leading
    nowhere; None when there is none (``path`` itself is not looked at)."""
    from .shown import path_text

    path = os.path.abspath(os.fspath(path))
    parts = path.split(os.sep)
    for end in range(2, len(parts)):
        above = os.sep.join(parts[:end]) or os.sep
        if os.path.islink(above) and not os.path.exists(above):
            said = dangling_link_text(above)
            if said is None:
                return None
            shown = path_text(above)
            rest = said[len(shown) + 2:] if said.startswith(shown + ": ") else said
            return f"the folder {shown} on its path {rest}"
    return None


def dangling_link_text(link: str | os.PathLike, wanted: str | None = None, advice: str | None = None) -> str | None:
    """``link``, a symbolic link to nothing, said as what it is: the target that is missing at the
    end of its chain of links (a link to a link … is named a chain), or a loop of links. ``wanted``:
    what was to be made there ("folder"), for the advice; ``advice``: the advice itself, in place of
    making it or removing the link (the user's data is there: "restore or mount …"). Names are shown
    as every message shows them (``qgn.shown.path_text``). None when ``link`` leads somewhere after all."""
    from .shown import path_text

    path, hops, seen = os.fspath(link), 0, set()
    while os.path.islink(path):
        if path in seen or hops >= 40:  # the system's own limit is 40
            return f"{path_text(link)}: is a loop of symbolic links, which leads nowhere (remove the link)"
        seen.add(path)
        path = os.path.join(os.path.dirname(path), os.readlink(path))  # a relative target: from the link's folder
        hops += 1
    if os.path.exists(path):
        return None
    lead = f"is a link to {path_text(path)}" if hops == 1 else \
        f"is a chain of {hops} links ending at {path_text(path)}"
    make = "make the folder it points to" if wanted == "folder" else "make what it points to"
    return f"{path_text(link)}: {lead}, which does not exist ({advice or f'{make}, or remove the link'})"


def missing_file_error(path: str | os.PathLike, prefix: str = "", what: str = "file") -> FileNotFoundError:
    """FileNotFoundError "<prefix><path>: no such <what>", or for a link to nothing or a loop of
    links, what it is (``dangling_link_text``: "… is a link to /old/place.png, which does not
    exist (make what it points to, or remove the link)"). That text holds its own fix: the error is
    marked ``qgn_complete`` so ``os_error_text`` adds no second one (every message has one fix)."""
    said = dangling_link_text(path) if os.path.islink(path) else None
    exc = FileNotFoundError(f"{prefix}{said or f'{path}: no such {what}'}")
    exc.qgn_complete = said is not None
    return exc


def no_input_error(path: str | os.PathLike) -> Exception:
    """The error for an input named on a command line that is neither a regular file nor a folder:
    what it is (a pipe or a device: ``not_a_file_error``; a link to nothing or a loop of links:
    ``dangling_link_text``), else "no such file or folder" (a loop was called that too)."""
    try:
        kind = special_kind(path)
    except OSError:  # a loop of links
        kind = None
    if kind is not None and kind != "a folder":
        return not_a_file_error(path, kind)
    return missing_file_error(path, what="file or folder")


def no_folder_error(path: str | os.PathLike, option: str) -> Exception:
    """The error for ``option``'s folder that is none: what is there instead (a file, a device, a
    loop of links, or one on its path: LOOP/sub), else "no such folder"."""
    try:
        kind = special_kind(path) or ("a file" if os.path.exists(path) else None)
    except OSError:  # a loop of links
        kind = None
    if kind is not None:
        return ValueError(f"{option} {path}: is {kind}, not a folder; name a folder")
    in_the_way = None if os.path.islink(path) else link_in_the_way(path)  # LOOP/sub: the loop above it
    if in_the_way is not None:
        exc = FileNotFoundError(f"{option} {path}: {in_the_way}")
        exc.qgn_complete = True  # (its own fix said)
        return exc
    return missing_file_error(path, f"{option} ", what="folder")


def file_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 (hex) of the file's bytes, read in 1 MiB blocks; None when it cannot be read. The one
    home of hashing a file's content (an import matching copies, a project noting its images)."""
    import hashlib

    sha = hashlib.sha256()
    try:
        with open_regular(path) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
    except (OSError, NotAFileError):  # a pipe or a device has no content to note
        return None
    return sha.hexdigest()


class LinkLoopError(OSError, ValueError):
    """A path that leads into a loop of symbolic links, said in one line (``resolved``, ``make_folder``).

    An OSError, as the ELOOP it stands for and the FileExistsError ``make_folder`` raised for it
    before: a caller that takes a failed write or read as an OSError (a best-effort write logged,
    an unreadable item skipped) takes it too. A ValueError as well, for the readers that report a
    bad input item as one. Its text is complete (``os_error_text`` says it as it is)."""

    qgn_complete = True


def resolved_or_none(path: str | os.PathLike) -> Path | None:
    """``Path(path).resolve()``, None where a loop of symbolic links stands in its way (RuntimeError
    up to Python 3.12, OSError after) or it cannot be looked up."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        return None


def resolved(path: str | os.PathLike) -> Path:
    """``Path(path).resolve()``; LinkLoopError (an OSError and a ValueError: one line, naming the link and the fix)
    where a loop of symbolic links stands in its way - ``Path.resolve`` raises RuntimeError for it,
    which ended commands as an 'unexpected' error."""
    found = resolved_or_none(path)
    if found is not None:
        return found
    from .shown import path_text

    said = dangling_link_text(path) if os.path.islink(path) else None
    raise LinkLoopError(said or link_in_the_way(path) or
                        f"{path_text(path)}: leads into a loop of symbolic links, which leads nowhere (remove the link)")


def path_inside(root: str | os.PathLike, *parts: str, follow: bool = True) -> Path:
    """``root / parts…``, refused (OutsideRootError) unless it resolves strictly inside ``root``.

    Every writer that builds a file name from data it did not choose itself (an image key from
    project.json, a stem from a file name) goes through this, so no name — ``../x``, an absolute
    path, a symbolic link pointing away — can make it write or delete a file elsewhere.
    ``follow=False``: a symbolic link standing at the path itself is judged where it stands (its
    folder resolved, and its name), not by its target - for writers that replace the link, never
    write through it (an export's files: a re-export into an earlier export made with
    ``images="link"`` replaces its links to the images)."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = resolved(root)
    if not follow and path.name not in ("", ".", ".."):
        target = resolved(path.parent) / path.name
    else:
        target = resolved(path)
    if target == base or base not in target.parents:
        from .shown import path_text

        raise OutsideRootError(
            f"refusing to write {path_text(path)}: the name {'/'.join(map(str, parts))!r} leads outside "
            f"{path_text(root)}"
        )
    return path


STALE_TEMP_SECONDS = 60.0
#: A set-aside (``SET_ASIDE``) is left this long before a clean-up takes it for a dead writer's: it is
#: the only copy of an earlier export's file while the export that replaced it is in the middle of an
#: item, which may last past ``STALE_TEMP_SECONDS`` (a stopped command, a sleeping laptop, a slow
#: share); one left by a killed writer only costs its bytes until then.
SET_ASIDE_STALE_SECONDS = 7 * 24 * 3600.0
#: The start of the name of the hard link to a replaced file that ``atomic_write_together`` keeps
#: until all its files are in place (``.aside.<8 random characters>.tmp``: a temporary's name).
SET_ASIDE = ".aside."
#: What ``_staged`` names its temporaries: ``.<name>.`` + mkstemp's 8 random characters + ``.tmp``.
TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
#: What ``place_image`` names the link it makes before renaming it over the image's path.
LINK_MARK = ".link."
#: The only symbolic links ``remove_stale_temporaries`` removes: ``place_image``'s
#: (``.<name>.link.<8 hex>.tmp``) and a set-aside of an earlier link (``.aside.<8 hex>.tmp``); a
#: user's own link named like a temporary (``.cache.20261207.tmp``) is never removed.
LINK_TEMPORARY = re.compile(r"\..+\.link\.[0-9a-f]{8}\.tmp|\.aside\.[0-9a-f]{8}\.tmp")


def is_temporary(name: str) -> bool:
    """Whether the file name ``name`` is one of our writers' temporaries (``_staged``): a user's own
    ``.notes.tmp`` is not, and is never removed as a leftover."""
    return TEMPORARY_NAME.fullmatch(name) is not None


def remove_stale_temporaries(folder: str | os.PathLike, older_than_s: float = STALE_TEMP_SECONDS,
                             depth: int = 0) -> int:
    """Delete the ``.<name>.<random>.tmp`` files (``is_temporary``) that writers killed mid-write (SIGKILL, power loss)
    left in ``folder`` (and its sub-folders down to ``depth`` levels; links not followed), once
    older than ``older_than_s``; the number removed. Commands call it on the folders they write
    into; a missing folder is fine."""
    import time

    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return 0
    removed, now = 0, time.time()
    if depth > 0:
        for sub in folder.iterdir():
            if sub.is_dir() and not sub.is_symlink():
                removed += remove_stale_temporaries(sub, older_than_s, depth - 1)
    for tmp in folder.glob(".*.tmp"):
        try:
            st = tmp.lstat()  # a link made under a temporary's name (``place_image``): the link's own times
            # a writer's set-aside (``_second_name``) is a hard link made now to an old file: its
            # mtime is the old file's; its ctime (the link's making, or the writer's crash) counts
            aside = SET_ASIDE in tmp.name
            changed = max(st.st_mtime, st.st_ctime) if aside else st.st_mtime
            if tmp.is_symlink():
                ours = LINK_TEMPORARY.fullmatch(tmp.name) is not None
            else:
                ours = is_temporary(tmp.name) and tmp.is_file()
            if ours and now - changed > (max(older_than_s, SET_ASIDE_STALE_SECONDS) if aside else older_than_s):
                tmp.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def one_file_name(name: str) -> str:
    """``name`` (a file name or path) as a case-insensitive, normalisation-insensitive disk (macOS,
    Windows) compares it: two names that differ only in case, or in how an accent is encoded ("é" as
    one character or as "e" and a combining accent), give one key."""
    import unicodedata

    return unicodedata.normalize("NFC", name).casefold()


def folder_locks_work() -> bool:
    """Whether ``lock_folder`` can lock here (not on Windows): where it cannot, its None proves nothing."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        return False
    return True


def _flock(fd: int, wait: bool) -> bool:
    """Take the exclusive advisory lock of ``fd`` (waiting for its holder where ``wait``): False where
    another process holds it (``wait`` False), OSError where it cannot be taken at all."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_folder(folder: str | os.PathLike, wait: bool = True) -> int | None:
    """An open descriptor of ``folder`` that holds an exclusive advisory lock on it until it is
    closed. The system drops the lock when the process ends, however it ends (SIGKILL too), so a
    folder of work in progress that no process holds is provably a dead process's. None when another
    process holds it (``wait`` False), or where there are no such locks (Windows; a file system that
    gives none, ``NO_LOCKS``, waiting or not): nothing is then provably free, and a caller that must
    tell that from another's hold asks ``folder_lock_problem``. OSError when the folder cannot be
    opened, or (``wait``) locked for another reason. The one home of the folder lock: a project's
    writers take it through ``folder_locked``."""
    if not folder_locks_work():  # pragma: no cover - Windows
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        taken = _flock(fd, wait)
    except OSError as exc:
        os.close(fd)
        if wait and exc.errno not in NO_LOCKS:
            raise
        return None
    if not taken:
        os.close(fd)
        return None
    return fd


#: What says a file system gives no working locks (NFSv3 without its lock manager: ENOLCK; some
#: FUSE, 9p or SMB mounts: not supported): ``folder_locked`` and the export lock go on without one there
NO_LOCKS = frozenset({errno.ENOLCK, getattr(errno, "EOPNOTSUPP", -1), getattr(errno, "ENOTSUP", -1), errno.ENOSYS})


@contextmanager
def folder_locked(folder: str | os.PathLike, timeout_s: float, busy, unlocked=None) -> Iterator[OSError | None]:
    """Hold ``lock_folder``'s lock on ``folder`` while the block runs (a project's writes: released by
    the system when the process dies), waiting at most ``timeout_s`` for another holder: then
    ``busy()``, an exception, is raised. Where there are no such locks (Windows) only the writers of
    this process are kept apart (``_process_lock``: one lock per folder, waited for as long). Where the
    folder's file system gives none (``NO_LOCKS``: NFSv3 without its lock manager) likewise, after
    ``unlocked(error)``, and the block gets that error (else None): refusing would leave no way to write
    there at all. OSError as ``lock_folder(wait=True)``."""
    if not folder_locks_work():  # pragma: no cover - Windows: one writer per process only
        with _process_lock(folder, None, timeout_s, busy):
            yield None
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline, no_lock = time.monotonic() + timeout_s, None
        while True:
            try:
                if _flock(fd, wait=False):
                    break
            except OSError as exc:
                if exc.errno not in NO_LOCKS:
                    raise
                no_lock = exc
                break
            if time.monotonic() > deadline:
                raise busy()
            time.sleep(0.02)
        if no_lock is None:
            yield None
            return
        if unlocked is not None:
            unlocked(no_lock)
        with _process_lock(folder, fd, max(0.0, deadline - time.monotonic()), busy):
            yield no_lock
    finally:
        os.close(fd)


_PROCESS_LOCKS: dict = {}  # (device, inode) of a folder → its ``_process_lock``
_PROCESS_LOCKS_GUARD = threading.Lock()


@contextmanager
def _process_lock(folder: str | os.PathLike, fd: int | None, timeout_s: float, busy) -> Iterator[None]:
    """``folder_locked`` where no folder lock can be taken: the writers of this process into ``folder``
    (the same folder however it is named: its device and inode, from ``fd`` where it is open) kept
    apart, each waiting at most ``timeout_s`` (then ``busy()``), as the folder lock does; reentrant in a
    thread, as before. Writers into other folders are not waited for."""
    try:
        st = os.fstat(fd) if fd is not None else os.stat(folder)
        key = (st.st_dev, st.st_ino)
    except OSError:
        key = os.path.realpath(folder)
    with _PROCESS_LOCKS_GUARD:
        lock = _PROCESS_LOCKS.setdefault(key, threading.RLock())
    if not lock.acquire(timeout=min(timeout_s, threading.TIMEOUT_MAX)):
        raise busy()
    try:
        yield
    finally:
        lock.release()


def folder_lock_problem(folder: str | os.PathLike) -> OSError | None:
    """The error that says ``folder``'s file system gives no locks (``NO_LOCKS``; tried without
    waiting, and let go at once), else None (a lock taken, another's held, or Windows). OSError
    where the folder cannot be opened."""
    if not folder_locks_work():  # pragma: no cover - Windows
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        _flock(fd, wait=False)
    except OSError as exc:
        if exc.errno in NO_LOCKS:
            return exc
        raise
    finally:
        os.close(fd)  # closing lets the lock go
    return None


MAX_LIST_FILE_BYTES = 1 << 20  # a class list or label map: a few lines; a bigger one is not one


def read_text_within(path: str | os.PathLike, what: str, limit: int = MAX_LIST_FILE_BYTES,
                     named: bool = False) -> str:
    """The UTF-8 text of ``path``, a small text file (``what``, e.g. "class list"), reading at most
    ``limit`` + 1 bytes whatever size the file has: a bigger file, one with NUL bytes (binary) or
    one that is not UTF-8 is a ValueError that names it, as is a named pipe or device
    (``open_regular``; ``named``: a path the user named directly, read from a pipe too, ``read_at_most``).
    OSError as ``open`` raises it."""
    data = read_at_most(path, limit + 1, named)
    if len(data) > limit:
        raise ValueError(f"{path} is over {limit / 2**20:g} MiB: too big for a {what} - is it the right file?")
    if b"\0" in data:
        raise ValueError(f"{path} is a binary file, not a {what} (text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: not a {what}") from None


def read_json(path: str | os.PathLike, what: str, limit: int):
    """The JSON document of ``path``, a ``what`` (e.g. "project head") of at most ``limit`` bytes,
    reading no more whatever size the file has: a bigger file, one that is not UTF-8 (an editor's
    byte-order mark is fine), not JSON, or nested too deeply for Python's parser is a ValueError
    that names it. OSError as ``open`` raises it. The one reader of qgn's own small JSON files."""
    import json

    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is over {limit / 2**20:g} MiB: too big for a {what}")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: not a {what}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a {what}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON ({exc}): not a {what}") from None


class NotAFileError(ValueError):
    """A path that names something other than a regular file (a named pipe, a device such as
    /dev/zero, a socket): reading it would wait for a writer for ever or never reach an end."""


def mode_kind(mode: int) -> str | None:
    """What a ``stat`` mode names when it is no regular file ("a named pipe (FIFO)" …), else None:
    ``special_kind`` for a stat result already at hand (an ``fstat`` of an open file, an ``lstat``)."""
    import stat

    if stat.S_ISREG(mode):
        return None
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` names, through links, when that is no regular file ("a folder", "a named pipe
    (FIFO)", "a character device" …), said as ``not_a_file_error`` says it; None for a regular file
    or nothing there. A link that cannot be followed is its OSError (a loop: ELOOP)."""
    try:
        return mode_kind(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def not_a_file_error(path: str | os.PathLike, kind: str) -> NotAFileError:
    from .shown import path_text

    path = path_text(path)  # escaped: a line break in a folder name would cut the message there
    if kind == "a folder":
        return NotAFileError(f"{path} is a folder, not a file; name a file in it")
    return NotAFileError(f"{path} is {kind}, not a file: reading it could wait for ever or never end; "
                         "name the file itself (or copy its content into one)")


#: The advice of ``refuse_special_output`` for an output whose name the user never chose (a run's
#: ``log.csv``, the anytime curve's CSV and PNG): the way out is their folder, not a file name.
FIXED_NAME_ADVICE = "remove it or choose another --out"


def refuse_special_output(path: str | os.PathLike, follow: bool = False,
                          advice: str = "choose a file name for the output") -> None:
    """NotAFileError naming ``path`` when it is itself (not through a link, which a write replaces)
    a pipe, a device or a socket: a write renames a new file over its name, which would replace
    /dev/null itself for a user allowed to (root) and a FIFO someone reads from. ``follow``: for a
    writer that opens the path itself (a log appended to, a library's save), which writes through
    a link: what the link leads to is checked (a FIFO there hangs the open until someone reads), and
    the link is said as one. ``advice``: the way out (``FIXED_NAME_ADVICE`` for a name the user
    never chose). The one home of refusing special outputs."""
    import stat

    try:
        mode = (os.stat if follow else os.lstat)(path).st_mode
    except (OSError, ValueError):
        return
    kind = None if stat.S_ISLNK(mode) else mode_kind(mode)
    if kind is not None and kind != "a folder":
        from .shown import path_text

        replace = "write into it (or wait for a reader for ever)" if follow else "replace it with a file"
        what = f"a link to {path_text(os.path.realpath(path))}, {kind}" if os.path.islink(path) else kind
        raise NotAFileError(f"{path_text(path)} is {what}, not a file: writing there would {replace}; {advice}")


def check_regular_file(path: str | os.PathLike) -> None:
    """NotAFileError naming ``path`` when it exists (through links) but is no regular file, checked
    without opening it; a missing path passes (its reader says so). For readers that cannot be
    handed an open file (a library opening the path itself)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    kind = mode_kind(mode)
    if kind is not None:
        raise not_a_file_error(path, kind)


def _open_without_waiting(path: str | os.PathLike) -> int:
    """A read-only descriptor of ``path``, opened without waiting where the system can (O_NONBLOCK: a
    named pipe with no writer would block ``open`` itself). A regular file under a conflicting lease
    (a Samba oplock, an NFS delegation) answers such an open with EAGAIN where a plain open waits
    for the lease's break, which that first try starts: it is tried again the same way, without
    waiting, for up to ``LEASE_WAIT_S`` (the kernel breaks a lease by force after 45 s by default) —
    never the plain way, which would wait for good if the path became a pipe meanwhile. OSError as
    ``os.open``."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    end, pause = time.monotonic() + LEASE_WAIT_S, 0.005
    while True:
        try:
            return os.open(path, flags)
        except BlockingIOError:
            try:  # (a device answering EAGAIN is not a leased file: said at once, not tried for a minute)
                regular = mode_kind(os.stat(path).st_mode) is None
            except (OSError, ValueError):
                regular = False
            if not regular:
                check_regular_file(path)  # says what it is (a pipe, a device)
            if not regular or time.monotonic() >= end:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.5)
        except OSError:
            check_regular_file(path)  # a socket cannot be opened at all: say what it is, not ENXIO
            raise


def open_regular(path: str | os.PathLike):
    """``open(path, "rb")`` of a regular file only: opened without waiting (``_open_without_waiting``),
    then refused (NotAFileError naming it) unless it is a regular file, so no reader waits on a pipe
    or reads /dev/zero for ever. OSError as ``open``."""
    fd = _open_without_waiting(path)
    try:
        kind = mode_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise not_a_file_error(path, kind)
        if hasattr(os, "O_NONBLOCK"):  # only where it was set: Windows' set_blocking refuses a file (gh-101881)
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


#: How long a named pipe that the user named (``--config <(…)``, ``/dev/stdin``) may keep its reader
#: waiting for each piece of its data, and for all of it, before the read is given up.
NAMED_PIPE_WAIT_S = 10.0
NAMED_PIPE_TOTAL_S = 60.0
#: How long a regular file under a conflicting lease is tried again (``_open_without_waiting``).
LEASE_WAIT_S = 60.0


def read_at_most(path: str | os.PathLike, size: int, named: bool = False) -> bytes:
    """At most ``size`` bytes of the regular file ``path`` (``open_regular``). ``named``: the user named
    ``path`` directly (a command-line option), so a named pipe is read too (``--config <(printf …)``,
    ``--config /dev/stdin``), waiting at most ``NAMED_PIPE_WAIT_S`` for each piece of its data: a
    NotAFileError names it when none comes. A pipe found inside a folder is always refused."""
    import stat

    if not named or not hasattr(os, "O_NONBLOCK"):
        with open_regular(path) as f:
            return f.read(size)
    fd = _open_without_waiting(path)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode):
            return _read_pipe(fd, path, size, NAMED_PIPE_WAIT_S, NAMED_PIPE_TOTAL_S)
        kind = mode_kind(mode)
        if kind is not None:
            raise not_a_file_error(path, kind)
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(size)
    finally:
        os.close(fd)


def _read_pipe(fd: int, path: str | os.PathLike, size: int, wait_s: float, total_s: float) -> bytes:
    """At most ``size`` bytes of the named pipe open (without blocking) as ``fd``, up to its end,
    waiting at most ``wait_s`` for each piece of data and ``total_s`` for all of it (NotAFileError,
    saying which, when that is up)."""
    import selectors

    chunks: list[bytes] = []
    got = 0
    end = time.monotonic() + total_s
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while got < size:
            left = end - time.monotonic()
            if left <= 0 or not selector.select(min(wait_s, left)):
                limits = f"{wait_s:g} s without data, {total_s:g} s in all"
                from .shown import path_text

                if got:
                    raise NotAFileError(f"{path_text(path)} is a named pipe (FIFO) whose writer sent {got} bytes and "
                                        f"did not finish in time ({limits}); let it finish, or name a file")
                raise NotAFileError(f"{path_text(path)} is a named pipe (FIFO) and nothing came through it in time "
                                    f"({limits}); start what writes into it, or name a file")
            try:
                data = os.read(fd, min(size - got, 1 << 16))
            except BlockingIOError:
                continue
            if not data:  # its writers are done
                break
            chunks.append(data)
            got += len(data)
    return b"".join(chunks)
