"""Judging the starts without the truth: does a judge an app can compute rank the candidate starts
as the truth does? (benchmarks/RESULTS.md, "A start judge that is not biased towards the start given").

    QGN_DATA=DIR OMP_NUM_THREADS=1 nice python benchmarks/bench_judge.py [MODEL] --first 1 --count 16 \
        [--stride 3] --json out.jsonl

The bench's per-image pass (``run_per_image`` with ``app_domain``: empty, the model's, the head's
once fitted, the carried start; image-aware tools, 1 px tolerance) runs unchanged; for every image
and every start G it offered, the map S the simulated annotator saved from G is taken as what the
app would hold, and each judge scores every candidate start from S (and G, the other starts, the
image's superpixels — never the truth). One JSON line per (image, G): the candidates' actions
against the truth and each judge's scores. ``summarise`` (``--summary FILE...``) gives the rank
agreement.

Judges (lower is better; ``acc`` is negated pixel accuracy):
- ``acc``: pixel accuracy against S (how the app's guards judge the head and the carried start);
- ``saved``: actions from the candidate to S at 1 px (``_judged_as_saved``, app_effort's record);
- ``own``: ``saved`` for the other starts, the person's own action count for G;
- ``edge{r}``: ``saved`` with the pixels set aside (void, for every candidate alike) where S == G, some
  candidate differs from S, and the pixel lies within r px of a class edge of S;
- ``small{a}``: the same set-aside rule for pixels in a 4-connected region of S smaller than a px;
- ``untouched``: the same set-aside rule everywhere (every pixel the person left where a candidate differs);
- ``tol{t}``: ``saved`` at a t px tolerance (a label off by at most t px of its class in S counts right)
  for every candidate alike.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

NAMES = {"empty": ("assist_empty", "assist_empty"), "model": ("assist_model_start", "corrected_model"),
         "head": ("assist_head_start", "assist_head_start"), "previous": ("assist_carried", "corrected_previous")}
ORDER = ("previous", "head", "model", "empty")  # a tie's order, as app_effort's offered starts
START_MAPS = {"model": "model_map", "head": "head_map", "previous": "carried_map"}


def small_regions(saved: np.ndarray, area: int) -> np.ndarray:
    """Pixels of 4-connected regions of one value of ``saved`` smaller than ``area`` pixels."""
    from scipy import ndimage

    out = np.zeros(saved.shape, bool)
    for c in np.unique(saved):
        comp, n = ndimage.label(saved == c)
        if n:
            sizes = np.bincount(comp.ravel())
            small = sizes < area
            small[0] = False
            out |= small[comp]
    return out


def judge_scores(saved, given_name, starts, person_actions, classes, over, judges) -> dict:
    """{judge: {candidate: score}} (lower is better) from what an app holds: the saved map, the
    starts offered (``given_name`` the one given), the person's action count, the superpixels."""
    from qgn.bench.annotate import edge_band, set_aside
    from qgn.bench.annotate_sim import simulate_annotator
    from qgn.bench.annotate_tools import ImageTools

    ignore = classes.ignore_index
    labelled = saved != ignore
    tools = [ImageTools(over)]

    def actions(target, start, tolerance=1):
        return simulate_annotator(target, start, classes, tools=tools, target=0.99, tolerance=tolerance)[0].actions

    out = {}
    if "acc" in judges:
        out["acc"] = {n: -float((m[labelled] == saved[labelled]).mean()) if labelled.any() else 0.0
                      for n, m in starts.items()}
    saved_actions = None
    if "saved" in judges or "own" in judges:
        saved_actions = {n: actions(saved, m) for n, m in starts.items()}
        out["saved"] = dict(saved_actions)
        out["own"] = {n: (person_actions if n == given_name else a) for n, a in saved_actions.items()}
    given = starts[given_name]
    for j in judges:
        if j.startswith("edge") or j.startswith("small"):
            where = edge_band(saved, int(j[4:])) if j.startswith("edge") else small_regions(saved, int(j[5:]))
            aside = set_aside(saved, given, starts, where)
            target = np.where(aside, ignore, saved)
            out[j] = {n: actions(target, m) for n, m in starts.items()}
            out[j + "_aside"] = float(aside.mean())
        elif j.startswith("tol"):
            out[j] = {n: actions(saved, m, int(j[3:])) for n, m in starts.items()}
        elif j == "untouched":
            aside = set_aside(saved, given, starts, np.ones(saved.shape, bool))
            out[j] = {n: actions(np.where(aside, ignore, saved), m) for n, m in starts.items()}
            out[j + "_aside"] = float(aside.mean())
    return out


def main() -> None:
    import qgn.bench.annotate as A
    from qgn.data.registry import open_dataset
    from qgn.domain import reference_for
    from qgn.model.checkpoint import load_model
    from qgn.resources import default_model

    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--split", default="val")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--judges", default="acc,saved,edge2,small400")
    ap.add_argument("--json")
    ap.add_argument("--summary", nargs="*")
    args = ap.parse_args()
    if args.summary is not None:
        summarise(args.summary)
        return
    if args.model:
        path = default_model(args.model)
    else:
        from qgn.cli.bench_annotate import street_model_path
        path = street_model_path()
    model = load_model(path)
    data = open_dataset("camvid", args.split)
    classes = data.classes
    idx = list(range(args.first - 1, len(data), args.stride))[: args.count]
    samples = [data[i] for i in idx]
    judges = args.judges.split(",")
    config = A.AnnotateConfig(scenarios=("assist_scratch", "app_domain"), tolerance=1)
    config.domain = reference_for(path)
    out = open(args.json, "a") if args.json else None
    from qgn.bench.provenance import provenance

    record = provenance()  # the commit, torch, threads, machine, command: on every row written
    frame = {}
    simulate, choose = A._simulate_starts, A._scenario_choices

    def simulate_hook(s, *a, **k):
        runs, labels, head = simulate(s, *a, **k)
        frame.update(sample=s, runs=runs, labels=labels)
        return runs, labels, head

    def choose_hook(runs, *a, **k):
        choices = choose(runs, *a, **k)
        picked = next(iter(choices["app_domain"][0]))
        s, labels = frame["sample"], frame["labels"]
        starts = {"empty": np.full(s.label.shape, classes.ignore_index)}
        starts.update({n: labels[m] for n, m in START_MAPS.items() if m in labels})
        truth = {n: runs[NAMES[n][0]].actions for n in starts}
        for g in starts:
            t0 = time.perf_counter()
            scores = judge_scores(labels[NAMES[g][1]], g, starts, truth[g], classes, labels["over"], judges)
            row = {"image": s.name, "model": str(path.name), "given": g, "app_domain": picked, "truth": truth,
                   "judges": scores, "seconds": round(time.perf_counter() - t0, 1), "provenance": record}
            print(json.dumps(row), flush=True)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
        return choices

    A._simulate_starts, A._scenario_choices = simulate_hook, choose_hook
    A.run_per_image(model, samples, classes, config, lambda m: print(m, file=sys.stderr, flush=True))


def summarise(files) -> None:
    """Per file and judge: over (image, G) rows with two or more candidates, how often the judge's
    cheapest start is a truth-cheapest one, the actions lost following it (mean), how often it picks
    G against how often the truth's cheapest is G; the same for G = app_domain's start alone."""
    for f in files:
        rows = [json.loads(x) for x in open(f)]
        rows = [r for r in rows if len(r["truth"]) > 1]
        judges = [j for j in rows[0]["judges"] if not j.endswith("_aside")]
        for subset, keep in (("every G", lambda r: True), ("G = app_domain's", lambda r: r["given"] == r["app_domain"])):
            sel = [r for r in rows if keep(r)]
            print(f"{f} ({subset}, {len(sel)} image x G rows; truth's cheapest is G in "
                  f"{sum(r['truth'][r['given']] == min(r['truth'].values()) for r in sel)})")
            for j in judges + ["keep G"]:
                agree = lost = picks_g = 0
                for r in sel:
                    sc = {n: n != r["given"] for n in r["truth"]} if j == "keep G" else r["judges"][j]
                    pick = min(sc, key=lambda n: (sc[n], ORDER.index(n)))
                    best = min(r["truth"].values())
                    agree += r["truth"][pick] == best
                    lost += r["truth"][pick] - best
                    picks_g += pick == r["given"]
                aside = [r["judges"][j + "_aside"] for r in sel if j + "_aside" in r["judges"]]
                if not sel:
                    continue
                print(f"  {j:9s} agrees {agree}/{len(sel)}  lost {lost / len(sel):.2f} actions/row  picks G "
                      f"{picks_g}/{len(sel)}" + (f"  set aside {100 * np.mean(aside):.1f} %" if aside else ""))


if __name__ == "__main__":
    main()
