#!/usr/bin/env bash
# Build the wheel and prove it works on its own: it carries resources/ (the demo and street models,
# samples, icons, palettes) and both entry points, and `qgn --help`, `qgn eval --json` (bundled model + samples)
# and `qgn-studio --screenshot` run from a fresh virtual environment in an unrelated folder.
#
#   packaging/check-wheel.sh [WORK_DIR]     # default: /tmp/qgn-wheel-check (emptied first)
#
# Uses .venv to build (PYTHON=... for another interpreter; needs setuptools >= 77 there) and
# python3 for the fresh environment. torch comes from QGN_TORCH (default torch==2.13.0, the CPU
# build pip finds locally here). Not part of the test suite (it takes minutes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-.venv/bin/python}"
work="$(mkdir -p "${1:-/tmp/qgn-wheel-check}" && cd "${1:-/tmp/qgn-wheel-check}" && pwd)"
rm -rf "${work:?}"/*
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

echo "== build"
"$PY" -m pip wheel . -w "$work/wheelhouse" --no-deps --no-build-isolation -q
wheel="$(ls "$work"/wheelhouse/qgn_studio-*.whl)"
echo "$wheel ($(du -h "$wheel" | cut -f1))"

echo "== contents"
"$PY" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
expected = [
    "qgn/__init__.py", "qgn/resources.py", "qgn_studio/app.py",
    "qgn_resources/models/demo.safetensors", "qgn_resources/models/demo.json",
    "qgn_resources/samples/classes.txt", "qgn_resources/samples/images/scene_01.png",
    "qgn_resources/samples/labels/scene_01.png", "qgn_resources/icons/qgn-studio.svg",
    "qgn_resources/icons/qgn-studio-256.png", "qgn_resources/palettes/cityscapes.txt",
]
missing = [n for n in expected if n not in names]
assert not missing, f"the wheel lacks {missing}"
info = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
entry_points = zipfile.ZipFile(sys.argv[1]).read(info[0]).decode()
for script in ("qgn = qgn.cli.main:main", "qgn-studio = qgn_studio.app:main"):
    assert script in entry_points, f"entry point {script!r} missing from {info[0]}"
stray = sorted(n for n in names if "__pycache__" in n or n.startswith(("tests/", "build/", "dist/")))
assert not stray, f"the wheel carries build leftovers: {stray[:5]}"
resources = sorted(n for n in names if n.startswith("qgn_resources/"))
print(f"{len(names)} files, {len(resources)} of them in qgn_resources/; entry points qgn, qgn-studio")
PY

echo "== install into a fresh venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q ${QGN_TORCH:-torch==2.13.0} "$wheel"

echo "== run from an unrelated folder"
mkdir -p "$work/elsewhere"
cd "$work/elsewhere"
unset QGN_RESOURCES PYTHONPATH || true
"$work/venv/bin/python" -c 'import qgn, qgn.resources as r; print("qgn", qgn.__version__, "resources at", r.resources_dir())'
"$work/venv/bin/qgn" --help >/dev/null
"$work/venv/bin/qgn" eval --json > "$work/eval.json"
"$work/venv/bin/python" - "$work/eval.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
print("qgn eval --json:", json.dumps(result)[:300])
PY
QT_QPA_PLATFORM=offscreen "$work/venv/bin/qgn-studio" --screenshot "$work/studio.png" --timeout 300
test "$(stat -c %s "$work/studio.png")" -gt 50000 || { echo "check-wheel: $work/studio.png looks empty" >&2; exit 1; }
echo "check-wheel: passed ($wheel; screenshot $work/studio.png)"
