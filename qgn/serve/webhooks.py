"""``QGNBackend``'s answer to ``/webhook`` (``Webhooks``): which actions it reads, each one's body
held on disk (``qgn.serve.kept``) until read, in arrival order on one thread (``qgn.serve.inorder``),
and a held webhook read again - at ``/setup``, at a start, or after a failure that may pass
(``HELD_RETRY_S``, for ``HELD_RETRY_FOR_S``) - or set aside when it never can be. What a webhook's
annotation does is ``qgn.serve.corrections``'s; the fine-tune it may ask for ``qgn.serve.finetuning``'s."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from qgn.shown import echo
from .inorder import Busy
from .kept import PENDING, arrival
from .request import (DELETIONS, NoLabelStudio, PassingFailure, RequestError, annotation_parts, check_type,
                      held_ids)

HELD_RETRY_S = (30.0, 60.0, 120.0, 300.0, 600.0)  # a held webhook's reads again after a PassingFailure, then every last
HELD_RETRY_FOR_S = 24 * 3600.0  # for at most this long after its first failure (in a server's life), then set aside
HELD_RETRY_LOG_EVERY = 10  # the log says a webhook's first failed read, then every 10th


def webhook_project(action, body: dict) -> dict:
    """The webhook's ``project`` (``{}`` when absent), its shape and that of what it acts on checked
    at once."""
    project = body.get("project")
    if project is None:
        project = {}
    check_type(project, "project", dict)
    check_type(project.get("id"), "project.id", (int, str, type(None)))
    if action in DELETIONS:
        check_type(body.get(DELETIONS[action]), DELETIONS[action], list)
    elif action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        annotation_parts(body)  # its shape is answered at once
    return project


class Webhooks:
    """The webhook half of ``QGNBackend``: it reads ``train_out``, ``kept`` (``KeptAnnotations``) and
    ``webhooks`` (``InOrder``), and keeps the held webhooks not read yet in ``unread``,
    ``unread_ids`` and ``retries`` (under ``state_lock``; ``retry_thread`` waits on ``retry_wake``)."""

    def webhook(self, body: dict, arrived: float | None = None) -> dict:
        """A webhook's answer: its work's result when that ends within ``qgn.serve.inorder.WAIT_S`` of
        ``arrived`` (``time.monotonic()`` of the request's first byte; default now), else
        ``accepted`` while the work goes on in order (see ``qgn.serve.inorder``)."""
        action = body.get("action")
        ignored = self.ignored_webhook(action, body)
        if ignored is not None:
            return ignored
        project = webhook_project(action, body)
        held = self.kept.hold(body) if action != "START_TRAINING" else None  # a deletion too: read after the rest
        stamp = arrival(held) if held is not None else time.time_ns()
        try:
            answer = self.webhooks.run(self.webhook_work(action, body, project, held, stamp),
                                       f"{action} of project {echo(project.get('id'))}", arrived)
        except Busy as exc:
            return self.answer_busy(exc, held, body)
        if answer is None:
            return {"status": "accepted", "reason": "still being read (Label Studio waits 1 s); in the order the "
                                                    "webhooks came, failures in the server's log",
                    "waiting": self.webhooks.waiting()}
        return answer

    def ignored_webhook(self, action, body: dict) -> dict | None:
        """The answer to a webhook not read (an action it does not learn from, fine-tuning off,
        annotations created from predictions), else None."""
        if action not in ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "START_TRAINING",
                          *DELETIONS):
            return {"status": "ignored", "reason": f"no fine-tuning on {echo(repr(action))}"}
        if self.train_out is None:
            return {"status": "ignored", "reason": "fine-tuning is off: start qgn serve with --train-out DIR"}
        if action == "ANNOTATIONS_CREATED":  # fine-tuning on them would teach the model its own mistakes
            created = body.get("annotation")
            return {"status": "ignored", "annotations": len(created) if isinstance(created, list) else 0,
                    "reason": "annotations created from predictions are the model's own output, not reviewed yet: "
                              "each is learnt from once a person updates it in Label Studio"}
        return None

    def webhook_work(self, action: str, body: dict, project: dict, held: Path | None, stamp: int):
        """The webhook's work, run in order (``InOrder``): read, and its held body let go unless a
        passing failure keeps it to read again."""
        def work() -> dict:
            retried = False
            try:
                return self.read_webhook(action, body, project, stamp)
            except PassingFailure as exc:  # Label Studio down: its held body is read again, not dropped
                if held is None:
                    raise
                retried = True
                self.read_held_later(held, body, 1, HELD_RETRY_S[0], time.monotonic())
                raise PassingFailure(f"{exc}; the webhook is kept in {held}, read again in {HELD_RETRY_S[0]:g} s and "
                                     "at the next start", exc.status) from None
            finally:
                if not retried and not self.stays_held(held, body):
                    self.kept.release(held)
        return work

    def answer_busy(self, exc: Busy, held: Path | None, body: dict) -> dict:
        """The answer when the queue is full: refused when nothing is held (or stopping), else
        accepted and read once the queue has room."""
        if held is None:
            raise RequestError(str(exc), 503) from None  # refused unread, nothing of it kept
        if self.stopping.is_set():  # its file stays: read at the next start
            raise RequestError(f"{exc}; the webhook is kept in {held}, read at the next start", 503) from None
        self.read_held_later(held, body, 0, 0.0)  # Label Studio sends it once: read once the queue has room
        return {"status": "accepted", "reason": f"{exc}: this one is kept in {held} and read once the ones "
                                                "before it are", "waiting": self.webhooks.waiting()}

    def read_webhook(self, action: str, body: dict, project: dict, stamp: int | None = None) -> dict:
        """An annotation or deletion webhook's work, or START_TRAINING's (webhook thread); ``stamp``:
        its arrival (``qgn.serve.kept.arrival``; default now)."""
        stamp = time.time_ns() if stamp is None else stamp
        if action in DELETIONS:
            return self.forget_corrections(project.get("id"), body.get(DELETIONS[action]), action, stamp)
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            self.keep_correction(body, project, stamp)
        return self.after_keeping(action)

    def after_keeping(self, action: str) -> dict:
        """After an annotation webhook's work: a fine-tune when START_TRAINING or ``train_every``
        new annotations ask for one (``request_training``), else what is kept."""
        with self.state_lock:
            count = len(self.corrections)
            if count and (action == "START_TRAINING" or self.new_since_training >= self.train_every):
                return self.request_training()
        return {"status": "kept", "corrections": count, "train_every": self.train_every}

    def read_held(self, path: Path, attempt: int = 0, since: float | None = None) -> None:
        """Read the webhook held in ``path`` (``resume_kept``; webhook thread). When its image cannot be
        fetched yet (no Label Studio URL is known: Label Studio has not connected) the file stays,
        tried again at the next ``/setup`` and the next start; so it does after a failure that may pass
        (``PassingFailure``: Label Studio down or overloaded), read again after ``HELD_RETRY_S``
        too, for ``HELD_RETRY_FOR_S`` after its first failure (``since``, monotonic). Any other
        failure can only repeat, so the file is moved into ``kept-annotations/failed/`` (kept, not
        read again; its reason beside it) and the log says where and how to have it read again."""
        if not path.is_file():
            return  # read meanwhile (a /setup's reading and a retry's), or dropped by a deletion
        body = None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            action = body.get("action")
            project = body.get("project") or {}
            if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", *DELETIONS) and isinstance(project, dict):
                self.read_webhook(action, body, project, arrival(path))
        except NoLabelStudio as exc:
            print(f"qgn serve: warning: the webhook held in {path} before a restart cannot be read yet ({exc}); "
                  "it stays there, tried again when Label Studio connects (/setup) and at the next start",
                  file=sys.stderr, flush=True)
            with self.state_lock:
                self.unread.append(path)
                self.unread_ids[path] = held_ids(body)
            return
        except PassingFailure as exc:
            since = time.monotonic() if since is None else since
            if time.monotonic() - since >= HELD_RETRY_FOR_S:
                self.set_aside_held(path, f"{exc}; still so after {HELD_RETRY_FOR_S / 3600:g} h of tries")
                return
            delay = HELD_RETRY_S[min(attempt, len(HELD_RETRY_S) - 1)]
            if attempt <= 1 or attempt % HELD_RETRY_LOG_EVERY == 0:  # not a line every try for a day
                print(f"qgn serve: warning: the webhook held in {path} cannot be read now ({exc}; try {attempt + 1}, "
                      f"said every {HELD_RETRY_LOG_EVERY}th); it stays there, tried again in {delay:g} s (for "
                      f"{HELD_RETRY_FOR_S / 3600:g} h) and at the next start", file=sys.stderr, flush=True)
            self.read_held_later(path, body, attempt + 1, delay, since)
            return
        except Exception as exc:
            self.set_aside_held(path, str(exc))
            return
        if not self.stays_held(path, body):
            self.kept.release(path)

    def set_aside_held(self, path: Path, why: str) -> None:
        """The held webhook ``path`` can never be read (``why``): into ``kept-annotations/failed/``,
        its reason beside it, and the log says so."""
        try:
            aside = self.kept.set_aside(path, why)
            aside = (f"{aside} (move it into a new folder in {aside.parent.parent / PENDING}/ and restart qgn "
                     "serve to have it read again)")
        except OSError as move:
            aside = f"{path} (it could not be moved: {move})"
        print(f"qgn serve: warning: the webhook held in {path} before a restart cannot be read ({why}); "
              f"it is not learnt from, and kept in {aside}", file=sys.stderr, flush=True)

    def read_held_later(self, path: Path, body, attempt: int, delay: float, since: float | None = None) -> None:
        """Read the held webhook ``path`` again in ``delay`` seconds (``retry_loop``; on the webhook
        thread), unless a ``/setup`` read it first, a deletion dropped it, or the server stops. Until
        then it is one of ``unread``: a deletion naming its annotation drops it, as any held one."""
        with self.state_lock:
            if path not in self.unread:
                self.unread.append(path)
            self.unread_ids[path] = held_ids(body)
            self.retries[path] = (time.monotonic() + delay, attempt, time.monotonic() if since is None else since)
            if self.retry_thread is None:
                self.retry_thread = threading.Thread(target=self.retry_loop, daemon=True, name="qgn-serve-retries")
                self.retry_thread.start()
            self.retry_wake.notify()

    def retry_loop(self) -> None:
        """The one thread that reads held webhooks again when their back-off is over, one at a time:
        each waits for the one before to be read, so retries take at most one of the webhook queue's
        places (``qgn.serve.inorder.LIMIT``), never those of the webhooks Label Studio sends live."""
        while True:
            with self.state_lock:
                while not self.stopping.is_set():
                    due = min(((when, str(path), path) for path, (when, *_) in self.retries.items()), default=None)
                    if due is not None and due[0] <= time.monotonic():
                        break
                    self.retry_wake.wait(None if due is None else due[0] - time.monotonic())
                else:
                    return
                path = due[2]
                _, attempt, since = self.retries.pop(path)
                if path not in self.unread:
                    continue  # read meanwhile (a /setup), or dropped by a deletion or a newer annotation
                self.unread.remove(path)
                self.unread_ids.pop(path, None)
            read = threading.Event()

            def work(path=path, attempt=attempt, since=since) -> None:
                try:
                    self.read_held(path, attempt, since)
                finally:
                    read.set()

            try:
                self.webhooks.run_later(work)
            except Busy:
                return  # stopped meanwhile: the file stays, read at the next start
            while not read.wait(1.0):
                if self.stopping.is_set():
                    return
