"""`qgn bench [--only memory,compute,speed,anytime] [--json] [--device cpu|cuda] [--images N] [--quick] …`

Measures our implementation against the paper's dilated baseline, in one run (benchmarks/RESULTS.md
shows a full run and discusses it):

  memory   Table 6: activation memory of Dil / All / GTC / PC decoders and R50 / R101 networks at
           2048×1024 (CamVid val masks resized as the Cityscapes stand-in) and 480×384, the paper's
           numbers beside ours, the ratios, and our bytes over the ideal (qgn.bench.memory_table)
  compute  MACs per scheme and level, Table 2's TFLOPs column (qgn.bench.compute)
  speed    decoder wall time: torch backend vs spconv vs dense masked decoder (qgn.bench.speed)
  anytime  mIoU against decoder MACs for every depth and several τ of a trained CamVid model,
           written as CSV + PNG (qgn.bench.anytime); needs --model and CamVid
  annotate (only when named) actions per image of a simulated annotator: scratch, model,
           assist_scratch, assist_model, assist_head, best (--scenarios adds loop, loop_uncertainty;
           --tolerance PX; qgn.cli.bench_annotate; --model default the bundled street model)
  scaling  (only when named) sites, decoder MACs, CPU time and peak memory of All / GTC / PC and the
           dense decoder at 1x, 2x, 4x, 8x of each photo, working scale off, and their exponents
           (qgn.bench.scaling): `--model M[,M2]`, `--data`, `--split`, `--images N`, `--factors`
  sparse_conv (only when named) one 3x3 submanifold conv at 16 … 512 channels and 1 … 75 % density,
           GMAC/s of each backend against dense channels-last conv2d in the same run
           (qgn.bench.sparse_conv): `--channels`, `--densities`, `--repeats`

--json prints one object per measured row (name, bytes, macs, seconds, device, …) instead of tables,
each with a "provenance" record last: commit (+ dirty), torch, threads, CPU, command (qgn.bench.provenance).
"""
from __future__ import annotations

import datetime
import math
import sys
import time
from pathlib import Path

from qgn.cli.threads import add_threads_argument, apply_threads

SECTIONS = ("memory", "compute", "speed", "anytime")
OPT_IN_SECTIONS = ("annotate", "scaling", "sparse_conv")  # run only when named in --only
STANDALONE_SECTIONS = ("scaling", "sparse_conv")  # need neither the stand-in workloads nor the anytime model
SCALING_IMAGES = 10
DEFAULT_MODEL = "camvid"  # the bundled street model (resources/models/camvid.*)
FULL = dict(sizes="2048x1024,480x384", images=0, speed_size="480x384", repeats=3, anytime_images=0,
            architectures="R50,R101")
QUICK = dict(sizes="256x128", images=1, speed_size="160x128", repeats=1, anytime_images=3,
             architectures="R50")


def add_arguments(p) -> None:
    _add_general_arguments(p)
    _add_scaling_arguments(p)
    _add_annotate_arguments(p)
    _add_annotate_scenario_arguments(p)
    add_threads_argument(p)
    p.add_argument("--real", action="store_true",
                   help="CPU memory: run the float arithmetic too instead of shape-only execution (slow, GBs)")


def _add_general_arguments(p) -> None:
    """The sections, sizes, model, data and output of every section."""
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)} (the default); "
                                                        f"{', '.join(OPT_IN_SECTIONS)} run only when named, alone or "
                                                        f"with others")
    p.add_argument("--json", action="store_true", help="print one JSON object per measured row")
    p.add_argument("--device", default="cpu", help="cpu or cuda (CUDA memory from torch.cuda.max_memory_allocated)")
    p.add_argument("--quick", action="store_true", help="small sizes and few images: seconds, for a smoke test")
    p.add_argument("--sizes", help=f"memory/compute sizes WxH,… (default {FULL['sizes']})")
    p.add_argument("--images", type=int, help="val images averaged for GTC and PC (default: all 101 of CamVid)")
    p.add_argument("--architectures", help=f"backbones: R50, R101, R18, tiny (default {FULL['architectures']})")
    p.add_argument("--model", default=None,
                   help="trained model for PC sites and the anytime curve: a bundled name, a file or a run "
                        f"folder (default: {DEFAULT_MODEL}, the bundled street model; the sections that need one "
                        "are skipped when it is missing, while a --model given that names none is an error)")
    p.add_argument("--data", default="camvid", help="dataset of the stand-in masks and the anytime curve")
    p.add_argument("--speed-size", help=f"size of the speed section (default {FULL['speed_size']})")
    p.add_argument("--repeats", type=int, help=f"timed runs per speed candidate (default {FULL['repeats']})")
    p.add_argument("--anytime-images", type=int, help="val images of the anytime curve (default: all)")
    p.add_argument("--scale", type=float, help="anytime: resize images by this factor (default: the model's "
                                               "training scale from its JSON, else 1)")
    p.add_argument("--out", help="folder for the anytime CSV and PNG (default benchmarks/results; with --quick a "
                                 "new temporary folder, so a smoke test never replaces the measured curve)")


def _add_scaling_arguments(p) -> None:
    """The scaling and sparse_conv sections' (and the data split of annotate and scaling)."""
    p.add_argument("--split", help="annotate, scaling: the data split (default val)")
    p.add_argument("--factors", default="1,2,4,8", help="scaling: image-side factors (default %(default)s)")
    p.add_argument("--channels", help="sparse_conv: channel counts (default 16,32,64,128,256,512)")
    p.add_argument("--densities", help="sparse_conv: shares of active sites (default 0.01,0.03,0.1,0.3,0.5,0.75)")


def _add_annotate_arguments(p) -> None:
    """The annotate section's fine-tunes, carried starts, held-out scoring and tolerance."""
    p.add_argument("--annotate-iters", type=int, help="annotate: fine-tune iterations of each loop step (default 40) "
                                                      "and of each session fine-tune (default 300, the dock's; "
                                                      "--quick: 2), at least 1")
    p.add_argument("--every", type=int, help="annotate: session (and loop): the dock's fine-tune every K saved "
                                             "images (default 16; loop 5; --quick: 2)")
    p.add_argument("--learns", choices=("auto", "frozen", "train"),
                   help="annotate: session: what the dock's fine-tunes let learn (default auto: the encoder once a "
                        "fine-tune trains on 32 images, qgn.train.finetune.auto_encoder)")
    p.add_argument("--carry-records", choices=("one", "verdict"),
                   help="annotate: app_domain and the session walks keep the carried start's record as one for every "
                        "image (default, the app's rule) or one per domain verdict (flagged / not)")
    p.add_argument("--heldout", type=int, help="annotate: score the loops' models before/after on this many other images")
    p.add_argument("--tolerance", type=int, default=0,
                   help="annotate: boundary tolerance in pixels (a label is right when it is the truth of a pixel "
                        "at most this far away; default 0, exact)")


def _add_annotate_scenario_arguments(p) -> None:
    """The annotate section's scenarios and what they choose by (confidence, domain model, snapping)."""
    p.add_argument("--scenarios", help="annotate: comma-separated scenarios (default scratch, model, assist_scratch, "
                                       "assist_model, assist_head, best, app, app_guarded; add assist_previous, app_carry (the previous "
                                       "image's labels carried by optical flow), app_domain (the app now: app_carry, empty where the model's domain "
                                       "check flags the image), assist_confident (the model's start kept where it is sure: --confidence), app_confident (app_domain with that start on flagged images), app_effort (tried for the app, not kept: the start that cost "
                                       "least on the images before, empty included), app_own (app_effort with the given start judged by the "
                                       "person's own actions), app_edge2, app_tol3, app_scaled (app_effort on the other "
                                       "judges of benchmarks/RESULTS.md's start-judge section), app_domain_edge2 (app_domain on "
                                       "flagged images, app_edge2 elsewhere), loop, loop_uncertainty, session (the "
                                       "images in order with app_domain's start and the Fine-tune dock every --every "
                                       "saved images), session_none (the same walk, no fine-tune), session_empty)")
    p.add_argument("--confidence", type=float,
                   help="annotate: τ of assist_confident / app_confident (the model's start kept where its "
                        "probability is at least τ, unlabelled elsewhere; default 0.9)")
    p.add_argument("--domain-model",
                   help="annotate: the model whose encoder and domain reference give app_domain's verdicts "
                        "(default: --model's own reference); e.g. the model a fine-tune whose encoder learnt "
                        "started from, whose reference the fine-tuned one does not get")
    p.add_argument("--beta", type=float, help="annotate: collateral an action may cause per pixel it fixes (default 0.05)")
    p.add_argument("--record-lag", type=int, help="annotate: app_effort, app_own, app_edge2, app_tol3, app_scaled and "
                                                  "app_domain_edge2 choose without the last K images' records (default 0; "
                                                  "an app's record of a saved image may land after the next image started)")
    p.add_argument("--stride", type=int, help="annotate: every K-th image of the split (default 1; CamVid val "
                                              "frames are 2 video frames apart, its labelled train frames 30)")
    p.add_argument("--snap-evidence", choices=("image", "prediction", "oracle"),
                   help="annotate: what the snapped brush's rim follows: the image's edges (default), the model's "
                        "prediction (the app's 'Snap to: prediction'), or per stroke the better of the image and "
                        "the start map (oracle)")
    p.add_argument("--model-snap", action="store_true",
                   help="annotate: the same as --snap-evidence oracle (the protocol before 6 Dec)")


def _size(text: str, option: str = "") -> tuple[int, int]:
    """(width, height) of a WIDTHxHEIGHT option value; ValueError naming ``option`` (when given)."""
    from qgn.imagefile import MAX_PIXELS_ENV, max_pixels

    named = f"{option} " if option else ""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{named}a size is WIDTHxHEIGHT, e.g. 2048x1024; got {text!r}") from None
    if w <= 0 or h <= 0 or w % 32 or h % 32:
        raise ValueError(f"{named}sizes must be positive multiples of 32; got {text!r}")
    if w * h > max_pixels():
        raise ValueError(f"{named}size {text} is {w * h / 1e6:.4g} megapixels, more than the limit of "
                         f"{max_pixels() / 1e6:.1f} ({MAX_PIXELS_ENV}); choose a smaller size")
    return w, h


#: The widest --channels measured: a 3x3 conv's weights at C channels hold 9·C² floats (10⁷ channels
#: asked for 3.6 PB after 13 GB were taken); ResNets end at 2048.
MAX_CHANNELS = 4096


def check_options(args) -> None:
    """ValueError naming the option, before any section runs, for a value no section can use."""
    if args.repeats is not None and args.repeats < 1:
        raise ValueError(f"--repeats {args.repeats}: expected a number of timed runs >= 1")
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        raise ValueError(f"--scale {args.scale:g}: expected a finite factor > 0, e.g. 0.5")
    if any(c > MAX_CHANNELS for c in _numbers(args.channels, int, "--channels") or ()):
        raise ValueError(f"--channels {args.channels}: at most {MAX_CHANNELS} channels")
    densities = _numbers(args.densities, float, "--densities") or ()
    if any(not d <= 1 for d in densities):  # NaN too
        raise ValueError(f"--densities {args.densities}: a share of active sites is in (0, 1], e.g. 0.1")
    if not _numbers(args.factors, float, "--factors"):  # "" (the default is 1,2,4,8): nothing to scale by
        raise ValueError(f"--factors takes positive numbers, e.g. 1,2,4,8; got {args.factors!r}")
    _size(_option(args, "speed_size"), "--speed-size")  # a bad --speed-size was said only when the speed section began


def check_scaling(args) -> None:
    """ValueError before any section runs when a --factors value makes one of the images the
    scaling section measures pass the pixel limit (``qgn.bench.scaling.scaled_size``): found at
    that image, after the sections before it and the smaller factors had run, their rows lost."""
    from qgn.bench.scaling import scaled_size

    factors = _numbers(args.factors, float, "--factors")
    data = _scaling_data(args)
    shapes = {tuple(data[i].label.shape[:2]) for i in range(_scaling_count(args, data))}
    for factor in factors:
        for shape in sorted(shapes):
            scaled_size(shape, factor)


def check_anytime_scale(args) -> None:
    """ValueError before any section runs when --scale makes one of the val images the anytime section
    will use shorter than one coarsest cell or past the pixel limit (``qgn.data.transforms.scaled_size``):
    found at that image, after the sections before it had run, their rows lost. A dataset of image files
    (``pairs``) is checked image by image from the headers alone (nothing decoded; an unreadable header is
    left for the section to say); one without files (synthetic: generated, all of one size) by its first
    sample."""
    from qgn.data.registry import open_dataset
    from qgn.data.transforms import scaled_size
    from qgn.imagefile import upright_size

    data = open_dataset(args.data, "val")
    count = min(_option(args, "anytime_images") or len(data), len(data))
    pairs = getattr(data, "pairs", None)
    if pairs is None:
        if count:
            first = data[0]
            scaled_size(*first.label.shape[:2], args.scale, first.name)
        return
    for i in range(count):
        try:
            width, height = upright_size(pairs[i][0])
        except (OSError, ValueError):  # the section says what is wrong with it, as without --scale
            continue
        scaled_size(height, width, args.scale, data.names[i])


def _scaling_data(args):
    from qgn.data.registry import open_dataset

    return open_dataset(args.data, args.split or "val")


def _scaling_count(args, data) -> int:
    return min(args.images or (2 if args.quick else SCALING_IMAGES), len(data))


def _option(args, name: str):
    value = getattr(args, name)
    if value is None:
        value = (QUICK if args.quick else FULL)[name]
    return value


def _default_out(quick: bool) -> Path:
    """Where the anytime CSV and PNG go without ``--out``: ``benchmarks/results`` (the committed,
    measured curve) for a real run; a fresh temporary folder for ``--quick``, whose 3-image curve
    would otherwise replace it."""
    if not quick:
        return Path("benchmarks/results")
    import tempfile

    return Path(tempfile.mkdtemp(prefix="qgn-bench-quick-"))


def _training_scale(model) -> float:
    """1 for a model that records its working scale (it resizes by itself); for older models the
    middle of their training scale range."""
    if model.config.input_scale != 1.0 or model.config.input_size is not None:
        return 1.0
    train = model.config.extra.get("train", {}) if isinstance(model.config.extra, dict) else {}
    lo, hi = train.get("scale_min"), train.get("scale_max")
    return (lo + hi) / 2 if lo is not None and hi is not None else 1.0


def _checked_sections(args) -> list[str]:
    """The sections ``--only`` names, once every option they take is checked (the default model
    filled in)."""
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS) - set(OPT_IN_SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS + OPT_IN_SECTIONS)}")
    apply_threads(args)
    args.model_given = args.model is not None  # a model named that is missing is an error, the default's a skip
    if args.model is None:
        args.model = DEFAULT_MODEL
    check_options(args)
    for option in ("domain_model", "record_lag", "every", "learns", "annotate_iters", "carry_records"):  # the annotate section's alone: they were silently ignored
        if getattr(args, option, None) is not None and "annotate" not in sections:
            name = "--" + option.replace("_", "-")
            raise ValueError(f"{name} {getattr(args, option)}: only the annotate section uses it, and --only "
                             f"{args.only} does not run it; add annotate to --only or drop {name}")
    if "scaling" in sections:
        check_scaling(args)
    if "anytime" in sections and args.scale is not None:
        check_anytime_scale(args)
    return sections


def _check_outputs(args, sections) -> None:
    """The anytime section's output folder and the annotate section's options, said now rather
    than after the other sections' minutes."""
    if "anytime" in sections:  # where its CSV and PNG go: a bad folder said now, not after the curve's run
        from qgn.cli.files import check_output_folder

        args.anytime_out = Path(args.out) if args.out else _default_out(args.quick)
        check_output_folder(args.anytime_out, "--out" if args.out else "")
        from qgn.fileio import FIXED_NAME_ADVICE, refuse_special_output

        for suffix in (".csv", ".png"):  # a FIFO there hung the write after the curve's minutes
            refuse_special_output(args.anytime_out / f"{anytime_stem(args.data)}{suffix}", follow=True,
                                  advice=FIXED_NAME_ADVICE)
    if "annotate" in sections:  # its bad options said now, not after the other sections' minutes
        from qgn.cli.bench_annotate import annotate_options

        args._model_default = DEFAULT_MODEL
        annotate_options(args)


def _run_sections(args, device, sections, log):
    """(rows, texts) of every section named, in the order the report prints them."""
    from qgn.bench.rows import BenchRow

    rows: list[BenchRow] = []
    texts: list[str] = []
    # Any combination runs every section named (`--only annotate,sparse_conv` ran neither: it fell
    # through to this path, which ran only the network sections, and printed no row)
    if set(sections) & set(SECTIONS):
        model = _load_model(args, log)
        if set(sections) & {"memory", "compute", "speed"}:
            rows_, texts_ = _network_sections(args, device, sections, model, log)
            rows += rows_
            texts += texts_
        if "anytime" in sections:
            rows_, text = _anytime_section(args, model, log)
            rows += rows_
            texts.append(text)
    if set(sections) & set(STANDALONE_SECTIONS):
        rows_, texts_ = _standalone_sections(args, sections, log)
        rows += rows_
        texts += texts_
    if "annotate" in sections:
        rows_, text = _annotate_rows(args)
        rows += rows_
        texts.append(text)
    return rows, texts


def run(args) -> int:
    import torch

    sections = _checked_sections(args)
    args.provenance = _provenance(args)  # taken before the sections run: the code and threads they run with
    if sections == ["annotate"]:
        return _annotate_only(args)
    from qgn.cli.device import resolve_device

    device = torch.device(resolve_device(args.device))  # a name torch does not know was an unexpected RuntimeError
    _check_outputs(args, sections)
    log = _log
    started = time.perf_counter()
    context = _context(args, device, sections)
    rows, texts = _run_sections(args, device, sections, log)
    if args.json:
        _print_json_rows(rows, args)
    else:
        print("\n".join(context))
        for text in texts:
            print()
            print(text)
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


def _annotate_only(args) -> int:
    started = time.perf_counter()
    rows, text = _annotate_rows(args)
    if args.json:
        _print_json_rows(rows, args)
    else:
        print(text)
        print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


def _provenance(args) -> dict:
    """The run's record (qgn.bench.provenance), its command as given to ``qgn``."""
    from qgn.bench.provenance import provenance

    return provenance(["qgn", *getattr(args, "argv", sys.argv[1:])])


def _print_json_rows(rows, args) -> None:
    """``--json``: one line per row, each with the run's provenance last."""
    for row in rows:
        print(row.to_json_line(args.provenance))


def _annotate_rows(args):
    from qgn.cli.bench_annotate import annotate_section

    args._model_default = DEFAULT_MODEL
    return annotate_section(args, _log, annotate_progress())


def _log(message: str) -> None:
    from qgn.cli.progress_line import end_drawn_line

    end_drawn_line()  # a stage's line, drawn again at its next step
    print(f"qgn bench: {message}", file=sys.stderr, flush=True)


def stage_line():
    """``line(stage, i, n, unit, detail="")``: ``qgn bench: STAGE: i/n UNIT · about … left[ ·
    DETAIL]`` inside a stage (the stand-in images loaded, a speed section's schemes, the memory
    section's GTC/PC and encoder passes, the compute section's decoder passes, the anytime curve's
    images, the sparse_conv shapes, the scaling measurements, the annotate images: each may take
    minutes; ``detail`` the part under way inside one), on stderr on a terminal only; blanked at
    ``i == n`` and before each of the stage's own lines (``_log``). stdout and ``--json`` are
    unchanged. Redrawn for a new ``detail`` at the same ``i``, the time left is the estimate made
    at ``i`` less the time since (it grew while the count stood still). A new stage, unit or total,
    or a count gone back, starts a new estimate: the memory section's encoder passes follow its
    GTC/PC passes under one stage name, and ``compute`` counts each backbone's decoder passes from 0
    (their time left was estimated from the other passes' clock: "about 2 min 48 s left" with 4 s
    left)."""
    from qgn.cli.progress_line import ProgressLine
    from qgn.progress import TimeLeft

    line = ProgressLine(64, shown=sys.stderr.isatty())
    current: list = [None, 0]  # (stage, unit, n) of the estimate, and its last count

    def draw(stage: str, i: int, n: int, unit: str, detail: str = "") -> None:
        if current[0] != (stage, unit, n) or i < current[1]:
            line.time_left = TimeLeft()
        current[:] = [(stage, unit, n), i]
        left = line.time_left.count_down_suffix(i, n)
        line.show(f"qgn bench: {stage}: {i}/{n} {unit}{left}" + (f" · {detail}" if detail else ""))
        if i >= n:
            line.clear()

    return draw


def annotate_progress(line=None):
    """``progress(pass, done, total, what)`` of the annotate section (``qgn.bench.annotate.
    annotate_bench``): ``annotate: i/n images · about … left · image 4: head fit`` (the
    per-image scenarios), ``annotate loop: …`` for a loop, ``annotate anchors: …``; a full run
    takes minutes, each image seconds."""
    line = line or stage_line()

    def progress(name: str, done: int, total: int, what: str) -> None:
        stage = "annotate" if name == "per image" else f"annotate {name}"
        line(stage, done, total, "images", what)

    return progress


def _standalone_sections(args, sections, log):
    """(rows, texts) of the sections that need neither the stand-in workloads nor a model loaded
    here: sparse_conv, then scaling."""
    import torch

    rows, texts = [], []
    if "sparse_conv" in sections:
        from qgn.bench import sparse_conv

        defaults = sparse_conv.QUICK if args.quick else {}
        channels = _numbers(args.channels, int, "--channels") or defaults.get("channels", sparse_conv.CHANNELS)
        densities = _numbers(args.densities, float, "--densities") or defaults.get("densities", sparse_conv.DENSITIES)
        repeats = args.repeats or defaults.get("repeats", 5)
        spconv = _spconv_importable(log)
        line = stage_line()
        rows_ = sparse_conv.sparse_conv_rows(channels, densities, repeats, spconv, device=torch.device(args.device),
                                             log=log, progress=lambda i, n: line("sparse_conv", i, n, "shapes"))
        rows += rows_
        texts.append(sparse_conv.format_sparse_conv_table(rows_))
    if "scaling" in sections:
        rows_ = _scaling(args, log)
        rows += rows_
        from qgn.bench.scaling import format_scaling_table

        texts.append(format_scaling_table(rows_))
    return rows, texts


def _numbers(text: str | None, kind, option: str) -> tuple | None:
    if not text:
        return None
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{option} takes comma-separated numbers, e.g. 1,2,4,8; got {text!r}") from None
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):  # NaN, inf too
        raise ValueError(f"{option} takes positive numbers; got {text!r}")
    return values


def _spconv_importable(log) -> bool:
    from qgn.sparse import get_backend

    try:
        get_backend("spconv")
    except Exception as error:  # benchmark what is there
        log(f"spconv unavailable ({type(error).__name__}: {error}); sparse_conv runs without it")
        return False
    return True


def _scaling(args, log):
    from qgn.bench.scaling import scaling_rows
    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model

    factors = _numbers(args.factors, float, "--factors")
    data = _scaling_data(args)
    count = _scaling_count(args, data)
    repeats = args.repeats or (1 if args.quick else 3)
    rows = []
    line = stage_line()
    for name in [m for m in args.model.split(",") if m]:
        model = load_model(default_model(name)).eval()
        samples = (data[i] for i in range(count))
        shown = Path(name).stem if ("/" in name or "\\" in name) else name
        rows += scaling_rows(model, shown, samples, data.classes, factors, repeats, log,
                             lambda i, n, what, shown=shown: line(f"scaling {shown}", i, n, "measurements", what),
                             images=count)
    return rows


def _context(args, device, sections) -> list[str]:
    """The heading of the tables: date, sections, device, torch and threads, the command, the
    commit and the CPU (qgn.bench.provenance)."""
    import torch

    from qgn.bench.provenance import describe_code_and_machine

    cuda = torch.cuda.get_device_name(device) if device.type == "cuda" else "none used"
    return [
        f"qgn bench, {datetime.date.today().isoformat()}: sections {', '.join(sections)}; device {device} "
        f"(GPU: {cuda}); torch {torch.__version__}, {torch.get_num_threads()} threads",
        "command: " + args.provenance["command"],
        describe_code_and_machine(args.provenance),
    ]


def _load_model(args, log):
    from qgn.model.checkpoint import load_model

    from qgn.resources import default_model

    try:
        path = default_model(args.model)
    except FileNotFoundError as exc:
        if getattr(args, "model_given", False):  # it ran on without the model asked for, and exit 0
            raise FileNotFoundError(f"--model {args.model}: {exc}") from None
        log(f"no trained model ({exc}): PC rows and the anytime curve are skipped "
            f"(train one with `qgn train --preset camvid-street`, or pass --model)")
        return None
    args.model_path = path
    return load_model(path)


def _network_sections(args, device, sections, model, log):
    from qgn.bench.compute import compute_rows, format_compute_table
    from qgn.bench.memory_table import NetworkSettings, format_memory_table, memory_rows
    from qgn.bench.speed import format_speed_table, speed_rows
    from qgn.bench.workload import load_workload

    settings = NetworkSettings(device, tuple(a for a in _option(args, "architectures").split(",") if a),
                               shape_only=device.type == "cpu" and not args.real)
    images = _option(args, "images") or None
    rows, texts = [], []
    line = stage_line()
    sizes = [_size(s, "--sizes") for s in _option(args, "sizes").split(",") if s]
    workloads = {}

    def workload(size):
        if size not in workloads:
            log(f"loading {images or 'all'} stand-in image(s) at {size[0]}x{size[1]}"
                + (" and the model's PC sites" if model is not None else ""))
            workloads[size] = load_workload(size, images, args.data, model, progress=lambda i, n: line(
                f"loading {size[0]}x{size[1]}", i, n, "images"))
        return workloads[size]

    if "memory" in sections:
        rows_ = memory_rows([workload(s) for s in sizes], settings, log,
                            progress=lambda size, i, n: line(f"memory {size}", i, n, "GTC/PC passes"),
                            encoder_progress=lambda size, i, n: line(f"memory {size}", i, n, "encoder passes"))
        rows += rows_
        texts.append(format_memory_table(rows_))
    if "compute" in sections:
        log("compute: MACs per scheme")
        rows_ = compute_rows([workload(s) for s in sizes], settings,
                             progress=lambda size, i, n: line(f"compute {size}", i, n, "decoder passes"))
        rows += rows_
        texts.append(format_compute_table(rows_))
    if "speed" in sections:
        size = _size(_option(args, "speed_size"), "--speed-size")
        rows_ = speed_rows(workload(size), settings, _option(args, "repeats"), log=log,
                           progress=lambda i, n, what: line(f"speed {size[0]}x{size[1]}", i, n, "schemes", what))
        rows += rows_
        texts.append(format_speed_table(rows_))
    return rows, texts


def anytime_progress(count: int, log, line=None):
    """``progress(i)`` of the anytime curve: ``anytime: i/count images · about … left`` every ten
    images and at the last (a CamVid val run takes minutes); ``line`` (``stage_line``) draws it at
    every image in between."""
    from qgn.progress import TimeLeft

    time_left = TimeLeft()

    def progress(i: int) -> None:
        left = time_left.suffix(i, count)  # every image: the estimate leaves out only the first
        if i % 10 == 0 or i == count:
            log(f"anytime: {i}/{count} images{left}")
        elif line is not None:
            line("anytime", i, count, "images")

    return progress


def anytime_stem(data: str) -> str:
    """The anytime curve's file name without its suffix, for ``--data`` DATA: a dataset's name
    (``camvid``) or a folder's last part (``/data/camvid`` -> ``anytime-camvid``), in characters
    every file system takes - a path given to ``--data`` made the CSV and PNG
    ``OUT/anytime-/data/camvid.csv``, in folders made under OUT."""
    import re

    from qgn.data.registry import DATASET_NAMES

    prefix, colon, _ = str(data).partition(":")
    name = prefix if colon and prefix in DATASET_NAMES else (Path(str(data).rstrip("/\\")).name or "data")
    return "anytime-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "data")


def _anytime_section(args, model, log):
    from qgn.bench.anytime import anytime_curve, curve_rows, default_schemes, write_csv
    from qgn.bench.anytime_plot import plot_curve
    from qgn.bench.rows import BenchRow
    from qgn.data.registry import open_dataset

    if model is None:
        return [], "anytime: skipped (no trained model; see --model)"
    data = open_dataset(args.data, "val")
    if data.classes.num_classes != model.config.classes.num_classes:
        raise ValueError(f"{args.data} has {data.classes.num_classes} classes, the model {model.config.classes.num_classes}")
    count = _option(args, "anytime_images") or len(data)
    count = min(count, len(data))
    scale = args.scale if args.scale is not None else _training_scale(model)

    curve = anytime_curve(model, (data[i] for i in range(count)), default_schemes(), scale,
                          anytime_progress(count, log, stage_line()))
    out = getattr(args, "anytime_out", None) or (Path(args.out) if args.out else _default_out(args.quick))
    stem = anytime_stem(args.data)
    csv_path = write_csv(curve, out / f"{stem}.csv")
    path = Path(getattr(args, "model_path", args.model))
    model_name = args.model if path.parent.name == "models" else f"{path.parent.name}/{path.name}"
    title = (f"{model_name} on {args.data} val ({count} images, scale {scale:g}): "
             f"mIoU against decoder MACs, depth limits 5 … 0")
    png_path = plot_curve(curve, out / f"{stem}.png", title)
    rows = []
    for r in curve_rows(curve):
        rows.append(BenchRow(f"anytime/{r['scheme']} depth {r['depth']}", "anytime", "cpu", None, round(r["decoder_macs"]),
                             r["decoder_seconds"], {k: r[k] for k in ("scheme", "depth", "practical", "miou", "acc",
                                                                       "share_of_all", "active_sites", "total_macs")}))
    best = curve.within_one_point()
    ref = curve.reference
    summary = {"reference_miou": ref.miou, "images": count, "scale": scale,
               "csv": str(csv_path), "png": str(png_path)}
    if best is not None:
        summary |= {"scheme": best.scheme, "depth": best.depth, "miou": best.miou, "share_of_all": curve.share(best)}
    rows.append(BenchRow("anytime/within 1 mIoU point of All", "anytime", "cpu", None,
                         round(best.mean_decoder_macs) if best else None, None, summary))
    return rows, _format_anytime(curve, csv_path, png_path, count, scale)


def _format_anytime(curve, csv_path, png_path, count, scale) -> str:
    from qgn.bench.anytime import curve_rows

    ref = curve.reference
    lines = [f"anytime curve: {count} images at scale {scale:g}; CSV {csv_path}, plot {png_path}",
             f"{'scheme':<20}" + "".join(f"{'depth ' + str(d):>17}" for d in (5, 4, 3, 2, 1, 0)),
             f"{'':<20}" + "".join(f"{'mIoU  %MACs':>17}" for _ in range(6))]
    rows = curve_rows(curve)
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        by_depth = {r["depth"]: r for r in rows if r["scheme"] == scheme}
        lines.append(f"{scheme:<20}" + "".join(
            f"{100 * by_depth[d]['miou']:>10.2f}{100 * by_depth[d]['share_of_all']:>7.1f}" for d in (5, 4, 3, 2, 1, 0)))
    best = curve.within_one_point()
    lines.append(f"All at depth 0: {100 * ref.miou:.2f} mIoU, {ref.mean_decoder_macs / 1e6:.1f} decoder MMACs per image")
    if best is None:
        lines.append("no PC / uncertainty scheme comes within 1 mIoU point of All")
    else:
        lines.append(f"cheapest PC / uncertainty scheme within 1 mIoU point of All: {best.scheme} at depth {best.depth}, "
                     f"{100 * best.miou:.2f} mIoU at {100 * curve.share(best):.1f} % of All's decoder MACs "
                     f"(aim: <= 50 %)")
    return "\n".join(lines)
