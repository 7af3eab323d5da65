"""Annotation effort (issues #14, #21): actions a simulated annotator needs per image.

Scenarios (names of the JSON rows):

- ``scratch``: the cell tools (fill click, cell brush) from an empty map (every pixel ignore);
- ``model``: the cell tools from the model's prediction (bilinear probabilities,
  ``qgn.annotation.start.smooth_start``), or from empty at the cost of one action when that is
  cheaper (a person who sees a bad prediction clears it);
- ``assist_scratch``: the image-aware tools too (superpixels, snapped brush, magic wand;
  ``qgn.bench.annotate_tools``) from an empty map;
- ``assist_model``: the image-aware tools with the model: its prediction as the start (or empty
  for one action);
- ``assist_head``: the image-aware tools with the per-project head (``qgn.project_head``): image i
  starts from the head fitted on the corrected images 0 … i-1 (or empty), one action to choose;
- ``best``: per image the cheapest of the model start, an empty start and the head start (each
  start but the model's costs one action), image-aware tools. The choice is an *oracle*: it is made
  knowing what each start will cost, which a person cannot know before annotating;
``snap_evidence`` decides what the snapped brush's rim follows in the runs with a model or head
start: ``image`` (default) the image's edges; ``prediction`` the model's prediction alone, on
every start (the app's snap brush set to "Snap to: prediction" — the map the app holds is the
model's prediction, also on an image started from the head); ``oracle`` per stroke the better of
the image and the start map (the model's or the head's; ``--model-snap``, the protocol before
6 Dec: no rule a person could follow).

- ``app``: what the app did before the head's guard, without an oracle: the model's start until
  the head is fitted (after the first saved image), then the head's; image-aware tools, no start
  charged;
- ``app_guarded``: what the app did before the carried start (``default_source`` of ``qgn_studio.head_controller``): the
  head only while it has beaten the model on the saved images it had not trained on
  (``qgn.project_head.prefer_head``), else the model's start;
- ``assist_previous``: the image-aware tools from the previous image's corrected map carried onto
  this one by optical flow (``qgn.annotation.carry.carried_start``; the first image: empty). Images
  are taken in the split's order, so on a video this is the frame before (``--stride`` apart);
- ``app_carry``: the app before the domain rule: ``app_guarded`` with the carried start as the app offers it: the previous image's
  map carried, taken instead once it has beaten the best of the other starts (the model's, the
  head's) on the images judged so far (``qgn.annotation.carry.prefer_carried``; each image judged
  against its truth after its own start was chosen);
- ``app_domain``: what the app does now: ``app_carry``, except that an image the model's domain
  check (``qgn.domain``, the reference beside the model) calls unlike its training images starts
  empty where ``app_carry`` would take the model's or the head's start (the head reads the model's
  features; its record only says it beat the model's start). The carried start, the person's own
  labels, still comes first when its record prefers it — its record judged against the start it
  would replace: empty's (no pixel right) on a flagged image (``qgn.annotation.carry.judge_carried``);
- ``assist_confident``: (opt-in) the image-aware tools from the model's start kept only where the
  model is sure of it: its bilinear probability of the class shown at least ``confidence`` (τ),
  unlabelled elsewhere (``qgn.annotation.start.confident_start``); no empty alternative;
- ``app_confident``: (opt-in) ``app_domain`` with that start instead of the empty one on the images
  the domain check flags;
- ``app_effort``: (opt-in; tried for the app and not kept) the start the simulated annotator
  needed the fewest actions from, on average over the last three images that offered it
  (``cheapest_start``): empty, the model's, the head's (once fitted) or the
  carried one (once the image before is corrected); the model's on the first image (empty if the
  model has a domain reference, ``qgn.domain``, and it says the image is unlike the model's
  training images). Each image's record is what an app could know: the actions from every start
  it was offered to the map saved from the start it was given, at 1 px (``_judged_as_saved``).
  That record favours the start given, and the rule locks into it (benchmarks/RESULTS.md);
- ``app_own``: (opt-in; measured, not the app's rule) ``app_effort`` with the given start's entry of
  each image's record replaced by the actions the person took from it — which an app can count —
  and the other starts still judged against the saved map (``_judged_own``); benchmarks/RESULTS.md,
  "A start judge that is not biased towards the start given";
- ``app_edge2``, ``app_tol3``, ``app_scaled``: (opt-in; measured, not the app's rule) ``app_effort``'s
  rule on the other judges of that section (``JUDGES``): ``edge2`` sets aside, for every start
  alike, the pixels within 2 px of a class edge of the saved map where the person left the given
  start's label and some offered start differs (``_judged_edge``); ``tol3`` judges against the saved
  map at a 3 px tolerance (``_judged_tolerant``); ``scaled`` scales the as-saved record by how much
  easier the saved map was for the given start than the person's own count (``_judged_scaled``);
- ``app_domain_edge2``: (opt-in; measured, not the app's rule) ``app_domain`` on the images the
  domain check flags, ``app_edge2``'s choice (on its own record of every image) on the others;
- ``loop``: (opt-in) the cell tools from the model, fine-tuned every ``every`` images on all
  images corrected so far with ``qgn.train.finetune.finetune`` — the function the app's
  Fine-tune button calls; ``loop_uncertainty``: the same, the most uncertain images first. The
  loop's annotator and recipe are those of issue #14 (cell tools, model or empty, 40 iterations):
  for today's app see ``session``;
- ``session``: (opt-in; ``qgn.bench.session``) the images in order as one person walks them: each
  started by ``app_domain``'s rule for the model in use, corrected with the image-aware tools, its
  map saved; every ``session_every`` saved images the Fine-tune dock's fine-tune (its recipe, its
  "What learns" ``session_learns``, one in four held aside) and the app's model change;
  ``session_none``: the same walk, no fine-tune; ``session_empty``: every image from empty.

The annotator and the anchors (quadtree leaves, polygon vertices) are ``qgn.bench.annotate_sim``.
A model whose classes differ from the data's is transferred first (``qgn.model.transfer``); the
head needs no transfer (it learns the data's classes). Besides the actions, the ``model`` run
records both uncertainty measures of every image and their Spearman correlation with its actions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from qgn.bench.annotate_sim import gt_leaves, polygon_vertices, simulate_annotator
from qgn.bench.rows import BenchRow
from qgn.propagation import Scheme
from qgn.uncertainty import MEASURES, image_uncertainty, order_by_uncertainty, spearman

SCENARIOS = ("scratch", "model", "assist_scratch", "assist_model", "assist_head", "best", "app", "app_guarded",
             "assist_previous", "app_carry", "app_domain", "app_effort", "assist_confident", "app_confident",
             "app_own", "app_edge2", "app_tol3", "app_scaled", "app_domain_edge2", "loop", "loop_uncertainty",
             "session", "session_none", "session_empty")
DEFAULT_SCENARIOS = SCENARIOS[:8]
WALKS = ("loop", "loop_uncertainty", "session", "session_none", "session_empty")  # each its own pass
PER_IMAGE = tuple(n for n in SCENARIOS if n not in WALKS)
SNAP_EVIDENCE = ("image", "prediction", "oracle")
# the scenarios that apply app_effort's rule to a record of each image -> the judge of that record (``_judged``)
JUDGES = {"app_effort": "saved", "app_own": "own", "app_edge2": "edge2", "app_tol3": "tol3",
          "app_scaled": "scaled", "app_domain_edge2": "edge2"}
# the scenarios that take the domain check's verdicts (``--domain-model``'s encoder and reference)
DOMAIN_SCENARIOS = ("app_domain", "app_confident", *JUDGES)
HEADED = ("assist_head", "best", "app", "app_guarded", "app_carry", "app_domain", "app_confident",
          *JUDGES)  # scenarios that need the project head


@dataclass
class AnnotateConfig:
    """every: fine-tune after this many images; iterations: per fine-tune; target: pixel accuracy
    an image is corrected to; measure: uncertainty order of loop_uncertainty (None: the measure
    with the higher Spearman correlation with the ``model`` actions)."""

    every: int = 5
    iterations: int = 40
    batch_size: int = 2
    target: float = 0.99
    scheme: str = "pc"
    measure: str | None = None
    seed: int = 0
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    tolerance: int = 0
    beta: float | None = None  # collateral per fixed pixel (None: qgn.bench.annotate_sim.BETA)
    snap_evidence: str = "image"  # what the snapped brush follows: one of SNAP_EVIDENCE (module docstring)
    domain: object = None  # the model's qgn.domain.DomainReference (None: none): app_domain's and app_effort's verdicts
    domain_model: object = None  # the model whose encoder ``domain`` describes (None: the model measured)
    confidence: float = 0.9  # τ of assist_confident / app_confident: the start keeps pixels whose probability is >= τ
    session_every: int = 16  # session: the dock's fine-tune every this many saved images (qgn.bench.session)
    session_learns: str = "auto"  # session: what learns, the dock's "What learns" (auto, frozen, train)
    session_iterations: int = 300  # session: the dock's iterations
    carry_records: str = "one"  # app_domain's and the session walks' carried-start records: one, or one per
    # domain verdict (qgn.annotation.carry.CARRY_RECORDS; "one" is the app's rule)
    record_lag: int = 0  # the rules of JUDGES choose without their last this many images' records (an app's
    # simulated judge of a saved image runs for seconds: the next image may start before it lands)

    @property
    def model_snap(self) -> bool:
        """The protocol before 6 Dec (``--model-snap``): the snap brush may follow the start map."""
        return self.snap_evidence == "oracle"


@dataclass
class Sequence:
    """One scenario's run: per image in the order annotated, its name, actions, clicks, strokes and
    the starting map's pixel accuracy; the seconds of each fine-tune."""

    name: str
    names: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    clicks: list = field(default_factory=list)
    strokes: list = field(default_factory=list)
    start_accuracy: list = field(default_factory=list)
    finetune_seconds: list = field(default_factory=list)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    milestones: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    tools: dict = field(default_factory=dict)
    strokes_per_level: list = field(default_factory=list)
    tool_seconds: float = 0.0
    collateral: int = 0

    def add(self, name, effort) -> None:
        self.names.append(name)
        self.actions.append(effort.actions)
        self.clicks.append(effort.clicks)
        self.strokes.append(effort.strokes)
        self.start_accuracy.append(effort.accuracy_start)
        self.milestones.append(effort.milestones)
        self.starts.append(effort.start)
        for tool, n in effort.tools.items():
            self.tools[tool] = self.tools.get(tool, 0) + n
        if not self.strokes_per_level:
            self.strokes_per_level = [0] * len(effort.strokes_per_level)
        self.strokes_per_level = [a + b for a, b in zip(self.strokes_per_level, effort.strokes_per_level)]
        self.tool_seconds += effort.tool_seconds
        self.seconds += effort.seconds
        self.collateral += effort.collateral


def model_scale(model) -> float:
    """The image scale the benchmark feeds ``model``: its training ``input_scale`` (recorded in
    ``extra["train"]``) when the model config has no ``input_scale`` of its own — with one,
    inference resizes by itself — else 1."""
    if hasattr(model.config, "input_scale"):
        return 1.0
    train = model.config.extra.get("train", {}) if isinstance(model.config.extra, dict) else {}
    return float(train.get("input_scale") or 1.0)


def resize_pair(image: np.ndarray | None, label: np.ndarray | None, scale: float, size=None):
    """``image`` (H, W, 3) uint8 bilinear and ``label`` (H, W) int nearest, resized by ``scale``
    (or to ``size`` (w, h)); None stays None."""
    from PIL import Image

    ref = image if image is not None else label
    h, w = ref.shape[:2]
    size = size or (max(1, round(w * scale)), max(1, round(h * scale)))
    out_image = None if image is None else np.array(Image.fromarray(image).resize(size, Image.BILINEAR))
    out_label = None if label is None else np.array(
        Image.fromarray(np.asarray(label).astype(np.int32)).resize(size, Image.NEAREST)).astype(np.int64)
    return out_image, out_label


class _Predicted:
    """A prediction at the model's scale and its start map at the image's full size."""

    def __init__(self, prediction, label, size=None):
        self.prediction, self._label, self._size = prediction, label, size or label.shape[::-1]
        self._confident = None

    def label(self) -> np.ndarray:
        return self._label

    def confident(self, threshold: float, ignore_index: int) -> np.ndarray:
        """The confidence-masked start (``qgn.annotation.start.masked_start``) at the image's full size."""
        from qgn.annotation.start import masked_start, start_confidence

        if self._confident is None:  # (label, confidence) once; a threshold only masks
            from PIL import Image

            label, confidence = start_confidence(self.prediction)
            if label.shape[::-1] != tuple(self._size):  # the model's working scale: nearest to the image
                _, label = resize_pair(None, label, 1.0, tuple(self._size))
                confidence = np.array(Image.fromarray(confidence).resize(tuple(self._size), Image.NEAREST))
            self._confident = (label, confidence)
        return masked_start(*self._confident, threshold, ignore_index)


def _predict(model, image, scheme):
    """The model's prediction of ``image`` and the start map the app shows (bilinear probabilities)."""
    from qgn.annotation.start import smooth_start
    from qgn.infer import predict

    scale = model_scale(model)
    if scale == 1.0:
        prediction = predict(model, image, Scheme(scheme))
        return _Predicted(prediction, smooth_start(prediction))
    small, _ = resize_pair(image, None, scale)
    prediction = predict(model, small, Scheme(scheme))
    _, label = resize_pair(None, smooth_start(prediction), 1.0, (image.shape[1], image.shape[0]))
    return _Predicted(prediction, label, (image.shape[1], image.shape[0]))


def _finetune(model, images, labels, config: AnnotateConfig, step=None):
    """The app's Fine-tune button's code (``qgn.train.finetune.finetune``, its default recipe but
    ``config.iterations``) on the corrected images; ``step(iteration, loss)`` after each."""
    from qgn.train.finetune import FinetuneConfig, finetune

    scale = model_scale(model)
    pairs = [resize_pair(im, lab, scale) if scale != 1.0 else (im, lab.astype(np.int64))
             for im, lab in zip(images, labels)]
    cfg = FinetuneConfig(iterations=config.iterations, batch_size=config.batch_size, seed=config.seed)
    start = time.perf_counter()
    tuned = finetune(model, [p[0] for p in pairs], [p[1] for p in pairs], cfg, progress=step).model
    return tuned, time.perf_counter() - start


def _choose(efforts: dict, costs: dict):
    """The cheapest start: (name, effort with its start's cost added and ``start`` set)."""
    import dataclasses

    name = min(efforts, key=lambda k: (efforts[k].actions + costs.get(k, 0), list(efforts).index(k)))
    e = efforts[name]
    return name, dataclasses.replace(e, actions=e.actions + costs.get(name, 0), start=name)


def _fewer(a, b):
    """The run with fewer actions (either may be None): from an empty start a person may use the
    model's evidence in the snapped brush or not."""
    if a is None or b is None:
        return a or b
    return a if a.actions <= b.actions else b


def _domain_check(model, s, config: AnnotateConfig, wanted, seen, step):
    """The domain check's verdict on ``s`` (app_domain; app_effort's first start): True inside,
    False flagged, None when no scenario asks for it (or there is no reference)."""
    if config.domain is not None and ("app_domain" in wanted or "app_confident" in wanted
                                      or "app_domain_edge2" in wanted
                                      or any(not r for r in seen.values())):
        from qgn.domain import judge as judge_domain

        step("domain check")
        judge_model = model if config.domain_model is None else config.domain_model
        return judge_domain(judge_model, s.image, config.domain).inside
    return None


def _add_scores(scores, prediction) -> None:
    """The image's uncertainty scores, one per measure."""
    unc = image_uncertainty(prediction.prediction)
    for m in MEASURES:
        scores[m].append(unc.score(m))


def _keep_judge_records(records, s, labels, runs, choices, classes, config: AnnotateConfig, step) -> None:
    """Each judging rule's record of this image (what it will have seen for the next ones)."""
    as_saved = {}  # given start -> its as-saved record: the rules that share it measure it once
    for name, kept in records.items():
        step(f"{name}'s record")
        kept.append(_judged(JUDGES[name], s, labels, runs, next(iter(choices[name][0])), classes, config, as_saved))


def _add_chosen(seqs, wanted, choices, s) -> None:
    """Each scenario's effort on this image, from the start its rule chose."""
    for name in wanted:
        efforts, costs = choices[name]
        efforts = {k: v for k, v in efforts.items() if v is not None}
        _, effort = _choose(efforts, costs)
        seqs[name].add(s.name, effort)


def _keep_carry_records(labels, s, classes, inside, carry_record, domain_carry_record) -> None:
    """The carried start judged after its use, as the app judges a saved image."""
    if "carried_map" in labels:  # judged after its use, as the app judges a saved image: against the
        from qgn.annotation.carry import judge_carried  # best of the other starts offered (app_carry),

        others = [labels[m] for m in ("model_map", "head_map") if m in labels]
        for kept, flagged in ((carry_record, False), (domain_carry_record, inside is False)):
            judged = judge_carried(labels["carried_map"], others, s.label, classes.ignore_index, flagged)
            if judged is not None:  # and against the start it would replace (app_domain: empty if flagged)
                kept.append(judged)


def _head_learns(trainer, model, s, runs, labels, head, step) -> None:
    """The head learns the image as the head workflow corrected it."""
    from_head = head is not None and runs["assist_head_start"].actions <= runs["assist_empty"].actions
    corrected = labels["assist_head_start" if from_head else "assist_empty"]
    if head is not None:  # the head's record: an image it did not train on, against the person's
        # truth — the corrected map keeps its start's labels on void pixels, which would favour that start
        trainer.judge(s.name, labels["head_map"], labels["model_map"], s.label)
    step("head features")
    trainer.add(s.name, model, s.image, corrected)


def _add_extras(seqs, scores, head_seconds) -> None:
    """The model scenario's uncertainty scores and their rank correlation; the head's fit times."""
    if "model" in seqs and scores[MEASURES[0]]:
        seqs["model"].extra = {"uncertainty": scores,
                               "spearman": {m: spearman(scores[m], seqs["model"].actions) for m in MEASURES}}
    for name in HEADED:
        if name in seqs:
            seqs[name].extra["head_fit_seconds"] = head_seconds


def run_per_image(model, samples, classes, config: AnnotateConfig, log, progress=None) -> list[Sequence]:
    """The per-image scenarios of ``config.scenarios`` (all but the loops) in one pass over the
    images (the head learns along it). See the module docstring. ``progress(done, total, what)``:
    ``done`` of the ``total`` images annotated, ``what`` the step under way (``"image 3: head
    fit"``; every image's starts take seconds); each image's log line says the time left."""
    from qgn.annotation.carry import carry_record_key
    from qgn.progress import TimeLeft
    from qgn.project_head import HeadTrainer

    wanted = [n for n in PER_IMAGE if n in config.scenarios]
    seqs = {n: Sequence(n) for n in wanted}
    headed = any(n in HEADED for n in wanted)
    trainer = HeadTrainer(classes) if headed else None
    scores = {m: [] for m in MEASURES}
    head_seconds = []
    previous = None  # (image, corrected map) of the image before, for the carried start
    carry_record = []  # (carried start's, app_guarded start's) pixel accuracy per judged image
    domain_carry_records = {}  # (carried start's, app_domain's other start's): empty's (0) on a flagged image;
    # one list, or one per verdict (config.carry_records; qgn.annotation.carry.carry_record_key)
    records = {n: [] for n in JUDGES if n in wanted}  # per image, {start: its judge's actions}: what each rule has seen
    time_left = TimeLeft()
    for i, s in enumerate(samples):
        def step(what: str, i=i) -> None:
            if progress is not None:
                progress(i, len(samples), f"image {i + 1}: {what}")

        step("prediction")
        prediction = _predict(model, s.image, config.scheme) if model is not None else None
        if prediction is not None:
            _add_scores(scores, prediction)
        runs, labels, head = _simulate_starts(s, model, prediction, classes, config, wanted, trainer, previous, step)
        if head is not None:
            head_seconds.append(head.fit_seconds)
        record = list(trainer.record.values()) if trainer is not None else []
        seen = {n: r[:max(len(r) - config.record_lag, 0)] for n, r in records.items()}  # what each rule knows now
        inside = _domain_check(model, s, config, wanted, seen, step)
        domain_carry_record = domain_carry_records.setdefault(carry_record_key(inside, config.carry_records), [])
        choices = _scenario_choices(runs, record, carry_record, inside, seen, domain_carry_record)
        _keep_judge_records(records, s, labels, runs, choices, classes, config, step)
        _keep_carry_records(labels, s, classes, inside, carry_record, domain_carry_record)
        if "assist_empty" in labels:
            previous = (s.image, labels["assist_empty"])
        _add_chosen(seqs, wanted, choices, s)
        if trainer is not None:  # the head learns the image as the head workflow corrected it
            _head_learns(trainer, model, s, runs, labels, head, step)
        log(f"image {i + 1}/{len(samples)}: " + ", ".join(f"{n} {seqs[n].actions[-1]}" for n in wanted)
            + time_left.suffix(i + 1, len(samples)))
        if progress is not None:
            progress(i + 1, len(samples), "")
    out = [seqs[n] for n in wanted]
    _add_extras(seqs, scores, head_seconds)
    return out


def _simulate_starts(s, model, prediction, classes, config: AnnotateConfig, wanted: list[str], trainer,
                     previous=None, step=lambda what: None):
    """One image corrected from each start the wanted scenarios need (empty, the model's map, the
    project head's map, ``previous`` = (image, corrected map) of the image before carried by the
    flow; with the cell tools alone or with the image tools). Returns the efforts and the corrected
    maps by run name, and the head fitted on the images before this one (or None). ``step(what)``
    before each part (a correction from one start, the superpixels, the head's fit)."""
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate_tools import ImageTools

    headed = any(n in HEADED for n in wanted)
    carry = any(n in ("assist_previous", "app_carry", "app_domain", "app_confident", *JUDGES) for n in wanted)
    assist = headed or carry or any(n.startswith("assist") for n in wanted)
    sim = dict(target=config.target, tolerance=config.tolerance, beta=config.beta)

    def run(start, tools=None):
        return simulate_annotator(s.label, start, classes, tools=tools, **sim)

    empty = np.full(s.label.shape, classes.ignore_index)
    runs, labels = {}, {}
    if "scratch" in wanted or "model" in wanted:  # the cell tools from empty (``model``'s alternative)
        step("scratch")
        runs["scratch"], _ = run(empty)
    if "model" in wanted:
        step("from the model, cell tools")
        runs["model_start"], _ = run(prediction.label())
    if assist:
        step("superpixels")
    over = oversegment(s.image) if assist else None
    if assist:
        step("from empty, image tools")
        runs["assist_empty"], labels["assist_empty"] = run(empty, [ImageTools(over)])
    model_map = _simulate_model_starts(run, prediction, classes, config, wanted, headed, carry, over, empty,
                                       runs, labels, step)
    head = _simulate_learnt_starts(run, s, model, classes, config, headed, carry, previous, over, model_map,
                                   trainer, runs, labels, step)
    labels["over"] = over
    return runs, labels, head


def _start_tools(over, config: AnnotateConfig, model_map, start_map) -> list:
    """The image tools on the superpixels ``over``, the snap brush following what ``config.snap_evidence``
    says (the image, ``model_map`` or ``start_map``)."""
    from qgn.bench.annotate_tools import ImageTools

    evidence = {"image": None, "prediction": model_map, "oracle": start_map}[config.snap_evidence]
    return [ImageTools(over, evidence=evidence, evidence_only=config.snap_evidence == "prediction")]


def _simulate_model_starts(run, prediction, classes, config: AnnotateConfig, wanted: list[str], headed: bool,
                           carry: bool, over, empty, runs: dict, labels: dict, step):
    """``_simulate_starts``' corrections with the image tools from the model's map and from its
    confident part, into ``runs`` and ``labels``; the model's map (None when no scenario needs it)."""
    model_map = None
    if "assist_model" in wanted or headed or (carry and config.snap_evidence == "prediction"):
        model_map = labels["model_map"] = prediction.label()
        step("from the model, image tools")
        runs["assist_model_start"], labels["corrected_model"] = run(model_map, _start_tools(over, config, model_map,
                                                                                            model_map))
        runs["assist_model_empty"] = run(empty, _start_tools(over, config, model_map, model_map))[0] \
            if config.model_snap else None
    if "assist_confident" in wanted or "app_confident" in wanted:
        step("confident start, image tools")
        confident = labels["confident_map"] = prediction.confident(config.confidence, classes.ignore_index)
        runs["assist_confident_start"], labels["corrected_confident"] = run(
            confident, _start_tools(over, config, model_map, confident))
    return model_map


def _simulate_learnt_starts(run, s, model, classes, config: AnnotateConfig, headed: bool, carry: bool, previous,
                            over, model_map, trainer, runs: dict, labels: dict, step):
    """``_simulate_starts``' corrections with the image tools from the project head's map (fitted on
    the images before) and from the previous image's corrected map carried by the flow; the head."""
    if headed:
        step("head fit")
    head = trainer.fit() if headed else None
    if head is not None:
        head_map = labels["head_map"] = head.predict(model, s.image)
        step("from the head, image tools")
        runs["assist_head_start"], labels["assist_head_start"] = run(head_map, _start_tools(over, config, model_map,
                                                                                             head_map))
    if carry and previous is not None and previous[0].shape == s.image.shape:
        from qgn.annotation.carry import carried_start

        step("carried start")
        carried = labels["carried_map"] = carried_start(previous[0], previous[1], s.image, classes.ignore_index)
        runs["assist_carried"], labels["corrected_previous"] = run(carried, _start_tools(over, config, model_map,
                                                                                          carried))
    return head


EFFORT_WINDOW = 3  # the starts' record: their last this many judged images


def cheapest_start(record, offered, window: int = EFFORT_WINDOW) -> str | None:
    """app_effort's choice: the start a new image defaults to, by the effort each start has cost so
    far (a bench scenario, not the app's rule: see ``_judged_as_saved``).

    record:  per saved image, in order, {start name: actions the simulated annotator needed from
             that start to the saved annotation} (``_judged_as_saved``), for the
             starts the image was offered ("empty", "model", "head", "previous").
    offered: the starts this image can have, in order of preference on a tie.
    Returns the offered start with the fewest actions on average over the last ``window`` images
    that measured it (a start none of them measured is not chosen), or None when no offered start
    was measured yet (the caller keeps its default). Pixel accuracy cannot make this choice: an
    empty map gets no pixel right, yet on a scene the model does not know it is often the cheaper
    start (benchmarks/RESULTS.md, "A sequence the model never saw, and a start judged by the actions
    it cost")."""
    recent = list(record)[-window:]
    means = {}
    for name in offered:
        seen = [r[name] for r in recent if name in r]
        if seen:
            means[name] = sum(seen) / len(seen)
    if not means:
        return None
    return min(means, key=lambda n: (means[n], list(offered).index(n)))


def _judged_as_saved(s, labels: dict, chosen: str, classes, config: AnnotateConfig) -> dict:
    """app_effort's record of one image as an app can make it: the actions from
    every start it was offered to the map *saved* from the start it was given (``chosen``), at 1 px
    — not to the truth. A saved map keeps its start's labels on pixels the truth leaves void and in
    the last 1 % the annotator left, which favours the start that was given; the bench measures that
    bias rather than judging with a truth the app never has."""
    return _actions_to(_saved_map(labels, chosen), _offered(s, labels, classes), labels, classes, config)


def _saved_map(labels: dict, chosen: str) -> np.ndarray:
    """The map the simulated annotator saved from the start ``chosen``."""
    return {"empty": labels.get("assist_empty"), "model": labels.get("corrected_model"),
            "head": labels.get("assist_head_start"), "previous": labels.get("corrected_previous")}[chosen]


def _offered(s, labels: dict, classes) -> dict:
    """{start name: its map} of the starts the image was offered."""
    starts = {"empty": np.full(s.label.shape, classes.ignore_index), "model": labels.get("model_map"),
              "head": labels.get("head_map"), "previous": labels.get("carried_map")}
    return {name: m for name, m in starts.items() if m is not None}


def _actions_to(target: np.ndarray, starts: dict, labels: dict, classes, config: AnnotateConfig,
                tolerance: int = 1) -> dict:
    """{start name: the simulated annotator's actions from it to ``target``} with the image tools."""
    from qgn.bench.annotate_tools import ImageTools

    tools = [ImageTools(labels["over"])]
    return {name: simulate_annotator(target, start, classes, tools=tools, target=config.target, tolerance=tolerance,
                                     beta=config.beta)[0].actions
            for name, start in starts.items()}


STARTS_RUN = {"previous": "assist_carried", "head": "assist_head_start", "model": "assist_model_start",
              "empty": "assist_empty"}  # a start's name -> its image-tool run in ``_simulate_starts``


def _judged_own(s, labels: dict, runs: dict, chosen: str, classes, config: AnnotateConfig,
                as_saved: dict | None = None) -> dict:
    """app_own's record of one image: ``_judged_as_saved``'s, except that the start given
    (``chosen``) is judged by the actions the person took from it (its run's actions, what an app
    counts) instead of by the actions from it to the map saved from it, which are fewer — the saved
    map keeps that start's labels where the person left them and is made of the tools' own edits.
    ``as_saved``: that record when already measured."""
    record = dict(as_saved) if as_saved is not None else _judged_as_saved(s, labels, chosen, classes, config)
    record[chosen] = runs[STARTS_RUN[chosen]].actions
    return record


def _judged_scaled(s, labels: dict, runs: dict, chosen: str, classes, config: AnnotateConfig,
                   as_saved: dict | None = None) -> dict:
    """app_scaled's record of one image: the as-saved record (``_judged_as_saved``; ``as_saved``
    when already measured) times how much easier the saved map was for the given start
    (``chosen``) than the person's own count, the given start's entry that count
    (``_judged_own``'s). Within one image it ranks the starts as the as-saved record does; across
    images its entries are on the person's scale, which ``cheapest_start``'s average mixes."""
    if as_saved is None:
        as_saved = _judged_as_saved(s, labels, chosen, classes, config)
    person = runs[STARTS_RUN[chosen]].actions
    scale = person / max(as_saved[chosen], 1)
    return {name: (person if name == chosen else actions * scale) for name, actions in as_saved.items()}


def edge_band(saved: np.ndarray, r: int) -> np.ndarray:
    """Pixels within ``r`` px (chessboard) of a class edge of ``saved``: a pixel whose 4-neighbour
    holds another value (ignore counts as a value), dilated r times with a 3x3 square."""
    from scipy import ndimage

    edge = np.zeros(saved.shape, bool)
    diff_x = saved[:, 1:] != saved[:, :-1]
    diff_y = saved[1:, :] != saved[:-1, :]
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    if r > 0:
        edge = ndimage.binary_dilation(edge, structure=np.ones((3, 3), bool), iterations=r)
    return edge


def set_aside(saved: np.ndarray, given: np.ndarray, starts: dict, where: np.ndarray) -> np.ndarray:
    """The pixels a judge sets aside for every start: S == G (the person left the given start's
    label), some offered start differs from S there, and ``where`` holds."""
    differs = np.zeros(saved.shape, bool)
    for m in starts.values():
        differs |= m != saved
    return (saved == given) & differs & where


def _judged_edge(s, labels: dict, chosen: str, classes, config: AnnotateConfig, r: int = 2) -> dict:
    """app_edge2's record of one image: ``_judged_as_saved``'s with the pixels ``set_aside`` (void,
    for every start alike) within ``r`` px of a class edge of the saved map — where the given
    start's labels the person left are the ones a start gets free only because it was given."""
    saved, starts = _saved_map(labels, chosen), _offered(s, labels, classes)
    aside = set_aside(saved, starts[chosen], starts, edge_band(saved, r))
    return _actions_to(np.where(aside, classes.ignore_index, saved), starts, labels, classes, config)


def _judged_tolerant(s, labels: dict, chosen: str, classes, config: AnnotateConfig, tolerance: int = 3) -> dict:
    """app_tol3's record of one image: ``_judged_as_saved``'s at a ``tolerance`` px boundary
    tolerance instead of 1 px, for every start alike."""
    return _actions_to(_saved_map(labels, chosen), _offered(s, labels, classes), labels, classes, config, tolerance)


def _judged(judge: str, s, labels: dict, runs: dict, chosen: str, classes, config: AnnotateConfig,
            as_saved: dict) -> dict:
    """One image's record under ``judge`` (a value of ``JUDGES``) of the map saved from ``chosen``;
    ``as_saved``: {given start: its as-saved record} of this image, filled and shared between the
    judges built on it."""
    if judge == "edge2":
        return _judged_edge(s, labels, chosen, classes, config)
    if judge == "tol3":
        return _judged_tolerant(s, labels, chosen, classes, config)
    if chosen not in as_saved:
        as_saved[chosen] = _judged_as_saved(s, labels, chosen, classes, config)
    if judge == "own":
        return _judged_own(s, labels, runs, chosen, classes, config, as_saved[chosen])
    if judge == "scaled":
        return _judged_scaled(s, labels, runs, chosen, classes, config, as_saved[chosen])
    return dict(as_saved[chosen])


def _effort_choice(runs: dict, effort_record: list, inside: bool | None = None) -> dict:
    """app_effort: the offered start that cost least over the last images (``cheapest_start``);
    before any was judged, the model's — or empty where ``inside`` is False: the model's domain
    check (``qgn.domain``) says the image is unlike its training images, as the app warns."""
    named = STARTS_RUN
    offered = [s for s, run in named.items() if runs.get(run) is not None]
    if not offered:  # app_effort not wanted: no image-tool run was made (``--scenarios scratch``)
        return {}
    first = "empty" if inside is False or "model" not in offered else "model"
    chosen = cheapest_start(effort_record, offered) or first
    return {chosen: runs[named[chosen]]}


def _scenario_choices(runs: dict, record: list, carry_record: list = (), inside: bool | None = None,
                      records: dict | None = None, domain_carry_record: list | None = None) -> dict:
    """Scenario → (the efforts it may choose between by start, the extra actions each start costs),
    from the runs of ``_simulate_starts`` (a run not made is None); ``record``: the head's record
    before this image (``qgn.project_head.prefer_head``); ``carry_record``: the carried start's
    (``qgn.annotation.carry.prefer_carried``); ``inside``: the domain check's verdict on this image
    (False: outside the model's domain; None: not asked); ``records``: {scenario of ``JUDGES``: its
    record of the images before} (one not given: nothing judged yet); ``domain_carry_record``: the
    carried start's record as ``app_domain`` keeps it, against the start it would replace — empty's on
    a flagged image (``qgn.annotation.carry.judge_carried``; None: ``carry_record``)."""
    from qgn.annotation.carry import prefer_carried
    from qgn.project_head import prefer_head

    head = runs.get("assist_head_start")
    app = {"head": head} if head is not None else {"model": runs.get("assist_model_start")}
    guarded = {"head": head} if head is not None and prefer_head(record) else {"model": runs.get("assist_model_start")}
    carried = runs.get("assist_carried")
    carry = {"previous": carried} if carried is not None and prefer_carried(carry_record) else guarded
    outside = {"empty": runs.get("assist_empty")} if inside is False else guarded  # app_domain: no model or head
    domain_record = carry_record if domain_carry_record is None else domain_carry_record
    domain = {"previous": carried} if carried is not None and prefer_carried(domain_record) else outside
    confident = {"confident": runs.get("assist_confident_start")}
    doubt = confident if inside is False else guarded  # app_confident: the confident start on a flagged image
    trusted = {"previous": carried} if carried is not None and prefer_carried(carry_record) else doubt
    judged = {name: (_effort_choice(runs, (records or {}).get(name, []), inside), {}) for name in JUDGES}
    if inside is False:  # app_domain_edge2: app_domain's start on a flagged image
        judged["app_domain_edge2"] = (domain, {})
    return {
        "scratch": ({"scratch": runs.get("scratch")}, {}),
        "model": ({"model": runs.get("model_start"), "empty": runs.get("scratch")}, {"empty": 1}),
        "assist_scratch": ({"empty": runs.get("assist_empty")}, {}),
        "assist_model": ({"model": runs.get("assist_model_start"), "empty": _fewer(runs.get("assist_model_empty"),
                                                                                  runs.get("assist_empty"))},
                         {"empty": 1}),
        "assist_head": ({"head": runs.get("assist_head_start"), "empty": runs.get("assist_empty")},
                        {"head": 1, "empty": 1}),
        "best": ({"model": runs.get("assist_model_start"),
                  "empty": _fewer(runs.get("assist_model_empty"), runs.get("assist_empty")),
                  "head": runs.get("assist_head_start")}, {"head": 1, "empty": 1}),
        "app": (app, {}),
        "app_guarded": (guarded, {}),
        "assist_previous": ({"previous": carried} if carried is not None else {"empty": runs.get("assist_empty")}, {}),
        "app_carry": (carry, {}),
        "app_domain": (domain, {}),
        "assist_confident": (confident, {}),
        "app_confident": (trusted, {}),
        **judged,
    }


def run_loop(model, samples, classes, config, log, measure: str | None = None, progress=None) -> Sequence:
    """``loop`` (``measure`` None: the given order) or ``loop_uncertainty`` (ordered by ``measure``).
    ``progress(done, total, what)`` as ``run_per_image``'s (``what``: the image, the uncertainty
    pass or the fine-tune's iteration); each image's log line says the time left."""
    from qgn.progress import TimeLeft

    seq = Sequence("loop" if measure is None else "loop_uncertainty")
    time_left = TimeLeft()

    def step(what: str) -> None:
        if progress is not None:
            progress(len(seq.actions), len(samples), what)
    start = time.perf_counter()
    remaining = list(range(len(samples)))
    images, corrected = [], []
    current = model
    while remaining:
        block = remaining[: config.every]
        predictions = {}
        if measure is not None:
            for k, j in enumerate(remaining):
                step(f"uncertainty of the images left, {k}/{len(remaining)}")
                predictions[j] = _predict(current, samples[j].image, config.scheme)
            scores = [image_uncertainty(predictions[j].prediction).score(measure) for j in remaining]
            block = [remaining[k] for k in order_by_uncertainty(scores)[: config.every]]
        for j in block:
            s = samples[j]
            step(f"image {len(seq.actions) + 1}")
            prediction = predictions.get(j) or _predict(current, s.image, config.scheme)
            sim = dict(target=config.target, tolerance=config.tolerance, beta=config.beta)
            from_model = simulate_annotator(s.label, prediction.label(), classes, **sim)
            from_empty = simulate_annotator(s.label, np.full(s.label.shape, classes.ignore_index), classes, **sim)
            name, effort = _choose({"model": from_model[0], "empty": from_empty[0]}, {"empty": 1})
            label = (from_model if name == "model" else from_empty)[1]
            seq.add(s.name, effort)
            images.append(s.image)
            corrected.append(label)
            log(f"{seq.name} {len(seq.actions)}/{len(samples)}: {effort.actions} actions"
                + time_left.suffix(len(seq.actions), len(samples)))
            step("")
        remaining = [j for j in remaining if j not in block]
        if remaining:
            step(f"fine-tuning on {len(images)} images, 0/{config.iterations}")
            current, seconds = _finetune(current, images, corrected, config, lambda iteration, loss: step(
                f"fine-tuning on {len(images)} images, {iteration}/{config.iterations}"))
            seq.finetune_seconds.append(seconds)
            log(f"{seq.name}: fine-tuned on {len(images)} images in {seconds:.0f} s")
    seq.seconds = time.perf_counter() - start
    seq.extra["final_model"] = current
    return seq


def heldout_scores(model, samples, classes, scheme: str = "pc") -> dict:
    """{"miou", "acc"} (0 … 1) of ``model`` on ``samples`` (full-size predictions)."""
    from qgn.metrics import ConfusionMatrix

    confusion = ConfusionMatrix(classes.num_classes)
    for s in samples:
        label = np.asarray(s.label).astype(np.int64)
        confusion.add(np.where(label == classes.ignore_index, -1, label) if classes.ignore_index is not None else label,
                      _predict(model, s.image, scheme).label())
    return {"miou": float(confusion.miou()), "acc": float(confusion.accuracy())}


def annotate_bench(model, samples, classes, config: AnnotateConfig | None = None,
                   log: Callable[[str], None] = lambda m: None, heldout=(),
                   progress: Callable[[str, int, int, str], None] | None = None) -> tuple[list[Sequence], dict]:
    """Every scenario of ``config.scenarios`` but the session walks on ``samples`` (objects with ``image`` (H, W, 3)
    uint8, ``label`` (H, W) int, ``name``) in ``classes``; and the anchors {"gt_leaves",
    "polygon_vertices"}: per-image lists. With ``heldout`` samples, each loop records the
    model's scores on them before and after its fine-tunes (``heldout_before``/``heldout_after``).
    ``progress(pass, done, total, what)``: ``done`` of the ``total`` images of a pass over them
    (``"per image"``: the per-image scenarios together; ``"loop"``, ``"loop_uncertainty"``) and the
    step under way (``run_per_image``, ``run_loop``). The ``session*`` scenarios are not run here:
    ``qgn.bench.session.run_sessions`` runs them (it builds on this module; the CLI calls both)."""
    def passing(name: str):
        return None if progress is None else (lambda done, total, what: progress(name, done, total, what))
    config = config or AnnotateConfig()
    if classes.ignore_index is None:
        raise ValueError("the annotation benchmark needs a class set with an ignore value (the empty map)")
    anchors = {"gt_leaves": [], "polygon_vertices": []}
    for i, s in enumerate(samples):
        if progress is not None:
            progress("anchors", i, len(samples), "")
        anchors["gt_leaves"].append(gt_leaves(s.label, classes))
        anchors["polygon_vertices"].append(polygon_vertices(s.label, classes))
    if progress is not None and samples:
        progress("anchors", len(samples), len(samples), "")
    out: list[Sequence] = []
    measure = config.measure
    before = heldout_scores(model, heldout, classes, config.scheme) if heldout else None
    unknown = [n for n in config.scenarios if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    if any(n in PER_IMAGE for n in config.scenarios):
        out += run_per_image(model, samples, classes, config, log, passing("per image"))
    for name in [n for n in config.scenarios if n.startswith("loop")]:
        if name == "loop":
            out.append(run_loop(model, samples, classes, config, log, progress=passing(name)))
        else:
            if measure is None:
                found = next((s for s in out if s.name == "model"), None)
                rho = found.extra.get("spearman", {}) if found else {}
                measure = max(MEASURES, key=lambda m: -1 if not np.isfinite(rho.get(m, np.nan)) else rho[m])
            seq = run_loop(model, samples, classes, config, log, measure, passing(name))
            seq.extra["measure"] = measure
            out.append(seq)
        if heldout and out[-1].name.startswith("loop"):
            out[-1].extra["heldout_before"] = before
            out[-1].extra["heldout_after"] = heldout_scores(out[-1].extra["final_model"], heldout, classes,
                                                            config.scheme)
            log(f"{out[-1].name}: held-out mIoU {before['miou']:.3f} -> {out[-1].extra['heldout_after']['miou']:.3f}")
    return out, anchors


def bench_rows(sequences: list[Sequence], anchors: dict, model_name: str, scratch: list | None = None) -> list[BenchRow]:
    """One ``BenchRow`` per scenario (section "annotate", name = the scenario): actions per image
    and, per image, actions, milestones (actions to 95 / 98 / 99 %), the start taken; totals of
    tools and strokes per level; ``ratio_to_scratch`` (mean actions over the ``scratch`` row's)."""
    rows = []
    n = len(anchors["gt_leaves"])
    base = next((s for s in sequences if s.name == "scratch"), None)
    base_mean = float(np.mean(base.actions)) if base is not None and base.actions else None
    for seq in sequences:
        mean = float(np.mean(seq.actions)) if seq.actions else None
        total_actions = int(np.sum(seq.actions)) if seq.actions else 0
        extra = {
            "actions_per_image": mean,
            "images": len(seq.actions), "model": model_name,
            "ratio_to_scratch": mean / base_mean if mean is not None and base_mean else None,
            "actions": seq.actions, "clicks": seq.clicks, "strokes": seq.strokes, "order": seq.names,
            "start_accuracy": seq.start_accuracy, "finetune_seconds": seq.finetune_seconds,
            "milestones": seq.milestones, "starts": seq.starts,
            "milestones_per_image": {k: _mean_milestone(seq.milestones, k) for k in ("95", "98", "99")},
            "tools": seq.tools, "strokes_per_level": seq.strokes_per_level,
            "tool_seconds_per_action": seq.tool_seconds / total_actions if total_actions else None,
            "simulation_seconds": seq.seconds, "collateral_pixels": seq.collateral,
            "gt_leaves_per_image": float(np.mean(anchors["gt_leaves"])) if n else None,
            "polygon_vertices_per_image": float(np.mean(anchors["polygon_vertices"])) if n else None,
        }
        for key in ("spearman", "measure", "uncertainty", "heldout_before", "heldout_after", "head_fit_seconds",
                    "tolerance", "beta", "model_snap", "snap_evidence", "confidence", "record_lag", "session",
                    "carry_records"):
            if key in seq.extra:
                extra[key] = seq.extra[key]
        if "spearman" in extra:  # JSON has no NaN
            extra["spearman"] = {m: (v if np.isfinite(v) else None) for m, v in extra["spearman"].items()}
        rows.append(BenchRow(seq.name, "annotate", "cpu", None, None, seq.seconds, extra))
    return rows


def _mean_milestone(milestones: list, key: str) -> float | None:
    values = [m.get(key) for m in milestones]
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def format_table(rows: list[BenchRow]) -> str:
    """The effort table: actions per image (mean, ratio to scratch, first and last 5, to 95 / 98 %),
    the starts taken, beside the anchors."""
    lines = [f"{'scenario':<16}{'actions/image':>14}{'x scratch':>10}{'first 5':>9}{'last 5':>9}{'to 95%':>8}"
             f"{'to 98%':>8}  starts / fine-tunes"]
    for r in rows:
        a = r.extra["actions"]
        m = r.extra["milestones_per_image"]
        ft = r.extra["finetune_seconds"]
        starts = r.extra["starts"]
        taken = ", ".join(f"{k} {starts.count(k)}" for k in dict.fromkeys(starts) if k)
        ratio = r.extra["ratio_to_scratch"]
        lines.append(f"{r.name:<16}{r.extra['actions_per_image']:>14.1f}{(ratio or float('nan')):>10.2f}"
                     f"{np.mean(a[:5]):>9.1f}{np.mean(a[-5:]):>9.1f}"
                     f"{(m['95'] if m['95'] is not None else float('nan')):>8.1f}"
                     f"{(m['98'] if m['98'] is not None else float('nan')):>8.1f}  {taken}"
                     + (f"; fine-tunes {', '.join(f'{s:.0f}' for s in ft)} s" if ft else ""))
    if rows:
        x = rows[0].extra
        lines.append(f"anchors per image: {x['gt_leaves_per_image']:.0f} quadtree leaves of the ground truth, "
                     f"{x['polygon_vertices_per_image']:.0f} polygon vertices at 1 px tolerance")
    for r in rows:
        tools = r.extra["tools"]
        total = sum(tools.values()) or 1
        lines.append(f"{r.name}: tools " + ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in tools.items())
                     + f"; strokes per level 0..5 {r.extra['strokes_per_level']}; "
                     f"{1000 * (r.extra['tool_seconds_per_action'] or 0):.1f} ms of tool compute per action")
        if "head_fit_seconds" in r.extra and r.extra["head_fit_seconds"]:
            hs = r.extra["head_fit_seconds"]
            lines.append(f"{r.name}: head fits median {np.median(hs):.2f} s, max {np.max(hs):.2f} s")
        if "spearman" in r.extra:
            rho = ", ".join(f"{m} {v:+.2f}" if v is not None else f"{m} n/a" for m, v in r.extra["spearman"].items())
            lines.append(f"Spearman correlation of uncertainty with the model's actions: {rho}")
        if "measure" in r.extra:
            lines.append(f"loop_uncertainty ordered by {r.extra['measure']}")
        if "heldout_after" in r.extra:
            b, a = r.extra["heldout_before"], r.extra["heldout_after"]
            lines.append(f"{r.name}: held-out mIoU {100 * b['miou']:.1f} -> {100 * a['miou']:.1f} %, "
                         f"pixel accuracy {100 * b['acc']:.1f} -> {100 * a['acc']:.1f} %")
    return "\n".join(lines)
