#!/usr/bin/env bash
# Sets up the project's virtual environment in .venv from a fresh clone.
#   tools/install.sh        what a run needs (torch, snakemake, diffusers, ...)
#   tools/install.sh test   plus the test extras, and Debian's chromium, chromedriver and
#                           graphviz for the report's browser test and the rule-graph test
#                           (installed with apt-get when this is root on Debian/Ubuntu)
# Rerunning it is harmless: an existing .venv is reused and brought up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "tools/install.sh: $python is missing or older than 3.11; set PYTHON=/path/to/python3.11 (or newer)" >&2
    exit 1
fi
extras=""
if [ "${1:-}" = test ]; then
    extras="[test]"
    missing=""
    command -v chromium >/dev/null || missing="$missing chromium chromium-driver"
    command -v dot >/dev/null || missing="$missing graphviz"
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
            && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }; then
            :
        else
            echo "tools/install.sh: could not install$missing; the tests that need them skip (and fail under CI=true)" >&2
        fi
    fi
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q -e ".$extras"
