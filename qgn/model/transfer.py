"""Transfer a model to a new class set: keep what it knows, learn only what is new.

``transfer_model(model, classes)`` builds a copy of ``model`` for ``classes``: the encoder and the
decoder (every layer but the prediction heads) are copied unchanged; in each level's head (rows
``0`` = composite, ``c+1`` = class c) the composite row stays, a class whose name exists in both
sets keeps its row (moved to its new id), a new class gets the freshly initialised row of a new
head (``torch.nn.Linear``'s default initialisation), and a class the new set lacks is dropped.

Names match case-insensitively with the usual spellings made equal (``match_key``): case, spaces,
``_`` and ``-``, a plural ``s``, British/American spellings (colour/color, grey/gray), and ``a/b``
alternatives (CamVid's ``sign/symbol`` matches ``sign``). The input model is never modified.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace

import torch

from qgn.classes import ClassSet
from qgn.model.qgn import QGN

_SPELLINGS = {"sidewalk": "pavement", "person": "pedestrian", "cyclist": "bicyclist", "trafficsign": "sign"}


def match_key(name: str) -> str:
    """One spelling of a class name: case-folded, without spaces, ``_`` or ``-``, singular,
    British spellings, a few common synonyms (sidewalk = pavement, person = pedestrian)."""
    key = re.sub(r"[\s_\-.]+", "", str(name).casefold())
    for us, uk in (("color", "colour"), ("gray", "grey"), ("meter", "metre"), ("center", "centre")):
        key = key.replace(us, uk)
    if len(key) > 3 and key.endswith("s") and not key.endswith("ss"):
        key = key[:-1]
    return _SPELLINGS.get(key, key)


def _keys(name: str) -> list[str]:
    """Match keys of a name: the whole name, then each ``/``-separated alternative."""
    parts = [p for p in str(name).split("/") if p.strip()]
    keys = [match_key(name)] + [match_key(p) for p in parts if len(parts) > 1]
    return list(dict.fromkeys(keys))


def match_classes(source: ClassSet, target: ClassSet) -> list[int | None]:
    """For each class of ``target``, the id of the ``source`` class of the same name (see the
    module docstring), or None. Each source class is used once (exact key matches first)."""
    used: set[int] = set()
    found: list[int | None] = [None] * target.num_classes
    source_keys = [_keys(n) for n in source.names]
    for strict in (True, False):
        for t, name in enumerate(target.names):
            if found[t] is not None:
                continue
            tkeys = _keys(name)
            for s, skeys in enumerate(source_keys):
                if s in used:
                    continue
                hit = tkeys[0] == skeys[0] if strict else bool(set(tkeys) & set(skeys))
                if hit:
                    found[t] = s
                    used.add(s)
                    break
    return found


@dataclass(frozen=True)
class TransferReport:
    """kept: (source name, target name) pairs whose head rows were kept; new: target names with
    fresh rows; dropped: source names the target lacks."""

    kept: tuple[tuple[str, str], ...]
    new: tuple[str, ...]
    dropped: tuple[str, ...]

    def to_json(self) -> dict:
        return {"kept": [list(p) for p in self.kept], "new": list(self.new), "dropped": list(self.dropped)}

    def summary(self) -> str:
        kept = ", ".join(a if a == b else f"{a}→{b}" for a, b in self.kept) or "none"
        return (f"kept {len(self.kept)} class(es) ({kept}); new {len(self.new)} ({', '.join(self.new) or 'none'}); "
                f"dropped {len(self.dropped)} ({', '.join(self.dropped) or 'none'})")


def head_layers(model: QGN) -> list[torch.nn.Linear]:
    """The prediction heads of every level (root first): linear layers with k+1 outputs."""
    return [model.decoder.head5] + [model.decoder.levels[key].head for key in model.decoder.levels]


def needs_transfer(model: QGN, classes: ClassSet) -> bool:
    """Whether ``model`` predicts other classes than ``classes`` (names or order differ)."""
    return tuple(model.config.classes.names) != tuple(classes.names)


def transfer_model(model: QGN, classes: ClassSet, seed: int = 0) -> tuple[QGN, TransferReport]:
    """A new model for ``classes`` made from ``model`` (see the module docstring) and what was
    kept, initialised and dropped. The result is in eval mode on ``model``'s device; its config's
    ``extra["transfer"]`` records the report."""
    source = model.config.classes
    matches = match_classes(source, classes)
    config = replace(model.config, classes=classes, extra=copy.deepcopy(model.config.extra))
    with torch.random.fork_rng(devices=[]):  # the fresh rows are seeded; the caller's generator is left alone
        torch.manual_seed(seed)
        new = QGN(config)
    device = next(model.parameters()).device
    new = new.to(device)
    heads_old, heads_new = head_layers(model), head_layers(new)
    head_names = {name for name, module in new.named_modules() if any(module is h for h in heads_new)}
    state = {k: v for k, v in model.state_dict().items() if k.rsplit(".", 1)[0] not in head_names}
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and all(k.rsplit(".", 1)[0] in head_names for k in missing), (missing, unexpected)
    with torch.no_grad():
        for old, fresh in zip(heads_old, heads_new):
            fresh.weight[0] = old.weight[0]  # composite
            fresh.bias[0] = old.bias[0]
            for t, s in enumerate(matches):
                if s is not None:
                    fresh.weight[t + 1] = old.weight[s + 1]
                    fresh.bias[t + 1] = old.bias[s + 1]
    report = TransferReport(
        kept=tuple((source.names[s], classes.names[t]) for t, s in enumerate(matches) if s is not None),
        new=tuple(classes.names[t] for t, s in enumerate(matches) if s is None),
        dropped=tuple(n for i, n in enumerate(source.names) if i not in set(m for m in matches if m is not None)),
    )
    new.config.extra["transfer"] = {"from_classes": list(source.names), **report.to_json()}
    return new.eval(), report
