"""Wall time of the decoder: torch backend vs spconv backend vs the dense masked decoder.

The QGN decoder of the first architecture (R50: Table 7 widths, random weights, eval mode) at one size, inference
(no grad), on the workload's first image: All, GTC and PC (the trained model's sites). The sparse
backends are switched with ``qgn.sparse.set_default_backend`` (reset to the environment's
choice after each run); the dense masked decoder
(qgn.bench.dense_decoder) computes the same sites with full-grid ``conv2d`` and 0/1 masks.
Candidates run round-robin (qgn.bench.timing) and each time includes building the level's site
sets and neighbour rulebooks, as a real prediction does. Encoder features are random inputs.
"""
from __future__ import annotations

import torch

from qgn.bench.dense_decoder import dense_masked_decode, masks_of_outputs
from qgn.bench.memory_table import NetworkSettings, feature_leaves
from qgn.bench.rows import BenchRow
from qgn.bench.timing import interleaved_median_ms
from qgn.bench.workload import Workload
from qgn.propagation import Scheme
from qgn.sparse import available_backends, set_default_backend


def _schemes(work: Workload, device) -> dict[str, tuple[Scheme, list | None]]:
    schemes = {"All": (Scheme("all"), None), "GTC": work.gtc_scheme_args(0, device)}
    if work.pc is not None:
        schemes["PC"] = (work.pc_scheme(0, device), None)
    return schemes


def speed_rows(work: Workload, s: NetworkSettings, repeats: int, backends: list[str] | None = None,
               log=lambda _: None, progress=None) -> list[BenchRow]:
    """Median decoder seconds per (scheme, implementation) at ``work.size``.

    ``progress(i, n, what)``: ``i`` of the ``n`` schemes measured (0 before the first, and before
    the network is built and the features made: seconds at 480x384), ``what`` the timed run under
    way in the scheme (``"GTC: run 5/12"``; ``""`` between)."""
    schemes = _schemes(work, s.device)

    def say(i: int, what: str) -> None:
        if progress is not None:
            progress(i, len(schemes), what)

    say(0, f"building {s.architectures[0]}")
    model, _ = s.build(s.architectures[0])
    model.eval()
    size, tag = work.size, f"{work.size[0]}x{work.size[1]}"
    real = NetworkSettings(s.device, s.architectures, s.num_classes, s.decoder_width, shape_only=False)
    say(0, "random encoder features")
    with torch.no_grad():
        feats = [f.detach() for f in feature_leaves(model.encoder, size, real)]
    image = real.empty_or_random(1, 3, size[1], size[0])
    if backends is None:
        say(0, "loading the sparse-conv backends")  # spconv's import: ~7 s here
    names = backends if backends is not None else [b for b in ("torch", "spconv") if b in available_backends()]
    rows: list[BenchRow] = []
    for done, (scheme_name, (scheme, gt)) in enumerate(schemes.items(), 1):
        say(done - 1, f"{scheme_name}: its sites")
        with torch.no_grad():
            outputs = model.decoder(feats, image, scheme, gt)
        masks = masks_of_outputs(outputs)
        macs = sum(o.macs for o in outputs)
        sites = sum(o.num_sites for o in outputs)
        del outputs

        def sparse(backend: str):
            def step():
                set_default_backend(backend)
                try:
                    with torch.no_grad():
                        model.decoder(feats, image, scheme, gt)
                finally:
                    set_default_backend(None)
            return step

        steps = {name: sparse(name) for name in names}
        steps["dense-masked"] = lambda: dense_masked_decode(model.decoder, feats, image, masks)
        times = interleaved_median_ms(steps, warmup=1, repeats=repeats, device=s.device,
                                      progress=lambda k, n, i=done - 1, name=scheme_name: say(i, f"{name}: run {k}/{n}"))
        log(f"speed {tag} {scheme_name}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in times.items()))
        for impl, ms in times.items():
            rows.append(BenchRow(f"speed/decoder {scheme_name} {impl} @{tag}", "speed", str(s.device), None, macs,
                                 ms / 1e3, {"size": tag, "scheme": scheme_name, "implementation": impl,
                                            "architecture": s.architectures[0],
                                            "active_sites": sites, "repeats": repeats, "threads": torch.get_num_threads()}))
        say(done, "")
    return rows


def format_speed_table(rows: list[BenchRow]) -> str:
    speed = [r for r in rows if r.section == "speed"]
    if not speed:
        return ""
    impls = list(dict.fromkeys(r.extra["implementation"] for r in speed))
    lines = [f"decoder wall time, inference, ms (median of {speed[0].extra['repeats']}, {speed[0].extra['threads']} threads, "
             f"{speed[0].device}); {speed[0].extra['architecture']}-sized decoder, random weights, eval mode"]
    for tag in dict.fromkeys(r.extra["size"] for r in speed):
        lines += ["", f"— {tag} —", f"{'scheme':<8}{'sites':>10}{'GMACs':>8}" + "".join(f"{i:>14}" for i in impls)
                  + "".join(f"{i + '/torch':>20}" for i in impls if i != "torch")]
        for scheme in dict.fromkeys(r.extra["scheme"] for r in speed if r.extra["size"] == tag):
            by = {r.extra["implementation"]: r for r in speed if r.extra["size"] == tag and r.extra["scheme"] == scheme}
            first = next(iter(by.values()))
            line = f"{scheme:<8}{first.extra['active_sites']:>10,}{first.macs / 1e9:>8.1f}"
            line += "".join(f"{1e3 * by[i].seconds:>14.0f}" for i in impls)
            if "torch" in by:
                line += "".join(f"{by[i].seconds / by['torch'].seconds:>19.2f}x" for i in impls if i != "torch")
            lines.append(line)
    return "\n".join(lines)
