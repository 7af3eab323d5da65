"""The README's depth strip: the same image at depths Q5, Q3 and Q1, cropped from real app windows.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/make_depth_strip.py [IMAGE] [--model M]

Runs ``qgn-studio IMAGE --depth D --layers image,prediction,grid --screenshot`` once per depth
(default image: resources/samples/images/scene_01.png), cuts the picture out of each window (the
pixels that differ from the canvas background) and writes docs/screenshots/qgn-studio-depth.png:
the three side by side, each labelled with its depth.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
DEPTHS = (5, 3, 1)
WINDOW = "1600x1000"
GAP = 12
CROP_WIDTH = 720  # each picture in the strip, pixels
BACKGROUND = (30, 31, 34)  # the canvas's background colour, #1e1f22 (qgn_studio/canvas/view.py)


def canvas_picture(window: Image.Image) -> Image.Image:
    """The image shown on the canvas: the bounding box of the non-background pixels inside the
    canvas, which is the region around the window's centre that has the background colour."""
    pixels = np.asarray(window.convert("RGB")).astype(int)
    is_background = (np.abs(pixels - BACKGROUND).sum(axis=-1) == 0)
    h, w = is_background.shape
    _cy, cx = h // 2, w // 2
    # the canvas spans the background-coloured run through the top of its centre column/row
    column = is_background[:, cx]
    top = next(y for y in range(h) if column[y])
    row = is_background[top + 2]
    left = max(x for x in range(cx) if not row[x]) + 1
    right = min(x for x in range(cx, w) if not row[x])
    inside = ~is_background[top:h, left:right]
    inside[:, :2] = inside[:, -2:] = False
    ys, xs = np.nonzero(inside[: int(0.9 * (h - top))])
    return window.crop((left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="the README's depth strip")
    parser.add_argument("image", nargs="?", default=str(ROOT / "resources" / "samples" / "images" / "scene_01.png"))
    parser.add_argument("--model", help="model file (default: the bundled demo model)")
    args = parser.parse_args(argv)
    model = ["--model", args.model] if args.model else []
    crops = []
    with tempfile.TemporaryDirectory() as tmp:
        for depth in DEPTHS:
            shot = Path(tmp) / f"depth{depth}.png"
            subprocess.run([sys.executable, "-m", "qgn_studio", args.image, *model, "--depth", str(depth), "--size", WINDOW,
                            "--layers", "image,prediction,grid", "--screenshot", str(shot)], check=True, cwd=ROOT)
            crop = canvas_picture(Image.open(shot))
            crops.append(crop.resize((CROP_WIDTH, round(crop.height * CROP_WIDTH / crop.width)), Image.LANCZOS))
    height = max(c.height for c in crops)
    label_h = 34
    font = ImageFont.load_default(size=20)
    strip = Image.new("RGB", (sum(c.width for c in crops) + GAP * (len(crops) - 1), height + label_h), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    x = 0
    for depth, crop in zip(DEPTHS, crops):
        strip.paste(crop, (x, label_h))
        draw.text((x + 4, 6), f"depth Q{depth}: cells down to {2 ** depth} px", fill=(230, 230, 230), font=font)
        x += crop.width + GAP
    out = ROOT / "docs" / "screenshots" / "qgn-studio-depth.png"
    strip.save(out, optimize=True)
    print(f"wrote {out} ({strip.width}x{strip.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
