"""The ML backend's work, without HTTP: the model (and the versions fine-tuning makes), a task's
image, its pre-annotation and score, and the annotations Label Studio sends back.

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
  ``FLAGGED_SCORE`` (the farther from the training images, the lower); see ``flagged_answer``.
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
  task's image and annotation (the latest per task, at most ``MAX_CORRECTIONS``); ANNOTATIONS_CREATED
  (*Create Annotations From Predictions*, in bulk) is not learnt from — those are the model's own
  predictions, not reviewed yet; each is learnt from once a person updates it (ANNOTATION_UPDATED).
  Every ``train_every`` new ones, or on START_TRAINING, a
  background thread fine-tunes the current model (``qgn.train.finetune``) into
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
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from qgn.shown import echo
from . import images
from .corrections import Corrections
from .fetch import origin
from .finetuning import FineTuning
from .images import TaskImages
from .inorder import Busy, InOrder
from .kept import PENDING, KeptAnnotations, arrival
from .label_config import brush_target
from .limits import max_response_bytes, max_tasks, predict_deadline_s
from .lineage import ServedModel, finetuned_files, finetuned_number, lineage, model_version_name
from .predictions import Predictions
from .request import DELETIONS, NoLabelStudio, PassingFailure, RequestError, annotation_parts, check_type, held_ids
from .staging import FETCH_PREFIX, StagedVersions, remove_stale_staging

HELD_RETRY_S = (30.0, 60.0, 120.0, 300.0, 600.0)  # a held webhook's reads again after a PassingFailure, then every last
HELD_RETRY_FOR_S = 24 * 3600.0  # for at most this long after its first failure (in a server's life), then set aside
HELD_RETRY_LOG_EVERY = 10  # the log says a webhook's first failed read, then every 10th


class QGNBackend(Predictions, Corrections, FineTuning, TaskImages, StagedVersions):
    def __init__(self, model_path, device: str = "cpu", document_root=None, token: str | None = None,
                 train_out=None, train_every: int = 10, finetune_iterations: int = 100, version: str | None = None,
                 label_studio_url: str | None = None, domain_check: bool = True):
        from qgn.model.checkpoint import load_model

        self.device = device
        self.domain_check = domain_check
        path = Path(model_path)
        self.original = path
        self.current = self.served(version or model_version_name(path), path, load_model(path, device))
        self.versions = [self.current.version]  # every version served, oldest first (GET /versions)
        self.document_root = Path(document_root).resolve() if document_root else None
        self.token = token
        # an explicit Label Studio URL is kept; /setup (unauthenticated) only fills one in when none was given
        self.hostname: str | None = label_studio_url.rstrip("/") if label_studio_url else None
        self.hostname_fixed = bool(label_studio_url)
        self.train_out = Path(train_out) if train_out else None
        self.train_every, self.finetune_iterations = max(1, train_every), finetune_iterations
        self.infer_lock = threading.Lock()  # one inference at a time; /health never takes it
        self.state_lock = threading.Lock()
        self.corrections: OrderedDict = OrderedDict()
        self.seq: dict = {}  # key of a kept annotation -> the order it came in (qgn.serve.kept)
        self.arrived: dict = {}  # key of a kept annotation -> its webhook's arrival (qgn.serve.kept.arrival)
        self.next_seq = 0  # the next annotation's (never one given before, deleted ones' included)
        self.unread: list[Path] = []  # held webhooks of a killed server not read yet: tried again at /setup
        self.unread_ids: dict = {}  # each one's (project id, task id, annotation id): a deletion drops it
        # (project id, task id) -> the held webhook kept because the kept file of its annotation could not
        # be written (a full disk): read again at the next start, until a newer one of the task is written
        # or a deletion drops it (UNWRITTEN: its webhook is still being read)
        self.unwritten: dict = {}
        self.retries: dict = {}  # held webhook -> (when it is read again (monotonic), its try, its first failure)
        self.retry_wake = threading.Condition(self.state_lock)  # the one retry thread waits on it (retry_loop)
        self.retry_thread: threading.Thread | None = None
        self.new_since_training = 0
        self.training: threading.Thread | None = None
        self.training_running = False  # a fine-tune runs (set and cleared under state_lock)
        self.training_again = False  # another was asked for while it ran
        self.training_status = "idle"
        self.stopping = threading.Event()  # set by stop(): a running fine-tune ends at its next step
        self.cache: OrderedDict = OrderedDict()
        self.fetch_slots = threading.BoundedSemaphore(images.MAX_FETCHES)  # read by TaskImages.fetch
        self.max_tasks, self.max_response_bytes = max_tasks(), max_response_bytes()
        self.predict_deadline_s = predict_deadline_s()
        self.webhooks = InOrder()  # annotation webhooks' work, in the order they came (qgn.serve.inorder)
        self.resume_notes: list[str] = []  # what a restart found in train_out and did not serve (for the log)
        self.kept = KeptAnnotations(self.train_out) if self.train_out is not None else None
        self.resume_notes += [f"removed {p}, an image fetched by a qgn serve that was killed" for p in
                              remove_stale_staging(Path(tempfile.gettempdir()), FETCH_PREFIX)]
        if self.train_out is not None:
            unlocked = self.kept.claim()  # TrainOutInUse: another server fine-tunes into this folder
            if unlocked is not None:  # a file system without locks: goes on, as a project's writes do there
                self.resume_notes.append(unlocked)
            self.resume_notes += [f"removed {p}, left by a qgn serve that was killed" for p in
                                  remove_stale_staging(self.train_out)]
            self.resume()
            self.resume_kept()

    def served(self, version: str, path: Path, model) -> ServedModel:
        """The version ``version`` of ``model`` (saved at ``path``), with its domain reference when
        the domain check is on: loaded here, once per version (``qgn.domain.load_reference``: made
        for this very file, its SHA-256, and readable). A version without one is served without the
        check — every image gets its prediction — and the log says so, once."""
        reference = None
        if self.domain_check:
            from qgn.domain import load_reference

            try:
                reference, why = load_reference(path)
            except OSError as exc:  # the model file itself unreadable now (its SHA-256)
                why = f"{path}: {exc.strerror or exc}"
            if reference is None:
                self.domain_note(version, why)
        return ServedModel(version, path, model, reference)

    @staticmethod
    def domain_note(version: str, why: str) -> None:
        """The log's one line on a version served without the domain check, and why."""
        print(f"qgn serve: {version}: no domain check ({why}): every image gets its prediction", file=sys.stderr,
              flush=True)

    def resume(self) -> None:
        """Serve the newest version in ``train_out`` fine-tuned from the original (each
        ``<stem>-ls<n>`` from the one before, as its JSON's ``extra.finetune.from`` says), so a
        restarted ``qgn serve`` goes on from its last fine-tune instead of the original model —
        whose next fine-tune would start over on the annotations made since the restart alone."""
        from qgn.model.checkpoint import load_model

        found = finetuned_files(self.train_out, self.original)
        for n, path in reversed(found):
            chain = lineage(path, self.original, 2 * len(found) + 2)  # a bound on a chain that loops
            if chain is None:
                self.resume_notes.append(f"{path} was not fine-tuned from {self.original}; not served")
                continue
            try:
                model = load_model(path, self.device)
            except (OSError, ValueError) as exc:
                self.resume_notes.append(f"{path} cannot be loaded ({exc}); not served")
                continue
            base = model_version_name(self.original)
            numbers = [finetuned_number(p, self.original) for p in chain]
            self.current = self.served(f"{base}-ls{n}", path, model)
            self.versions = [self.versions[0], *(f"{base}-ls{k}" for k in numbers if k is not None)]
            return

    def read_held(self, path: Path, attempt: int = 0, since: float | None = None) -> None:
        """Read the webhook held in ``path`` (``resume_kept``; webhook thread). When its image cannot be
        fetched yet (no Label Studio URL is known: Label Studio has not connected) the file stays,
        tried again at the next ``/setup`` and the next start; so it does after a failure that may pass
        (``PassingFailure``: Label Studio down or overloaded), read again after ``HELD_RETRY_S``
        too, for ``HELD_RETRY_FOR_S`` after its first failure (``since``, monotonic). Any other
        failure can only repeat, so the file is moved into ``kept-annotations/failed/`` (kept, not
        read again; its reason beside it) and the log says where and how to have it read again."""
        if not path.is_file():
            return  # read meanwhile (a /setup's reading and a retry's), or dropped by a deletion
        body = None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            action = body.get("action")
            project = body.get("project") or {}
            if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", *DELETIONS) and isinstance(project, dict):
                self.read_webhook(action, body, project, arrival(path))
        except NoLabelStudio as exc:
            print(f"qgn serve: warning: the webhook held in {path} before a restart cannot be read yet ({exc}); "
                  "it stays there, tried again when Label Studio connects (/setup) and at the next start",
                  file=sys.stderr, flush=True)
            with self.state_lock:
                self.unread.append(path)
                self.unread_ids[path] = held_ids(body)
            return
        except PassingFailure as exc:
            since = time.monotonic() if since is None else since
            if time.monotonic() - since >= HELD_RETRY_FOR_S:
                self.set_aside_held(path, f"{exc}; still so after {HELD_RETRY_FOR_S / 3600:g} h of tries")
                return
            delay = HELD_RETRY_S[min(attempt, len(HELD_RETRY_S) - 1)]
            if attempt <= 1 or attempt % HELD_RETRY_LOG_EVERY == 0:  # not a line every try for a day
                print(f"qgn serve: warning: the webhook held in {path} cannot be read now ({exc}; try {attempt + 1}, "
                      f"said every {HELD_RETRY_LOG_EVERY}th); it stays there, tried again in {delay:g} s (for "
                      f"{HELD_RETRY_FOR_S / 3600:g} h) and at the next start", file=sys.stderr, flush=True)
            self.read_held_later(path, body, attempt + 1, delay, since)
            return
        except Exception as exc:
            self.set_aside_held(path, str(exc))
            return
        if not self.stays_held(path, body):
            self.kept.release(path)

    def set_aside_held(self, path: Path, why: str) -> None:
        """The held webhook ``path`` can never be read (``why``): into ``kept-annotations/failed/``,
        its reason beside it, and the log says so."""
        try:
            aside = self.kept.set_aside(path, why)
            aside = (f"{aside} (move it into a new folder in {aside.parent.parent / PENDING}/ and restart qgn "
                     "serve to have it read again)")
        except OSError as move:
            aside = f"{path} (it could not be moved: {move})"
        print(f"qgn serve: warning: the webhook held in {path} before a restart cannot be read ({why}); "
              f"it is not learnt from, and kept in {aside}", file=sys.stderr, flush=True)

    def read_held_later(self, path: Path, body, attempt: int, delay: float, since: float | None = None) -> None:
        """Read the held webhook ``path`` again in ``delay`` seconds (``retry_loop``; on the webhook
        thread), unless a ``/setup`` read it first, a deletion dropped it, or the server stops. Until
        then it is one of ``unread``: a deletion naming its annotation drops it, as any held one."""
        with self.state_lock:
            if path not in self.unread:
                self.unread.append(path)
            self.unread_ids[path] = held_ids(body)
            self.retries[path] = (time.monotonic() + delay, attempt, time.monotonic() if since is None else since)
            if self.retry_thread is None:
                self.retry_thread = threading.Thread(target=self.retry_loop, daemon=True, name="qgn-serve-retries")
                self.retry_thread.start()
            self.retry_wake.notify()

    def retry_loop(self) -> None:
        """The one thread that reads held webhooks again when their back-off is over, one at a time:
        each waits for the one before to be read, so retries take at most one of the webhook queue's
        places (``qgn.serve.inorder.LIMIT``), never those of the webhooks Label Studio sends live."""
        while True:
            with self.state_lock:
                while not self.stopping.is_set():
                    due = min(((when, str(path), path) for path, (when, *_) in self.retries.items()), default=None)
                    if due is not None and due[0] <= time.monotonic():
                        break
                    self.retry_wake.wait(None if due is None else due[0] - time.monotonic())
                else:
                    return
                path = due[2]
                _, attempt, since = self.retries.pop(path)
                if path not in self.unread:
                    continue  # read meanwhile (a /setup), or dropped by a deletion or a newer annotation
                self.unread.remove(path)
                self.unread_ids.pop(path, None)
            read = threading.Event()

            def work(path=path, attempt=attempt, since=since) -> None:
                try:
                    self.read_held(path, attempt, since)
                finally:
                    read.set()

            try:
                self.webhooks.run_later(work)
            except Busy:
                return  # stopped meanwhile: the file stays, read at the next start
            while not read.wait(1.0):
                if self.stopping.is_set():
                    return

    # ------------------------------------------------------------------------------- protocol
    def health(self) -> dict:
        return {"status": "UP", "model_class": "QGN", "model_version": self.current.version,
                "training": self.training_status}

    def model_versions(self) -> dict:
        """GET /versions (label_studio/ml/api_connector.py ``get_versions``; Label Studio lists them
        for the ML backend, and on a 404 only the current one with "Upgrade your ML backend")."""
        with self.state_lock:
            return {"versions": list(self.versions)}

    def setup(self, body: dict) -> dict:
        schema = body.get("schema")
        if schema:
            self.check_target(brush_target(schema))
        hostname, token = body.get("hostname"), body.get("access_token")
        with self.state_lock:
            if not self.hostname_fixed and isinstance(hostname, str) and hostname.startswith(("http://", "https://")):
                if self.hostname is not None and origin(hostname) != origin(self.hostname):
                    raise RequestError(f"qgn serve already serves the Label Studio at {echo(self.hostname)} (named by the first "
                                       f"/setup; its token goes there only), not {echo(hostname)}: restart qgn serve to "
                                       "connect another, or start it with --label-studio-url", 409)
                self.hostname = hostname.rstrip("/")
            if isinstance(token, str) and token and not self.token:
                self.token = token
            unread, self.unread, self.unread_ids = self.unread, [], {}
        for path in unread:  # held webhooks whose image could not be fetched before Label Studio connected
            self.webhooks.run_later(lambda path=path: self.read_held(path))
        return {"model_version": self.current.version}

    def webhook(self, body: dict, arrived: float | None = None) -> dict:
        """A webhook's answer: its work's result when that ends within ``qgn.serve.inorder.WAIT_S`` of
        ``arrived`` (``time.monotonic()`` of the request's first byte; default now), else
        ``accepted`` while the work goes on in order (see ``qgn.serve.inorder``)."""
        action = body.get("action")
        if action not in ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "START_TRAINING",
                          *DELETIONS):
            return {"status": "ignored", "reason": f"no fine-tuning on {echo(repr(action))}"}
        if self.train_out is None:
            return {"status": "ignored", "reason": "fine-tuning is off: start qgn serve with --train-out DIR"}
        if action == "ANNOTATIONS_CREATED":  # fine-tuning on them would teach the model its own mistakes
            created = body.get("annotation")
            return {"status": "ignored", "annotations": len(created) if isinstance(created, list) else 0,
                    "reason": "annotations created from predictions are the model's own output, not reviewed yet: "
                              "each is learnt from once a person updates it in Label Studio"}
        project = body.get("project")
        if project is None:
            project = {}
        check_type(project, "project", dict)
        check_type(project.get("id"), "project.id", (int, str, type(None)))
        if action in DELETIONS:
            check_type(body.get(DELETIONS[action]), DELETIONS[action], list)
        elif action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            annotation_parts(body)  # its shape is answered at once

        held = self.kept.hold(body) if action != "START_TRAINING" else None  # a deletion too: read after the rest
        stamp = arrival(held) if held is not None else time.time_ns()

        def work() -> dict:
            retried = False
            try:
                return self.read_webhook(action, body, project, stamp)
            except PassingFailure as exc:  # Label Studio down: its held body is read again, not dropped
                if held is None:
                    raise
                retried = True
                self.read_held_later(held, body, 1, HELD_RETRY_S[0], time.monotonic())
                raise PassingFailure(f"{exc}; the webhook is kept in {held}, read again in {HELD_RETRY_S[0]:g} s and "
                                     "at the next start", exc.status) from None
            finally:
                if not retried and not self.stays_held(held, body):
                    self.kept.release(held)

        try:
            answer = self.webhooks.run(work, f"{action} of project {echo(project.get('id'))}", arrived)
        except Busy as exc:
            if held is None:
                raise RequestError(str(exc), 503) from None  # refused unread, nothing of it kept
            if self.stopping.is_set():  # its file stays: read at the next start
                raise RequestError(f"{exc}; the webhook is kept in {held}, read at the next start", 503) from None
            self.read_held_later(held, body, 0, 0.0)  # Label Studio sends it once: read once the queue has room
            return {"status": "accepted", "reason": f"{exc}: this one is kept in {held} and read once the ones "
                                                    "before it are", "waiting": self.webhooks.waiting()}
        if answer is None:
            return {"status": "accepted", "reason": "still being read (Label Studio waits 1 s); in the order the "
                                                    "webhooks came, failures in the server's log",
                    "waiting": self.webhooks.waiting()}
        return answer

    def read_webhook(self, action: str, body: dict, project: dict, stamp: int | None = None) -> dict:
        """An annotation or deletion webhook's work, or START_TRAINING's (webhook thread); ``stamp``:
        its arrival (``qgn.serve.kept.arrival``; default now)."""
        stamp = time.time_ns() if stamp is None else stamp
        if action in DELETIONS:
            return self.forget_corrections(project.get("id"), body.get(DELETIONS[action]), action, stamp)
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            self.keep_correction(body, project, stamp)
        return self.after_keeping(action)

    def after_keeping(self, action: str) -> dict:
        """After an annotation webhook's work: a fine-tune when START_TRAINING or ``train_every``
        new annotations ask for one (``request_training``), else what is kept."""
        with self.state_lock:
            count = len(self.corrections)
            if count and (action == "START_TRAINING" or self.new_since_training >= self.train_every):
                return self.request_training()
        return {"status": "kept", "corrections": count, "train_every": self.train_every}

    def stop(self, timeout: float = 60.0) -> None:
        """Ends a running fine-tune at its next step or image (nothing saved), starts no other (the
        webhooks still waiting are not read; ``request_training`` refuses) and waits for it: the
        process leaving while torch trained on another thread aborted ("terminate called without an
        active exception", SIGABRT) on Ctrl-C or SIGTERM."""
        with self.state_lock:  # request_training decides under it: none starts after this
            self.stopping.set()
            self.retry_wake.notify_all()
        self.webhooks.stop(timeout)
        with self.state_lock:
            training = self.training
        if training is not None:
            training.join(timeout)
