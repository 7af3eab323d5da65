"""`qgn serve`'s webhooks against Label Studio's 1 s wait (``WEBHOOK_TIMEOUT``): ``--webhooks``
ANNOTATION_CREATED webhooks (an annotator's *Submit*) of large photos posted back to back — each as
soon as the one before is answered (one annotator), and all at once (several submitting together)
— with the wait for the work unbounded (the baseline: answered when kept, as before
``qgn.serve.inorder``) and at ``qgn.serve.inorder.WAIT_S``, in turn in the same run: the time to
each answer and to all of them kept. Then /health and /predict (of a CamVid frame) while a
fine-tune on those annotations runs (START_TRAINING; checked to be at its steps before and after
the probes), against idle, and how long ``stop()`` takes to end it.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_serve_webhooks.py \
        --split ../shared/data/camvid/val [--webhooks 8] [--megapixels 12] [--repeats 2]

``--split`` holds CamVid's ``images/*.jpg`` and ``labels/*.png``; each photo is a CamVid frame and its
label map scaled to ``--megapixels`` (nearest for the labels), written as JPEG into a temporary
folder; each annotation is its sky, road, building and tree as brush regions on the demo model's
classes. (ANNOTATIONS_CREATED, *Create Annotations From Predictions* in bulk, is answered ``ignored``
at once: the model's own predictions are not learnt from.) One torch thread, loopback HTTP,
medians. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CONFIG = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image"><Label value="Sky"/>'
          '<Label value="road"/><Label value="building"/><Label value="tree"/></BrushLabels></View>')
REGIONS = [(0, "Sky"), (3, "road"), (1, "building"), (5, "tree")]  # CamVid id, demo class


def call(url: str, body: dict | None = None) -> tuple[float, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        answer = json.loads(response.read())
    return time.perf_counter() - start, answer


def large_photo(split: Path, name: str, folder: Path, megapixels: float) -> tuple[str, list]:
    """The frame ``name`` scaled to ``megapixels`` as ``folder/images/<stem>.jpg``, and its brush regions."""
    import numpy as np
    from PIL import Image

    from qgn.formats.labelstudio import encode_ls_rle

    image = Image.open(split / "images" / name).convert("RGB")
    factor = math.sqrt(megapixels * 1e6 / (image.width * image.height))
    size = (round(image.width * factor), round(image.height * factor))
    (folder / "images").mkdir(exist_ok=True)
    image.resize(size, Image.BILINEAR).save(folder / "images" / f"{Path(name).stem}.jpg", quality=90)
    label = np.asarray(Image.open(split / "labels" / f"{Path(name).stem}.png").resize(size, Image.NEAREST))
    results = [{"from_name": "tag", "to_name": "image", "type": "brushlabels", "original_width": size[0],
                "original_height": size[1], "value": {"rle": encode_ls_rle(label == cid), "brushlabels": [cls]}}
               for cid, cls in REGIONS if (label == cid).any()]
    return f"/data/local-files/?d=images/{Path(name).stem}.jpg", results


def burst(url: str, photos: list, at_once: bool) -> tuple[list[float], list[str]]:
    """Each photo's ANNOTATION_CREATED (task i + 1) posted as soon as the one before is answered, or
    all at once (one connection each, as annotators submitting together): (seconds to each answer,
    each answer's status)."""
    answers: list = [None] * len(photos)

    def post(i: int) -> None:
        ref, results = photos[i]
        body = {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": CONFIG},
                "task": {"id": i + 1, "data": {"image": ref}}, "annotation": {"id": i + 1, "result": results}}
        answers[i] = call(url + "/webhook", body)

    clients = [threading.Thread(target=post, args=(i,)) for i in range(len(photos))]
    for client in clients:
        client.start()
        if not at_once:
            client.join()
    for client in clients:
        client.join()
    return [a[0] for a in answers], [a[1]["status"] for a in answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True)
    parser.add_argument("--webhooks", type=int, default=8)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-iters", type=int, default=100)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from qgn.bench.provenance import provenance

    record = provenance()  # the commit, torch, threads, machine, command: as the run starts
    from PIL import Image

    from qgn.resources import bundled_model_path
    from qgn.serve import inorder
    from qgn.serve.backend import QGNBackend
    from qgn.serve.server import make_server

    split = Path(args.split)
    names = sorted(p.name for p in (split / "images").glob("*.jpg"))[:args.webhooks]
    with tempfile.TemporaryDirectory(prefix="bench-serve-webhooks-") as folder, \
            tempfile.TemporaryDirectory(prefix="bench-serve-webhooks-out-") as out:
        photos = [large_photo(split, name, Path(folder), args.megapixels) for name in names]
        size = Image.open(Path(folder) / "images" / f"{Path(names[0]).stem}.jpg").size
        shutil.copy(split / "images" / names[0], Path(folder) / names[0])  # /predict's, at CamVid's size
        backend = QGNBackend(bundled_model_path("demo"), "cpu", folder, train_out=out, train_every=10 ** 9,
                             finetune_iterations=args.train_iters)
        httpd = make_server(backend, "127.0.0.1", 0, quiet=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        runs: dict[str, list] = {f"{posted}, {waits}": [] for posted in ("one after another", "all at once")
                                 for waits in ("baseline (unbounded)", f"wait {inorder.WAIT_S:g} s")}
        for repeat in range(args.repeats):
            for mode in runs:  # the same tasks each time: the kept ones replaced
                backend.webhooks.wait_s = 1e9 if "baseline" in mode else inorder.WAIT_S
                start = time.perf_counter()
                times, statuses = burst(url, photos, "all at once" in mode)
                backend.webhooks.settle(600)
                runs[mode].append((times, time.perf_counter() - start, statuses))
        kept = len(backend.corrections)
        webhooks = {mode: {"answered_median_s": statistics.median(t for r in rs for t in r[0]),
                           "answered_max_s": max(t for r in rs for t in r[0]),
                           "all_kept_s": statistics.median(r[1] for r in rs),
                           "statuses": sorted({s for r in rs for s in r[2]})} for mode, rs in runs.items()}
        task = {"tasks": [{"id": 1, "data": {"image": f"/data/local-files/?d={names[0]}"}}], "label_config": CONFIG}

        def predict() -> float:
            backend.cache.clear()  # predicted, not answered from the cache
            return call(url + "/predict", task)[0]

        idle_health = [call(url + "/health")[0] for _ in range(20)]
        idle_predict = [predict() for _ in range(3)]
        started = call(url + "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
        while "step" not in backend.training_status and "fine-tuning" in backend.training_status:
            time.sleep(0.1)  # its encoder features are made first
        at_steps = ": step " in backend.training_status
        busy_health, busy_predict = [], []
        for _ in range(3):
            busy_health += [call(url + "/health")[0] for _ in range(4)]
            busy_predict.append(predict())
        status_after = backend.training_status
        stop_start = time.perf_counter()
        backend.stop()
        stopped_s = time.perf_counter() - stop_start
        stopped = {"status": backend.training_status, "saved": sorted(p.name for p in Path(out).iterdir())}
        httpd.shutdown()
    med = statistics.median
    print(json.dumps({
        "webhooks": args.webhooks, "megapixels": args.megapixels, "photo_size": list(size),
        "annotations_kept": kept, "burst": webhooks,
        "fine_tune": {"start_training_s": started[0], "answer": started[1]["status"], "at_its_steps": at_steps,
                      "still_training_after_the_probes": ": step " in status_after, "status_after": status_after,
                      "stop_s": stopped_s, "after_stop": stopped},
        "health_ms": {"idle": med(idle_health) * 1e3, "training": med(busy_health) * 1e3,
                      "training_max": max(busy_health) * 1e3},
        "predict_s": {"idle": med(idle_predict), "training": med(busy_predict),
                      "ratio": med(busy_predict) / med(idle_predict)},
        "provenance": record}, indent=1))  # the commit, torch, threads, machine, command: as the run started


if __name__ == "__main__":
    main()
