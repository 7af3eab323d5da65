"""QGN: Quadtree Generating Networks — quadtree semantic segmentation (the library; never imports Qt).

``__version__`` is the single source of the package version (``pyproject.toml`` reads it).

Layers, lowest first. A module imports its own layer and the layers below, never one above (imports
inside functions too), and there are no import cycles; ``tests/test_import_contracts.py`` checks it
with the same list:

- foundation: classes, label_map (label maps of a class set), fileio (atomic writes), processes (has a pid's process ended), export_lock (an
  export's lock on its output folder), imagefile,
  bounds (limits of user-typed settings), metrics, resources (bundled files), ground_truth,
  allocator (the C allocator's policy, set by the entry points), progress (a batch's time left),
  env (limits set by environment variables), shown (outside text on one line in a message)
- labels: quadtree (T-pyramid, Quadtree, ``.qgt``, label_io: reading a label file for a class set)
- data, sparse, propagation: data (datasets), sparse (submanifold convolutions), propagation
  (which sites go on: the schemes)
- model: model (encoder, decoder, QGN, checkpoints), loss
- inference: infer (``ImageSession``, ``Prediction``), evaluate, uncertainty, domain, project_head
- training: train
- files and projects: formats (one module per file format, import and export), annotation,
  classes_edit, project, project_removed, project_bring_back, project_import, project_class_edit,
  project_stats, project_relink, project_export, project_generations, project_kept, project_file,
  project_errors, project_images
- tools: bench, serve
- command line: cli, __main__
"""
__version__ = "0.2.0"
