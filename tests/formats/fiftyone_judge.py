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

The two database jobs first connect to FiftyOne's database service (``connect_database``), waiting
for a late one up to ``DATABASE_WAIT_S`` in all. For the tests of that wait: ``$QGN_FIFTYONE_PORT_WAIT_S``
cuts FiftyOne's own wait for mongod's port (60 s), ``$QGN_FIFTYONE_MONGOD`` runs another program as
mongod (one that starts mongod late, or fails), ``$QGN_FIFTYONE_DATABASE_WAIT_S`` replaces the bound, and
``$QGN_FIFTYONE_SERVICE_TAG`` keeps the job to database services of that tag: it joins one of them that
runs, else starts its own - never a developer's FiftyOne App's or another test run's.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

import numpy as np  # noqa: E402

import fiftyone as fo  # noqa: E402
import fiftyone.core.labels as fol  # noqa: E402
import fiftyone.utils.coco as fouc  # noqa: E402
import fiftyone.utils.data as foud  # noqa: E402
from fiftyone.core.fields import MaskTargetsField  # noqa: E402

#: The most seconds the database jobs wait, in all, for FiftyOne's database service to answer. A start
#: here took 7-10 s (the service's own Python imports FiftyOne, then mongod opens its files; 2 cores
#: shared with the other tests); FiftyOne itself waits 60 s for mongod's port, then pymongo 30 s for an
#: answer, and fails - once in CI. 300 s is five of FiftyOne's port waits and 30 times a start here:
#: a service later than that is broken, not slow, and the job fails with FiftyOne's own error, inside
#: the test's 600-s limit on the whole job.
DATABASE_WAIT_S = float(os.environ.get("QGN_FIFTYONE_DATABASE_WAIT_S", 300))
#: Services started again after one exited while starting (a mongod refused a database folder the
#: previous job's mongod, stopping, still held); one that exits each time is broken: FiftyOne's error.
SERVICE_RESTARTS = 2


def _database_late(error: BaseException) -> bool:
    """Whether ``error`` says the database has not answered yet (as opposed to refused or broken):
    FiftyOne's wait for mongod's port ran out, or pymongo found no server in time."""
    import fiftyone.core.service as fos
    from pymongo.errors import ServerSelectionTimeoutError

    if isinstance(error, fos.ServiceListenTimeout):
        return True
    return isinstance(error, ConnectionError) and isinstance(error.__cause__, ServerSelectionTimeoutError)


def connect_database(bound_s: float = DATABASE_WAIT_S) -> None:
    """Connect to FiftyOne's database (``fiftyone.core.odm.database``, FiftyOne 1.22.1), waiting for a
    late service up to ``bound_s`` seconds in all: each try is FiftyOne's own; after one that ran out
    the same service, still starting, is waited for again (a new one would stop it and start over);
    one that exited is started again, at most ``SERVICE_RESTARTS`` times. Raises FiftyOne's error once
    ``bound_s`` or the restarts are spent, or at once for an error that is not lateness."""
    import fiftyone.core.odm.database as food

    deadline, restarts = time.monotonic() + bound_s, SERVICE_RESTARTS
    while True:
        try:
            _connect_once(food)
            return
        except Exception as error:
            exited = _service_exited(food)
            if not _database_late(error) or time.monotonic() >= deadline or (exited and not restarts):
                raise
            if exited:  # a new service, as FiftyOne's first try starts one
                restarts -= 1
                food._db_service = None
                os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
            print(f"fiftyone_judge: FiftyOne's database has not answered yet ({type(error).__name__}: {error}); "
                  f"{'starting it again' if exited else _waiting_for(food._db_service)}, "
                  f"{deadline - time.monotonic():.0f} s left", file=sys.stderr, flush=True)


def _waiting_for(service) -> str:
    if service is None or service.child is None:
        return "waiting"
    return f"waiting for the service it {'joined' if service.attached else 'started'} (process {service.child.pid})"


def _service_exited(food) -> bool:
    """Whether FiftyOne's database service has exited: one this process started is its
    ``psutil.Popen`` (``poll``); one it joined is another process's child, a ``psutil.Process``, gone
    when psutil says so (not running, or a zombie its parent has not reaped)."""
    import psutil

    service = food._db_service
    if service is None or service.child is None:
        return False
    if not service.attached:
        return service.child.poll() is not None
    try:
        return not service.child.is_running() or service.child.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _connect_once(food) -> None:
    """One try of FiftyOne's connection. After a try whose port wait ran out, the service it started
    is kept (``_db_service``) without a port, where FiftyOne's next try would connect to mongod's
    default port instead: its port is waited for here, then given as FiftyOne's own
    ``FIFTYONE_PRIVATE_DATABASE_PORT``. After a try whose server check ran out, the client it kept
    is dropped so that the next try connects again."""
    if food._db_service is not None and "FIFTYONE_PRIVATE_DATABASE_PORT" not in os.environ:
        os.environ["FIFTYONE_PRIVATE_DATABASE_PORT"] = str(food._db_service.port)
    food._client = None
    food.establish_db_conn(fo.config)


def _test_hooks() -> None:
    """The environment's stand-ins for a slow or broken database (see the module docstring)."""
    import fiftyone.core.service as fos

    if os.environ.get("QGN_FIFTYONE_PORT_WAIT_S"):
        wait, original = float(os.environ["QGN_FIFTYONE_PORT_WAIT_S"]), fos.Service._wait_for_child_port
        fos.Service._wait_for_child_port = lambda self, port=None, timeout=None: original(self, port, wait)
    if os.environ.get("QGN_FIFTYONE_MONGOD"):
        fos.DatabaseService.find_mongod = staticmethod(lambda: os.environ["QGN_FIFTYONE_MONGOD"])
    if os.environ.get("QGN_FIFTYONE_SERVICE_TAG"):
        tag, arguments = os.environ["QGN_FIFTYONE_SERVICE_TAG"], fos.MultiClientService._service_args.fget
        fos.DatabaseService._service_args = property(lambda self: _tagged(arguments(self), tag))


def _tagged(arguments: list[str], tag: str) -> list[str]:
    """FiftyOne's service arguments (``--51-service db --multi``) with ``--qgn-service-tag TAG`` before
    ``--multi``: FiftyOne joins a running service whose command line holds its arguments in a row, so a
    tagged judge joins only a service of its tag, and a FiftyOne without the tag (a developer's App,
    another test run) none of them. The service's ``main.py`` passes over the extra flag and its value."""
    return [*arguments[:2], "--qgn-service-tag", tag, *arguments[2:]]


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
    if "store" in job or "load" in job:
        _test_hooks()
        connect_database()
    if "store" in job:
        result["store"] = store(job["store"])
    if "load" in job:
        result["load"] = load(job["load"])
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
