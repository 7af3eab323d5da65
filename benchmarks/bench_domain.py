"""The out-of-domain signal (qgn.domain): build the bundled models' domain references, and measure
how well the score separates a model's own domain from other photos.

    python benchmarks/bench_domain.py [--write] [--json]

camvid (the street model): reference from the 367 CamVid train frames; in-domain test: the 101 val
frames; out of domain: the photos scikit-image ships (skimage.data: astronaut, cat, coffee, rocket,
coins, moon, brick, grass, gravel, clock, a motorcycle pair, retina, histology, Hubble; gray ones as
RGB), each also as two random crops resized to 480×360 (so size is no cue), and the project's
synthetic scenes (qgn.data.synthetic, 60 at 480×360).
demo (the synthetic-scene model): reference from 300 synthetic scenes (256×256, 360×480 and
384×512 in turn); in-domain test: 60 other synthetic scenes; out of domain: CamVid val and the photos above.

Reported per model: AUROC of the score (in-domain vs out), the share of out-of-domain images
flagged and of in-domain images wrongly flagged at ``qgn.domain.WARN_AT``; beside it the same for
the softmax's own confidence (1 − mean normalised entropy of the PC prediction), the signal that
fails. ``--write`` stores the references as resources/models/<name>.domain.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "moon", "brick", "grass", "gravel", "clock",
          "retina", "immunohistochemistry", "hubble_deep_field", "stereo_motorcycle")


def photos(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """skimage.data photos as RGB uint8, each whole and as two random crops resized to 480×360."""
    import skimage.data as data
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for name in PHOTOS:
        found = getattr(data, name)()
        images = found if isinstance(found, tuple) else (found,)
        for k, im in enumerate(images[:2]):
            im = np.asarray(im)
            if im.ndim == 2:
                im = np.repeat(im[:, :, None], 3, axis=2)
            im = im[:, :, :3]
            if im.dtype != np.uint8:
                im = (255 * (im.astype(np.float64) / max(1, im.max()))).astype(np.uint8)
            out.append((f"{name}{k or ''}", im))
            h, w = im.shape[:2]
            for c in range(2):
                ch, cw = int(h * rng.uniform(0.5, 0.8)), int(w * rng.uniform(0.5, 0.8))
                y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
                crop = Image.fromarray(im[y:y + ch, x:x + cw]).resize((480, 360), Image.BILINEAR)
                out.append((f"{name}{k or ''}-crop{c}", np.asarray(crop)))
    return out


SYNTHETIC_SIZES = ((256, 256), (360, 480), (384, 512))


def synthetic(n: int, seed: int, sizes=SYNTHETIC_SIZES) -> list[tuple[str, np.ndarray]]:
    """``n`` synthetic scenes, their sizes taking turns among ``sizes`` (the demo model sees any)."""
    from qgn.data.synthetic import make_scene

    return [(f"synthetic-{seed + i}", make_scene(seed + i, *sizes[i % len(sizes)])[0]) for i in range(n)]


def camvid(split: str, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    from qgn.data.registry import open_dataset

    data = open_dataset("camvid", split)
    n = len(data) if limit is None else min(limit, len(data))
    return [(data[i].name, data[i].image) for i in range(n)]


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of a random outside image > score of a random inside one), ties half."""
    inside, outside = np.asarray(inside), np.asarray(outside)
    greater = (outside[:, None] > inside[None, :]).mean()
    ties = (outside[:, None] == inside[None, :]).mean()
    return float(greater + 0.5 * ties)


def confidence_score(model, image) -> float:
    """1 − mean normalised entropy of the PC prediction: high = the softmax is sure."""
    from qgn.infer import predict
    from qgn.uncertainty import image_uncertainty

    return 1.0 - image_uncertainty(predict(model, image)).score("mean_entropy")


def measure(name: str, reference_images, inside, outsides, write: bool, log, more_inside=None) -> dict:
    """``more_inside``: label → images of the model's own kind at sizes its reference did not see:
    only the share wrongly flagged is reported ("false_alarms_more")."""
    from qgn.domain import WARN_AT, DomainReference, image_descriptor, reference_path, working_pixels
    from qgn.fileio import file_sha256
    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model

    path = default_model(name)
    model = load_model(path)
    log(f"{name}: {len(reference_images)} reference images")
    areas = [working_pixels(model, *im.shape[:2]) for _, im in reference_images]
    ref = DomainReference.fit(np.stack([image_descriptor(model, im) for _, im in reference_images]),
                              file_sha256(path), f"{len(reference_images)} images", pixels=(min(areas), max(areas)))
    if write:
        ref.save(reference_path(path))
        log(f"{name}: wrote {reference_path(path)}")
    score_in = np.array([ref.score(image_descriptor(model, im, ref.pixels)) for _, im in inside])
    conf_in = np.array([confidence_score(model, im) for _, im in inside])
    result = {"model": name, "reference_images": len(reference_images), "inside": len(inside),
              "warn_at": WARN_AT, "false_alarms": float((score_in > WARN_AT).mean()), "sets": {}}
    for label, images in outsides.items():
        log(f"{name}: {label} ({len(images)} images)")
        score_out = np.array([ref.score(image_descriptor(model, im, ref.pixels)) for _, im in images])
        conf_out = np.array([confidence_score(model, im) for _, im in images])
        result["sets"][label] = {
            "images": len(images), "auroc": auroc(score_in, score_out), "flagged": float((score_out > WARN_AT).mean()),
            "median_score": float(np.median(score_out)),
            # the softmax baseline: out-of-domain images should be LESS confident
            "softmax_auroc": auroc(-conf_in, -conf_out),
            "softmax_confidence_median": float(np.median(conf_out)),
        }
    result["false_alarms_more"] = {}
    for label, images in (more_inside or {}).items():
        log(f"{name}: {label} ({len(images)} images, in domain)")
        scores = np.array([ref.score(image_descriptor(model, im, ref.pixels)) for _, im in images])
        result["false_alarms_more"][label] = {"images": len(images), "flagged": float((scores > WARN_AT).mean()),
                                              "median_score": float(np.median(scores))}
    result["median_score_inside"] = float(np.median(score_in))
    result["softmax_confidence_median_inside"] = float(np.median(conf_in))
    return result


def main() -> int:
    import os

    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="store the references beside the bundled models")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts

    def log(message):
        print(f"bench_domain: {message}", file=sys.stderr, flush=True)

    photo_set = photos()
    results = [
        measure("camvid", camvid("train"), camvid("val"),
                {"photos": photo_set, "synthetic scenes": synthetic(60, 5000, ((360, 480),))}, args.write, log),
        measure("demo", synthetic(300, 0), synthetic(60, 9000),
                {"CamVid val": camvid("val"), "photos": photo_set}, args.write, log,
                {"small scenes (64×96, 96×128, 128×192)": synthetic(60, 7000, ((64, 96), (96, 128), (128, 192)))}),
    ]
    if args.json:
        for r in results:
            print(json.dumps({**r, "provenance": record}))
        return 0
    for r in results:
        print(f"{r['model']}: reference {r['reference_images']} images; {r['inside']} in-domain test images, "
              f"{100 * r['false_alarms']:.1f} % flagged at score > {r['warn_at']} (median score "
              f"{r['median_score_inside']:.2f}; softmax confidence median {r['softmax_confidence_median_inside']:.3f})")
        for label, s in r["false_alarms_more"].items():
            print(f"  also in domain, {label} ({s['images']}): {100 * s['flagged']:.1f} % flagged (median score "
                  f"{s['median_score']:.2f})")
        for label, s in r["sets"].items():
            print(f"  vs {label} ({s['images']}): AUROC {s['auroc']:.3f}, {100 * s['flagged']:.1f} % flagged, median "
                  f"score {s['median_score']:.2f}; softmax confidence AUROC {s['softmax_auroc']:.3f} "
                  f"(median {s['softmax_confidence_median']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
