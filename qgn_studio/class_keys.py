"""Which key chooses which class while annotating — and why "9 = car" stays car.

Keys ``1``–``9``, ``0`` (``CLASS_KEYS``) go to the first ten classes of a newly installed class set,
unless the settings remember the keys the user had for exactly these class names. After a class
edit (``qgn.classes_edit.ClassEdit``) every surviving class keeps its key, the key of a removed class
is free, and an added class takes the first free key. A mapping is ``{class id: key}``.
"""
from __future__ import annotations

import json

CLASS_KEYS = tuple("1234567890")
SETTING = "annotate/class_keys"
REMEMBERED_SETS = 20


def keys_for(classes, memory: dict) -> dict[int, str]:
    """Class id → key for ``classes`` (None: none): ``memory`` ({"name|name|…": {name: key}}) when it
    holds these names, else 1–9, 0 in order."""
    if classes is None:
        return {}
    remembered = memory.get("|".join(classes.names))
    if remembered:
        where = {name: i for i, name in enumerate(classes.names)}
        keys = {where[name]: key for name, key in remembered.items() if name in where and key in CLASS_KEYS}
        if len(set(keys.values())) == len(keys):
            return keys
    return {i: key for i, key in enumerate(CLASS_KEYS) if i < classes.num_classes}


def carry_keys(keys: dict[int, str], edit) -> dict[int, str]:
    """``keys`` (of ``edit.before``) as keys of ``edit.after`` (see the module docstring)."""
    from qgn.classes_edit import _survives

    out: dict[int, str] = {}
    for old, key in keys.items():
        if old < edit.before.num_classes and _survives(edit, old):
            new = edit.value_map[old]
            if 0 <= new < edit.after.num_classes and new not in out:
                out[new] = key
    images = {edit.value_map[v] for v in range(edit.before.num_classes)}
    free = [k for k in CLASS_KEYS if k not in out.values()]
    for class_id in range(edit.after.num_classes):
        if class_id not in images and class_id not in out and free:  # an added class
            out[class_id] = free.pop(0)
    return out


def remembered(settings) -> dict:
    """The key mappings the settings remember (empty without settings or when unreadable)."""
    if settings is None:
        return {}
    try:
        memory = json.loads(str(settings.value(SETTING, "{}")))
    except ValueError:
        return {}
    return memory if isinstance(memory, dict) else {}


def remember(settings, classes, keys: dict[int, str]) -> None:
    """Keep ``keys`` for ``classes`` in the settings (the latest ``REMEMBERED_SETS`` class sets)."""
    if settings is None:
        return
    memory = remembered(settings)
    memory.pop("|".join(classes.names), None)
    memory["|".join(classes.names)] = {classes.names[i]: k for i, k in keys.items()}
    while len(memory) > REMEMBERED_SETS:
        memory.pop(next(iter(memory)))
    settings.setValue(SETTING, json.dumps(memory))
