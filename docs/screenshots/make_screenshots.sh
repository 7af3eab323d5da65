#!/usr/bin/env bash
# Regenerate the QGN Studio screenshots of the README (run from the repository root).
#   docs/screenshots/make_screenshots.sh            # the bundled demo model
#   MODEL=runs/demo/last.safetensors docs/screenshots/make_screenshots.sh
# Needs a display: under Xvfb (apt-get install xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1)
# it runs itself through xvfb-run; QT_QPA_PLATFORM=offscreen works too, without a display.
set -euo pipefail
if [[ -z "${DISPLAY:-}" && "${QT_QPA_PLATFORM:-}" != "offscreen" ]]; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$0" "$@"
fi
OUT=docs/screenshots
IMAGE=${IMAGE:-resources/samples/images/scene_01.png}
MODEL_ARGS=()
[[ -n "${MODEL:-}" ]] && MODEL_ARGS=(--model "$MODEL")
STUDIO=(.venv/bin/python -m qgn_studio "$IMAGE" "${MODEL_ARGS[@]}" --size 1600x1000)
"${STUDIO[@]}" --depth 0 --layers image,prediction,grid --screenshot "$OUT/qgn-studio.png"
"${STUDIO[@]}" --depth 2 --layers image,prediction,q3,grid --screenshot "$OUT/qgn-studio-levels.png"
"${STUDIO[@]}" --depth 0 --layers image,sites --screenshot "$OUT/qgn-studio-sites.png"
"${STUDIO[@]}" --depth 0 --scheme pc_tau --tau 0.3 --layers image,uncertainty \
  --screenshot "$OUT/qgn-studio-uncertainty.png"
# The tour's depth strip (Q5 / Q3 / Q1 cut from app windows): docs/screenshots/qgn-studio-depth.png
.venv/bin/python docs/screenshots/make_depth_strip.py "$IMAGE" ${MODEL:+--model "$MODEL"}
# Tour steps 4-6 (annotate, changed vs prediction, fine-tune dock, export dialog)
.venv/bin/python docs/screenshots/make_part2_screenshots.py "$OUT"
# Issue #22: the window on a 1280×720 screen, and the project statistics
.venv/bin/python docs/screenshots/make_workday_screenshots.py "$OUT"
