#!/usr/bin/env bash
# Set up, train every example with autolog into ./autolog-runs, and show the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KERAS_BACKEND=${KERAS_BACKEND:-torch}
.venv/bin/python examples/demo.py
