"""Does cost follow the boundaries at every resolution? Sites, MACs, CPU time and memory of a
trained model's decoder on the same photos at 1x, 2x, 4x, 8x their size.

Protocol (``qgn bench --only scaling``): the first ``images`` samples of a dataset split, each
resized by every factor (image bilinear; label *smoothly*: every class's indicator is upsampled
bilinearly, blurred with a Gaussian of sigma = factor / 2 and the largest wins, so a boundary stays
one line, not a staircase of factor-pixel steps whose cells GTC would count as composite). The
model runs at the image's own size - its working scale switched off, since that scale is what
hides the resolution - with each scheme:

  all    every cell of every level (the sparse decoder's All path)
  gtc    the ground truth's composite cells (the boundary itself: the reference)
  pc     the model's predicted composite cells
  dense  the plain dense channels-last decoder computing every cell (qgn.bench.dense_decoder)

Per (image, factor) the encoder runs once; the decoders run round-robin, ``repeats`` times each,
median CPU time of the calling thread (qgn.bench.timing, clock "cpu"; run with --threads 1).
``peak_bytes``: the most bytes of tensors alive during a separate, untimed decoder pass
(qgn.bench.live_tensors: activations, rulebooks, masks; not kernel scratch). Rows average over the
images. ``exponents`` fits log(quantity) against log(factor) by least squares: 1 is cost
proportional to the image side (a boundary), 2 to its area.

PC rows also say *why* PC grows as it does: ``precision`` is the share of the cells PC sent on
that the ground truth calls composite (per level, and overall), ``over_gtc`` PC's sites over GTC's.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from qgn.bench.rows import BenchRow
from qgn.bench.timing import interleaved_median_ms

SCHEMES = ("all", "gtc", "pc", "dense")
DEFAULT_FACTORS = (1, 2, 4, 8)


def smooth_upscale_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) class ids → (h, w) class ids with smooth boundaries (see the module docstring).

    Per class present: bilinear upsampling of its indicator, a separable Gaussian blur of sigma
    h/H/2 pixels (none at factor <= 1), argmax over classes; memory: three (h, w) float maps."""
    h, w = size
    factor = h / label.shape[0]
    lab = torch.from_numpy(np.asarray(label).astype(np.int64))
    best = torch.full((h, w), -1.0)
    arg = torch.zeros((h, w), dtype=torch.int64)
    kernel = None
    if factor > 1:
        sigma = factor / 2
        radius = max(1, int(math.ceil(3 * sigma)))
        xs = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-xs ** 2 / (2 * sigma ** 2))
        kernel /= kernel.sum()
    for c in np.unique(label):
        one = (lab == int(c)).float()[None, None]
        up = torch.nn.functional.interpolate(one, size=(h, w), mode="bilinear", align_corners=False)
        if kernel is not None:
            r = kernel.numel() // 2
            up = torch.nn.functional.conv2d(torch.nn.functional.pad(up, (r, r, 0, 0), mode="replicate"),
                                            kernel.view(1, 1, 1, -1))
            up = torch.nn.functional.conv2d(torch.nn.functional.pad(up, (0, 0, r, r), mode="replicate"),
                                            kernel.view(1, 1, -1, 1))
        up = up[0, 0]
        better = up > best
        best = torch.where(better, up, best)
        arg[better] = int(c)
    return arg.numpy().astype(label.dtype)


@dataclass
class Measurement:
    """One (image, factor, scheme) decoder run."""

    sites: int
    macs: int
    seconds: float
    peak_bytes: int
    level_sites: dict[int, int]
    precision: dict[int, float] | None = None  # PC only: level -> share of sent-on cells GT calls composite


def _decoder_runs(model, session, gt) -> dict[str, Callable[[], object]]:
    from qgn.bench.dense_decoder import dense_decode
    from qgn.propagation import Scheme

    feats, image = session.features(), session.images

    def sparse(name: str) -> Callable[[], object]:
        scheme = Scheme(name)
        return lambda: model.decoder(feats, image, scheme, gt if name == "gtc" else None)

    runs = {name: sparse(name) for name in ("all", "gtc", "pc")}
    runs["dense"] = lambda: dense_decode(model.decoder, feats, image)
    return runs


def _peak_bytes(run: Callable[[], object]) -> int:
    from qgn.bench.live_tensors import LiveTensorTracker

    with LiveTensorTracker() as tracker:
        result = run()
        del result
    return tracker.peak


def scaled_size(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """(height, width) of an image of ``shape`` (height, width) with both sides times ``factor``
    (at least 32 pixels); ValueError naming the factor when that passes the pixel limit (factor
    10⁶ asked a resize for 2 EB, an unexpected error). The one home of that size and its check:
    ``qgn bench`` asks it for every factor and image before any section runs."""
    from qgn.imagefile import MAX_PIXELS_ENV, max_pixels

    h0, w0 = shape
    size = (max(32, round(h0 * factor)), max(32, round(w0 * factor)))
    if size[0] * size[1] > max_pixels():
        raise ValueError(f"factor {factor:g} makes a {w0}×{h0} image {size[1]}×{size[0]} = {size[0] * size[1] / 1e6:.4g} "
                         f"megapixels, more than the limit of {max_pixels() / 1e6:.1f} ({MAX_PIXELS_ENV}); "
                         "choose smaller --factors")
    return size


def scaled_sample(sample, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """(image, label) of ``sample`` with both sides times ``factor`` (``scaled_size``): image
    bilinear, label by ``smooth_upscale_label``; the sample itself at factor 1."""
    if factor == 1:
        return sample.image, sample.label
    from qgn.data.transforms import resize_image

    size = scaled_size(sample.label.shape, factor)
    return resize_image(sample.image, size), smooth_upscale_label(sample.label, size)


def label_composite_masks(label: np.ndarray, padded: tuple[int, int], num_classes: int,
                          ignore_index: int | None) -> list[torch.Tensor]:
    """Per level, (1, H_l, W_l) bool composite cells of ``label`` with the *data's* classes (any
    model, even one with other classes, is measured against the same boundary), padded with void."""
    from qgn.bench.site_masks import gtc_site_masks

    fill = ignore_index if ignore_index is not None else num_classes
    padded_label = np.full(padded, fill, dtype=np.int64)
    padded_label[: label.shape[0], : label.shape[1]] = label
    return gtc_site_masks(padded_label, num_classes, ignore_index)


def measure_image(model, image: np.ndarray, label: np.ndarray, repeats: int, num_classes: int,
                  ignore_index: int | None, step=lambda what: None) -> dict[str, Measurement]:
    """Every scheme on one image at its own size: sites, MACs, median CPU seconds, peak bytes.
    ``step(what)`` before each part (the encoder, each scheme's sites, the timed runs, each
    scheme's peak memory)."""
    from qgn.infer import ImageSession

    step("encoder")
    session = ImageSession(model, image, at_image_size=True)
    session.features()
    gt = label_composite_masks(label, session.padded_shape, num_classes, ignore_index)
    out: dict[str, Measurement] = {}
    with torch.no_grad():
        runs = _decoder_runs(model, session, gt)
        for name, run in runs.items():  # what each computes (one result alive at a time)
            step(f"{name} sites")
            out[name] = _describe(name, run(), gt, out)
        step(f"timing {len(runs)} decoders x{repeats}")
        times = interleaved_median_ms(runs, warmup=0 if repeats == 1 else 1, repeats=repeats,
                                      device=torch.device("cpu"), clock="cpu", shuffle_seed=0,
                                      progress=lambda k, n: step(f"timed run {k}/{n}"))
        for name, run in runs.items():
            step(f"{name} peak memory")
            out[name].seconds = times[name] / 1e3
            out[name].peak_bytes = _peak_bytes(run)
    return out


def _describe(name: str, result, gt, earlier: dict[str, Measurement]) -> Measurement:
    if name == "dense":
        cells = {level: int(t.shape[0]) for level, t in result.items()}  # logits rows, one per cell
        all_macs = earlier["all"].macs if "all" in earlier else 0  # the same cells, the same convolutions
        return Measurement(sum(cells.values()), all_macs, 0.0, 0, cells)
    level_sites = {o.level: o.num_sites for o in result}
    precision = None
    if name == "pc":
        precision = {}
        for o in result:
            if o.selected is None or not bool(o.selected.any()):
                continue
            c = o.coords[o.selected]
            precision[o.level] = float(gt[o.level][c[:, 0], c[:, 1], c[:, 2]].float().mean())
    return Measurement(sum(level_sites.values()), sum(o.macs for o in result), 0.0, 0, level_sites, precision)


def scaling_rows(model, model_name: str, samples, classes, factors=DEFAULT_FACTORS, repeats: int = 3,
                 log=lambda _: None, progress: Callable[[int, int, str], None] | None = None,
                 images: int | None = None) -> list[BenchRow]:
    """Rows of the scaling section for ``model`` on ``samples`` (Sample objects at native size,
    labels in ``classes``, the data's ClassSet). ``progress(i, n, what)``: ``i`` of the ``n``
    images × factors measured (an 8x CamVid photo takes minutes) and the part under way
    (``measure_image``'s steps; ``""`` after each measurement); ``images``: the number of
    ``samples`` (default ``len(samples)``)."""
    per: dict[tuple[str, float], list[Measurement]] = {}
    sizes: dict[float, tuple[int, int]] = {}
    count = 0
    total = (len(samples) if images is None else images) * len(factors)
    for sample in samples:
        count += 1
        for step, factor in enumerate(factors, 1):
            done = min((count - 1) * len(factors) + step - 1, total)

            def part(what: str, done=done, count=count, factor=factor) -> None:
                if progress is not None:
                    progress(done, total, f"image {count} x{factor:g}: {what}")

            part("resizing")
            image, label = scaled_sample(sample, factor)
            size = sizes[factor] = tuple(label.shape)
            results = measure_image(model, image, label, repeats, classes.num_classes, classes.ignore_index, part)
            for name, m in results.items():
                per.setdefault((name, factor), []).append(m)
            log(f"scaling {model_name} image {count} x{factor:g} ({size[1]}x{size[0]}): "
                + ", ".join(f"{n} {m.sites:,} sites {1e3 * m.seconds:.0f} ms" for n, m in results.items()))
            if progress is not None:
                progress(min(done + 1, total), total, "")
    rows = []
    for (name, factor), ms in per.items():
        level_sites = {lvl: statistics.fmean(m.level_sites.get(lvl, 0) for m in ms) for lvl in ms[0].level_sites}
        extra = {"model": model_name, "scheme": name, "factor": factor,
                 "size": [sizes[factor][1], sizes[factor][0]], "images": len(ms),
                 "sites": round(statistics.fmean(m.sites for m in ms)),
                 "decoder_macs": round(statistics.fmean(m.macs for m in ms)),
                 "decoder_seconds": statistics.median(m.seconds for m in ms),
                 "peak_bytes": round(statistics.fmean(m.peak_bytes for m in ms)),
                 "level_sites": {str(k): round(v) for k, v in level_sites.items()},
                 "repeats": repeats, "threads": torch.get_num_threads(), "clock": "cpu"}
        if name == "pc":
            levels = sorted({lvl for m in ms for lvl in (m.precision or {})}, reverse=True)
            extra["precision"] = {str(lvl): round(statistics.fmean(m.precision[lvl] for m in ms if lvl in m.precision), 3)
                                  for lvl in levels}
            gtc = per.get(("gtc", factor))
            if gtc:
                extra["over_gtc"] = round(extra["sites"] / statistics.fmean(m.sites for m in gtc), 2)
        rows.append(BenchRow(f"scaling/{model_name} {name} x{factor:g}", "scaling", "cpu", extra["peak_bytes"],
                             extra["decoder_macs"], extra["decoder_seconds"], extra))
    rows += exponent_rows(rows)
    return rows


def fit_exponent(factors: list[float], values: list[float]) -> float | None:
    """Least-squares slope of log(value) against log(factor); None with fewer than two points."""
    points = [(math.log(f), math.log(v)) for f, v in zip(factors, values) if f > 0 and v > 0]
    if len(points) < 2:
        return None
    mx = statistics.fmean(p[0] for p in points)
    my = statistics.fmean(p[1] for p in points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else None


def exponent_rows(rows: list[BenchRow]) -> list[BenchRow]:
    """Per (model, scheme): exponents of sites, CPU time and peak memory against the factor."""
    out = []
    keys = dict.fromkeys((r.extra["model"], r.extra["scheme"]) for r in rows if r.section == "scaling"
                         and "factor" in r.extra)
    for model_name, scheme in keys:
        these = sorted((r for r in rows if r.extra.get("model") == model_name and r.extra.get("scheme") == scheme
                        and "factor" in r.extra), key=lambda r: r.extra["factor"])
        factors = [r.extra["factor"] for r in these]
        extra = {"model": model_name, "scheme": scheme, "factors": factors}
        for key in ("sites", "decoder_seconds", "peak_bytes", "decoder_macs"):
            value = fit_exponent(factors, [r.extra[key] for r in these])
            extra[f"exponent_{key}"] = None if value is None else round(value, 2)
        out.append(BenchRow(f"scaling/{model_name} {scheme} exponents", "scaling", "cpu", None, None, None, extra))
    return out


def format_scaling_table(rows: list[BenchRow]) -> str:
    rows = [r for r in rows if r.section == "scaling"]
    if not rows:
        return ""
    first = next(r.extra for r in rows if "factor" in r.extra)
    lines = [f"scaling: decoder cost against image side, working scale off ({first['images']} image(s), "
             f"median CPU time of {first['repeats']} round-robin run(s), {first['threads']} thread(s))",
             f"{'model':<12}{'scheme':<7}{'factor':>7}{'size':>11}{'sites':>11}{'GMACs':>8}{'CPU ms':>9}{'peak MiB':>10}"
             f"{'PC/GTC':>8}  PC precision by level (share of sent-on cells GT calls composite)"]
    for r in rows:
        e = r.extra
        if "factor" not in e:
            continue
        size = f"{e['size'][0]}x{e['size'][1]}"
        precision = " ".join(f"L{k}:{v:.2f}" for k, v in e.get("precision", {}).items())
        over = f"{e['over_gtc']:.2f}" if "over_gtc" in e else ""
        lines.append(f"{e['model']:<12}{e['scheme']:<7}{e['factor']:>7g}{size:>11}{e['sites']:>11,}"
                     f"{e['decoder_macs'] / 1e9:>8.2f}{1e3 * e['decoder_seconds']:>9.1f}{e['peak_bytes'] / 2**20:>10.1f}"
                     f"{over:>8}  {precision}")
    lines += ["", "exponents (log-log slope against the factor; 1 = boundary, 2 = area):",
              f"{'model':<12}{'scheme':<7}{'sites':>8}{'CPU time':>10}{'memory':>8}{'MACs':>8}"]
    def fmt(v):
        return "" if v is None else f"{v:.2f}"
    for r in rows:
        e = r.extra
        if "exponent_sites" in e:
            lines.append(f"{e['model']:<12}{e['scheme']:<7}{fmt(e['exponent_sites']):>8}{fmt(e['exponent_decoder_seconds']):>10}"
                         f"{fmt(e['exponent_peak_bytes']):>8}{fmt(e['exponent_decoder_macs']):>8}")
    return "\n".join(lines)
