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

    def to_json(self) -> dict:
        return {
            "acc": self.confusion.accuracy(),
            "miou": self.confusion.miou(),
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
) -> dict[str, SchemeResult]:
    """samples: objects with ``image`` (H, W, 3) uint8 and ``label`` (H, W) ints (ignore excluded)."""
    k = model.config.classes.num_classes
    results = {name: SchemeResult(ConfusionMatrix(k)) for name in schemes}
    for i, sample in enumerate(samples):
        label = np.asarray(sample.label)
        session = ImageSession(model, sample.image, label, device)
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


def format_table(results: dict[str, SchemeResult]) -> str:
    """Eval modes as columns, like the paper's Table 1 (per cent), plus mean decoder GMACs."""
    names = list(results)
    head = "".join(f"{n.upper():>20}" for n in names)
    sub = "".join(f"{'Acc':>10}{'mIoU':>10}" for _ in names)
    vals = "".join(f"{100 * r.confusion.accuracy():>10.2f}{100 * r.confusion.miou():>10.2f}" for r in results.values())
    cost = "".join(f"{r.to_json()['decoder_macs'] / 1e9:>17.3f} GM" for r in results.values())
    return f"{'eval mode':<14}{head}\n{'':<14}{sub}\n{'':<14}{vals}\n{'decoder cost':<14}{cost}"
