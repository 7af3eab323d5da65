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

What the backend does (``QGNBackend``, its work without HTTP):

- A pre-annotation is ``qgn predict``'s label map (the PC scheme at depth 0, ``qgn.infer``) as one
  ``brushlabels`` result per class, with the ``from_name``/``to_name`` and label values of the
  config it was sent: each model class goes to the config label its name matches
  (``qgn.classes.match_class_names``); classes no label matches are left out.
- ``score`` is the model's confidence, 1 − the image's mean normalised entropy
  (``qgn.uncertainty``): Label Studio's uncertainty sampling serves the task with the *lowest*
  prediction score next (label_studio/projects/functions/next_task.py ``_try_uncertainty_sampling``
  orders by ``predictions__score``), so the most uncertain image comes first - where the project
  has one annotator: with several it picks at random among the unlocked tasks with a prediction
  (``_get_random_unlocked``, ``order_by('?')``), whatever their scores.
- The domain check (``domain_check``, on by default; ``qgn.domain``): where the served version has
  a reference (``<model>.domain.json`` beside it, made for that very file), each task's image is
  judged from the encoder features its prediction computes (no second encoder pass). An image
  unlike the model's training images gets no brush results — its annotator starts from an empty
  map, as in the app, where the prediction's start cost 15-22 % more actions — and a score below
  ``flagged.FLAGGED_SCORE`` (the farther from the training images, the lower); see ``flagged_answer``.
- ``model_version`` is ``qgn-<model name>``, ``…-ls<n>`` for the n-th fine-tuned version.
- Images: ``/data/local-files/?d=PATH`` is read from ``document_root`` (as Label Studio's own
  ``LOCAL_FILES_DOCUMENT_ROOT``; the path must stay inside it) when one is set; other Label Studio
  addresses (``/data/upload/…``) and http(s) URLs are fetched, with the token ``/setup`` sent (or
  ``token``) only to Label Studio's own origin — scheme, host and port of ``label_studio_url``, else
  of the hostname the first ``/setup`` sent (a later ``/setup`` naming another origin gets a 409:
  ``/setup`` is unauthenticated, and the token must not follow it) — and to no other hop of a
  redirect (``Bearer`` for a JWT, else ``Token``, as the SDK's ``get_local_path``). A fetch streams
  into a temporary file (at most ``MAX_IMAGE_BYTES``) and is cut off after ``FETCH_DEADLINE_S`` in
  all; at most ``MAX_FETCHES`` run at once, so what fetching holds is bounded however many requests
  come in. A local path is read only inside ``document_root``. All of it: ``qgn.serve.images``.
- Fine-tuning (``/webhook``) is on only with ``train_out``: ANNOTATION_CREATED/UPDATED keep the
  task's image and annotation (the latest per task, at most ``corrections.MAX_CORRECTIONS``); ANNOTATIONS_CREATED
  (*Create Annotations From Predictions*, in bulk) is not learnt from — those are the model's own
  predictions, not reviewed yet; each is learnt from once a person updates it (ANNOTATION_UPDATED).
  Every ``train_every`` new ones, or on START_TRAINING, a
  background thread fine-tunes the current model (``qgn.train.finetune``; what learns:
  ``finetune_encoder``, by default the dock's Automatic, ``FineTuning.learns``) into
  ``train_out/<name>-ls<n>.safetensors`` — a new file, never the original — and serves it from then
  on. At most one fine-tune runs; see ``request_training``.
  A restarted ``qgn serve`` serves the newest version in ``train_out`` fine-tuned from its model
  (``resume``) and learns from the annotations it kept before (``qgn.serve.kept``: each is written to
  ``train_out/kept-annotations/`` as it is kept, and a webhook's body from its arrival until it is
  read, so a kill loses none); a staging folder a killed
  server left in ``train_out`` (``.qgn-serve-*``) is removed once no process holds it
  (``remove_stale_staging``).
  ANNOTATIONS_DELETED and TASKS_DELETED drop the kept annotations they name. A webhook's work runs
  in arrival order on one thread and is answered ``accepted`` when it would outlast Label Studio's
  1 s wait (``qgn.serve.inorder``).
- ``/predict`` answers at most ``QGN_SERVE_MAX_TASKS`` tasks and ``QGN_SERVE_MAX_RESPONSE_BYTES`` of
  results (``qgn.serve.limits``); see ``predict``.

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
