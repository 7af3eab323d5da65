"""Class sets: the names, colours and ignore value of a label space.

A label map holds class ids ``0..k-1`` plus, optionally, one *ignore* value (e.g. 255, or 11 for
CamVid's "void") that is not a class: it is excluded from losses and metrics but kept losslessly
in every representation.
"""
from __future__ import annotations

import colorsys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

RGB = tuple[int, int, int]


def default_palette(n: int) -> tuple[RGB, ...]:
    """``n`` well-separated colours (golden-angle hues, alternating lightness)."""
    colours = []
    for i in range(n):
        h = (i * 0.618033988749895) % 1.0
        light = 0.45 if i % 2 else 0.6
        r, g, b = colorsys.hls_to_rgb(h, light, 0.75)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colours)


#: The longest class name, in UTF-8 bytes: a label, not a document (a .qgt file's length bound
#: counts on it, and every writer of a project's labels would fail on a longer one).
MAX_CLASS_NAME_BYTES = 4096


@dataclass(frozen=True)
class ClassSet:
    """Names and colours of ``k`` classes, and the ignore value of the label maps that use them.

    names:        k class names, index = class id.
    palette:      k RGB triples (0..255), index = class id.
    ignore_index: the label value meaning "no class" (None when the maps have none).
    ignore_color: colour used to draw ignore pixels.
    """

    names: tuple[str, ...]
    palette: tuple[RGB, ...] = field(default=())
    ignore_index: int | None = None
    ignore_color: RGB = (0, 0, 0)

    def __post_init__(self):
        names = tuple(str(n) for n in self.names)
        object.__setattr__(self, "names", names)
        palette = tuple(tuple(int(c) for c in rgb) for rgb in self.palette) or default_palette(len(names))
        if len(palette) != len(names):
            raise ValueError(f"ClassSet: {len(names)} names but {len(palette)} palette colours")
        for rgb in palette:
            if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
                raise ValueError(f"ClassSet: palette colour {rgb} is not an RGB triple in 0..255")
        object.__setattr__(self, "palette", palette)
        for i, name in enumerate(names):
            if len(name.encode("utf-8", "surrogatepass")) > MAX_CLASS_NAME_BYTES:
                raise ValueError(f"ClassSet: the name of class {i} ({name[:40]!r}…) is longer than "
                                 f"{MAX_CLASS_NAME_BYTES} bytes; shorten it")
        check_unique_names(names, "ClassSet")
        # every writer (a .qgt's class block: one byte per channel, a whole-number ignore value)
        # takes these as they are: a bad one would be written into files no reader accepts
        ignore_color = tuple(int(c) for c in self.ignore_color)
        if len(ignore_color) != 3 or not all(0 <= c <= 255 for c in ignore_color):
            raise ValueError(f"ClassSet: ignore colour {self.ignore_color!r} is not an RGB triple in 0..255")
        object.__setattr__(self, "ignore_color", ignore_color)
        if self.ignore_index is not None:
            if isinstance(self.ignore_index, bool) or not hasattr(self.ignore_index, "__index__"):
                raise ValueError(f"ClassSet: ignore_index {self.ignore_index!r} is not a whole number")
            object.__setattr__(self, "ignore_index", int(self.ignore_index))
        if self.ignore_index is not None and 0 <= self.ignore_index < len(names):
            raise ValueError(
                f"ClassSet: ignore_index {self.ignore_index} collides with class id (0..{len(names) - 1})"
            )

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @classmethod
    def generic(cls, k: int, ignore_index: int | None = None) -> "ClassSet":
        """Classes named ``class 0`` … ``class k-1`` with the default palette."""
        return cls(tuple(f"class {i}" for i in range(k)), (), ignore_index)

    def to_json(self) -> dict:
        return {
            "names": list(self.names),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
            "ignore_color": list(self.ignore_color),
        }

    @classmethod
    def from_json(cls, obj: dict) -> "ClassSet":
        """The classes ``to_json`` wrote (project.json's, a checkpoint's, a class-edit journal's): saved
        data, read exactly as every earlier version read it - no "ignore_index": none; any number of
        names, none included (``Project.create`` with no classes writes ``[]``); a name as ``ClassSet``
        takes it (``name_key``'s rule). What opened once opens still. A class list a user *gives* in
        JSON (``--classes x.json``, Cityscapes' classes.json) enters through ``classes_from_json``."""
        return cls(
            tuple(obj["names"]),
            tuple(tuple(c) for c in obj.get("palette", ())),
            obj.get("ignore_index"),
            tuple(obj.get("ignore_color", (0, 0, 0))),
        )


def is_json_rgb(value) -> bool:
    """Whether ``value``, read from JSON, is a colour as the files write one: a list of three whole
    numbers in 0..255 (not 1.5, "7", true or null, which ``int`` would round, parse or refuse)."""
    return isinstance(value, list) and len(value) == 3 and all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)


def name_key(name: str) -> str:
    """When two class names of saved data are the same name: equal after trimming spaces and
    ignoring case. Every reader of saved data (``ClassSet``, project.json, a .qgt, a checkpoint, a
    class-edit journal) keeps this rule, so that what opened once opens still; the stricter rule of
    names that enter is ``door_name_key``."""
    return str(name).strip().casefold()


def door_name_key(name: str) -> str:
    """When a class name that enters (an importer's, a classes file's, a new or renamed class) is the
    same name as another: ``name_key`` that also ignores the Unicode spelling of a character ("é" as
    one code point or as "e" and a combining accent: NFC). Only at the door: classes saved before
    under both spellings still open (and one can be renamed)."""
    import unicodedata

    return unicodedata.normalize("NFC", name_key(unicodedata.normalize("NFC", str(name))))


#: Characters no class name holds: every exporter writes a name on one line of a text file or in XML
#: (CVAT's labelmap.txt, classes.txt, Label Studio's config), and a person reads it in one line —
#: control characters (line breaks, tabs, NUL), the Unicode line/paragraph separators, lone
#: surrogates, and the bidirectional overrides that make a name read as another.
_NOT_IN_A_NAME = ("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def class_name_problem(name) -> str | None:
    """Why ``name`` cannot be a class name, or None: not text, empty or only spaces, spaces around
    it, a character of ``_NOT_IN_A_NAME``, or longer than ``MAX_CLASS_NAME_BYTES``. Such a name is
    refused where it enters (every importer, class files, class edits), so that every exporter can
    write every class as it is."""
    import re

    if not isinstance(name, str):
        return f"is {name!r}; expected text"
    if not name.strip():
        return "is empty" if not name else f"is only spaces ({name!r})"
    bad = re.search(_NOT_IN_A_NAME, name)
    if bad:
        what = "a line break" if bad.group() in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else \
            "a tab" if bad.group() == "\t" else "a control character"
        return f"{_shown_name(name)} holds {what} ({bad.group()!r})"
    if name != name.strip():
        return f"{_shown_name(name)} has spaces around it"
    if len(name.encode("utf-8")) > MAX_CLASS_NAME_BYTES:
        return f"{_shown_name(name)} is longer than {MAX_CLASS_NAME_BYTES} bytes"
    return None


def _shown_name(name: str) -> str:
    return repr(name) if len(name) <= 60 else repr(name[:57]) + "…"


def check_class_names(names, source, lines=None) -> None:
    """ValueError naming ``source`` (and the line, with ``lines``) when a name of ``names`` cannot be
    a class name (``class_name_problem``) or two are the same name (``check_unique_names``): one
    line a person can act on, before anything is imported under them."""
    for i, name in enumerate(names):
        check_class_name(name, f"{source} line {lines[i]}" if lines is not None else str(source))
    check_unique_names(names, source, lines, key=door_name_key)


def check_class_name(name, where: str, what: str = "the class name") -> None:
    """ValueError "``where``: ``what`` …" when ``name`` cannot be a class name (``class_name_problem``)."""
    problem = class_name_problem(name)
    if problem is not None:
        raise ValueError(f"{where}: {what} {problem}; a class name is one line of text without control characters "
                         "or surrounding spaces (change it where it is written and try again)")


def find_class(classes: "ClassSet", name: str) -> int | None:
    """The id of the class of ``classes`` that is ``name`` (the same name: ``name_key``, so another
    writer's case-only rename, 'road' to 'Road', is the same class), or None."""
    key = name_key(name)
    return next((i for i, other in enumerate(classes.names) if name_key(other) == key), None)


def check_unique_names(names, source, lines=None, key=name_key) -> None:
    """ValueError naming ``source`` (and the line, with ``lines``: the line number of each name)
    when two class names are the same name (``key``: ``name_key`` for saved data,
    ``door_name_key`` where names enter): a file that reads classes by name would silently move the
    pixels of one onto the other."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        same = key(name)
        if same in seen:
            j = seen[same]
            if lines is not None:
                where = f"{source} line {lines[i]}: class {name!r} repeats {names[j]!r} of line {lines[j]}"
            else:
                where = f"{source}: classes {j} and {i} are both named {name!r}"
            if name != names[j] and not (name + names[j]).isascii():  # "é" and "e" + a combining accent
                where += f" (spelt {ascii(names[j])} and {ascii(name)})"
            raise ValueError(f"{where}; class names must differ (rename or remove one)")
        seen[same] = i


# ---------------------------------------------------------------------------------- classes.txt
DEFAULT_IGNORE_INDEX = 255


def parse_hex_colour(text) -> tuple[int, int, int] | None:
    """``"#rrggbb"`` (surrounding spaces allowed) as (r, g, b); None for anything else."""
    import re

    found = re.fullmatch(r"#([0-9a-fA-F]{6})", text.strip()) if isinstance(text, str) else None
    return tuple(bytes.fromhex(found.group(1))) if found else None


def parse_colour_suffix(line: str) -> tuple[str, tuple[int, int, int] | None]:
    """Split ``"traffic light 250 170 30"`` into ``("traffic light", (250, 170, 30))``."""
    tokens = line.split()
    if len(tokens) >= 4 and all(t.isdigit() for t in tokens[-3:]):
        return " ".join(tokens[:-3]), (int(tokens[-3]), int(tokens[-2]), int(tokens[-1]))
    return line, None


def parse_classes_txt(text: str, source: str = "classes.txt") -> ClassSet:
    """Parse the ``classes.txt`` format (see ``qgn.data.folder``'s docstring) into a ``ClassSet``.

    Classes without a colour get the default palette's colour for their id.
    """
    names: list[str] = []
    lines: list[int] = []
    colours: list[tuple[int, int, int] | None] = []
    ignore_index: int | None = DEFAULT_IGNORE_INDEX
    ignore_line = None  # the number of the line that sets it, if one does
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("ignore:"):
            value = line.split(":", 1)[1].strip()
            if value.lower() == "none":
                ignore_index = None
            elif value.isdigit():
                ignore_index = int(value)
            else:
                raise ValueError(f"{source} line {number}: expected 'ignore: <integer>' or 'ignore: none'")
            ignore_line = number
            continue
        name, colour = parse_colour_suffix(line)
        names.append(name)
        lines.append(number)
        colours.append(colour)
    if not names:
        raise ValueError(f"{source}: no class names (expected one name per line)")
    check_class_names(names, source, lines)
    if ignore_index is not None and ignore_index < len(names):  # ClassSet's own words name no fix
        fix = (f"add a line 'ignore: {max(len(names), 255)}'" if ignore_line is None else
               f"change its line {ignore_line} to 'ignore: {max(len(names), 255)}'")
        where = "the default ignore value" if ignore_line is None else f"the ignore value (line {ignore_line})"
        raise ValueError(f"{source}: {where} {ignore_index} collides with a class id (its {len(names)} classes "
                         f"take 0..{len(names) - 1}); {fix} (any value from {len(names)} up) or 'ignore: none'")
    fallback = default_palette(len(names))
    palette = tuple(colour if colour is not None else fallback[i] for i, colour in enumerate(colours))
    try:
        return ClassSet(names=tuple(names), palette=palette, ignore_index=ignore_index)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from error


#: What ``--classes`` takes as JSON (``classes_from_json``), said where a JSON file is none of it.
JSON_CLASSES_HELP = ('give a JSON list of class names (["road", "sky"]), the classes.json a qgn export writes, '
                     "or a classes.txt (one class name per line)")
MAX_JSON_IGNORE = 65535  # the largest value a label map (16-bit PNG) holds
MAX_JSON_CLASSES = MAX_JSON_IGNORE  # ids 0..65534, and the ignore value above them


def classes_from_json(doc, source: str, entering: bool = True) -> ClassSet:
    """The classes of a JSON class list ``doc`` (parsed) a user gives: a list of names (ids in list
    order), or an object as ``ClassSet.to_json`` writes it (``names``, optional ``palette``,
    ``ignore_index``, ``ignore_color``: a qgn export's classes.json). The one reader of both
    ``--classes x.json`` and Cityscapes' classes.json (which needs a palette, and checks that itself). No palette: the default colours. No ``ignore_index`` (a list has none):
    255, as a classes.txt without an 'ignore:' line - past 255 names refused, asking for an
    object with its ``ignore_index`` (as a classes.txt asks for 'ignore: N'); ``null``: no ignore value.
    ``entering``: names and an ignore value that enter (``check_class_names``, 0..65535); False keeps
    ``name_key``'s rule and any ignore value ``ClassSet`` takes. Saved data (project.json, checkpoints)
    does not come here: ``ClassSet.from_json`` reads it as every earlier version did.
    ValueError naming ``source`` for anything else (a number, an object of another kind, a name that
    is no text, a colour that is none, more than 65535 classes, an ignore value past 65535)."""
    if isinstance(doc, list):
        doc = {"names": doc}
    if not (isinstance(doc, dict) and isinstance(doc.get("names"), (list, tuple))):
        kind = {dict: "an object without a list of \"names\"", str: "a text", bool: "true or false"}.get(
            type(doc), "a number" if isinstance(doc, (int, float)) else "null")
        raise ValueError(f"{source}: the JSON holds {kind}, not a class list; {JSON_CLASSES_HELP}")
    names, palette = list(doc["names"]), doc.get("palette", [])
    ignore, ignore_colour = doc.get("ignore_index", DEFAULT_IGNORE_INDEX), doc.get("ignore_color", [0, 0, 0])
    _check_json_names(names, source, entering)
    if not isinstance(palette, (list, tuple)) or (palette and len(palette) != len(names)) or \
            not all(is_json_rgb(list(c) if isinstance(c, tuple) else c) for c in palette) or \
            not is_json_rgb(list(ignore_colour) if isinstance(ignore_colour, tuple) else ignore_colour):
        raise ValueError(f"{source}: \"palette\" must list one [r, g, b] colour (whole numbers in 0..255) for each "
                         "of its names, and \"ignore_color\" be one")
    if "ignore_index" not in doc and len(names) > DEFAULT_IGNORE_INDEX:
        raise ValueError(f"{source}: {len(names)} classes take the ids 0..{len(names) - 1}, past the default ignore "
                         f"value 255; give an object with an ignore value past them: "
                         f"{{\"names\": [...], \"ignore_index\": {MAX_JSON_IGNORE}}} (or null for none)")
    if entering and ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int)
                                            or not len(names) <= ignore <= MAX_JSON_IGNORE):
        raise ValueError(f"{source}: \"ignore_index\" is {json_shown(ignore)}; give null or a whole number from "
                         f"{len(names)} (past its class ids) to {MAX_JSON_IGNORE}")
    try:
        return ClassSet(tuple(names), tuple(tuple(c) for c in palette), ignore, tuple(ignore_colour))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _check_json_names(names: list, source: str, entering: bool) -> None:
    """ValueError naming ``source`` where ``names`` is no list of class names: empty, more than
    ``MAX_JSON_CLASSES``, a name that is no text (or, ``entering``, no class name: ``check_class_names``)."""
    if not names:
        raise ValueError(f"{source}: an empty list of classes; {JSON_CLASSES_HELP}")
    if len(names) > MAX_JSON_CLASSES:
        raise ValueError(f"{source}: {len(names)} classes; a class list holds at most {MAX_JSON_CLASSES} classes "
                         f"(ids 0..{MAX_JSON_CLASSES - 1}, and the ignore value {MAX_JSON_IGNORE} above them)")
    bad = next((i for i, name in enumerate(names) if not isinstance(name, str)), None)
    if bad is not None:
        raise ValueError(f"{source}: class {bad} is {json_shown(names[bad])}, not a name; {JSON_CLASSES_HELP}")
    if entering:
        check_class_names(names, source)


def json_shown(value) -> str:
    """A JSON value as a message quotes it: at most 40 characters."""
    import json

    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


# ---------------------------------------------------------------------------------- name matching
VOID = -1  # ``match_class_names``: the source name means "no class" (the ignore value)
UNMATCHED = -2  # ``match_class_names``: the source name matches no class (an error if a pixel uses it)
# Names other tools give the unannotated area: VOC/CVAT/Datumaro "background", labelme "_background_"
# and "__ignore__", Cityscapes "unlabeled", CamVid "Void".
VOID_NAMES = ("background", "ignore", "void", "unlabeled", "unlabelled", "_background_", "__ignore__")


def normalize_class_name(name: str) -> str:
    """The spelling-free key of a class name: lower case without spaces, ``_``, ``-``, ``/`` or ``.``
    (``traffic sign``, ``TrafficSign`` and ``traffic_sign`` are all ``trafficsign``), a character in
    one Unicode spelling (NFC: 'café' as one code point or as 'e' and a combining accent are one
    name; the accent was dropped as no letter, and 'café' in NFD matched 'cafe', not 'café'). The
    combining marks NFC leaves (Mn, Mc, Me: a Hindi or Thai vowel sign, a Hebrew point, 'q' and a
    dot above) are kept: part of the word, not its punctuation ('कार' is not 'कर')."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFC", unicodedata.normalize("NFC", str(name)).lower())
                   if c.isalnum() or unicodedata.category(c) in _MARKS)


_MARKS = ("Mn", "Mc", "Me")  # Unicode's combining marks: nonspacing, spacing, enclosing


def parse_name_map(pairs) -> dict[str, str]:
    """``["old=new", ...]`` (``--map``) as {old: new}; ValueError for an item without ``=``."""
    mapping: dict[str, str] = {}
    for pair in pairs or ():
        old, sep, new = str(pair).partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"--map {pair!r}: expected OLD=NEW (a name in the file = a class name, or 'void')")
        before = next((k for k in mapping if normalize_class_name(k) == normalize_class_name(old.strip())), None)
        if before is not None:  # the last one silently won
            raise ValueError(f"--map {pair}: label {old.strip()!r} is mapped already (--map {before}={mapping[before]}); "
                             "give each label one --map")
        mapping[old.strip()] = new.strip()
    return mapping


#: The label names ``match_class_names`` met with a mapping, while ``names_met`` collects them.
_met: ContextVar[set | None] = ContextVar("qgn_names_met", default=None)


@contextmanager
def names_met():
    """The set of (normalized) label names that ``match_class_names`` matched with a ``--map``
    inside the ``with``: a map whose label no file has is said (it mapped nothing)."""
    met: set[str] = set()
    token = _met.set(met)
    try:
        yield met
    finally:
        _met.reset(token)


def unused_maps(mapping: dict[str, str] | None, met: set[str]) -> list[str]:
    """The ``OLD=NEW`` of each --map whose label no file named (``names_met``)."""
    return [f"{old}={new}" for old, new in (mapping or {}).items() if normalize_class_name(old) not in met]


def is_void_name(name: str) -> bool:
    """``name`` is one of the usual names of the unannotated area (``VOID_NAMES``, any spelling).
    Only a hint: a format says which of its labels is the unannotated area (``match_class_names``'
    ``void``); elsewhere such a name is a class someone annotated pixels with."""
    return normalize_class_name(name) in {normalize_class_name(n) for n in VOID_NAMES}


def match_class_names(names, classes: ClassSet, mapping: dict[str, str] | None = None, void=()) -> list[int]:
    """For each source name, the class id of ``classes`` it means: first through ``mapping``
    ({source name: class name or 'void'}), then ``VOID`` for the positions ``void`` (the labels the
    format itself designates as its unannotated area: CVAT's black ``background``, FiftyOne's mask
    value 0, labelme's ``__ignore__``), then exactly, then by ``normalize_class_name``. ``VOID``
    for the usual names of the unannotated area (``VOID_NAMES``) that are no class here, ``UNMATCHED``
    for a name that means nothing (``unmatched_message`` says so)."""
    mapping = {normalize_class_name(k): v for k, v in (mapping or {}).items()}
    met = _met.get()
    if mapping and met is not None:
        met.update(normalize_class_name(name) for name in names)
    by_key: dict[str, int] = {}
    for i, name in enumerate(classes.names):
        by_key.setdefault(normalize_class_name(name), i)
    for key in unicode_twins(classes):  # a name saved in two Unicode spellings: a third one means neither
        by_key.pop(key, None)
    void = set(void)
    out = []
    for position, name in enumerate(names):
        mapped = normalize_class_name(name) in mapping
        target = mapping.get(normalize_class_name(name), name)
        if position in void and not mapped:
            out.append(VOID)
        elif target in classes.names:
            out.append(classes.names.index(target))
        elif normalize_class_name(target) in by_key:
            out.append(by_key[normalize_class_name(target)])
        elif is_void_name(target):
            out.append(VOID)
        else:
            out.append(UNMATCHED)
    return out


def unicode_twins(classes: ClassSet) -> dict[str, list[str]]:
    """The class names of ``classes`` (saved before the door refused them) that are one name in two
    Unicode spellings ('café' in NFC and in NFD), by their ``normalize_class_name`` key: a label in a
    third spelling could mean either (``match_class_names`` matches it to neither)."""
    import unicodedata

    by_key: dict[str, list[str]] = {}
    for name in classes.names:
        by_key.setdefault(normalize_class_name(name), []).append(name)
    return {key: names for key, names in by_key.items()
            if len({unicodedata.normalize("NFC", n) for n in names}) < len(names)}


def unmatched_message(name: str, classes: ClassSet, source) -> str:
    """The error for a source label that matches no class: the candidates and the way out."""
    twins = unicode_twins(classes).get(normalize_class_name(name))
    if twins:  # names that look the same: told apart by their code points
        return (f"{source}: label {ascii(name)} could be any of the classes {', '.join(ascii(n) for n in twins)} "
                f"(one name in several Unicode spellings); map it with --map '{name}=<class name>'")
    shown = ", ".join(repr(n) for n in classes.names[:24]) + (" …" if classes.num_classes > 24 else "")
    return (f"{source}: label {name!r} is none of the classes ({shown}); map it with "
            f"--map '{name}=<class name>' (or '{name}=void')")
