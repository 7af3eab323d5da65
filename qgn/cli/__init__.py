"""The ``qgn`` command line: one small module per subcommand, imported only when it runs.

``main`` parses the subcommand and turns every failure into one line ``qgn CMD: error: …`` (exit 2).
Subcommand modules: ``stats``, ``convert``, ``export``, ``predict``, ``train``, ``samples``,
``eval``, ``finetune``, ``models``, ``bench`` (``bench_annotate`` for ``--only annotate``),
``serve``, ``importer`` (``qgn import``). Options several subcommands share: ``files`` (the paths a
user typed → the files to work on), ``device`` (``--device``, checked before any work) and
``threads`` (``--threads N``).
"""
