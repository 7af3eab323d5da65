"""The model side of the app: one model, per-image sessions, and RenderResults (no Qt).

Every method runs on the worker thread (``qgn_studio.workers``); the UI thread never calls
into this module. Runs go level by level (depth 5, 4, … — each continues from the session's
cache), so a run can stop between two levels when the user moves on (``Cancelled``).
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qgn.progress import StepCosts, TimedText
from qgn.quadtree.quadtree import image_leaves
from qgn_studio.discovery import resolved
from qgn_studio.document import ROOT_LEVEL, CurvePoint, ImageDocument, LevelView, RenderResult, SchemeChoice

StopCheck = Callable[[], bool]
Progress = Callable[[str], None]


BIG_PIXELS = 1_000_000  # an image whose reading and preparing is said before it was ever measured


def megapixels(pixels: float) -> str:
    """An image's size for a note: "24 MP", "1.2 MP"."""
    mp = pixels / 1e6
    return f"{mp:.0f} MP" if mp >= 9.5 else f"{mp:.1f} MP"


class Cancelled(Exception):
    """The run was stopped between two levels because newer work arrived."""


@dataclass(frozen=True)
class ModelInfo:
    """What the window shows about the loaded model."""

    path: Path
    name: str
    classes: object  # qgn.classes.ClassSet
    description: str
    device: str
    cuda_available: bool = False


def configure_threads() -> int:
    """Set the calling thread's PyTorch intra-op threads; returns the number.

    ``QGN_STUDIO_THREADS`` decides; by default half the cores, at least one: two workers compute
    at once, and oversubscribed OpenMP pools spin-wait (a 24-site level then takes a second
    instead of a millisecond on a busy 2-core machine).
    """
    from qgn_studio.torch_loading import import_torch

    torch = import_torch()  # the first time: in shorter pieces of the GIL, so the UI thread runs on
    count = int(os.environ.get("QGN_STUDIO_THREADS", "0") or 0) or max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(count)
    return count


def auto_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class _Entry:
    """One image's ImageSession and the LevelViews already extracted from it."""

    def __init__(self, session):
        self.session = session
        self.levels: dict[tuple, LevelView] = {}
        self.domain = None  # qgn.domain.DomainVerdict once judged (the model has a reference)


class Engine:
    """Owns the model and an LRU of ImageSessions (the encoder output and levels per image)."""

    def __init__(self, max_sessions: int = 6):
        self.model = None
        self.info: ModelInfo | None = None
        self.device = "cpu"
        self.max_sessions = max_sessions
        self.resolution = "auto"  # "working" | "native" | "auto": qgn.model.qgn.QGNConfig.resolution_for
        self.reference = None  # the model's qgn.domain.DomainReference, or None (no verdicts)
        self._entries: OrderedDict[Path, _Entry] = OrderedDict()
        self.costs = StepCosts()  # the measured cost of each step of a prediction, for its time left
        # reading an image file (by its suffix) and preparing its session (by resolution and device),
        # per pixel: kept apart from a prediction's steps, and across models (reading does not follow one)
        self.image_costs = StepCosts()
        self.clock = time.perf_counter  # (tests pass their own)

    # ------------------------------------------------------------------ model
    def load_model(self, path: Path | None, device: str | None) -> ModelInfo:
        """Load ``path`` (the bundled demo model when None) on ``device`` ("auto" or None: CUDA if any)."""
        from qgn.domain import reference_for
        from qgn.model.checkpoint import load_model
        from qgn.resources import default_model

        path = default_model(path, "")  # (the app has no --model option to name)
        device = auto_device() if device in (None, "auto") else device
        if device == "cuda" and not cuda_available():
            raise RuntimeError("CUDA is not available on this machine; choose Model → Device → CPU")
        self.model = load_model(path, device)
        self.device = device
        self._entries.clear()
        self.costs = StepCosts()  # another model's steps cost otherwise
        self.info = self._describe(path)
        self.reference = reference_for(path)  # (made for this very file, else None: no verdicts)
        return self.info

    def use_model(self, model, path: Path) -> ModelInfo:
        """Switch to ``model`` (e.g. a fine-tuned one, already saved at ``path``) on our device."""
        from qgn.domain import reference_for

        model.to(self.device)
        model.eval()
        self.model = model
        self._entries.clear()
        self.costs = StepCosts()
        self.info = self._describe(Path(path))
        self.reference = reference_for(path)
        return self.info

    def adopt(self, other: "Engine") -> None:
        """Use ``other``'s model (shared, read-only) and resolution with sessions of our own."""
        self.model, self.info, self.device = other.model, other.info, other.device
        self.resolution, self.reference = other.resolution, other.reference
        self._entries.clear()

    def set_resolution(self, resolution: str) -> ModelInfo | None:
        """Run photos at the working size, at full resolution, or "auto" (full resolution where
        the model learnt the photo's scale); the sessions made at the old one are dropped."""
        from qgn.model.qgn import RESOLUTIONS

        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}; got {resolution!r}")
        self.resolution = resolution
        self._entries.clear()
        return self.info

    def set_device(self, device: str) -> ModelInfo:
        """Move the model to ``device``; the sessions (on the old device) are dropped."""
        if self.model is None:
            raise RuntimeError("no model is loaded")
        device = auto_device() if device in (None, "auto") else device
        if device == "cuda" and not cuda_available():
            raise RuntimeError("CUDA is not available on this machine")
        self.model.to(device)
        self.device = device
        self._entries.clear()
        self.costs = StepCosts()
        self.info = replace(self.info, device=device)
        return self.info

    def _describe(self, path: Path) -> ModelInfo:
        c = self.model.config
        text = (f"encoder {c.encoder} ×{c.encoder_width:g}, decoder width ×{c.decoder_width:g}, "
                f"units {list(c.decoder_units)}")
        return ModelInfo(resolved(path), path.stem, c.classes, text, self.device, cuda_available())

    @property
    def classes(self):
        return None if self.model is None else self.model.config.classes

    # ------------------------------------------------------------------ sessions
    def _entry(self, doc: ImageDocument, progress: Progress | None = None) -> _Entry:
        """``doc``'s session, made if not kept: a big photo's resize to its working size and its
        tensors take seconds (2.5 s for 24 MP on CPU, under a note that said "Reading" all along):
        ``progress`` says "preparing <name> (24 MP)" for an image of a megapixel or more, and its
        time left, measured per pixel of this process's earlier images at this resolution."""
        from qgn.infer import ImageSession

        if self.model is None:
            raise RuntimeError("no model is loaded")
        entry = self._entries.get(doc.path)
        if entry is None:
            pixels = float(doc.image.shape[0] * doc.image.shape[1])
            kind = ("prepare", self.resolution, self.device)
            left = self.image_costs.seconds([(kind, pixels)])
            if progress is not None and pixels >= BIG_PIXELS:  # (a smaller one's takes milliseconds)
                head = f"preparing {doc.name} ({megapixels(pixels)})"
                progress(f"{head} · estimating the time left…" if left is None else TimedText(head, left))
            started = self.clock()
            entry = _Entry(ImageSession(self.model, doc.image, self._truth(doc), self.device,
                                        resolution=self.resolution))
            self.image_costs.record(kind, pixels, self.clock() - started)
            self._entries[doc.path] = entry
            while len(self._entries) > self.max_sessions:
                self._entries.popitem(last=False)
        self._entries.move_to_end(doc.path)
        return entry

    def forget(self, path: Path) -> None:
        self._entries.pop(path, None)

    def _run(self, entry: _Entry, setting: SchemeChoice, stop: StopCheck, progress: Progress | None,
             finish: tuple | None = None):
        """Prediction for ``setting``, computed one level at a time (cached levels are free).

        ``finish``: the kind of the work the caller does after the last level (``predict``'s level
        views, leaves, metrics and domain verdict), counted as the last step, per pixel of the
        image; it is said ("finishing") when the last level ends. Returns (prediction, scheme,
        the clock when the levels ended)."""
        from qgn.propagation import Scheme

        if setting.scheme == "gtc" and entry.session.label is None:
            raise ValueError("the GTC scheme needs ground truth, and none was found for this image")
        scheme = Scheme(**setting.scheme_arguments())
        session = entry.session
        count = _LevelCountDown(self, entry, setting, scheme, finish, progress)
        prediction = None
        for depth in range(ROOT_LEVEL, setting.depth - 1, -1):
            if stop():
                raise Cancelled
            count.depth = depth
            if depth < ROOT_LEVEL:
                count.upcoming = (depth, session.next_sites(replace(scheme, depth=depth)))
            count.say()
            count.last = self.clock()
            prediction = session.run(replace(scheme, depth=depth), count.step_done)
        ended = self.clock()
        if finish is not None:
            count.done = count.steps.index(count.views if count.cells else finish)
            if count.count > 1:  # (after a level, "under a second left" while the views and metrics were made)
                count.say()
        return prediction, scheme, ended

    @staticmethod
    def _image_pixels(entry: _Entry) -> float:
        """The pixels of the image a session predicts (the work of a prediction's finishing step)."""
        return float(np.prod(entry.session.size))

    @staticmethod
    def _view_cells(entry: _Entry, level: int) -> int:
        """The cells of a level's view (the work of building it: its codes, probabilities, entropy)."""
        h, w = entry.session.work_size
        return -(-h // (1 << level)) * -(-w // (1 << level))

    def _views_to_build(self, entry: _Entry, scheme, depth: int) -> int:
        """The cells of the level views a prediction of ``scheme`` down to ``depth`` builds (those
        not cached)."""
        return sum(self._view_cells(entry, level) for level in range(ROOT_LEVEL, depth - 1, -1)
                   if (scheme.key(), level) not in entry.levels)

    # ------------------------------------------------------------------ results
    def predict(self, doc: ImageDocument, setting: SchemeChoice, stop: StopCheck = lambda: False,
                progress: Progress | None = None) -> RenderResult:
        entry = self._entry(doc, progress)
        # after the last level: the level views (cached per scheme), the leaves, the metrics (with a
        # ground truth) and the domain verdict (once per session) - up to half a CamVid prediction on
        # CPU; measured per pixel as one more step, by setting and by whether a verdict is to come
        finish = ("finish", setting.family(), self._truth(doc) is not None,
                  entry.domain is None and self.reference is not None and doc.image is not None)
        prediction, scheme, ended = self._run(entry, setting, stop, progress, finish)
        # the level views are measured apart, per cell of those built: a revisit finds some or all
        # cached, and its whole finish per pixel was a rate mixing views built and views found
        # (recorded over a fresh one's, the next fresh image said "about 1 s left" for 301 s)
        built = sum(self._view_cells(entry, lv) for lv in prediction.levels if (scheme.key(), lv) not in entry.levels)
        levels = {lv: self._level_view(entry, scheme, prediction, lv) for lv in prediction.levels}
        views_seconds = self.clock() - ended  # (they are built as the levels end)
        if prediction.output_sizes:  # a working scale: probabilities upsampled bilinearly, not 2×2 staircases (#21)
            from qgn.annotation.start import smooth_start

            label = smooth_start(prediction)
        else:
            label = prediction.label(0)
        # The leaves as the image shows them: padding never splits a cell straddling the edge.
        leaf_level, leaf_x, leaf_y, _ = image_leaves(prediction.working_label(0), prediction.num_classes)
        activation = getattr(prediction, "activation_bytes", None)
        result = RenderResult(
            doc.path, setting, label, levels, (leaf_level, leaf_x, leaf_y), prediction.cost(),
            self._metrics(doc, label), activation() if callable(activation) else None, self.device,
            working_size=tuple(prediction.sizes[0]), truth_note=doc.truth_problem,
            domain=self._domain(entry, doc),
        )
        self.costs.record(("views", setting.family()), float(built), views_seconds)
        self.costs.record(finish, self._image_pixels(entry), self.clock() - (ended + views_seconds))
        return result

    def _domain(self, entry: _Entry, doc: ImageDocument):
        """``doc``'s qgn.domain.DomainVerdict (None: the model has no reference), judged once per
        session from the encoder features its prediction computed (``qgn.domain.judge_session``),
        so it arrives with the first prediction and the annotation's default start can follow it."""
        if entry.domain is None and self.reference is not None and doc.image is not None:
            from qgn.domain import judge_session

            try:
                entry.domain = judge_session(entry.session, doc.image, self.reference)
            except ValueError:  # a reference of another encoder (its SHA-256 blank): no verdicts, every
                self.reference = None  # prediction still shown
        return entry.domain

    def _level_view(self, entry: _Entry, scheme, prediction, level: int) -> LevelView:
        key = (scheme.key(), level)
        view = entry.levels.get(key)
        if view is None:
            h, w = entry.session.work_size
            ch, cw = -(-h // (1 << level)), -(-w // (1 << level))
            codes = prediction.level_classes(level)[0, :ch, :cw].cpu().numpy().astype(np.int16)
            probs = prediction.level_probabilities(level)[0, :, :ch, :cw].cpu().numpy()
            entropy = prediction.level_entropy(level)[0, :ch, :cw].cpu().numpy()
            view = LevelView(level, codes, probs, entropy, prediction.output(level).num_sites)
            entry.levels[key] = view
        return view

    def _truth(self, doc: ImageDocument) -> np.ndarray | None:
        """The document's ground truth when it fits the model's classes (else None, and the
        document says why in ``truth_problem``)."""
        name = None if self.info is None else self.info.name
        return doc.usable_truth(self.model.config.classes, name)

    def _metrics(self, doc: ImageDocument, label: np.ndarray) -> dict | None:
        truth = self._truth(doc)
        if truth is None:
            return None
        from qgn.metrics import ConfusionMatrix

        matrix = ConfusionMatrix(self.model.num_classes).add(truth, label)
        return {"miou": matrix.miou(), "accuracy": matrix.accuracy()}

    def curve_point(self, doc: ImageDocument, setting: SchemeChoice, stop: StopCheck = lambda: False) -> CurvePoint:
        """Accuracy and compute of ``setting`` on ``doc`` (needs its ground truth)."""
        entry = self._entry(doc)
        prediction, _, _ = self._run(entry, setting, stop, None)
        metrics = self._metrics(doc, prediction.label(0))
        if metrics is None:
            raise ValueError(doc.truth_problem or "no ground truth for this image")
        cost = prediction.cost()
        return CurvePoint(doc.path, setting, cost.total_decoder_macs, cost.total_macs,
                          metrics["miou"], metrics["accuracy"])

    def reference_macs(self, doc: ImageDocument, depth: int, stop: StopCheck = lambda: False) -> int:
        """Decoder MACs of the All scheme down to ``depth`` (what PC is compared with)."""
        entry = self._entry(doc)
        prediction, _, _ = self._run(entry, SchemeChoice("all", depth=depth), stop, None)
        return prediction.cost().total_decoder_macs


class _LevelCountDown:
    """The steps of one ``Engine._run`` (encoder stages, decoder levels, the level views, the finish),
    what each costs as it ends (into ``engine.costs``), and the progress said of them: ``say`` before
    each level, ``step_done`` after each stage and level (``ImageSession.run``'s callback).
    ``depth``: the level running; ``upcoming``: (the level about to run, its sites); ``last``: the
    clock when the step under way began; ``done``: the steps ended."""

    def __init__(self, engine: Engine, entry: _Entry, setting: SchemeChoice, scheme, finish: tuple | None,
                 progress: Progress | None):
        session = entry.session
        self.engine, self.entry, self.finish, self.progress = engine, entry, finish, progress
        # each step's cost is measured per unit of its work: an encoder stage per pixel, a decoder
        # level per site it computes, by the whole setting (τ, the entropy threshold: PC at τ 0.99
        # computes a few sites where τ 0.01 computes them all, and each level's cost follows them)
        self.family = family = setting.family()
        self.steps = [step if step[0] == "encoder" else (*step, family)
                      for step in session.pending(replace(scheme, depth=setting.depth))]
        self.views, self.cells = ("views", family), engine._views_to_build(entry, scheme, setting.depth)
        if finish is not None:  # the level views still to build (per cell of their grids), then the rest
            self.steps += [self.views, finish] if self.cells else [finish]
        self.pixels = float(np.prod(session.padded_shape))
        self.count, self.done, self.depth = len(self.steps), 0, ROOT_LEVEL
        self.upcoming = (ROOT_LEVEL, session.next_sites(replace(scheme, depth=ROOT_LEVEL)))  # (level, its sites)
        self.last = engine.clock()

    def work(self, step) -> float | None:
        """Pixels of an encoder stage; sites of the level about to run (its parent's selection
        is known); None for the levels after it (scaled as this setting's latest run grew)."""
        if step[0] == "encoder":
            return self.pixels
        if step[0] == "finish":
            return self.engine._image_pixels(self.entry)
        if step[0] == "views":
            return float(self.cells)
        return self.upcoming[1] if step[1] == self.upcoming[0] else None

    def say(self) -> None:
        if self.progress is None:
            return
        steps, done, costs = self.steps, self.done, self.engine.costs
        finishing = steps[done:done + 1] in ([self.views], [self.finish])  # one note for the views and the finish
        text = "finishing" if finishing else f"computing Q̂{self.depth}"
        if self.count <= 1:  # (a cached run, or one level: no steps to count)
            self.progress(text)
            return
        text += f" · step {min(done + 1, self.count)} of {self.count}"
        left = costs.seconds([(step, self.work(step)) for step in steps[done:]])
        if left is None:
            self.progress(f"{text} · estimating the time left…")
            return
        # the steps after this one: the floor of its count-down (a middle level that overran said
        # "longer than estimated", then the next level a time left again); None: none after it -
        # nor after "finishing", which is said once for the level views and the finish after them
        # (floored at the finish, its note stood still at the finish's estimate through the finish)
        this = costs.seconds([(step, self.work(step)) for step in steps[done:done + 1]])
        after = (None if finishing or done + 1 >= len(steps) else 0.0 if this is None
                 else max(left - this, 0.0))
        self.progress(TimedText(text, left, after))

    def step_done(self, _done: int, _total: int, what: str) -> None:  # after each encoder stage and decoder level
        now = self.engine.clock()
        words = what.split()  # "encoder 2/5", "decoder level 3" or "done"
        step = (("encoder", int(words[1].split("/")[0])) if words[0] == "encoder" else
                ("level", int(words[-1]), self.family) if words[0] == "decoder" else None)
        if step in self.steps[self.done:]:  # (the levels after a decoder that stopped early are passed over)
            amount = self.work(step)
            if amount is not None:
                self.engine.costs.record(step, amount, now - self.last)
            self.done = self.steps.index(step, self.done) + 1
            if step[0] == "encoder":  # (after a level, the next level's run says it, naming its Q̂)
                self.say()
        self.last = now
