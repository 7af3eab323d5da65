"""Compute per propagation scheme: multiply-accumulates of the decoders and networks of the memory
table, per level, and the paper's Table 2 "TFLOPs" column (which counts MACs, see qgn.bench.paper).

Decoder MACs are the decoder's own count (``LevelOutput.macs``: neighbour pairs × channels for
every submanifold convolution, sites × channels for 1×1 layers), from one shape-only forward
(qgn.bench.shape_only: the sites and rulebooks are real, the float arithmetic is skipped).
Encoder and Dil MACs are ``qgn.model.macs.count_macs`` on meta tensors. GTC and PC are averaged
over the workload's images.
"""
from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable

import torch

from qgn.bench.memory_table import NetworkSettings, dense_macs, feature_leaves
from qgn.bench.paper import TABLE2
from qgn.bench.rows import BenchRow
from qgn.bench.shape_only import ShapeOnlyMode
from qgn.bench.workload import Workload
from qgn.model.qgn import QGN
from qgn.propagation import Scheme

PAPER_TABLE2_ROWS = {"R50-All": "QGN Train-All-Eval-All (R50-All)", "R50-PC": "QGN Train-GTC-Eval-PC (R50-PC)"}


def decoder_level_macs(model: QGN, feats, image, scheme: Scheme, gt, shape_only: bool) -> dict[int, int]:
    """Level → MACs of one decoder forward with ``scheme`` (no grad)."""
    mode = ShapeOnlyMode() if shape_only else contextlib.nullcontext()
    with mode, torch.no_grad():
        outputs = model.decoder(feats, image, scheme, gt)
    return {o.level: o.macs for o in outputs}


def _mean_levels(runs: list[dict[int, int]]) -> dict[int, float]:
    levels = sorted({level for run in runs for level in run}, reverse=True)
    return {level: statistics.fmean(run.get(level, 0) for run in runs) for level in levels}


def decoder_passes(work: Workload) -> int:
    """The decoder forwards ``scheme_level_macs`` makes: All once, GTC (and PC) once per image."""
    return 1 + work.images * (1 if work.pc is None else 2)


def scheme_level_macs(model: QGN, work: Workload, s: NetworkSettings,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, dict[int, float]]:
    """Scheme → level → decoder MACs (GTC and PC averaged over the workload's images).
    ``progress(i, n)``: ``i`` of the ``n`` decoder passes (``decoder_passes``) made, 0 first."""
    size = work.size
    total, done = decoder_passes(work), [0]

    def counted(levels: dict[int, int]) -> dict[int, int]:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)
        return levels

    if progress is not None:
        progress(0, total)
    feats = feature_leaves(model.encoder, size, s)
    image = s.empty_or_random(1, 3, size[1], size[0])
    out = {"All": _mean_levels([counted(decoder_level_macs(model, feats, image, Scheme("all"), None, s.shape_only))])}
    out["GTC"] = _mean_levels([counted(decoder_level_macs(model, feats, image, *work.gtc_scheme_args(i, s.device),
                                                          s.shape_only))
                               for i in range(work.images)])
    if work.pc is not None:
        out["PC"] = _mean_levels([counted(decoder_level_macs(model, feats, image, work.pc_scheme(i, s.device), None,
                                                             s.shape_only))
                                  for i in range(work.images)])
    return out


def compute_rows(workloads: list[Workload], s: NetworkSettings,
                 progress: Callable[[str, int, int], None] | None = None) -> list[BenchRow]:
    """Per size: decoder-only rows (Dil, All, GTC, PC) and per backbone network rows.
    ``progress(size, i, n)``: ``i`` of the ``n`` decoder passes of a backbone's decoder made at
    ``size`` ("WxH"; R50 and R101 share one decoder: counted once)."""
    rows: list[BenchRow] = []
    for work in workloads:
        cache: dict[tuple, dict[str, dict[int, float]]] = {}  # backbones with equal channels share a decoder
        size = work.size
        tag = f"{size[0]}x{size[1]}"
        counted = None if progress is None else (lambda done, total, tag=tag: progress(tag, done, total))
        image_shape = (1, 3, size[1], size[0])
        for index, arch in enumerate(s.architectures):
            model, dil = s.build(arch)
            key = model.encoder.out_channels
            levels = cache[key] if key in cache else cache.setdefault(key, scheme_level_macs(model, work, s, counted))
            all_decoder = sum(levels["All"].values())
            head = dense_macs(dil.head, (1, dil.encoder.out_channels[-1], size[1] // 8, size[0] // 8))
            encoders = {"Dil": dense_macs(dil.encoder, image_shape), "QGN": dense_macs(model.encoder, image_shape)}
            decoders = {"Dil": ({}, head), **{k: (v, sum(v.values())) for k, v in levels.items()}}
            for column, (per_level, decoder) in decoders.items():
                common = {"size": tag, "per_level_macs": {str(k): round(v) for k, v in per_level.items()},
                          "share_of_all_decoder": decoder / all_decoder,
                          "images": work.images if column in ("GTC", "PC") else 1}
                if index == 0:
                    rows.append(BenchRow(f"compute/decoder {column} @{tag}", "compute", str(s.device), None,
                                         round(decoder), None, {**common, "column": column, "part": "decoder"}))
                encoder = encoders["Dil" if column == "Dil" else "QGN"]
                total = encoder + decoder
                name = f"{arch}-{column}"
                paper = TABLE2.get(PAPER_TABLE2_ROWS.get(name, ""), (None, None, None))[1] if tag == "2048x1024" else None
                rows.append(BenchRow(f"compute/{name} @{tag}", "compute", str(s.device), None, round(total), None,
                                     {**common, "column": name, "part": "encoder+decoder", "encoder_macs": encoder,
                                      "decoder_macs": round(decoder), "tmacs": total / 1e12, "paper_tflops": paper}))
            del model, dil
    return rows


def format_compute_table(rows: list[BenchRow]) -> str:
    """MACs per row and the Table 2 comparison (TMACs = the paper's TFLOPs)."""
    compute = [r for r in rows if r.section == "compute"]
    if not compute:
        return ""
    lines = ["compute: GMACs per forward pass (decoder = share of the All decoder's MACs); "
             "the paper's Table 2 'TFLOPs' are 10^12 MACs"]
    for tag in dict.fromkeys(r.extra["size"] for r in compute):
        lines += ["", f"— {tag} —", f"{'row':<16}{'GMACs':>10}{'decoder':>10}{'share':>8}{'TMACs':>8}{'paper':>8}   per level (GMACs, 5 … 0)"]
        for r in (r for r in compute if r.extra["size"] == tag):
            e = r.extra
            decoder = e.get("decoder_macs", r.macs)
            tmacs = f"{e['tmacs']:.3f}" if "tmacs" in e else ""
            paper = f"{e['paper_tflops']:.2f}" if e.get("paper_tflops") is not None else ""
            per_level = " ".join(f"{v / 1e9:.1f}" for v in e["per_level_macs"].values())
            label = e["column"] if e["part"] != "decoder" else f"decoder {e['column']}"
            lines.append(f"{label:<16}{r.macs / 1e9:>10.1f}{decoder / 1e9:>10.1f}{100 * e['share_of_all_decoder']:>7.1f}%"
                         f"{tmacs:>8}{paper:>8}   {per_level}")
    lines.append("")
    lines.append("paper, Table 2 (2048x1024): " + "; ".join(f"{k} {v[1]:.2f}" for k, v in TABLE2.items()))
    return "\n".join(lines)
