"""The one line on stderr that a long CLI run rewrites in place (``\\r``) to say how far it is:
``qgn stats``, ``qgn convert`` and ``qgn eval`` count files or samples, ``qgn samples`` scenes, ``qgn train`` and
``qgn finetune`` iterations; each says the time left with ``qgn.progress.TimeLeft``."""
from __future__ import annotations

import sys

from qgn.progress import TimeLeft

#: A pass over files draws its line only on a terminal and for more files than this.
SHOWN_ABOVE_FILES = 20
#: … and redraws it every this many files (and at the last).
EVERY_FILES = 10


class ProgressLine:
    """``show(text)`` rewrites the line, padded to ``width`` (the line it replaces may have been
    longer); ``off_the_line()`` moves off it before another line is printed (a failure) and at the
    end. ``shown=False``: draws nothing."""

    def __init__(self, width: int, shown: bool = True):
        self.width, self.shown = width, shown
        self.on_line = False
        self.time_left = TimeLeft()

    def show(self, text: str) -> None:
        if self.shown:
            print(f"\r{text}".ljust(self.width), end="", file=sys.stderr, flush=True)
            self.on_line = True

    def clear(self) -> None:
        """Blank the line and go back to its start (another line is printed in its place, and the
        progress line is drawn again under it)."""
        if self.on_line:
            print("\r" + " " * self.width + "\r", end="", file=sys.stderr, flush=True)
            self.on_line = False

    def off_the_line(self) -> None:
        if self.on_line:
            print(file=sys.stderr)
            self.on_line = False


class FileSteps(ProgressLine):
    """``step(i)`` with ``i`` files of ``n`` done: ``qgn CMD: [what ]i/n files · about … left``,
    drawn every ``EVERY_FILES`` files on a terminal for more than ``SHOWN_ABOVE_FILES`` files; the
    line is ended at ``i == n``."""

    def __init__(self, command: str, n: int, what: str = "", width: int = 64):
        super().__init__(width, n > SHOWN_ABOVE_FILES and sys.stderr.isatty())
        self.prefix, self.n = f"qgn {command}: " + (f"{what} " if what else ""), n

    def __call__(self, i: int) -> None:
        if i % EVERY_FILES and i != self.n:
            return
        self.show(f"{self.prefix}{i}/{self.n} files{self.time_left.suffix(i, self.n)}")
        if i == self.n:
            self.off_the_line()
