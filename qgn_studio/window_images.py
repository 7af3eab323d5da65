"""The window's images: choosing one in the list, stepping through it, its filter, and showing the one chosen.

``select_image`` (the list's current row) makes an image the current one, reads it when it is not, and asks
for its prediction; the results of the last ``RECENT_RESULTS`` images stay in memory
(``_keep_recent_results``). ``step_image`` goes to the next (previous) image the filter shows. The list's
filter (``_filter_changed``, ``_apply_filter``) waits for the saved annotations' counts when it needs them
(``_stats_for_filter``). ``_show_document`` shows an image read on the canvas and the panels;
``_show_image_status`` is a status-bar line about it that goes when another image is shown.

A mixin of ``qgn_studio.main_window.MainWindow`` (its ``__init__`` makes the state). Reads and writes
``_recent``, ``_image_status``, ``_counting_for_filter``, ``_list_stats``; reads ``workspace``, ``projects``,
``annotator``, ``head``, ``thumbnails``, ``uncertainty_order``, ``canvas``, ``images``, ``explore``,
``layer_panel``, ``_not_computed``, ``docs``, ``current``. Calls back into the window's ``_request``,
``_reference``, ``_show_truth_note`` (``qgn_studio.window_predictions``) and ``_update_title``.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from qgn_studio.window_opening import PLACEHOLDER

if TYPE_CHECKING:
    from qgn_studio.document import ImageDocument

RECENT_RESULTS = 8  # images whose last result stays in memory


class WindowImagesMixin:
    """``MainWindow``'s images (see the module docstring)."""

    # ------------------------------------------------------------------ images
    def select_image(self, row: int) -> None:
        if not 0 <= row < len(self.docs):
            return
        doc = self.docs[row]
        if self.images.current() != row:
            self.images.set_current(row)
            return
        if doc.error and doc.file_changed():  # replaced on disk under the same name: read it again
            doc.forget_load()
            self.images.forget_thumbnail(doc.path)
            self.thumbnails.request([doc.path])
        self.workspace.set_current(doc)
        self._keep_recent_results(doc)
        self.canvas.clear_message("image")
        self.canvas.clear_message("run")
        if self._image_status and self.statusBar().currentMessage() == self._image_status:
            self.statusBar().clearMessage()  # it was about the image shown before
        self._image_status = ""
        if doc.loaded:
            self._show_document(doc)
        elif self.canvas.doc is None:  # not the "Open images…" hint while images are listed
            self.canvas.set_placeholder(f"Reading {doc.name}…")
        self.projects.document_shown(doc)
        self._request()

    def _keep_recent_results(self, doc: ImageDocument) -> None:
        """Results hold per-level arrays (megabytes each), decoded images and ground truth about
        as much, the image tools' superpixels several more: keep those of the last few images (an
        older one is read or computed again when revisited)."""
        if doc in self._recent:
            self._recent.remove(doc)
        self._recent.append(doc)
        while len(self._recent) > RECENT_RESULTS:
            old = self._recent.pop(0)
            old.result = None
            old.unload()
            self.annotator.image_tools.forget([old.path])  # superpixels: made again when it is back

    def step_image(self, delta: int) -> None:
        """The next (previous) image shown by the list's filter."""
        if self.docs:
            rows = self.images.visible_rows()
            if not rows:
                return
            current = self.images.current()
            if delta > 0:
                row = next((r for r in rows if r > current), rows[-1])
            else:
                row = next((r for r in reversed(rows) if r < current), rows[0])
            self.images.set_current(row)

    # ------------------------------------------------------------------ the list's filter
    def _filter_changed(self, key: str, _text: str) -> None:
        """Apply the list's filter; one that needs the saved annotations' counts ("Annotated",
        "Has class") keeps the rows shown, the summary saying so, until the counts arrive: applied
        without them it hid every image not open, and the list flashed empty."""
        self._counting_for_filter = key.startswith("class:") or key == "annotated"
        self.images.set_counting(self._counting_for_filter)
        if self._counting_for_filter:
            self._list_stats = None
            self.projects.statistics(self._stats_for_filter, self._stats_for_filter_failed)
        self._apply_filter()

    def _stats_for_filter(self, stats) -> None:
        self._list_stats = stats
        self._counting_for_filter = False
        self.images.set_counting(False)
        self._apply_filter()

    def _stats_for_filter_failed(self, message: str) -> None:
        """No counts: the filter goes by the open annotations only, and the status line says why."""
        self._counting_for_filter = False
        self.images.set_counting(False)
        self._apply_filter()
        self.statusBar().showMessage(f"Cannot read the saved annotations: {message}", 8000)

    def _apply_filter(self) -> None:
        from qgn_studio.image_filter import shown

        if getattr(self, "_counting_for_filter", False):
            return  # the rows stay until the counts arrive (``_stats_for_filter``)
        key, text = self.images.filter_key()
        rows = shown(self.docs, key, text, getattr(self, "_list_stats", None), self.uncertainty_order.scores)
        if self.current in self.docs:
            rows[self.docs.index(self.current)] = True  # the image on screen stays listed
        self.images.show_rows(rows)

    def _show_document(self, doc: ImageDocument) -> None:
        self.canvas.show_document(doc if doc.image is not None else None)
        self.canvas.set_placeholder("This file could not be read as an image" if doc.error else PLACEHOLDER)
        if doc.error:  # the banner is rich text; file names are not markup
            self.canvas.show_message(html.escape(doc.error), "error", "image")
        elif doc.notes:
            self.canvas.show_message("<br>".join(map(html.escape, doc.notes)), "warning", "image")
        self.explore.set_truth_available(doc.ground_truth is not None and not doc.truth_problem)
        if doc.result is not None:
            self._show_truth_note(doc.result)
        else:
            self.canvas.clear_message("truth")
        self.explore.show_result(doc.result, self._reference(doc))
        if doc.result is None and doc is self._not_computed:  # (read after its prediction was cancelled)
            self.explore.show_not_computed()
        self.explore.show_curve(list(doc.curve.values()), self.explore.setting())
        self.layer_panel.refresh(doc.result)
        self.annotator.show_document(doc)
        self.head.show_verdict(doc)
        self._update_title()

    def _show_image_status(self, text: str) -> None:
        """A status-bar line about the current image: it goes when another image is shown."""
        self._image_status = text
        self.statusBar().showMessage(text, 10000)
