"""The annotations ``QGNBackend`` keeps for its next fine-tune (``Corrections``): the latest of each
task (at most ``MAX_CORRECTIONS``), each with the order it came in and its webhook's arrival, kept
from ANNOTATION_CREATED/UPDATED, dropped on ANNOTATIONS_DELETED/TASKS_DELETED, each written to disk
(``qgn.serve.kept``) and taken back at a restart."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from qgn.shown import echo
from .kept import arrival
from .label_config import brush_target
from .request import DELETIONS, RequestError, annotation_parts, check_type, held_ids

MAX_CORRECTIONS = 200
UNWRITTEN = object()  # in QGNBackend.unwritten: an annotation whose kept file was not written, its webhook being read


def compact_label(label: np.ndarray) -> np.ndarray:
    """``label`` in the smallest integer type that holds its values (the classes and the ignore
    value): a byte a pixel for up to 255 classes, where the label map is made as int64 — 8 bytes, so
    200 annotations of 12-megapixel photos kept for a fine-tune held 18 GB of labels."""
    if not label.size:
        return label
    dtype = np.result_type(np.min_scalar_type(int(label.min())), np.min_scalar_type(int(label.max())))
    return label.astype(dtype) if dtype.itemsize < label.dtype.itemsize else label


class Corrections:
    """The kept annotations of ``QGNBackend``: ``corrections`` ((project id, task id) -> (image, label,
    annotation id), oldest first), ``seq``, ``arrived``, ``next_seq``, ``new_since_training`` and
    ``unwritten`` (under ``state_lock``), their files through ``kept`` (``KeptAnnotations``)."""

    def resume_kept(self) -> None:
        """Keep again the annotations kept before a restart (``qgn.serve.kept``); those newer than
        what the served version learnt from count as new."""
        found = self.kept.load(self.resume_notes)[-MAX_CORRECTIONS:]
        upto = self.kept.trained(self.current.path.name)
        for key, image, label, annotation_id, seq, arrived in found:
            self.corrections[key] = (image, label, annotation_id)
            self.seq[key], self.arrived[key] = seq, arrived
        self.next_seq = max([upto, *self.seq.values()]) + 1
        self.new_since_training = sum(item[4] > upto for item in found)
        held = self.kept.pending()  # webhooks a kill caught before they were read: read now, in order
        if held:
            self.resume_notes.append(f"{len(held)} webhook(s) not read before the last stop are read now "
                                     f"(from {held[0].parent})")
        for path in held:
            self.webhooks.run_later(lambda path=path: self.read_held(path))

    def keep_correction(self, body: dict, project: dict, stamp: int | None = None) -> bool:
        """Keeps the annotation of an ANNOTATION_CREATED/UPDATED ``body`` (its ``task`` and
        ``annotation``) for the next fine-tune, in place of the one kept for its task; whether it was
        kept (a skipped task's is not, nor one whose webhook arrived (``stamp``, default now) before
        the kept one's: read late, after a passing failure or at a start). The held webhooks of its
        task that arrived before it and wait to be read again are dropped: they would be older."""
        task, annotation = annotation_parts(body)
        if annotation.get("was_cancelled"):
            return False
        source = f"task {echo(task.get('id'))}"
        image, label = self.annotated_image(task, annotation, project, source)
        key, stamp = (project.get("id"), task.get("id")), time.time_ns() if stamp is None else stamp
        older, seq, dropped, stale = self.remember_correction(key, image, label, annotation.get("id"), stamp)
        for path in stale:
            self.kept.release(path)
        if older:
            print(f"qgn serve: {source} of project {key[0]}: a webhook that arrived before the annotation kept for it "
                  "is not learnt (it was read late: after a passing failure or a restart)", file=sys.stderr, flush=True)
            return False
        self.write_correction(key, image, label, annotation.get("id"), seq, stamp, dropped)
        return True

    def annotated_image(self, task: dict, annotation: dict, project: dict, source: str):
        """(image, label) of ``annotation``: its image read, its brush regions as a label map (in
        the smallest integer type), a size that does not match the image refused before any map is made."""
        from qgn.data.imageio import read_rgb
        from qgn.formats.guards import check_against_image
        from qgn.formats.labelstudio import annotation_label, region_results, result_size
        from qgn.imagefile import upright_size

        target = brush_target(project.get("label_config") or "")
        classes = self.current.model.config.classes
        regions, _ = region_results(annotation)
        claimed = {result_size(r, source) for r in regions}  # checked numbers; nothing allocated yet
        with self.image_file(str((task.get("data") or {}).get(target.data_key, ""))) as path:
            width, height = upright_size(path)  # the header only
            for claimed_height, claimed_width in claimed:
                try:
                    check_against_image((claimed_width, claimed_height), (width, height), f"{source}'s annotation",
                                        Path(path).name)
                except ValueError as exc:
                    raise RequestError(str(exc), 422) from None
            label = annotation_label(annotation, classes, source)
            image = read_rgb(path)
        if image.shape[:2] != label.shape:
            raise RequestError(f"{source}: the annotation is {label.shape[::-1]} but the image {image.shape[1::-1]}")
        return image, compact_label(label)

    def remember_correction(self, key, image, label, annotation_id, stamp: int):
        """(older, seq, dropped, stale): the annotation kept in memory for ``key`` unless the one kept
        arrived later (``older``), with its number ``seq``; the oldest beyond MAX_CORRECTIONS
        ``dropped``; the held webhooks of ``key`` that arrived before it, ``stale``, no longer held."""
        seq, dropped = None, []
        with self.state_lock:  # its number and its place in one hold: a fine-tune taking upto learns from it
            if self.arrived.get(key, -1) > stamp:
                older = True
            else:
                older = False
                seq, self.next_seq = self.next_seq, self.next_seq + 1
                self.corrections.pop(key, None)
                self.corrections[key] = (image, label, annotation_id)
                self.seq[key], self.arrived[key] = seq, stamp
                while len(self.corrections) > MAX_CORRECTIONS:
                    dropped.append(self.corrections.popitem(last=False)[0])
                    self.seq.pop(dropped[-1], None)
                    self.arrived.pop(dropped[-1], None)
                self.new_since_training += 1
            stale = self.drop_unread(lambda path, held: held[:2] == key and arrival(path) < stamp)
        return older, seq, dropped, stale

    def write_correction(self, key, image, label, annotation_id, seq: int, stamp: int, dropped: list) -> None:
        """The kept annotation's file, and the files of those ``dropped`` removed. A kill before it is
        written leaves the webhook's held body (read again at the start)."""
        written = self.keep_on_disk(lambda: self.kept.save(key, image, label, annotation_id, seq, stamp))
        with self.state_lock:  # an older webhook held for want of its file: this one stands for it now
            superseded = [self.unwritten.pop(old, None) for old in (key, *dropped)]
            if not written:
                self.unwritten[key] = UNWRITTEN
        for path in superseded:
            if isinstance(path, Path):
                self.kept.release(path)
        for old in dropped:
            self.keep_on_disk(lambda old=old: self.kept.remove(old))

    def stays_held(self, held: Path | None, body: dict) -> bool:
        """Whether the held webhook ``held`` (its ``body`` read) must stay held: the kept file of
        its annotation could not be written (``keep_correction``), so only it can bring the
        annotation back after a restart; it is then named in ``unwritten``."""
        ids = held_ids(body)
        if held is None or ids is None:
            return False
        with self.state_lock:
            if self.unwritten.get(ids[:2]) is not UNWRITTEN:
                return False
            self.unwritten[ids[:2]] = held
        print(f"qgn serve: warning: its webhook stays held in {held}, read again at the next start",
              file=sys.stderr, flush=True)
        return True

    def drop_unread(self, which) -> list[Path]:
        """Takes out of ``unread`` the held webhooks for which ``which(path, (project, task,
        annotation))`` holds (under ``state_lock``); the caller releases their files."""
        dropped = [path for path in self.unread if (held := self.unread_ids.get(path)) and which(path, held)]
        self.unread = [path for path in self.unread if path not in dropped]
        for path in dropped:
            self.unread_ids.pop(path, None)
            self.retries.pop(path, None)
        return dropped

    def keep_on_disk(self, write) -> bool:
        """``write()`` of a kept annotation's file (webhook thread); whether it was written. A failure
        (a full disk, no permission) is said in the server's log (``os_error_text``): the annotation
        is still learnt from, and its held webhook stays held (``stays_held``): without one, a
        restart would lose it."""
        import sys

        try:
            write()
            return True
        except OSError as exc:  # the file, the reason and what to do (a full disk, no permission), not "[Errno 13] …"
            from qgn.fileio import os_error_text

            print(f"qgn serve: warning: {os_error_text(exc)}; the annotation is learnt from but its file is not kept: "
                  "where its webhook is held, it stays held, else a restart loses it", file=sys.stderr, flush=True)
            return False

    def forget_corrections(self, project_id, deleted, action: str, stamp: int | None = None) -> dict:
        """Drops the kept annotations that Label Studio deleted — ``deleted`` is the webhook's list
        of ``{"id": ...}`` of annotations or of tasks (``DELETIONS``) — so no fine-tune learns
        from them; not one whose webhook arrived after the deletion's (``stamp``, default now)."""
        check_type(deleted, DELETIONS[action], list)
        named = [check_type(item, f"{DELETIONS[action]}[]", dict).get("id") for item in deleted]
        ids = {i for i in named if isinstance(i, (int, str))}
        which = 2 if action == "ANNOTATIONS_DELETED" else 1  # annotation or task id of (project, task, annotation)
        stamp = time.time_ns() if stamp is None else stamp
        with self.state_lock:
            gone = [key for key, (_, _, annotation) in self.corrections.items() if key[0] == project_id and
                    (annotation if action == "ANNOTATIONS_DELETED" else key[1]) in ids and
                    self.arrived.get(key, 0) <= stamp]
            unkept = [self.unwritten.pop(key, None) for key in gone]  # held for want of a file: never read again
            for key in gone:
                del self.corrections[key]
                self.seq.pop(key, None)
                self.arrived.pop(key, None)
            # held webhooks waiting for Label Studio came before this deletion: one it names is not read
            dropped = self.drop_unread(lambda path, held: held[0] == project_id and held[which] in ids and
                                       arrival(path) <= stamp)
            answer = {"status": "forgotten", "forgotten": len(gone) + len(dropped),
                      "corrections": len(self.corrections)}
        for key in gone:
            self.keep_on_disk(lambda key=key: self.kept.remove(key))
        for path in unkept:
            if isinstance(path, Path):
                self.kept.release(path)
        for path in dropped:
            self.kept.release(path)
        return answer
