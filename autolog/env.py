"""Environment variables autolog reads, as named constants, and their parsed values."""

from __future__ import annotations

import os

AUTOLOG_URI = "AUTOLOG_URI"  # store path; default ./autolog-runs
AUTOLOG_STRICT = "AUTOLOG_STRICT"  # "1": errors in autolog code raise instead of warning
AUTOLOG_FLUSH_INTERVAL = "AUTOLOG_FLUSH_INTERVAL"  # seconds between background commits
AUTOLOG_EXIT_TIMEOUT = "AUTOLOG_EXIT_TIMEOUT"  # seconds the final flush at exit may take
AUTOLOG_QUEUE_LIMIT = "AUTOLOG_QUEUE_LIMIT"  # points buffered before log_metric waits
AUTOLOG_SILENT = "AUTOLOG_SILENT"  # "1": no autolog warnings

DEFAULT_STORE = "autolog-runs"

_TRUE = {"1", "true", "yes", "on"}


def flag(name: str) -> bool:
    """Return whether the boolean environment variable ``name`` is set to a true value."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def number(name: str, default: float) -> float:
    """Return the float value of ``name``, or ``default`` when unset or unparsable."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        return default


def strict() -> bool:
    """Return whether autolog's own errors should raise (the test suite sets it)."""
    return flag(AUTOLOG_STRICT)


def store_uri() -> str:
    """Return the store location from ``$AUTOLOG_URI`` or the default folder."""
    return os.environ.get(AUTOLOG_URI) or DEFAULT_STORE
