"""Run by FiftyOne's own Python (``test_fiftyone_live.py``), never by the project's: FiftyOne's
importers and exporter, and its database, on the files of one job.

``python fiftyone_judge.py JOB.json`` prints one JSON object. JOB holds:

- ``segmentation``: [{"dir", "data_path" (or null: FiftyOne's default), "out"}]: each dataset read by
  ``ImageSegmentationDirectoryImporter``, each mask by ``Segmentation.get_mask`` and saved in ``out``;
  the result lists (uuid, image path, mask dtype) in FiftyOne's order.
- ``targets``: a ``mask_targets.json`` validated as FiftyOne's ``MaskTargetsField`` and read back
  as FiftyOne stores it; ``scheme``: a ``color_scheme.json`` built into ``fo.ColorScheme``.
- ``coco``: {"dir", "data_path", "labels_path", "out"}: a COCO export read by
  ``COCODetectionDatasetImporter`` (segmentations): per image its size and each detection's label,
  relative box and instance mask (saved in ``out``).
- ``write``: {"dir", "items": [{"image", "mask"}]}: ``ImageSegmentationDirectoryExporter`` writes a
  dataset of these images and masks (``.npy``).
- ``coco_write``: {"dir", "targets" ({"1": name, …}), "items": [{"image", "mask", "crowd"}]}:
  ``COCODetectionDatasetExporter`` writes each mask (``.npy``, FiftyOne's values) as
  ``Segmentation.to_detections`` (one detection per class; none: no label), ``iscrowd`` 1 on those of
  a ``crowd`` item.
- ``store``: {"dir", "name"}: the README's recipe in FiftyOne's database (MongoDB, under
  ``$FIFTYONE_DATABASE_DIR``): ``Dataset.from_dir(..., data_path="data.json",
  label_field="ground_truth")``, the mask targets and the colour scheme set, saved, persistent.
- ``load``: {"name", "out", "export"}: a later process loads that dataset by name and reports what
  the database holds: each sample's mask (``out``), the dataset's mask targets and colours, the
  classes and accuracy of ``evaluate_segmentations`` of the field against itself with the dataset's
  mask targets; then
  ``ds.export(export_dir=export, dataset_type=ImageSegmentationDirectory, label_field="ground_truth")``.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import numpy as np  # noqa: E402

import fiftyone as fo  # noqa: E402
import fiftyone.core.labels as fol  # noqa: E402
import fiftyone.utils.coco as fouc  # noqa: E402
import fiftyone.utils.data as foud  # noqa: E402
from fiftyone.core.fields import MaskTargetsField  # noqa: E402


def read_segmentation(job: dict) -> list:
    kwargs = {"data_path": job["data_path"]} if job.get("data_path") else {}
    importer = foud.ImageSegmentationDirectoryImporter(job["dir"], **kwargs)
    os.makedirs(job["out"], exist_ok=True)
    rows = []
    with importer:
        for image_path, _, label in importer:
            uuid = os.path.splitext(os.path.relpath(label.mask_path, os.path.join(job["dir"], "labels")))[0]
            mask = label.get_mask()  # FiftyOne's own mask reader
            np.save(os.path.join(job["out"], f"{len(rows)}.npy"), mask)
            rows.append({"uuid": uuid, "image": image_path, "dtype": str(mask.dtype), "npy": f"{len(rows)}.npy"})
    return rows


def read_targets(path: str) -> dict:
    with open(path) as f:
        targets = json.load(f)
    field = MaskTargetsField()
    field.validate(targets)
    return {str(k): v for k, v in field.to_python(targets).items()} | {"_int_keys": all(
        isinstance(k, int) for k in field.to_python(targets))}


def read_scheme(path: str) -> list:
    with open(path) as f:
        scheme = fo.ColorScheme(**json.load(f))
    return [dict(entry) for entry in scheme.default_mask_targets_colors]


def read_coco(job: dict) -> list:
    importer = fouc.COCODetectionDatasetImporter(job["dir"], data_path=job["data_path"], labels_path=job["labels_path"],
                                                 label_types=["segmentations"])
    os.makedirs(job["out"], exist_ok=True)
    rows = []
    with importer:
        for image_path, metadata, detections in importer:
            stem = os.path.splitext(os.path.basename(image_path))[0]
            instances = []
            for n, detection in enumerate(detections.detections):
                np.save(os.path.join(job["out"], f"{stem}-{n}.npy"), detection.mask)
                instances.append({"label": detection.label, "box": list(detection.bounding_box),
                                  "npy": f"{stem}-{n}.npy"})
            rows.append({"stem": stem, "size": [metadata.width, metadata.height], "instances": instances})
    return rows


def write_dataset(job: dict) -> None:
    exporter = foud.ImageSegmentationDirectoryExporter(job["dir"], export_media=True)
    with exporter:
        for item in job["items"]:
            exporter.export_sample(item["image"], fol.Segmentation(mask=np.load(item["mask"])))


def write_coco(job: dict) -> None:
    targets = {int(k): v for k, v in job["targets"].items()}
    exporter = fouc.COCODetectionDatasetExporter(job["dir"], export_media=True)
    with exporter:
        for item in job["items"]:
            detections = fol.Segmentation(mask=np.load(item["mask"])).to_detections(mask_targets=targets)
            for detection in detections.detections:
                detection["iscrowd"] = int(item["crowd"])
            # a sample without detections has no label (None), as in a dataset
            exporter.export_sample(item["image"], detections if detections.detections else None)


def store(job: dict) -> dict:
    """The README's four lines, persistent under ``job["name"]``."""
    folder = job["dir"]
    ds = fo.Dataset.from_dir(dataset_dir=folder, dataset_type=fo.types.ImageSegmentationDirectory,
                             data_path="data.json", label_field="ground_truth", name=job["name"], persistent=True)
    with open(os.path.join(folder, "mask_targets.json")) as f:
        ds.default_mask_targets = json.load(f)
    with open(os.path.join(folder, "color_scheme.json")) as f:
        ds.app_config.color_scheme = fo.ColorScheme(**json.load(f))
    ds.save()
    return {"count": len(ds)}


def load(job: dict) -> dict:
    """What the database holds of ``job["name"]``, read by a process that did not write it."""
    ds = fo.load_dataset(job["name"])
    os.makedirs(job["out"], exist_ok=True)
    rows = []
    for n, sample in enumerate(ds):
        np.save(os.path.join(job["out"], f"{n}.npy"), sample.ground_truth.get_mask())
        rows.append({"image": sample.filepath, "npy": f"{n}.npy"})
    results = ds.evaluate_segmentations("ground_truth", gt_field="ground_truth", eval_key="self",
                                        mask_targets=ds.default_mask_targets)  # the README's evaluation line
    ds.export(export_dir=job["export"], dataset_type=fo.types.ImageSegmentationDirectory, label_field="ground_truth")
    targets = ds.default_mask_targets
    return {"rows": rows, "targets": {str(k): v for k, v in targets.items()},
            "int_keys": all(isinstance(k, int) for k in targets),
            "colors": [dict(entry) for entry in ds.app_config.color_scheme.default_mask_targets_colors],
            "eval_classes": [str(c) for c in results.classes], "accuracy": results.metrics()["accuracy"]}


def main(path: str) -> None:
    with open(path) as f:
        job = json.load(f)
    result = {"fiftyone": fo.__version__}
    result["segmentation"] = [read_segmentation(j) for j in job.get("segmentation", [])]
    if "targets" in job:
        result["targets"] = read_targets(job["targets"])
    if "scheme" in job:
        result["scheme"] = read_scheme(job["scheme"])
    if "coco" in job:
        result["coco"] = read_coco(job["coco"])
    if "write" in job:
        write_dataset(job["write"])
    if "coco_write" in job:
        write_coco(job["coco_write"])
    if "store" in job:
        result["store"] = store(job["store"])
    if "load" in job:
        result["load"] = load(job["load"])
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
