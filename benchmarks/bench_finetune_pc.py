"""Why fine-tuning hurt PC, and the fix (issue #21): fine-tune a model on 4 corrected CamVid val
images (0, 10, 20, 30, their ground truth as the corrections) with a recipe, then score it on 5
images it did not train on (5, 25, 45, 65, 85) with PC: mIoU, pixel accuracy, the number of wrong
blobs (4-connected components of wrong pixels — each costs the annotator an action), the share of
wrong pixels decided at "off-GTC" sites (sites whose parent cell is not a ground-truth composite:
PC visits them where it wrongly refines a uniform cell, and GTC training never does), and the
simulated annotator's actions from the model's start (cell tools, 99 %).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_finetune_pc.py MODEL ITERATIONS RECIPES

MODEL: camvid or demo (transferred to CamVid's classes); RECIPES: comma-separated
``name:key=value:…`` of FinetuneConfig fields, e.g.
``today:encoder=train:scheme=all+gtc,new:encoder=frozen:scheme=pc+gtc``.
"""
import os
import sys
import time
import json
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np
import torch
from qgn.data.registry import open_dataset
from qgn.resources import default_model
from qgn.model.checkpoint import load_model
from qgn.model.transfer import transfer_model, needs_transfer
from qgn.infer import ImageSession
from qgn.propagation import Scheme
from qgn.metrics import ConfusionMatrix
from qgn.train.finetune import FinetuneConfig, finetune
from qgn.loss import pyramid_targets
from qgn.data.transforms import resize_label
from scipy import ndimage
torch.set_num_threads(1)
data = open_dataset('camvid', 'val')
C = data.classes
name, iters, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(',')
model = load_model(default_model(name))
if needs_transfer(model, C):
    model, _ = transfer_model(model, C)
tr = [data[i] for i in (0, 10, 20, 30)]
he = [data[i] for i in (5, 25, 45, 65, 85)]

def off_gtc(m):
    wrong_off = wrong = off_px = px = 0
    blobs = blobs_off = 0
    cm = ConfusionMatrix(C.num_classes)
    for s in he:
        sess = ImageSession(m, s.image)
        p = sess.run(Scheme('pc'))
        gt = s.label.astype(np.int64)
        lab_w = resize_label(gt, sess.work_size) if sess.work_size != gt.shape else gt
        ph, pw = sess.padded_shape
        full = np.full((ph, pw), 11, np.int64)
        full[:lab_w.shape[0], :lab_w.shape[1]] = lab_w
        tg = pyramid_targets(torch.from_numpy(full)[None], 11, 11, 6)
        off = np.zeros((ph, pw), bool)  # the deciding (finest) site's parent is not GT-composite
        for o in p.outputs:
            if o.level == 5:
                continue
            c = o.coords.numpy()
            size = 1 << o.level
            parent_comp = (tg[o.level + 1][0].numpy() == 0)[c[:, 1] >> 1, c[:, 2] >> 1]
            grid = np.zeros((ph >> o.level, pw >> o.level), np.int8)
            grid[c[:, 1], c[:, 2]] = np.where(parent_comp, 1, 2)
            up = np.kron(grid, np.ones((size, size), np.int8))
            off = np.where(up == 2, True, np.where(up == 1, False, off))
        pred = p.working_label()
        h, w = lab_w.shape
        offw = off[:h, :w]
        valid = lab_w != 11
        wr = (pred != lab_w) & valid
        wrong += wr.sum()
        wrong_off += (wr & offw).sum()
        px += valid.sum()
        off_px += (offw & valid).sum()
        comps, n = ndimage.label(wr)
        blobs += n
        if n:
            share = ndimage.mean(offw, comps, index=np.arange(1, n + 1))
            blobs_off += int((np.asarray(share) > 0.5).sum())
        cm.add(np.where(gt == 11, -1, gt), p.label())
    from qgn.bench.annotate_sim import simulate_annotator
    from qgn.bench.annotate import _predict
    acts = [simulate_annotator(s.label, _predict(m, s.image, 'pc').label(), C)[0].actions for s in he]
    return dict(actions_model_start=float(np.mean(acts)), miou=round(100 * cm.miou(), 1), acc=round(100 * cm.accuracy(), 1),
                wrong_share_off_gtc=round(wrong_off / max(1, wrong), 3), pixel_share_off_gtc=round(off_px / px, 3),
                blobs=blobs / len(he), blobs_mostly_off_gtc=blobs_off / len(he))

print(name, 'before', json.dumps(off_gtc(model)), flush=True)
for v in variants:
    kw = dict(iterations=iters)
    for part in v.split(':')[1:]:
        k, val = part.split('=')
        d = getattr(FinetuneConfig(), k)
        kw[k] = (val == '1') if isinstance(d, bool) else type(d)(val)
    t = time.perf_counter()
    r = finetune(model, [s.image for s in tr], [s.label for s in tr], FinetuneConfig(**kw))
    secs = time.perf_counter() - t
    print(name, v, f'{secs:.0f}s ({secs / iters:.2f} s/it)', json.dumps(off_gtc(r.model)), flush=True)
