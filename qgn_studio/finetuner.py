"""Fine-tune on corrections: gather the corrected images, train in a background thread, compare,
then keep (save under a new name and predict with it) or revert.

Corrected images are those whose annotation differs from the prediction it is compared with or
is marked done, and — with a project open — every image with a saved annotation. The
``FinetuneJob`` thread copies the model in use (the inference thread keeps using the original),
runs ``qgn.train.finetune.finetune`` with progress and cancel, then ``compare_models`` on the same
images, all off the UI thread. What learns is the panel's choice: the decoder alone (the encoder
frozen, its features computed once), the encoder too, or Automatic — decided by the job on the
number of images it trains on (``qgn.train.finetune.auto_encoder``: from 32) and said in the
status; the kept model's record says what learnt and the recipe it ran (``ran_config``). A kept
model whose encoder learnt has no domain reference (``qgn.domain.carry_reference``), and the
project head refits on its features (``HeadController``: the head names the encoder it read).
Keep asks for a file name (``ask_save_path``, replaceable in tests;
the default is new, ``<model>-ft<N>.safetensors``, and an existing file is only replaced after
the file dialog's own confirmation; the original never), saves on the job thread and switches
the inference worker to the new model. Revert drops it.

Closing the window never drops a fine-tuned model silently (``close_check``): one neither kept nor
reverted is asked about (``ask_unkept``, replaceable in tests): "keep" saves it at once where Keep
would by default (a save that fails keeps the window open and says why), "discard", or "cancel"
(the window stays open); so is a fine-tune still running ("discard" stops it). What is discarded
goes only when the window really closes (``shutdown``): a later question's "cancel" keeps it.
A SIGTERM cannot ask: such a model — or the steps a running fine-tune has done — is set aside in
the scratch folder and offered at the next start (``set_aside``, ``offer_unkept``,
``qgn_studio.unkept_models``).

When the annotations' class set (the project's) has other classes than the model — another
number of classes or ignore value, e.g. after adding or deleting a class — the job first
transfers the model to it (``qgn.model.transfer``: classes both name keep their rows, new ones
start fresh) and the panel says what was kept, new and dropped. The same ids under other names
(a rename) only take the new names.
"""
from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from qgn_studio.discovery import resolved
from qgn_studio.document import describe_error, read_image
from qgn_studio.engine import configure_threads
from qgn_studio.panels.finetune import NOTHING_TO_TRAIN, FinetunePanel


@dataclass
class Correction:
    """One corrected image: its pixels and labels, or how to read them (on the job thread).

    image: (H, W, 3) uint8 or None (read from ``path``); label: (H, W) label map copy, or None
    (``load_label()`` reads it)."""

    name: str
    path: Path
    image: np.ndarray | None
    label: np.ndarray | None
    load_label: Callable[[], np.ndarray | None] | None = None

    def materialise(self) -> tuple[np.ndarray, np.ndarray] | None:
        image = self.image if self.image is not None else read_image(self.path)
        label = self.label if self.label is not None else (self.load_label() if self.load_label else None)
        return None if label is None else (image, label)


#: The passes over the images before the first step and after the last (the panel's status says
#: how far each is, with the time left).
READING = "Reading the corrected images"
ENCODING = "Encoding the images"
COMPARING = "Comparing before and after"


class FinetuneJob(QtCore.QThread):
    """Fine-tune, then compare; see the module docstring."""

    progress = QtCore.Signal(int, float)  # iteration, loss
    trained = QtCore.Signal(object)  # FinetuneResult
    compared = QtCore.Signal(object, object)  # (FinetuneResult, Comparison)
    failed = QtCore.Signal(str)
    transferred = QtCore.Signal(str)  # what a transfer to the annotations' classes kept, added and dropped
    passing = QtCore.Signal(str, int, int)  # a pass over the images before or after the steps: (what, done, total)
    learning = QtCore.Signal(str, int)  # what learns ("frozen" / "train", FinetuneConfig.encoder), images trained on

    def __init__(self, model, corrections: list[Correction], config, scheme: str = "pc", parent=None,
                 classes=None, learns: str | None = None):
        super().__init__(parent)
        self.model = model
        self.learns = learns  # "auto": auto_encoder on the images it trains on; None: config.encoder
        self.classes = classes
        self.corrections = corrections
        self.config = config
        self.scheme = scheme
        self._stop = threading.Event()
        self.names: list[str] = []
        self.result = None  # the FinetuneResult once trained (a cancelled one holds the steps done)

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        import dataclasses

        from qgn.train.finetune import FinetuneResult, auto_encoder, compare_models, comparison_split, finetune

        configure_threads()
        try:
            images, labels, names = [], [], []
            total = len(self.corrections)
            for done, correction in enumerate(self.corrections):
                if self._stop.is_set():  # (300 photos and their annotations take ~20 s to read)
                    self.result = FinetuneResult(self.model, [], 0, True)
                    self.trained.emit(self.result)
                    return
                self.passing.emit(READING, done, total)
                pair = correction.materialise()
                if pair is not None:
                    images.append(pair[0])
                    labels.append(pair[1])
                    names.append(correction.name)
            self.names = names
            before = self._for_classes(copy.deepcopy(self.model).eval())  # the inference thread keeps the original
            train, held = comparison_split(len(images))  # before/after on images it does not train on

            def pick(seq, idx):
                return [seq[i] for i in idx]

            if self.learns is not None:  # what learns, decided on the images it trains on
                encoder = auto_encoder(len(train)) if self.learns == "auto" else self.learns
                self.config = dataclasses.replace(self.config, encoder=encoder)
            self.learning.emit(self.config.encoder, len(train))

            result = finetune(before, pick(images, train), pick(labels, train), self.config,
                              progress=self.progress.emit, should_stop=self._stop.is_set, names=pick(names, train),
                              preparing=lambda done, total: self.passing.emit(ENCODING, done, total))
            self.result = result
            self.trained.emit(result)
            if result.cancelled or result.iterations_done == 0 or self._stop.is_set():
                return  # (cancelled after the last step: no comparison, nothing to keep)
            shown = held or train
            comparison = compare_models(before, result.model, pick(images, shown), pick(labels, shown), self.scheme,
                                        pick(names, shown),
                                        progress=lambda done, total: self.passing.emit(COMPARING, done, total),
                                        should_stop=self._stop.is_set)
            if comparison is None or self._stop.is_set():
                return  # cancelled while it compared: the result is dropped, as the cancel said
            comparison.held_out = bool(held)
            self.compared.emit(result, comparison)
        except Exception as exc:  # shown in the panel
            self.failed.emit(describe_error(exc))


    def _for_classes(self, model):
        """``model`` (a private copy) for the annotations' class set: renamed in place when the ids
        agree, else transferred (see the module docstring)."""
        import dataclasses

        from qgn.model.transfer import transfer_model

        classes, own = self.classes, model.config.classes
        if classes is None or classes == own:
            return model
        if classes.num_classes == own.num_classes and classes.ignore_index == own.ignore_index:
            model.config = dataclasses.replace(model.config, classes=classes)
            return model
        model, report = transfer_model(model, classes)
        self.transferred.emit(report.summary())
        return model


def ran_config(result):
    """The recipe ``result`` (a ``FinetuneResult``) ran with, what learnt included (a result without
    one: the default recipe for its iterations)."""
    from qgn.train.finetune import FinetuneConfig

    return result.config if result.config is not None else FinetuneConfig(iterations=result.iterations_done)


def default_model_path(original: Path, folder: Path) -> Path:
    """``folder/<stem>-ft<N>.safetensors`` for the smallest N whose weights and config are both new
    (a stem that already ends in ``-ft<K>`` is not extended again)."""
    stem = re.sub(r"-ft\d+$", "", Path(original).stem)
    n = 1
    while True:
        path = Path(folder) / f"{stem}-ft{n}.safetensors"
        if not path.exists() and not path.with_suffix(".json").exists():
            return path
        n += 1


FINETUNE = "fine-tune"  # its task line in the status bar (only while a cancelled run winds down)
STOP_WAIT_S = 10.0  # SIGTERM: how long a running fine-tune is given to stop at its next step


class Finetuner(QtCore.QObject):
    """The fine-tune dock's controller. ``workspace``: the open documents, the model's info and
    the class set; ``engine``: the InferenceWorker whose model is fine-tuned and which is handed
    the kept one (``engine.model``, ``use_model(model, path)``); ``projects``: the saved
    annotations and the project that remembers the kept model; ``jobs``: the JobRunner that
    saves; ``ask``: the dialogs (``qgn_studio.ask``)."""

    finished = QtCore.Signal(str)  # "compared", "cancelled", "failed"
    kept = QtCore.Signal(object)  # Path of the saved model

    def __init__(self, workspace, engine, projects, jobs, ask, parent=None):
        super().__init__(parent)
        self.workspace, self.engine, self.projects, self.jobs = workspace, engine, projects, jobs
        self.panel = FinetunePanel()
        self.job: FinetuneJob | None = None
        self.result = None
        self.comparison = None
        self.ask_save_path = ask.model_path  # (default Path) → (Path, overwrite confirmed) or None
        self.ask_unkept = ask.unkept_model  # (running, detail, path) → "keep" / "discard" / "cancel"
        self.ask_stop = ask.stop_finetune  # (steps, seconds) → True: stop a run that has gone a while
        self.ask_set_aside = ask.unkept_at_start  # (detail, path) → "keep" / "discard" / "later"
        self.ask_stop_after_s = 5.0  # Esc stops a run younger than this without asking
        self._started_at = 0.0  # time.monotonic() when the run started
        self._saving = False  # a kept model is being written
        self._closed = False  # the window closed: nothing starts any more
        self.scheme = "pc"
        self.panel.start_requested.connect(self.start)
        self.panel.cancel_requested.connect(self.cancel)
        self.panel.keep_requested.connect(self.keep)
        self.panel.revert_requested.connect(self.revert)
        self.panel.refresh_requested.connect(self.refresh)
        self._gathering = 0  # the newest gather's number: the panel shows only its list
        self._gathers_out = 0  # gathers queued or running on the job thread
        self._refresh_again = False  # a refresh_soon asked while one was out: one more follows
        self._starting = False  # a start waits for its corrections
        self._ticket = 0  # the newest start's (or cancel's) number: only its own gather may start a run
        self._said_cancelled = False  # the run's end already said it was cancelled

    # ------------------------------------------------------------------ corrections
    def corrections(self) -> list[Correction]:
        """Every correction, looked for now (blocking: the saved annotations' files are looked for
        one by one, so the UI uses ``gather``)."""
        return self._with_saved(self._open_corrections(), self.projects.saved_annotations())

    def _open_corrections(self) -> dict[Path, Correction]:
        """The open images' corrections (UI thread: copies of their maps as they are now)."""
        found: dict[Path, Correction] = {}
        for doc in self.workspace.docs:
            session = doc.annotation
            if session is None:
                continue  # (an image left behind may be unloaded: its Correction reads it again)
            differs = session.reference is None or bool((session.label != session.reference).any())
            corrected = doc.done or (session.is_annotation and differs)  # not an untouched prediction
            if corrected:
                found[doc.path] = Correction(doc.name, doc.path, doc.image, session.label.copy())
        return found

    @staticmethod
    def _with_saved(found: dict[Path, Correction], saved) -> list[Correction]:
        """``found`` and the saved annotations of the other images (``saved``: iterating it looks
        for the files, so on the job thread)."""
        for image, loader in saved:
            if image.path not in found:
                found[image.path] = Correction(image.path.name, image.path, None, None, loader)
        return list(found.values())

    def gather(self, done: Callable[[list[Correction]], None]) -> None:
        """The corrections as they are now, found on the job thread; then ``done(corrections)`` and
        the panel lists them (UI thread), unless a later ``gather`` began meanwhile: the panel only
        ever shows the newest (``done`` still runs: a start waits for its own)."""
        found, saved = self._open_corrections(), self.projects.saved_annotations()
        self._gathering += 1
        ticket = self._gathering

        def gathered(corrections: list[Correction]) -> None:
            if ticket == self._gathering:
                self.panel.set_corrections([c.name for c in corrections])
            done(corrections)
            self._gather_ended()

        def failed(message: str) -> None:
            self._starting = False
            self.panel.set_status(f"Cannot look for the corrections: {message}")
            self._gather_ended()

        self._gathers_out += 1
        self.jobs.submit(lambda: self._with_saved(found, saved), gathered, failed, "Looking for corrections")

    def _gather_ended(self) -> None:
        self._gathers_out -= 1
        if not self._gathers_out and self._refresh_again and not self._closed:
            self._refresh_again = False
            self.refresh()

    def refresh(self) -> None:
        self.gather(lambda corrections: None)

    def refresh_soon(self) -> None:
        """`refresh`, coalesced: while a look for corrections is queued or running, one more follows
        it, however often this is called meanwhile. The Fine-tune tab asks each time it comes into view;
        one look over a 20,000-image project takes over a second of the job thread, which saves share,
        and each queued look holds copies of the open corrected maps."""
        if self._gathers_out:
            self._refresh_again = True
        else:
            self.refresh()

    # ------------------------------------------------------------------ run
    def start(self, iterations: int, lr: float) -> None:
        if self.running or self._starting:
            return
        if self.engine.engine.model is None:
            self.panel.set_status("No model is loaded")
            return
        self._starting = True
        self._ticket += 1
        ticket = self._ticket
        self.gather(lambda corrections: self._start_on(corrections, iterations, lr, ticket))

    def _start_on(self, corrections: list[Correction], iterations: int, lr: float, ticket: int) -> None:
        from qgn.train.finetune import FinetuneConfig

        if ticket != self._ticket or not self._starting or self._closed:  # cancelled, restarted or closed
            return
        self._starting = False
        model = self.engine.engine.model
        if model is None:
            self.panel.set_status("No model is loaded")
            return
        if not corrections:
            self.panel.set_status(NOTHING_TO_TRAIN)
            return
        self.revert(quiet=True)
        config = FinetuneConfig(iterations=int(iterations), lr=float(lr), batch_size=min(4, len(corrections)))
        job = FinetuneJob(model, corrections, config, self.scheme, self, classes=self.workspace.classes,
                          learns=self.panel.learning())
        self.transfer_note = ""
        job.transferred.connect(lambda text: setattr(self, "transfer_note", text) or self.panel.set_status(
            f"The annotations' classes differ from the model's, so the model was transferred to them first: {text}. "
            f"Fine-tuning on {len(corrections)} image{'s' if len(corrections) != 1 else ''}…"))
        job.progress.connect(self.panel.add_loss)
        job.passing.connect(self._passing)
        job.learning.connect(self._learning)
        job.trained.connect(self._trained)
        job.compared.connect(self._compared)
        job.failed.connect(self._failed)
        job.finished.connect(self._job_ended)
        self.job = job
        self._said_cancelled = False
        self._started_at = time.monotonic()
        self.panel.set_running(True, config.iterations)
        self.panel.set_status(f"Fine-tuning on {len(corrections)} image{'s' if len(corrections) != 1 else ''}…")
        job.start()

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.isRunning()

    def cancel(self, confirm: bool = False) -> bool:
        """Stop the run (at its next step; the model in use stays) or a start still gathering its
        corrections (the panel's Cancel, Esc). False when there was none. ``confirm`` (Esc, which
        may be meant for a prediction that just ended): a run older than ``ask_stop_after_s`` is
        only stopped once ``ask_stop`` says so (True, still running, when it says keep training)."""
        if self.job is not None and not self.job.cancelled and self.comparison is None:
            seconds = time.monotonic() - self._started_at
            if confirm and seconds > self.ask_stop_after_s and not self.ask_stop(
                    max(self.panel.progress.value(), 0), seconds):
                return True
            if self.job is None or self.job.cancelled or self.comparison is not None:
                return False  # it ended (or was cancelled) while the question was open
            self.job.cancel()
            # every step ran: the job holds its result (set on its thread before its "trained" signal,
            # which, like the progress bar's last step, may not have reached this thread yet)
            comparing = self.job.result is not None and not self.job.result.cancelled
            self.panel.set_status("Cancelling the comparison; the fine-tuned model will be dropped…" if comparing
                                  else "Cancelling after the current step…")
            self.panel.cancel.setEnabled(False)  # (heard: until the run ends, which enables Start)
            self.workspace.cancelling(FINETUNE, "the fine-tune")  # the status bar says it too, until then
            return True
        if self._starting:
            self._starting = False  # the gathered corrections start nothing
            self._ticket += 1  # ...even when a new start is pressed before they arrive
            self.panel.set_status("Cancelled before it started; the model in use is unchanged")
            return True
        return False

    def _learning(self, encoder: str, trained: int) -> None:
        """What learns, once the job decided it on the images it trains on: said in the status line
        (the passes and steps that follow write over it)."""
        if self.job is None or self.job.cancelled:
            return
        images = f"{trained} image{'s' if trained != 1 else ''}"
        self.panel.set_status(f"Fine-tuning the decoder and encoder on {images} (every step trains the encoder "
                              "too: no feature pass first; about 1.5–2× the time on whole 240×180 frames)…" if encoder == "train" else
                              f"Fine-tuning the decoder on {images} (the encoder's features are computed once "
                              "first)…")

    def _passing(self, text: str, done: int, total: int) -> None:
        """A pass over the images, shown in the panel while the run is not cancelled: a Cancel's
        'Cancelling the comparison…' stays (the passes' counts, queued or still coming, wrote over it)."""
        if self.job is not None and not self.job.cancelled:
            self.panel.show_pass(text, done, total)

    def _trained(self, result) -> None:
        if result.cancelled:
            self._said_cancelled = True
            self.panel.set_status(f"Cancelled after {result.iterations_done} iterations; the model in use is unchanged")
        elif self.job is not None and self.job.cancelled:
            # every step ran, and the cancel came after (this signal reached the UI thread late): the
            # fine-tuned model is dropped, as the cancel said; the run's end says so (_job_ended)
            return
        else:
            last = f" · final loss {result.losses[-1]:.4f}" if result.losses else ""
            self.panel.set_status(f"Trained {result.iterations_done} iterations{last}; comparing before and after…")

    def _compared(self, result, comparison) -> None:
        if self.job is not None and self.job.cancelled:
            return  # cancelled as the comparison ended: dropped, as the cancel said
        self.result, self.comparison = result, comparison
        self.panel.show_comparison(comparison)
        before, after = comparison.before["miou"], comparison.after["miou"]
        note = getattr(self, "transfer_note", "")
        if note:
            note = f"(Transferred to the annotations' classes first: {note}.) "
        where = (f"on {len(comparison.per_image)} corrected image{'s' if len(comparison.per_image) != 1 else ''} it "
                 "did not train on" if comparison.held_out else
                 "on the one corrected image it trained on (optimistic: correct a second image for a fair test)")
        learnt = "decoder and encoder" if getattr(result.config, "encoder", "frozen") == "train" else "decoder"
        self.panel.set_status(f"{note}Done ({learnt} learnt): mIoU {100 * before:.1f} → {100 * after:.1f} % {where}. "
                              "Keep the new model (saved under a new name) or revert.")

    def _failed(self, message: str) -> None:
        self.panel.set_status(f"Fine-tuning failed: {message}")
        self.workspace.show_status(f"Fine-tuning failed: {message}", 10000)

    def _job_ended(self) -> None:
        job, self.job = self.job, None
        self.workspace.hide_progress(FINETUNE)
        self.panel.set_running(False)
        self.panel.show_comparison(self.comparison)
        if job is not None:
            job.deleteLater()
        state = "compared" if self.comparison is not None else ("cancelled" if job and job.cancelled else "failed")
        if state == "cancelled" and not self._said_cancelled:  # cancelled while it compared
            self.panel.set_status("Cancelled while comparing: the fine-tuned model was dropped; "
                                  "the model in use is unchanged")
        if not self._closed:
            self.refresh()
        self.finished.emit(state)

    # ------------------------------------------------------------------ keep / revert
    def keep(self) -> None:
        """Save the fine-tuned model under a new name (asked; the default is new), then predict with it."""
        if self.result is None:
            return
        choice = self.ask_save_path(self.default_path())
        if not choice:
            return
        path, overwrite = choice
        self._save(Path(path), overwrite)

    def default_path(self) -> Path:
        """Where Keep offers to save the fine-tuned model: a new file (``default_model_path``)."""
        original = self._original()
        return default_model_path(original or Path("model.safetensors"), self._model_folder(original))

    def _original(self) -> Path | None:
        info = self.workspace.model_info
        return None if info is None else Path(info.path)

    def _save(self, path: Path, overwrite: bool, then: Callable[[str], None] | None = None) -> None:
        """Save the fine-tuned model at ``path`` on the job thread; then the inference worker, the
        project and the next start use it. ``then(message)``: "" when saved, else why not (UI thread)."""
        from qgn.train.finetune import finetune_metadata, save_new_model

        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        original = self._original()
        model = self.result.model
        extra = finetune_metadata(ran_config(self.result), self.result, original,
                                  [r["name"] for r in self.comparison.per_image])

        def save() -> Path:
            return save_new_model(model, path, overwrite=overwrite, extra=extra, original=original)

        def saved(saved_path: Path) -> None:
            self._saving = False
            self.result, self.comparison = None, None
            self.panel.show_comparison(None)
            self._use_kept(model, saved_path)
            if then is not None:
                then("")

        def failed(message: str) -> None:
            self._saving = False
            self.panel.set_status(f"Not saved: {message}")
            if then is not None:
                then(message)

        self._saving = True
        self.jobs.submit(save, saved, failed, "Saving the fine-tuned model")

    def _use_kept(self, model, saved_path: Path) -> None:
        """Predict with the kept ``model`` (saved at ``saved_path``); the project and the next start too."""
        self.panel.set_status(f"Saved {saved_path.name}; predicting with it now")
        self.engine.use_model(model, saved_path)
        self.projects.set_model(saved_path)  # the project (if any) and the next start use it
        if self.workspace.settings is not None:
            self.workspace.settings.setValue("model/path", str(saved_path))
        self.kept.emit(saved_path)

    def revert(self, quiet: bool = False) -> None:
        had = self.result is not None
        self.result, self.comparison = None, None
        self.panel.show_comparison(None)
        if had and not quiet:
            self.panel.set_status("Reverted: the model in use is unchanged")

    def _model_folder(self, original: Path | None) -> Path:
        """Where a new model goes by default: the project's models/ folder, else beside the original
        unless that is the bundled resources (then the current folder)."""
        project = self.projects.project
        if project is not None:
            return Path(project.root) / "models"
        if original is not None:
            from qgn.resources import resources_dir

            try:
                resolved(original).relative_to(resolved(resources_dir()))
            except ValueError:
                return original.parent
        return Path.cwd()

    # ------------------------------------------------------------------ SIGTERM and the next start
    def set_aside(self, base: Path | None, wait_s: float = STOP_WAIT_S) -> None:
        """SIGTERM: the fine-tuned model neither kept nor reverted — or, from a run still going, the
        steps it has done once it stops at its next step (waited for up to ``wait_s``) — is written
        into ``base`` on the job thread (``unkept_models``), to be offered at the next start."""
        from qgn.train.finetune import finetune_metadata

        from qgn_studio import unkept_models

        if base is None:
            return
        if self._saving:  # Keep was pressed: its save, queued first, is waited for; set aside if it failed
            self.jobs.wait_idle(wait_s)
            QtCore.QCoreApplication.processEvents()  # its outcome: a saved model is no longer self.result
        if self.running:
            job = self.job
            total = job.config.iterations
            job.cancel()
            if not job.wait(int(wait_s * 1000)):  # mid-step still: its model cannot be copied safely
                self._say_lost_mid_step(total, wait_s)
                return
            result = job.result
            if result is None or result.iterations_done == 0:
                return  # not one step done yet: nothing to lose
            names, config = job.names, job.config
            detail = (f"stopped when the session ended, after {result.iterations_done:,} of {total:,} iterations; "
                      "not compared with the model it was fine-tuned from")
        elif self.result is not None and self.comparison is not None:
            result, config = self.result, ran_config(self.result)
            names, detail = [r["name"] for r in self.comparison.per_image], self._comparison_text()
        else:
            return
        original = self._original()
        keep_at = self.default_path()
        extra = finetune_metadata(config, result, original, names)
        stem = original.stem if original is not None else "model"

        def written(path: Path) -> None:
            self.workspace.show_status(f"The fine-tuned model was not kept: set aside as {path}", 15000)

        def failed(message: str) -> None:
            self.workspace.show_status(f"The fine-tuned model could not be set aside: {message}", 15000)

        self.jobs.submit(lambda: unkept_models.set_aside(base, result.model, extra, stem, detail, keep_at),
                         written, failed, "Setting the fine-tuned model aside")

    def _say_lost_mid_step(self, total: int, wait_s: float) -> None:
        """SIGTERM found the fine-tune in a step longer than ``wait_s``: its model, changed by that
        step as it runs, cannot be set aside, so it is lost with the process. Said on stderr (the
        window is closing) and in the status line. The annotations it learned from are not lost:
        the job trains on copies of them, and they are the project's (``terminate`` autosaved the
        unsaved ones before this)."""
        import sys

        done = max(self.panel.progress.value(), 0)
        text = (f"the fine-tune was in the middle of a step when the session ended (a step took longer than the "
                f"{wait_s:g} s it was given to stop): the model it was fine-tuning, after {done:,} of {total:,} "
                "iterations, is lost; the annotations it learned from are not lost (saved or autosaved: run "
                "Fine-tune again at the next start)")
        print(f"qgn-studio: warning: {text}", file=sys.stderr, flush=True)
        self.workspace.show_status(text[0].upper() + text[1:], 15000)

    def offer_unkept(self, base: Path | None) -> None:
        """At start: ask about each model a SIGTERM set aside (``set_aside``). Keep copies it to a new
        file where Keep would have saved it and predicts with it; Discard moves it to
        ``finetuned/discarded/``; Later leaves it to the next start."""
        from qgn_studio import unkept_models

        notes: list[str] = []
        for unkept in unkept_models.waiting(base, notes):
            try:
                dest = default_model_path(unkept.keep_at, unkept.keep_at.parent)
            except OSError as exc:  # its folder cannot be looked at: not a reason to stop the start
                notes.append(f"{unkept.path} is not offered: {describe_error(exc)}")
                continue
            choice = self.ask_set_aside(unkept.detail, dest)
            if choice == "keep":
                self._keep_set_aside(unkept, dest)
            elif choice == "discard":
                try:
                    moved = unkept_models.move(unkept, unkept_models.DISCARDED)
                except OSError as exc:
                    self.workspace.warn(f"{unkept.path} could not be moved: {describe_error(exc)}", "finetune")
                    continue
                self.workspace.show_status(f"The fine-tuned model was moved to {moved.parent} (move it back into "
                                           f"{unkept.path.parent} to be asked again)", 15000)
        for note in notes:
            self.workspace.warn(note, "finetune", 20000)

    def _keep_set_aside(self, unkept, dest: Path) -> None:
        """Keep: copied to ``dest`` — or, taken meanwhile (another model set aside for the same file
        kept first), to the next free name — with the original's domain reference where it still
        holds (as ``qgn.train.finetune.save_new_model`` does), then predicted with."""
        from qgn.model.checkpoint import load_model
        from qgn.train.finetune import keep_domain_reference

        from qgn_studio import unkept_models

        copied: list[Path] = []

        def keep():
            path = unkept_models.copy_to(unkept, dest, lambda taken: default_model_path(taken, taken.parent))
            copied.append(path)
            model = load_model(path)
            if unkept.original is not None and unkept.original.is_file():
                keep_domain_reference(unkept.original, path, model)
            return path, model

        def failed(message: str) -> None:
            if copied:
                self.workspace.warn(f"The fine-tuned model was copied to {copied[0]} (the set-aside one moved to "
                                    f"{unkept.path.parent / unkept_models.KEPT}) but cannot be used: {message}",
                                    "finetune", 20000)
                return
            self.workspace.warn(f"The fine-tuned model {unkept.path} was not kept: {message}. It stays there, "
                                "offered at the next start", "finetune", 20000)

        self.jobs.submit(keep, lambda kept: self._use_kept(kept[1], kept[0]), failed, "Keeping the fine-tuned model")

    # ------------------------------------------------------------------ closing the window
    def close_check(self, wait_s: float = 120.0) -> bool:
        """True when the window may close: no fine-tuned model neither kept nor reverted, no
        fine-tune running, or the user said what to do with it (see the module docstring)."""
        if self._saving:  # Keep was pressed just before: its save ends first
            self.jobs.wait_idle(wait_s)
            QtCore.QCoreApplication.processEvents()
        if self.running:
            return self.ask_unkept(True, self._progress_text(), None) == "discard"  # shutdown stops it
        if self.result is None:
            return True
        path = self.default_path()
        choice = self.ask_unkept(False, self._comparison_text(), path)
        if choice != "keep":
            return choice == "discard"
        return self._keep_at_close(path, wait_s)

    def _keep_at_close(self, path: Path, wait_s: float) -> bool:
        """Save at ``path`` and wait for it; False (the window stays open, and says why) when it fails."""
        outcome: list[str] = []
        self._save(path, False, then=outcome.append)
        self.jobs.wait_idle(wait_s)
        QtCore.QCoreApplication.processEvents()  # delivers the save's outcome
        if outcome == [""]:
            return True
        why = outcome[0] if outcome else "it is still being written; close again once it is saved"
        self.workspace.warn(f"The fine-tuned model was not saved: {why}. The window stays open: "
                            "keep it under another name or revert it in the Fine-tune panel.", "finetune", 20000)
        return False

    def _progress_text(self) -> str:
        done, total = self.panel.progress.value(), self.panel.progress.maximum()
        if self.job is not None and done >= total > 0:
            return "comparing the model before and after"
        return f"iteration {max(done, 0):,} of {total:,}"

    def _comparison_text(self) -> str:
        comparison = self.comparison
        before, after = comparison.before["miou"], comparison.after["miou"]
        where = "corrected images it did not train on" if comparison.held_out else "the image it trained on"
        return f"mIoU {100 * before:.1f} → {100 * after:.1f}\N{NO-BREAK SPACE}% on {where}"

    def shutdown(self, wait: bool = True) -> None:
        """Stop a run in progress and drop what was not kept (the window closes: ``close_check``
        asked first; ``wait``: wait for the run's thread; it writes nothing)."""
        self._closed = True
        if self.job is not None:
            self.job.cancel()
            if wait:
                self.job.wait()
        self.revert(quiet=True)
