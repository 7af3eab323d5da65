"""``QGNBackend``'s fine-tunes (``FineTuning``): at most one runs, on a background thread, on the
annotations kept (``qgn.serve.corrections``), into the next version in ``train_out``
(``qgn.serve.staging``), which is served from then on; its progress is ``/health``'s ``training``
and lines in the log (``qgn.serve.training_log``)."""
from __future__ import annotations

import threading
import time

from .lineage import ServedModel, model_version_name
from .training_log import TrainingLog


def what_learns(encoder: str, asked: str) -> str:
    """The log's line on what a fine-tune lets learn (``encoder``, decided from ``--train-encoder``
    ``asked``)."""
    from qgn.train.finetune import ENCODER_LEARNS_FROM

    if encoder == "train":
        return "the encoder learns too (the new version has no domain reference: its encoder changed)"
    why = f", --train-encoder auto: under {ENCODER_LEARNS_FROM} annotations" if asked == "auto" else ""
    return f"the decoder alone learns (the encoder frozen{why})"


class FineTuning:
    """The fine-tuning half of ``QGNBackend``: it reads ``corrections``, ``current``, ``original``,
    ``finetune_iterations`` and ``finetune_encoder`` (what learns: ``learns``), and keeps ``training``, ``training_running``, ``training_again`` and
    ``training_status`` (under ``state_lock``); ``stopping`` ends a running fine-tune."""

    def request_training(self) -> dict:
        """Start a fine-tune on the kept annotations, unless one runs (then one more follows it,
        once, if annotations came in meanwhile) or none came in since the last (then there is
        nothing to learn): at most one runs, and each new model has new annotations behind it.
        Called with ``state_lock`` held; the answer says which. None starts once ``stop`` has begun:
        a thread started after its join would outlive the process's torch."""
        count = len(self.corrections)
        if self.stopping.is_set():
            return {"status": "stopped", "corrections": count,
                    "reason": "qgn serve is stopping; ask again once it has restarted"}
        if self.training_running:
            self.training_again = True
            return {"status": "queued" if self.new_since_training else "training", "corrections": count,
                    "training": self.training_status}
        if not self.new_since_training:
            return {"status": "up to date", "corrections": count, "model_version": self.current.version,
                    "reason": "no annotation came in since the last fine-tune"}
        self.training_running, self.training_again = True, False
        self.training_status = f"fine-tuning on {count} annotation(s)"
        self.training = threading.Thread(target=self.training_loop, daemon=True, name="qgn-serve-finetune")
        self.training.start()
        return {"status": "training", "corrections": count}

    def training_loop(self) -> None:
        """Fine-tunes until no request for another came in with new annotations during the last,
        or one fails: its annotations then count as new again, so asking once more retries."""
        done = False
        try:
            while not done:
                with self.state_lock:
                    pairs, served = list(self.corrections.values()), self.current
                    upto = self.next_seq - 1  # every annotation kept so far is in pairs
                    taken, self.new_since_training, self.training_again = self.new_since_training, 0, False
                    self.training_status = f"fine-tuning on {len(pairs)} annotation(s)"
                failure = self._train(pairs, served)  # its status; the served model stays
                if not failure:  # a restart serving this version counts only later annotations as new
                    self.keep_on_disk(lambda: self.kept.mark_trained(self.current.path.name, upto))
                with self.state_lock:  # deciding and clearing under one hold: no request is lost between
                    if failure:
                        self.new_since_training += taken
                    done = bool(failure) or self.stopping.is_set() or \
                        not (self.training_again and self.new_since_training)
                    if done:
                        self.training_running = self.training_again = False
        except BaseException:
            with self.state_lock:
                self.training_running = self.training_again = False
            raise

    def learns(self, images: int) -> str:
        """What a fine-tune on ``images`` kept annotations (it trains on all of them) lets learn:
        ``finetune_encoder`` (``--train-encoder``), ``auto`` being the Fine-tune dock's and ``qgn
        finetune``'s Automatic (``qgn.train.finetune.auto_encoder``: the encoder too from 32 images,
        else the decoder alone on the frozen encoder's features, and the version keeps its original's
        domain reference)."""
        from qgn.train.finetune import auto_encoder

        return auto_encoder(images) if self.finetune_encoder == "auto" else self.finetune_encoder

    def _train(self, pairs, served: ServedModel) -> str | None:
        """Fine-tunes ``served`` on ``pairs`` into the next version and serves it; why not, or None.
        Its progress (the images' features, then the steps, each with the time left) is the
        ``training`` of ``/health`` and lines in the log (``TrainingLog``): Label Studio shows a
        backend's training only as that backend's own log."""
        from qgn.train.finetune import FinetuneConfig, finetune, finetune_metadata, save_new_model

        encoder = self.learns(len(pairs))
        log = TrainingLog(self, served.version, len(pairs), self.finetune_iterations,
                          what_learns(encoder, self.finetune_encoder))
        try:
            config = FinetuneConfig(iterations=self.finetune_iterations, encoder=encoder)
            images, labels = [p[0] for p in pairs], [p[1] for p in pairs]
            result = finetune(served.model, images, labels, config, progress=log.step, should_stop=self.stopping.is_set,
                              preparing=log.preparing)
            if result.cancelled:
                with self.state_lock:
                    self.training_status = "stopped: qgn serve was stopped during the fine-tune; nothing was saved"
                log.line(self.training_status)
                return self.training_status
            extra = finetune_metadata(config, result, served.path.resolve(), [f"task {i}" for i in range(len(pairs))])
            # the reference carried on is the served version's as loaded with it (the file beside it may be
            # gone or another's by now); where none was loaded (the check off), the one made for its file,
            # so a restart with the check on has it (--domain-check's help says so)
            n, path = self.save_version(lambda staged: save_new_model(
                result.model, staged, extra=extra, original=served.path, reference=served.reference))
            served = self.served(f"{model_version_name(self.original)}-ls{n}", path, result.model)
            with self.state_lock:
                self.current = served
                self.versions.append(self.current.version)
                self.training_status = f"idle (last: {path.name}, {time.strftime('%H:%M:%S')})"
            log.line(f"fine-tuned in {log.elapsed()}: serving {served.version} ({path})")
        except Exception as exc:  # a failed fine-tune leaves the served model as it was
            with self.state_lock:
                self.training_status = f"failed: {type(exc).__name__}: {exc}"
            log.line(f"fine-tune failed after {log.elapsed()} ({type(exc).__name__}: {exc}); still serving "
                     f"{served.version}")
            return self.training_status
        return None
