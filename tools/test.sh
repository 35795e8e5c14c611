#!/usr/bin/env bash
# The test suite from a fresh clone: set-up (tools/install.sh test), then pytest.
# Extra arguments go to pytest, e.g. `tools/test.sh -k slurm` or `tools/test.sh tests/test_gates.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install.sh test
exec .venv/bin/python -m pytest -q --durations=20 "$@"
