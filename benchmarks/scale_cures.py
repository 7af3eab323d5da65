"""Experiment (issue #26, item 1): can the street model's PC follow the boundaries at 1-8x without
losing val mIoU? Two tools, used for the table in benchmarks/RESULTS.md:

``sites MODEL[,MODEL...] [--images 3]``
    PC and GTC active sites (whole decoder, summed over levels) on the first N CamVid val frames at
    1, 2, 4, 8x of 480x360, each model at the image's own size (working scale off), labels upscaled
    smoothly for GTC exactly as ``qgn bench --only scaling`` does; prints the least-squares exponent
    of sites against the image side. Sites only: deterministic, and seconds instead of the minutes
    that timing All and dense at 8x takes.

``finetune --part composite|decoder --out OUT.safetensors [--iterations N] [--lr LR] [--share S]``
    Fine-tune part of the bundled street model on the camvid-street training recipe, with a share
    S of samples scaled log-uniformly to 0.75-8x (``scale_wide``), everything else frozen and the
    whole model in eval mode (BatchNorm statistics frozen):
      composite  row 0 (the composite logit) of every level's head: where PC stops changes, the
                 class predicted at a cell cannot (labels are the argmax over classes 1..k), so
                 All and GTC stay bit-identical;
      decoder    every decoder weight (the encoder frozen).
    AdamW, weight decay 0, poly decay, batch 8, All and GTC alternating like the training recipe.

``native MODEL[,MODEL...]``
    mIoU of All, GTC and PC on all CamVid val frames with the model run at the images' own size
    (480x360: working scale off), scored like ``qgn eval``: what ``--resolution auto`` would give a
    wide-trained model on CamVid-sized photos.

    .venv/bin/python benchmarks/scale_cures.py finetune --part composite --out runs/comp.safetensors
    .venv/bin/python benchmarks/scale_cures.py sites camvid,runs/comp.safetensors
    qgn eval camvid --split val --model runs/comp.safetensors --modes all,gtc,pc
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

FACTORS = (1, 2, 4, 8)


def site_exponents(name: str, images: int) -> dict[str, tuple[list[int], float]]:
    from qgn.bench.scaling import fit_exponent, label_composite_masks, scaled_sample
    from qgn.data.registry import open_dataset
    from qgn.infer import ImageSession
    from qgn.model.checkpoint import load_model
    from qgn.propagation import Scheme
    from qgn.resources import default_model

    data = open_dataset("camvid", "val")
    model = load_model(default_model(name)).eval()
    totals = {scheme: [0] * len(FACTORS) for scheme in ("pc", "gtc")}
    for i in range(images):
        sample = data[i]
        for j, factor in enumerate(FACTORS):
            image, label = scaled_sample(sample, factor)
            with torch.no_grad():
                session = ImageSession(model, image, at_image_size=True)
                gt = label_composite_masks(label, session.padded_shape, data.classes.num_classes,
                                           data.classes.ignore_index)
                features = session.features()
                for scheme in totals:
                    out = model.decoder(features, session.images, Scheme(scheme), gt if scheme == "gtc" else None)
                    totals[scheme][j] += sum(o.num_sites for o in out)
    return {scheme: ([round(v / images) for v in values], fit_exponent(list(FACTORS), values))
            for scheme, values in totals.items()}


def native_miou(name: str) -> dict[str, tuple[float, float]]:
    """Scheme -> (mIoU %, mean active sites) on CamVid val, the model at the images' own size."""
    from qgn.data.registry import open_dataset
    from qgn.evaluate import evaluate
    from qgn.model.checkpoint import load_model
    from qgn.propagation import Scheme
    from qgn.resources import default_model

    data = open_dataset("camvid", "val")
    model = load_model(default_model(name)).eval()
    schemes = {s: Scheme(s) for s in ("all", "gtc", "pc")}
    results = evaluate(model, (data[i] for i in range(len(data))), schemes, at_image_size=True)
    return {s: (100 * r.confusion.miou(), float(np.mean(r.sites))) for s, r in results.items()}


def trainable_part(model, part: str) -> list[torch.Tensor]:
    """Make ``part`` of ``model`` trainable (the rest frozen); return its parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    if part == "decoder":
        for p in model.decoder.parameters():
            p.requires_grad_(True)
            params.append(p)
        return params
    heads = [model.decoder.head5] + [model.decoder.levels[str(level)].head for level in range(4, -1, -1)]
    for head in heads:
        for p in (head.weight, head.bias):
            p.requires_grad_(True)
            mask = torch.zeros_like(p)
            mask[0] = 1  # row 0: the composite logit
            p.register_hook(lambda grad, mask=mask: grad * mask)
            params.append(p)
    return params


def finetune(part: str, out: str, iterations: int, lr: float, share: float, seed: int) -> None:
    from qgn.loss import QuadtreeLoss
    from qgn.model.checkpoint import config_path, load_model, save_model
    from qgn.propagation import Scheme
    from qgn.resources import default_model
    from qgn.train.loop import BatchStream, TrainConfig, class_balance_weights, open_training_data, poly_lr
    from qgn.train.presets import PRESETS
    from qgn.train.step import batch_targets

    source = default_model("camvid")
    model = load_model(source)
    config = TrainConfig(**{k: v for k, v in PRESETS["camvid-street"].items() if k in TrainConfig.__dataclass_fields__})
    config.scale_wide, config.scale_wide_share = 8.0, share
    data = open_training_data(config)
    stream = BatchStream(data, config, np.random.default_rng(seed))
    optimizer = torch.optim.AdamW(trainable_part(model, part), lr=lr, weight_decay=0.0)
    loss_fn = QuadtreeLoss(model.config.num_levels, config.weighting, config.gamma, composite_weight=config.composite_weight)
    balance = class_balance_weights(data, config.class_balance)
    if balance is not None:
        loss_fn.set_class_weights(torch.from_numpy(balance))
    model.eval()  # BatchNorm keeps its statistics
    schemes, start = [Scheme("all"), Scheme("gtc")], time.perf_counter()
    for i in range(iterations):
        for group in optimizer.param_groups:
            group["lr"] = poly_lr(lr, i, iterations, config.power)
        batch = stream.next()
        targets = batch_targets(model, batch.labels)
        scheme = schemes[i % 2]
        gt = [t == 0 for t in targets] if scheme.needs_ground_truth else None
        loss, _ = loss_fn(model(batch.images, scheme, gt), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i % 100 == 0:
            print(f"{i}/{iterations} loss {loss.item():.3f} {time.perf_counter() - start:.0f} s", flush=True)
    extra = json.loads(config_path(source).read_text())["config"].get("extra", {})
    extra.pop("evaluation", None)
    extra["scale_cure"] = {"part": part, "iterations": iterations, "lr": lr, "scale_wide": 8.0,
                           "scale_wide_share": share, "seed": seed, "from": "camvid (bundled)"}
    save_model(out, model, extra=extra)
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sites")
    s.add_argument("models")
    s.add_argument("--images", type=int, default=3)
    n = sub.add_parser("native")
    n.add_argument("models")
    f = sub.add_parser("finetune")
    f.add_argument("--part", choices=("composite", "decoder"), required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--iterations", type=int, default=1000)
    f.add_argument("--lr", type=float, default=0.002)
    f.add_argument("--share", type=float, default=0.5)
    f.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.command == "sites":
        for name in args.models.split(","):
            for scheme, (sites, exponent) in site_exponents(name, args.images).items():
                print(f"{name} {scheme}: sites at {'/'.join(f'{f}x' for f in FACTORS)} {sites}, exponent {exponent:.2f}")
    elif args.command == "native":
        for name in args.models.split(","):
            cells = ", ".join(f"{s} {m:.2f} ({sites:,.0f} sites)" for s, (m, sites) in native_miou(name).items())
            print(f"{name} at 480x360: mIoU {cells}")
    else:
        finetune(args.part, args.out, args.iterations, args.lr, args.share, args.seed)


if __name__ == "__main__":
    main()
