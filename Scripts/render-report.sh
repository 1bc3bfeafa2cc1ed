#!/usr/bin/env bash
# Renders a `bonfire report` page to PNG with headless Chromium (Debian: apt-get install chromium).
#   bash Scripts/render-report.sh runs/latest/report.html report.png [width] [height]
# The page is self-contained; Chromium runs with networking pointed nowhere, so any external fetch would fail
# (and show up as a console error on stderr).
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 <report.html> <out.png> [width=1280] [height=3200]" >&2; exit 2; fi
html=$1; png=$2; width=${3:-1280}; height=${4:-3200}
[ -f "$html" ] || { echo "render-report: $html not found; write it with: bonfire report <run-dir>" >&2; exit 1; }
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$chrome" ] || { echo "render-report: chromium not found; install it (apt-get install chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
# --no-sandbox: Chromium refuses to run as root otherwise (CI containers).
"$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --host-resolver-rules="MAP * ~NOTFOUND" --window-size="$width,$height" \
  --screenshot="$out" "file://$abs" 2>"$profile/stderr.log" || { cat "$profile/stderr.log" >&2; exit 1; }
[ -s "$out" ] || { echo "render-report: chromium wrote no PNG" >&2; cat "$profile/stderr.log" >&2; exit 1; }
echo "render-report: wrote $out"
