"""QGN Studio: a desktop app (PySide6 + pyqtgraph) over the ``qgn`` library.

Run ``qgn-studio [PATHS…] [--model M]`` or ``python -m qgn_studio``. The app holds no model logic:
what a widget shows, ``qgn`` computes. Its modules come in four layers; a module imports from its
own layer and the layers listed before it, never from a later one.

1. State and work, no widgets (``QtCore``/``QtGui`` at most, so a test needs no window):

* ``workspace``       the app's state — open documents, the current one, model info, class set,
                      project, settings — and what the user should be told, all announced as signals
* ``document``        one image: pixels, ground truth, results, the accuracy-vs-compute curve
* ``annotation_doc``  one image's annotation as edited: label map, live quadtree, undo log
* ``discovery``       finding images and their ground truth on disk (no Qt)
* ``engine``          the model side: sessions, RenderResults, measurements (no Qt; worker threads)
* ``jobs``            one serial thread for file work (save, autosave, load, export); callbacks on the UI thread
* ``recent``          File ▸ Open recent;  ``class_keys``  which key picks which class;
  ``image_filter``    which rows the image list shows
* ``shell``           the three things a controller asks of the window: open or close images, load a model
* ``recovery_question``  what the crash-recovery question says (whose autosaves, which images, when)
* ``unkept_models``   fine-tuned models a SIGTERM set aside in the scratch folder, offered at the next start (no Qt)
* ``gc_pause``        the garbage collector paused while many long-lived objects are made (no Qt)
* ``scratch``         scratch projects: where autosaves go without a project, one per class set
* ``torch_loading``   ``import torch`` on a worker thread without freezing the UI thread for long
* ``uncaught``        exceptions nobody caught: logged, and said in the window
* ``termination``     SIGTERM: the window closes as a normal close without questions, edits autosaved first

2. Widgets:

* ``canvas``          the pyqtgraph view and one class per overlay layer; ``canvas.painter``
                      colours big images' overlay pictures on a thread of its own
* ``panels``          images, layers + legend, explore (sliders, readout, accuracy-vs-compute plot),
                      annotate, fine-tune; the status bar's task progress
* ``tools``           paint / fill / erase / pick and the image-aware tools as undoable edits, and
                      the controller that turns gestures into them
* ``workers``         the threads: inference, background measurements, thumbnails (they build the
                      canvas's outlines off the UI thread, so this imports ``canvas.paths``)
* ``ask``             the controllers' questions as modal dialogs (``testing.Answers`` in tests)
* ``dialogs`` (shortcuts, About), ``class_dialog``, ``export_dialog``, ``import_dialog``,
  ``statistics_dialog``, ``relink_dialog`` (File ▸ Find missing images…); ``job_dialog`` (their base: a job that outlives its dialog, Cancel); ``icons``, ``style``, ``compat`` (a PySide6 6.12.0 work-around)

3. Controllers — each takes the workspace and the services it needs (jobs, the engine, ``ask``,
   ``shell``), never the window (``tests/app`` runs them without one):

* ``project_controller``  projects: opening, saving, closing, their images; with four mixins, one a concept:
* ``project_autosave``    autosave and crash recovery
* ``project_marks``       done marks: written into the project, kept without one
* ``project_class_changes`` class changes: this window's written into the project, another writer's followed
* ``project_watch``       another writer's changes on disk: the watch and what it shows
* ``project_open``        reading a project to open it, on the job thread
* ``annotator``           annotation mode: tools, classes, starts, undo (builds its panel); with one mixin:
* ``annotator_class_changes`` class changes of the open maps: rename, merge, delete, their undo and queue
* ``carry_controller``    the "Previous" start: the previous image's labels carried by optical flow
* ``finetuner``           fine-tune on corrections, compare, keep or revert (builds its panel)
* ``head_controller``     the per-project head and the model's out-of-domain warning
* ``uncertainty_order``   which image (and region) next, by the model's uncertainty

4. The window and the entry point:

* ``main_window``     docks, menus, shortcuts, settings: builds the controllers over the workspace and
                      shows what the workspace announces
* ``app``             entry point: arguments, QApplication, ``--screenshot``; ``__main__``: ``python -m qgn_studio``
* ``testing``         helpers for tests and benchmarks: a tiny model, sample files, ``Answers``, ``FakeShell``
"""
