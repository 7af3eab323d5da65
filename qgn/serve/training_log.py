"""A fine-tune's progress, in ``/health`` and the log (``TrainingLog``)."""
from __future__ import annotations

import sys
import time


TRAINING_LOG_EVERY_S = 10.0  # a fine-tune's progress line in the log at most this often (and its first and last)


class TrainingLog:
    """A fine-tune's progress for ``QGNBackend._train``: ``preparing(done, total)`` and
    ``step(iteration, loss)`` (``qgn.train.finetune.finetune``'s callbacks, as ``qgn finetune``
    uses them) set the backend's ``training_status`` (``/health``'s ``training``) with the time left
    and write ``qgn serve: fine-tuning VERSION on N annotation(s): …`` lines to the log (stderr) -
    the first, then at most every ``TRAINING_LOG_EVERY_S``, and the last of each pass: whole lines,
    never redrawn (the log is a file or Label Studio's console, not a terminal)."""

    def __init__(self, backend, version: str, annotations: int, iterations: int, learns: str = ""):
        from qgn.progress import TimeLeft

        self.backend, self.iterations = backend, iterations
        self.head = f"fine-tuning {version} on {annotations} annotation(s)"
        self.start = self.logged = time.monotonic()
        self.time_left = TimeLeft()
        self.pass_name = ""
        self.line(f"{self.head}, {iterations} iterations" + (f"; {learns}" if learns else ""))

    def line(self, text: str) -> None:
        """One line of the log (a failure's text may hold line breaks: escaped, ``qgn.shown``)."""
        from qgn.shown import bounded

        print(f"qgn serve: {bounded(text)}", file=sys.stderr, flush=True)

    def elapsed(self) -> str:
        from qgn.progress import format_duration

        return format_duration(time.monotonic() - self.start)

    def _report(self, pass_name: str, done: int, total: int, text: str) -> None:
        from qgn.progress import TimeLeft

        if pass_name != self.pass_name:  # the features, then the steps: each its own estimate
            self.pass_name, self.time_left = pass_name, TimeLeft()
            first = True
        else:
            first = False
        status = f"{self.head}: {text}{self.time_left.suffix(done, total)}"
        with self.backend.state_lock:
            self.backend.training_status = status
        now = time.monotonic()
        if first or done >= total or now - self.logged >= TRAINING_LOG_EVERY_S:
            self.logged = now
            self.line(status)

    def preparing(self, done: int, total: int) -> None:
        self._report("features", done, total, f"encoding {done}/{total} images")

    def step(self, iteration: int, loss: float) -> None:
        self._report("steps", iteration, self.iterations, f"step {iteration} of {self.iterations}, loss {loss:.4f}")
