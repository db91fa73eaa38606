"""Environment variables autolog reads, as named constants, and their parsed values."""

from __future__ import annotations

import os

AUTOLOG_URI = "AUTOLOG_URI"  # store path; default ./autolog-runs
AUTOLOG_STRICT = "AUTOLOG_STRICT"  # "1": errors in autolog code raise instead of warning
AUTOLOG_FLUSH_INTERVAL = "AUTOLOG_FLUSH_INTERVAL"  # seconds between background commits
AUTOLOG_EXIT_TIMEOUT = "AUTOLOG_EXIT_TIMEOUT"  # seconds the final flush at exit may take
AUTOLOG_LOCK_TIMEOUT = "AUTOLOG_LOCK_TIMEOUT"  # seconds a call on the training thread waits for another process's store lock; default 5
AUTOLOG_QUEUE_LIMIT = "AUTOLOG_QUEUE_LIMIT"  # points buffered before log_metric waits
AUTOLOG_SILENT = "AUTOLOG_SILENT"  # "1": no autolog warnings
AUTOLOG_SYNC_BATCH_DELAY = "AUTOLOG_SYNC_BATCH_DELAY"  # tests: seconds `autolog sync` waits after each batch
AUTOLOG_SEED = "AUTOLOG_SEED"  # seed that seed_everything() uses when called without one (`autolog reproduce` sets it)
AUTOLOG_SYSTEM_METRICS_INTERVAL = "AUTOLOG_SYSTEM_METRICS_INTERVAL"  # seconds between system/... samples; default 10
AUTOLOG_GIT_TIMEOUT = "AUTOLOG_GIT_TIMEOUT"  # seconds one git call of the environment capture may take; default 5
AUTOLOG_CAPTURE_TIMEOUT = "AUTOLOG_CAPTURE_TIMEOUT"  # seconds a run's end waits for its environment capture; default 5
AUTOLOG_REPRODUCES = "AUTOLOG_REPRODUCES"  # id of the run this process reproduces (tag reproduce.of)
AUTOLOG_REDACT = "AUTOLOG_REDACT"  # "0": store params, tags and command lines as given (no credential redaction)

DEFAULT_STORE = "autolog-runs"
DEFAULT_EXPERIMENT = "Default"

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
    """Return the store location: ``$AUTOLOG_URI``, else the discovered default folder.

    The default is the first ``autolog-runs`` found walking up to the git root, else
    ``autolog-runs`` at the git root (see :mod:`autolog.store.discovery`).
    """
    uri = os.environ.get(AUTOLOG_URI)
    if uri:
        return uri
    from autolog.store.discovery import default_store_path

    return default_store_path()
