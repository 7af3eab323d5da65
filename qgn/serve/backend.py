"""``QGNBackend``: the ML backend without HTTP, made of its halves - ``Predictions`` (``/predict``),
``Webhooks`` (``/webhook``), ``Corrections`` (the annotations kept for a fine-tune), ``FineTuning``,
``TaskImages`` (a task's image) and ``StagedVersions`` (a new version's files), each in its own
module. Here: its state, the versions it serves (each with its domain reference; a restart's
``resume`` of the newest fine-tuned one), ``/health``, ``/versions``, ``/setup`` and ``stop``. What
the backend does as a whole (pre-annotations, score, domain check, images, fine-tuning, limits):
``qgn.serve``'s docstring.
"""
from __future__ import annotations

import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from qgn.fileio import resolved
from qgn.shown import echo
from . import images
from .corrections import Corrections
from .fetch import origin
from .finetuning import FineTuning
from .images import TaskImages
from .inorder import InOrder
from .kept import KeptAnnotations
from .label_config import brush_target
from .limits import max_response_bytes, max_tasks, predict_deadline_s
from .lineage import ServedModel, finetuned_files, finetuned_number, lineage, model_version_name
from .predictions import Predictions
from .request import RequestError
from .staging import FETCH_PREFIX, StagedVersions, remove_stale_staging
from .webhooks import Webhooks


class QGNBackend(Predictions, Webhooks, Corrections, FineTuning, TaskImages, StagedVersions):
    """QGN as a Label Studio ML backend, without HTTP (``qgn.serve``'s docstring). Here: the versions it
    serves, ``/health``, ``/versions``, ``/setup`` and ``stop``; the rest is its halves: ``Predictions``
    (``/predict``), ``Webhooks`` (``/webhook``), ``Corrections`` (the annotations kept for a fine-tune),
    ``FineTuning``, ``TaskImages`` (a task's image) and ``StagedVersions`` (a new version's files)."""

    def __init__(self, model_path, device: str = "cpu", document_root=None, token: str | None = None,
                 train_out=None, train_every: int = 10, finetune_iterations: int = 100, version: str | None = None,
                 label_studio_url: str | None = None, domain_check: bool = True, finetune_encoder: str = "auto"):
        from qgn.model.checkpoint import load_model

        self.device = device
        self.domain_check = domain_check
        path = Path(model_path)
        self.original = path
        self.current = self.served(version or model_version_name(path), path, load_model(path, device))
        self.versions = [self.current.version]  # every version served, oldest first (GET /versions)
        # (a loop of links there: LinkLoopError, one line naming it, never Python's RuntimeError)
        self.document_root = resolved(document_root) if document_root else None
        self.token = token
        # an explicit Label Studio URL is kept; /setup (unauthenticated) only fills one in when none was given
        self.hostname: str | None = label_studio_url.rstrip("/") if label_studio_url else None
        self.hostname_fixed = bool(label_studio_url)
        self.train_out = Path(train_out) if train_out else None
        self.train_every, self.finetune_iterations = max(1, train_every), finetune_iterations
        if finetune_encoder not in ("auto", "frozen", "train"):
            raise ValueError(f"what a fine-tune lets learn is auto, frozen or train; got {finetune_encoder!r}")
        self.finetune_encoder = finetune_encoder  # auto: the dock's Automatic on the annotations kept (FineTuning)
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
