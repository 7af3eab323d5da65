"""COCO files as COCO's own API reads them (pycocotools), for the tests of COCO interchange."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qgn.classes import ClassSet


def pycocotools_labels(path: Path, classes: ClassSet) -> dict[str, np.ndarray]:
    """{file stem: label} as pycocotools reads the file: each annotation's ``annToMask`` painted in
    file order (category → class by name), void where none is. An annotation of no outline
    (``"segmentation": []``, which ``annToMask`` cannot take) is its ``bbox`` as pycocotools draws a
    box (``frPyObjects`` of [x, y, w, h]: maskApi.c ``rleFrBbox``)."""
    coco_api = pytest.importorskip("pycocotools.coco")
    from pycocotools import mask as mask_api

    coco = coco_api.COCO(str(path))
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    labels = {}
    for image in coco.dataset["images"]:
        label = np.full((image["height"], image["width"]), classes.ignore_index, np.int64)
        for ann in coco.dataset.get("annotations", []):
            if ann["image_id"] != image["id"]:
                continue
            if ann["segmentation"] == []:
                box = np.array([ann["bbox"]], np.float64)
                mask = mask_api.decode(mask_api.frPyObjects(box, image["height"], image["width"]))[:, :, 0]
            else:
                mask = coco.annToMask(ann)
            label[mask.astype(bool)] = classes.names.index(names[ann["category_id"]])
        labels[Path(image["file_name"]).stem] = label
    return labels
