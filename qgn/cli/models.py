"""`qgn models [--json]`: the bundled models — name, classes, size, training data, measured mIoU.

Any command's ``--model`` takes one of these names as well as a path. The mIoU is what
``qgn eval --record`` measured and stored in the model's JSON (All / PC, on the data it names).
"""
from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per model")


def describe(model) -> dict:
    ev = model.evaluation
    modes = ev.get("modes", {})
    return {
        "name": model.name,
        "path": str(model.path),
        "classes": list(model.classes.names),
        "ignore_index": model.classes.ignore_index,
        "size_bytes": model.size_bytes,
        "trained_on": model.trained_on,
        "iterations": model.iterations,
        "evaluated_on": f"{ev.get('data', '')}/{ev.get('split', '')}" if ev else "",
        "miou": {mode: values.get("miou") for mode, values in modes.items()},
    }


def run(args) -> int:
    from qgn.resources import bundled_models, models_dir

    problems: list[str] = []
    models = bundled_models(problems)
    if not models and not problems:
        raise FileNotFoundError(f"no bundled models in {models_dir()}")
    code = _say_problems(problems)
    if not models:
        return code
    if args.json:
        for model in models:
            print(json.dumps(describe(model)))
        return code
    print(f"{'name':<10}{'classes':<44}{'size':>9}  {'trained on':<18}{'mIoU (All / PC)':<28}")
    for model in models:
        d = describe(model)
        names = ", ".join(d["classes"])
        classes = f"{len(d['classes'])}: {names}"
        classes = classes if len(classes) <= 42 else classes[:41] + "…"
        miou = d["miou"]
        score = " / ".join(f"{100 * miou[m]:.1f}" if miou.get(m) is not None else "–" for m in ("all", "pc"))
        where = f" on {d['evaluated_on']}" if d["evaluated_on"] else ""
        print(f"{d['name']:<10}{classes:<44}{d['size_bytes'] / 1e6:>7.1f}MB  {d['trained_on']:<18}"
              f"{(score + where) if miou else 'not measured':<28}")
    print("\nUse one with --model NAME (every command), or in the app: Model → Bundled models.")
    return code


def _say_problems(problems: list[str]) -> int:
    """Each bundled model left out, one line on stderr (the others are listed); 2 when there is one."""
    import sys

    for problem in problems:
        print(f"qgn models: error: {problem}; that bundled model is left out: reinstall qgn (or fix QGN_RESOURCES)",
              file=sys.stderr)
    return 2 if problems else 0
