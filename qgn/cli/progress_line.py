"""The one line on stderr that a long CLI run rewrites in place (``\\r``) to say how far it is:
``qgn stats``, ``qgn convert`` and ``qgn eval`` count files or samples, ``qgn samples`` scenes, ``qgn train`` and
``qgn finetune`` iterations; each says the time left with ``qgn.progress.TimeLeft``."""
from __future__ import annotations

import os
import sys
import time

from qgn.progress import TimeLeft

#: A pass over files draws its line only on a terminal and for more files than this.
SHOWN_ABOVE_FILES = 20
#: … and redraws it every this many files (and at the last).
EVERY_FILES = 10


def terminal_columns() -> int | None:
    """The columns of the terminal stderr draws on: ``$COLUMNS`` when set, else the terminal's
    own; None when stderr is not a terminal (a file or a pipe: nothing wraps there, and a log keeps
    the whole line, whatever ``$COLUMNS`` an exported shell variable says) or no width is known."""
    try:
        if not sys.stderr.isatty():
            return None
    except (AttributeError, ValueError):  # (closed, or a stream without isatty)
        return None
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
    return columns if columns > 0 else None


def room() -> int | None:
    """The most columns a progress line may take: one less than the terminal's (the last column
    wraps on some terminals), or None (no terminal known: no limit)."""
    columns = terminal_columns()
    return None if columns is None else max(columns - 1, 1)


#: The line drawn and not yet blanked or ended, if any: ``end_drawn_line`` blanks it before a
#: failure's or an interrupt's message is printed (``qgn.cli.main``).
_drawn: ProgressLine | None = None


def end_drawn_line() -> None:
    """Blank the progress line a command left drawn, if any, so that the next text printed on
    stderr starts a line of its own (``qgn CMD: interrupted`` was glued onto ``… 14/200 scenes``)."""
    if _drawn is not None:
        _drawn.clear()


class ProgressLine:
    """``show(text)`` rewrites the line, padded to ``width`` (the line it replaces may have been
    longer); ``off_the_line()`` moves off it before another line is printed (a failure) and at the
    end. ``shown=False``: draws nothing. A text longer than the terminal is cut to one column
    less than its width (when the width is known, ``terminal_columns``): a line that wrapped could
    not be rewritten or blanked in place."""

    def __init__(self, width: int, shown: bool = True):
        self.width, self.shown = width, shown
        self.on_line = False
        self.drawn = 0  # the longest text drawn since the line was last blank
        self.time_left = TimeLeft()

    def show(self, text: str) -> None:
        global _drawn
        if self.shown:
            if _drawn is not None and _drawn is not self:  # another command's line on the row: blanked first
                _drawn.clear()
            limit = room()
            pad = max(self.width - 1, self.drawn)
            if limit is not None:
                text, pad = text[:limit], min(pad, limit)
            print("\r" + text.ljust(pad), end="", file=sys.stderr, flush=True)
            self.drawn = max(self.drawn, len(text))
            self.on_line = True
            _drawn = self

    def clear(self) -> None:
        """Blank the line and go back to its start (another line is printed in its place, and the
        progress line is drawn again under it)."""
        if self.on_line:
            limit = room()
            blank = max(self.width, self.drawn) if limit is None else min(max(self.width, self.drawn), limit)
            print("\r" + " " * blank + "\r", end="", file=sys.stderr, flush=True)
            self._left()

    def off_the_line(self) -> None:
        if self.on_line:
            print(file=sys.stderr)
            self._left()

    def _left(self) -> None:
        global _drawn
        self.on_line, self.drawn = False, 0
        if _drawn is self:
            _drawn = None


class ItemParts(ProgressLine):
    """The parts of one item (an image, a mask) of a command on a terminal, where one big item takes
    seconds (a 24 MP photo at full resolution: its encoder, decoder, .qgt): ``qgn CMD: [i/n] NAME:
    decoder level 2 (9/13)``, drawn at each part - in a batch only once the item has taken
    ``SHOWN_AFTER_S`` (a batch of small items draws nothing); no part is skipped, or the line would
    name one that ended while the next runs. ``begin(i, path)`` starts item ``i``; ``part(what)``
    one before the counted ones (reading the file); ``session`` is
    ``qgn.infer.ImageSession.run``'s ``progress`` (its parts come first); ``writing(k, what)``
    before the k-th of the ``writes`` parts after them (files written). The caller blanks the
    line (``clear``) before its item's own line or failure.

    In a batch the line ends with the batch's time left (``· about 1 min 10 s left``, from
    ``time_left``, the batch's own ``TimeLeft`` if it has one, counting down within an item): each
    big item's parts replace the batch's count line on the one row, which said it only every 10
    files and was blanked at once by the next file's parts (``qgn convert`` of 25 big masks almost
    never showed its count or time left)."""

    SHOWN_AFTER_S = 0.5

    def __init__(self, command: str, n: int, writes: int = 0, time_left: TimeLeft | None = None):
        super().__init__(64, sys.stderr.isatty())
        if time_left is not None:
            self.time_left = time_left
        self.command, self.n, self.writes = command, n, writes
        self.head, self.total, self.started, self.done = "", 0, 0.0, 0

    def begin(self, i: int, path) -> None:
        from qgn.shown import one_line

        self.head = f"qgn {self.command}: [{i + 1}/{self.n}] {one_line(path.name)}: "
        self.total, self.started, self.done = 0, time.monotonic(), i
        if self.shown and self.n > 1:
            self.time_left.counting_down(i, self.n)  # the estimate made as the item starts

    def part(self, what: str) -> None:
        self._draw(0, what)

    def session(self, done: int, total: int, what: str) -> None:
        if not total:  # a part before the counted ones
            self.part(what)
            return
        self.total = total + self.writes
        if done < total or what != "done":  # (the session's last word: the next part is drawn instead)
            self._draw(done, what)

    def writing(self, k: int, what: str) -> None:
        self.total = max(self.total, self.writes)
        self._draw(self.total - self.writes + k - 1, what)

    def _draw(self, done: int, what: str) -> None:
        if not self.shown or (self.n > 1 and time.monotonic() - self.started < self.SHOWN_AFTER_S):
            return
        text = f"{self.head}{what} ({done}/{self.total})" if self.total else f"{self.head}{what}"
        suffix = self.time_left.count_down_suffix(self.done, self.n) if self.n > 1 else ""
        if suffix:
            limit = room()
            if limit is not None and len(text) + len(suffix) > limit:  # the name and part are cut, not the time left
                text = text[:max(limit - len(suffix) - 1, 0)] + "…"
            text += suffix
        self.show(text)


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
        self.draw(i)
        if i == self.n:
            self.off_the_line()

    def draw(self, i: int) -> None:
        """Draw the line for ``i`` files done now, whatever ``i`` (back on the row after a big
        file's ``ItemParts`` line)."""
        self.show(f"{self.prefix}{i}/{self.n} files{self.time_left.suffix(i, self.n)}")
