"""`qgn serve` throughput: Label Studio /predict requests per second on a folder of images, against
the same model's direct prediction (``qgn.infer.ImageSession(...).run(PC)`` + label, what
``qgn predict`` does per image) measured in the same run; and /health's answer time while a
prediction is running.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_serve.py --model camvid \
        --images ../shared/data/camvid/val/images [--limit N]

Each request is what Label Studio sends for one task (its image as ``/data/local-files/?d=NAME``,
read from ``--document-root``, the project's labelling config), one at a time, over loopback HTTP.
Both passes run one torch thread. The serve pass includes reading the PNG, the brush RLE encoding of
every class region and the JSON; the direct pass includes reading the PNG. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request
from pathlib import Path


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="camvid")
    parser.add_argument("--images", required=True)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from qgn.bench.provenance import provenance
    from qgn.data.imageio import read_rgb
    from qgn.formats.labelstudio import label_config
    from qgn.infer import ImageSession
    from qgn.propagation import Scheme
    from qgn.resources import default_model
    from qgn.serve.backend import QGNBackend
    from qgn.serve.server import make_server

    record = provenance()  # the commit, torch, threads, machine, command: as the run starts

    folder = Path(args.images)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    images = images[: args.limit] if args.limit else images
    backend = QGNBackend(default_model(args.model), "cpu", folder)
    server = make_server(backend, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    config = label_config(backend.current.model.config.classes)
    post(f"{url}/setup", {"project": "1.0", "schema": config})
    model = backend.current.model
    ImageSession(model, read_rgb(images[0])).run(Scheme("pc")).label()  # warm-up

    direct = []
    for path in images:
        start = time.perf_counter()
        ImageSession(model, read_rgb(path)).run(Scheme("pc")).label()
        direct.append(time.perf_counter() - start)
    served, health = [], []
    for path in images:
        task = {"id": 1, "data": {"image": f"/data/local-files/?d={path.name}"}}
        done = threading.Event()

        def probe():
            while not done.is_set():
                t = time.perf_counter()
                urllib.request.urlopen(f"{url}/health", timeout=5).read()
                health.append(time.perf_counter() - t)
                time.sleep(0.05)

        prober = threading.Thread(target=probe, daemon=True)
        start = time.perf_counter()
        prober.start()
        answer = post(f"{url}/predict", {"tasks": [task], "label_config": config})
        served.append(time.perf_counter() - start)
        done.set()
        prober.join()
        assert answer["results"][0]["result"], path
    server.shutdown()
    print(json.dumps({
        "model": args.model, "images": len(images), "torch_threads": 1,
        "direct_images_per_s": round(len(direct) / sum(direct), 3),
        "serve_predictions_per_s": round(len(served) / sum(served), 3),
        "serve_over_direct_time": round(sum(served) / sum(direct), 3),
        "direct_median_s": round(statistics.median(direct), 3), "serve_median_s": round(statistics.median(served), 3),
        "health_during_predict_median_ms": round(1e3 * statistics.median(health), 2),
        "health_during_predict_max_ms": round(1e3 * max(health), 2), "health_probes": len(health),
        "provenance": record,  # the commit, torch, threads, machine, command: as the run started
    }, indent=1))


if __name__ == "__main__":
    main()
