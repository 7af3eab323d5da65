"""A real Label Studio (1.23.2) on 127.0.0.1, driven through its REST API as a team would (#23):

- our export opens as is: the labelling config creates the project, tasks.json imports, the images
  are served (Local Files), the dashboard counts every task annotated, and Label Studio's own JSON,
  JSON-MIN and BRUSH_TO_PNG exports give back every pixel;
- annotations made through the API (brush + polygon + rectangle, a skipped one, two per task, an
  unannotated task) come back through ``qgn import`` as documented, and with ``--update`` as
  corrections of a project of the original images (replaced, the old ones kept, no image added);
- ``qgn serve`` connected as the project's ML backend: its predictions equal ``qgn predict``.

Label Studio is installed into its own virtual environment outside the project's (like the judges):
``$QGN_LABEL_STUDIO_VENV``, default ``~/.cache/qgn/label-studio-1.23.2`` (pip, about 70 s and 1 GB
the first time; kept for later runs), and started with a scratch data folder. Skipped when it cannot
be installed or started — except under CI (``CI`` set), where that is a failure.
"""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qgn.formats import ExportItem, export_dataset
from qgn.formats import scan_dataset
from qgn.formats.labelstudio import encode_ls_rle
from qgn.quadtree.label_io import read_classes_file, read_label
from qgn.resources import samples_dir
from sample_files import pixel_centres_inside
from tool_venvs import tool_venv, unavailable

pytestmark = pytest.mark.labelstudio

LS_VERSION = "1.23.2"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
REPO = Path(__file__).resolve().parents[2]


def _unavailable(reason: str):
    unavailable("Label Studio", reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _unavailable(f"{url} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    _unavailable(f"{url} did not answer within {seconds:.0f} s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def ls_venv(real_environ) -> Path:
    """The venv of Label Studio, installed once where the user's real home keeps caches."""
    # sentry-sdk 3 (Label Studio asks for >= 2.16 with no upper bound) refuses the options Label Studio
    # 1.23.2 starts it with ("Unknown option 'send_default_pii'"): every command of it stopped
    venv = tool_venv(real_environ, "Label Studio", [f"label-studio=={LS_VERSION}", "sentry-sdk<3"],
                     "QGN_LABEL_STUDIO_VENV", f"label-studio-{LS_VERSION}")
    exe = venv / "bin" / "label-studio"
    out = subprocess.run([str(exe), "version"], capture_output=True, text=True, timeout=120)
    if LS_VERSION not in out.stdout:
        _unavailable(f"{exe} version says {out.stdout[-300:]!r} (exit {out.returncode}: {out.stderr[-600:]!r})")
    return venv


@pytest.fixture(scope="module")
def export_root(tmp_path_factory) -> Path:
    """Our export of the bundled synthetic samples (the Local Files document root)."""
    root = tmp_path_factory.mktemp("ls-export")
    samples = samples_dir()
    classes = read_classes_file(samples / "classes.txt")
    items = [ExportItem(p.stem, read_label(samples / "labels" / p.name), p)
             for p in sorted((samples / "images").glob("*.png"))]
    export_dataset(items, classes, root, ["labelstudio"])
    return root / "labelstudio"


class LabelStudio:
    def __init__(self, url: str):
        self.url = url

    def call(self, method: str, path: str, body=None, raw: bool = False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, {"Authorization": f"Token {TOKEN}",
                                                                 "Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(request, timeout=300) as response:
            content = response.read()
            return content if raw else json.loads(content or b"null")

    def project(self, config: str, title: str) -> int:
        return self.call("POST", "/api/projects", {"title": title, "label_config": config})["id"]

    def export(self, project: int, kind: str, folder: Path, all_tasks: bool = False) -> Path:
        query = "&download_all_tasks=true" if all_tasks else ""
        content = self.call("GET", f"/api/projects/{project}/export?exportType={kind}{query}", raw=True)
        path = folder / f"{kind.lower()}.{'zip' if content[:2] == b'PK' else 'json'}"
        path.write_bytes(content)
        return path


@pytest.fixture(scope="module")
def label_studio(ls_venv, export_root, tmp_path_factory):
    data = tmp_path_factory.mktemp("ls-data")
    port = _free_port()
    env = {**os.environ, "LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(export_root),
           "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false", "LATEST_VERSION_CHECK": "false",
           "COLLECT_ANALYTICS": "false", "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    log = data / "label-studio.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(ls_venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "-p", str(port), "--data-dir", str(data), "--username", "qgn@example.com", "--password", "qgn-test-pass",
             "--user-token", TOKEN, "--enable-legacy-api-token"],
            cwd=data, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", 300, process, log)
        print(f"Label Studio answered after {time.monotonic() - start:.0f} s", file=sys.stderr)
        yield LabelStudio(f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


def brush_masks(results) -> dict[str, np.ndarray]:
    from qgn.formats.labelstudio import decode_ls_rle

    out = {}
    for r in results:
        value = r.get("value", r)
        h, w = r["original_height"], r["original_width"]
        out[value["brushlabels"][0]] = decode_ls_rle(value["rle"]).reshape(h, w, 4)[:, :, 3] > 0
    return out


# --------------------------------------------------------------------------- QGN -> Label Studio
def test_our_export_opens_as_is_and_comes_back_pixel_exact(label_studio, export_root, tmp_path):
    samples = samples_dir()
    classes = read_classes_file(samples / "classes.txt")
    project = label_studio.project((export_root / "label_config.xml").read_text(), "qgn export")
    label_studio.call("POST", "/api/storages/localfiles", {"project": project, "path": str(export_root / "images"),
                                                           "title": "images", "use_blob_urls": True})
    tasks = json.loads((export_root / "tasks.json").read_text())
    answer = label_studio.call("POST", f"/api/projects/{project}/import", tasks)
    assert answer["task_count"] == answer["annotation_count"] == len(tasks) == 6
    for task in tasks:  # the images show: Label Studio serves every reference
        served = label_studio.call("GET", task["data"]["image"], raw=True)
        name = task["data"]["image"].rsplit("/", 1)[1]
        assert served == (samples / "images" / name).read_bytes()
    counts = label_studio.call("GET", f"/api/projects/{project}")
    assert counts["num_tasks_with_annotations"] == 6 and counts["ground_truth_number"] == 0

    # Label Studio's own BRUSH_TO_PNG: one PNG per result, the class mask pixel-exact
    mismatched = 0
    with zipfile.ZipFile(label_studio.export(project, "BRUSH_TO_PNG", tmp_path)) as z:
        pngs = z.namelist()
        by_task = {t["id"]: t for t in label_studio.call("GET", f"/api/projects/{project}/export?exportType=JSON")}
        for name in pngs:
            task_id = int(name.split("-")[1])
            stem = by_task[task_id]["data"]["image"].rsplit("/", 1)[1][:-4]
            class_name = name.split("-tag-", 1)[1].rsplit("-", 1)[0]
            mask = np.asarray(Image.open(io.BytesIO(z.read(name)))) > 0
            truth = read_label(samples / "labels" / f"{stem}.png") == classes.names.index(class_name)
            mismatched += int((mask != truth).sum())
    assert len(pngs) == sum(len(np.unique(read_label(p)[read_label(p) != 255]))
                            for p in (samples / "labels").glob("*.png"))
    assert mismatched == 0
    # Label Studio's JSON and JSON-MIN exports through qgn import: every pixel, void included
    for kind in ("JSON", "JSON_MIN"):
        path = label_studio.export(project, kind, tmp_path)
        dataset = scan_dataset(path, images=export_root / "images")
        assert len(dataset.items) == 6 and not dataset.warnings, (kind, dataset.warnings)
        for item in dataset.items:
            assert item.image is not None
            np.testing.assert_array_equal(item.read(classes), read_label(samples / "labels" / f"{item.name}.png"))


# --------------------------------------------------------------------------- Label Studio -> QGN
def test_annotations_made_in_label_studio_come_back_as_documented(label_studio, export_root, tmp_path):
    samples = samples_dir()
    classes = read_classes_file(samples / "classes.txt")
    config = (export_root / "label_config.xml").read_text().replace("</View>", (
        '  <PolygonLabels name="poly" toName="image">\n    <Label value="road"/><Label value="sign"/>\n'
        '  </PolygonLabels>\n  <RectangleLabels name="box" toName="image">\n    <Label value="building"/>\n'
        '  </RectangleLabels>\n</View>'))
    project = label_studio.project(config, "annotated in Label Studio")
    label_studio.call("POST", "/api/storages/localfiles", {"project": project, "path": str(export_root / "images"),
                                                           "title": "images", "use_blob_urls": True})
    tasks = [{"data": t["data"]} for t in json.loads((export_root / "tasks.json").read_text())[:5]]
    label_studio.call("POST", f"/api/projects/{project}/import", tasks)
    ids = [t["id"] for t in label_studio.call("GET", f"/api/projects/{project}/export?exportType=JSON"
                                                      "&download_all_tasks=true")]
    h, w = 256, 384
    brush = np.zeros((h, w), bool)
    brush[10:60, 20:200] = True
    sky = [{"from_name": "tag", "to_name": "image", "type": "brushlabels", "original_width": w, "original_height": h,
            "value": {"format": "rle", "rle": encode_ls_rle(brush), "brushlabels": ["sky"]}}]
    polygon = [(96.0, 64.0), (288.0, 96.0), (200.0, 230.5), (60.25, 180.0)]
    poly = {"from_name": "poly", "to_name": "image", "type": "polygonlabels", "original_width": w,
            "original_height": h, "value": {"points": [[x / w * 100, y / h * 100] for x, y in polygon],
                                            "closed": True, "polygonlabels": ["road"]}}
    box = {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "original_width": w,
           "original_height": h, "value": {"x": 250 / w * 100, "y": 20 / h * 100, "width": 100 / w * 100,
                                           "height": 50 / h * 100, "rotation": 0, "rectanglelabels": ["building"]}}
    expected = np.full((h, w), 255, np.int64)
    expected[brush] = classes.names.index("sky")
    expected[pixel_centres_inside(polygon, h, w)] = classes.names.index("road")
    expected[20:70, 250:350] = classes.names.index("building")

    def annotate(task, result, **extra):
        return label_studio.call("POST", f"/api/tasks/{task}/annotations?project={project}",
                                 {"result": result, **extra})["id"]

    annotate(ids[0], sky + [poly, box])                        # brush + polygon + rectangle
    annotate(ids[1], [], was_cancelled=True)                    # skipped, then a real one
    annotate(ids[1], sky)
    annotate(ids[2], [poly])                                    # two: the latest is taken
    time.sleep(1.1)
    latest = annotate(ids[2], [box])
    # ids[3] stays unannotated
    annotate(ids[4], [])                                        # submitted with no region: nothing labelled
    for kind in ("JSON", "JSON_MIN"):
        path = label_studio.export(project, kind, tmp_path, all_tasks=True)
        out = tmp_path / f"project-{kind}"
        result = subprocess.run([str(REPO / ".venv" / "bin" / "qgn"), "import", str(path), "--project", str(out),
                                 "--images", str(export_root / "images"), "--classes", str(samples / "classes.txt")],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        from qgn.project import Project

        opened = Project.open(out)
        labels = {im.path.stem: opened.load_annotation(im) for im in opened.images}
        assert len(labels) == 4, (kind, labels.keys(), result.stdout, result.stderr)
        stems = [tasks[i]["data"]["image"].rsplit("/", 1)[1][:-4] for i in range(5)]
        np.testing.assert_array_equal(labels[stems[0]], expected)
        only_sky = np.where(brush, classes.names.index("sky"), 255)
        np.testing.assert_array_equal(labels[stems[1]], only_sky)
        only_box = np.full((h, w), 255)
        only_box[20:70, 250:350] = classes.names.index("building")
        np.testing.assert_array_equal(labels[stems[2]], only_box)
        np.testing.assert_array_equal(labels[stems[4]], np.full((h, w), 255))
        if kind == "JSON":  # JSON-MIN leaves out skipped annotations and, with them, what could be said
            assert f"task(s) have several annotations; the latest was imported: {ids[2]} (took annotation {latest}" \
                in result.stderr
            assert f"have no annotation, not imported: tasks {ids[3]}" in result.stderr
        assert "1 task(s) have several" in result.stderr or kind == "JSON_MIN"
        # the same export as corrections of a project of the original images (Label Studio's tasks
        # name copies of them): --update replaces the three annotated images' annotations, keeps the
        # old ones in replaced/, and adds no image
        from qgn.project import REPLACED_DIR

        corrected = tmp_path / f"corrected-{kind}"
        original = Project.create(corrected, sorted((samples / "images").glob("*.png")), classes)
        for image in original.images:
            original.save_annotation(image, read_label(samples / "labels" / image.path.name))
        result = subprocess.run([str(REPO / ".venv" / "bin" / "qgn"), "import", str(path), "--project", str(corrected),
                                 "--images", str(export_root / "images"), "--update"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "(4 replaced, 0 unchanged)" in result.stdout, result.stdout
        back = Project.open(corrected)
        assert [im.path for im in back.images] == [im.path for im in original.images]
        updated = {im.path.stem: back.load_annotation(im) for im in back.images}
        np.testing.assert_array_equal(updated[stems[0]], expected)
        np.testing.assert_array_equal(updated[stems[2]], only_box)
        np.testing.assert_array_equal(updated[stems[3]], read_label(samples / "labels" / f"{stems[3]}.png"))
        np.testing.assert_array_equal(updated[stems[4]], np.full((h, w), 255))  # the erased one, erased
        assert len(list((corrected / REPLACED_DIR).glob("*.qgt"))) == 4


# --------------------------------------------------------------------------- qgn serve as the ML backend
def test_qgn_serve_is_the_projects_ml_backend_and_predicts_as_qgn_predict(label_studio, export_root, tmp_path):
    samples = samples_dir()
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([str(REPO / ".venv" / "bin" / "qgn"), "serve", "--threads", "1", "--port", str(port),
                                  "--document-root", str(export_root)], stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", 120, serve, log)
        tasks = [{"data": t["data"]} for t in json.loads((export_root / "tasks.json").read_text())]
        missing = tasks[0]["data"]["image"].rsplit("/", 1)[0] + "/missing.png"  # one bad task among the good
        tasks.append({"data": {"image": missing}})
        project = label_studio.project((export_root / "label_config.xml").read_text(), "pre-annotated by QGN")
        label_studio.call("POST", "/api/storages/localfiles", {"project": project, "path": str(export_root / "images"),
                                                               "title": "images", "use_blob_urls": True})
        label_studio.call("POST", f"/api/projects/{project}/import", tasks)
        backend = label_studio.call("POST", "/api/ml", {"url": f"http://127.0.0.1:{port}", "project": project,
                                                        "title": "QGN"})
        assert backend["state"] == "CO", backend
        label_studio.call("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                          {"selectedItems": {"all": True, "excluded": []}})
        exported = label_studio.call("GET", f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")
        assert len(exported) == 7
        predicted = subprocess.run([str(REPO / ".venv" / "bin" / "qgn"), "predict", "--threads", "1",
                                    str(samples / "images"), "--out", str(tmp_path / "predict")],
                                   capture_output=True, text=True, timeout=600)
        assert predicted.returncode == 0, predicted.stderr
        classes = read_classes_file(samples / "classes.txt")
        scores = []
        predictions = label_studio.call("GET", f"/api/predictions?project={project}")
        for task in exported:
            if task["data"]["image"] == missing:  # no prediction, and the others' kept (all were dropped)
                assert [p for p in predictions if p["task"] == task["id"]] == []
                continue
            (prediction,) = [p for p in predictions if p["task"] == task["id"]]
            assert prediction["model_version"] == "qgn-demo"
            assert {r["from_name"] for r in prediction["result"]} == {"tag"}
            assert {r["to_name"] for r in prediction["result"]} == {"image"}
            scores.append(prediction["score"])
            stem = task["data"]["image"].rsplit("/", 1)[1][:-4]
            expected = read_label(tmp_path / "predict" / f"{stem}.png")
            got = np.full(expected.shape, 255)
            for name, mask in brush_masks(prediction["result"]).items():
                got[mask] = classes.names.index(name)
            np.testing.assert_array_equal(got, expected)
        assert all(0 < s <= 1 for s in scores)
    finally:
        _stop(serve)


def test_our_brush_rle_of_odd_one_pixel_and_large_images_is_read_by_label_studio(label_studio, tmp_path):
    """Our tasks of a 1×1, a 1×7, a 7×1, a 101×3, a 53×37 and a 4001×3001 image (every class and
    void, one-pixel detail) import into Label Studio, and its BRUSH_TO_PNG export (its own brush
    decoder) gives each class mask back pixel-exact, at the image's size; its JSON export imports back
    unchanged."""
    from sample_files import blocky_label

    classes = read_classes_file(samples_dir() / "classes.txt")
    rng = np.random.default_rng(5)
    items, labels = [], {}
    for h, w in [(1, 1), (1, 7), (7, 1), (101, 3), (37, 53), (3001, 4001)]:
        name = f"image {h}x{w}"
        labels[name] = blocky_label(rng, h, w, classes.num_classes, classes.ignore_index,
                                    cell=(1, 3, 5) if h * w < 10_000 else 97, void_cells=True)
        photo = tmp_path / "photos" / f"{name}.png"
        photo.parent.mkdir(exist_ok=True)
        Image.new("RGB", (w, h)).save(photo)
        items.append(ExportItem(name, labels[name], photo))
    export_dataset(items, classes, tmp_path / "out", ["labelstudio"])
    root = tmp_path / "out" / "labelstudio"
    project = label_studio.project((root / "label_config.xml").read_text(), "odd sizes")
    tasks = json.loads((root / "tasks.json").read_text())
    answer = label_studio.call("POST", f"/api/projects/{project}/import", tasks)
    assert answer["task_count"] == answer["annotation_count"] == len(items)
    by_task = {t["id"]: Path(urllib.parse.unquote(t["data"]["image"].rsplit("/", 1)[1])).stem
               for t in label_studio.call("GET", f"/api/projects/{project}/export?exportType=JSON")}
    got = {name: np.full(label.shape, classes.ignore_index, np.int64) for name, label in labels.items()}
    with zipfile.ZipFile(label_studio.export(project, "BRUSH_TO_PNG", tmp_path)) as z:
        for png in z.namelist():
            name = by_task[int(png.split("-")[1])]
            class_name = png.split("-tag-", 1)[1].rsplit("-", 1)[0]
            mask = np.asarray(Image.open(io.BytesIO(z.read(png))))
            assert mask.shape == labels[name].shape, (png, mask.shape)
            got[name][mask > 0] = classes.names.index(class_name)
    for name, label in labels.items():
        np.testing.assert_array_equal(got[name], label, err_msg=name)
    # and Label Studio's JSON export of what it stored comes back through qgn import unchanged
    dataset = scan_dataset(label_studio.export(project, "JSON", tmp_path), images=root / "images")
    assert sorted(item.name for item in dataset.items) == sorted(labels)
    for item in dataset.items:
        np.testing.assert_array_equal(item.read(classes), labels[item.name], err_msg=item.name)


def test_label_studios_coco_export_imports_as_its_json_export(label_studio, export_root, tmp_path):
    """A polygon and a rectangle, exported by Label Studio as JSON and as COCO (its converter:
    category ids from 0, a rectangle as ``"segmentation": []`` with its ``bbox``, ``file_name`` the
    image it read, relative to its own scratch folder: ``../../…/images/scene_01.png``). ``qgn
    import --images`` found no image for the COCO file (the name leads outside it) and read the
    rectangle as no pixel. Now the COCO file reads as pycocotools reads its polygon, with the box
    (as pycocotools draws a box) on top; the JSON export gives the same map but for the polygon's
    rim (its reader takes the pixels whose centres are inside: no COCO rasteriser there)."""
    samples = samples_dir()
    classes = read_classes_file(samples / "classes.txt")
    config = (export_root / "label_config.xml").read_text().replace("</View>", (
        '  <PolygonLabels name="poly" toName="image">\n    <Label value="road"/>\n  </PolygonLabels>\n'
        '  <RectangleLabels name="box" toName="image">\n    <Label value="building"/>\n'
        '  </RectangleLabels>\n</View>'))
    project = label_studio.project(config, "COCO from Label Studio")
    label_studio.call("POST", "/api/storages/localfiles", {"project": project, "path": str(export_root / "images"),
                                                           "title": "images", "use_blob_urls": True})
    tasks = [{"data": t["data"]} for t in json.loads((export_root / "tasks.json").read_text())[:1]]
    label_studio.call("POST", f"/api/projects/{project}/import", tasks)
    (task,) = [t["id"] for t in label_studio.call("GET", f"/api/projects/{project}/export?exportType=JSON"
                                                         "&download_all_tasks=true")]
    h, w = 256, 384
    polygon = [(96.0, 64.0), (288.0, 96.0), (200.0, 230.5), (60.25, 180.0)]
    result = [{"from_name": "poly", "to_name": "image", "type": "polygonlabels", "original_width": w,
               "original_height": h, "value": {"points": [[x / w * 100, y / h * 100] for x, y in polygon],
                                               "closed": True, "polygonlabels": ["road"]}},
              {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "original_width": w,
               "original_height": h, "value": {"x": 250 / w * 100, "y": 20 / h * 100, "width": 100 / w * 100,
                                               "height": 50 / h * 100, "rotation": 0,
                                               "rectanglelabels": ["building"]}}]
    label_studio.call("POST", f"/api/tasks/{task}/annotations?project={project}", {"result": result})
    labels = {}
    for kind in ("JSON", "COCO"):
        path = label_studio.export(project, kind, tmp_path)
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                z.extractall(tmp_path / kind)
            path = tmp_path / kind
        dataset = scan_dataset(path, images=export_root / "images")
        (item,) = dataset.items
        assert item.image is not None and item.image.parent == export_root / "images", (kind, item)
        labels[kind] = item.read(classes)
        if kind == "COCO":
            from coco_reference import pycocotools_labels

            (expected,) = pycocotools_labels(next(path.glob("*.json")), classes).values()  # the polygon
    expected[20:70, 250:350] = classes.names.index("building")
    np.testing.assert_array_equal(labels["COCO"], expected)
    np.testing.assert_array_equal(labels["JSON"][20:70, 250:350], expected[20:70, 250:350])
    rim = labels["JSON"] != labels["COCO"]
    assert rim.sum() < 0.01 * (labels["JSON"] == classes.names.index("road")).sum()


def test_qgn_serve_learns_from_predictions_turned_annotations_once_a_person_updates_them(label_studio, export_root,
                                                                                         tmp_path):
    """*Create Annotations From Predictions* (a data-manager action on selected tasks) reaches the ML
    backend's webhook as one ANNOTATIONS_CREATED for all of them: the model's own output, not learnt
    from; the one a person then updates is (Label Studio sends ANNOTATION_UPDATED)."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([sys.executable, "-m", "qgn", "serve", "--threads", "1", "--port", str(port),
                                  "--document-root", str(export_root), "--train-out", str(tmp_path / "models"),
                                  "--train-every", "1000", "--train-iters", "1"], stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", 120, serve, log)
        tasks = [{"data": t["data"]} for t in json.loads((export_root / "tasks.json").read_text())]
        project = label_studio.project((export_root / "label_config.xml").read_text(), "accepted in bulk")
        label_studio.call("POST", "/api/storages/localfiles", {"project": project, "path": str(export_root / "images"),
                                                               "title": "images", "use_blob_urls": True})
        label_studio.call("POST", f"/api/projects/{project}/import", tasks)
        backend = label_studio.call("POST", "/api/ml", {"url": f"http://127.0.0.1:{port}", "project": project,
                                                        "title": "QGN"})
        everything = {"selectedItems": {"all": True, "excluded": []}}
        label_studio.call("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}", everything)
        label_studio.call("POST", f"/api/dm/actions?id=predictions_to_annotations&project={project}", everything)
        exported = label_studio.call("GET", f"/api/projects/{project}/export?exportType=JSON")
        assert len(exported) == len(tasks) and all(len(t["annotations"]) == 1 for t in exported)
        reviewed = exported[0]["annotations"][0]  # a person opens one and updates it
        label_studio.call("PATCH", f"/api/annotations/{reviewed['id']}/", {"result": reviewed["result"]})
        label_studio.call("POST", f"/api/ml/{backend['id']}/train", {})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/versions", timeout=10) as response:
                if json.loads(response.read())["versions"] == ["qgn-demo", "qgn-demo-ls1"]:
                    break
            time.sleep(1)
        metadata = json.loads((tmp_path / "models" / "demo-ls1.json").read_text())["config"]["extra"]["finetune"]
        assert len(metadata["images"]) == 1, log.read_text()[-2000:]  # the reviewed one alone
    finally:
        _stop(serve)
