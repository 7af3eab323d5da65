"""A whole annotation session, in order, as one person lives it: the app's start rule on every
image, the Fine-tune dock every ``every`` saved images, and the model it keeps in use from then on.

``session_walk`` walks the images in the order given (a video: frame after frame). Each image:

- is started by the app's rule for the model in use — ``app_domain`` of ``qgn.bench.annotate``,
  through the same code (``_simulate_starts``, ``_scenario_choices``): the carried start (the image
  before's *saved* map, by optical flow) where its record prefers it; else empty where the model's
  domain check flags the image; else the head's start where its record prefers it, else the
  model's;
- is corrected by the simulated annotator (``qgn.bench.annotate_sim``, the image-aware tools, the
  configured tolerance and target) from that start, and its corrected map is the saved annotation:
  the next image's carried start, the head's training sample, a fine-tune's correction;
- the head's record (``HeadTrainer.judge``) and the carried start's record are kept as
  ``run_per_image`` keeps ``app_domain``'s (each image judged against its truth after its start was
  chosen; the carried start against the start it would replace, ``judge_carried``: empty on a
  flagged image).

Every ``every`` saved images (and while images are left) the model in use is fine-tuned as the
app's Fine-tune dock runs it (``qgn_studio.finetuner``): on all the images saved so far, with one
in four held aside for its before/after table (``qgn.train.finetune.comparison_split``), the
dock's recipe (``FinetuneConfig`` defaults: 300 iterations, lr 0.001, pc+gtc; batch
min(4, corrected images)); what learns is ``learns``: ``"auto"`` the dock's Automatic
(``auto_encoder`` on the images it trains on: the encoder from 32), or ``"frozen"`` / ``"train"``.
The person keeps every fine-tuned model, and the app then does what a model change does:

- the domain reference is carried where the encoder did not learn (``qgn.domain.carry_reference``:
  the same reference, its verdicts unchanged) and dropped where it learnt (no verdict: the
  prediction, the head or the carried start by their records);
- the carried start's record is kept (``CarryController``: a model change does not forget it; the
  carried start does not read the model, and the images after judge it against the new model's
  starts);
- the head's trainer and record are forgotten and the head refits on every saved annotation with
  the new model's features (``HeadController._reset`` → ``refit``: the head read from the project
  names the old model file, so it is not taken).

``finetune=False`` walks the same images with the model never changed: the app without the dock
(``session_none``); every image's empty start is corrected too (``session_empty``). The fine-tune
seconds are reported and not counted as actions. ``tune`` and ``verdict`` may be replaced (tests).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

SESSION_SCENARIOS = ("session", "session_none", "session_empty")
#: the image-tool runs the app's rule chooses between (``_simulate_starts``' runs)
_WANTED = ["app_domain"]


@dataclass
class FinetuneStep:
    """One fine-tune of the walk: after ``saved`` images, trained on ``trained`` and holding
    ``held`` aside (image names), what learnt (``encoder``: frozen / train), its wall seconds,
    whether the domain reference was kept, and ``generation``: the model it made (1, 2, …)."""

    saved: int
    trained: list
    held: list
    encoder: str
    batch_size: int
    iterations: int
    seconds: float
    reference_kept: bool
    generation: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SessionState:
    """What the walk holds between images (the app's state across them)."""

    model: object
    reference: object  # qgn.domain.DomainReference or None
    generation: int = 0
    trainer: object = None  # qgn.project_head.HeadTrainer
    carry_record: list = field(default_factory=list)  # the one the image in hand reads (carry_records')
    carry_records: dict = field(default_factory=dict)  # carry_record_key -> record (config.carry_records)
    previous: tuple | None = None  # (image, saved map) of the image before
    images: list = field(default_factory=list)
    saved: list = field(default_factory=list)
    names: list = field(default_factory=list)


def dock_tune(model, images, labels, names, encoder: str, batch_size: int, iterations: int, seed: int = 0):
    """The Fine-tune dock's job (``qgn_studio.finetuner.FinetuneJob``) on the images it trains on:
    ``qgn.train.finetune.finetune`` with the dock's recipe (``FinetuneConfig`` defaults, its
    iterations and batch as given; ``encoder`` as decided). Returns the fine-tuned model."""
    from qgn.train.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(iterations=iterations, batch_size=batch_size, encoder=encoder, seed=seed)
    return finetune(model, images, labels, config, names=names).model


def domain_verdict(model, image, reference) -> bool | None:
    """The app's domain verdict on ``image`` (True: inside, False: flagged), None without a reference."""
    if reference is None:
        return None
    from qgn.domain import judge

    return judge(model, image, reference).inside


def _annotate_one(state: SessionState, s, classes, config, verdict, step):
    """One image annotated as the app's session does it: (runs, verdict, chosen start, effort); its
    records, head features and saved map kept in ``state``."""
    from qgn.annotation.carry import carry_record_key, judge_carried
    from qgn.bench.annotate import _choose, _predict, _saved_map, _scenario_choices, _simulate_starts

    step("prediction")
    prediction = _predict(state.model, s.image, config.scheme)
    runs, labels, head = _simulate_starts(s, state.model, prediction, classes, config, _WANTED, state.trainer,
                                          state.previous, step)
    step("domain check")
    inside = verdict(state.model, s.image, state.reference)
    state.carry_record = state.carry_records.setdefault(carry_record_key(inside, config.carry_records), [])
    record = list(state.trainer.record.values())
    efforts, costs = _scenario_choices(runs, record, state.carry_record, inside)["app_domain"]
    chosen, effort = _choose({k: v for k, v in efforts.items() if v is not None}, costs)
    saved = _saved_map(labels, chosen)
    if "carried_map" in labels:  # the carried start's record, as run_per_image keeps app_domain's:
        judged = judge_carried(labels["carried_map"], [labels[m] for m in ("model_map", "head_map") if m in labels],
                               s.label, classes.ignore_index, flagged=inside is False)  # against what it replaces
        if judged is not None:
            state.carry_record.append(judged)
    if head is not None:  # the head's record: an image it did not train on
        state.trainer.judge(s.name, labels["head_map"], labels["model_map"], s.label)
    step("head features")
    state.trainer.add(s.name, state.model, s.image, saved)
    state.previous = (s.image, saved)
    state.images.append(s.image)
    state.saved.append(saved)
    state.names.append(s.name)
    return runs, inside, chosen, effort


def _record_walk(seq, empty, state: SessionState, every, learns, finetune, iterations, generations, verdicts,
                 finetunes) -> None:
    """What the walk was, into the two Sequences' extra."""
    seq.extra["session"] = {"every": every, "learns": learns if finetune else None, "iterations": iterations,
                            "generation": generations, "verdicts": verdicts,
                            "finetunes": [f.as_dict() for f in finetunes],
                            "blocks": block_means(seq.actions, every),
                            "empty_blocks": block_means(empty.actions, every)}
    empty.extra["session"] = {"every": every, "blocks": block_means(empty.actions, every)}
    seq.extra["final_model"] = state.model
    seq.extra["saved_maps"] = state.saved  # (not in the rows: bench_rows copies named keys only)


def session_walk(model, samples, classes, config, every: int = 16, learns: str = "auto", finetune: bool = True,
                 log: Callable[[str], None] = lambda m: None, progress=None, tune=dock_tune,
                 verdict=domain_verdict, iterations: int = 300):
    """(the walk's Sequence — ``session`` or ``session_none`` —, the empty start's Sequence
    ``session_empty``) over ``samples`` in order; ``config``: ``AnnotateConfig`` (target,
    tolerance, β, snap evidence, ``domain``: the model's reference, ``seed``). See the module
    docstring. ``progress(done, total, what)`` as ``run_per_image``'s."""
    from qgn.bench.annotate import Sequence
    from qgn.progress import TimeLeft
    from qgn.project_head import HeadTrainer
    from qgn.train.finetune import auto_encoder, comparison_split

    if learns not in ("auto", "frozen", "train"):
        raise ValueError(f"learns must be auto, frozen or train; got {learns!r}")
    if every < 1:
        raise ValueError(f"every must be at least 1 image; got {every}")
    seq = Sequence("session" if finetune else "session_none")
    empty = Sequence("session_empty")
    state = SessionState(model, config.domain, trainer=HeadTrainer(classes))
    generations, verdicts, finetunes = [], [], []
    time_left = TimeLeft()
    start = time.perf_counter()
    for i, s in enumerate(samples):
        def step(what: str, i=i) -> None:
            if progress is not None:
                progress(i, len(samples), f"image {i + 1}: {what}")

        runs, inside, chosen, effort = _annotate_one(state, s, classes, config, verdict, step)
        seq.add(s.name, effort)
        empty.add(s.name, runs["assist_empty"])
        generations.append(state.generation)
        verdicts.append(inside)
        log(f"{seq.name} image {i + 1}/{len(samples)}: {effort.actions} actions from {chosen} "
            f"(model {state.generation}, verdict {inside}; empty {runs['assist_empty'].actions})"
            + time_left.suffix(i + 1, len(samples)))
        if finetune and len(state.saved) % every == 0 and i + 1 < len(samples):
            finetunes.append(_dock_finetune(state, classes, config, learns, tune, iterations, step, log,
                                            auto_encoder, comparison_split, HeadTrainer))
            seq.finetune_seconds.append(finetunes[-1].seconds)
    seq.seconds = time.perf_counter() - start
    _record_walk(seq, empty, state, every, learns, finetune, iterations, generations, verdicts, finetunes)
    return seq, empty


def _dock_finetune(state: SessionState, classes, config, learns, tune, iterations, step, log,
                   auto_encoder, comparison_split, HeadTrainer) -> FinetuneStep:
    """The dock's fine-tune on every image saved so far, and the app's model change after it."""
    n = len(state.saved)
    train, held = comparison_split(n)
    encoder = auto_encoder(len(train)) if learns == "auto" else learns
    batch = min(4, n)  # the dock: min(4, corrected images)
    step(f"fine-tuning on {len(train)} of {n} saved images ({encoder})")
    began = time.perf_counter()
    tuned = tune(state.model, [state.images[j] for j in train], [state.saved[j] for j in train],
                 [state.names[j] for j in train], encoder, batch, iterations)
    seconds = time.perf_counter() - began
    state.model = tuned.eval() if hasattr(tuned, "eval") else tuned
    state.generation += 1
    if encoder != "frozen":  # carry_reference: only for an encoder unchanged, tensor for tensor
        state.reference = None
    # the app's model change: the head's trainer and record are forgotten and the head refits on every
    # saved annotation with the new model's features; the carried start's record is kept (the carried
    # start does not read the model; the images after judge it against the new model's starts)
    state.trainer = HeadTrainer(classes)
    step("head features of the saved images, new model")
    for image, saved, name in zip(state.images, state.saved, state.names):
        state.trainer.add(name, state.model, image, saved)
    done = FinetuneStep(n, [state.names[j] for j in train], [state.names[j] for j in held], encoder, batch,
                        iterations, seconds, state.reference is not None, state.generation)
    log(f"session: fine-tuned on {len(train)} of {n} saved images ({encoder}, batch {batch}, {iterations} "
        f"iterations) in {seconds:.0f} s; domain reference {'kept' if done.reference_kept else 'dropped'}")
    return done


def block_means(actions: list, every: int) -> list:
    """Mean actions of each block of ``every`` images, in order (the last may be shorter)."""
    return [float(np.mean(actions[k:k + every])) for k in range(0, len(actions), every)]


def run_sessions(model, samples, classes, config, wanted, log=lambda m: None, progress=None) -> list:
    """The session scenarios of ``wanted`` (``SESSION_SCENARIOS``) as Sequences: ``session`` walks
    with the dock's fine-tunes (``config.session_every``, ``config.session_learns``,
    ``config.session_iterations``); ``session_none`` the same walk without them; ``session_empty``
    every image from empty (taken from a walk run anyway)."""
    out, empty = [], None
    kwargs = dict(every=config.session_every, learns=config.session_learns, iterations=config.session_iterations,
                  log=log, progress=progress)
    if "session_none" in wanted or ("session_empty" in wanted and "session" not in wanted):
        seq, empty = session_walk(model, samples, classes, config, finetune=False, **kwargs)
        if "session_none" in wanted:
            out.append(seq)
    if "session" in wanted:
        seq, tuned_empty = session_walk(model, samples, classes, config, finetune=True, **kwargs)
        out.append(seq)
        empty = empty or tuned_empty
    if "session_empty" in wanted:
        out.append(empty)
    return out


def format_session(rows) -> str:
    """Per block of ``every`` images the mean actions of each session row, the starts, the fine-tunes."""
    rows = [r for r in rows if "session" in r.extra]
    if not rows:
        return ""
    every = rows[0].extra["session"]["every"]
    lines = [f"session blocks of {every} images (mean actions): "
             + "; ".join(f"{r.name} " + ", ".join(f"{b:.2f}" for b in r.extra["session"]["blocks"]) for r in rows)]
    for r in rows:
        info = r.extra["session"]
        if "generation" in info:
            code = {"empty": "e", "model": "m", "head": "h", "previous": "p"}
            lines.append(f"{r.name}: starts " + "".join(code.get(s, "?") for s in r.extra["starts"])
                         + "; model per image " + "".join(str(g) for g in info["generation"]))
        for f in info.get("finetunes", []):
            lines.append(f"{r.name}: fine-tune {f['generation']} after {f['saved']} saved: trained on "
                         f"{len(f['trained'])}, held {len(f['held'])}, {f['encoder']}, {f['seconds']:.0f} s, "
                         f"reference {'kept' if f['reference_kept'] else 'dropped'}")
    return "\n".join(lines)
