"""Model files: weights as safetensors + architecture/classes as JSON, side by side. Never pickle.

``save_model("m.safetensors", model)`` writes ``m.safetensors`` and ``m.json``; both writes are
atomic (temporary file, fsync, rename), so an interrupted save leaves the previous files intact.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from qgn.fileio import atomic_write_bytes

from qgn.model.qgn import QGN, QGNConfig

FORMAT = "qgn-model"
FORMAT_VERSION = 1


def config_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def save_model(path: str | os.PathLike, model: QGN, extra: dict | None = None) -> Path:
    """Save weights (+ BN buffers) to ``path`` (.safetensors) and the config to ``path``.json."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors; got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state, metadata={"format": FORMAT}))
    config = model.config.to_json()
    if extra:
        config["extra"] = {**config.get("extra", {}), **extra}
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "config": config}
    atomic_write_bytes(config_path(path), json.dumps(doc, indent=1).encode())
    return path


def load_config(path: str | os.PathLike) -> QGNConfig:
    cpath = config_path(path)
    if not cpath.is_file():
        raise FileNotFoundError(f"model config {cpath} not found (a model is NAME.safetensors + NAME.json)")
    try:
        doc = json.loads(cpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{cpath} is not valid JSON: {exc}") from exc
    if doc.get("format") != FORMAT:
        raise ValueError(f"{cpath} is not a QGN model config (format {doc.get('format')!r})")
    if doc.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{cpath} has model format version {doc['version']}; this qgn reads up to {FORMAT_VERSION}")
    return QGNConfig.from_json(doc["config"])


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> QGN:
    """Rebuild a QGN from ``path`` (.safetensors) and its .json; in eval mode on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model weights {path} not found")
    model = QGN(load_config(path))
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError(f"{path} does not match its config: {str(exc).splitlines()[1].strip()}") from exc
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match its config: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return model.to(device).eval()
