"""QGN as a Label Studio ML backend (``qgn serve``).

The protocol, as Label Studio 1.23 speaks it (label_studio/ml/api_connector.py ``MLApi``, and
label-studio-ml-backend label_studio_ml/api.py, the reference server):

- ``GET /health`` → ``{"status": "UP", "model_class": ...}`` (Label Studio waits 1 s for it);
- ``GET /versions`` → ``{"versions": [...]}``, every model version served (oldest first; Label
  Studio offers them, and on a 404 the current one alone);
- ``POST /setup`` with ``{"project": "<id>.<created timestamp>", "schema": <labelling config XML>,
  "hostname": <Label Studio URL>, "access_token": <token>, "extra_params": ...}`` →
  ``{"model_version": ...}`` (3 s);
- ``POST /predict`` with ``{"tasks": [task, ...], "project": ..., "label_config": <XML>, "params":
  {...}}`` → ``{"results": [{"result": [...], "score": s, "model_version": v}, ...]}``, one per task
  in order (Label Studio stores ``result``, ``score`` and ``model_version`` of each as a prediction);
- ``POST /webhook`` with ``{"action": "ANNOTATION_CREATED" | "START_TRAINING" | ..., "project":
  {...}, "task": ..., "annotation": ...}`` (the webhook Label Studio creates for an ML backend, for
  every action, with its payload; Label Studio waits 1 s for the answer and never reads it:
  webhooks/utils.py ``run_webhook_sync``, ``WEBHOOK_TIMEOUT``). ANNOTATIONS_CREATED has lists for
  ``task`` and ``annotation``; START_TRAINING comes from ml/api_connector.py ``train`` (100 s).

Modules: ``label_config`` (what the config asks for), ``backend`` (``QGNBackend``: the versions
served, ``/setup``; made of the rest), ``predictions`` (``/predict``), ``webhooks`` (``/webhook``, a
held one read again), ``corrections`` (the annotations kept for the next fine-tune), ``finetuning``
(a fine-tune, on its thread), ``images`` (a task's image), ``request`` (a request's checks and the errors it answers with), ``fetch`` (fetching
an image over HTTP(S)), ``staging`` (the folders a version is saved and an image fetched into),
``lineage`` (the fine-tuned versions' names and chain), ``flagged`` (the score of an image the
domain check flags), ``training_log`` (a fine-tune's progress), ``kept`` (the annotations kept for
fine-tuning, on disk so a restart keeps them), ``inorder`` (webhook work in arrival order, answered
within Label Studio's wait), ``body`` (a request's JSON read with bounded memory), ``server``
(HTTP), ``limits`` (the limits a deployment may move, from the environment); a
client's text in errors and the log is ``qgn.shown.echo``'d (bounded, control characters escaped).
"""
