"""Does learning from corrections make the street model worse on the next frames? On the frames of
ONE CamVid sequence in order (every STRIDE-th of a split), fit the project head (``qgn.project_head``,
as the app does after each save) and fine-tune (``qgn.train.finetune.finetune`` with the app's
Fine-tune settings: 300 iterations, lr 0.001, batch min(4, K)) on the first K frames' ground truth
(the corrections), then score the untouched model, the head and the fine-tuned model on the next M
frames: pixel accuracy and mIoU of each start map (the app's: bilinear probabilities).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_head_vs_finetune.py SPLIT PREFIX STRIDE KS M [ft]

e.g. ``val 0016E5 12 1,3,6 3 ft`` or ``train 0001TP 1 1,3,6 3 ft``. Caveat: the bundled street
model was trained on every CamVid train frame (0001TP, 0006R0, 0016E5) — on a train sequence the
untouched model scores on frames it was trained on; val frames are 0016E5 frames between two of its
training frames (see ``benchmarks/RESULTS.md``).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from qgn.annotation.start import prediction_start  # noqa: E402
from qgn.data.registry import open_dataset  # noqa: E402
from qgn.metrics import ConfusionMatrix  # noqa: E402
from qgn.model.checkpoint import load_model  # noqa: E402
from qgn.project_head import HeadTrainer, pixel_features  # noqa: E402
from qgn.resources import default_model  # noqa: E402


def score(maps, samples, classes):
    confusion = ConfusionMatrix(classes.num_classes)
    for m, s in zip(maps, samples):
        label = np.asarray(s.label).astype(np.int64)
        confusion.add(np.where(label == classes.ignore_index, -1, label), m)
    return round(100 * confusion.accuracy(), 2), round(100 * confusion.miou(), 2)


def main(split, prefix, stride, ks, m, with_finetune):
    torch.set_num_threads(1)
    model = load_model(default_model("camvid")).eval()
    data = open_dataset("camvid", split)
    idx = [i for i in range(len(data)) if data[i].name.startswith(prefix)][::stride][: max(ks) + m]
    samples, classes = [data[i] for i in idx], data.classes
    print(split, prefix, "frames", [s.name for s in samples], flush=True)
    features = [pixel_features(model, s.image) for s in samples]
    model_maps = [prediction_start(model, s.image) for s in samples]
    for k in ks:
        test = samples[k:k + m]
        trainer = HeadTrainer(classes)
        for j in range(k):
            trainer.add(samples[j].name, model, samples[j].image, samples[j].label, features=features[j])
        head = trainer.fit()
        row = {"model": score(model_maps[k:k + m], test, classes),
               "head": score([head.predict(model, s.image, features=features[k + j]) for j, s in enumerate(test)],
                             test, classes)}
        if with_finetune:
            from qgn.train.finetune import FinetuneConfig, finetune

            config = FinetuneConfig(iterations=300, lr=0.001, batch_size=min(4, k))
            start = time.perf_counter()
            tuned = finetune(model, [s.image for s in samples[:k]],
                             [np.asarray(s.label).astype(np.int64) for s in samples[:k]], config).model.eval()
            row["finetune_seconds"] = round(time.perf_counter() - start, 1)
            row["finetuned"] = score([prediction_start(tuned, s.image) for s in test], test, classes)
        print("K", k, json.dumps(row), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), [int(k) for k in a[3].split(",")], int(a[4]), len(a) > 5 and a[5] == "ft")
