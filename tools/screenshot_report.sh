#!/usr/bin/env bash
# Takes docs/report.png, the README's picture of a report: the top of results/report/index.html
# (or the report given as the first argument) rendered by headless Chromium at 1200 x 1500 px.
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(realpath "${1:-results/report/index.html}")
[ -f "$report" ] || { echo "no report at $report: run the workflow first" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1200,1500 \
    --screenshot="$PWD/docs/report.png" "file://$report" 2>/dev/null
echo "wrote docs/report.png from $report"
