"""Predictions in the window: asking the worker for one, showing what it sends, and Esc's cancel.

``_request`` asks the inference worker (``qgn_studio.workers.InferenceWorker``) for the current image at the
controls' setting. What the worker sends (wired in the window's ``_connect``) is shown here: an image read
(``_document_loaded``), a result (``_result_ready``: the canvas, the panels, the truth note, then the
measurements it plans, ``_plan_measurements``), a failure (``_failed``), its busy notes (``_busy_changed``,
``_busy_counting``), a model loaded or not (``_model_loaded``, ``_model_failed``) and the measurer's curve
points and references (``_curve_point``, ``_reference_ready``, ``_measuring_changed``). ``cancel`` (Esc)
stops what is in progress; a cancelled prediction's end is said by ``_cancelled`` (``_say_cancelled``,
``_show_setting_on_screen``).

A mixin of ``qgn_studio.main_window.MainWindow`` (its ``__init__`` makes the state). Reads and writes
``_requests``, ``_busy``, ``_cancelling``, ``_cancelled_run``, ``_not_computed``, ``_dropping``,
``device_choice``; reads ``workspace``, ``worker``, ``projects``, ``annotator``, ``head``, ``finetuner``,
``finetune_dock``, ``uncertainty_order``, ``canvas``, ``images``, ``explore``, ``layer_panel``, ``progress``,
``device_label``, ``device_actions``, ``_hover``, ``docs``, ``current``, ``model_info``. Calls back into the
window's ``_show_document``, ``_show_image_status``, ``_hovered``, ``_update_title``,
``_remember_chosen_model`` and its signals ``result_shown``, ``measurements_done``.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from qgn_studio.document import measurement_plan, truth_note_html

if TYPE_CHECKING:
    from qgn_studio.document import ImageDocument, RenderResult

PREDICTION = "prediction"  # the status bar's task line of a cancelled prediction winding down


class WindowPredictionsMixin:
    """``MainWindow``'s predictions (see the module docstring)."""

    def _request(self) -> None:
        self._requests += 1
        doc = self.current
        if self._not_computed is not None:  # asked for again: "No result yet" while it computes
            if self._not_computed is doc and doc.result is None:
                self.explore.show_result(None, None)
            self._not_computed = None
        if doc is None or doc.error:
            return
        if self.model_info is None and doc.loaded:
            return
        self.worker.predict(doc, self.explore.setting())

    # ------------------------------------------------------------------ worker signals
    def _document_loaded(self, doc: ImageDocument) -> None:
        self.projects.document_loaded(doc)  # a map restored before the image's size was known must fit it
        self.images.update_document(doc)
        if doc is self.current:
            self._show_document(doc)
            if doc.error:
                self._show_image_status(doc.error)

    def _result_ready(self, result: RenderResult) -> None:
        doc = self.workspace.doc_for(result.path)
        if doc is None:
            return
        doc.result = result
        self.annotator.result_ready(doc)
        if doc is not self.current:
            return
        self.head.show_verdict(doc)
        self._show_truth_note(result)
        self.explore.set_truth_available(doc.ground_truth is not None and not doc.truth_problem)
        self.canvas.show_result(result)
        self.explore.show_result(result, self._reference(doc))
        self.explore.show_curve(list(doc.curve.values()), self.explore.setting())
        self.layer_panel.refresh(result)
        if self._hover is not None:
            self._hovered(*self._hover)
        self._plan_measurements(doc)
        self.result_shown.emit(result)

    def _show_truth_note(self, result: RenderResult) -> None:
        """Ground truth whose values are not the model's classes: say so, and offer the bundled
        model that fits it as one click."""
        if result.truth_note:
            self.canvas.show_message(truth_note_html(result.truth_note), "warning", "truth")
        else:
            self.canvas.clear_message("truth")

    def _plan_measurements(self, doc: ImageDocument) -> None:
        tasks = measurement_plan(doc, self.explore.setting())
        self.worker.measure(doc, tasks)
        if not tasks:
            self.measurements_done.emit()

    def _failed(self, doc, message: str) -> None:
        if doc is None or doc is self.current:
            self.canvas.show_message(html.escape(message), "error", "run")
            self._show_image_status(message)
        else:
            self.statusBar().showMessage(message, 10000)

    def _cancelled(self, run: int) -> None:
        """The cancelled prediction ``run`` has stopped, or a queued one Esc dropped (nothing running)
        is behind what the worker did first (no result of it came, nor will). A run the window no
        longer tracks (cancelled before another was) says nothing: the later one says its end."""
        if run in self._dropping:
            self._say_cancelled(self._dropping.pop(run))
            return
        if self._cancelling is not None and self._cancelling[0] == run:  # (not an earlier one, cancelled before)
            requests = self._cancelling[1]
            self._cancelling = None
            self.progress.hide_progress(PREDICTION)
            self._say_cancelled(requests)

    def _say_cancelled(self, requests: int) -> None:
        """A cancel's end: the controls go back to the result on screen, and the status bar says it
        stays; the image chosen has none (its prediction was what Esc stopped): says so; a
        prediction asked for since (``requests`` then: a setting moved to, a switched model's
        computing the controls' setting) is what the user sees next: nothing is said."""
        if self._show_setting_on_screen(requests):
            self.statusBar().showMessage("Cancelled — the previous result stays on screen", 5000)
        elif requests == self._requests and self.current is not None and self.model_info is not None:
            self.statusBar().showMessage(f"Cancelled — no prediction for {self.current.name}", 5000)
            if self.current.result is None:  # (the controls name the setting cancelled: say it was not computed)
                self._not_computed = self.current  # (until a prediction is asked for: also once it is read)
                self.explore.show_not_computed()

    def _show_setting_on_screen(self, requests: int) -> bool:
        """After a cancel: the controls say what stays on screen (not the cancelled setting), unless a
        prediction was asked for since the cancel (``requests`` then: the user's setting, even when
        back on the cancelled one). Whether they say it."""
        shown = self.canvas.result
        if (requests != self._requests or shown is None or self.current is None
                or shown.path != self.current.path):
            return False
        self.explore.set_setting(shown.setting)
        return True

    def _busy_changed(self, busy: bool, text: str, run: int = 0) -> None:
        if run < self._cancelled_run:  # a run before the cancelled one (its note heard late): over
            return
        self._busy = busy
        if busy and run == self._cancelled_run:  # a step of the cancelled run sent before Esc, heard after:
            return  # its note stays "Cancelling the prediction…", its Cancel disabled
        self.canvas.set_busy(busy, text)

    def _busy_counting(self, head: str, seconds: float, after: float | None = None, run: int = 0) -> None:
        if run > self._cancelled_run:  # (not the cancelled run's: its note says Cancelling)
            self.canvas.busy.count_down(head, seconds, after)

    def _curve_point(self, point) -> None:
        doc = self.workspace.doc_for(point.path)
        if doc is None:
            return
        doc.curve[(point.setting.family(), point.setting.depth)] = point
        if doc is self.current:
            self.explore.show_curve(list(doc.curve.values()), self.explore.setting())

    def _reference_ready(self, path, depth: int, macs) -> None:
        doc = self.workspace.doc_for(path)
        if doc is None:
            return
        doc.reference[depth] = int(macs)
        if doc is self.current and doc.result is not None and doc.result.setting.depth == depth:
            self.explore.show_result(doc.result, self._reference(doc))

    def _measuring_changed(self, busy: bool, text: str) -> None:
        self.explore.set_measuring(busy, text)
        if not busy:
            self.measurements_done.emit()

    def _model_loaded(self, info) -> None:
        self._remember_chosen_model(info)
        self.workspace.set_model(info)  # the project and the head follow it
        classes = self.annotator.model_classes(info.classes)
        self.canvas.set_classes(classes)
        self.layer_panel.legend.set_classes(classes)
        self.device_label.setText(f"{info.name} · {info.device}")
        self.device_label.setToolTip(str(info.path))
        self.device_actions["cuda"].setEnabled(info.cuda_available)
        for doc in self.docs:
            doc.forget_results()
        self.canvas.show_result(None)
        self.statusBar().showMessage(f"Model {info.name} on {info.device}", 5000)
        self.canvas.clear_message("model")
        self._update_title()
        self._request()

    def _model_failed(self, message: str) -> None:
        message = html.escape(message)  # the banner is rich text; a file's name is not markup
        if self.worker.has_model:  # another model or a device switch failed: the model in use stays
            info = self.model_info  # None: the worker loaded the next model, not yet heard of here
            stays = "" if info is None else f" {html.escape(info.name)} on {html.escape(info.device)} stays in use."
            self.canvas.show_message(f"Model: {message.rstrip('.')}.{stays}", "error", "model")
            if info is not None:
                self.device_choice = info.device
                self.device_actions[info.device].setChecked(True)
            return
        self.canvas.show_message(f"Model: {message}. Open one with File → Open model… (Ctrl+M); "
                                 "images can still be viewed.", "error", "model")
        self.device_label.setText("no model")

    def _reference(self, doc: ImageDocument) -> int | None:
        depth = doc.result.setting.depth if doc.result is not None else None
        return doc.reference.get(depth)

    def cancel(self) -> None:
        """Esc: stop the computation in progress (opening a project, ordering by uncertainty, a
        prediction, else a fine-tune: the model in use stays)."""
        if self.projects.cancel_opening():
            return
        if self.uncertainty_order.cancel():
            return
        if self._busy:
            # a running prediction ends its current step first: said until it has stopped; none
            # running (a model loading, a result sent and not yet shown), a queued one is dropped:
            # the controls go back when the worker is past what it does first (the load's end, the
            # result sent); a model load or a device switch runs on (its note stays)
            # a model job, or a read alone, goes on: said (it was silent, or "Cancelling the prediction…")
            goes_on = self.worker.goes_on()  # (read before the cancel: a read kept is then what runs)
            reading = self.worker.reading_first()  # (its image is read first: "Cancelling" said nothing of it)
            cancel = self.worker.cancel()
            if cancel is None and goes_on is not None:
                self.statusBar().showMessage(f"{goes_on} goes on: it cannot be cancelled", 5000)
            if cancel is not None:
                run, running = cancel
                if not running:
                    self._dropping[run] = self._requests
                    return
                self._cancelling, self._cancelled_run = (run, self._requests), run
                what = "the prediction" if reading is None else f"the prediction once {reading} is read"
                self.progress.cancelling(PREDICTION, what)
                self.canvas.busy.set_cancelling(f"Cancelling {what}…")
        elif self.finetuner.cancel(confirm=True):  # asks first when it has run a while
            self.finetune_dock.show()
            self.finetune_dock.raise_()  # where the run says it stopped
