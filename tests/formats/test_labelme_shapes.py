"""labelme ``circle`` and ``mask`` shapes, which were refused as "not an area", read as labelme
itself turns them into labels: the reference below is labelme's own ``shape_to_mask`` (circle) and
``shapes_to_label`` (mask) of labelme/_utils/shape.py (wkentaro/labelme @414ad2ad, v7.1.0 and
HEAD: the mask placed at its first point, rounded; whole-number points crop it to
(x2 - x1 + 1) × (y2 - y1 + 1), fractional points keep it whole; clipped to the image), painted in
file order on the whole image with PIL — the reader draws each shape in its box only. Masks are made as labelme's canvas
writes them (labelme/widgets/canvas.py: the box of ``masks_to_bboxes``, ``x2``/``y2`` = max + 1,
and ``mask[y1:y2 + 1, x1:x2 + 1]``, which numpy crops at the image's edge)."""
from __future__ import annotations

import base64
import io
import json
import math

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest

from qgn.classes import ClassSet
from qgn.formats.labelme import read_labelme_document

from hostile_cases import image, labelme_doc, write_json_dataset

CLASSES = ClassSet(("sky", "road", "car"), (), 255)


def png_b64(mask: np.ndarray, mode: str = "1") -> str:
    buffer = io.BytesIO()
    picture = PIL.Image.fromarray(mask.astype(np.uint8) * 255, "L")
    (picture.convert(mode) if mode != "L" else picture).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def labelme_mask(points, raw, height, width) -> np.ndarray:
    """labelme @414ad2ad's mask branch of shapes_to_label, numpy's assignment as it is: a part of the
    mask of one row or column is broadcast over its span, any other smaller part is numpy's ValueError."""
    mask = np.zeros((height, width), dtype=bool)
    point_array = np.asarray(points)
    (x1, y1), (x2, y2) = point_array.round().astype(int)
    if np.array_equal(point_array, np.trunc(point_array)):
        patch_height, patch_width = y2 - y1 + 1, x2 - x1 + 1
    else:
        patch_height, patch_width = raw.shape
    y_start, y_stop = max(y1, 0), min(y1 + patch_height, height)
    x_start, x_stop = max(x1, 0), min(x1 + patch_width, width)
    if y_start < y_stop and x_start < x_stop:
        mask[y_start:y_stop, x_start:x_stop] = raw[y_start - y1:y_stop - y1, x_start - x1:x_stop - x1]
    return mask


def labelme_reference(shapes, height, width) -> np.ndarray:
    """labelme's shapes_to_label of ``shapes`` (class = position in CLASSES), 255 where no shape."""
    cls = np.full((height, width), 255, np.int32)
    for shape in shapes:
        points, kind = shape["points"], shape["shape_type"]
        if kind == "mask":
            raw = np.array(PIL.Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
            mask = labelme_mask(points, raw, height, width)
        else:
            canvas = PIL.Image.fromarray(np.zeros((height, width), dtype=np.uint8))
            draw = PIL.ImageDraw.Draw(canvas)
            xy = [tuple(point) for point in points]
            if kind == "circle":
                (cx, cy), (px, py) = xy
                d = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
                draw.ellipse(((cx - d, cy - d), (cx + d, cy + d)), outline=1, fill=1)
            else:
                draw.polygon(xy=xy, outline=1, fill=1)
            mask = np.array(canvas, dtype=bool)
        cls[mask] = CLASSES.names.index(shape["label"])
    return cls


def doc_of(shapes, width, height) -> dict:
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "a.png", "imageData": None,
            "imageHeight": height, "imageWidth": width}


def shape(label, kind, points, **more) -> dict:
    return {"label": label, "points": points, "shape_type": kind, "group_id": None, "flags": {}, **more}


def test_circles_and_masks_read_as_labelme_draws_them():
    rng = np.random.default_rng(5)
    width, height = 61, 43
    for trial in range(30):
        shapes = []
        for _ in range(6):
            label = CLASSES.names[int(rng.integers(3))]
            kind = rng.choice(["circle", "mask", "polygon"])
            if kind == "circle":
                centre = rng.uniform(-10, 70, 2).round(int(rng.integers(0, 3)))
                rim = centre + rng.uniform(-25, 25, 2).round(1)
                shapes.append(shape(label, "circle", [centre.tolist(), rim.tolist()]))
            elif kind == "mask":
                way = rng.choice(["canvas", "fractional", "other", "thin"])
                if way == "canvas":  # an object on the image, often at its edges, as labelme's canvas writes it
                    obj = np.zeros((height, width), bool)
                    x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
                    obj[y0:y0 + int(rng.integers(1, 30)), x0:x0 + int(rng.integers(1, 40))] = True
                    obj &= rng.random(obj.shape) < 0.7
                    obj[y0, x0] = True
                    (y1, x1), (y2, x2) = np.argwhere(obj).min(0), np.argwhere(obj).max(0) + 1
                    points, patch = [[int(x1), int(y1)], [int(x2), int(y2)]], obj[y1:y2 + 1, x1:x2 + 1]
                else:
                    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 40))
                    if way == "thin":  # one row, one column or one pixel: numpy stretches it over its span
                        h, w = [(1, w), (h, 1), (1, 1)][int(rng.integers(3))]
                    x1, y1 = int(rng.integers(-10, width)), int(rng.integers(-10, height))
                    patch = rng.random((h, w)) < 0.6
                    if way == "fractional":
                        points = [[x1 + 0.3, y1 - 0.2], [x1 + w - 0.6, y1 + h - 1.4]]
                    else:  # whole-number points whose span crops the mask, misses it, stretches a 1-wide one
                        # or overruns the image
                        points = [[x1, y1], [x1 + int(rng.integers(-3, w + 20)), y1 + int(rng.integers(-3, h + 20))]]
                        try:
                            labelme_mask(points, patch, height, width)
                        except ValueError:  # larger than the mask on the image: refused (a test below)
                            points = [[x1, y1], [x1 + w - 1 - int(rng.integers(0, w)), y1 + h - 1]]
                shapes.append(shape(label, "mask", points, mask=png_b64(patch, rng.choice(["1", "L", "P"]))))
            else:
                shapes.append(shape(label, "polygon", rng.uniform(-5, 65, (5, 2)).round(1).tolist()))
        got = read_labelme_document(doc_of(shapes, width, height), CLASSES, "t")
        assert np.array_equal(got, labelme_reference(shapes, height, width)), trial


@pytest.mark.parametrize("edge", ["right", "bottom", "corner"])
def test_a_mask_labelme_wrote_for_an_object_at_the_image_s_edge_reads_as_that_object(edge):
    """labelme's canvas crops the mask at the edge (a column or row fewer than its points span): it was
    refused ('its points span 4×4 pixels but its mask is 3×4'); labelme reads it back as the object."""
    height, width = 8, 12
    obj = np.zeros((height, width), bool)
    obj[{"right": np.s_[2:5, 9:], "bottom": np.s_[5:, 3:7], "corner": np.s_[6:, 10:]}[edge]] = True
    obj[4, 10 if edge != "bottom" else 4] = False  # not a plain box
    (y1, x1), (y2, x2) = np.argwhere(obj).min(0), np.argwhere(obj).max(0) + 1
    patch = obj[y1:y2 + 1, x1:x2 + 1]
    doc = doc_of([shape("car", "mask", [[int(x1), int(y1)], [int(x2), int(y2)]], mask=png_b64(patch))], width, height)
    got = read_labelme_document(doc, CLASSES, "t")
    np.testing.assert_array_equal(got, np.where(obj, 2, 255))


def test_whole_number_points_crop_the_mask_to_their_span_as_labelme_7_1_does():
    """labelme's own test_shapes_to_label_mask_keeps_integer_bbox_extent (tests/unit/utils/shape_test.py):
    a 3×5 mask at [[2, 1], [4, 3]] paints [1:4, 2:5]; it was read whole, [1:4, 2:7]. Fractional
    points keep the whole mask, at the first point rounded."""
    patch = np.ones((3, 5), bool)
    got = read_labelme_document(doc_of([shape("car", "mask", [[2.0, 1.0], [4.0, 3.0]], mask=png_b64(patch))], 20, 20),
                                CLASSES, "t")
    painted = np.full((20, 20), 255)
    painted[1:4, 2:5] = 2
    np.testing.assert_array_equal(got, painted)
    got = read_labelme_document(doc_of([shape("car", "mask", [[2.7, 1.7], [6.3, 3.3]], mask=png_b64(patch))], 20, 20),
                                CLASSES, "t")
    painted = np.full((20, 20), 255)
    painted[2:5, 3:8] = 2
    np.testing.assert_array_equal(got, painted)


def test_a_labelme_folder_with_a_circle_and_a_mask_imports(tmp_path, run_cli):
    doc = labelme_doc()
    doc["shapes"] = [shape("sky", "circle", [[5, 4], [5, 0]]),
                     shape("road", "mask", [[1, 1], [4, 3]], mask=png_b64(np.ones((3, 4), bool)))]
    root = write_json_dataset(tmp_path / "lm", "labelme", doc)
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 0 and "imported 1 of 1" in out, out + err


@pytest.mark.parametrize("bad, said", [
    (shape("sky", "circle", [[5, 4], [5, 4 + 21]]), "a circle of radius 21, more than the 12×8 image's width and "
                                                     "height together; refusing a file built to take hours to draw"),
    (shape("sky", "mask", [[0, 0], [3, 3]], mask=png_b64(np.ones((2, 4), bool))),
     "shapes[2] ('sky'): its points span 4×4 pixels on the image but its mask is 4×2; labelme cannot paint it"),
    (shape("sky", "mask", [[0, 0], [9, 1]], mask=png_b64(np.ones((2, 4), bool))),
     "its points span 10×2 pixels on the image but its mask is 4×2"),
    (shape("sky", "mask", [[0, 0], [3, 3]], mask=png_b64(np.ones((9, 4), bool))),
     "its mask is 4×9 pixels, larger than its 12×8 image"),
    (shape("sky", "mask", [[0, 0], [3, 3]], mask=png_b64(np.ones((4, 4), bool), "RGB")),
     "its mask is a 3-channel image; labelme's is one channel"),
    (shape("sky", "mask", [[0, 0], [3, 3]], mask="not base64 at all!"), "its 'mask' is not a base64 PNG"),
    (shape("sky", "mask", [[0, 0], [3, 3]]), "a mask shape's 'mask' is NoneType; expected a base64 PNG"),
    (shape("sky", "line", [[0, 0], [3, 3]]), "shape type 'line' with 2 points is not an area"),
])
def test_a_circle_or_mask_no_labelme_file_honestly_holds_is_refused_in_one_line(tmp_path, run_cli, bad, said):
    doc = labelme_doc()
    doc["shapes"].append(bad)
    root = write_json_dataset(tmp_path / "lm", "labelme", doc)
    image(root / "b.png")
    (root / "b.json").write_text(json.dumps(labelme_doc("b")))
    code, out, err = run_cli("import", root, "--project", tmp_path / "p")
    assert code == 2 and "imported 1 of 2" in out and said in err, out + err


def test_the_pixels_an_image_s_circles_and_masks_cost_are_bounded():
    """Each circle costs its box, each mask its pixels: 16 per pixel of the image plus 2^22 in all."""
    from qgn.formats.guards import MASK_AREA_PER_PIXEL, MASK_AREA_SLACK

    width, height = 64, 64
    limit = MASK_AREA_PER_PIXEL * width * height + MASK_AREA_SLACK
    full = shape("sky", "mask", [[0, 0], [63, 63]], mask=png_b64(np.ones((64, 64), bool)))
    count = limit // (64 * 64)
    read_labelme_document(doc_of([full] * count, width, height), CLASSES, "t")
    with pytest.raises(ValueError, match=f"its masks cover {(count + 1) * 4096} pixels in all"):
        read_labelme_document(doc_of([full] * (count + 1), width, height), CLASSES, "t")


@pytest.mark.parametrize("size, points, painted", [
    ((1, 4), [[2, 1], [5, 5]], np.s_[1:6, 2:6]),  # one row over a 4×5 span: every row of it
    ((3, 1), [[2, 1], [7, 3]], np.s_[1:4, 2:8]),  # one column over 6 columns
    ((1, 1), [[3, 3], [10, 8]], np.s_[3:8, 3:11]),  # one pixel over the span, clipped to the image
    ((3, 4), [[2, -2], [5, 5]], np.s_[0:6, 2:6]),  # a 3-row mask 2 rows above the image: its last row stretched
])
def test_a_one_row_or_one_column_mask_is_stretched_over_its_span_as_labelme_paints_it(size, points, painted):
    """numpy broadcasts a mask part of one row or column over the span in labelme's assignment, so
    labelme paints the whole span; it was refused ('labelme cannot paint it either')."""
    height, width = 8, 12
    patch = np.ones(size, bool)
    shapes = [shape("car", "mask", points, mask=png_b64(patch))]
    got = read_labelme_document(doc_of(shapes, width, height), CLASSES, "t")
    want = np.full((height, width), 255)
    want[painted] = 2
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, labelme_reference(shapes, height, width))
    striped = np.zeros(size, bool)
    striped[tuple(slice(None, None, 2) for _ in size)] = True  # a pattern of the row/column, stretched too
    shapes = [shape("car", "mask", points, mask=png_b64(striped))]
    got = read_labelme_document(doc_of(shapes, width, height), CLASSES, "t")
    np.testing.assert_array_equal(got, labelme_reference(shapes, height, width))
