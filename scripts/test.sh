#!/usr/bin/env bash
# Set up, lint, and run the whole test suite (real frameworks, real servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-tools
export KERAS_BACKEND=torch AUTOLOG_STRICT=1
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
# Every benchmark end to end at tiny sizes, peers off, no figures checked: none of them can rot
# (whole-suite runs only; a crash prints its traceback and fails the script).
if [ $# -eq 0 ]; then .venv/bin/python -m benchmarks --quick > /dev/null; fi
