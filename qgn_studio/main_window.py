"""The main window: canvas in the middle, images and layers on the left, exploration on the right.

It wires the panels to the worker: a changed setting or image becomes a prediction request, a
result goes to the canvas and the panels, and background measurements fill the accuracy-vs-compute
plot. Settings (last folder, geometry, layers, exploration choices, device) live in QSettings.
Annotation (``annotator``), projects and autosave (``projects``), fine-tuning (``finetuner``) and
file work off the UI thread (``jobs``) live in their own modules; this window only wires them. Its own
concepts have their modules too: closing it (``window_close``), opening into it (``window_opening``),
its images (``window_images``: the list, its filter, the image shown) and the predictions (``window_predictions``:
the worker's signals shown, Esc's cancel), mixins of ``MainWindow``.
"""
from __future__ import annotations

import html
import math
import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from qgn_studio import icons
from qgn_studio.annotator import Annotator
from qgn_studio.ask import AskUser
from qgn_studio.canvas import Canvas
from qgn_studio.carry_controller import CarryController
from qgn_studio.dialogs import ShortcutsDialog, show_about
from qgn_studio.discovery import resolved
from qgn_studio.document import (
    LEVELS, SCHEME_CHOICES, ImageDocument, SchemeChoice, hover_text,
)
from qgn_studio.export_dialog import ExportDialog
from qgn_studio.finetuner import Finetuner
from qgn_studio.head_controller import HeadController
from qgn_studio.kept_controller import KeptController
from qgn_studio.jobs import JobRunner
from qgn_studio.panels import ExplorePanel, ImageListPanel, LayerPanel
from qgn_studio.panels.explore import SCHEME_KEYS
from qgn_studio.panels.progress import TaskProgress
from qgn_studio.project_controller import ProjectController, scratch_root
from qgn_studio.style import keyed_tooltip
from qgn_studio.uncertainty_order import UncertaintyOrder
from qgn_studio.workers import InferenceWorker, ThumbnailLoader
from qgn_studio.window_close import WindowCloseMixin
from qgn_studio.window_images import WindowImagesMixin
from qgn_studio.window_opening import RELINK_LINK, ShortcutGate, WindowOpeningMixin
from qgn_studio.window_predictions import WindowPredictionsMixin
from qgn_studio.workspace import Workspace

APP_NAME = "QGN Studio"
RESOLUTION_CHOICES = (  # Model → Resolution (qgn.model.qgn.QGNConfig.resolution_for)
    ("auto", "Automatic (where the model measured best)",
     "A model with a working size (the street model) runs every photo there, where it scored best; a model "
     "that works at full scale and was trained at the photo's scale runs it at full resolution"),
    ("working", "Working size", "Every photo runs at the model's working size; labels are mapped back to its pixels"),
    ("native", "Full resolution", "Every photo runs at its own size (up to 33.6 megapixels)"),
)
LAYER_KEYS = {"prediction": "L", "truth": "T", "grid": "G", "uncertainty": "U", "sites": "S", "image": "I",
              "changed": "C"}


def make_settings() -> QtCore.QSettings:
    """The app's settings; ``QGN_STUDIO_SETTINGS=path.ini`` redirects them (tests, portable use)."""
    path = os.environ.get("QGN_STUDIO_SETTINGS")
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings("QGN", APP_NAME)


class VerticalScroll(QtWidgets.QScrollArea):
    """A vertical scroll area as wide as its widget needs: a dock never asks for more height than
    the screen has (a laptop at 1280×720, or 1920×1080 at 150–200 % scaling); it scrolls instead."""

    MIN_HEIGHT = 120

    def __init__(self, widget: QtWidgets.QWidget, parent=None):
        super().__init__(parent)
        self.setWidget(widget)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QtCore.QSize:
        inner = self.widget().minimumSizeHint()
        bar = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        return QtCore.QSize(inner.width() + bar + 2, min(inner.height(), self.MIN_HEIGHT))

    def sizeHint(self) -> QtCore.QSize:
        inner = self.widget().sizeHint()
        bar = self.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        return QtCore.QSize(inner.width() + bar + 2, inner.height())


def fitted_size(screen: QtGui.QScreen | None, wanted: QtCore.QSize) -> QtCore.QSize:
    """``wanted`` shrunk to the screen's available area (logical pixels, so scaling counts), with
    room for a window manager's frame and title bar."""
    if screen is None:
        return wanted
    room = screen.availableGeometry().size()
    return QtCore.QSize(min(wanted.width(), max(room.width() - 16, 320)),
                        min(wanted.height(), max(room.height() - 48, 240)))


class MainWindow(WindowCloseMixin, WindowOpeningMixin, WindowImagesMixin, WindowPredictionsMixin,
                 QtWidgets.QMainWindow):
    """QGN Studio's window. ``settings=None`` neither restores nor saves anything (screenshots).

    The app's state is ``workspace`` (``qgn_studio.workspace``); the window builds the widgets and
    the controllers over it, shows what it announces, and is the controllers' ``Shell``
    (open / close images, load a model) and, through ``ask``, their dialogs' parent."""

    result_shown = QtCore.Signal(object)  # RenderResult, after the canvas and panels show it
    measurements_done = QtCore.Signal()

    def __init__(self, settings: QtCore.QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.workspace = Workspace(settings, self)
        self.ask = AskUser(self, self.workspace.last_folder)
        self.device_choice = "auto"
        self.shortcut_rows: list[tuple[str, str, str]] = []
        self._hover: tuple[float, float] | None = None
        self._recent: list[ImageDocument] = []
        self._busy = False
        self._requests = 0  # predictions asked for (a setting moved to, another image): a cancel's end
        # puts the controls back to the result on screen only when none was asked for since the cancel
        self._cancelling: tuple[int, int] | None = None  # (the run cancelled last, _requests then), until it stopped
        self._cancelled_run = 0  # the run cancelled last: its step notes heard after the cancel are not shown
        self._not_computed: ImageDocument | None = None  # the image shown whose prediction Esc cancelled
        self._dropping: dict[int, int] = {}  # queued predictions dropped by Esc: their ids -> _requests then
        self.ends_process = False  # the process ends with the window (app.main): closing waits only for writers
        self.threads_stopped = False  # closed: the threads that write have finished
        self._terminating = False  # SIGTERM: close without questions (terminate)
        self._in_close_event = False
        self._finishing_class_work = False  # the close waits for class changes of ours (finish_class_work)
        self._chosen_model: tuple[Path, object] | None = None  # (path, the project open then) until it loads
        self._shortcut_gate = ShortcutGate(lambda: (self._cancel_action, self._open_project_action), self)

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.setDockOptions(QtWidgets.QMainWindow.DockOption.AnimatedDocks)
        self.canvas = Canvas()
        self.canvas.banner.link_activated.connect(self._banner_link)
        self._missing_shown = 0  # the project's images missing when the banner last said so
        self._image_status = ""  # the status-bar line about the current image (cleared when it changes)
        self.setCentralWidget(self.canvas)
        self.images = ImageListPanel()
        self.layer_panel = LayerPanel(self.canvas.layers)
        self.explore = ExplorePanel()
        self.worker = InferenceWorker(self)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.jobs = JobRunner(self)
        # long batches (export, import, statistics) on their own thread: autosaves never queue behind them
        self.batch_jobs = JobRunner(self)
        ws = self.workspace
        self.annotator = Annotator(ws, self.canvas, self.jobs, self.ask, self.set_layer_visible, self)
        self.projects = ProjectController(ws, self.annotator, self.jobs, self.batch_jobs, self.ask, self,
                                          scratch_root(settings is not None), self)
        self.finetuner = Finetuner(ws, self.worker, self.projects, self.jobs, self.ask, self)
        self.head = HeadController(ws, self.annotator, self.projects, self.worker, self)  # project head (#21)
        self.carry = CarryController(ws, self.annotator, self.projects, self.head, self)  # wraps the head's default
        self.kept = KeptController(ws, self.annotator, self.projects, self)  # Start from → Kept copy…
        self.annotator.refresh_status()  # the starts they offer, as the rest: none before an image is shown
        self.uncertainty_order = UncertaintyOrder(ws, self.worker, self.projects, self)
        self._docks()
        self.hover_label = QtWidgets.QLabel("")
        self.device_label = QtWidgets.QLabel("no model")
        self.progress = TaskProgress()
        self.statusBar().addWidget(self.hover_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.device_label)
        self._connect()
        self._menus()
        self.resize(fitted_size(self.screen(), QtCore.QSize(1500, 950)))
        self._restore()

    # the workspace's state, read where the window and many tests look for it
    @property
    def docs(self) -> list[ImageDocument]:
        return self.workspace.docs

    @property
    def current(self) -> ImageDocument | None:
        return self.workspace.current

    @property
    def model_info(self):
        return self.workspace.model_info

    # ------------------------------------------------------------------ construction
    def _docks(self) -> None:
        def title_button_tips(d: QtWidgets.QDockWidget) -> None:
            """Qt's float and close buttons on a dock's title bar come without a tooltip."""
            title = d.windowTitle()
            tips = {"qt_dockwidget_floatbutton": f"Put the {title} panel back in the window (or double-click its title)"
                    if d.isFloating() else f"Float the {title} panel in its own window (or double-click its title)",
                    "qt_dockwidget_closebutton": f"Close the {title} panel (View menu: show it again)"}
            for button in d.findChildren(QtWidgets.QAbstractButton):
                if button.objectName() in tips:
                    button.setToolTip(tips[button.objectName()])

        def dock(title: str, widget: QtWidgets.QWidget, area, name: str, scroll: bool = True) -> QtWidgets.QDockWidget:
            d = QtWidgets.QDockWidget(title, self)
            d.setObjectName(name)
            d.setWidget(VerticalScroll(widget) if scroll else widget)
            d.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                          | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                          | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, d)
            title_button_tips(d)
            d.topLevelChanged.connect(lambda _floating, d=d: title_button_tips(d))
            return d

        left = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
        self.images_dock = dock("Images", self.images, left, "images", scroll=False)  # a list: scrolls itself
        self.layers_dock = dock("Layers", self.layer_panel, left, "layers")
        right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        self.explore_dock = dock("Explore", self.explore, right, "explore")
        self.annotate_dock = dock("Annotate", self.annotator.panel, right, "annotate", scroll=False)  # scrolls inside
        self.finetune_dock = dock("Fine-tune", self.finetuner.panel, right, "finetune")
        self.tabifyDockWidget(self.explore_dock, self.annotate_dock)
        self.tabifyDockWidget(self.annotate_dock, self.finetune_dock)
        # its tab coming into view counts the corrected images (on the job thread), so the panel shows a
        # count, or how to get one, instead of "↻ counts the corrected images" over images just corrected
        self.finetune_dock.visibilityChanged.connect(lambda visible: visible and self.finetuner.refresh_soon())
        self.explore_dock.raise_()
        self.resizeDocks([self.images_dock, self.explore_dock], [270, 400], QtCore.Qt.Orientation.Horizontal)
        # at 1280×800 the list shows 4 images (300:560 showed 3) and the Layers list all but its last rows
        self.resizeDocks([self.images_dock, self.layers_dock], [9, 13], QtCore.Qt.Orientation.Vertical)

    def _connect(self) -> None:
        self._connect_workspace()
        w = self.worker
        w.model_loaded.connect(self._model_loaded)
        w.model_failed.connect(self._model_failed)
        w.document_loaded.connect(self._document_loaded)
        w.result_ready.connect(self._result_ready)
        w.failed.connect(self._failed)
        w.cancelled.connect(self._cancelled)
        w.busy_changed.connect(self._busy_changed)
        w.busy_counting.connect(self._busy_counting)  # (the last level's time left, counted down)
        w.measurer.curve_point.connect(self._curve_point)
        w.measurer.reference_ready.connect(self._reference_ready)
        w.measurer.measuring_changed.connect(self._measuring_changed)
        w.measurer.failed.connect(self._failed)
        self.thumbnails.thumbnails_ready.connect(self.images.set_thumbnails)
        self.images.rows.wanted = self.thumbnails.request_first
        self.images.current_changed.connect(self.select_image)
        self.images.filter_changed.connect(self._filter_changed)
        self.explore.setting_changed.connect(self._setting_changed)
        self.layer_panel.visibility_changed.connect(self.set_layer_visible)
        self.layer_panel.opacity_changed.connect(self.set_layer_opacity)
        self.layer_panel.measure_changed.connect(self._measure_changed)
        self.canvas.hovered.connect(self._hovered)
        self.canvas.cancel_requested.connect(self.cancel)
        self.annotator.mode_changed.connect(self._annotation_mode_changed)
        self.annotator.session_created.connect(self._session_created)
        self.annotator.edited.connect(lambda session: self._annotation_edited(session))
        self.annotator.done_changed.connect(lambda doc, _done: (self.images.update_document(doc),
                                                                 self._apply_filter()))
        self.projects.autosaved.connect(self._show_autosaved)
        self.annotator.class_set_edited.connect(self._classes_edited)
        self.uncertainty_order.scores_changed.connect(lambda scores: self.images.set_scores(scores, "uncertainty"))

    def _connect_workspace(self) -> None:
        """What the workspace announces, shown by the widgets."""
        ws = self.workspace
        ws.documents_changed.connect(self._documents_changed)
        ws.document_changed.connect(self._document_changed)
        ws.select_requested.connect(self._select_document)
        ws.classes_changed.connect(self.images.set_classes)
        ws.project_changed.connect(lambda _project: self._update_title())
        ws.opening_changed.connect(self._opening_changed)
        ws.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        ws.message.connect(self.canvas.show_message)
        ws.message_cleared.connect(self.canvas.clear_message)
        self.canvas.banner.dismissed.connect(lambda keys: [ws.message_dismissed.emit(k) for k in keys])
        ws.task_progress.connect(lambda owner, *step: self.progress.show_progress(*step, owner=owner))
        ws.task_ended.connect(self.progress.hide_progress)
        ws.task_cancelling.connect(self.progress.cancelling)
        ws.region_requested.connect(lambda rect: self.canvas.view.setRange(rect, padding=0))

    def _documents_changed(self, docs: list) -> None:
        self.images.set_documents(docs)  # its rows draw each document as it is (loaded or not)

    def _document_changed(self, doc) -> None:
        self.images.update_document(doc)
        self._update_title()

    def _select_document(self, doc) -> None:
        if doc in self.docs:
            self.images.set_current(self.docs.index(doc))

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, keys=(), tip: str = "",
                checkable: bool = False, section: str | None = None) -> QtGui.QAction:
        """A menu action with shortcuts; it is listed in the shortcut help."""
        action = QtGui.QAction(text, self)
        keys = [keys] if isinstance(keys, (str, QtGui.QKeySequence.StandardKey)) else list(keys)
        sequences = [QtGui.QKeySequence(k) for k in keys]
        action.setShortcuts(sequences)
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        keyed_tooltip(action, tip)  # the keys named wherever the action's tooltip shows
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        if sequences:
            names = " / ".join(s.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for s in sequences)
            title = section or menu.title().replace("&", "")
            self.shortcut_rows.append((title, names, text.replace("&", "").rstrip("…")))
        return action

    def _menus(self) -> None:
        """The menu bar, menu by menu, and the main toolbar (this order is the shortcut help's order)."""
        bar = self.menuBar()
        self._file_menu(bar.addMenu("&File"))
        edit = bar.addMenu("&Edit")  # filled once the Annotate menu's undo actions exist
        image = bar.addMenu("&Image")
        self._image_menu(image)
        self._view_menu(bar.addMenu("&View"))
        self._layers_menu(bar.addMenu("&Layers"))
        self._explore_menu(bar.addMenu("E&xplore"))
        self.annotator.build_actions(self._action, bar.addMenu("A&nnotate"), self.actions)
        self.annotator.fill_edit_menu(edit)
        self.uncertainty_order.build_actions(self._action, image)
        self._model_menu(bar.addMenu("&Model"))
        self._help_menu(bar.addMenu("&Help"))
        self._main_toolbar()

    def _file_menu(self, file: QtWidgets.QMenu) -> None:
        """Opening images, folders, models and projects; saving, import, export, screenshot, quit."""
        self.open_images_action = self._action(file, "&Open images…", self.open_images_dialog,
                                               QtGui.QKeySequence.StandardKey.Open)
        self.open_folder_action = self._action(file, "Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self._action(file, "Open &model…", self.open_model_dialog, "Ctrl+M")
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        self._action(file, "&New project…", lambda: self.projects.new_project(), "Ctrl+Shift+N",
                     tip="Create a project folder with the open images, the classes and the model")
        self._open_project_action = self._action(file, "Open p&roject…", lambda: self.projects.open_project(), "Ctrl+Alt+O")
        self._action(file, "&Close project", lambda: self.projects.close_project(), "Ctrl+Shift+W",
                     tip="Close the project and its images (unsaved edits are asked about); nothing is deleted")
        self._action(file, "Find &missing images…", self.show_relink,
                     tip="Look for the project's moved or renamed images in a folder and relink them "
                     "(their annotations follow)")
        self._action(file, "Project s&tatistics…", self.show_statistics,
                     tip="Images done and annotated, pixels and images per class")
        self.save_action = self._action(
            file, "&Save annotations", self.projects.save, "Ctrl+S",
            tip="Save every annotation with unsaved edits into the project (creating one first if needed)")
        self.annotator.panel.save_requested.connect(self.save_action.trigger)  # the Annotate panel's Save
        self._action(file, "&Import dataset…", self.show_import, tip="A CVAT/VOC, Cityscapes, CamVid, COCO, "
                     "labelme or Label Studio dataset (or label PNGs) into a project, with a preview")
        self._action(file, "&Export annotations…", self.show_export, "Ctrl+E",
                     tip="Write the project's annotations as .qgt, PNG, id PNG, CVAT/VOC, Cityscapes, CamVid, COCO, "
                     "labelme, Label Studio, level PNGs or JSON")
        file.addSeparator()
        self._action(file, "Save &screenshot…", self.save_screenshot_dialog, "Ctrl+Shift+S")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)

    def _image_menu(self, image: QtWidgets.QMenu) -> None:
        """Next / previous image and removing images (the uncertainty order adds its own entries after)."""
        self.next_image_action = self._action(image, "&Next image", lambda: self.step_image(1), ["PgDown", "N"])
        self.previous_image_action = self._action(image, "&Previous image", lambda: self.step_image(-1), ["PgUp", "P"])
        self._action(image, "&Remove from the list…", self.remove_current_images, "Ctrl+Del",
                     tip="Take the selected images out of the list and the project (their annotations are kept)")

    def _view_menu(self, view: QtWidgets.QMenu) -> None:
        """Zoom and the docks' show/hide switches."""
        self._action(view, "&Fit to window", self.canvas.fit, ["F", "Home"])
        self._action(view, "&Actual size (1:1)", self.canvas.actual_size, "Ctrl+1")
        self._action(view, "Zoom &in", lambda: self.canvas.zoom(1.25), ["+", "="])
        self._action(view, "Zoom &out", lambda: self.canvas.zoom(0.8), ["-"])
        self.zoom_box_action = self._action(view, "&Zoom-box mode", self.canvas.set_zoom_box, "Z", checkable=True,
                                            tip="Zoom-box mode (Z): left-drag draws a zoom box; hold Space to pan")
        view.addSeparator()
        for dock in (self.images_dock, self.layers_dock, self.explore_dock, self.annotate_dock, self.finetune_dock):
            view.addAction(dock.toggleViewAction())

    def _layers_menu(self, layers: QtWidgets.QMenu) -> None:
        """One checkable "Show …" per canvas layer (``self.layer_actions`` by layer key)."""
        self.layer_actions: dict[str, QtGui.QAction] = {}
        for key, layer in self.canvas.layers.items():
            keys = LAYER_KEYS.get(key) or (f"Alt+{key[1]}" if key.startswith("q") else ())
            action = self._action(layers, f"Show {layer.title.split('  ')[0]}", self._toggle_layer(key), keys,
                                  checkable=True, tip=layer.tooltip)
            action.setChecked(layer.visible)
            self.layer_actions[key] = action

    def _explore_menu(self, explore: QtWidgets.QMenu) -> None:
        """Depth (by level and by step), the propagation scheme, and τ."""
        for level in LEVELS:
            self._action(explore, f"Depth Q{level}", self._depth_setter(level), str(level))
        # Alt+[ / Alt+] too: annotation mode takes the digits (classes) and [ ] (cell level), not these
        self._action(explore, "Coarser (depth +1)", lambda: self._depth_step(1), ["[", "Alt+["])
        self._action(explore, "Finer (depth −1)", lambda: self._depth_step(-1), ["]", "Alt+]"])
        explore.addSeparator()
        for scheme, (text, _) in SCHEME_CHOICES.items():
            self._action(explore, f"Propagation: {text}", self._scheme_setter(scheme), SCHEME_KEYS[scheme])
        self._action(explore, "τ −0.05", lambda: self._tau_step(-0.05), ",")
        self._action(explore, "τ +0.05", lambda: self._tau_step(0.05), ".")

    def _model_menu(self, model: QtWidgets.QMenu) -> None:
        """Cancel, fine-tune, the bundled models, the device and the resolution."""
        self._cancel_action = self._action(model, "&Cancel computation", self.cancel, "Esc")
        self._action(model, "&Fine-tune on corrections…", self.show_finetune,
                     tip="Train the model a few hundred steps on the corrected images, compare, keep or revert")
        self.bundled_menu = model.addMenu("&Bundled models")
        self.bundled_menu.aboutToShow.connect(self._fill_bundled_menu)
        self._fill_bundled_menu()
        self._device_menu(model.addMenu("&Device"))
        self._resolution_menu(model.addMenu("&Resolution"))

    def _device_menu(self, device_menu: QtWidgets.QMenu) -> None:
        """Automatic / CPU / CUDA, one checked (``self.device_actions`` by choice); CUDA off until looked for."""
        self.device_actions: dict[str, QtGui.QAction] = {}
        group = QtGui.QActionGroup(self)
        for choice, text in (("auto", "Automatic (CUDA when available)"), ("cpu", "CPU"), ("cuda", "CUDA")):
            action = self._action(device_menu, text, self._device_setter(choice), checkable=True, section="Model")
            group.addAction(action)
            self.device_actions[choice] = action
        self.device_actions["auto"].setChecked(True)
        self.device_actions["cuda"].setEnabled(False)  # until the worker has looked

    def _resolution_menu(self, resolution_menu: QtWidgets.QMenu) -> None:
        """One checked choice of ``RESOLUTION_CHOICES`` (``self.resolution_actions`` by choice)."""
        self.resolution_actions: dict[str, QtGui.QAction] = {}
        group = QtGui.QActionGroup(self)
        for choice, text, tip in RESOLUTION_CHOICES:
            action = self._action(resolution_menu, text, self._resolution_setter(choice), checkable=True,
                                  section="Model", tip=tip)
            group.addAction(action)
            self.resolution_actions[choice] = action
        self.resolution_actions["auto"].setChecked(True)

    def _help_menu(self, help_menu: QtWidgets.QMenu) -> None:
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, ["F1", "?"])
        self._action(help_menu, "&About QGN Studio", self.show_about)

    def _main_toolbar(self) -> None:
        """Open, previous/next image, fit, 1:1 and zoom-box (the last shares the View menu's action)."""
        tools = self.addToolBar("Main")
        tools.setObjectName("main toolbar")
        tools.setMovable(False)
        style = self.style()
        for text, icon, action in (  # their tooltips name their keys, as the buttons after them do
            ("Open images", QtWidgets.QStyle.StandardPixmap.SP_DialogOpenButton, self.open_images_action),
            ("Open folder", QtWidgets.QStyle.StandardPixmap.SP_DirOpenIcon, self.open_folder_action),
            ("Previous image", QtWidgets.QStyle.StandardPixmap.SP_ArrowBack, self.previous_image_action),
            ("Next image", QtWidgets.QStyle.StandardPixmap.SP_ArrowForward, self.next_image_action),
        ):
            keys = ", ".join(k.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            tools.addAction(style.standardIcon(icon), f"{text} ({keys})", action.trigger)
        tools.addSeparator()
        self.fit_tool = tools.addAction(icons.fit_icon(), "Fit to window (F, Home)", self.canvas.fit)
        tools.addAction(icons.actual_size_icon(), "Actual size (Ctrl+1)", self.canvas.actual_size)
        self.zoom_box_action.setIcon(icons.zoom_box_icon())
        tools.addAction(self.zoom_box_action)

    # closures for the loops above
    def _toggle_layer(self, key):
        return lambda checked: self.set_layer_visible(key, checked)

    def _depth_setter(self, level):
        return lambda: self.explore.set_depth(level)

    def _scheme_setter(self, scheme):
        def choose() -> None:
            if self.explore.scheme_buttons[scheme].isEnabled():
                self.explore.set_scheme(scheme)

        return choose

    def _device_setter(self, choice):
        return lambda: self.set_device(choice)

    def _resolution_setter(self, choice):
        return lambda: self.worker.set_resolution(choice) if self.model_info is not None else None

    def _fill_bundled_menu(self) -> None:
        """Model → Bundled models: each shipped model with its classes and measured mIoU."""
        from qgn.resources import bundled_models

        self.bundled_menu.clear()
        current = None if self.model_info is None else resolved(self.model_info.path)
        for bundled in bundled_models():
            miou = bundled.miou
            score = f", mIoU {100 * miou:.1f} %" if miou is not None else ""
            trained = f", {bundled.trained_on}" if bundled.trained_on else ""
            text = f"{bundled.name} — {bundled.classes.num_classes} classes{trained}{score}"
            action = self.bundled_menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(current == resolved(bundled.path))
            action.setToolTip(", ".join(bundled.classes.names))
            action.triggered.connect(lambda _=False, p=bundled.path: self.load_model(p))
        if not self.bundled_menu.actions():
            self.bundled_menu.addAction("(none found)").setEnabled(False)

    def _banner_link(self, href: str) -> None:
        """A link in the message banner: ``model:NAME`` switches to that bundled model."""
        from qgn.resources import bundled_model_path

        if href == RELINK_LINK:
            self.show_relink()
        elif href.startswith("model:"):
            path = bundled_model_path(href.split(":", 1)[1])
            if path is not None:
                self.canvas.clear_message("truth")
                self.load_model(path)

    # ------------------------------------------------------------------ start
    def start(self, paths=(), model: str | None = None, device: str | None = None) -> None:
        """Start the workers, load the model (the bundled demo model when None), open ``paths``."""
        self.worker.start()
        self.thumbnails.start()
        if device:
            self.device_choice = device
            self.device_actions[device].setChecked(True)
        if model is None and self.settings is not None:
            remembered = self.settings.value("model/path", "")
            model = remembered if remembered and Path(remembered).is_file() else None
        self.worker.load_model(Path(model) if model else None, self.device_choice)
        paths = self.projects.paths_at_start(list(paths))
        if paths:
            self.open_paths(list(paths))
        self.projects.startup_recovery()  # autosaves of a session that did not end normally
        self.finetuner.offer_unkept(self.projects.scratch_path)  # ...and its fine-tuned model

    # ------------------------------------------------------------------ statistics, uncaught errors
    def show_statistics(self):
        """The project's statistics: images done, annotated, pixels and images per class."""
        from qgn_studio.statistics_dialog import StatisticsDialog

        dialog = StatisticsDialog(self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.projects.statistics(dialog.show_statistics, dialog.show_problem, dialog.show_counting)
        return dialog

    def show_uncaught(self, message: str) -> None:
        """An exception no code caught (``qgn_studio.uncaught``): one line naming it and its log."""
        import html

        self.canvas.show_message(html.escape(message), "error", "uncaught")  # the banner is rich text
        self.statusBar().showMessage(message, 15000)

    # ------------------------------------------------------------------ exploration
    def _setting_changed(self, setting: SchemeChoice) -> None:
        self._request()

    def _depth_step(self, delta: int) -> None:
        self.explore.set_depth(max(0, min(5, self.explore.setting().depth + delta)))

    def _tau_step(self, delta: float) -> None:
        tau = min(1.0, max(0.0, self.explore.tau.value() + delta))
        self.explore.tau.slider.setValue(round(tau * 100))

    def set_device(self, choice: str) -> None:
        self.device_choice = choice
        if self.model_info is not None:
            self.worker.set_device(choice)

    # ------------------------------------------------------------------ annotation
    def _annotation_mode_changed(self, on: bool) -> None:
        # in annotation mode F is the Fill tool: the toolbar says which key fits then
        self.fit_tool.setToolTip("Fit to window (Home)" if on else "Fit to window (F, Home)")
        if on:
            self.annotate_dock.show()
            self.annotate_dock.raise_()
        self.layer_panel.refresh(self.canvas.result)

    def show_finetune(self) -> None:
        self.finetuner.refresh_soon()  # coalesced with the count the tab's coming into view asks for
        self.finetune_dock.show()
        self.finetune_dock.raise_()

    def show_export(self) -> ExportDialog | None:
        """The export dialog (a project is created first when none is open)."""
        if self.projects.project is None and not self.projects.save():
            return None
        dialog = ExportDialog(self.projects, self.batch_jobs, self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_import(self):
        """The import dataset dialog; after an import the window opens the project."""
        from qgn_studio.import_dialog import ImportDialog

        dialog = ImportDialog(self.batch_jobs, self.projects.project, self, finished_unseen=self._import_finished_unseen)
        dialog.imported.connect(lambda report: self.projects.open_project(report.project.root))
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _import_finished_unseen(self, outcome) -> None:
        """An import that ended after its dialog closed (the ImportReport, or the failure's message):
        the user started it, so the window says how it went and opens the project it made."""
        from qgn_studio.import_dialog import import_summary

        if isinstance(outcome, str):
            self.workspace.warn(f"Import failed: {outcome}", "import", 10000)
            return
        text = import_summary(outcome)
        if outcome.project is None:
            self.workspace.warn(text, "import", 10000)
            return
        self.workspace.show_message(html.escape(text), "info", "import")
        self.projects.open_project(outcome.project.root)

    def _classes_edited(self, classes) -> None:
        """Renamed or recoloured classes: predictions and legend follow when they share the set."""
        if self.model_info is None or self.annotator.model_classes(self.model_info.classes) is classes:
            self.canvas.set_classes(classes)
            self.layer_panel.legend.set_classes(classes)
        self.canvas.refresh_layers()

    def _session_created(self, doc) -> None:
        self.images.update_document(doc)
        if doc is self.current:
            self.layer_panel.refresh(self.canvas.result)

    def _annotation_edited(self, session) -> None:
        doc = self.workspace.doc_for(session.path)
        if doc is not None:
            self.images.update_document(doc)
            if not session.dirty and session.autosaved_version > session.saved_version:
                # undone back to the saved map: its autosave holds edits the user took back, which redo
                # still has in memory only: moved to discarded/ (a crash then keeps them), never deleted
                self.projects.discard_autosaves([doc], undone=True)  # kept by content: a cycle adds nothing
                session.mark_autosaved(session.saved_version)
            if doc is self.canvas.doc and self._hover is not None:
                self._hovered(*self._hover)  # the class under a still pointer changed (a click, undo)
        self._update_title()

    # ------------------------------------------------------------------ layers
    def set_layer_visible(self, key: str, visible: bool) -> None:
        self.canvas.layers[key].set_visible(visible)
        self.layer_panel.set_visible(key, visible)
        self.layer_actions[key].setChecked(visible)
        self.annotator.layer_visibility(key, visible)

    def set_layer_opacity(self, key: str, opacity: float) -> None:
        self.canvas.layers[key].set_opacity(opacity)

    def _measure_changed(self, measure: str) -> None:
        self.canvas.layers["uncertainty"].set_measure(measure)

    def _show_autosaved(self, count: int) -> None:
        """A quiet sign in the status bar that unsaved edits are safe on disk."""
        if count:
            stamp = QtCore.QTime.currentTime().toString("HH:mm:ss")
            self.statusBar().showMessage(f"Autosaved {count} annotation{'s' if count != 1 else ''} at {stamp}", 5000)

    # ------------------------------------------------------------------ hover
    def _hovered(self, x: float, y: float) -> None:
        if math.isnan(x):
            self._hover = None
            self.hover_label.setText("")
            return
        self._hover = (x, y)
        classes = self.model_info.classes if self.model_info is not None else None
        self.hover_label.setText(hover_text(self.canvas.doc, self.canvas.result, classes, self.annotator.enabled, x, y))

    # ------------------------------------------------------------------ dialogs
    def show_shortcuts(self) -> None:
        ShortcutsDialog(self.shortcut_rows, self).exec()

    def show_about(self) -> None:
        show_about(self, self.model_info, None if self.model_info is None else self.model_info.device)

    def save_screenshot_dialog(self) -> None:
        """File → Save screenshot: a name typed without ".png" gets it (before the dialog asks about
        replacing a file), so the picture is written as PNG, not refused for want of a format."""
        dialog = QtWidgets.QFileDialog(self, "Save a screenshot", self.workspace.last_folder(), "PNG (*.png)")
        dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("png")
        if dialog.exec() and dialog.selectedFiles():
            self.save_screenshot(Path(dialog.selectedFiles()[0]))

    def save_screenshot(self, path: Path) -> bool:
        """The window as a picture at ``path``; the status bar says where, or why not and what to do
        (it said nothing, and a name without a known suffix wrote nothing)."""
        if self.grab().save(str(path)):
            self.workspace.show_status(f"Saved the screenshot as {path}", 8000)
            return True
        self.workspace.warn(f"Cannot save the screenshot as {path}: the folder is missing or not writable, or "
                            f"'{path.suffix}' is not a picture format Qt writes; choose another folder or a .png name",
                            "screenshot", 15000)
        return False

    def _update_title(self) -> None:
        parts = [APP_NAME]
        if self.current is not None:
            session = self.current.annotation
            parts.append(self.current.name + (" ●" if session is not None and session.dirty else ""))
        if self.projects.project is not None:
            parts.append(f"project {self.projects.project.root.name}")
        if self.model_info is not None:
            parts.append(f"{self.model_info.name} ({self.model_info.device})")
        self.setWindowTitle(" — ".join(parts))

    # ------------------------------------------------------------------ settings
    def _fill_recent_menu(self) -> None:
        from qgn_studio.project_controller import is_project_folder
        from qgn_studio.recent import RecentPaths

        self.recent_menu.clear()
        paths = RecentPaths(self.settings).paths()
        if not paths:
            self.recent_menu.addAction("(nothing yet)").setEnabled(False)
        for path in paths:
            kind = "Project" if is_project_folder(path) else "Folder" if path.is_dir() else "Image"
            action = self.recent_menu.addAction(f"{kind}: {path.name}  —  {path.parent}")
            action.triggered.connect(lambda _checked=False, p=path: self.open_paths([p]))

    def _restore(self) -> None:
        s = self.settings
        if s is None:
            return
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)  # then shrunk to the screen it is on now (a laptop after a monitor)
            self.resize(self.size().boundedTo(fitted_size(self.screen(), self.size())))
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        for key, layer in self.canvas.layers.items():
            visible = s.value(f"layers/{key}/visible")
            if visible is not None:
                self.set_layer_visible(key, str(visible).lower() == "true")
            opacity = s.value(f"layers/{key}/opacity")
            if opacity is not None:
                layer.set_opacity(float(opacity))
        self.layer_panel.set_measure(str(s.value("layers/uncertainty/measure", "entropy")))
        try:  # the key "explore/rule" keeps its old name, so saved settings stay valid
            setting = SchemeChoice(str(s.value("explore/rule", "pc")), float(s.value("explore/tau", 0.5)),
                              float(s.value("explore/entropy", 0.5)), int(s.value("explore/depth", 0)))
        except (TypeError, ValueError):
            setting = SchemeChoice()
        if setting.scheme == "gtc":
            setting = SchemeChoice("pc", setting.tau, setting.entropy, setting.depth)
        self.explore.set_setting(setting)
        self.finetuner.panel.set_learning(str(s.value("finetune/learns", "auto")))  # what a fine-tune trains
        self.device_choice = str(s.value("model/device", "auto"))
        if self.device_choice in self.device_actions:
            self.device_actions[self.device_choice].setChecked(True)
        self.zoom_box_action.setChecked(str(s.value("view/zoom_box", "false")).lower() == "true")
        self.canvas.set_zoom_box(self.zoom_box_action.isChecked())

    def _save(self) -> None:
        s = self.settings
        if s is None:
            return
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        for key, layer in self.canvas.layers.items():
            s.setValue(f"layers/{key}/visible", layer.visible)
            s.setValue(f"layers/{key}/opacity", round(layer.opacity, 3))
        s.setValue("layers/uncertainty/measure", self.canvas.layers["uncertainty"].measure)
        setting = self.explore.setting()
        s.setValue("explore/rule", setting.scheme)
        s.setValue("explore/tau", setting.tau)
        s.setValue("explore/entropy", setting.entropy)
        s.setValue("explore/depth", setting.depth)
        s.setValue("model/device", self.device_choice)
        s.setValue("finetune/learns", self.finetuner.panel.learning())
        s.setValue("view/zoom_box", self.zoom_box_action.isChecked())
        self.workspace.sync_settings()
