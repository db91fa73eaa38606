#!/usr/bin/env bash
# Create .venv and install autolog with every integration and the test tools.
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.autolog-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first and pinned: this CPU build lies on the machine; any other spec pulls a multi-GB CUDA build.
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e '.[all,dev]'
    echo "$want" > "$stamp"
fi
# System tools some tests need (they skip without them): PostgreSQL for the team-server sync test,
# Chromium for the UI screenshot tests. Only for the tests (`setup.sh --test-tools`), and only on a
# Debian-like machine where we are root.
if [ "${1:-}" = "--test-tools" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$missing postgresql"
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } || missing="$missing chromium"
    if [ -n "$missing" ]; then
        # shellcheck disable=SC2086
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >/dev/null \
            || echo "setup: could not install$missing; the tests needing them are skipped" >&2
    fi
fi
