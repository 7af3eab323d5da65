"""The named training recipes of ``qgn train --preset NAME``: settings of ``qgn.train.loop.TrainConfig``
by name. No torch here: ``qgn train --help`` lists the names from this registry."""
from __future__ import annotations

# "demo" trains the bundled model on synthetic scenes on a CPU.
PRESETS: dict[str, dict] = {
    # all+gtc: alternating dense and sparse propagation keeps PC within a few points of All
    # (trained with All alone, PC and GTC lag All by ~10 mIoU points on held-out scenes).
    "demo": dict(dataset="synthetic", model="tiny", iterations=1500, batch_size=8, optimizer="adamw", lr=0.004,
                 scheme="all+gtc",
                 synthetic_n=4000, synthetic_size=256, scale_min=0.75, scale_max=1.25, crop=192,
                 checkpoint_every=250, out="runs/demo"),
    "camvid-cpu": dict(dataset="camvid", model="tiny", iterations=800, batch_size=8, optimizer="adamw", lr=0.004,
                       scheme="all", scale_min=0.4, scale_max=0.6, crop=0, checkpoint_every=100, out="runs/camvid-cpu"),
    # The bundled street model (resources/models/camvid.*): trained on CamVid train at half resolution,
    # where a CPU can afford dense (All) iterations; the model records input_scale 0.5, so predict,
    # eval, finetune and the app resize a photo by 0.5 and map the quadtree back to its pixels.
    "camvid-street": dict(dataset="camvid", model="street", iterations=3000, batch_size=8, optimizer="adamw",
                          lr=0.004, scheme="all+gtc", scale_min=0.375, scale_max=0.75, crop=224,
                          class_balance="sqrt-median-frequency", input_scale=0.5, checkpoint_every=200,
                          evaluate_split="val",
                          out="runs/camvid-street"),
    "camvid": dict(dataset="camvid", model="small", iterations=20000, batch_size=8, lr=0.02, scheme="all",
                   weighting="adaptive", out="runs/camvid"),
    "cityscapes-r50": dict(dataset="cityscapes", model="r50", iterations=100000, batch_size=8, lr=0.02,
                           scheme="all", weighting="adaptive", out="runs/cityscapes-r50"),
}
