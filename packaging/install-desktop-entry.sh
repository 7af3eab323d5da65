#!/usr/bin/env bash
# Add QGN Studio to the desktop's application menu for the current user (no root needed).
#
#   ./install-desktop-entry.sh [APP_DIR]     # APP_DIR: the built dist/qgn-studio (default: this folder)
#   ./install-desktop-entry.sh --remove
#
# Installs the icons into ~/.local/share/icons/hicolor/<N>x<N>/apps/ and the .desktop file into
# ~/.local/share/applications/ with Exec= pointing at APP_DIR/qgn-studio.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
sizes="16 32 48 64 128 256 512"

if [ "${1:-}" = "--remove" ]; then
  rm -f "$data/applications/qgn-studio.desktop" "$data/icons/hicolor/scalable/apps/qgn-studio.svg"
  for n in $sizes; do rm -f "$data/icons/hicolor/${n}x${n}/apps/qgn-studio.png"; done
  echo "removed the QGN Studio menu entry"
  exit 0
fi

app="$(cd "${1:-$here}" && pwd)"
[ -x "$app/qgn-studio" ] || { echo "install-desktop-entry: no executable $app/qgn-studio" >&2; exit 2; }
icons="$app/icons"
[ -d "$icons" ] || icons="$here/../resources/icons"   # run from a source checkout

for n in $sizes; do
  install -D -m 644 "$icons/qgn-studio-$n.png" "$data/icons/hicolor/${n}x${n}/apps/qgn-studio.png"
done
install -D -m 644 "$icons/qgn-studio.svg" "$data/icons/hicolor/scalable/apps/qgn-studio.svg"
desktop="$here/qgn-studio.desktop"
mkdir -p "$data/applications"
sed -e "s|^Exec=.*|Exec=\"$app/qgn-studio\" %F|" -e "s|^TryExec=.*|TryExec=$app/qgn-studio|" \
  "$desktop" > "$data/applications/qgn-studio.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "installed $data/applications/qgn-studio.desktop -> $app/qgn-studio"
