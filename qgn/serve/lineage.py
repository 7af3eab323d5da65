"""A served model's versions: their names (``model_version_name``; ``…-ls<n>`` for the n-th
fine-tuned one: ``finetuned_number``, ``finetuned_files``), the chain of fine-tunes that led to one
(``lineage``), and the version served (``ServedModel``)."""
from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServedModel:
    """One model version: its name (``model_version``), weights file and loaded network, and its
    domain reference (``qgn.domain.DomainReference``; None: its images are not checked), loaded
    once with the version (``QGNBackend.served``)."""

    version: str
    path: Path
    model: object
    reference: object = None


def model_version_name(path: Path, bundled: str | None = None) -> str:
    return f"qgn-{bundled or Path(path).stem}"


def finetuned_number(path: Path, original: Path) -> int | None:
    """n of a fine-tuned version's file ``<original stem>-ls<n>.safetensors``; None for another name."""
    match = re.fullmatch(re.escape(Path(original).stem) + r"-ls([1-9][0-9]{0,8})\.safetensors", Path(path).name)
    return int(match.group(1)) if match else None


def finetuned_files(folder: Path, original: Path) -> list[tuple[int, Path]]:
    """(n, path) of the fine-tuned versions' files in ``folder``, n ascending."""
    found = [(finetuned_number(p, original), p) for p in folder.glob(glob.escape(Path(original).stem) + "-ls*.safetensors")]
    return sorted((n, p) for n, p in found if n is not None and p.is_file())


def lineage(path: Path, original: Path, limit: int) -> list[Path] | None:
    """The models from the first fine-tune of ``original`` to ``path``, each fine-tuned from the
    one before (its JSON's ``extra.finetune.from``); None when that chain does not reach ``original``."""
    from qgn.model.checkpoint import load_config
    from qgn.train.finetune import same_file

    chain = []
    for _ in range(limit):
        chain.append(path)
        try:
            source = load_config(path).extra.get("finetune", {}).get("from")
        except (OSError, ValueError, AttributeError):
            return None
        if not isinstance(source, str) or not source:
            return None
        if same_file(Path(source), Path(original)):
            return chain[::-1]
        path = Path(source)
    return None
