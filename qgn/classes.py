"""Class sets: the names, colours and ignore value of a label space.

A label map holds class ids ``0..k-1`` plus, optionally, one *ignore* value (e.g. 255, or 11 for
CamVid's "void") that is not a class: it is excluded from losses and metrics but kept losslessly
in every representation.
"""
from __future__ import annotations

import colorsys
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
        return cls(
            tuple(obj["names"]),
            tuple(tuple(c) for c in obj.get("palette", ())),
            obj.get("ignore_index"),
            tuple(obj.get("ignore_color", (0, 0, 0))),
        )
