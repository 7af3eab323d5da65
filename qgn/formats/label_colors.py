"""Datumaro's ``label_colors.txt`` (its Cityscapes and CamVid formats): one ``r g b name`` per line.

The meaning of an index mask written with it is not the line order: Datumaro moves the label whose
colour is black to index 0, or inserts a ``background`` label there when none is black
(datumaro/plugins/data_formats/cityscapes.py ``make_cityscapes_categories`` and camvid.py
``make_camvid_categories``), and its exporter then drops that ``background`` line again
(``save_label_map``: ``self._label_map.pop("background")``). So a mask value ``v`` means
``label_order(entries)[v]`` — reading the lines in file order shifts every class by one.

A name is one token (``parse_label_map`` takes the 4th token as the name and every token but the last
as the colour, so ``250 170 30 traffic light`` is an error there): names are written with ``_`` for
their spaces. Datumaro's own label file that holds any name is ``dataset_meta.json``
(datumaro/util/meta_file_util.py ``parse_meta_file``: ``labels``, ``label_map`` {id: name},
``segmentation_colors`` indexed by id), which its CamVid and Cityscapes readers take *instead of*
``label_colors.txt`` when the folder has one (``_load_categories``: ``has_meta_file``). So an export
whose names have spaces writes it too, the same labels in the same order and colours under their
own names, and ``read_label_map`` reads a folder as Datumaro does.
"""
from __future__ import annotations

from pathlib import Path

from ..classes import ClassSet
from ..fileio import atomic_write_bytes, read_text_within

BACKGROUND = "background"
LABEL_COLORS = "label_colors.txt"
DATASET_META = "dataset_meta.json"


def read_label_colors(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(name, colour or None) of each line (Datumaro ``parse_label_map``: ``r g b name`` or
    ``name``; the name is the fourth token, so names hold no spaces)."""
    return parse_label_colors(read_text_within(path, "label map (label_colors.txt)"), path)


def parse_label_colors(text: str, path: Path | str = LABEL_COLORS) -> list[tuple[str, tuple[int, int, int] | None]]:
    """``read_label_colors`` of the file's ``text``."""
    from ..classes import check_class_names

    entries: list[tuple[str, tuple[int, int, int] | None]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
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
    check_class_names([n for n, _ in entries], str(path), lines)
    return entries


def read_label_map(root: Path) -> tuple[list[tuple[str, tuple[int, int, int] | None]], Path] | None:
    """(entries, the file read) of a Datumaro dataset folder, as Datumaro reads it: its
    ``dataset_meta.json`` when it has one, else its ``label_colors.txt``; None with neither."""
    path = label_map_file(root)
    if path is None:
        return None
    return (read_dataset_meta(path) if path.name == DATASET_META else read_label_colors(path)), path


def label_map_file(root: Path) -> Path | None:
    """The file Datumaro takes the labels of the folder ``root`` from (``read_label_map``), or None."""
    return next((p for p in (root / DATASET_META, root / LABEL_COLORS) if p.is_file()), None)


def read_dataset_meta(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(name, colour or None) of each label of a Datumaro ``dataset_meta.json``, in Datumaro's order
    (``parse_meta_file``: ``labels`` first, then ``label_map`` in its order, each coloured by
    ``segmentation_colors[id]``)."""
    from ..classes import check_class_names
    from .guards import load_json

    doc = load_json(path, 16 << 20)
    bad = ValueError(f"{path}: expected Datumaro's dataset meta ({{'labels': [names], 'label_map': {{id: name}}, "
                     "'segmentation_colors': [[r, g, b], ...]}})")
    if not isinstance(doc, dict):
        raise bad
    labels, by_id, colours = doc.get("labels", []), doc.get("label_map", {}), doc.get("segmentation_colors", [])
    if not (isinstance(labels, list) and isinstance(by_id, dict) and isinstance(colours, list)):
        raise bad
    entries: dict[str, tuple[int, int, int] | None] = {}
    for name in labels:
        if not isinstance(name, str) or not name:
            raise bad
        entries[name] = None
    for key, name in by_id.items():
        if not isinstance(name, str) or not name or not str(key).isdigit():
            raise bad
        entries[name] = None
        if any(colours) and int(key) < len(colours) and colours[int(key)] is not None:
            rgb = colours[int(key)]
            if not (isinstance(rgb, list) and len(rgb) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in rgb)):
                raise ValueError(f"{path}: segmentation_colors[{key}] is {rgb!r}; expected [r, g, b] in 0..255")
            entries[name] = tuple(rgb)
    if not entries:
        raise ValueError(f"{path}: no labels")
    check_class_names(list(entries), str(path))
    return list(entries.items())


def dataset_meta_data(entries) -> bytes:
    """``dataset_meta.json`` of ``entries`` ((name, colour) in mask order, as ``save_meta_file``
    writes it: ``labels``, ``label_map`` {id: name}, ``segmentation_colors``, ``background_label``)."""
    import json

    names = [n for n, _ in entries]
    doc = {"labels": names, "label_map": {str(i): n for i, n in enumerate(names)},
           "segmentation_colors": [list(c) for _, c in entries]}
    black = next((i for i, (_, c) in enumerate(entries) if tuple(c) == (0, 0, 0)), None)
    if black is not None:
        doc["background_label"] = str(black)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def write_dataset_meta(path: Path, entries) -> Path:
    """``dataset_meta.json`` of ``entries`` (``dataset_meta_data``) at ``path``, unless it holds them
    already; ValueError when it holds another export's (``check_export_file``)."""
    from .base import check_export_file, same_json

    data = dataset_meta_data(entries)
    if not check_export_file(path, data, same_json):
        atomic_write_bytes(path, data)
    return path


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


def label_files(out_dir: Path, classes: ClassSet, what: str) -> tuple[list, list[tuple[Path, bytes, object]]]:
    """(``label_colors_entries``, the files an export of ``classes`` into ``out_dir`` shares as
    (path, data, parse), for ``check_export_file``): ``label_colors.txt``, and ``dataset_meta.json``
    when a class name is not its own ``label_colors.txt`` spelling (see the module docstring).
    Reads and writes nothing."""
    from .base import same_json

    entries = label_colors_entries(classes, what)
    files = [(Path(out_dir) / LABEL_COLORS, label_colors_data(entries), parse_label_colors)]
    exact = [(BACKGROUND, (0, 0, 0)), *zip(classes.names, classes.palette)]
    if [n for n, _ in exact] != [n for n, _ in entries]:
        files.append((Path(out_dir) / DATASET_META, dataset_meta_data(exact), same_json))
    return entries, files


def write_label_files(out_dir: Path, classes: ClassSet, what: str) -> tuple[list, list[Path]]:
    """(``label_colors_entries``, the files written): ``label_files``, each checked
    (``check_export_file``) before any is written - a ``dataset_meta.json`` of another export is
    refused with ``label_colors.txt`` as it was."""
    from .base import check_export_file, out_file

    entries, files = label_files(out_dir, classes, what)
    kept = [check_export_file(path, data, parse) for path, data, parse in files]
    paths = []
    for (path, data, _), there in zip(files, kept):
        path = out_file(path.parent, path.name)
        if not there:
            atomic_write_bytes(path, data)
        paths.append(path)
    return entries, paths


def label_colors_data(entries) -> bytes:
    """``label_colors.txt`` of ``entries``: ``r g b name`` a line."""
    return "".join(f"{r} {g} {b} {name}\n" for name, (r, g, b) in entries).encode("utf-8")


def write_label_colors(path: Path, entries) -> Path:
    """``label_colors.txt`` of ``entries`` at ``path``, unless it holds them already; ValueError when
    it holds another export's (``check_export_file``)."""
    from .base import check_export_file

    data = label_colors_data(entries)
    if not check_export_file(path, data, parse_label_colors):
        atomic_write_bytes(path, data)
    return path
