"""Datumaro's ``label_colors.txt`` (its Cityscapes and CamVid formats): one ``r g b name`` per line.

The meaning of an index mask written with it is not the line order: Datumaro moves the label whose
colour is black to index 0, or inserts a ``background`` label there when none is black
(datumaro/plugins/data_formats/cityscapes.py ``make_cityscapes_categories`` and camvid.py
``make_camvid_categories``), and its exporter then drops that ``background`` line again
(``save_label_map``: ``self._label_map.pop("background")``). So a mask value ``v`` means
``label_order(entries)[v]`` — reading the lines in file order shifts every class by one.
"""
from __future__ import annotations

from pathlib import Path

from ..classes import ClassSet
from ..fileio import atomic_write_bytes, read_text_within

BACKGROUND = "background"


def read_label_colors(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(name, colour or None) of each line (Datumaro ``parse_label_map``: ``r g b name`` or
    ``name``; the name is the fourth token, so names hold no spaces)."""
    from ..classes import check_unique_names

    entries: list[tuple[str, tuple[int, int, int] | None]] = []
    lines: list[int] = []
    for number, line in enumerate(read_text_within(path, "label map (label_colors.txt)").splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            if len(tokens) > 2:
                entry = (tokens[3], tuple(int(c) for c in tokens[:3]))
                if not all(0 <= c <= 255 for c in entry[1]):
                    raise ValueError
            else:
                entry = (tokens[0], None)
        except (IndexError, ValueError):
            raise ValueError(f"{path} line {number}: expected 'r g b name', got {line!r}") from None
        entries.append(entry)
        lines.append(number)
    if not entries:
        raise ValueError(f"{path}: no labels")
    check_unique_names([n for n, _ in entries], str(path), lines)
    return entries


def label_order(entries) -> list[tuple[str, tuple[int, int, int] | None]]:
    """The labels in the order Datumaro numbers them: the black one (else a new ``background``) first."""
    entries = list(entries)
    black = next((i for i, (_, rgb) in enumerate(entries) if rgb == (0, 0, 0)), None)
    if black is not None:
        entries.insert(0, entries.pop(black))
    elif BACKGROUND not in [n for n, _ in entries]:
        entries.insert(0, (BACKGROUND, (0, 0, 0) if any(rgb for _, rgb in entries) else None))
    else:
        entries.insert(0, entries.pop([n for n, _ in entries].index(BACKGROUND)))
    return entries


def void_positions(order) -> list[int]:
    """The position in ``label_order``'s order of the label that is the unannotated area: the first
    (Datumaro's index 0), when it is black or colourless and has a void name (``background``,
    ``Void``, ``unlabeled``, …). Every other label, void-like name or not, is a class."""
    from ..classes import is_void_name

    name, rgb = order[0]
    return [0] if is_void_name(name) and rgb in ((0, 0, 0), None) else []


def file_name(name: str) -> str:
    """A class name as a label_colors.txt token (whitespace → ``_``; matched back by spelling)."""
    return "_".join(str(name).split())


def label_colors_entries(classes: ClassSet, what: str) -> list[tuple[str, tuple[int, int, int]]]:
    """``background`` (black) then the classes: mask value = class id + 1, void = 0. ValueError when
    a class is black or two names collide (the file could not be read back unambiguously)."""
    from ..classes import name_key

    entries = [(BACKGROUND, (0, 0, 0))] + [(file_name(n), tuple(c)) for n, c in zip(classes.names, classes.palette)]
    names = [name_key(n) for n, _ in entries]
    colours = [c for _, c in entries]
    if BACKGROUND in names[1:]:
        name = classes.names[names.index(BACKGROUND, 1) - 1]
        raise ValueError(f"{what}: class {name!r} would be label_colors.txt's 'background' (black, the unannotated "
                         "area); rename the class (e.g. to 'backdrop') and export again")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"{what}: class names must be distinct and not 'background' once spaces become '_'")
    if len(set(colours)) != len(colours):
        first = {}
        for name, colour in zip([BACKGROUND, *classes.names], colours):
            if colour in first:
                clash = "is black (black is background)" if first[colour] == BACKGROUND else \
                    f"has the colour of {first[colour]!r}"
                raise ValueError(f"{what}: the class {name!r} {clash}; every class needs its own colour, and none "
                                 "may be black: recolour it and export again")
            first[colour] = name
    return entries


def write_label_colors(path: Path, entries) -> Path:
    text = "".join(f"{r} {g} {b} {name}\n" for name, (r, g, b) in entries)
    if path.exists() and path.read_text(encoding="utf-8") != text:
        raise ValueError(f"{path} belongs to an export with other classes; export into an empty folder")
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
