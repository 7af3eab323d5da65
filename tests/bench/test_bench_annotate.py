"""Annotation effort (issue #14): the simulated annotator, its anchors (quadtree leaves, polygon
vertices), image uncertainty and `qgn bench --only annotate --quick --json`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qgn.bench.annotate_sim import gt_leaves, polygon_vertices, region_components, simulate_annotator
from qgn.classes import ClassSet
from qgn.cli.main import main
from qgn.resources import demo_model_path
from qgn.uncertainty import order_by_uncertainty, spearman, uncertain_cells

C = ClassSet(("a", "b", "c"), (), 255)
CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camvid"


# --------------------------------------------------------------------------- anchors
def test_polygon_vertices_of_simple_shapes():
    rect = np.zeros((40, 50), np.int64)
    rect[10:20, 5:30] = 1
    assert polygon_vertices(rect, C) == 4 + 4 + 4  # the rectangle; the background's outline and its hole
    yy, xx = np.mgrid[:40, :40]
    assert polygon_vertices(np.where(xx > yy, 1, 0), C) == 6  # two staircase triangles: 3 vertices each at 1 px
    one = np.full((8, 8), 255)
    one[0, 0] = 2
    assert polygon_vertices(one, C) == 3  # a pixel: a polygon still needs 3 vertices
    assert polygon_vertices(np.full((8, 8), 255), C) == 0  # ignore needs no polygon


def test_gt_leaves_count_class_leaves_only():
    assert gt_leaves(np.zeros((64, 64), np.int64), C) == 4  # four uniform 32-px root cells
    half = np.zeros((64, 64), np.int64)
    half[:, 32:] = 255
    assert gt_leaves(half, C) == 2
    corner = np.zeros((64, 64), np.int64)
    corner[0, 0] = 1
    assert gt_leaves(corner, C) == 3 + 3 * 5 + 1  # 3 roots + 3 siblings on each of levels 4..0 + the pixel


def test_region_components_match_a_flood_fill():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 3, (12, 15))
    rows, starts, ends, vals, comp = region_components(values)
    label = np.full(values.shape, -1)
    for r, s, e, c in zip(rows, starts, ends, comp):
        label[r, s:e] = c
    for y, x in zip(*np.nonzero(values)):  # 4-neighbours of equal value share the component
        for dy, dx in ((0, 1), (1, 0)):
            if y + dy < 12 and x + dx < 15 and values[y + dy, x + dx] == values[y, x]:
                assert label[y, x] == label[y + dy, x + dx]
    assert (label[values == 0] == -1).all()
    # count regions independently with a breadth-first flood fill
    seen, regions = np.zeros(values.shape, bool), 0
    for y, x in zip(*np.nonzero(values)):
        if seen[y, x]:
            continue
        regions += 1
        stack = [(y, x)]
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < 12 and 0 <= nx < 15 and not seen[ny, nx] and values[ny, nx] == values[y, x]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    assert len(np.unique(comp)) == regions


# --------------------------------------------------------------------------- the annotator
def test_annotator_counts_clicks_and_strokes():
    gt = np.zeros((64, 64), np.int64)
    gt[:, 32:] = 1
    effort, _ = simulate_annotator(gt, gt, C)
    assert effort.actions == 0 and effort.accuracy_start == 1.0
    wrong = gt.copy()
    wrong[40:50, 40:50] = 2  # a blob of the wrong class inside the right half: one fill click
    effort, fixed = simulate_annotator(gt, wrong, C)
    assert (effort.clicks, effort.strokes) == (1, 0) and np.array_equal(fixed, gt)
    empty = np.full(gt.shape, 255)
    effort, fixed = simulate_annotator(gt, empty, C)  # fill everything with one class, one stroke of 32-px cells
    assert (effort.clicks, effort.strokes) == (1, 1) and effort.strokes_per_level[5] == 1
    assert np.array_equal(fixed, gt)


def test_annotator_reaches_the_target_accuracy():
    rng = np.random.default_rng(0)
    gt = np.kron(rng.integers(0, 3, (6, 8)), np.ones((7, 9), np.int64))
    gt[rng.random(gt.shape) < 0.03] = 255
    start = np.where(rng.random(gt.shape) < 0.2, rng.integers(0, 3, gt.shape), gt)
    start[start == 255] = 0
    effort, fixed = simulate_annotator(gt, start, C, target=0.99)
    labelled = gt != 255
    assert (fixed[labelled] == gt[labelled]).mean() >= 0.99
    assert effort.accuracy_end == pytest.approx((fixed[labelled] == gt[labelled]).mean())
    assert effort.actions == effort.clicks + effort.strokes > 0


# --------------------------------------------------------------------------- uncertainty helpers
def test_spearman_and_orders():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks: ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4), Pearson 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / np.sqrt(22.5))
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert order_by_uncertainty([0.2, 0.9, 0.5, 0.9]) == [1, 3, 2, 0]
    entropy = np.zeros((8, 8), np.float32)
    entropy[4:, 0:4] = 1.0
    entropy[0:4, 4:] = 0.5
    assert uncertain_cells(entropy, 2, 2).tolist() == [[0, 4], [4, 0]]


# --------------------------------------------------------------------------- the CLI
@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_quick_json_rows_on_synthetic_scenes(capsys):
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "2", "--quick", "--json", "--threads", "1"])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["scratch", "model", "assist_scratch", "assist_model", "assist_head", "best",
                                         "app", "app_guarded"]
    by = {r["name"]: r for r in rows}
    for r in rows:
        assert r["section"] == "annotate" and r["images"] == 2 and len(r["actions"]) == 2
        assert r["actions_per_image"] == pytest.approx(np.mean(r["actions"]))
        assert r["gt_leaves_per_image"] > 0 and r["polygon_vertices_per_image"] > 0
        assert len(r["milestones"]) == 2 and set(r["milestones_per_image"]) == {"95", "98", "99"}
        assert r["tolerance"] == 0 and r["beta"] == pytest.approx(0.05) and r["model_snap"] is False
        assert r["snap_evidence"] == "image"
    assert set(rows[1]["spearman"]) == {"mean_entropy", "composite_share"}
    # the cheaper start, one action for starting empty: never worse than scratch + 1 on any image
    for name in ("model",):
        assert all(a <= s + 1 for a, s in zip(by[name]["actions"], by["scratch"]["actions"]))
    for name in ("assist_model", "assist_head", "best"):
        assert all(a <= s + 1 for a, s in zip(by[name]["actions"], by["assist_scratch"]["actions"]))
    assert all(b <= m for b, m in zip(by["best"]["actions"], by["assist_model"]["actions"]))
    assert by["assist_head"]["starts"][0] == "empty" and len(by["assist_head"]["head_fit_seconds"]) == 1
    # the app's starts, chosen without knowing their cost: the model's, then the head's (app); the
    # guarded rule keeps the model's until the head has been judged on an image it had not trained on
    assert by["app"]["starts"] == ["model", "head"] and by["app_guarded"]["starts"] == ["model", "model"]
    assert by["app_guarded"]["actions"][1] >= by["assist_model"]["actions"][1]  # the oracle is never worse
    assert all(b <= a + 1 for b, a in zip(by["best"]["actions"], by["app"]["actions"]))  # +1: its head start


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_stride_takes_every_kth_image(capsys):
    from qgn.data.registry import open_dataset

    names = [open_dataset("synthetic", "val")[i].name for i in (0, 3)]
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "2", "--stride", "3", "--quick", "--json", "--threads", "1", "--scenarios", "scratch"])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["order"] == names


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_carried_start_rows(capsys):
    """assist_previous starts image i from image i-1's corrected map carried by the flow (the first
    from empty); app_carry keeps the app's guarded start until the carried one has beaten it once."""
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "3", "--quick", "--json", "--threads", "1",
               "--scenarios", "assist_scratch,app_guarded,assist_previous,app_carry"])
    assert rc == 0
    by = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert by["assist_previous"]["starts"] == ["empty", "previous", "previous"]
    assert by["assist_previous"]["actions"][0] == by["assist_scratch"]["actions"][0]
    carry = by["app_carry"]["starts"]
    assert carry[:2] == by["app_guarded"]["starts"][:2]  # nothing judged before image 2
    assert carry[2] in ("previous", by["app_guarded"]["starts"][2])


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_effort_judged_start_rows(capsys):
    """app_effort starts image i from the start that cost the simulated annotator least on the
    images before (the model's on the first): each image's actions are those of the start chosen,
    as its own run measured them."""
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "3", "--quick", "--json", "--threads", "1",
               "--scenarios", "assist_scratch,assist_model,assist_previous,app_effort"])
    assert rc == 0
    by = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    starts, actions = by["app_effort"]["starts"], by["app_effort"]["actions"]
    assert starts[0] in ("model", "empty")  # nothing judged: the model's, or empty outside its domain (below)
    empty, previous = by["assist_scratch"]["actions"], by["assist_previous"]["actions"]
    for i in (1, 2):
        if starts[i] == "empty":
            assert actions[i] == empty[i]
        if starts[i] == "previous":
            assert actions[i] == previous[i]


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_judged_rule_rows(capsys):
    """app_own, app_edge2, app_tol3 and app_scaled run beside the other scenarios: each image's
    actions are those of the start it chose."""
    rules = ("app_own", "app_edge2", "app_tol3", "app_scaled")
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "3", "--quick", "--json", "--threads", "1", "--tolerance", "1",
               "--scenarios", "assist_scratch,assist_model,assist_previous," + ",".join(rules)])
    assert rc == 0
    by = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    for rule in rules:
        starts, actions = by[rule]["starts"], by[rule]["actions"]
        assert len(starts) == 3 and starts[0] in ("model", "empty")
        for i in range(3):
            if starts[i] == "empty":
                assert actions[i] == by["assist_scratch"]["actions"][i]
            if starts[i] == "previous":
                assert actions[i] == by["assist_previous"]["actions"][i]


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
@pytest.mark.parametrize("lag", [0, 1])
def test_record_lag_hides_the_last_images_records(capsys, monkeypatch, lag):
    """--record-lag K: a judged rule chooses each image's start from the records of all images but
    the last K before it (an app's simulated judge lands late); 0, the bench's default: all of them."""
    import qgn.bench.annotate as A

    seen, choose = [], A._scenario_choices

    def spy(runs, record, carry_record=(), inside=None, records=None, *more):
        seen.append(len(records["app_own"]))
        return choose(runs, record, carry_record, inside, records, *more)

    monkeypatch.setattr(A, "_scenario_choices", spy)
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "3", "--quick", "--json", "--threads", "1", "--tolerance", "1",
               "--record-lag", str(lag), "--scenarios", "assist_scratch,app_own"])
    assert rc == 0
    assert seen == ([0, 1, 2] if lag == 0 else [0, 0, 1])
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["app_own"].get("record_lag") == (lag or None) and "record_lag" not in rows["assist_scratch"]


def test_cheapest_start_by_the_actions_each_start_cost():
    from qgn.bench.annotate import cheapest_start

    assert cheapest_start([], ["model", "empty"]) is None  # nothing judged: the caller's default
    record = [{"empty": 22, "model": 29}, {"empty": 22, "model": 30, "head": 17}]
    assert cheapest_start(record, ["head", "model", "empty"]) == "head"  # 17 against 22 and 29.5
    assert cheapest_start(record, ["model", "empty"]) == "empty"  # no head for this image
    assert cheapest_start(record, ["previous", "model"]) == "model"  # a start never measured is not chosen
    assert cheapest_start([{"empty": 5, "model": 5}], ["model", "empty"]) == "model"  # a tie: the order given
    old = [{"empty": 1, "model": 50}] + [{"empty": 30, "model": 20}] * 3
    assert cheapest_start(old, ["model", "empty"]) == "model"  # the last three images only
    assert cheapest_start(old, ["model", "empty"], window=4) == "empty"


def test_effort_choice_takes_the_start_that_cost_least_before():
    """The rule app_effort applies, on runs whose actions are known: the model's start before any
    image was judged; then the start with the fewest actions over the last images, among the ones
    this image is offered (no head yet, no previous image: not offered)."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import _effort_choice

    first = {"assist_empty": Run(actions=22), "assist_model_start": Run(actions=29)}
    assert list(_effort_choice(first, [])) == ["model"]
    assert list(_effort_choice(first, [], inside=True)) == ["model"]
    assert list(_effort_choice(first, [], inside=False)) == ["empty"]  # the domain check's warning, before any judged
    record = [{"empty": 22, "model": 29}]
    second = {"assist_empty": Run(actions=20), "assist_model_start": Run(actions=31), "assist_head_start": Run(actions=25)}
    assert list(_effort_choice(second, record)) == ["empty"]  # the head was never measured: not chosen
    record.append({"empty": 20, "model": 31})
    third = {"assist_empty": Run(actions=20), "assist_model_start": Run(actions=31), "assist_head_start": Run(actions=25),
             "assist_carried": Run(actions=9)}
    assert list(_effort_choice(third, record)) == ["empty"]  # 21 against the model's 30; the head never measured
    record.append({"empty": 26, "head": 10, "previous": 8})
    assert list(_effort_choice(third, record)) == ["previous"]
    assert list(_effort_choice(third, record, inside=False)) == ["previous"]  # once judged, the record decides



def _own_case():
    """(truth, superpixels, labels, runs) of a small image corrected from a start with three wrong blocks."""
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate_tools import ImageTools

    rng = np.random.default_rng(3)
    gt = np.zeros((48, 48), np.int64)
    gt[:, 20:] = 1
    gt[30:, :] = 2
    gt[:, 18:20] = 255  # a void band, as CamVid's between regions
    image = (gt[..., None] * 70 % 256).astype(np.uint8) + rng.integers(0, 20, (48, 48, 3), dtype=np.uint8)
    over = oversegment(image)
    model = np.where(gt == 255, 1, gt)
    model[2:6, 2:6] = model[2:6, 30:34] = 2  # three wrong blocks, 0.7 % of the image each
    model[40:44, 40:44] = 0
    effort, saved = simulate_annotator(gt, model, C, tools=[ImageTools(over)], target=0.99, tolerance=1)
    return gt, over, {"over": over, "model_map": model, "corrected_model": saved}, {"assist_model_start": effort}


def test_judged_own_counts_the_given_start_by_the_persons_actions():
    """app_own's record of an image: each start not given, the actions from it to the saved map
    (as the simulated annotator takes them against that map, at 1 px); the given start, the
    actions the person took from it (its run) — not the fewer ones from it to its own saved map."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import AnnotateConfig, _judged_own
    from qgn.bench.annotate_tools import ImageTools

    gt, over, labels, runs = _own_case()
    saved, model, effort = labels["corrected_model"], labels["model_map"], runs["assist_model_start"]
    record = _judged_own(Run(label=gt), labels, runs, "model", C, AnnotateConfig(tolerance=1))
    empty = np.full(gt.shape, 255)
    from_empty = simulate_annotator(saved, empty, C, tools=[ImageTools(over)], target=0.99, tolerance=1)[0].actions
    to_saved = simulate_annotator(saved, model, C, tools=[ImageTools(over)], target=0.99, tolerance=1)[0].actions
    assert record == {"empty": from_empty, "model": effort.actions}
    assert to_saved < effort.actions  # the as-saved judge's count for the given start: fewer


def test_judged_edge_sets_aside_the_given_starts_edge_pixels_for_every_start():
    """app_edge2's record: the actions from each start to the saved map with the pixels set aside
    (void) where the person left the given start's label, another start differs, and a class edge
    of the saved map is within 2 px (chessboard) — the reference built pixel by pixel here."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import AnnotateConfig, _judged_edge
    from qgn.bench.annotate_tools import ImageTools

    gt, over, labels, _ = _own_case()
    saved, model = labels["corrected_model"], labels["model_map"]
    empty = np.full(gt.shape, 255)
    h, w = saved.shape
    on_edge = np.zeros(saved.shape, bool)
    for y in range(h):
        for x in range(w):
            on_edge[y, x] = any(0 <= y + dy < h and 0 <= x + dx < w and saved[y + dy, x + dx] != saved[y, x]
                                for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)))
    near = np.zeros(saved.shape, bool)
    for y, x in zip(*np.nonzero(on_edge)):
        near[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = True
    aside = near & (saved == model) & ((model != saved) | (empty != saved))
    assert 0 < aside.sum() < aside.size
    target = np.where(aside, 255, saved)
    reference = {n: simulate_annotator(target, m, C, tools=[ImageTools(over)], target=0.99, tolerance=1)[0].actions
                 for n, m in (("empty", empty), ("model", model))}
    assert _judged_edge(Run(label=gt), labels, "model", C, AnnotateConfig(tolerance=1)) == reference


def test_judged_tolerant_and_scaled_records():
    """app_tol3's record: the actions from each start to the saved map at 3 px; app_scaled's: the
    as-saved actions times the person's count over the given start's as-saved count, the given
    start's entry the person's count (a given start already at the saved map: scaled by 1)."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import AnnotateConfig, _judged_scaled, _judged_tolerant
    from qgn.bench.annotate_tools import ImageTools

    gt, over, labels, runs = _own_case()
    saved = labels["corrected_model"]
    config = AnnotateConfig(tolerance=1)
    reference = {n: simulate_annotator(saved, m, C, tools=[ImageTools(over)], target=0.99, tolerance=3)[0].actions
                 for n, m in (("empty", np.full(gt.shape, 255)), ("model", labels["model_map"]))}
    assert _judged_tolerant(Run(label=gt), labels, "model", C, config) == reference
    person = {"assist_model_start": Run(actions=15), "assist_empty": Run(actions=22)}
    assert _judged_scaled(None, labels, person, "model", C, config, {"empty": 10, "model": 5}) == {"empty": 30,
                                                                                                "model": 15}
    assert _judged_scaled(None, labels, person, "empty", C, config, {"empty": 0, "model": 4}) == {"empty": 22,
                                                                                                "model": 88}


def test_judged_rules_share_one_as_saved_record_per_given_start():
    """``_judged``: the judges built on the as-saved record (saved, own, scaled) measure it once per
    given start of an image, and each returns its own record without changing the others'."""
    from types import SimpleNamespace as Run

    import qgn.bench.annotate as A

    gt, over, labels, runs = _own_case()
    config = A.AnnotateConfig(tolerance=1)
    memo = {}
    saved = A._judged("saved", Run(label=gt), labels, runs, "model", C, config, memo)
    own = A._judged("own", Run(label=gt), labels, runs, "model", C, config, memo)
    scaled = A._judged("scaled", Run(label=gt), labels, runs, "model", C, config, memo)
    assert list(memo) == ["model"] and memo["model"] == saved == A._judged_as_saved(Run(label=gt), labels, "model", C,
                                                                                      config)
    assert own == A._judged_own(Run(label=gt), labels, runs, "model", C, config)
    assert scaled == A._judged_scaled(Run(label=gt), labels, runs, "model", C, config)
    assert own["model"] == scaled["model"] == runs["assist_model_start"].actions != saved["model"]


def test_app_domain_edge2_takes_app_domains_start_on_flagged_images_and_edge2s_elsewhere():
    """app_domain_edge2: where the domain check flags the image, app_domain's start (empty, or the
    carried one once its record prefers it) whatever its own record says; elsewhere app_edge2's rule
    on its own record (the model's start before any image was judged)."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import _scenario_choices

    runs = {"scratch": Run(actions=90), "assist_empty": Run(actions=22), "assist_model_start": Run(actions=29),
            "assist_head_start": Run(actions=25), "assist_carried": Run(actions=24)}
    carry_loses, carry_wins = [(0.5, 0.9)] * 3, [(0.95, 0.8)] * 3  # (carried, best other) pixel accuracy

    def pick(record, inside, carry_record=carry_loses):
        choices = _scenario_choices(runs, [], carry_record, inside, {"app_domain_edge2": record})
        return list(choices["app_domain_edge2"][0])

    cheap_head = [{"empty": 30, "model": 28, "head": 12}]
    assert pick([], None) == pick([], True) == ["model"]
    assert pick(cheap_head, True) == ["head"]
    assert pick(cheap_head, False) == ["empty"]  # flagged: app_domain's, not its record's
    assert pick(cheap_head, False, carry_wins) == ["previous"]


def test_app_own_takes_the_start_its_record_says_cost_least():
    """app_own: app_effort's rule on its own record — the model's start (or empty where the domain
    check flags the image) before any image was judged, then the cheapest over the last images."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import _scenario_choices

    runs = {"scratch": Run(actions=90), "assist_empty": Run(actions=22), "assist_model_start": Run(actions=29),
            "assist_head_start": Run(actions=25), "assist_carried": Run(actions=24)}

    def own(record, inside=None, effort=()):
        return list(_scenario_choices(runs, [], [], inside, {"app_own": record, "app_effort": list(effort)})["app_own"][0])

    assert own([]) == ["model"] and own([], inside=False) == ["empty"]
    assert own([{"empty": 20, "model": 30, "previous": 25}]) == ["empty"]
    assert own([{"empty": 20, "model": 30, "previous": 12}]) == ["previous"]
    assert own([{"empty": 20, "model": 30}], effort=[{"empty": 40, "model": 10}]) == ["empty"]  # not app_effort's


def test_app_domain_starts_empty_where_the_domain_check_flags_the_image():
    """app_domain, the app's rule: app_carry's start, except that a flagged image takes the empty
    start where app_carry would take the model's or the head's; the carried start, when its record
    prefers it, still comes first; an unflagged or unjudged image is app_carry's."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import _scenario_choices

    runs = {"scratch": Run(actions=90), "assist_empty": Run(actions=22), "assist_model_start": Run(actions=29),
            "assist_head_start": Run(actions=25), "assist_carried": Run(actions=24)}
    head_wins = [(0.9, 0.5)] * 3  # the head beat the model on the last three judged images
    carry_loses, carry_wins = [(0.5, 0.9)] * 3, [(0.95, 0.9)] * 3

    def starts(inside, carry_record, record=()):
        choices = _scenario_choices(runs, list(record), carry_record, inside=inside)
        return list(choices["app_domain"][0]), list(choices["app_carry"][0])

    assert starts(None, carry_loses) == (["model"], ["model"])
    assert starts(True, carry_loses, head_wins) == (["head"], ["head"])
    assert starts(False, carry_loses) == (["empty"], ["model"])
    assert starts(False, carry_loses, head_wins) == (["empty"], ["head"])
    assert starts(False, carry_wins) == (["previous"], ["previous"])
    # app_domain's own record of the carried start (judged against the start it would replace: empty's
    # on a flagged image) decides app_domain's; app_carry keeps the record against the model and the head
    choices = _scenario_choices(runs, [], carry_loses, inside=False, domain_carry_record=[(0.5, 0.0)] * 3)
    assert list(choices["app_domain"][0]) == ["previous"] and list(choices["app_carry"][0]) == ["model"]
    choices = _scenario_choices(runs, [], carry_wins, inside=False, domain_carry_record=carry_loses)
    assert list(choices["app_domain"][0]) == ["empty"] and list(choices["app_carry"][0]) == ["previous"]


def test_run_per_image_judges_app_domains_carried_start_against_the_start_it_replaces(monkeypatch):
    """On a flagged image app_domain's carried start was judged against the model's and the head's
    starts, which it is not offered there (empty is); run_per_image now keeps app_domain's record
    against empty's (0) on flagged images, and app_carry's against the model's and the head's."""
    import qgn.bench.annotate as A
    import qgn.domain

    seen = []
    choose = A._scenario_choices

    def spy(runs, record, carry_record=(), inside=None, records=None, domain_carry_record=None):
        seen.append((list(carry_record), list(domain_carry_record or ())))
        return choose(runs, record, carry_record, inside, records, domain_carry_record)

    monkeypatch.setattr(A, "_scenario_choices", spy)
    monkeypatch.setattr(qgn.domain, "judge", lambda model, image, reference: type("V", (), {"inside": False})())
    from qgn.data.registry import open_dataset
    from qgn.model.checkpoint import load_model

    data = open_dataset("synthetic", "val", n=3, size=48)
    samples, classes = [data[i] for i in range(3)], data.classes
    config = A.AnnotateConfig(scenarios=["app_carry", "app_domain"], tolerance=1, domain=object())
    A.run_per_image(load_model(demo_model_path()), samples, classes, config, lambda m: None)
    carry, domain = seen[-1]  # the records given to the third image: images 1's judged
    assert len(carry) == len(domain) == 1
    assert carry[0][1] > 0 and domain[0] == (carry[0][0], 0.0)


def test_app_confident_takes_the_confident_start_where_app_domain_takes_empty():
    """app_confident: app_domain's rule with the confidence-masked start in place of the empty one on a
    flagged image; elsewhere (unflagged, unjudged, or the carried start preferred) app_domain's start."""
    from types import SimpleNamespace as Run

    from qgn.bench.annotate import _scenario_choices

    runs = {"scratch": Run(actions=90), "assist_empty": Run(actions=22), "assist_model_start": Run(actions=29),
            "assist_head_start": Run(actions=25), "assist_carried": Run(actions=24),
            "assist_confident_start": Run(actions=21)}
    carry_loses, carry_wins = [(0.5, 0.9)] * 3, [(0.95, 0.9)] * 3

    def starts(inside, carry_record):
        choices = _scenario_choices(runs, [], carry_record, inside=inside)
        return list(choices["app_confident"][0]), list(choices["app_domain"][0])

    assert starts(False, carry_loses) == (["confident"], ["empty"])
    assert starts(True, carry_loses) == (["model"], ["model"])
    assert starts(None, carry_loses) == (["model"], ["model"])
    assert starts(False, carry_wins) == (["previous"], ["previous"])
    assert list(_scenario_choices(runs, [], carry_loses, inside=True)["assist_confident"][0]) == ["confident"]


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_confident_start_rows(capsys):
    """assist_confident starts every image from the model's start masked at --confidence: at 0 it is
    the model's start (assist_model without its empty alternative), above 1 the empty start."""
    def rows(tau):
        rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
                   "--images", "2", "--quick", "--json", "--threads", "1", "--confidence", str(tau),
                   "--scenarios", "assist_scratch,assist_model,assist_confident"])
        assert rc == 0
        return {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}

    low, high = rows(0), rows(1)
    confident, model = low["assist_confident"], low["assist_model"]
    assert confident["starts"] == ["confident", "confident"] and confident["confidence"] == 0
    for c, m, start in zip(confident["actions"], model["actions"], model["starts"]):
        assert c == m if start == "model" else c >= m  # the model's start, or dearer than what the oracle took
    # τ = 1: only pixels of probability 1 kept, in practice none: the empty start's actions
    assert high["assist_confident"]["actions"] == high["assist_scratch"]["actions"]


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_loops_use_the_apps_finetune(capsys):
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "2", "--quick", "--json", "--threads", "1", "--scenarios", "model,loop,loop_uncertainty"])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["model", "loop", "loop_uncertainty"]
    assert len(rows[1]["finetune_seconds"]) == 0  # 2 images, fine-tuned every 2: nothing left to annotate after


def test_cli_annotate_errors_are_one_line(capsys, tmp_path):
    rc = main(["bench", "--only", "annotate", "--model", str(tmp_path / "none.safetensors"), "--quick"])
    err = capsys.readouterr().err
    assert rc == 2 and "no such model file" in err and len(err.strip().splitlines()) == 1
    rc = main(["bench", "--only", "annotate", "--quick", "--tolerance", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--tolerance" in err and len(err.strip().splitlines()) == 1
    rc = main(["bench", "--only", "annotate", "--quick", "--scenarios", "scratch,nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    rc = main(["bench", "--only", "annotate", "--quick", "--stride", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--stride" in err and len(err.strip().splitlines()) == 1
    rc = main(["bench", "--only", "annotate", "--quick", "--model-snap", "--snap-evidence", "prediction"])
    err = capsys.readouterr().err
    assert rc == 2 and "--model-snap means --snap-evidence oracle" in err and len(err.strip().splitlines()) == 1
    rc = main(["bench", "--only", "annotate", "--quick", "--confidence", "1.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "--confidence" in err and len(err.strip().splitlines()) == 1


def test_snap_evidence_decides_which_snapped_strokes_are_offered():
    """image: the image-snapped stroke alone; prediction: the prediction-snapped one alone (as the app's
    "Snap to: prediction"); oracle: both, the annotator keeping the better — each the library's call."""
    from qgn.annotation.snap import snapped_stroke
    from qgn.annotation.superpixels import oversegment
    from qgn.bench.annotate_sim import Canvas
    from qgn.bench.annotate_tools import ImageTools

    rng = np.random.default_rng(1)
    gt = np.zeros((64, 64), np.int64)
    gt[:, 30:] = 1
    image = np.where(gt[..., None] == 1, 200, 40).astype(np.uint8) + rng.integers(0, 20, (64, 64, 3), dtype=np.uint8)
    prediction = np.zeros_like(gt)
    prediction[:, 26:] = 1  # the model puts the edge 4 px off
    over = oversegment(image)
    canvas = Canvas(gt, np.zeros_like(gt), C)
    stroke, path = np.zeros((16, 16), bool), np.array([[33.5, 8.5], [33.5, 40.5]])
    stroke[1:11, 7:9] = True
    cells = np.stack(np.nonzero(stroke)[::-1], axis=1) << 2

    def offered(tools):
        return [(p.tool, p.edit.index.tolist()) for p in tools(canvas)._snapped(stroke, path, 2, 1)]

    by_image = snapped_stroke(canvas.label, over.working, 2, cells, 1, path=path).index.tolist()
    by_model = snapped_stroke(canvas.label, over.working, 2, cells, 1, path=path, evidence=prediction == 1).index.tolist()
    assert by_image != by_model
    assert offered(ImageTools(over)) == [("snap", by_image)]
    assert offered(ImageTools(over, evidence=prediction, evidence_only=True)) == [("snap_model", by_model)]
    assert offered(ImageTools(over, evidence=prediction)) == [("snap", by_image), ("snap_model", by_model)]


@pytest.mark.skipif(not CAMVID.is_dir() or not demo_model_path().is_file(), reason="CamVid (../shared) missing")
def test_cli_quick_on_camvid_transfers_the_demo_model(capsys):
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--images", "2", "--quick",
               "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0 and "transferred to the classes of camvid" in captured.err
    assert "assist_head" in captured.out and "polygon vertices" in captured.out


def test_plot_and_table_of_the_rows(tmp_path):
    pytest.importorskip("matplotlib")
    from qgn.bench.annotate_plot import markdown_table, plot_sequences, read_rows

    rows = [{"section": "annotate", "name": name, "actions": [10, 8, 6, 4, 2, 1], "actions_per_image": 31 / 6,
             "finetune_seconds": [3.0] if name.startswith("loop") else [], "start_accuracy": [0.5] * 6,
             "polygon_vertices_per_image": 12.0, "images": 6} for name in ("scratch", "model", "loop")]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    runs = {"m": read_rows(path)}
    png = plot_sequences(runs, tmp_path / "out.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = markdown_table(runs).splitlines()
    assert len(table) == 2 + 3 and "| m | loop | 5.2 | 6.0 | 4.2 | 3 | 50.0 % |" in table  # last 5: (8+6+4+2+1)/5


@pytest.mark.skipif(not demo_model_path().is_file(), reason="bundled demo model missing")
def test_cli_domain_model_gives_app_domain_the_verdicts_of_another_model(tmp_path, capsys):
    """--domain-model: app_domain's verdicts from another model's encoder and reference — the model a
    fine-tune whose encoder learnt started from (the fine-tuned one gets no reference). A model
    without a reference has no verdict (the model's start); judged by one whose reference flags every
    image, each image starts empty (the carried start has no record yet on two images); a
    --domain-model without a reference is a one-line error."""
    import dataclasses
    import shutil

    from qgn.domain import reference_for, reference_path
    from qgn.fileio import file_sha256

    bare = tmp_path / "finetuned.safetensors"  # a copy with no reference beside it
    judge = tmp_path / "original.safetensors"
    for path in (bare, judge):
        shutil.copy(demo_model_path(), path)
        shutil.copy(demo_model_path().with_suffix(".json"), path.with_suffix(".json"))
    ref = reference_for(demo_model_path())
    far = dataclasses.replace(ref, mean=ref.mean + 1e3 * ref.std, model_sha256=file_sha256(judge))
    far.save(reference_path(judge))  # every image's descriptor lies far outside it

    def rows(*extra):
        rc = main(["bench", "--only", "annotate", "--model", str(bare), "--data", "synthetic", "--images", "2",
                   "--quick", "--json", "--threads", "1", "--scenarios", "assist_scratch,app_domain", *extra])
        out = capsys.readouterr()
        return rc, {r["name"]: r for r in map(json.loads, out.out.splitlines())}, out.err

    rc, unjudged, _ = rows()
    assert rc == 0 and "empty" not in unjudged["app_domain"]["starts"]  # no verdict: the model's start, then the head's
    rc, judged, err = rows("--domain-model", str(judge))
    assert rc == 0 and judged["app_domain"]["starts"] == ["empty", "empty"], err
    assert judged["app_domain"]["actions"] == judged["assist_scratch"]["actions"]
    assert "judged by original.safetensors" in err
    rc, _, err = rows("--domain-model", str(bare))
    assert rc == 2 and "--domain-model" in err and "no domain reference" in err


def test_cli_domain_model_a_link_to_nothing_is_named_once(tmp_path, capsys):
    """A --domain-model that is a link to a moved model: one line that names --domain-model (it said
    "--domain-model L: no such model file (--model L: is a link to …)", two options for one path)."""
    link = tmp_path / "m.safetensors"
    link.symlink_to(tmp_path / "moved" / "m.safetensors")
    rc = main(["bench", "--only", "annotate", "--model", str(demo_model_path()), "--data", "synthetic",
               "--images", "1", "--quick", "--threads", "1", "--scenarios", "assist_scratch,app_domain",
               "--domain-model", str(link)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines() == [err], err
    assert err.count("--domain-model") == 1 and "--model" not in err.replace("--domain-model", ""), err
    assert "is a link to" in err
