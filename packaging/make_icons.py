"""Draw the QGN Studio app icon: the quadtree of a disk, in resources/icons/.

    python packaging/make_icons.py [OUT_DIR]      # default: resources/icons
    python packaging/make_icons.py --platform-icons [OUT_DIR]   # default: build/icons

The first writes the shipped icons; the second the Windows ``.ico`` and macOS ``.icns`` the
PyInstaller spec uses on those systems (build outputs, not committed).

Writes ``qgn-studio.svg`` (the vector icon) and ``qgn-studio-<N>.png`` for every N in
``qgn.resources.ICON_SIZES``. The picture is what the app is about: a square split like a
quadtree around a round object — large cells where a region is uniform, finer ones only along the
boundary. The PNGs are drawn from the same cells as the SVG (with fewer levels at 16–48 px,
where finer cells would blur), 4× supersampled and then reduced.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qgn.resources import ICON_SIZES  # noqa: E402  (after the path set-up above)

BACKGROUND = (16, 27, 45)  # the gaps between cells and the corners' backdrop
OUTSIDE = ((38, 70, 115), (48, 92, 145), (62, 118, 178), (84, 146, 206), (112, 172, 228))
INSIDE = ((214, 96, 64), (231, 121, 74), (240, 149, 88), (245, 176, 108), (249, 202, 134))
DISK_CENTRE = (0.56, 0.56)  # in units of the icon's side
DISK_RADIUS = 0.28
CORNER = 0.18  # corner radius of the rounded square, in units of the side
GAP = 0.012  # gap between cells, in units of the side


@dataclass(frozen=True)
class Cell:
    """A quadtree leaf: level 0 = the whole square; x, y, size in units of the side; inside the disk?"""

    level: int
    x: float
    y: float
    size: float
    inside: bool


def disk_relation(x: float, y: float, size: float) -> str:
    """'inside', 'outside' or 'mixed': how the square [x, x+size]×[y, y+size] meets the disk."""
    cx, cy = DISK_CENTRE
    nearest = math.hypot(min(max(cx, x), x + size) - cx, min(max(cy, y), y + size) - cy)
    farthest = math.hypot(max(abs(cx - x), abs(cx - x - size)), max(abs(cy - y), abs(cy - y - size)))
    if farthest <= DISK_RADIUS:
        return "inside"
    if nearest >= DISK_RADIUS:
        return "outside"
    return "mixed"


def quadtree_cells(max_level: int) -> list[Cell]:
    """The leaves of the disk's quadtree, split at most ``max_level`` times; a mixed cell at the
    last level takes the class of its centre."""
    cells: list[Cell] = []

    def split(level: int, x: float, y: float, size: float) -> None:
        relation = disk_relation(x, y, size)
        if relation == "mixed" and level < max_level:
            half = size / 2
            for dy in (0, half):
                for dx in (0, half):
                    split(level + 1, x + dx, y + dy, half)
            return
        if relation == "mixed":
            centre = math.hypot(x + size / 2 - DISK_CENTRE[0], y + size / 2 - DISK_CENTRE[1])
            relation = "inside" if centre < DISK_RADIUS else "outside"
        cells.append(Cell(level, x, y, size, relation == "inside"))

    split(0, 0.0, 0.0, 1.0)
    return cells


def cell_colour(cell: Cell) -> tuple[int, int, int]:
    ramp = INSIDE if cell.inside else OUTSIDE
    return ramp[min(cell.level, len(ramp) - 1)]


def levels_for(size: int) -> int:
    """How many times the square splits at an icon size (finer cells would blur at small sizes)."""
    return 2 if size <= 32 else 3 if size <= 48 else 4


def render_png(size: int) -> Image.Image:
    """The icon as an RGBA image of ``size``×``size`` pixels."""
    scale = 4
    side = size * scale
    picture = Image.new("RGB", (side, side), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    gap = max(GAP * side, scale * (0.5 if size <= 32 else 1.0))
    for cell in quadtree_cells(levels_for(size)):
        x0, y0 = cell.x * side + gap / 2, cell.y * side + gap / 2
        x1, y1 = (cell.x + cell.size) * side - gap / 2, (cell.y + cell.size) * side - gap / 2
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=cell_colour(cell))
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, side - 1, side - 1), radius=CORNER * side, fill=255)
    picture.putalpha(mask)
    return picture.resize((size, size), Image.LANCZOS)


def rounded_rect_path(x0: float, y0: float, x1: float, y1: float, radii: tuple[float, ...]) -> str:
    """SVG path data of a rectangle whose corners (top-left, top-right, bottom-right, bottom-left)
    are rounded by ``radii`` (0 = square). A path rather than a clip path: SVG Tiny renderers
    (Qt's QtSvg among them) ignore clipping."""
    tl, tr, br, bl = radii
    return (f"M{x0 + tl:.2f},{y0:.2f} H{x1 - tr:.2f} A{tr:.2f},{tr:.2f} 0 0 1 {x1:.2f},{y0 + tr:.2f} "
            f"V{y1 - br:.2f} A{br:.2f},{br:.2f} 0 0 1 {x1 - br:.2f},{y1:.2f} "
            f"H{x0 + bl:.2f} A{bl:.2f},{bl:.2f} 0 0 1 {x0:.2f},{y1 - bl:.2f} "
            f"V{y0 + tl:.2f} A{tl:.2f},{tl:.2f} 0 0 1 {x0 + tl:.2f},{y0:.2f} Z")


def render_svg(max_level: int = 4, side: int = 512) -> str:
    """The icon as SVG text (a ``side``-unit square; same cells and colours as the PNGs)."""
    gap, corner = GAP * side, CORNER * side
    inner = corner - gap / 2  # a cell in a corner of the icon follows the icon's rounded corner
    shapes = []
    for cell in quadtree_cells(max_level):
        x0, y0 = cell.x * side + gap / 2, cell.y * side + gap / 2
        x1, y1 = (cell.x + cell.size) * side - gap / 2, (cell.y + cell.size) * side - gap / 2
        left, top = cell.x == 0, cell.y == 0
        right, bottom = cell.x + cell.size >= 1, cell.y + cell.size >= 1
        radii = tuple(inner if a and b else 0.0 for a, b in ((top, left), (top, right), (bottom, right), (bottom, left)))
        r, g, b = cell_colour(cell)
        shapes.append(f'  <path d="{rounded_rect_path(x0, y0, x1, y1, radii)}" fill="#{r:02x}{g:02x}{b:02x}"/>')
    r, g, b = BACKGROUND
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" viewBox="0 0 {side} {side}">',
        "  <title>QGN Studio</title>",
        f'  <rect width="{side}" height="{side}" rx="{corner:.2f}" fill="#{r:02x}{g:02x}{b:02x}"/>',
        *shapes,
        "</svg>",
        "",
    ])


def write_platform_icons(out: Path) -> list[Path]:
    """``qgn-studio.ico`` (Windows) and ``qgn-studio.icns`` (macOS), each holding every size."""
    out.mkdir(parents=True, exist_ok=True)
    images = {size: render_png(size) for size in ICON_SIZES}
    largest = images[max(ICON_SIZES)]
    others = [images[size] for size in ICON_SIZES if size != max(ICON_SIZES)]
    ico, icns = out / "qgn-studio.ico", out / "qgn-studio.icns"
    ico_sizes = [(size, size) for size in ICON_SIZES if size <= 256]  # the ICO format stops at 256
    largest.save(ico, sizes=ico_sizes, append_images=others)
    largest.save(icns, append_images=others)
    return [ico, icns]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--platform-icons"]:
        written = write_platform_icons(Path(argv[1]) if len(argv) > 1 else ROOT / "build" / "icons")
        print("wrote " + ", ".join(map(str, written)))
        return 0
    out = Path(argv[0]) if argv else ROOT / "resources" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    (out / "qgn-studio.svg").write_text(render_svg(), encoding="utf-8")
    for size in ICON_SIZES:
        render_png(size).save(out / f"qgn-studio-{size}.png", optimize=True)
    print(f"wrote {out}/qgn-studio.svg and {len(ICON_SIZES)} PNGs ({', '.join(map(str, ICON_SIZES))} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
