"""The paper's Table 6, measured: activation memory of the Dil baseline and of QGNs (All, GTC, PC).

For each size (2048×1024: the Cityscapes column, with CamVid val masks resized as the stand-in;
480×384: CamVid at its own resolution) and each backbone (ResNet-50, ResNet-101):

    decoder only      Dil (1×1 conv + bilinear upsampling), All, GTC, PC — encoder features are inputs
    encoder+decoder   R50-Dil / R50-All / R50-GTC / R50-PC, the same for R101

GTC uses each image's ground-truth composite cells; PC the cells a trained model (``pc_model``,
e.g. the CamVid model of ``qgn train --preset camvid-cpu``) predicted composite on that image,
replayed in the ResNet-sized decoder (qgn.bench.site_masks). Both are averaged over the images.
The networks have random weights: memory does not depend on them. Models have 19 classes, as
Cityscapes. Encoders are measured once per size and composed with each image's decoder part
(``qgn.bench.memory.compose``, tested equal to whole-network measurement). On CPU the passes run
shape-only (qgn.bench.shape_only) unless ``shape_only`` is False.

Each row's ``bytes`` is the Table 6 quantity (bytes alive after a training forward); the row also
carries the bytes saved for backward, the forward+backward peak, the inference peak, MACs, active
sites and, for QGN decoders, the ideal (qgn.bench.ideal).
"""
from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from qgn.bench.ideal import ideal_decoder_bytes
from qgn.bench.memory import DecoderMemory, EncoderMemory, PassMemory, compose, measure_decoder_pass, measure_encoder_pass
from qgn.bench.paper import GIB, table6_bytes
from qgn.bench.rows import BenchRow
from qgn.bench.standin import Size
from qgn.bench.workload import Workload
from qgn.classes import ClassSet
from qgn.model.dilated import DilatedBaseline
from qgn.model.macs import count_macs
from qgn.model.qgn import QGN, QGNConfig
from qgn.propagation import Scheme

ARCHITECTURES: dict[str, tuple[str, str]] = {
    "R50": ("resnet50", "r50"), "R101": ("resnet101", "r101"),
    "R18": ("resnet18", "r18"), "tiny": ("tiny", "tiny"),  # not in the paper: quick runs and tests
}
"""Backbone → (encoder name, QGN preset); Table 6 has R50 and R101."""
PAPER_SIZE: Size = (2048, 1024)  # the only size the paper's Cityscapes column applies to
SCHEMES = ("All", "GTC", "PC")


@dataclass
class NetworkSettings:
    """Which networks the memory and compute sections build (random weights, ``num_classes`` outputs)."""

    device: torch.device
    architectures: tuple[str, ...] = ("R50", "R101")
    num_classes: int = 19
    decoder_width: float | None = None  # None: the preset's (1.0, Table 7, for R50 / R101)
    shape_only: bool = True

    def __post_init__(self):
        unknown = set(self.architectures) - set(ARCHITECTURES)
        if unknown:
            raise ValueError(f"unknown architectures {sorted(unknown)}; choose from {', '.join(ARCHITECTURES)}")

    def build(self, arch: str) -> tuple[QGN, DilatedBaseline]:
        """The QGN (preset of ``arch``) and the Dil baseline of the same encoder."""
        encoder_name, preset = ARCHITECTURES[arch]
        classes = ClassSet(tuple(f"class{i}" for i in range(self.num_classes)))
        torch.manual_seed(0)
        overrides = {} if self.decoder_width is None else {"decoder_width": self.decoder_width}
        model = QGN(QGNConfig.from_preset(preset, classes, **overrides)).to(self.device)
        return model, DilatedBaseline(encoder_name, self.num_classes).to(self.device)

    def empty_or_random(self, *shape: int) -> torch.Tensor:
        """An input tensor: uninitialised for shape-only runs (never touched), else random."""
        make = torch.empty if self.shape_only else torch.randn
        return make(*shape, device=self.device)


@dataclass
class Part:
    """One decoder measurement: memory, MACs, active sites per level, ideal bytes (None for Dil)."""

    memory: DecoderMemory
    macs: int
    sites: dict[int, int]
    ideal: int | None


def dense_macs(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Conv/Linear MACs of ``module`` on an input of ``shape`` (counted on a meta copy)."""
    meta = copy.deepcopy(module).to("meta")
    return count_macs(meta, torch.empty(shape, device="meta"))


def feature_leaves(encoder, size: Size, s: NetworkSettings) -> list[torch.Tensor]:
    """Stand-ins (1, C, H/s, W/s) for ``encoder``'s features, requires_grad (see ``empty_or_random``)."""
    width, height = size
    return [s.empty_or_random(1, c, height // st, width // st).requires_grad_(True)
            for c, st in zip(encoder.out_channels, encoder.strides)]


def _qgn_part(model: QGN, feats, image, scheme: Scheme, gt, s: NetworkSettings) -> Part:
    captured: dict = {}

    def run():
        outputs = model.decoder(feats, image, scheme, gt)
        captured["macs"] = sum(o.macs for o in outputs)
        captured["sites"] = {o.level: o.num_sites for o in outputs}
        return outputs

    memory = measure_decoder_pass(run, model.decoder, feats, s.device, s.shape_only)
    ideal = ideal_decoder_bytes(model.decoder, captured["sites"])
    return Part(memory, captured["macs"], captured["sites"], ideal)


def _dil_part(model: DilatedBaseline, size: Size, s: NetworkSettings) -> Part:
    feats = feature_leaves(model.encoder, size, s)
    out_size = (size[1], size[0])
    memory = measure_decoder_pass(lambda: model.decoder_forward(feats, out_size), model, feats, s.device, s.shape_only)
    macs = dense_macs(model.head, tuple(feats[-1].shape))
    return Part(memory, macs, {}, memory.pass_memory.forward_bytes)


def _average(rows: list[PassMemory]) -> PassMemory:
    def mean(values):
        return round(statistics.fmean(values))
    index = None if any(r.index_bytes is None for r in rows) else mean([r.index_bytes for r in rows])
    return PassMemory(
        mean([r.forward_bytes for r in rows]), mean([r.saved_bytes for r in rows]),
        mean([r.fwd_bwd_peak_bytes for r in rows]), mean([r.infer_peak_bytes for r in rows]), rows[0].method, index,
    )


def _row(name: str, column: str, part: str, size: Size, memory: PassMemory, macs: float, device: str,
         ideal: float | None = None, sites: float | None = None, images: int = 1, note: str = "") -> BenchRow:
    paper = table6_bytes("Cityscapes", column) if tuple(size) == PAPER_SIZE else None
    extra = {
        "size": f"{size[0]}x{size[1]}", "column": column, "part": part,
        "saved_bytes": memory.saved_bytes, "fwd_bwd_peak_bytes": memory.fwd_bwd_peak_bytes,
        "infer_peak_bytes": memory.infer_peak_bytes, "index_bytes": memory.index_bytes,
        "ideal_bytes": None if ideal is None else round(ideal),
        "active_sites": None if sites is None else round(sites), "images": images,
        "paper_bytes": paper, "method": memory.method,
    }
    if note:
        extra["note"] = note
    return BenchRow(f"memory/{name} @{size[0]}x{size[1]}", "memory", device, memory.forward_bytes, round(macs), None, extra)


class _SizeRun:
    """Everything measured at one size; ``rows()`` turns it into table rows."""

    def __init__(self, work: Workload, s: NetworkSettings, log: Callable[[str], None], progress=None,
                 encoder_progress=None):
        self.work, self.size, self.s, self.log = work, work.size, s, log
        self.progress = progress or (lambda done, total: None)
        self.encoder_progress = encoder_progress or (lambda done, total: None)
        self.decoder_parts: dict[tuple, dict[str, list[Part]]] = {}

    def _decoders(self, model: QGN, dil: DilatedBaseline) -> dict[str, list[Part]]:
        """Decoder parts, shared by backbones with the same feature channels (R50 and R101)."""
        key = (model.encoder.out_channels, dil.encoder.out_channels)
        if key in self.decoder_parts:
            return self.decoder_parts[key]
        s, size, work = self.s, self.size, self.work
        feats = feature_leaves(model.encoder, size, s)
        image = s.empty_or_random(1, 3, size[1], size[0])
        parts = {"Dil": [_dil_part(dil, size, s)], "All": [_qgn_part(model, feats, image, Scheme("all"), None, s)]}
        self.log(f"memory {size[0]}x{size[1]}: decoders Dil and All done; GTC/PC over {work.images} images")
        total = work.images * (1 if work.pc is None else 2)
        self.progress(0, total)

        def counted(index: int, part: Part) -> Part:
            self.progress(index, total)
            return part

        parts["GTC"] = [counted(i + 1, _qgn_part(model, feats, image, *work.gtc_scheme_args(i, s.device), s))
                        for i in range(work.images)]
        if work.pc is not None:
            parts["PC"] = [counted(work.images + i + 1, _qgn_part(model, feats, image, work.pc_scheme(i, s.device), None, s))
                           for i in range(work.images)]
        self.decoder_parts[key] = parts
        return parts

    def rows(self, networks: bool = True) -> list[BenchRow]:
        s, size, dev = self.s, self.size, str(self.s.device)
        image_shape = (1, 3, size[1], size[0])
        image = s.empty_or_random(*image_shape)
        rows: list[BenchRow] = []
        passes = 2 * len(s.architectures)  # each backbone's Dil and QGN encoder
        for index, arch in enumerate(s.architectures):
            model, dil = s.build(arch)
            parts = self._decoders(model, dil)
            if index == 0:
                rows += self._decoder_rows(parts)
            if not networks:
                break
            self.encoder_progress(2 * index, passes)
            dil_memory = measure_encoder_pass(dil.encoder, image, [4], s.device, s.shape_only)
            self.encoder_progress(2 * index + 1, passes)
            qgn_memory = measure_encoder_pass(model.encoder, image, range(5), s.device, s.shape_only)
            self.encoder_progress(2 * index + 2, passes)
            encoders = {"Dil": (dil_memory, dense_macs(dil.encoder, image_shape)),
                        "QGN": (qgn_memory, dense_macs(model.encoder, image_shape))}
            self.log(f"memory {size[0]}x{size[1]}: {arch} encoders done")
            rows += self._network_rows(arch, encoders, parts, dev)
            del model, dil
        return rows

    def _decoder_rows(self, parts: dict[str, list[Part]]) -> list[BenchRow]:
        rows = []
        for column, measured in parts.items():
            memory = _average([p.memory.pass_memory for p in measured])
            macs = statistics.fmean(p.macs for p in measured)
            ideal = statistics.fmean(p.ideal for p in measured)
            sites = statistics.fmean(sum(p.sites.values()) for p in measured) if column != "Dil" else None
            rows.append(_row(f"decoder {column}", column, "decoder", self.size, memory, macs, str(self.s.device),
                             ideal, sites, len(measured), self.work.source if column in ("GTC", "PC") else ""))
        return rows

    def _network_rows(self, arch: str, encoders: dict[str, tuple[EncoderMemory, int]],
                      parts: dict[str, list[Part]], dev: str) -> list[BenchRow]:
        rows = []
        for column, measured in parts.items():
            encoder, encoder_macs = encoders["Dil" if column == "Dil" else "QGN"]
            memory = _average([compose(encoder, p.memory) for p in measured])
            macs = encoder_macs + statistics.fmean(p.macs for p in measured)
            ideal = encoder.forward_bytes + statistics.fmean(p.ideal for p in measured)
            rows.append(_row(f"{arch}-{column}", f"{arch}-{column}", "encoder+decoder", self.size, memory, macs, dev,
                             ideal, None, len(measured), self.work.source if column in ("GTC", "PC") else ""))
        return rows


def memory_rows(workloads: list[Workload], settings: NetworkSettings,
                log: Callable[[str], None] = lambda _: None, networks: bool = True,
                progress: Callable[[str, int, int], None] | None = None,
                encoder_progress: Callable[[str, int, int], None] | None = None) -> list[BenchRow]:
    """All rows of the memory table (see the module docstring), size by size; only the
    decoder-only rows when ``networks`` is False. ``progress(size, i, n)``: ``i`` of the ``n``
    GTC and PC decoder passes (one per image each) measured at ``size`` ("WxH");
    ``encoder_progress(size, i, n)``: ``i`` of the ``n`` encoder passes (each backbone's Dil and
    QGN encoder; minutes with ``--real`` at 2048x1024)."""
    rows = []
    for work in workloads:
        tag = f"{work.size[0]}x{work.size[1]}"
        counted = None if progress is None else (lambda done, total, tag=tag: progress(tag, done, total))
        encoders = None if encoder_progress is None else (
            lambda done, total, tag=tag: encoder_progress(tag, done, total))
        rows += _SizeRun(work, settings, log, counted, encoders).rows(networks)
    return rows


def _find(rows: list[BenchRow], size: str, column: str) -> BenchRow | None:
    return next((r for r in rows if r.extra.get("size") == size and r.extra.get("column") == column), None)


def memory_ratios(rows: list[BenchRow]) -> list[dict]:
    """The ratios that must hold in spirit: per size, (label, ours, paper, target) with
    ``meets`` = ours ≤ target (target None: reported only)."""
    def paper_ratio(a, b):
        return table6_bytes("Cityscapes", a) / table6_bytes("Cityscapes", b)
    checks = [("R50-GTC", "R50-Dil", 1 / 2), ("R101-GTC", "R101-Dil", 1 / 2), ("GTC", "All", 1 / 20),
              ("PC", "All", None), ("R50-PC", "R50-Dil", None), ("R50-GTC", "R50-All", None)]
    out = []
    for size in dict.fromkeys(r.extra["size"] for r in rows if r.section == "memory"):
        for top, bottom, target in checks:
            a, b = _find(rows, size, top), _find(rows, size, bottom)
            if a is None or b is None:
                continue
            ours = a.bytes / b.bytes
            paper = paper_ratio(top, bottom) if size == f"{PAPER_SIZE[0]}x{PAPER_SIZE[1]}" and "PC" not in top else None
            label = f"{'decoder ' if top in SCHEMES else ''}{top} / {'decoder ' if bottom in SCHEMES else ''}{bottom}"
            out.append({"size": size, "ratio": label, "ours": ours, "paper": paper, "target": target,
                        "meets": None if target is None else ours <= target})
    return out


def format_memory_table(rows: list[BenchRow]) -> str:
    """Rows as a text table in GiB (the paper's GB), with the paper's Table 6 beside ours."""
    def gib(b):
        return "" if b is None else f"{b / GIB:.3f}"
    lines = []
    memory = [r for r in rows if r.section == "memory"]
    if not memory:
        return ""
    lines.append(f"activation memory, GiB; method: {memory[0].extra['method']}")
    lines.append("fwd = alive after a training forward (Table 6's quantity); saved = of it, saved for backward;"
                 " peak = forward+backward peak; infer = inference peak;")
    lines.append("index = of fwd, integer tensors (coordinates, rulebooks, masks, pooling indices); "
                 "ideal = active sites x channels of the kept tensors (qgn.bench.ideal)")
    head = (f"{'row':<28}{'fwd':>9}{'paper':>8}{'saved':>9}{'peak':>9}{'infer':>9}{'index':>9}{'ideal':>9}"
            f"{'ours/ideal':>11}{'GMAC':>10}{'sites':>11}")
    for size in dict.fromkeys(r.extra["size"] for r in memory):
        lines.append("")
        lines.append(f"— {size} —")
        lines.append(head)
        for r in (r for r in memory if r.extra["size"] == size):
            e = r.extra
            ratio = f"{r.bytes / e['ideal_bytes']:.2f}" if e["ideal_bytes"] else ""
            sites = f"{e['active_sites']:,}" if e["active_sites"] is not None else ""
            label = f"{r.name.split('/', 1)[1].rsplit(' @', 1)[0]}" + (f" (n={e['images']})" if e["images"] > 1 else "")
            lines.append(f"{label:<28}{gib(r.bytes):>9}{gib(e['paper_bytes']):>8}{gib(e['saved_bytes']):>9}"
                         f"{gib(e['fwd_bwd_peak_bytes']):>9}{gib(e['infer_peak_bytes']):>9}{gib(e['index_bytes']):>9}"
                         f"{gib(e['ideal_bytes']):>9}"
                         f"{ratio:>11}{r.macs / 1e9:>10.1f}{sites:>11}")
    lines.append("")
    lines.append("ratios (fwd bytes):")
    for c in memory_ratios(rows):
        paper = f"paper {c['paper']:.3f}" if c["paper"] is not None else ""
        target = "" if c["target"] is None else f"target <= {c['target']:.3f}: {'met' if c['meets'] else 'MISSED'}"
        lines.append(f"  {c['size']:<10}{c['ratio']:<26} ours {c['ours']:.3f} (1/{1 / c['ours']:.1f})  {paper:<13} {target}")
    return "\n".join(lines)
