"""The per-project head in the app, and the model's out-of-domain warning (issue #21).

``HeadController`` keeps a ``qgn.project_head.HeadTrainer`` for the open project. After every save
(``ProjectController.saved``) it reads, on a thread of its own, the saved annotations it has not
learnt yet (or that changed), takes their frozen encoder features with its own CPU copy of the
model, refits the head — seconds — and writes it to the project's ``head.safetensors`` (never the
model file). The Annotate panel's "Head" start then labels an image with it. A new image starts
from the head by default only once the head has beaten the model on saved work it had not trained
on (``default_source``; ``qgn.project_head.prefer_head``): before each refit, every image saved for
the first time is scored with the head fitted before it and with the model's start (pixel
accuracy against the saved annotation); a head fitted on one image is untested, and a head can be
worse than the model, and then the model's start stays the default and the status bar says why.

Each prediction comes with the image's domain verdict (``RenderResult.domain``: the inference
engine scores the encoder features it computed against the model's domain reference,
``<model>.domain.json``; ``qgn.domain``). Where the image is out of the model's domain the canvas
says so, and a new annotation starts empty instead of from the prediction or the head (the
carried start, the person's own labels, still comes first where its record prefers it).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6 import QtCore


START_NOTE = {  # the domain warning's last words: what the image's annotation starts (or started) from
    "empty": " This image starts from an empty map; Start from → Prediction takes the model's.",
    "previous": " This image starts from the image before's labels (carried); Start from → Empty clears them.",
    "prediction": " Check its start closely, or Start from → Empty.",
}


class HeadController(QtCore.QObject):
    """See the module docstring. ``workspace``: the model's info, the class set, the project and the
    current document; ``annotator``: where the head offers its start; ``projects``: its saves
    (a refit follows each); ``engine``: the InferenceWorker whose model's features the head reads."""

    fitted = QtCore.Signal(object)  # ProjectHead

    def __init__(self, workspace, annotator, projects, engine, parent=None):
        super().__init__(parent)
        from qgn_studio.jobs import JobRunner

        self.workspace, self.annotator, self.projects, self.engine = workspace, annotator, projects, engine
        self.runner = JobRunner(self)
        self.head = None  # the fitted ProjectHead (UI thread's copy)
        self.fitting = False
        self._trainer = None  # runner thread only
        self._learnt: dict[str, int] = {}  # runner thread only: image key → annotation mtime_ns learnt
        self._model = None  # (path, QGN) on the runner thread
        self._fingerprinted = None  # runner thread only: (weakref to a model, its encoder_fingerprint)
        self._last_head = None  # runner thread only: the head the next saved images are judged with
        self._generation = 0  # bumped when the project, model or classes change: late results are dropped
        self._stop = threading.Event()  # set at shutdown: a fit under way ends at its next step
        self._queued = None  # (project, classes, generation) of the fit submitted and not started yet
        projects.saved.connect(lambda _count: self.refit())
        workspace.project_changed.connect(self._project_changed)
        workspace.model_changed.connect(lambda _info: self.model_changed())
        annotator.class_set_edited.connect(lambda _classes: self._reset(load=False))
        self.fitted.connect(self._fitted)
        annotator.session_created.connect(lambda doc: self.show_verdict(doc) if doc is workspace.current else None)
        annotator.edited.connect(self._start_maybe_changed)  # a start over, or its undo / redo
        self._noted = None  # (document, its start's note) the domain warning was last written with
        self._closed = False  # the user closed that warning: a start over, or its undo / redo, keeps it closed
        workspace.message_dismissed.connect(self._dismissed)
        annotator.extra_sources["head"] = (self.available, self.predict)
        annotator.default_source = self.default_source

    # ------------------------------------------------------------------ state
    def _model_path(self) -> Path | None:
        info = self.workspace.model_info
        return None if info is None else Path(info.path)

    def available(self, doc=None) -> bool:
        """Whether a head for the current classes and model is ready."""
        classes = self.workspace.classes
        return (self.head is not None and classes is not None and self.head.fits(classes)
                and self.head.model == self._model_name())

    def _model_name(self) -> str:
        path = self._model_path()
        return "" if path is None else path.name

    def default_source(self, doc) -> str:
        """The start of a new annotation: empty where the model's domain check says the image is
        unlike its training images (``outside``); else the head once it has beaten the model on
        saved images it had not trained on (``ProjectHead.preferred``); else the prediction.
        Outside the domain the model's start and the head's (which reads the model's features, and
        whose record only says it beat the model's start) cost more actions than an empty map on a
        sequence the model never saw (benchmarks/RESULTS.md, ``qgn bench`` scenario app_domain)."""
        classes = self.workspace.classes
        if self.outside(doc) and classes is not None and classes.ignore_index is not None:
            return "empty"  # (a class set without an ignore value has no empty map)
        return "head" if self.available(doc) and self.head.preferred else "prediction"

    def predict(self, doc):
        """(H, W) class ids of ``doc``'s image by the head (called on a job thread)."""
        head = self.head
        if head is None or doc.image is None:
            raise ValueError("no project head yet: it is fitted after the first saved annotation")
        return head.predict(self._load_model(), doc.image)

    def features_model(self):
        """The model whose features the head reads (job threads; see ``_load_model``)."""
        return self._load_model()

    def _load_model(self):
        """The model whose features the head reads: the inference engine's own (read-only forward
        passes; a second copy would cost memory, and building one holds Python's GIL long enough to
        stall the UI), else a copy loaded here."""
        from qgn.model.checkpoint import load_model

        path = self._model_path()
        if path is None:
            raise ValueError("no model loaded: the head reads the model's features")
        engine = getattr(self.engine, "engine", None)
        if getattr(engine, "model", None) is not None:
            return engine.model
        if self._model is None or self._model[0] != path:
            model = load_model(path).eval()
            self._model = (path, model)
        return self._model[1]

    # ------------------------------------------------------------------ fitting
    def _project_changed(self, project) -> None:
        self._reset(load=True)

    def _reset(self, load: bool) -> None:
        if self._stop.is_set():
            return  # the window closed (the project goes with it): nothing to forget or fit
        self._generation += 1
        generation = self._generation
        self.head = None
        self.runner.submit(self._forget)
        project = self.projects.project
        if load and project is not None and project.head_path.is_file():
            path = project.head_path
            self.runner.submit(lambda: self._read_head(path),
                               lambda loaded: self._loaded(*loaded, generation),
                               lambda text: self._say(f"The project head could not be read ({text}); it is refitted "
                                                      "at the next save"))
        elif not load and project is not None:
            self.refit()  # the classes changed: learn them again from the saved annotations

    def _forget(self) -> None:
        self._trainer, self._learnt, self._last_head = None, {}, None

    def _read_head(self, path):
        """On the runner thread: (the head read from ``path``, the fingerprint of the model whose
        features it reads, why that model could not be loaded or ""). The head file's own failure
        raises (the job's message says the head could not be read); the model's is returned, so
        that what is said names what failed."""
        from qgn.project_head import ProjectHead
        from qgn_studio.document import describe_error

        head = ProjectHead.load(path)
        try:
            return head, self._fingerprint(), ""
        except Exception as exc:  # the model file: missing, unreadable, another format
            return head, None, describe_error(exc)

    def _fingerprint(self, model=None) -> str | None:
        """On the runner thread: ``qgn.project_head.encoder_fingerprint`` of ``model``, by default the
        one whose features the head reads (None without a model), hashed once per model object."""
        import weakref

        from qgn.project_head import encoder_fingerprint

        if model is None:
            if self._model_path() is None:
                return None
            model = self._load_model()
        known = self._fingerprinted
        if known is None or known[0]() is not model:
            known = self._fingerprinted = (weakref.ref(model), encoder_fingerprint(model))
        return known[1]

    def _loaded(self, head, fingerprint: str | None, model_error: str, generation: int) -> None:
        if generation != self._generation:
            return
        if model_error:  # the head was read; which features it reads cannot be checked without the model
            self._say(f"The model {self._model_name()} could not be loaded to check which features the project "
                      f"head reads ({model_error}); the head is not used until a model loads", 8000)
            return
        classes = self.workspace.classes
        if not head.reads(self._model_name(), fingerprint) or classes is None or not head.fits(classes):
            self.refit()  # another model's features (by name, or an encoder that learnt) or classes: learn again
            return
        self.head = head
        self.runner.submit(lambda: setattr(self, "_last_head", head))  # the record goes on from it
        self.annotator.refresh_status()

    def refit(self) -> None:
        """Learn the saved annotations not learnt yet and refit the head, in the background."""
        project, model_path = self.projects.project, self._model_path()
        classes = self.workspace.classes
        if self._stop.is_set() or project is None or model_path is None or classes is None or \
                classes.ignore_index is None:
            return  # (the window closed: the next save fits it again)
        generation = self._generation
        key = (project, classes, generation)
        if self._queued == key:
            return  # the fit waiting to start reads the project when it starts: it learns this save too
        self._queued = key
        self.fitting = True
        self._say("Fitting the project head in the background…", 3000)
        self.runner.submit(lambda: self._fit(project, classes, key),
                           lambda head: self.fitted.emit((head, generation)),
                           lambda text: self._failed(text), "Fitting the project head")

    def _fit(self, project, classes, key=None):
        """On the runner thread: features of new/changed annotations, the fit, the head file.
        Started, it no longer takes in later saves: the next save queues another fit."""
        if self._queued == key:
            self._queued = None
        from qgn.project_head import HeadTrainer, pixel_features
        from qgn_studio.document import read_image

        start = time.perf_counter()
        if self._trainer is None or self._trainer.classes != classes:
            self._trainer, self._learnt = HeadTrainer(classes), {}
            last = self._last_head
            if last is not None and last.fits(classes):
                self._trainer.record.update(last.record)  # a head read from the project: its record
        model = self._load_model()
        listed = (project.root / project.annotation_dir).is_dir()  # annotated() lists an absent folder as empty
        annotated = project.annotated()
        present = {image.key for image in annotated}
        if listed:  # else nothing is known gone: the record, which no fit makes again, is not dropped on it
            known = set(self._trainer.samples) | set(self._trainer.record)  # the record: a head file's too
            for key in [key for key in known if key not in present]:
                self._trainer.remove(key)  # removed from the project (or its annotation gone): not learnt or
                self._learnt.pop(key, None)  # counted any more (an image added again is judged again)
        for image in annotated:
            if self._stop.is_set():
                return None
            path = project.annotation_path(image)
            stamp = path.stat().st_mtime_ns
            if self._learnt.get(image.key) == stamp:
                continue
            label = project.load_annotation(image)
            picture = read_image(image.path)
            if label is None or label.shape != picture.shape[:2]:
                continue
            features = pixel_features(model, picture)
            self._judge(image.key, model, picture, label, features)
            self._trainer.add(image.key, model, picture, label, features=features)
            self._learnt[image.key] = stamp
        head = self._trainer.fit(should_stop=self._stop.is_set)
        if head is None:
            return None
        self._last_head = head
        head.model = self._model_name()
        head.encoder = self._fingerprint(model) or ""  # the model its features were read with
        head.fit_seconds = time.perf_counter() - start  # features of the new images included
        head.save(project.head_path)
        return head

    def _judge(self, key: str, model, picture, label, features) -> None:
        """On the runner thread: score the head fitted before ``key`` was saved, and the model's
        start, against its saved annotation — only for an image that head never trained on."""
        from qgn.annotation.start import prediction_start

        last = self._last_head
        if last is None or key in last.trained or key in self._trainer.samples or key in self._trainer.record:
            return
        if last.images and not last.trained:  # a head file from before the record: what it learnt is unknown
            return
        if not last.fits(self._trainer.classes):
            return
        self._trainer.judge(key, last.predict(model, picture, features), prediction_start(model, picture), label)

    def _fitted(self, payload) -> None:
        head, generation = payload
        self.fitting = False
        if generation != self._generation or head is None:
            return
        self.head = head
        fitted = f"Project head fitted on {head.images} image{'s' if head.images != 1 else ''} in {head.fit_seconds:.1f} s"
        self._say(f"{fitted}: {head_verdict(head)}", 8000)
        self.annotator.refresh_status()

    def _failed(self, text: str) -> None:
        self.fitting = False
        self._say(f"The project head could not be fitted: {text}", 8000)

    # ------------------------------------------------------------------ out-of-domain warning
    @staticmethod
    def verdict(doc):
        """``doc``'s ``qgn.domain.DomainVerdict``, judged with its prediction (``RenderResult.domain``),
        or None (no prediction yet, or the model has no domain reference)."""
        result = None if doc is None else doc.result
        return None if result is None else result.domain

    def outside(self, doc) -> bool:
        """Whether the model's domain check says ``doc``'s image is unlike its training images."""
        verdict = self.verdict(doc)
        return verdict is not None and not verdict.inside

    def show_verdict(self, doc) -> None:
        """The canvas's domain warning for ``doc`` (cleared when it is in domain or unknown)."""
        verdict, info = self.verdict(doc), self.workspace.model_info
        if verdict is None or verdict.inside or info is None:
            self._noted = None
            self.workspace.clear_message("domain")
            return
        session = doc.annotation
        source = self.annotator.default_source(doc) if session is None else session.started_from
        self._noted, self._closed = (doc, START_NOTE.get(source, "")), False
        self.workspace.show_message(verdict.describe(info.name) + self._noted[1], "warning", "domain")

    def _start_maybe_changed(self, session) -> None:
        """After an edit, undo or redo: the warning's last words follow the start on screen, as the
        Annotate dock's header does (written again only when that start's note changed; an ordinary
        stroke costs a look down the undo log, as the header's own line). A warning the user closed
        stays closed: a start over, or its undo / redo, changes its words but is no reason to show it
        again (it showed again with them); the next image switch writes it anew."""
        doc = self.workspace.current
        if (self._noted is not None and doc is self._noted[0] and doc.annotation is session
                and START_NOTE.get(session.started_from, "") != self._noted[1]):
            if self._closed:  # closed by the user: it stays closed, whatever its words would be now
                self._noted = (doc, START_NOTE.get(session.started_from, ""))
                return
            self.show_verdict(doc)

    def _dismissed(self, key: str) -> None:
        if key == "domain":
            self._closed = True

    def model_changed(self) -> None:
        self._noted = None
        self.workspace.clear_message("domain")  # the old model's verdict; the new one's comes with its prediction
        self._reset(load=True)

    def _say(self, text: str, ms: int = 5000) -> None:
        self.workspace.show_status(text, ms)

    def shutdown(self) -> None:
        """The window closes: a fit under way or queued stops at its next step (the head is only
        derived from the saved annotations; the next save fits it again), so closing never waits
        for a whole fit."""
        self._stop.set()
        self.runner.stop()


def head_verdict(head) -> str:
    """What new images start from, and why (``ProjectHead.preferred`` and its record), short enough
    for the status bar at 1280 px."""
    from qgn.project_head import recent_accuracy

    recent = recent_accuracy(head.record.values())
    if recent is None:
        return "new images start from the prediction until the head beats it on a saved image (Start from → Head)"
    count, h, m = recent
    n = f"last {count} saved images" if count > 1 else "last saved image"
    work = f"{n}: head {100 * h:.1f} % of pixels right, prediction {100 * m:.1f} %"
    return f"new images start from it ({work})" if head.preferred else f"new images start from the prediction ({work})"
