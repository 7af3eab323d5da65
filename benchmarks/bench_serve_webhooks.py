"""`qgn serve`'s webhooks against Label Studio's 1 s wait (``WEBHOOK_TIMEOUT``): the time to the
answer of one ANNOTATIONS_CREATED of ``--tasks`` annotations (what *Create Annotations From
Predictions* posts), and to all of them kept, with the wait for the work unbounded (the baseline:
answered when kept, as before ``qgn.serve.inorder``) and at ``qgn.serve.inorder.WAIT_S``,
alternating in the same run; then /health and /predict while a fine-tune runs, against idle.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_serve_webhooks.py \
        --split ../shared/data/camvid/val [--tasks 200] [--repeats 3]

``--split`` holds CamVid's ``images/*.jpg`` and ``labels/*.png``; each annotation is the label map's
sky, road, building and tree as brush regions on the demo model's classes. One torch thread,
loopback HTTP, medians. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
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


def annotation(split: Path, name: str, number: int) -> tuple[dict, dict]:
    import numpy as np
    from PIL import Image

    from qgn.formats.labelstudio import encode_ls_rle

    label = np.asarray(Image.open(split / "labels" / f"{Path(name).stem}.png"))
    results = [{"from_name": "tag", "to_name": "image", "type": "brushlabels", "original_width": label.shape[1],
                "original_height": label.shape[0], "value": {"rle": encode_ls_rle(label == cid), "brushlabels": [cls]}}
               for cid, cls in REGIONS if (label == cid).any()]
    return {"id": number, "data": {"image": f"/data/local-files/?d=images/{name}"}}, {"id": number, "result": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from qgn.resources import bundled_model_path
    from qgn.serve import inorder
    from qgn.serve.backend import QGNBackend
    from qgn.serve.server import make_server

    split = Path(args.split)
    names = sorted(p.name for p in (split / "images").glob("*.jpg"))
    with tempfile.TemporaryDirectory(prefix="bench-serve-webhooks-") as out:
        backend = QGNBackend(bundled_model_path("demo"), "cpu", split, train_out=out, train_every=10 ** 9,
                             finetune_iterations=100)
        httpd = make_server(backend, "127.0.0.1", 0, quiet=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        runs: dict[str, list] = {"baseline (unbounded)": [], f"wait {inorder.WAIT_S:g} s": []}
        for repeat in range(2 * args.repeats):
            mode = list(runs)[repeat % 2]
            backend.webhooks.wait_s = 1e9 if repeat % 2 == 0 else inorder.WAIT_S
            pairs = [annotation(split, names[i % len(names)], repeat * args.tasks + i) for i in range(args.tasks)]
            body = {"action": "ANNOTATIONS_CREATED", "project": {"id": 1, "label_config": CONFIG},
                    "task": [p[0] for p in pairs], "annotation": [p[1] for p in pairs]}
            start = time.perf_counter()
            answered, answer = call(url + "/webhook", body)
            backend.webhooks.settle(600)
            runs[mode].append((answered, time.perf_counter() - start, answer["status"]))
        webhooks = {mode: {"answered_s": statistics.median(r[0] for r in rs), "kept_s": statistics.median(r[1] for r in rs),
                           "statuses": [r[2] for r in rs]} for mode, rs in runs.items()}
        task = {"tasks": [{"id": 1, "data": {"image": f"/data/local-files/?d=images/{names[0]}"}}], "label_config": CONFIG}

        def predict() -> float:
            backend.cache.clear()  # predicted, not answered from the cache
            return call(url + "/predict", task)[0]

        idle_health = [call(url + "/health")[0] for _ in range(20)]
        idle_predict = [predict() for _ in range(5)]
        call(url + "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
        while "step" not in backend.training_status and "fine-tuning" in backend.training_status:
            time.sleep(0.1)  # its encoder features are made first
        busy_health, busy_predict = [], []
        for _ in range(5):
            busy_health += [call(url + "/health")[0] for _ in range(4)]
            busy_predict.append(predict())
        still = "fine-tuning" in backend.training_status
        backend.stop()
        httpd.shutdown()
    med = statistics.median
    print(json.dumps({"tasks": args.tasks, "webhooks": webhooks, "training_ran_throughout": still,
                      "health_ms": {"idle": med(idle_health) * 1e3, "training": med(busy_health) * 1e3,
                                    "training_max": max(busy_health) * 1e3},
                      "predict_s": {"idle": med(idle_predict), "training": med(busy_predict),
                                    "ratio": med(busy_predict) / med(idle_predict)}}, indent=1))


if __name__ == "__main__":
    main()
