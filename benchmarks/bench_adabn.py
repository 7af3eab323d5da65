"""AdaBN (``qgn.train.adapt.adapt_norm``) for the measurements of benchmarks/RESULTS.md, "Adapting
the normalisation": re-estimate a model's BatchNorm statistics on frames FIRST..LAST (1-based, in
sorted order) of a folder of images and save the adapted model as OUT (never over MODEL), to be
scored with ``qgn eval`` / ``qgn bench --only annotate``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_adabn.py MODEL FOLDER FIRST LAST OUT.safetensors \
        [--decoder] [--batch 8] [--passes 1]

MODEL: a model file or a bundled model's name (camvid). No domain reference is written beside OUT
(the original's describes other encoder statistics; see RESULTS.md).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402

from qgn.data.imageio import read_rgb  # noqa: E402
from qgn.model.checkpoint import load_model, save_model  # noqa: E402
from qgn.resources import default_model  # noqa: E402
from qgn.train.adapt import adapt_norm  # noqa: E402
from qgn.train.finetune import same_file  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("folder")
    p.add_argument("first", type=int)
    p.add_argument("last", type=int)
    p.add_argument("out")
    p.add_argument("--decoder", action="store_true")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--passes", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(1)
    model_path = default_model(args.model)
    if same_file(Path(args.out), model_path):
        sys.exit("bench_adabn: OUT is the model itself; choose a new name")
    files = sorted(f for f in Path(args.folder).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[args.first - 1:args.last]
    model = load_model(model_path)
    start = time.perf_counter()
    used = adapt_norm(model, lambda: (read_rgb(f) for f in files), decoder=args.decoder, batch_size=args.batch,
                      passes=args.passes)
    seconds = time.perf_counter() - start
    save_model(args.out, model, extra={"adapted": {"from": model_path.name, "images": used, "first": files[0].name,
                                                   "last": files[-1].name, "decoder": args.decoder,
                                                   "batch": args.batch, "passes": args.passes}})
    print(f"{args.out}: BatchNorm statistics of the {'encoder and decoder' if args.decoder else 'encoder'} from "
          f"{used} images ({files[0].name} .. {files[-1].name}), batch {args.batch}, {args.passes} pass(es), "
          f"{seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
