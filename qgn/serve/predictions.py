"""``QGNBackend``'s answer to ``/predict`` (``Predictions``): each task's image predicted
(``qgn predict``'s PC run), its brush results and score, judged by the domain check where the served
version has a reference, cached by image, within the request's limits (``qgn.serve.limits``). See
``qgn.serve``'s docstring for the score and the domain check."""
from __future__ import annotations

import json
import sys
import time

import numpy as np

from qgn.shown import echo
from .flagged import FLAGGED_SCORE, flagged_score, score_text
from .label_config import BrushTarget, ConfigError, brush_target
from .limits import MAX_RESPONSE_BYTES_ENV, MAX_TASKS_ENV, PREDICT_DEADLINE_ENV
from .lineage import ServedModel
from .request import RequestError, renamed, task_name

MAX_ERRORS = 20  # task errors listed in a /predict answer
CACHE_SIZE = 64


class Predictions:
    """The predicting half of ``QGNBackend``: it reads the backend's ``current`` version, ``device``,
    ``max_tasks``, ``max_response_bytes`` and ``predict_deadline_s``, takes ``infer_lock`` for each
    inference and keeps answers in ``cache`` (under ``state_lock``)."""

    def predict(self, body: dict, client_gone=None) -> dict:
        """One entry per task, in order: its result, or — for a task that failed while others did
        not — ``{"error": why}``, which Label Studio logs and skips, keeping the other tasks'
        predictions (ml/models.py takes the results by position and drops every one of them when
        their count is not the tasks' count, unless it is one). When the tasks are more than
        ``max_tasks`` or their results more than ``max_response_bytes``: the first result alone
        and an ``errors`` line naming the limit — Label Studio, which sends every selected task in
        one request ("Retrieve Predictions"), then asks again one task at a time
        (``_get_predictions_from_ml_backend_one_by_one``), so no selection is refused.

        Tasks left when the request's time is up (``predict_deadline_s``) or the client has closed
        the connection (``client_gone()``: Label Studio gave up waiting) are not predicted: each
        holds its place with ``{"error": why}``, so Label Studio keeps the predictions made and a
        second *Retrieve Predictions* asks for the rest only (it skips tasks that have a prediction
        of the current model version)."""
        started = time.monotonic()
        tasks = body.get("tasks")
        if getattr(tasks, "total", 0) and not tasks:
            raise RequestError("the first task's id and data are more than 64 MiB", 413)
        if not isinstance(tasks, list) or not tasks:
            raise RequestError("'tasks' must be a non-empty list of tasks")
        total = getattr(tasks, "total", len(tasks))  # a request's list may be cut short as it is read
        target = brush_target(body.get("label_config") or body.get("schema") or "")
        names = self.check_target(target)
        over = total > min(len(tasks), self.max_tasks)  # more than it answers, or than were kept as it was read
        stop = lambda slowest: self.stop_reason(started, slowest, client_gone)  # noqa: E731
        results, failures, status, cut = self.collect(tasks[:1] if over else tasks, target, names, stop)
        if over and total > self.max_tasks:
            cut = (f"only the first task was predicted: the request has {total} tasks and qgn serve answers at "
                   f"most {self.max_tasks} per request; send fewer tasks per request, or raise {MAX_TASKS_ENV}")
        elif over:
            cut = (f"only the first task was predicted: the ids and data of the request's {total} tasks are more "
                   "than 64 MiB; send fewer tasks per request")
        predicted = [r for r in results if "result" in r]
        if cut and not predicted:
            raise RequestError("; ".join([cut, *failures[:4]]), 413)
        if not predicted:
            raise RequestError("; ".join(failures[:5]), status if len(failures) == 1 else 422)
        if cut:  # one result for several tasks: Label Studio asks again one task at a time
            results, failures = predicted[:1], [cut, *failures]
        shown = failures[:MAX_ERRORS] + ([f"and {len(failures) - MAX_ERRORS} more"] if len(failures) > MAX_ERRORS else [])
        return {"results": results, "model_version": self.current.version, **({"errors": shown} if failures else {})}

    def stop_reason(self, started: float, slowest: float, client_gone) -> str | None:
        """Why no further task of a request started at ``started`` should start (None: it may),
        when its slowest task so far took ``slowest`` seconds."""
        if client_gone is not None and client_gone():
            return "the client closed the connection (Label Studio stops waiting after 100 s)"
        if time.monotonic() - started + slowest > self.predict_deadline_s:
            return (f"the request's {self.predict_deadline_s:g} s were up; retrieve predictions again for the rest "
                    f"(Label Studio asks only for tasks without one), send fewer tasks per request, or raise "
                    f"{PREDICT_DEADLINE_ENV} (and Label Studio's ML_TIMEOUT_PREDICT)")
        return None

    def collect(self, tasks: list, target: BrushTarget, names, stop=None) -> tuple[list, list, int, str | None]:
        """(results, failures, status of the last failure, why the results were cut short or None):
        the predictions of ``tasks`` until their JSON would be more than ``max_response_bytes``, a
        failed task's place held by ``{"error": why}``; once ``stop(slowest task's seconds)`` gives
        a reason, the tasks left hold theirs (the first task always runs)."""
        results, failures, status, size, slowest = [], [], 422, 0, 0.0
        for index, task in enumerate(tasks):
            why = stop(slowest) if stop is not None and index else None
            if why:
                results += [{"error": f"task {task_name(t, index + i)}: not predicted: {why}"}
                            for i, t in enumerate(tasks[index:])]
                failures.append(f"{len(tasks) - index} of {len(tasks)} tasks not predicted: {why}")
                return results, failures, status, None
            begun = time.monotonic()
            try:
                answer, length = self.predict_task(task, target, names)
            except (RequestError, ConfigError, ValueError, OSError) as exc:
                failures.append(f"task {task_name(task, index)}: {exc}")
                results.append({"error": failures[-1]})
                status = getattr(exc, "status", 422)
                continue
            finally:
                slowest = max(slowest, time.monotonic() - begun)
            size += length + 2
            if size > self.max_response_bytes:
                why = (f"only the first task was predicted: the results of the first {index + 1} tasks are more than "
                       f"{self.max_response_bytes} bytes; send fewer tasks per request") \
                    if any("result" in r for r in results) else \
                      f"task {task_name(task, index)}'s result is {length} bytes, more than {self.max_response_bytes}"
                return results, failures, status, f"{why}, or raise {MAX_RESPONSE_BYTES_ENV}"
            results.append(answer)
        return results, failures, status, None

    def check_target(self, target: BrushTarget) -> list[str | None]:
        """names[c]: the config label of model class c (None: the config has none for it)."""
        from qgn.classes import UNMATCHED, VOID, match_class_names

        classes = self.current.model.config.classes
        names: list[str | None] = [None] * classes.num_classes
        for label, value in zip(target.labels, match_class_names(target.labels, classes)):
            if value not in (UNMATCHED, VOID) and names[value] is None:
                names[value] = label
        if not any(names):
            raise ConfigError(f"none of the config's labels ({', '.join(echo(n, 40) for n in target.labels[:8])}) is a class of the "
                              f"model ({', '.join(classes.names[:8])})")
        return names

    def predict_task(self, task, target: BrushTarget, names) -> tuple[dict, int]:
        """(the task's result, the length of its JSON), from the cache when it is there."""
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise RequestError("a task must be an object with 'data'")
        ref = task["data"].get(target.data_key)
        if not isinstance(ref, str) or not ref:
            raise RequestError(f"the task has no data.{echo(target.data_key)} (the config's Image value)")
        served, prefix = self.current, f"qgn{task.get('id', '')}"
        key = (served.version, target, ref)  # by image: the same image under another task is predicted once
        with self.state_lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return renamed(*self.cache[key], prefix)
        label, score, verdict = self.infer(self.load_image(ref), served)
        if verdict is not None and not verdict.inside:
            answer = self.flagged_answer(verdict, served)
            named = f"task {echo(task['id'])}" if task.get("id") is not None else "a task without an id"
            print(f"qgn serve: {named}: {answer['domain']['note']}", file=sys.stderr, flush=True)
        else:
            from qgn.formats.labelstudio import brush_results

            classes = served.model.config.classes
            results = [r for r in brush_results(label, classes, prefix, target.from_name,
                                                target.to_name, [n or "" for n in names], origin="prediction")
                       if r["value"]["brushlabels"][0]]
            answer = {"result": results, "score": score, "model_version": served.version}
            if verdict is not None:
                answer["domain"] = {"score": round(verdict.score, 3), "inside": True}
        length = len(json.dumps(answer))
        with self.state_lock:
            self.cache[key] = answer, length, prefix
            while len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
        return answer, length

    @staticmethod
    def flagged_answer(verdict, served: ServedModel) -> dict:
        """The answer for an image the domain check flags (``verdict``: outside ``served``'s
        domain): no brush results, so the annotator starts from an empty map, as the app starts
        such an image (on a street sequence the model never saw, its prediction's start cost 15-22 %
        more annotator actions than an empty one: benchmarks/RESULTS.md).

        Its ``score`` (``flagged_score``) is below ``FLAGGED_SCORE``, near 0: the confidence of a
        prediction that says nothing (a uniform distribution's entropy is the greatest), which is
        what the model's softmax is worth on such an image — it calls a cat "building" at 90 %, so
        its own score there would be high and Label Studio's uncertainty sampling
        (``order_by('predictions__score')``, the lowest first) would serve the images the model knows
        least *last*. Below ``FLAGGED_SCORE`` they come first, before every image the model knows
        (``infer`` keeps those at ``FLAGGED_SCORE`` or above), as the least certain ones should; among
        themselves the farther from the training images (the higher the domain score) the lower,
        so the image the model knows least comes first, not Label Studio's own order (which tied
        them all at 0 before, a fine-tune then learning from whichever came first). All of this only
        where the project has one annotator - with several, ``_try_uncertainty_sampling`` picks at
        random among the unlocked tasks with a prediction (``_get_random_unlocked``: ``order_by('?')``,
        the score order dropped) - and where the project's model version is ``served.version``:
        Label Studio 1.23 orders by score only the tasks with a prediction of the project's model
        version, and serves the others at random (projects/functions/next_task.py ``_try_uncertainty_sampling``); it sets that version to
        the backend's *title* when the backend is connected (ml/api.py ``perform_create``), and what
        ``/setup`` answers changes only the backend's own ``model_version``, so the user sets it
        (README, "QGN as the ML backend").

        Why is said in ``domain`` (its score and a note) — Label Studio keeps of a prediction only
        its ``result``, ``score`` and ``model_version`` (ml/models.py
        ``_get_predictions_from_ml_backend``) and drops other fields without refusing them; its
        *test* request (``/api/ml/<id>/predict/test``) shows the answer whole — and in the server's
        log, a line per flagged task."""
        from qgn.domain import WARN_AT

        note = (f"the image is unlike {served.version}'s training images (domain score {verdict.score:.2f}; theirs "
                f"<= 1, flagged above {WARN_AT:g}): no pre-annotation is sent, so its annotator starts from an "
                f"empty map, and its score is {score_text(flagged_score(verdict.score))}, below every image the model knows "
                f"(uncertainty sampling serves it early, the least like them first)")
        return {"result": [], "score": flagged_score(verdict.score), "model_version": served.version,
                "domain": {"score": round(verdict.score, 3), "inside": False, "note": note}}

    def infer(self, image: np.ndarray, served: ServedModel) -> tuple[np.ndarray | None, float, object]:
        """(label map (H, W), score = 1 − mean normalised entropy, domain verdict) of ``qgn
        predict``'s PC run. The verdict (``qgn.domain.judge_session``: None without a reference)
        reads the encoder features the prediction uses, computed once; for an image it flags, no
        decoder runs (label None, score ``flagged_score``): nothing of the prediction is sent. A
        reference that does not fit the encoder (``ValueError``) is dropped for the version, said
        once in the log, and its images are predicted as without the check."""
        from qgn.infer import ImageSession
        from qgn.propagation import Scheme
        from qgn.uncertainty import image_uncertainty

        with self.infer_lock:
            session = ImageSession(served.model, image, None, self.device)
            verdict = self.judge(session, image, served)
            if verdict is not None and not verdict.inside:
                return None, flagged_score(verdict.score), verdict
            prediction = session.run(Scheme("pc"))
            label = prediction.label()
            uncertainty = image_uncertainty(prediction).mean_entropy
        # at FLAGGED_SCORE or above: every flagged image (flagged_score) is served before it
        return np.asarray(label), max(round(1.0 - float(uncertainty), 6), FLAGGED_SCORE), verdict

    def judge(self, session, image: np.ndarray, served: ServedModel):
        """``served``'s domain verdict on ``image`` (its ``session``), or None (no reference, or
        the check off); a reference that fails on it is dropped for good (``infer``)."""
        if served.reference is None:
            return None
        from qgn.domain import judge_session

        try:
            return judge_session(session, image, served.reference)
        except ValueError as exc:  # a reference of another encoder (under infer_lock: said once)
            served.reference = None
            self.domain_note(served.version, str(exc))
            return None
