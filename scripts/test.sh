#!/usr/bin/env bash
# Set up, lint, type-check, and run the whole test suite (real frameworks, real servers on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-tools
export KERAS_BACKEND=torch AUTOLOG_STRICT=1
.venv/bin/ruff check .
.venv/bin/mypy  # autolog/, as configured in pyproject.toml ([tool.mypy])
# The suite runs once, in random order (pytest-randomly), so no test leans on another's leftovers.
# The seed is printed: repeat that order with AUTOLOG_TEST_SEED=N scripts/test.sh, or
# `pytest -p randomly --randomly-seed=N`. A plain `pytest` keeps file order (addopts: -p no:randomly).
seed="${AUTOLOG_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
echo "test order: random, seed $seed (repeat it: AUTOLOG_TEST_SEED=$seed scripts/test.sh)"
.venv/bin/python -m pytest -q -p randomly --randomly-seed="$seed" "$@"
# Every benchmark end to end at tiny sizes, peers off, no figures checked: none of them can rot
# (whole-suite runs only; a crash prints its traceback and fails the script).
if [ $# -eq 0 ]; then .venv/bin/python -m benchmarks --quick > /dev/null; fi
