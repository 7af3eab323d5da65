"""The staging folders of ``qgn serve``: a fine-tuned version is saved into a hidden folder in
``train_out`` and moved beside the others (``StagedVersions.save_version``), an image is fetched into
one in the system's temporary folder; each is held (``holding``) while in use, so one no process
holds is a killed server's and is removed (``remove_stale_staging``), a version it left half moved
finished first (``finish_staged``)."""
from __future__ import annotations

import glob
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


STAGING_PREFIX = ".qgn-serve-"  # a version is saved into such a folder in train_out, then moved beside the others
FETCH_PREFIX = "qgn-serve-"  # an image is fetched into such a folder in the system's temporary folder
STALE_STAGING_S = 60.0  # younger: its server may not hold it yet


@contextmanager
def holding(folder) -> Iterator[None]:
    """Hold a lock on the staging ``folder`` while a version is saved (or an image fetched) in it
    (``qgn.fileio.lock_folder``): a folder no process holds is provably a killed server's."""
    from qgn.fileio import lock_folder

    fd = lock_folder(folder)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def remove_stale_staging(train_out: Path, prefix: str = STAGING_PREFIX) -> list[Path]:
    """Remove the staging folders (``prefix`` and tempfile's 8 random characters) in ``train_out``
    that a killed ``qgn serve`` left: this user's, older than ``STALE_STAGING_S`` and held by no
    process (``holding``). They hold staged copies only — a version counts as saved once linked out
    of one — but a version whose weights were linked (or, without hard links, renamed) out and whose
    JSON was not yet moved (killed in between) is finished first, and a folder with such a JSON that
    cannot be moved is left (``finish_staged``). With ``FETCH_PREFIX`` in the temporary folder: the folders of
    fetched images. The folders removed; links, other names, anything unreadable and anything no
    lock can prove free (Windows) are left alone."""
    import shutil

    from qgn.fileio import lock_folder

    removed, name = [], re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")
    for folder in sorted(Path(train_out).glob(glob.escape(prefix) + "*")):
        try:
            if not name.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir() or \
                    folder.stat().st_uid != os.getuid() or time.time() - folder.stat().st_mtime < STALE_STAGING_S:
                continue
            fd = lock_folder(folder, wait=False)
        except (OSError, AttributeError):  # AttributeError: no os.getuid (Windows)
            continue
        if fd is None:
            continue  # its server is still at work in it
        try:
            if finish_staged(folder, Path(train_out)):
                shutil.rmtree(folder)
                removed.append(folder)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def finish_staged(folder: Path, train_out: Path) -> bool:
    """A version whose weights ``save_version`` put into ``train_out`` (linked, or renamed where the
    folder takes no hard links) but whose JSON it had not yet moved over its empty placeholder when
    killed: the JSON is moved now, and before it its domain reference where that was not moved yet
    (``QGNBackend.move_reference``: never over anything there; nothing else is). Whether the folder holds staged copies only (False: it holds the only copy of a
    version's JSON that could not be moved; leave it)."""
    from qgn.model.checkpoint import config_path

    copies_only = True
    for staged_json in folder.glob("*.json"):
        staged = staged_json.with_suffix(".safetensors")
        final = train_out / staged.name
        placeholder = config_path(final)
        if staged_json.name.endswith(".domain.json") or not final.is_file() or \
                (staged.exists() and not os.path.samefile(staged, final)):
            continue  # a domain reference (below), or its weights never left: a staged copy only
        if placeholder.is_file() and not placeholder.stat().st_size:
            # in save_version's order: the reference (killed before it was moved; never over a file
            # or link there), then the JSON, and only for a version whose JSON is finished here
            StagedVersions.move_reference(staged, final)
            os.replace(staged_json, placeholder)
        else:
            copies_only = False
    return copies_only


class StagedVersions:
    """``QGNBackend``'s saving of a new version in ``train_out`` (``self.train_out``, fine-tuned from
    ``self.original``): its number reserved, its files staged, then moved beside the others."""

    def reserve_number(self) -> int:
        """The next version's n, taken by creating its ``<stem>-ls<n>.json`` (empty until the model is
        saved over it) only if no such file exists: another ``qgn serve`` fine-tuning into the same
        folder at the same moment takes another n, where both found the same one free and the
        later save replaced the other's model. An n whose domain reference is there (anything at
        ``<stem>-ls<n>.domain.json``: left by a version whose weights and JSON were deleted by hand)
        is taken too: the new version's own reference could not take its place."""
        import os

        from qgn.domain import reference_path

        self.train_out.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:
            weights = self.train_out / f"{self.original.stem}-ls{n}.safetensors"
            reference = reference_path(weights)
            if not (weights.exists() or reference.exists() or reference.is_symlink()):
                try:
                    os.close(os.open(weights.with_suffix(".json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                    return n
                except FileExistsError:
                    pass
            n += 1

    def save_version(self, save, attempts: int = 8) -> tuple[int, Path]:
        """(n, path) of the next version, saved by ``save(path)`` into a hidden folder in ``train_out``
        and moved beside the others: its weights linked into place, which fails where a file of that
        name appeared after ``reserve_number`` looked (another program's, a copy) — then the next n
        is taken — then its domain reference, where ``save`` wrote one beside it (``move_reference``),
        and its JSON renamed over the empty placeholder ``reserve_number`` made. Nothing
        but that placeholder is ever replaced."""
        import os

        from qgn.domain import reference_path
        from qgn.fileio import sync_folder
        from qgn.model.checkpoint import config_path

        for _ in range(attempts):
            n = self.reserve_number()
            path = self.train_out / f"{self.original.stem}-ls{n}.safetensors"
            placeholder, saved = config_path(path), False
            try:
                with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=self.train_out) as folder, \
                        holding(folder):
                    staged = Path(save(Path(folder) / path.name))
                    if not self.link_new(staged, path):
                        continue
                    referenced = self.move_reference(staged, path)
                    try:
                        os.replace(config_path(staged), placeholder)
                    except BaseException:
                        path.unlink()  # ours, just linked: no weights without their JSON
                        if referenced:
                            reference_path(path).unlink()
                        raise
                    saved = True
                    sync_folder(self.train_out)
                    return n, path
            finally:
                if not saved and placeholder.is_file() and not placeholder.stat().st_size:
                    placeholder.unlink()  # ours (made exclusively, still empty): the number is not taken
        raise FileExistsError(f"{self.train_out}: {attempts} version numbers in a row were taken while qgn serve "
                              "saved its model into them; is another program writing there?")

    @staticmethod
    def move_reference(staged: Path, path: Path) -> bool:
        """The domain reference ``save`` wrote beside the staged weights (``qgn.domain.carry_reference``,
        bound to their SHA-256: the same bytes as ``path``'s, linked or renamed) given its place
        beside ``path``, never over a file there: one left there (a deleted version's) is named in
        the log, and the version is served without the check. Whether it was moved."""
        from qgn.domain import reference_path

        staged_reference = reference_path(staged)
        if not staged_reference.is_file():
            return False
        try:
            moved = StagedVersions.link_new(staged_reference, reference_path(path))
        except OSError as exc:
            moved, why = False, exc.strerror or str(exc)
        else:
            why = f"{reference_path(path)} is in the way (delete it if its model is gone)"
        if not moved:
            print(f"qgn serve: warning: {path.name}'s domain reference was not kept: {why}", file=sys.stderr, flush=True)
        return moved

    @staticmethod
    def link_new(staged: Path, path: Path) -> bool:
        """``staged`` given the new name ``path``, never over a file there (False then); where a
        folder takes no hard links (FAT, some network shares) a rename after a look."""
        import os

        try:
            os.link(staged, path)
            return True
        except FileExistsError:
            return False
        except OSError:
            if path.exists() or path.is_symlink():
                return False
            os.replace(staged, path)
            return True
