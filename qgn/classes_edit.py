"""Edits of a class set — add, rename, recolour, merge, delete — and how label values follow them.

A ``ClassEdit`` says what a class set becomes (``before`` → ``after``) and where every label value
of ``before`` goes (``value_map``: each class id and the ignore value → a value of ``after``). Label
maps follow an edit through a lookup table (``remap_label``), so renaming and recolouring never
touch a pixel, merging moves one class's pixels onto another, deleting moves them to another class
or to ignore, and adding a class may move the ignore value (CamVid's ignore 11 would collide with a
12th class; it becomes 255).

Every edit is undoable: ``inverse_of`` gives the edit that undoes it. Merge and delete lose which
pixels held the removed class, so the inverse a project returns (``qgn.project_class_edit``) carries
``restore`` patches: per annotation file, the pixels the edit moved, set back where they still hold
what the edit wrote.

Reading by identity: a ``.qgt`` stores its class names, and ``qgn.quadtree.label_io.read_label_file``
maps its classes onto a class set by *name*, so an annotation written before a rename or a reorder
still reads right.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .classes import RGB, ClassSet, class_name_problem, default_palette, door_name_key
from .label_map import label_dtype

#: The ignore value a class set moves to when a new class takes its old value.
MOVED_IGNORE = 255


@dataclass(frozen=True)
class ClassEdit:
    """One change of a class set.

    before, after: the ClassSets.
    value_map:     {old value: new value} for every class id of ``before`` and its ignore value
                   (when it has one); new values are class ids of ``after`` or its ignore value.
    restore:       {file tag: (index (M,) int64 flat pixel indices, wrote (M,) values of ``after``
                   the forward edit wrote there, value (M,) values of ``after`` to put back)} —
                   applied after ``value_map`` only where the pixel still holds ``wrote``.
                   File tags are ``"annotations/<key>"`` or ``"autosave/<key>"``.
    description:   words for an undo menu ("Rename 'fence' to 'barrier'").
    """

    before: ClassSet
    after: ClassSet
    value_map: dict
    description: str
    restore: dict = field(default_factory=dict)

    def lut(self) -> np.ndarray:
        """(V,) int64 lookup table old value → new value (V = largest old value + 1); -1 where an
        old value has no image (it cannot occur in a valid label map of ``before``)."""
        top = max(self.value_map) + 1
        table = np.full(top, -1, np.int64)
        for old, new in self.value_map.items():
            table[old] = new
        return table

    @property
    def moves_pixels(self) -> bool:
        return any(old != new for old, new in self.value_map.items()) or bool(self.restore)


def _values(classes: ClassSet) -> list[int]:
    return list(range(classes.num_classes)) + ([classes.ignore_index] if classes.ignore_index is not None else [])


def _identity(classes: ClassSet) -> dict:
    return {v: v for v in _values(classes)}


def _check_id(classes: ClassSet, class_id: int) -> int:
    class_id = int(class_id)
    if not 0 <= class_id < classes.num_classes:
        raise ValueError(f"class id {class_id} is not one of 0..{classes.num_classes - 1}")
    return class_id


def _check_new_name(classes: ClassSet, name: str, except_id: int | None = None) -> str:
    name = str(name).strip()
    if not name:
        raise ValueError("a class needs a name")
    problem = class_name_problem(name)
    if problem is not None:
        raise ValueError(f"the class name {problem}; a class name is one line of text without control characters")
    for i, other in enumerate(classes.names):
        if i != except_id and door_name_key(other) == door_name_key(name):
            raise ValueError(f"there is already a class {other!r} (id {i}); class names must differ")
    return name


def rename_class(classes: ClassSet, class_id: int, name: str) -> ClassEdit:
    """Class ``class_id`` gets ``name`` (no pixel changes)."""
    class_id = _check_id(classes, class_id)
    name = _check_new_name(classes, name, class_id)
    names = list(classes.names)
    old, names[class_id] = names[class_id], name
    return ClassEdit(classes, replace(classes, names=tuple(names)), _identity(classes),
                     f"Rename {old!r} to {name!r}")


def recolour_class(classes: ClassSet, class_id: int, rgb: RGB) -> ClassEdit:
    """Class ``class_id`` is drawn in ``rgb`` (no pixel changes)."""
    class_id = _check_id(classes, class_id)
    palette = list(classes.palette)
    palette[class_id] = tuple(int(c) for c in rgb)
    return ClassEdit(classes, replace(classes, palette=tuple(palette)), _identity(classes),
                     f"Recolour {classes.names[class_id]!r}")


def add_class(classes: ClassSet, name: str, rgb: RGB | None = None) -> ClassEdit:
    """A new class ``name`` with id ``k`` (after the others). When the ignore value is ``k`` it
    moves to ``MOVED_IGNORE`` (or ``k + 1`` when that is taken too), and the value map says so."""
    name = _check_new_name(classes, name)
    k = classes.num_classes
    if rgb is None:
        taken = set(classes.palette)
        rgb = next((c for c in default_palette(k + 8) if c not in taken), default_palette(k + 1)[k])
    ignore = classes.ignore_index
    if ignore is not None and ignore == k:
        ignore = MOVED_IGNORE if MOVED_IGNORE > k else k + 1
    after = ClassSet(classes.names + (name,), classes.palette + (tuple(int(c) for c in rgb),), ignore,
                     classes.ignore_color)
    value_map = _identity(classes)
    if classes.ignore_index is not None:
        value_map[classes.ignore_index] = ignore
    return ClassEdit(classes, after, value_map, f"Add class {name!r}")


def delete_class(classes: ClassSet, class_id: int, to: int | None = None) -> ClassEdit:
    """Remove class ``class_id``; its pixels go to class ``to`` (an id of the *current* set) or,
    with ``to=None``, to the ignore value. Ids above ``class_id`` move down by one."""
    class_id = _check_id(classes, class_id)
    if classes.num_classes == 1:
        raise ValueError("a class set needs at least one class; add another before deleting this one")
    if to is None and classes.ignore_index is None:
        raise ValueError(f"deleting {classes.names[class_id]!r} moves its pixels to ignore, but this class set "
                         "has no ignore value; merge it into another class instead")
    if to is not None and _check_id(classes, to) == class_id:
        raise ValueError("a class cannot be merged into itself")
    keep = [i for i in range(classes.num_classes) if i != class_id]
    new_id = {old: new for new, old in enumerate(keep)}
    ignore = classes.ignore_index
    after = ClassSet(tuple(classes.names[i] for i in keep), tuple(classes.palette[i] for i in keep), ignore,
                     classes.ignore_color)
    value_map = dict(new_id)
    value_map[class_id] = ignore if to is None else new_id[to]
    if ignore is not None:
        value_map[ignore] = ignore
    name = classes.names[class_id]
    text = f"Delete class {name!r}" if to is None else f"Merge {name!r} into {classes.names[to]!r}"
    return ClassEdit(classes, after, value_map, text)


def merge_classes(classes: ClassSet, source: int, target: int) -> ClassEdit:
    """Class ``source`` joins class ``target``: its pixels become ``target``'s and it is removed."""
    return delete_class(classes, source, to=target)


def relabel(before: ClassSet, after: ClassSet) -> ClassEdit:
    """Same ids, other names or colours (e.g. several renames at once): ``before`` → ``after``
    without moving a pixel. ValueError unless both have as many classes and one ignore value."""
    if before.num_classes != after.num_classes or before.ignore_index != after.ignore_index:
        raise ValueError(f"relabel keeps the ids: {before.num_classes} classes (ignore {before.ignore_index}) cannot "
                         f"become {after.num_classes} (ignore {after.ignore_index})")
    for i, name in enumerate(after.names):
        if name != before.names[i] and _check_new_name(after, name, i) != name:  # only the names it renames
            raise ValueError(f"the class name {name!r} has spaces around it; a class name is one line of text "
                             "without control characters")
    return ClassEdit(before, after, _identity(before), "Rename classes")


# ------------------------------------------------------------------------------------ label maps
def remap_label(label: np.ndarray, edit: ClassEdit, tag: str | None = None) -> np.ndarray:
    """``label`` (H, W) integer of ``edit.before`` as a new map of ``edit.after``
    (``label_dtype(after)``), then the edit's restore patch for file ``tag``, if any.
    ValueError when the map holds a value ``before`` does not know."""
    label = np.asarray(label)
    table = edit.lut()
    values = np.unique(label)
    bad = values[(values < 0) | (values >= len(table))]
    if len(bad) == 0:
        bad = values[table[values] < 0]
    if len(bad):
        raise ValueError(f"label values {bad[:8].tolist()} are not classes of the set being edited")
    out = table[label].astype(label_dtype(edit.after))
    patch = edit.restore.get(tag) if tag is not None else None
    if patch is not None:
        index, wrote, value = patch
        flat = out.reshape(-1)
        ok = index < flat.size
        index, wrote, value = index[ok], wrote[ok], value[ok]
        same = label.reshape(-1)[index] == wrote  # still what the forward edit wrote (not edited since)
        flat[index[same]] = value[same]
    return out


def inverse_patch(old: np.ndarray, edit: ClassEdit) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The pixels of ``old`` (a map of ``edit.before``) whose class ``edit`` removes — what an undo
    cannot recover from the value map alone — as a restore patch (index, written value, original value) of the inverse edit; None if none."""
    table = edit.lut()
    lost = [v for v in range(edit.before.num_classes) if not _survives(edit, v)]
    if not lost:
        return None
    flat = np.asarray(old).reshape(-1)
    index = np.flatnonzero(np.isin(flat, lost)).astype(np.int64)
    if len(index) == 0:
        return None
    return index, table[flat[index]], flat[index].astype(np.int64)


def _survives(edit: ClassEdit, old_value: int) -> bool:
    """Whether an old value keeps its identity in ``after``: ignore stays ignore; a class survives
    when it maps to a class no other class maps to (a rename, a shifted id), or to the class of
    its own name (the target of a merge)."""
    before, after = edit.before, edit.after
    if old_value == before.ignore_index:
        return True
    new = edit.value_map[old_value]
    if not 0 <= new < after.num_classes:
        return False
    sharing = [v for v, n in edit.value_map.items() if n == new and v != old_value]
    return not sharing or after.names[new] == before.names[old_value]


def inverse_of(edit: ClassEdit) -> ClassEdit:
    """The edit that undoes ``edit`` on class names, colours and surviving classes (pixels of a
    removed class need the restore patches ``qgn.project_class_edit.apply_class_edit`` adds)."""
    before, after = edit.before, edit.after
    value_map = {}
    for old, new in edit.value_map.items():
        if _survives(edit, old) and new not in value_map:
            value_map[new] = old
    for v in _values(after):  # an added class: its pixels go back to ignore (or stay put without one)
        if v not in value_map:
            if before.ignore_index is None:
                raise ValueError(f"undoing {edit.description!r} needs an ignore value for the added class's pixels")
            value_map[v] = before.ignore_index
    return ClassEdit(after, before, value_map, f"Undo {edit.description}")


def relabel_by_name(label: np.ndarray, source: ClassSet, target: ClassSet) -> np.ndarray:
    """A map of ``source`` classes (e.g. a model's prediction) as a map of ``target`` classes:
    each class goes to the ``target`` class of the same name (``qgn.model.transfer.match_classes``:
    case-insensitive, usual spellings), a class ``target`` lacks to its ignore value (ValueError
    when ``target`` has none), ignore to ignore. Returns ``label_dtype(target)``."""
    from .model.transfer import match_classes  # loads torch: only when relabelling

    matches = match_classes(target, source)  # for each source class: its target id or None
    if any(m is None for m in matches) and target.ignore_index is None:
        missing = [source.names[i] for i, m in enumerate(matches) if m is None]
        raise ValueError(f"classes {missing[:5]} have no counterpart and the class set has no ignore value")
    top = max(source.num_classes, (source.ignore_index or 0) + 1)
    table = np.full(top, target.ignore_index if target.ignore_index is not None else 0, np.int64)
    for i, m in enumerate(matches):
        if m is not None:
            table[i] = m
    label = np.asarray(label).astype(np.int64)
    if label.min() < 0 or label.max() >= top:
        raise ValueError(f"label values outside 0..{top - 1} are not values of the source class set")
    return table[label].astype(label_dtype(target))
