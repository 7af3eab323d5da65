"""The annotations ``qgn serve`` keeps for fine-tuning, on disk as well as in memory, so a killed or
restarted server loses none: Label Studio sends an annotation once (ANNOTATION_CREATED/UPDATED) and
never again, so one lost here could only come back by a person updating it there.

In ``<train_out>/kept-annotations/`` each kept annotation is one file, ``<digest>.npz`` (a digest of
its project and task ids, which Label Studio may spell as any string), written atomically: the
task's image (H×W×3 uint8), its label map and, as JSON, the project, task and annotation ids and
``seq``, the order it came in. ``trained.json`` names the model version last fine-tuned here and the
``seq`` of the newest annotation it learnt from, so a restart serving that version counts only the
later ones as new. An annotation or deletion webhook's body waits in ``pending/`` from its arrival
until its work has run (it may wait behind others, answered "accepted"), so one a kill caught waiting is read
at the next start. A file that cannot be read is left as it is (and named); nothing here deletes a
file but the one of an annotation Label Studio deleted, replaced or that fell out of the kept ones,
and a pending body once read.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

FOLDER = "kept-annotations"
TRAINED = "trained.json"
PENDING = "pending"


def file_name(key) -> str:
    """The file of the annotation kept for ``key`` ((project id, task id), ints or strings)."""
    return hashlib.sha256(json.dumps(list(key)).encode("utf-8")).hexdigest()[:32] + ".npz"


class KeptAnnotations:
    """The kept annotations' files in ``<train_out>/kept-annotations``."""

    def __init__(self, train_out: Path):
        self.folder = Path(train_out) / FOLDER

    def save(self, key, image: np.ndarray, label: np.ndarray, annotation_id, seq: int) -> None:
        from qgn.fileio import atomic_write_bytes, make_folder

        meta = json.dumps({"project": key[0], "task": key[1], "annotation": annotation_id, "seq": seq})
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
        """(key, image, label, annotation id, seq) of every kept annotation, oldest first; a file
        that cannot be read is named in ``notes`` and left as it is."""
        found = []
        for path in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []:
            try:
                with np.load(path, allow_pickle=False) as stored:
                    meta = json.loads(stored["meta"].tobytes().decode("utf-8"))
                    image, label = stored["image"], stored["label"]
                key = (meta["project"], meta["task"])
                if path.name != file_name(key) or image.ndim != 3 or image.shape[:2] != label.shape:
                    raise ValueError("not a kept annotation of qgn serve")
                found.append((key, image, label, meta["annotation"], int(meta["seq"])))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                notes.append(f"{path} cannot be read ({exc}); left as it is, not learnt from")
        return sorted(found, key=lambda item: item[4])

    def hold(self, body: dict) -> Path | None:
        """Write an annotation (or deletion) webhook's ``body`` into ``pending/`` before its work is
        queued, so a kill before that work is done (it waits behind others) loses it neither; None
        when it cannot be written (said in the server's log)."""
        import sys
        import time
        import uuid

        from qgn.fileio import atomic_write_bytes, make_folder

        folder = self.folder / PENDING
        path = folder / f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"  # in arrival order; two at once both kept
        try:
            make_folder(folder)
            atomic_write_bytes(path, json.dumps(body).encode("utf-8"))
            return path
        except (OSError, TypeError, ValueError) as exc:
            print(f"qgn serve: warning: {exc}; a kill before this webhook is read would lose it", file=sys.stderr,
                  flush=True)
        return None

    @staticmethod
    def release(path: Path | None) -> None:
        """The held webhook's work has run (or was refused): its ``pending/`` file goes."""
        if path is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def pending(self) -> list[Path]:
        """The held webhooks whose work never ran (a kill, a stop while they waited), oldest first."""
        folder = self.folder / PENDING
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

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
