"""Webhook work done one piece at a time, in the order it came, on a thread of its own; the request
that brought a piece waits for it at most ``wait_s``.

Label Studio posts a webhook inside the request that made it (an annotator's *Submit*) and waits
``WEBHOOK_TIMEOUT`` — 1 s by default (label_studio/core/settings/base.py) — for the answer, which it
never reads (webhooks/utils.py ``run_webhook_sync``). Keeping a 12-megapixel photo's annotation
takes up to about a second, and a webhook that comes while others are read waits for them too: a
webhook answered only when its work was done held such a *Submit* for Label Studio's whole second
and logged a timeout each time. Work that ends within ``wait_s`` is
answered with its result (and its error, as before); longer work is answered ``accepted`` and goes
on, and if it then fails, its reason goes to the server's log. One worker in arrival order keeps the
webhooks' meaning: a deletion after the annotation it deletes, START_TRAINING after the annotations
sent before it; at most ``limit`` wait, beyond which a webhook is refused (503) unread. ``stop``
ends the worker after the piece it is on: the pieces still waiting are not done, and later webhooks
are refused, so none (a START_TRAINING) starts work after qgn serve has begun to stop.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable

WAIT_S = 0.8  # under Label Studio's 1 s WEBHOOK_TIMEOUT
LIMIT = 64


class Busy(RuntimeError):
    """More than ``limit`` pieces of work are waiting, or the worker was stopped."""


STOPPED = "qgn serve is stopping; send it again once it has restarted"


class Piece:
    def __init__(self, work: Callable[[], dict], name: str):
        self.work, self.name = work, name
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.answer: dict | None = None
        self.error: BaseException | None = None
        self.abandoned = False  # its request was answered before it ended


class InOrder:
    def __init__(self, wait_s: float | None = None, limit: int | None = None, log: Callable[[str], None] | None = None):
        self.wait_s = WAIT_S if wait_s is None else wait_s
        self.pieces: queue.Queue = queue.Queue(LIMIT if limit is None else limit)
        self.log = log or (lambda line: sys.stderr.write(line + "\n"))
        self.worker: threading.Thread | None = None
        self.start_lock = threading.Lock()
        self.stopped = False

    def run(self, work: Callable[[], dict], name: str, arrived: float | None = None) -> dict | None:
        """``work()``'s answer when it ends within ``wait_s`` of ``arrived`` (``time.monotonic()``
        when its request came; default now) — its exception raised — else None while it goes on.
        Busy when too many pieces wait."""
        piece = Piece(work, name)
        self.start()
        try:
            self.put(piece)
        except queue.Full:
            raise Busy(f"qgn serve is busy: {self.pieces.maxsize} webhooks wait to be read; try again later") from None
        now = time.monotonic()
        piece.done.wait(max(0.0, (now if arrived is None else arrived) + self.wait_s - now))
        with piece.lock:
            if not piece.done.is_set():
                piece.abandoned = True
                return None
        if piece.error is not None:
            raise piece.error
        return piece.answer

    def waiting(self) -> int:
        return self.pieces.qsize()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every piece queued so far has ended (for tests and a clean stop); once stopped,
        until the worker has ended."""
        with self.start_lock:
            worker = self.worker if self.stopped else False
        if worker is not False:
            worker is None or worker.join(timeout)
            return worker is None or not worker.is_alive()
        marker = threading.Event()
        self.run_later(marker.set)
        return marker.wait(timeout)

    def run_later(self, work: Callable[[], None]) -> None:
        self.start()
        self.put(Piece(lambda: work() or {}, "marker"), block=True)

    def put(self, piece: Piece, block: bool = False) -> None:
        """Queues ``piece`` (queue.Full when ``limit`` wait and not ``block``); Busy once stopped."""
        with self.start_lock:
            if self.stopped:
                raise Busy(STOPPED)
            if not block:
                self.pieces.put_nowait(piece)
                return
        self.pieces.put(piece)

    def stop(self, timeout: float | None = None) -> bool:
        """Ends the worker once the piece it is on has ended (at most ``timeout``); the pieces
        still waiting are answered with ``Busy`` and not done. Whether the worker has ended."""
        with self.start_lock:
            self.stopped = True
            worker = self.worker
        if worker is None:
            return True
        while True:  # the worker's wake-up, beside the pieces it drops
            try:
                self.pieces.put_nowait(None)
                break
            except queue.Full:
                self.drop_waiting()
        worker.join(timeout)
        return not worker.is_alive()

    def drop_waiting(self) -> None:
        while True:
            try:
                piece = self.pieces.get_nowait()
            except queue.Empty:
                return
            if piece is not None:
                self.drop(piece)

    def drop(self, piece: Piece) -> None:
        piece.error = Busy(STOPPED)
        with piece.lock:
            piece.done.set()
            abandoned = piece.abandoned
        if abandoned:
            self.log(f"qgn serve: {piece.name} was not read: qgn serve stopped first")

    def start(self) -> None:
        with self.start_lock:
            if self.worker is None and not self.stopped:
                self.worker = threading.Thread(target=self.loop, daemon=True, name="qgn-serve-webhooks")
                self.worker.start()

    def loop(self) -> None:
        while True:
            piece = self.pieces.get()
            if piece is None:
                self.drop_waiting()
                return
            if self.stopped:
                self.drop(piece)
                continue
            try:
                piece.answer = piece.work()
            except Exception as exc:  # its request's answer, or the log's
                piece.error = exc
            with piece.lock:
                piece.done.set()
                abandoned = piece.abandoned
            if abandoned and piece.error is not None:
                self.log(f"qgn serve: {piece.name} failed after it was answered: {piece.error}")
