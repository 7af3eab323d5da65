#!/usr/bin/env bash
# Build the one-folder Linux app: dist/qgn-studio/qgn-studio (+ _internal/, the .desktop file, icons).
#
#   packaging/build-linux.sh            # uses .venv (PYTHON=... to choose another interpreter)
#   packaging/smoke-test.sh             # then: start it under Xvfb on a sample, predict, screenshot
#
# Needs PyInstaller in that environment: .venv/bin/pip install -e '.[package]'. Build files go to
# build/pyinstaller/, the app to dist/qgn-studio/ (both git-ignored). Not part of the test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-.venv/bin/python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

if ! "$PY" -c 'import PyInstaller' 2>/dev/null; then
  echo "build-linux: PyInstaller is not installed for $PY; run: $PY -m pip install -e '.[package]'" >&2
  exit 2
fi

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/qgn-studio.spec
app=dist/qgn-studio

# Desktop integration files beside the executable (packaging/README.md: installing them).
cp packaging/qgn-studio.desktop packaging/install-desktop-entry.sh "$app/"
mkdir -p "$app/icons"
cp resources/icons/qgn-studio.svg resources/icons/qgn-studio-*.png "$app/icons/"

seconds=$(( $(date +%s) - start ))
size=$(du -sh "$app" | cut -f1)
version=$("$PY" -c 'import qgn; print(qgn.__version__)')
echo "build-linux: built $app/qgn-studio (QGN Studio $version): $size in ${seconds} s"
