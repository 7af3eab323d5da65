"""Fine-tuned models that a SIGTERM (a logout, ``kill``) would have dropped: set aside in the scratch
folder, offered at the next start.

A fine-tuned model is the user's work (minutes of compute on their corrections). A close asks about
one neither kept nor reverted (``Finetuner.close_check``); a SIGTERM cannot ask, so the window
writes it — weights and JSON together (``qgn.model.checkpoint.save_model``), with what the panel
knew (``SET_ASIDE``: how it compared, where Keep would have saved it) — into ``finetuned/`` of the
scratch folder (``project_controller.scratch_root``), beside the autosaves. The next start asks
about each: Keep copies it to a new file where Keep would have saved it and predicts with it,
Discard, Later. Nothing here deletes a file: a kept or discarded model moves to ``finetuned/kept/``
or ``finetuned/discarded/`` (move it back to be asked again). No Qt here.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

FOLDER = "finetuned"
KEPT = "kept"
DISCARDED = "discarded"
SET_ASIDE = "set_aside"  # its key in the model JSON's "extra"
MAX_JSON_BYTES = 1 << 20  # a model JSON is a few KB


@dataclass(frozen=True)
class UnkeptModel:
    """A model set aside: its weights' ``path``, ``detail`` (how it compared, or how far it got),
    ``keep_at`` (where the panel's Keep would have saved it), when it was set aside and the model it
    was fine-tuned from (``original``; None where its JSON does not say)."""
    path: Path
    detail: str
    keep_at: Path
    when: float
    original: Path | None = None


def set_aside(base: Path, model, extra: dict, stem: str, detail: str, keep_at: Path) -> Path:
    """Write ``model`` (``extra``: its fine-tune metadata) as ``base/finetuned/<stem>-unkept-<time>``;
    never over another file."""
    from qgn.train.finetune import save_new_model

    folder = Path(base) / FOLDER
    now = time.time()
    extra = {**extra, SET_ASIDE: {"detail": detail, "keep_at": str(keep_at), "when": now}}
    name = f"{stem}-unkept-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    for n in range(1, 1000):
        path = folder / f"{name}{'' if n == 1 else f'-{n}'}.safetensors"
        try:
            return save_new_model(model, path, extra=extra)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for the fine-tuned model in {folder}")


def waiting(base: Path | None, notes: list[str] | None = None) -> list[UnkeptModel]:
    """The models set aside under ``base`` that were neither kept nor discarded, newest first; one
    whose JSON cannot be read, or says what it cannot mean (``"when": "soon"``), is left out (and
    stays as it is), and named in ``notes``."""
    if base is None:
        return []
    found = []
    try:
        paths = sorted((Path(base) / FOLDER).glob("*.safetensors"))
    except OSError:
        return []
    for path in paths:
        try:
            found.append(_read(path))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if notes is not None:
                notes.append(f"{path.with_suffix('.json')} cannot be read ({type(exc).__name__}: {exc}); "
                             "its fine-tuned model is not offered and stays as it is")
    return sorted(found, key=lambda m: -m.when)


def _read(path: Path) -> UnkeptModel:
    json_path = path.with_suffix(".json")
    if json_path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES} bytes")
    extra = json.loads(json_path.read_text(encoding="utf-8"))["config"]["extra"]
    info, original = extra[SET_ASIDE], (extra.get("finetune") or {}).get("from")
    when = float(info.get("when") or 0)
    if when != when:  # NaN
        raise ValueError("its time is not a number")
    return UnkeptModel(path, str(info.get("detail", "")), Path(info.get("keep_at") or path.name), when,
                       Path(original) if original else None)


def copy_to(model: UnkeptModel, dest: Path, free=None) -> Path:
    """Copy the set-aside pair to ``dest`` (.safetensors and .json, written together), never over
    a file — where ``dest`` is taken, at ``free(dest)`` when given (a new name), else FileExistsError
    — then move the pair to ``finetuned/kept/``. Where it was copied."""
    from qgn.fileio import atomic_write_together

    dest = Path(dest)
    if free is not None and (dest.exists() or dest.with_suffix(".json").exists()):
        dest = Path(free(dest))
    for existing in (dest, dest.with_suffix(".json")):
        if existing.exists():
            raise FileExistsError(f"{existing} exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_together([(dest, model.path.read_bytes()), (dest.with_suffix(".json"),
                                                               model.path.with_suffix(".json").read_bytes())])
    move(model, KEPT)
    return dest


def move(model: UnkeptModel, sub: str) -> Path:
    """Move the set-aside pair into ``finetuned/<sub>/`` (a free name there); its new weights path."""
    folder = model.path.parent / sub
    folder.mkdir(exist_ok=True)
    stem = model.path.stem
    for n in range(1, 1000):
        target = folder / f"{stem}{'' if n == 1 else f'-{n}'}.safetensors"
        if not target.exists() and not target.with_suffix(".json").exists():
            break
    os.replace(model.path.with_suffix(".json"), target.with_suffix(".json"))  # the JSON first: the
    os.replace(model.path, target)  # weights left alone are no longer offered (``waiting`` reads the JSON)
    return target
