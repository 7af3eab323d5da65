"""Evaluation of a model under several propagation schemes at once (the paper's Table 1).

Each image is encoded once; every scheme then runs on the same cached encoder features
(``ImageSession``), so evaluating All, GTC and PC together costs little more than All alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from qgn.infer import ImageSession
from qgn.metrics import ConfusionMatrix
from qgn.propagation import Scheme


@dataclass
class SchemeResult:
    """Accumulated over a dataset: confusion matrix, and mean cost per image."""

    confusion: ConfusionMatrix
    sites: list[int] = field(default_factory=list)
    macs: list[int] = field(default_factory=list)
    decoder_macs: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def to_json(self, class_names=None) -> dict:
        """Accuracy, mIoU and mean costs; with ``class_names``, the per-class IoU too (None where a
        class is absent from both the ground truth and the prediction)."""
        extra = {}
        if class_names is not None:
            iou = self.confusion.iou()
            extra["class_iou"] = {n: (None if not np.isfinite(v) else float(v)) for n, v in zip(class_names, iou)}
        return {
            "acc": self.confusion.accuracy(),
            "miou": self.confusion.miou(),
            **extra,
            "active_sites": float(np.mean(self.sites)) if self.sites else 0.0,
            "macs": float(np.mean(self.macs)) if self.macs else 0.0,
            "decoder_macs": float(np.mean(self.decoder_macs)) if self.decoder_macs else 0.0,
            "seconds": float(np.mean(self.seconds)) if self.seconds else 0.0,
        }


def evaluate(
    model,
    samples: Iterable,
    schemes: dict[str, Scheme],
    device=None,
    progress: Callable[[int], None] | None = None,
    at_image_size: bool = False,
) -> dict[str, SchemeResult]:
    """samples: objects with ``image`` (H, W, 3) uint8 and ``label`` (H, W) ints (ignore excluded).
    ``at_image_size``: run the model at each image's own size (its working scale off)."""
    k = model.config.classes.num_classes
    results = {name: SchemeResult(ConfusionMatrix(k)) for name in schemes}
    for i, sample in enumerate(samples):
        label = np.asarray(sample.label)
        session = ImageSession(model, sample.image, label, device, at_image_size=at_image_size)
        for name, scheme in schemes.items():
            pred = session.run(scheme)
            cost = pred.cost()
            res = results[name]
            res.confusion.add(label, pred.label())
            res.sites.append(sum(cost.active_sites.values()))
            res.macs.append(cost.total_macs)
            res.decoder_macs.append(cost.total_decoder_macs)
            res.seconds.append(cost.seconds)
        if progress:
            progress(i + 1)
    return results


def evaluation_record(results: dict[str, SchemeResult], class_names, data: str, split: str, images: int,
                      scale: float = 1.0) -> dict:
    """What a model's JSON keeps of an evaluation (``extra.evaluation``; ``qgn models`` shows it)."""
    import datetime

    return {
        "data": data, "split": split, "images": images, "scale": scale,
        "date": datetime.date.today().isoformat(),
        "modes": {name: r.to_json(class_names) for name, r in results.items()},
    }


def format_class_table(results: dict[str, SchemeResult], class_names) -> str:
    """Per-class IoU (per cent), one row per class, eval modes as columns."""
    names = list(results)
    ious = {n: r.confusion.iou() for n, r in results.items()}
    width = max(12, max(len(c) for c in class_names) + 2)
    lines = [f"{'IoU %':<{width}}" + "".join(f"{n.upper():>10}" for n in names)]
    for i, cls in enumerate(class_names):
        cells = "".join(f"{100 * ious[n][i]:>10.2f}" if np.isfinite(ious[n][i]) else f"{'–':>10}" for n in names)
        lines.append(f"{cls:<{width}}{cells}")
    return "\n".join(lines)


def format_table(results: dict[str, SchemeResult]) -> str:
    """Eval modes as columns, like the paper's Table 1 (per cent), plus mean decoder GMACs."""
    names = list(results)
    head = "".join(f"{n.upper():>20}" for n in names)
    sub = "".join(f"{'Acc':>10}{'mIoU':>10}" for _ in names)
    vals = "".join(f"{100 * r.confusion.accuracy():>10.2f}{100 * r.confusion.miou():>10.2f}" for r in results.values())
    cost = "".join(f"{r.to_json()['decoder_macs'] / 1e9:>17.3f} GM" for r in results.values())
    return f"{'eval mode':<14}{head}\n{'':<14}{sub}\n{'':<14}{vals}\n{'decoder cost':<14}{cost}"
