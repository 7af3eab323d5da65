"""`qgn bench --only annotate [--model M] [--data DIR] [--split S] [--images N] [--tolerance PX] [--json]`

The annotation-effort section of ``qgn bench`` (``qgn.bench.annotate``): actions per image of a
simulated annotator — ``scratch`` and ``model`` with the cell tools; ``assist_scratch``,
``assist_model`` and ``assist_head`` with the image-aware tools (from empty, with the model, with
the per-project head); ``best`` (per image the cheapest start of model / empty / head: an oracle,
no person knows the costs beforehand); ``app`` and ``app_guarded``, the starts the app takes.
``--scenarios`` adds the fine-tune loops (``loop``, ``loop_uncertainty``: the #14 annotator) and
``session`` (``qgn.bench.session``: the images in order with the app's start rule, the Fine-tune
dock's fine-tune every ``--every K`` saved images, default 16, what learns ``--learns``, default
auto), ``session_none`` (the same walk, no fine-tune) and ``session_empty``. ``--snap-evidence``: what
the snapped brush follows (image, prediction, oracle; ``--model-snap`` = oracle). ``--stride K``: every K-th image of
the split (CamVid val frames are 2 video frames apart; its labelled train frames 30).
``--model`` defaults to the bundled street model (``camvid``) and takes a bundled name (``demo``), a file or a run folder; ``--data`` defaults to CamVid (found
in ../shared/data or ``QGN_DATA``); a model with other classes than the data's is transferred to
them first. ``--tolerance 1``: a pixel counts as right when its label is the truth of a pixel at
most 1 px away. ``--quick``: 3 images at half size, 2 fine-tune iterations every 2 images (the loops'
and the session's).
"""
from __future__ import annotations

from pathlib import Path

STREET_MODEL = "models/camvid.safetensors"
QUICK_IMAGES, FULL_IMAGES = 3, 30


def street_model_path() -> Path:
    from qgn.resources import resources_dir

    return resources_dir() / STREET_MODEL


class _Resized:
    """A sample at ``scale`` (image bilinear, label nearest)."""

    def __init__(self, sample, scale: float):
        from PIL import Image

        import numpy as np

        h, w = sample.label.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        self.image = np.array(Image.fromarray(sample.image).resize(size, Image.BILINEAR))
        self.label = np.asarray(Image.fromarray(sample.label.astype(np.int32)).resize(size, Image.NEAREST)).astype(np.int64)
        self.name = sample.name


def _model_path(args) -> Path:
    from qgn.resources import default_model

    default = getattr(args, "_model_default", None)
    if args.model in (None, default) and street_model_path().is_file():
        return street_model_path()
    try:
        return default_model(args.model)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--model {args.model}: no such model file ({exc})") from None


def check_used(option: str, value, takers, scenarios, example: str = "") -> None:
    """ValueError for an annotate option (``--option value``) that no scenario run would use - only
    ``takers`` do (it was silently ignored); ``example``: a scenario the advice names."""
    from qgn.bench.annotate import AnnotateConfig

    if not any(s in takers for s in scenarios or AnnotateConfig().scenarios):
        hint = f" (e.g. --scenarios {example})" if example else ""
        raise ValueError(f"--{option} {value}: only the scenarios {', '.join(takers)} use it, and none of them "
                         f"runs; add one to --scenarios{hint} or drop --{option}")


def check_domain_model(args, scenarios) -> None:
    """ValueError for a --domain-model that no scenario run would use."""
    from qgn.bench.annotate import DOMAIN_SCENARIOS

    if getattr(args, "domain_model", None):
        check_used("domain-model", args.domain_model, DOMAIN_SCENARIOS, scenarios, example="app_domain")


def check_record_lag(args, scenarios) -> None:
    """ValueError for a negative --record-lag, or one that no scenario run would use (the judged rules)."""
    from qgn.bench.annotate import JUDGES

    lag = getattr(args, "record_lag", None)
    if lag is None:
        return
    if lag < 0:
        raise ValueError(f"--record-lag must be 0 or more images; got {lag}")
    check_used("record-lag", lag, JUDGES, scenarios)


def annotate_options(args):
    """(model path, tolerance, scenarios or None, snap evidence or None, stride) of the annotate
    section's options, or ValueError / FileNotFoundError naming the bad one: before anything runs
    (``qgn bench --only memory,annotate`` says a bad --tolerance at once, not after the memory
    section's minutes)."""
    from qgn.bench.annotate import SCENARIOS

    path = _model_path(args)
    tolerance = getattr(args, "tolerance", None) or 0
    if tolerance < 0 or tolerance > 8:
        raise ValueError(f"--tolerance must be 0 … 8 pixels; got {tolerance}")
    scenarios = None
    if getattr(args, "scenarios", None):
        scenarios = tuple(s for s in args.scenarios.split(",") if s)
        bad = [s for s in scenarios if s not in SCENARIOS]
        if bad:
            raise ValueError(f"--scenarios: unknown {bad[0]!r}; choose from {', '.join(SCENARIOS)}")
    check_domain_model(args, scenarios)
    if getattr(args, "domain_model", None) and any(n.startswith("session") for n in scenarios or ()):
        raise ValueError(f"--domain-model {args.domain_model}: the session walks judge each image with the model in "
                         "use and its own reference, as the app does; run them without --domain-model")
    check_record_lag(args, scenarios)
    if getattr(args, "confidence", None) is not None and not 0.0 <= args.confidence <= 1.0:
        raise ValueError(f"--confidence is a probability, 0 … 1; got {args.confidence}")
    evidence = getattr(args, "snap_evidence", None)
    if getattr(args, "model_snap", False):
        if evidence not in (None, "oracle"):
            raise ValueError(f"--model-snap means --snap-evidence oracle; drop one of them (got --snap-evidence {evidence})")
        evidence = "oracle"
    if args.images is not None and args.images < 1:
        raise ValueError(f"--images must be at least 1; got {args.images}")
    iterations = getattr(args, "annotate_iters", None)
    if iterations is not None and iterations < 1:  # 0 was silently the default (40 / 300)
        raise ValueError(f"--annotate-iters must be at least 1 fine-tune iteration; got {iterations}")
    every = getattr(args, "every", None)
    if every is not None and every < 1:
        raise ValueError(f"--every must be at least 1 image; got {every}")
    if every is not None:
        from qgn.bench.session import SESSION_SCENARIOS

        check_used("every", every, ("loop", "loop_uncertainty", *SESSION_SCENARIOS), scenarios, example="session")
    if getattr(args, "learns", None):  # only the walk with fine-tunes: session_none / session_empty learn nothing
        check_used("learns", args.learns, ("session",), scenarios, example="session")
    if getattr(args, "carry_records", None):  # app_domain's record and the walks' (they choose by app_domain's rule)
        check_used("carry-records", args.carry_records, ("app_domain", "session", "session_none"), scenarios,
                   example="app_domain")
    stride = 1 if getattr(args, "stride", None) is None else args.stride
    if stride < 1:
        raise ValueError(f"--stride must be at least 1; got {stride}")
    return path, tolerance, scenarios, evidence, stride


def _model_and_images(args, path, stride, log):
    """(model, classes, samples, heldout, count): the model (transferred to the data's classes when
    they differ) and the images to annotate, every ``stride``-th first."""
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model
    from qgn.model.transfer import needs_transfer, transfer_model

    model = load_model(path)
    data = open_dataset(args.data, args.split or "val")
    classes = data.classes
    if needs_transfer(model, classes):
        model, report = transfer_model(model, classes)
        log(f"annotate: {path.name} transferred to the classes of {args.data}: {report.summary()}")
    order = list(range(0, len(data), stride)) + [i for i in range(len(data)) if i % stride]
    count = min(args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES), len(data))
    samples = [data[i] for i in order[:count]]
    heldout_count = min(getattr(args, "heldout", None) or 0, len(data) - count)
    heldout = [data[i] for i in order[count:count + heldout_count]]
    if args.quick:
        samples = [_Resized(s, 0.5) for s in samples]
    return model, classes, samples, heldout, count


def _annotate_config(args, scenarios, tolerance, evidence):
    """The AnnotateConfig the options ask for (``--quick``'s small one, then each option over it)."""
    from qgn.bench.annotate import AnnotateConfig

    config = AnnotateConfig()
    if args.quick:
        config = AnnotateConfig(every=2, iterations=2, batch_size=1, session_every=2, session_iterations=2)
    if getattr(args, "annotate_iters", None) is not None:
        config.iterations = config.session_iterations = args.annotate_iters
    if getattr(args, "every", None) is not None:
        config.every = config.session_every = args.every
    if getattr(args, "learns", None):
        config.session_learns = args.learns
    if getattr(args, "carry_records", None):
        config.carry_records = args.carry_records
    if scenarios:
        config.scenarios = scenarios
    config.tolerance = int(tolerance)
    if getattr(args, "beta", None) is not None:
        config.beta = float(args.beta)
    config.snap_evidence = evidence or "image"
    if getattr(args, "confidence", None) is not None:  # (its range: annotate_options)
        config.confidence = float(args.confidence)
    if getattr(args, "record_lag", None) is not None:
        config.record_lag = int(args.record_lag)
    return config


def _add_domain_judge(args, config, path, log) -> None:
    """The domain reference (and ``--domain-model``'s model) into ``config``, for the scenarios
    that give domain verdicts."""
    from qgn.bench.annotate import DOMAIN_SCENARIOS
    from qgn.model.checkpoint import load_model

    # the session walks take the model's own reference (their model changes; --domain-model is not theirs)
    if any(n in config.scenarios for n in (*DOMAIN_SCENARIOS, "session", "session_none")):
        from qgn.domain import reference_for, reference_path

        judge_path = path
        if getattr(args, "domain_model", None):
            from qgn.resources import default_model

            try:
                judge_path = default_model(args.domain_model, "--domain-model")
            except FileNotFoundError as exc:
                if str(exc).startswith("--domain-model"):  # says what the path is (a link to nothing)
                    raise
                raise FileNotFoundError(f"--domain-model {args.domain_model}: no such model file ({exc})") from None
            config.domain_model = load_model(judge_path)
        config.domain = reference_for(judge_path)
        if getattr(args, "domain_model", None) and config.domain is None:
            raise ValueError(f"--domain-model {args.domain_model}: it has no domain reference beside it "
                             f"({reference_path(judge_path).name}); choose a model that has one")
        log(f"annotate: domain verdicts (app_domain; app_effort's first start): "
            f"{'from ' + reference_path(judge_path).name if config.domain else 'none (no domain reference made for this model)'}"
            f"{', judged by ' + judge_path.name + chr(39) + 's encoder' if judge_path != path else ''}")


def _tag_sequences(sequences, config) -> None:
    """Each sequence's extra: the settings its rows were measured with."""
    from qgn.bench.annotate import JUDGES
    from qgn.bench.annotate_sim import BETA

    for seq in sequences:
        seq.extra["tolerance"] = config.tolerance
        seq.extra["beta"] = config.beta if config.beta is not None else BETA
        seq.extra["model_snap"] = config.model_snap
        seq.extra["snap_evidence"] = config.snap_evidence
        if seq.name in ("assist_confident", "app_confident"):
            seq.extra["confidence"] = config.confidence
        if seq.name in ("app_domain", "session", "session_none"):
            seq.extra["carry_records"] = config.carry_records
        if seq.name in JUDGES and config.record_lag:
            seq.extra["record_lag"] = config.record_lag


def annotate_section(args, log, progress=None):
    """(rows, text) of the annotate section; ``progress``: ``annotate_bench``'s."""
    from qgn.bench.annotate import annotate_bench, bench_rows, format_table

    path, tolerance, scenarios, evidence, stride = annotate_options(args)
    model, classes, samples, heldout, count = _model_and_images(args, path, stride, log)
    config = _annotate_config(args, scenarios, tolerance, evidence)
    _add_domain_judge(args, config, path, log)
    log(f"annotate: {count} image(s) of {args.data} {args.split or 'val'} (every {stride}), model {path}, "
        f"scenarios {', '.join(config.scenarios)}, tolerance {config.tolerance} px")
    sequences, anchors = annotate_bench(model, samples, classes, config, log, heldout, progress)
    sessions = [n for n in config.scenarios if n.startswith("session")]
    if sessions:  # (qgn.bench.session builds on qgn.bench.annotate: run from here, not from annotate_bench)
        from qgn.bench.session import run_sessions

        walks = run_sessions(model, samples, classes, config, sessions, log,
                             None if progress is None else (lambda done, total, what: progress("session", done, total, what)))
        at = next((i for i, seq in enumerate(sequences) if seq.name.startswith("loop")), len(sequences))
        sequences[at:at] = walks  # where annotate_bench ran them: after the per-image scenarios, before the loops
    _tag_sequences(sequences, config)
    rows = bench_rows(sequences, anchors, str(path))
    text = format_table(rows)
    if sessions:
        from qgn.bench.session import format_session

        walked = format_session(rows)
        text = "\n".join([text, walked]) if walked else text
    return rows, (f"annotation effort ({count} images of {args.data} {args.split or 'val'}, model {path}, "
                  f"tolerance {config.tolerance} px):\n" + text)
