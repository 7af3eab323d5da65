"""QGN Studio: a desktop app (PySide6 + pyqtgraph) over the ``qgn`` library.

Run ``qgn-studio [PATHS…] [--model M]`` or ``python -m qgn_studio``. Modules:

* ``app``          entry point: arguments, QApplication, ``--screenshot``
* ``main_window``  docks, menus, shortcuts, settings; wires panels to the workers
* ``document``     an image, its ground truth and results; settings and lookups (no widgets)
* ``discovery``    finding images and their ground truth on disk (no Qt)
* ``engine``       the model side: sessions, RenderResults, measurements (no Qt; worker threads)
* ``workers``      the threads: inference, background measurements, thumbnails
* ``canvas``       the pyqtgraph view and one class per overlay layer
* ``panels``       images, layers + legend, explore (sliders, readout, accuracy-vs-compute plot)
* ``dialogs``, ``icons``, ``style``, ``compat`` (a PySide6 6.12.0 work-around), ``testing``
"""
