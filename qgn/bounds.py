"""Bounds on the settings a user can type or a file can claim: training and fine-tuning settings
(``--set KEY=VALUE``, a TOML config, ``qgn finetune`` options, the app's fine-tune panel) and the
sizes of a model config (``qgn.model.checkpoint``) are checked for their type and a sane range
before anything runs, so that a typo (``iterations=abc``, ``log_every=0``) or a hostile
value (``batch_size=100000``, ``lr=1e9``, ``input_scale=0``) is one line naming the setting, not a
traceback, gigabytes of memory, or a run that silently trains nothing.
"""
from __future__ import annotations

import math

# name -> (kind, low, high): kind "int", "float" (finite), "bool", "str", "str?" (string or None)
TRAIN_BOUNDS: dict[str, tuple] = {
    "dataset": ("str", None, None), "split": ("str", None, None), "model": ("str", None, None),
    "init": ("str?", None, None), "encoder_weights": ("str?", None, None),
    "iterations": ("int", 1, 10_000_000), "batch_size": ("int", 1, 256),
    "optimizer": ("str", None, None), "lr": ("float", 1e-9, 10.0), "momentum": ("float", 0.0, 0.999),
    "weight_decay": ("float", 0.0, 1.0), "power": ("float", 0.0, 10.0), "scheme": ("str", None, None),
    "weighting": ("str", None, None), "gamma": ("float", 0.0, 100.0), "composite_weight": ("float", 1e-6, 1000.0),
    "scale_min": ("float", 1e-3, 8.0), "scale_max": ("float", 1e-3, 8.0), "flip": ("bool", None, None),
    "crop": ("int", 0, 16384), "synthetic_n": ("int", 1, 10_000_000), "synthetic_size": ("int", 16, 8192),
    "log_every": ("int", 1, 10**9), "checkpoint_every": ("int", 1, 10**9),
    "class_weight_every": ("int", 0, 10**9), "class_weight_images": ("int", 1, 1_000_000),
    "class_balance": ("str", None, None), "input_scale": ("float", 1 / 32, 8.0), "evaluate_split": ("str", None, None),
    "seed": ("int", 0, 2**32 - 1), "out": ("str", None, None),
}

FINETUNE_BOUNDS: dict[str, tuple] = {
    "iterations": ("int", 1, 1_000_000), "batch_size": ("int", 1, 64), "lr": ("float", 1e-9, 10.0),
    "optimizer": ("str", None, None), "scheme": ("str", None, None), "scale_min": ("float", 1e-3, 8.0),
    "scale_max": ("float", 1e-3, 8.0), "flip": ("bool", None, None), "crop": ("int", 0, 16384),
    "seed": ("int", 0, 2**32 - 1), "momentum": ("float", 0.0, 0.999), "weight_decay": ("float", 0.0, 1.0),
    "power": ("float", 0.0, 10.0), "freeze_norm": ("bool", None, None),
}


def check_setting(name: str, value, bound: tuple, what: str = "setting"):
    """``value`` of setting ``name`` checked against ``bound`` (see the tables); ValueError one line."""
    kind, low, high = bound
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{what} {name} is {value!r}; use true or false")
        return value
    if kind in ("str", "str?"):
        if value is None and kind == "str?":
            return value
        if not isinstance(value, str):
            raise ValueError(f"{what} {name} is {value!r}; expected a text value (in quotes in TOML)")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{what} {name} is {value!r}; expected a whole number in {low}..{high}")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{what} {name} is {value!r}; expected a number in {low:g}..{high:g}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{what} {name} is {value!r}; expected a finite number in {low:g}..{high:g}")
    if not low <= value <= high:
        shown = f"{low}..{high}" if kind == "int" else f"{low:g}..{high:g}"
        raise ValueError(f"{what} {name} is {value!r}; it must be in {shown}")
    return value


def check_settings(values: dict, bounds: dict[str, tuple], what: str = "setting") -> dict:
    """Every known key of ``values`` checked (``check_setting``); returns the checked dict."""
    return {k: (check_setting(k, v, bounds[k], what) if k in bounds else v) for k, v in values.items()}
