"""The annotations ``qgn serve`` keeps for fine-tuning, on disk as well as in memory, so a killed or
restarted server loses none: Label Studio sends an annotation once (ANNOTATION_CREATED/UPDATED) and
never again, so one lost here could only come back by a person updating it there.

In ``<train_out>/kept-annotations/`` each kept annotation is one file, ``<digest>.npz`` (a digest of
its project and task ids, which Label Studio may spell as any string), written atomically: the
task's image (H×W×3 uint8), its label map and, as JSON, the project, task and annotation ids,
``seq``, the order it came in, and ``arrived``, its webhook's arrival (``arrival``): a webhook of the
same (project, task) that arrived earlier, read later (after a passing failure, at a start, moved back
from ``failed/``), is not learnt in its place. ``trained.json`` names the model version last fine-tuned here and the
``seq`` of the newest annotation it learnt from, so a restart serving that version counts only the
later ones as new. An annotation or deletion webhook's body waits in ``pending/<server>/`` from its
arrival until its work has run (it may wait behind others, answered "accepted"), so one a kill
caught waiting is read at the next start — as is one whose image could not be fetched for a reason
that may pass (Label Studio down: ``request.PassingFailure``), which stays there, read again after a
back-off meanwhile (``webhooks.HELD_RETRY_S``, for ``webhooks.HELD_RETRY_FOR_S``); ``<server>`` is locked while its server runs. The whole
train_out folder is locked for a server's life too (``claim``): a second server into the same folder
is refused, where it replaced the first's annotations of the same (project, task) with its own. A file that cannot be read is left as it is (and named); nothing here deletes a
file but the one of an annotation Label Studio deleted, replaced or that fell out of the kept ones,
and a pending body once read.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path

import numpy as np

FOLDER = "kept-annotations"
TRAINED = "trained.json"
PENDING = "pending"
FAILED = "failed"  # held webhooks that can never be read (a 404, a body that is not one): kept, not read again


class TrainOutInUse(RuntimeError):
    """Another live ``qgn serve`` keeps its annotations in this folder (``KeptAnnotations.claim``)."""


def file_name(key) -> str:
    """The file of the annotation kept for ``key`` ((project id, task id), ints or strings)."""
    return hashlib.sha256(json.dumps(list(key)).encode("utf-8")).hexdigest()[:32] + ".npz"


def arrival(path: Path) -> int:
    """When the webhook held in ``path`` arrived (``time.time_ns()``: its name begins with it, see
    ``KeptAnnotations.hold``); 0 for a file not named so."""
    stamp = path.name[:20]
    return int(stamp) if stamp.isdigit() else 0


class KeptAnnotations:
    """The kept annotations' files in ``<train_out>/kept-annotations``."""

    def __init__(self, train_out: Path):
        self.folder = Path(train_out) / FOLDER
        self.lock = threading.Lock()
        self.own: Path | None = None  # this server's folder of held webhooks (own_pending)
        self.unlocked = False  # no folder locks here (Windows): no webhook is held (own_pending)
        self.locks: list[int] = []  # descriptors holding the folders this server reads from: open for its life

    def claim(self) -> str | None:
        """Hold the train_out folder for this server's life (``qgn.fileio.lock_folder``): the kept
        annotations' files are named by project and task ids alone and their order numbers are one
        server's, so a second server fine-tuning into the same folder would replace the first's
        annotations with its own. TrainOutInUse when another live server holds it; where there are no
        such locks (Windows) nothing can tell, and nothing is refused. On a file system that gives none
        (``qgn.fileio.NO_LOCKS``: NFSv3 without its lock manager) likewise - as a project's writes and
        an export go on there - and what that means is returned, for the server to say once (else None)."""
        from qgn.fileio import folder_lock_problem, folder_locks_work, lock_folder, make_folder

        train_out = self.folder.parent
        try:
            make_folder(train_out)
            fd = lock_folder(train_out, wait=False)
            problem = folder_lock_problem(train_out) if fd is None and folder_locks_work() else None
        except OSError:
            return None  # nothing can be kept there now (a file where the folder belongs): each write says so
        if fd is not None:
            self.locks.append(fd)
        elif problem is not None:
            from qgn.shown import path_text

            why = problem.strerror or os.strerror(problem.errno or 0)
            return (f"--train-out {path_text(train_out)} is on a file system that gives no locks ({why}): nothing "
                    "keeps a second qgn serve from fine-tuning into it at the same time, which would replace this "
                    "one's kept annotations - give each server its own --train-out")
        elif folder_locks_work():
            raise TrainOutInUse(f"another qgn serve is fine-tuning into {train_out}; give this one another "
                                "--train-out, or stop that one first")
        return None

    def save(self, key, image: np.ndarray, label: np.ndarray, annotation_id, seq: int, arrived: int = 0) -> None:
        from qgn.fileio import atomic_write_bytes, make_folder

        meta = json.dumps({"project": key[0], "task": key[1], "annotation": annotation_id, "seq": seq,
                           "arrived": arrived})
        data = io.BytesIO()
        np.savez_compressed(data, image=image, label=label, meta=np.frombuffer(meta.encode("utf-8"), np.uint8))
        make_folder(self.folder)
        atomic_write_bytes(self.folder / file_name(key), data.getvalue())

    def remove(self, key) -> None:
        try:
            os.unlink(self.folder / file_name(key))
        except FileNotFoundError:
            pass

    def load(self, notes: list[str]) -> list[tuple]:
        """(key, image, label, annotation id, seq, arrived) of every kept annotation, oldest first
        (``arrived`` 0 where older files do not say); a file that cannot be read is named in
        ``notes`` and left as it is."""
        found = []
        for path in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []:
            try:
                with np.load(path, allow_pickle=False) as stored:
                    meta = json.loads(stored["meta"].tobytes().decode("utf-8"))
                    image, label = stored["image"], stored["label"]
                key = (meta["project"], meta["task"])
                if path.name != file_name(key) or image.ndim != 3 or image.shape[:2] != label.shape:
                    raise ValueError("not a kept annotation of qgn serve")
                found.append((key, image, label, meta["annotation"], int(meta["seq"]), int(meta.get("arrived", 0))))
            except Exception as exc:  # torn (BadZipFile, zlib.error, EOFError), foreign: one file, not the start
                notes.append(f"{path} cannot be read ({exc}); left as it is, not learnt from")
        return sorted(found, key=lambda item: item[4])

    def hold(self, body: dict) -> Path | None:
        """Write an annotation (or deletion) webhook's ``body`` into this server's ``pending/`` folder
        before its work is queued, so a kill before that work is done (it waits behind others) loses
        it neither; None when it cannot be written (said in the server's log)."""
        import sys
        import time
        import uuid

        from qgn.fileio import atomic_write_bytes

        try:
            own = self.own_pending()
            if own is None:
                return None  # no locks here: a held body could never be told from a live server's, nor read
            path = own / f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"  # in arrival order
            atomic_write_bytes(path, json.dumps(body).encode("utf-8"))
            return path
        except (OSError, TypeError, ValueError) as exc:
            print(f"qgn serve: warning: {exc}; a kill before this webhook is read would lose it", file=sys.stderr,
                  flush=True)
        return None

    def own_pending(self) -> Path | None:
        """This server's folder in ``pending/``, made on first use and locked for its life
        (``qgn.fileio.lock_folder``): made and locked beside ``pending/`` and only then moved in, so
        another server starting meanwhile never takes it for a dead one's (``pending``). None where
        there are no such locks (Windows): no start could ever read it, so nothing is held (said once
        in the server's log)."""
        import sys
        import tempfile

        from qgn.fileio import lock_folder, make_folder

        with self.lock:
            if self.own is None and not self.unlocked:
                made = Path(tempfile.mkdtemp(prefix=".pending-", dir=make_folder(self.folder)))
                fd = lock_folder(made)
                if fd is None:
                    os.rmdir(made)
                    self.unlocked = True
                    print("qgn serve: warning: no folder locks here: webhooks waiting to be read are kept in memory "
                          "only (a kill loses them)", file=sys.stderr, flush=True)
                    return None
                self.locks.append(fd)
                make_folder(self.folder / PENDING)
                self.own = self.folder / PENDING / made.name[len(".pending-"):]
                os.rename(made, self.own)
            return self.own

    def release(self, path: Path | None) -> None:
        """The held webhook's work has run (or was refused): its file goes (and a dead server's
        folder with its last one)."""
        if path is None:
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        if path.parent != self.own:
            try:
                os.rmdir(path.parent)
            except OSError:
                pass  # more of it to read

    def set_aside(self, path: Path, why: str | None = None) -> Path:
        """Move a held webhook that can never be read (its image is gone, its body is not one) into
        ``failed/`` beside ``pending/``, under its own name: kept for a person, never read again
        (a dead server's folder goes with its last file); ``why`` written beside it
        (``<name>.txt``), where it can be. Where it now lies."""
        from qgn.fileio import atomic_write_bytes, make_folder

        aside = make_folder(self.folder / FAILED) / path.name
        os.replace(path, aside)
        if why is not None:
            try:
                atomic_write_bytes(aside.with_suffix(".txt"), (why + "\n").encode("utf-8"))
            except OSError:
                pass  # the log says it too
        self.release(path)  # gone already: its folder, if a dead server's and now empty
        return aside

    def pending(self) -> list[Path]:
        """The held webhooks of servers that ended before reading them (a kill; a stop while they
        waited), oldest first: in the folders in ``pending/`` no process holds, which this server
        then holds, so no other server starting reads them too. Where nothing proves a folder
        free (no locks: Windows), none."""
        from qgn.fileio import lock_folder

        root, found = self.folder / PENDING, []
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder == self.own or folder.is_symlink() or not folder.is_dir():
                continue
            try:
                fd = lock_folder(folder, wait=False)
            except OSError:
                continue
            if fd is None:
                continue  # its server is alive
            self.locks.append(fd)
            files = sorted(folder.glob("*.json"))
            if not files:
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
            found += files
        return sorted(found, key=lambda path: path.name)

    def trained(self, version_file: str) -> int:
        """The ``seq`` of the newest annotation the model ``version_file`` (a file name) learnt from
        here; -1 when it is not the model last fine-tuned here (or nothing says)."""
        try:
            state = json.loads((self.folder / TRAINED).read_text(encoding="utf-8"))
            return int(state["upto"]) if state.get("version") == version_file else -1
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return -1

    def mark_trained(self, version_file: str, upto: int) -> None:
        from qgn.fileio import atomic_write_bytes, make_folder

        make_folder(self.folder)
        atomic_write_bytes(self.folder / TRAINED, json.dumps({"version": version_file, "upto": upto}).encode("utf-8"))
