"""Hostile-input campaign (issue #20): every import format's documents mutated value by value,
label-map files with hostile lines, paths and links leading outside the dataset, sizes a file
claims, and malformed settings — each run through the ``qgn`` command line. qgn's own files too:
a ``.qgt`` truncated at every byte and bit-flipped (its checksum kept right, so the flips reach
the decoder), every value of a project.json and of a model JSON mutated, and model weights of
other types and shapes (``export``, ``export --project``, ``predict``). Entry points added since:
``qgn samples`` options, image names too long for a file name, a PostScript file as a photo, the
previous frame's labels carried onto thin frames (in child processes), and ``qgn serve`` against
hostile HTTP requests (framing, bodies, field types, image references, label configs, a path that is
no UTF-8). The seventh round's (``seventh_round``; ``--seventh`` runs them and serve's alone): JSON
given to ``--classes``, a project export whose image files are gone or loop, CVAT/FiftyOne masks
named ``x.PNG`` (and beside ``x.png``), two ``x.png`` in two sub-folders, a photo beside its grey map,
a ``--document-root`` that loops - each also checked for the outcome a clean run must show (a
refusal, what was imported), since a silent loss exits 0 with nothing on stderr.

A case is *handled cleanly* when: the exit status is 0 or 2; stderr holds at most one line, of the
form ``qgn CMD: error: …``; no traceback and no exception nobody anticipated shows (in the error or
in an item's reason); the input folder is byte-identical afterwards; and nothing was written or
deleted outside the project / output folder the command was given. Claimed-size cases run in a
fresh interpreter each, their peak resident memory (``ru_maxrss``) compared with an honest import
of the same small dataset measured in the same run.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_hostile_inputs.py [--quick] [--seventh]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' helper modules
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "formats"))
from hostile_cases import (
    HOSTILE_VALUES, SIZE, TEXT_SOURCE, VALID_TEXT, claimed_size_cases, coco_doc, honest_baseline_case, image, json_paths,
    labelme_doc, labelstudio_doc, mutate, run_measured, write_json_dataset, write_text_dataset,
)
from sample_files import tree_snapshot

REPO = Path(__file__).resolve().parents[1]

# an exception's name, a traceback, or the catch-all "unexpected KeyError: …" (not a message that
# merely says "unexpected", as a .qgt's "7 unexpected bytes after the tree block" does)
UNEXPECTED = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b: |Traceback|unexpected [A-Z][A-Za-z]*(Error|Exception)")
DOCS = {"coco": coco_doc, "labelme": labelme_doc, "labelstudio": labelstudio_doc}
SOURCES = {"coco": lambda r: r, "labelme": lambda r: r, "labelstudio": lambda r: r / "tasks.json"}
TEXT_LINES = ["background:0,0,0::", "sky:1,2,3::", "sky:128,128,128::", "1 2 3 sky", "0 0 0 background", "sky",
              "ignore: 999", "ignore: x", "999 0 0 road", "-1 0 0 road", "x:y:z", ":::", "a b c d e", "\x00",
              "road:1,2", "car 9 9 9", "Sky 4 5 6", "\u00e9t\u00e9 1 2 3", "9" * 40, "ignore: none"]


def run_cli(args: list[str]) -> tuple[int, str, str]:
    from qgn.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        except BaseException as exc:
            code = -1
            err.write(f"Traceback (escaped main): {type(exc).__name__}: {exc}\n")
    return code, out.getvalue(), err.getvalue()


def clean(code: int, out: str, err: str, command: str) -> str | None:
    """None when handled cleanly (see the module docstring), else why not."""
    lines = [line for line in err.splitlines() if line.strip()]
    if code not in (0, 2):
        return f"exit {code}"
    if len(lines) > 1 or any(not line.startswith(f"qgn {command}: error: ") for line in lines):
        return f"stderr: {err.strip()[:200]}"
    if UNEXPECTED.search(err) or UNEXPECTED.search(out):
        return f"unanticipated: {(err + out)[:200]}"
    if code == 2 and not lines:
        return "exit 2 without a message"
    return None


def case(family: str, results, base: Path, dataset: Path, args: list[str], allowed: list[Path], expect=None) -> None:
    """Run one case; record whether it was handled cleanly and whether anything outside
    ``allowed`` (and the dataset, which must stay identical) changed under ``base``. ``expect(code,
    out, err)``: why the outcome is wrong though clean (a silent loss, a wrong result), or None."""
    before = tree_snapshot(base)
    code, out, err = run_cli(args)
    problem = clean(code, out, err, args[0]) or (expect(code, out, err) if expect is not None else None)
    after = tree_snapshot(base)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    allowed_prefixes = tuple(str(p.relative_to(base)) for p in allowed if base in p.parents)
    stray = sorted(k for k in changed if not k.startswith(allowed_prefixes))
    if stray:
        problem = (problem or "") + f" wrote/deleted outside: {stray[:3]}"
    results[family].append((args, problem))


def campaign(quick: bool) -> dict:
    results: dict[str, list] = defaultdict(list)
    tmp = Path(tempfile.mkdtemp(prefix="qgn-hostile-"))
    os.environ["QGN_LOG_DIR"] = str(tmp / "logs")
    n = 0

    def fresh() -> Path:
        nonlocal n
        n += 1
        base = tmp / f"c{n}"
        base.mkdir()
        return base

    values = HOSTILE_VALUES[:: 3 if quick else 1]
    for fmt, make in DOCS.items():  # 1. schema mutations of each JSON format, value by value
        doc = make()
        for path in json_paths(doc):
            for value in [("delete",)] + values:
                if value == ("delete",) and not isinstance(path[-1], str):
                    continue
                base = fresh()
                mutated = mutate(doc, path, None, True) if value == ("delete",) else mutate(doc, path, value)
                root = write_json_dataset(base / "ds", fmt, mutated)
                case(f"schema: {fmt}", results, base, root, ["import", SOURCES[fmt](root), "--project", base / "p"],
                     [base / "p"])
    for fmt in VALID_TEXT:  # 2. label-map files with hostile lines
        for line in TEXT_LINES:
            base = fresh()
            root = write_text_dataset(base / "ds", fmt, VALID_TEXT[fmt] + line + "\n")
            case(f"label maps: {fmt}", results, base, root,
                 ["import", TEXT_SOURCE[fmt](root), "--project", base / "p", "--format", fmt], [base / "p"])
    for how in ("../../outside/secret.png", "ABSOLUTE", "LINK"):  # 3. paths and links outside
        for fmt in ("labelme", "coco"):
            base = fresh()
            image(base / "outside" / "secret.png")
            doc = DOCS[fmt]()
            name = str(base / "outside" / "secret.png") if how == "ABSOLUTE" else how
            if how == "LINK":
                name = "a.png"
            if fmt == "labelme":
                doc["imagePath"] = name
            else:
                doc["images"][0]["file_name"] = name
            root = write_json_dataset(base / "ds", fmt, doc)
            if how == "LINK":
                for found in list(root.rglob("a.png")):
                    found.unlink()
                    found.symlink_to(base / "outside" / "secret.png")
            case("outside the dataset", results, base, root, ["import", SOURCES[fmt](root), "--project", base / "p"],
                 [base / "p"])
            if (base / "p" / "project.json").is_file():
                from qgn.project import Project

                if any("secret" in str(im.path) or (Path(im.path).is_symlink()) for im in Project.open(base / "p").images):
                    results["outside the dataset"][-1] = (results["outside the dataset"][-1][0], "imported a file "
                                                          "from outside")
    for fmt in ("cvat", "cityscapes", "ids", "camvid"):
        base = fresh()
        root = write_text_dataset(base / "ds", fmt, VALID_TEXT[fmt])
        mask = root / {"cvat": "SegmentationClass/a.png", "cityscapes": "gtFine/default/x/a_gtFine_labelIds.png",
                       "ids": "labels/a.png", "camvid": "defaultannot/a.png"}[fmt]
        shutil.copy(mask, base / "private.png")
        mask.unlink()
        mask.symlink_to(base / "private.png")
        case("outside the dataset", results, base, root,
             ["import", TEXT_SOURCE[fmt](root), "--project", base / "p", "--format", fmt], [base / "p"])
    settings = ["log_every=0", "checkpoint_every=0", "iterations=abc", "lr=1e9", "lr=nan", "lr=inf",
                "batch_size=100000", "input_scale=0", "crop=-1", "flip=3", "scale_min=0", "seed=-1"]
    for setting in settings:  # 4. settings
        base = fresh()
        case("settings", results, base, base, ["train", "--preset", "demo", "--set", setting, "--out", base / "run"],
             [base / "run"])
    for option in (["--batch-size", "100000"], ["--iters", "0"], ["--lr", "nan"], ["--lr", "-1"]):
        base = fresh()
        case("settings", results, base, base, ["finetune", "--model", "demo", "--images", base, "--labels", base,
                                               "--out", base / "n.safetensors", *option], [])
    own_files(results, fresh, quick)
    later_entry_points(results, fresh)
    seventh_round(results, fresh)
    serve_requests(results, fresh())
    return results, tmp


JSON_CLASSES = {"malformed": '["road", "sky",\n', "claims 10^9 classes": '{"num_classes": 1000000000}',
                "an object of ids": '{"road": 0}', "a number": "1000000000", "nested": "[" * 100_000,
                "a list over lines": '[\n"road",\n"sky"\n]\n'}


def seventh_only() -> tuple[dict, Path]:
    """The seventh round's cases and ``serve_requests`` alone (``--seventh``)."""
    results: dict[str, list] = defaultdict(list)
    tmp = Path(tempfile.mkdtemp(prefix="qgn-hostile-"))
    os.environ["QGN_LOG_DIR"] = str(tmp / "logs")
    count = iter(range(1, 10**6))

    def fresh() -> Path:
        base = tmp / f"c{next(count)}"
        base.mkdir()
        return base

    seventh_round(results, fresh)
    serve_requests(results, fresh())
    return results, tmp


def seventh_round(results, fresh) -> None:
    """The seventh hostile round's cases, each with what a clean outcome must also show (a refusal, a
    count): --classes given JSON, a project export whose image files are gone or loop, CVAT and FiftyOne
    masks named x.PNG, x.png beside x.PNG, two x.png in two sub-folders, a photo beside its grey map,
    and a --document-root that loops."""
    import numpy as np
    from PIL import Image

    from qgn.classes import ClassSet
    from qgn.formats import ExportItem, export_dataset

    refused = lambda code, out, err: None if code == 2 else f"exit {code}: taken"  # noqa: E731
    for name, text in JSON_CLASSES.items():
        for command in ("convert", "stats", "import"):
            base = fresh()
            image(base / "ds" / "images" / "m.png")
            Image.fromarray(np.zeros(SIZE_HW, np.uint8)).save(base / "ds" / "m.png")
            (base / "ds" / "classes.json").write_text(text)
            args = {"convert": ["convert", base / "ds" / "m.png", base / "o" / "m.qgt"], "stats": ["stats", base / "ds" / "m.png"],
                    "import": ["import", base / "ds", "--format", "ids", "--project", base / "o"]}[command]
            want = (lambda c, o, e: None if c == 0 else f"exit {c}") if name == "a list over lines" else refused
            if name == "a list over lines" and command != "stats":  # the classes written: road and sky
                want = lambda c, o, e, q=base / "o", m=command: _names_written(q, m, ("road", "sky"))  # noqa: E731
            case("--classes JSON", results, base, base / "ds", [*args, "--classes", base / "ds" / "classes.json"],
                 [base / "o"], want)
    seventh_round_export(results, fresh)
    for fmt, masks in (("cvat", "SegmentationClass"), ("fiftyone", "labels")):  # 1. x.PNG masks
        for twin in (False, True):
            base = fresh()
            items = [ExportItem(n, np.zeros(SIZE_HW, np.int64), image(base / "photos" / f"{n}.png")) for n in "ab"]
            export_dataset(items, ClassSet(("x", "y"), (), 255), base / "out", [fmt], images="copy")
            root = base / "out" / fmt
            lower = root / masks / "b.png"
            if twin:
                lower.with_suffix(".PNG").write_bytes(lower.read_bytes())
            else:
                lower.rename(lower.with_suffix(".PNG"))
            want = refused if twin else (lambda c, o, e: None if "imported 2 of 2" in o else "an x.PNG mask left out")
            case("x.PNG masks", results, base, root, ["import", root, "--project", base / "p"], [base / "p"], want)
    seventh_round_folders(results, fresh)


def seventh_round_export(results, fresh) -> None:
    """A project export whose image files are gone or loop: each named where the format needs the file
    (a copy, FiftyOne, CamVid), exit 2; qgt, and CVAT without --include-images, export it and say so."""
    import numpy as np

    from qgn.classes import ClassSet
    from qgn.project import Project

    for fmt in ("coco", "labelme", "fiftyone", "cvat", "camvid", "qgt", "qgt,png,cvat"):
        base = fresh()
        paths = [image(base / "ds" / f"{n}.png") for n in "abc"]
        project = Project.create(base / "ds" / "p", paths, ClassSet(("x", "y"), (), 255))
        for im in project.images:
            project.save_annotation(im, np.zeros(SIZE_HW, np.uint8))
        paths[1].unlink()
        paths[2].unlink()
        paths[2].symlink_to("c.png")
        named = lambda c, o, e: None if c == 2 and "b.png" in e and "c.png" in e else f"exit {c}, not named"  # noqa: E731
        said = lambda c, o, e, q=base / "o": None if c == 0 and "b.png" in o and "c.png" in o and (  # noqa: E731
            q / "qgt" / "b.qgt").is_file() else f"exit {c}, not said or not written"
        copy = [] if "," in fmt else ["--include-images", "copy"]  # (CVAT's masks need no image file without it)
        case("export: image gone or a loop", results, base, base / "ds",
             ["export", "--project", base / "ds" / "p", "--formats", fmt, "--out", base / "o", *copy],
             [base / "o"], said if fmt.startswith("qgt") else named)


SIZE_HW = (SIZE[1], SIZE[0])  # (height, width) of every image


def seventh_round_folders(results, fresh) -> None:
    """Two x.png in two sub-folders (ids), a photo beside its grey map, a --document-root that loops."""
    import numpy as np
    from PIL import Image

    base = fresh()
    for sub in ("a", "b"):
        image(base / "ds" / "images" / sub / "x.png")
        (base / "ds" / "labels" / sub).mkdir(parents=True)
        Image.fromarray(np.zeros(SIZE_HW, np.uint8)).save(base / "ds" / "labels" / sub / "x.png")
    (base / "ds" / "classes.txt").write_text("road\nsky\n")
    case("same names, two sub-folders", results, base, base / "ds", ["import", base / "ds", "--project", base / "p"],
         [base / "p"], lambda c, o, e: None if "imported 2 of 2" in o else "not both imported")
    base = fresh()
    image(base / "ds" / "x.jpg")
    Image.fromarray(np.zeros(SIZE_HW, np.uint8)).save(base / "ds" / "x.png")
    (base / "classes.txt").write_text("road\nsky\n")
    case("a photo beside its map", results, base, base / "ds",
         ["import", base / "ds", "--classes", base / "classes.txt", "--project", base / "p"], [base / "p"],
         lambda c, o, e: None if "imported 1 of 1" in o else "the pair not imported")
    base = fresh()
    (base / "loop").symlink_to("loop")
    case("--document-root loop", results, base, base, ["serve", "--model", "demo", "--port", "0", "--document-root",
                                                        base / "loop"], [],
         lambda c, o, e: None if c == 2 and "loop of symbolic links" in e else "the loop not said")


def _names_written(out: Path, command: str, names: tuple) -> str | None:
    """Why the classes ``command`` wrote into ``out`` (convert: m.qgt, import: a project) are not ``names``."""
    from qgn.project import Project
    from qgn.quadtree.qgt import read_qgt

    try:
        got = read_qgt(out / "m.qgt")[1].names if command == "convert" else Project.open(out).classes.names
    except (OSError, ValueError) as exc:
        return f"nothing written: {exc}"
    return None if got == names else f"classes {got!r}"


def later_entry_points(results, fresh) -> None:
    """Entry points added after the first campaign (#20): ``qgn samples`` options, image names
    longer than a file name can be (the batch goes on), a PostScript file as a photo (Pillow would
    run Ghostscript on it), and the previous frame's labels carried onto thin frames."""
    for option in (["--size", "0x0"], ["--size", "100000x100000"], ["--count", "0"], ["--count", "100000000"],
                   ["--seed", "-1"], ["--size", "1x1"], ["--size", "x"]):
        base = fresh()
        case("samples options", results, base, base, ["samples", base / "s", "--count", "1", *option], [base / "s"])
    for fmt in ("coco", "labelme"):
        base = fresh()
        doc = DOCS[fmt]()
        if fmt == "coco":
            doc["images"][0]["file_name"] = "x" * 300 + ".png"
        else:
            doc["imagePath"] = "x" * 300 + ".png"
        root = write_json_dataset(base / "ds", fmt, doc)
        case("long image names", results, base, root, ["import", SOURCES[fmt](root), "--project", base / "p"],
             [base / "p"])
    base = fresh()
    (base / "ds").mkdir()
    (base / "ds" / "photo.png").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{} loop\n")
    case("image files", results, base, base / "ds", ["predict", base / "ds" / "photo.png", "--out", base / "o"],
         [base / "o"])
    carry_shapes(results)


def carry_shapes(results) -> None:
    """carried_start on small and thin frames, each in a child process (OpenCV's flow crashed on some)."""
    import subprocess

    for h, w in ((1, 1), (8, 100), (12, 200), (10, 50), (2, 40000)):
        script = ("import numpy as np; from qgn.annotation.carry import carried_start\n"
                  f"i = np.random.default_rng(0).integers(0, 255, ({h}, {w}, 3), dtype=np.uint8)\n"
                  f"l = np.zeros(({h}, {w}), np.uint8); assert (carried_start(i, l, i, 255) == l).all()")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        problem = None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-150:]}"
        results["carry: thin frames"].append(([f"{h}x{w}"], problem))


SERVE_CONFIG = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
                '<Label value="sky"/><Label value="road"/></BrushLabels></View>')


def serve_requests(results, base: Path) -> None:
    """``qgn serve`` against hostile HTTP requests: framing, bodies, field types, image references
    outside the document root, PostScript and bomb images, label configs. Handled cleanly: a 4xx
    (a 2xx where the request is fine) with a JSON ``error`` and no traceback, and /health answers after."""
    import socket
    import threading

    from qgn.resources import bundled_model_path, samples_dir
    from qgn.serve.backend import QGNBackend
    from qgn.serve.server import make_server
    from sample_files import png_claiming

    root = base / "root"
    (root / "images").mkdir(parents=True)
    shutil.copy(samples_dir() / "images" / "scene_01.png", root / "images" / "a.png")
    image(base / "secret.png")
    (root / "images" / "link.png").symlink_to(base / "secret.png")
    (root / "images" / "ps.png").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{} loop\n")
    png_claiming(root / "images" / "bomb.png", 30000, 30000)
    backend = QGNBackend(bundled_model_path("demo"), "cpu", root, train_out=base / "models")
    httpd = make_server(backend, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]

    def send(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
            return out

    def post(path: str, body) -> bytes:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))

    task = lambda ref: {"tasks": [{"id": 1, "data": {"image": ref}}], "label_config": SERVE_CONFIG}  # noqa: E731
    cases = {
        "Content-Length over the body": send(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500000000\r\n\r\n{"),
        "chunked with a Content-Length": send(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                              b"Content-Length: 5\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n"),
        "nested 100000 deep": post("/predict", b'{"tasks":[' + b"[" * 100000 + b"]" * 100000 + b"]}"),
        "a number of 5000 digits": post("/predict", b'{"tasks": [' + b"1" * 5000 + b"]}"),
        "not UTF-8": post("/predict", b'{"tasks": "\xff"}'),
        "a path not UTF-8": send(b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"),
    }
    for field, value in (("tasks", "x"), ("tasks", [None]), ("label_config", 5), ("label_config", "<View")):
        cases[f"{field}={value!r}"] = post("/predict", {**task("images/a.png"), field: value})
    for ref in ("../../etc/passwd", "/data/local-files/?d=../../etc/passwd", "/data/local-files/?d=images/link.png",
                "file:///etc/passwd", "images/a\x00.png", "images/ps.png", "images/bomb.png", "x" * 5000):
        cases[f"image {ref[:40]!r}"] = post("/predict", task(ref))
    for body in ({"action": "ANNOTATION_CREATED", "project": [1]}, {"action": "TASKS_DELETED", "tasks": "x"},
                 {"schema": "<!DOCTYPE x [<!ENTITY a 'a'>]><View/>"}):
        cases[f"{'webhook' if 'action' in body else 'setup'} {json.dumps(body)[:40]}"] = \
            post("/webhook" if "action" in body else "/setup", body)
    for name, raw in cases.items():
        head, _, rest = raw.partition(b"\r\n\r\n")
        status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        problem = None
        if not 400 <= status < 500 or (name == "a path not UTF-8" and status != 400):
            problem = f"status {status}"
        elif b"Traceback" in rest or b"internal error" in rest or b'"error"' not in rest[:length]:
            problem = f"answer {rest[:120]!r}"
        elif rest[length:].strip():
            problem = f"a second answer: {rest[length:length + 80]!r}"
        results["serve requests"].append(([name], problem))
    health = send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    results["serve requests"].append((["/health afterwards"], None if b" 200 " in health.split(b"\r\n")[0] else "down"))
    httpd.shutdown()
    httpd.server_close()


def own_files(results, fresh, quick: bool) -> None:
    """qgn's own formats: .qgt mutations through ``export``, project.json values through
    ``export --project``, model JSON values and weights through ``predict``."""
    import random
    import zlib

    import numpy as np

    from qgn.classes import ClassSet
    from qgn.project import Project
    from qgn.quadtree import Quadtree
    from qgn.quadtree.qgt import encode_qgt

    rng = random.Random(20)
    label = np.zeros((20, 30), np.uint8)
    label[5:15, 8:25], label[:3, :4] = 1, 255
    good = encode_qgt(Quadtree.from_label(label, 3, 255, 4), ClassSet(("a", "b", "c"), (), 255))
    mutations = [good[:n] for n in range(len(good))] + [good + b"garbage"]
    for _ in range(100 if quick else 2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data) - 4)] ^= 1 << rng.randrange(8)
        data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, "little")
        mutations.append(bytes(data))
    for data in mutations:
        base = fresh()
        (base / "ds").mkdir()
        (base / "ds" / "m.qgt").write_bytes(data)
        case(".qgt files", results, base, base / "ds", ["export", base / "ds" / "m.qgt", "--png", base / "o" / "m.png"],
             [base / "o"])
    values = HOSTILE_VALUES[:: 3 if quick else 1]
    base = fresh()
    image(base / "a.png")
    template = Project.create(base / "p", [base / "a.png"], ClassSet(("a", "b", "c"), (), 255))
    template.save_annotation(template.images[0], label[:8, :12])
    doc = json.loads((base / "p" / "project.json").read_text())
    for path in json_paths(doc):
        for value in values:
            case_base = fresh()
            shutil.copytree(base, case_base / "ds", symlinks=True)
            (case_base / "ds" / "p" / "project.json").write_text(json.dumps(mutate(doc, path, value)))
            case("project.json", results, case_base, case_base / "ds",
                 ["export", "--project", case_base / "ds" / "p", "--out", case_base / "o"], [case_base / "o"])
    model_files(results, fresh, values)


def model_files(results, fresh, values) -> None:
    """A tiny model's JSON mutated value by value, and its weights as other types, shapes and files."""
    import torch
    from safetensors.torch import save

    from qgn.classes import ClassSet
    from qgn.model.checkpoint import save_model
    from qgn.model.qgn import QGN, QGNConfig

    base = fresh()
    torch.manual_seed(0)
    model = save_model(base / "m.safetensors", QGN(QGNConfig.from_preset("tiny", ClassSet.generic(3, 255))).eval())
    image(base / "a.png")
    doc = json.loads(model.with_suffix(".json").read_text())
    state = {k: v.detach() for k, v in QGN(QGNConfig.from_preset("tiny", ClassSet.generic(3, 255))).state_dict().items()}
    first = next(k for k, v in state.items() if v.is_floating_point())
    weights = {"empty": b"", "garbage": b"\x80\x04\x95 not a safetensors file", "truncated": model.read_bytes()[:300],
               "header claims 2**60 bytes": (1 << 60).to_bytes(8, "little") + b"{}"}
    for name, dtype in (("float8", torch.float8_e4m3fn), ("complex", torch.complex64), ("bool", torch.bool)):
        weights[name] = save({**state, first: state[first].to(dtype)})
    weights["NaN"] = save({**state, first: torch.full_like(state[first], float("nan"))})
    weights["other shape"] = save({**state, first: torch.zeros(3, 3)})
    cases = [(json.dumps(mutate(doc, path, value)), None) for path in json_paths(doc) for value in values]
    cases += [(json.dumps(doc), data) for data in weights.values()]
    for text, data in cases:
        case_base = fresh()
        shutil.copytree(base, case_base / "ds")
        (case_base / "ds" / "m.json").write_text(text)
        if data is not None:
            (case_base / "ds" / "m.safetensors").write_bytes(data)
        case("model files", results, case_base, case_base / "ds",
             ["predict", "--model", case_base / "ds" / "m.safetensors", case_base / "ds" / "a.png", "--out",
              case_base / "o"], [case_base / "o"])


def claimed_sizes(tmp: Path) -> tuple[list, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    base = tmp / "sizes"
    base.mkdir()
    _, baseline, _, _ = run_measured(honest_baseline_case(base), env)
    rows = []
    for name, args in claimed_size_cases(base).items():
        code, peak, err, seconds = run_measured(args, env)
        problem = clean(code, "", err, args[0]) or (None if code == 2 else f"exit {code}")
        rows.append((name, peak, seconds, problem, err.strip()[:140]))
    # a thin strip is padded to 32 rows before the network: a 1-row strip of 2,000,000 pixels (a
    # few KB) against the largest photo that runs unresized (2048x2048, the working pixel limit);
    # before the padded size was bounded it took 32x its pixels (1x1,000,000: 2.5 GB)
    image(base / "strip.png", (2_000_000, 1))
    image(base / "square.png", (2048, 2048))
    _, square, _, _ = run_measured(["predict", base / "square.png", "--out", base / "sq"], env, 600)
    code, peak, err, seconds = run_measured(["predict", base / "strip.png", "--out", base / "st"], env, 600)
    problem = clean(code, "", err, "predict") or (None if peak <= 2 * square else f"{peak / square:.1f}x the photo")
    rows.append((f"1x2,000,000 PNG -> predict (2048x2048: {square / 1e3:.0f} MB)", peak, seconds, problem,
                 f"{(base / 'strip.png').stat().st_size} bytes; exit {code}"))
    return rows, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every third hostile value only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seventh", action="store_true", help="the seventh round's cases alone (and serve's)")
    args = parser.parse_args()
    from qgn.bench.provenance import provenance

    record = provenance() if args.json else None  # the commit, torch, threads, machine, command: as the run starts
    results, tmp = seventh_only() if args.seventh else campaign(args.quick)
    rows, baseline = ([], 0) if args.seventh else claimed_sizes(tmp)
    summary = {family: {"tried": len(r), "clean": sum(1 for _, p in r if p is None),
                        "not clean": [(" ".join(map(str, a[:2])), p) for a, p in r if p is not None][:5]}
               for family, r in results.items()}
    if rows:
        summary["claimed sizes"] = {"tried": len(rows), "clean": sum(1 for r in rows if r[3] is None),
                                    "baseline_peak_mb": round(baseline / 1e3), "cases": [
                                        {"case": r[0], "peak_mb": round(r[1] / 1e3), "seconds": round(r[2], 1),
                                         "problem": r[3], "message": r[4]} for r in rows]}
    if args.json:
        summary["provenance"] = record
        print(json.dumps(summary, indent=1))
    else:
        print(f"{'family':32s} {'tried':>6s} {'clean':>6s}")
        for family, s in summary.items():
            print(f"{family:32s} {s['tried']:6d} {s['clean']:6d}")
            for item in s.get("not clean", []):
                print("    NOT CLEAN:", item)
        if rows:
            print(f"\nclaimed sizes (peak RSS; an honest import of the same dataset: {baseline / 1e3:.0f} MB):")
        for name, peak, seconds, problem, message in rows:
            print(f"  {name:40s} {peak / 1e3:6.0f} MB {seconds:5.1f} s  {problem or 'clean'}: {message[:90]}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
