#!/usr/bin/env bash
# Smoke-test the built app: start it under Xvfb on a bundled sample, let it predict, save a
# screenshot, exit. Passes when the app exits 0 (0 = a prediction was on screen) and the PNG is a
# real, non-trivial picture. Runs from an unrelated folder with a clean environment, so only what
# is inside the bundle is used.
#
#   packaging/smoke-test.sh [APP_DIR] [OUT.png]    # defaults: dist/qgn-studio, build/smoke/qgn-studio.png
#   SMOKE_TIMEOUT=300 packaging/smoke-test.sh      # seconds the app may take to predict (default 180)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app="$(cd "${1:-$root/dist/qgn-studio}" && pwd)"
out="${2:-$root/build/smoke/qgn-studio.png}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
rm -f "$out"

exe="$app/qgn-studio"
sample="$app/_internal/resources/samples/images/scene_02.png"
[ -x "$exe" ] || { echo "smoke-test: no executable $exe (run packaging/build-linux.sh)" >&2; exit 2; }
[ -f "$sample" ] || { echo "smoke-test: the bundle has no sample $sample" >&2; exit 2; }
command -v xvfb-run >/dev/null || { echo "smoke-test: xvfb-run is missing (apt-get install xvfb)" >&2; exit 2; }

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"   # nothing from the checkout is on any path
start=$(date +%s)
set +e
env -i HOME="$scratch" PATH=/usr/bin:/bin LANG=C.UTF-8 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
  QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" \
  "$exe" "$sample" --screenshot "$out" --size 1600x1000 --timeout "${SMOKE_TIMEOUT:-180}"
code=$?
set -e
seconds=$(( $(date +%s) - start ))
[ "$code" -eq 0 ] || { echo "smoke-test: FAILED: qgn-studio exited with $code after ${seconds} s" >&2; exit 1; }

# The PNG must exist and be a real picture of the window, not a blank one.
"$app/qgn-studio" --help >/dev/null  # the binary also answers --help without a display
python3 - "$out" <<'PY'
import struct, sys, zlib
path = sys.argv[1]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
width, height = struct.unpack(">II", data[16:24])
assert (width, height) == (1600, 1000), f"{path} is {width}x{height}, expected 1600x1000"
assert len(data) > 50_000, f"{path} is only {len(data)} bytes: the window looks empty"
print(f"smoke-test: {path}: {width}x{height}, {len(data)} bytes")
PY
echo "smoke-test: passed in ${seconds} s (start, open sample, predict, screenshot, exit 0)"
