"""Time left in a batch of items (an import, an export, predictions, an evaluation), for the
progress lines of the command line and the app's dialogs alike.

``time_left = TimeLeft()`` starts a clock; ``time_left(done, total)`` is ``"about 1 min 05 s
left"`` from the mean time per item since the first report of an item done, or ``""`` while nothing
is known yet: until a report after that first one, in the batch's first second (a batch that short
needs no estimate), and once every item is done.

The items of the first report are left out of the mean: their time holds the batch's start-up
(imports, opening a data set, building a model, the first iteration's allocations). ``qgn train``
at iteration 10 of 800 said "about 7 h 28 min left" from it where ~35 min were left.
"""
from __future__ import annotations

import time
from collections.abc import Callable

#: No estimate in a batch's first second.
SHOW_AFTER_S = 1.0
#: Items done in less time in all than this are not timed by it (six ticks of Windows' 15.6 ms clock):
#: a count-down's floor counts the item under way too (``TimeLeft._least_per_item``).
MEASURABLE_S = 0.1


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 07 s"``, ``"2 h 05 min"``: rounded to the unit shown last."""
    total = max(0, int(round(seconds)))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min"


class TimeLeft:
    """The time left of a batch, from the mean time of the items done after the first report
    (create it when the batch starts).

    ``clock``: seconds, monotonic (None: ``time.monotonic``; tests pass their own)."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self.clock = clock or time.monotonic
        self.start = self.clock()
        self.first: tuple[int, float] | None = None  # (done, time) at the first report of an item done
        self.made: tuple[int, int, float | None, float] | None = None  # counting_down's (done, total, estimate, time)

    def seconds(self, done: int, total: int) -> float | None:
        """Estimated seconds until all ``total`` items are done when ``done`` are, or None while
        unknown (see the module docstring)."""
        now = self.clock()
        if done <= 0:
            return None
        if self.first is None or done < self.first[0]:  # (a count that went back: a new batch)
            self.first = (done, now)
            return None
        first_done, first_time = self.first
        if done <= first_done or done >= total or now - self.start < SHOW_AFTER_S:
            return None
        return (now - first_time) / (done - first_done) * (total - done)

    def counting_down(self, done: int, total: int) -> float | None:
        """``seconds`` as estimated when ``done`` of ``total`` were first reported, less the time
        since: a line redrawn while its count stands still (the part under way inside an item)
        counts down - ``seconds`` grows with the clock then), never below the items after the one
        under way at the mean time of the items done (``_least_per_item``): an item that runs past
        its estimate leaves those still to do, and the line said no time left (or "about 0 s
        left") for as long as it overran - 100 files of 6 s, the 60th taking 400 s: ~150 s with
        nothing where 40 × 6 s = 4 min of files were known to remain; it holds at 4 min (the
        overrun says nothing of the files after it: counting it as done now made the line climb to
        8 min 29 s). Only where the items done took no measurable time (an estimate of 0 s: two
        reports in one tick of a coarse clock, which said "under a second left" for 47 files
        however long they took) the item under way counts, as if done now. 0 only during the last
        item."""
        made = self._made(done, total)
        return None if made is None else max(made[0] - made[1], made[2] or 0.0)

    def count_down_suffix(self, done: int, total: int) -> str:
        """``counting_down`` worded to end a line (``count_down_suffix``): "longer than estimated"
        only once the last item (``done == total - 1``) ran past its estimate, never with items
        after the one under way (an estimate of 0 s for 48 files left said so one tick later)."""
        made = self._made(done, total)
        return "" if made is None else count_down_suffix(*made)

    def _made(self, done: int, total: int) -> tuple[float, float, float | None] | None:
        """(the estimate made when ``done`` of ``total`` were first reported, the seconds since,
        the estimate of the items after the one under way, None when none follow it), or None
        while unknown."""
        now = self.clock()
        if self.made is None or self.made[:2] != (done, total):
            self.made = (done, total, self.seconds(done, total), now)
        left, made = self.made[2:]
        if left is None:
            return None
        after = None if done == total - 1 else self._least_per_item(done, made, now) * (total - done - 1)
        return left, now - made, after  # (seconds() is None unless done < total)

    def _least_per_item(self, done: int, made: float, now: float) -> float:
        """The seconds an item after the one under way takes at the least, as known ``now``: the
        mean of the items done since the first report (``made``: when ``done`` was first reported).
        Where those took too little time to measure (under ``MEASURABLE_S`` in all: two reports in
        one tick of a coarse clock make it 0) the item under way counts too, as if done now."""
        first_done, first_time = self.first  # (set: ``seconds`` gave an estimate)
        done_mean = (made - first_time) / (done - first_done)
        if made - first_time >= MEASURABLE_S:
            return done_mean
        return max(done_mean, (now - first_time) / (done - first_done + 1))

    def estimating(self, done: int, total: int) -> bool:
        """True while items are done but too few to say the time left (``seconds`` is None), and
        more are to come."""
        return 0 < done < total and self.seconds(done, total) is None

    def __call__(self, done: int, total: int) -> str:
        """``left_phrase`` of ``seconds``: ``"about 12 s left"``, ``"under a second left"``, or
        ``""`` while unknown."""
        left = self.seconds(done, total)
        return "" if left is None else left_phrase(left)

    def suffix(self, done: int, total: int) -> str:
        """``" · about 12 s left"`` to end a progress line, or ``""`` (``left_suffix``)."""
        return left_suffix(self.seconds(done, total))


#: What a count-down says once it has run past its estimate with no known work after it.
OVERRUN_PHRASE = "longer than estimated"


def left_phrase(seconds: float) -> str:
    """The one wording of an estimate of the time left, for the command line and the app alike:
    ``"about 12 s left"``; ``"under a second left"`` under a second, 0 included (it said "about 0 s
    left"; two reports within one tick of a coarse clock - Windows' ticks 15.6 ms - estimate 0 s).
    A count-down that ran past its estimate is worded by ``count_down_suffix``."""
    if seconds >= 1:
        return f"about {format_duration(seconds)} left"
    return "under a second left"


def left_suffix(seconds: float | None) -> str:
    """``" · " + left_phrase(seconds)`` to end a progress line, or ``""`` (``seconds`` None: not
    known yet)."""
    return "" if seconds is None else f" · {left_phrase(seconds)}"


def count_down_suffix(left: float | None, elapsed: float, after: float | None = None) -> str:
    """The one wording of a count-down, to end a line: ``left`` seconds estimated ``elapsed``
    seconds ago, never below ``after`` (the estimate of the work after the part under way: a part
    that overran leaves that work to do), as ``left_suffix`` words it. ``after`` None: no work
    follows the part under way - only then, once it ran past ``left``, ``" · longer than
    estimated"`` (how long is left is not known then; a line that kept saying a second for many
    seconds would not be true, and one that dropped its time left looked as if it had forgotten
    it). With work after it (``after`` a number, 0 included: an estimate of 0 s for 48 files left)
    it never says so (it did one tick after such an estimate). A fresh estimate of 0 s is "under a
    second left"."""
    if left is None:
        return ""
    if after is None and elapsed > left:
        return f" · {OVERRUN_PHRASE}"
    return left_suffix(max(left - elapsed, after or 0.0))


class TimedText(str):
    """A progress line that ends with its time left: ``head``, then ``left_suffix(left)`` (``left``
    None: the line is ``head`` alone). A str, so it reads as the line; a display that counts down
    (the busy note over the image) reads ``head``, ``left`` and ``after``: the estimate of the
    steps after the one under way, below which its count-down does not go, None when none follow
    it (``count_down_suffix``)."""

    def __new__(cls, head: str, left: float | None, after: float | None = None):
        text = super().__new__(cls, head + left_suffix(left))
        text.head, text.left, text.after = head, left, after
        return text


class StepCosts:
    """Seconds per unit of work of each kind of step (an encoder stage, a decoder level), as
    measured by this process's earlier runs: the time left of a run whose steps cost very
    differently (a prediction's first level takes a tenth of its last), scaled by each step's work
    (the pixels an encoder stage covers, the sites a decoder level computes). Honest or silent: no
    estimate while a step to come was never measured, or its work cannot be scaled."""

    def __init__(self):
        self.rates: dict[object, float] = {}  # kind → seconds per unit of work (its latest run)
        self.work: dict[object, float] = {}  # kind → its work in its latest run (0: it had none)

    def record(self, kind, work: float, seconds: float) -> None:
        self.work[kind] = work
        if work > 0 and seconds >= 0:
            self.rates[kind] = seconds / work

    def seconds(self, steps) -> float | None:
        """The estimated seconds of ``steps`` ((kind, work) pairs, in order), or None if a kind with
        work was never measured. A work of None (not known yet: a decoder level whose parent is not
        computed) is the step before's, scaled as in the latest run that measured both; None if
        there is no such run."""
        total, before = 0.0, None
        for kind, work in steps:
            if work is None:
                if before is None:
                    return None
                before_kind, before_work = before
                if before_work == 0:
                    work = 0.0  # (nothing below a level with no sites)
                elif self.work.get(before_kind, 0) > 0 and kind in self.work:
                    work = before_work * self.work[kind] / self.work[before_kind]
                else:
                    return None
            if work > 0:
                rate = self.rates.get(kind)
                if rate is None:
                    return None
                total += rate * work
            before = (kind, work)
        return total
