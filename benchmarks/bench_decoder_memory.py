"""Decoder activation memory and MACs against active sites: All vs GTC vs PC (issue 4's check).

CamVid val masks are upsampled (nearest) to 2048×1024 as a Cityscapes-sized stand-in and their
ground-truth composite cells drive GTC; the decoder runs on random encoder features of a
ResNet-50's widths (decoder only, as the paper's Table 6 "Decoder Only" columns). Memory is the
bytes autograd saves for backward (``qgn.bench.memory``); the ideal is active sites × channels.

    .venv/bin/python benchmarks/bench_decoder_memory.py [--images 10] [--width 0.25] [--size 2048x1024] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qgn.bench.memory import active_site_bytes, saved_activation_bytes  # noqa: E402
from qgn.classes import ClassSet  # noqa: E402
from qgn.loss import pyramid_targets  # noqa: E402
from qgn.model.decoder import QGNDecoder  # noqa: E402
from qgn.propagation import Scheme  # noqa: E402

CAMVID_VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid" / "val" / "labels"
R50_CHANNELS = (64, 256, 512, 1024, 2048)


def masks(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    files = sorted(CAMVID_VAL.glob("*.png"))[:count]
    if not files:
        print("CamVid not found: using synthetic masks", file=sys.stderr)
        from qgn.data.synthetic import make_scene

        return [make_scene(i, size[1] // 4, size[0] // 4)[1].repeat(4, 0).repeat(4, 1) for i in range(count)]
    return [np.array(Image.open(f).resize(size, Image.NEAREST)) for f in files]


def run_decoder(decoder, feats, image, scheme, gt):
    start = time.perf_counter()
    nbytes, outputs = saved_activation_bytes(lambda: decoder(feats, image, scheme, gt), [*decoder.parameters(), *feats, image])
    return nbytes, outputs, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--width", type=float, default=0.25, help="decoder width multiplier (1.0 = Table 7)")
    p.add_argument("--size", default="2048x1024")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    decoder = QGNDecoder(R50_CHANNELS, 11, args.width)
    # encoder outputs: they are the encoder's activations, so not counted as the decoder's
    feats = [torch.randn(1, c, h // s, w // s, requires_grad=True) for c, s in zip(R50_CHANNELS, (2, 4, 8, 16, 32))]
    image = torch.randn(1, 3, h, w)
    rows = []
    all_bytes, all_out, all_sec = run_decoder(decoder, feats, image, Scheme("all"), None)
    all_ideal = active_site_bytes(all_out)
    all_macs = sum(o.macs for o in all_out)
    rows.append(dict(name="decoder-all", bytes=all_bytes, ideal=all_ideal, macs=all_macs, seconds=all_sec,
                     sites=sum(o.num_sites for o in all_out)))
    del all_out
    gtc = []
    for lab in masks(args.images, (w, h)):
        lab = torch.from_numpy(lab.astype(np.int64))[None]
        gt = [t == 0 for t in pyramid_targets(lab, 11, 11, 6)]
        nbytes, out, sec = run_decoder(decoder, feats, image, Scheme("gtc"), gt)
        gtc.append((nbytes, active_site_bytes(out), sum(o.macs for o in out), sec, sum(o.num_sites for o in out)))
        del out
    g = np.array(gtc, dtype=np.float64).mean(0)
    rows.append(dict(name="decoder-gtc", bytes=int(g[0]), ideal=int(g[1]), macs=int(g[2]), seconds=g[3], sites=int(g[4])))
    for row in rows:
        row["device"] = "cpu"
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"decoder width {args.width}, {w}×{h}, CamVid val masks: {len(gtc)} (GTC averaged); memory = bytes saved for backward")
    print(f"{'scheme':<12}{'sites':>12}{'activations':>14}{'ideal':>12}{'ours/ideal':>12}{'GMAC':>10}{'s':>8}")
    for r in rows:
        print(f"{r['name']:<12}{r['sites']:>12,}{r['bytes'] / 2**20:>12.1f}MB{r['ideal'] / 2**20:>10.1f}MB"
              f"{r['bytes'] / r['ideal']:>12.2f}{r['macs'] / 1e9:>10.2f}{r['seconds']:>8.2f}")
    a, gg = rows
    print(f"GTC / All: activations 1/{a['bytes'] / gg['bytes']:.1f}, ideal 1/{a['ideal'] / gg['ideal']:.1f}, "
          f"MACs 1/{a['macs'] / gg['macs']:.1f}  (target: activations <= 1/20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
