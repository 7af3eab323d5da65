"""What a new annotation starts from, judged by the effort each start cost on the images saved before.

``StartController`` wraps the annotator's ``default_source`` outermost (over the carry's and the
head's). Each image saved for the first time is judged on a job thread of its own: the starts it
had been offered — an empty map, the prediction, the project head's (unless the head had trained
on it) and the image before's labels carried onto it (when that one is saved and of its size) —
are each corrected to the saved annotation by the simulated annotator with the image tools
(``qgn.bench.annotate.judge_starts``: actions, 1 px tolerance, to 99 %). A new image then starts
from the offered start that cost least over the last three judged images
(``qgn.annotation.start.cheapest_start``); before any image was judged, the inner default stays —
except the prediction of an image the model's domain check calls unlike its training images,
which gives way to an empty map (``outside_domain``).
Pixel accuracy cannot make this choice: an empty map gets no pixel right, yet on a scene the model
does not know it is often the cheaper start (benchmarks/RESULTS.md). The judge starts half a
second after the save and waits before each of its steps (each simulated action) while the
inference worker computes a prediction: the next image's prediction, which the person waits for,
goes first. The record lives for the session of one project, model and class set.
"""
from __future__ import annotations

import threading

from PySide6 import QtCore

SOURCES = {"empty": "empty", "model": "prediction", "head": "head", "previous": "previous"}  # start → annotator source
WORDS = {"empty": "an empty map", "model": "the prediction", "head": "the project head",
         "previous": "the image before's labels"}
QUIET_S = 0.5  # a judge starts this long after the save, so that the next image's prediction goes first
PREFERENCE = ("previous", "head", "model", "empty")  # on a tie, as the bench's app_effort


class _Closing(Exception):
    """The window closes: a judge under way ends at its next step."""


class StartController(QtCore.QObject):
    """See the module docstring. ``workspace``: the project, classes and model; ``annotator``: whose
    ``default_source`` it wraps; ``projects``: its ``image_saved``; ``head``, ``carry``: the head's
    and the carry's controllers (their starts); ``worker``: the InferenceWorker whose predictions
    the judge gives way to (None: it never waits)."""

    judged = QtCore.Signal(object, object)  # (generation, (key, {start: actions}))
    failed = QtCore.Signal(object, str)  # (generation, message)

    def __init__(self, workspace, annotator, projects, head=None, carry=None, worker=None, parent=None):
        super().__init__(parent)
        from qgn_studio.jobs import JobRunner

        self.workspace, self.annotator, self.projects = workspace, annotator, projects
        self.head, self.carry = head, carry
        self.runner = JobRunner(self)
        self.record: dict[str, dict[str, int]] = {}  # image key → {start: actions of the simulated annotator}
        self._generation = 0
        self._told_failure = False
        self._stop = threading.Event()
        self._predicting = threading.Event()  # set while the inference worker computes
        self._inner_default = annotator.default_source
        for inner in (head, carry):  # their verdicts on what new images start from give way to this one's
            if inner is not None:
                inner.decided_elsewhere = self.decides
        annotator.default_source = self.default_source
        if worker is not None:  # set on the worker's thread, read on the judge's: no queued delivery
            worker.busy_changed.connect(self._worker_busy, QtCore.Qt.ConnectionType.DirectConnection)
        projects.image_saved.connect(self.judge)
        workspace.project_changed.connect(self._forget)
        workspace.model_changed.connect(self._forget)
        annotator.class_set_edited.connect(self._forget)
        self.judged.connect(self._judged)
        self.failed.connect(self._failed)
        for inner in (head, carry):  # after the head's and the carry's own messages: this one says the rule
            if inner is not None:
                (inner.fitted if inner is head else inner.judged).connect(lambda *_args: self.say())

    def _worker_busy(self, busy: bool, _text: str = "") -> None:
        (self._predicting.set if busy else self._predicting.clear)()

    def _forget(self, _changed=None) -> None:
        self._generation += 1
        self.record = {}
        self._told_failure = False

    def decides(self) -> bool:
        """Whether a judged start decides what new images start from (the inner controllers' own
        verdicts then say nothing about it)."""
        return bool(self.record)

    # ------------------------------------------------------------------ the default
    def offered(self, doc) -> list[str]:
        """The starts a new annotation of ``doc`` can have, in the order of preference on a tie."""
        classes = self.workspace.classes
        offered = []
        if self.carry is not None and self.carry._same_size(doc):
            offered.append("previous")
        if self.head is not None and self.head.available(doc):
            offered.append("head")
        offered.append("model")
        if classes is not None and classes.ignore_index is not None:
            offered.append("empty")
        return offered

    def chosen(self, doc) -> str | None:
        """The cheapest offered start so far (``cheapest_start``), or None before any was judged."""
        from qgn.annotation.start import cheapest_start

        return cheapest_start(self.record.values(), self.offered(doc)) if self.record else None

    def default_source(self, doc) -> str:
        """The start of a new annotation: the offered start that cost least on the last judged
        images; else the inner default."""
        try:
            chosen = self.chosen(doc)
        except Exception as exc:  # a start must come: the inner default, and the person is told once
            from qgn_studio.document import describe_error

            self._tell_failure(f"The start for new images could not be chosen ({describe_error(exc)})", usual=True)
            chosen = None
        inner = self._inner_default(doc) if chosen is None else None
        if inner == "prediction" and self.outside_domain(doc) and "empty" in self.offered(doc):
            return "empty"  # nothing judged yet, and the canvas already warns the prediction may be wrong
        return SOURCES[chosen] if chosen is not None else inner

    def outside_domain(self, doc) -> bool:
        """Whether the model's domain check (``qgn.domain``, the head controller's verdicts: the
        canvas's warning) says ``doc``'s image is unlike the model's training images. Before any
        image is judged an empty start is taken there instead of the prediction: on a CamVid
        sequence a model never saw, every frame scored 2.7-3.2 and its prediction cost more
        actions than an empty map (benchmarks/RESULTS.md, "A sequence the model never saw")."""
        verdicts = getattr(self.head, "verdicts", None) or {}
        verdict = verdicts.get(doc.path) if doc is not None else None
        return verdict is not None and not verdict.inside

    # ------------------------------------------------------------------ the judge
    def judge(self, doc, label) -> None:
        """After ``doc``'s annotation ``label`` was saved, the first time: judge the starts it was
        offered against it, on the judge's thread. The head is taken now, before the refit this
        save starts, and left out where it trained on the image."""
        key = self.annotator.file_key(doc)
        classes = self.workspace.classes
        if key is None or key in self.record or classes is None or doc.image is None:
            return
        head = None
        if self.head is not None and self.head.available(doc) and key not in self.head.head.trained:
            head = self.head.head
        previous = self.carry is not None and self.carry._same_size(doc)
        generation, image = self._generation, doc.image

        def run():
            from qgn.bench.annotate import judge_starts

            try:
                self._stop.wait(QUIET_S)  # the person steps to the next image: its prediction first
                self._give_way()
                starts = self._starts(doc, image, label, classes, head, previous)
                return key, judge_starts(image, label, starts, classes, pause=self._give_way)
            except _Closing:
                return None

        self.runner.submit(run, lambda result: self.judged.emit(generation, result),
                           lambda text: self.failed.emit(generation, text))

    def _starts(self, doc, image, label, classes, head, previous) -> dict:
        """(job thread) {start: (H, W) map} of the starts ``doc`` was offered."""
        import numpy as np

        starts = {}
        if classes.ignore_index is not None:
            starts["empty"] = np.full(label.shape, classes.ignore_index, np.int64)
        try:  # the prediction may be dropped meanwhile (the UI thread keeps a recent few)
            starts["model"] = self.annotator.start_label(doc, "prediction")
        except ValueError:
            pass
        if head is not None:
            self._give_way()
            starts["head"] = head.predict(self.head.features_model(), image)
        if previous:
            self._give_way()
            starts["previous"] = self.carry.predict(doc)
        return starts

    def _give_way(self) -> None:
        """(job thread) Wait while the inference worker computes a prediction the person waits for;
        at shutdown end the judge here (it only scores: closing never waits for a whole judge)."""
        while self._predicting.is_set() and not self._stop.is_set():
            self._stop.wait(0.05)
        if self._stop.is_set():
            raise _Closing

    def _judged(self, generation: int, result) -> None:
        if generation != self._generation or result is None or not result[1]:
            return
        key, actions = result
        self.record[key] = actions
        self.say()

    def _failed(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self._tell_failure(f"The starts of a saved image could not be judged ({text})")

    def _tell_failure(self, text: str, usual: bool = False) -> None:
        """Once per project and model: new images keep the start judged before, or the usual one."""
        if not self._told_failure:
            self._told_failure = True
            kept = "as judged before" if self.record and not usual else "from their usual start"
            self.workspace.show_status(f"{text}; new images start {kept}", 8000)

    def say(self) -> None:
        """The status bar: what new images start from, and the actions each start took (nothing
        before any image was judged: the inner controllers speak then)."""
        if not self.record:
            return
        doc = self.workspace.current
        text = verdict(self.record.values(), self.offered(doc) if doc is not None else list(PREFERENCE))
        if text:
            self.workspace.show_status(text, 8000)

    def shutdown(self, wait: bool = True) -> None:
        """The window closes: a judge under way ends at its next action, the queued ones do nothing
        (they only score; ``wait``: wait for them)."""
        self._stop.set()
        self.runner.stop(wait)


def _count(mean: float) -> str:
    return f"{mean:.0f}" if mean == round(mean) else f"{mean:.1f}"


def verdict(record, offered) -> str:
    """"New images start from X: it took N actions per image on the last 3 saved images, Y M (simulated)": the
    start ``cheapest_start`` picks among ``offered`` and the means of the others over the window."""
    from qgn.annotation.start import EFFORT_WINDOW, cheapest_start

    recent = list(record)[-EFFORT_WINDOW:]
    chosen = cheapest_start(recent, offered)
    if chosen is None:
        return ""
    means = {}
    for name in offered:
        seen = [r[name] for r in recent if name in r]
        if seen:
            means[name] = sum(seen) / len(seen)
    over = "the last saved image" if len(recent) == 1 else f"the last {len(recent)} saved images"
    others = ", ".join(f"{WORDS[n]} {_count(means[n])}" for n in offered if n in means and n != chosen)
    text = f"New images start from {WORDS[chosen]}: it took {_count(means[chosen])} action{'' if means[chosen] == 1 else 's'} per image on {over}"
    return f"{text}, {others} (simulated)" if others else f"{text} (simulated)"
