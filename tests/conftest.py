"""Fixtures shared by every test: an isolated store, strict mode, and leak checks.

Each test gets its own store folder and working directory and runs with
``AUTOLOG_STRICT=1`` so autolog's own bugs raise. Afterwards the fixture cleans up the
way a process exit does (``autolog.process.shutdown``: runs ended, captures finished,
plot worker and writer threads stopped), closes every store the API opened and reverts
every patch, and then fails the test if it left a run open, or if any patch, store or
``autolog-*`` thread is still there after that clean-up.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("AUTOLOG_STRICT", "1")


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch):
    """Point autolog at a fresh store in tmp_path and undo every global change afterwards."""
    from autolog.tracking import api

    store_dir = tmp_path / "autolog-runs"
    monkeypatch.setenv("AUTOLOG_URI", str(store_dir))
    monkeypatch.setenv("AUTOLOG_STRICT", "1")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    monkeypatch.chdir(tmp_path)
    saved = (api._store_uri, api._experiment, api._last_run)
    api._store_uri = None
    api._experiment = None
    api._pending_params.clear()
    yield store_dir
    from autolog import process

    leaked = api.open_runs()
    for run in leaked:
        run.end("KILLED")
    patches = _disable_autolog()
    process.shutdown(timeout=10.0)
    api.close_stores()
    threads = _autolog_threads()
    stores = list(api._stores)
    api._store_uri, api._experiment, api._last_run = saved
    api._pending_params.clear()
    assert not leaked, f"test left runs open: {leaked}"
    assert not patches, f"autolog(disable=True) left patches applied: {patches}"
    assert not stores, f"stores still open after close_stores(): {stores}"
    assert not threads, f"autolog threads still alive after shutdown: {threads}"


def _autolog_threads(grace: float = 5.0) -> list[str]:
    # Stopped threads need a moment to return from their last wait.
    deadline = time.monotonic() + grace
    while True:
        alive = [t for t in threading.enumerate() if t.name.startswith("autolog") and t.is_alive()]
        if not alive or time.monotonic() > deadline:
            return [t.name for t in alive]
        alive[0].join(0.05)


def _disable_autolog() -> list:
    """Disable every integration; return the patches still applied afterwards (should be none)."""
    activation = sys.modules.get("autolog.patching.activation")
    if activation is None:
        return []
    activation.autolog(disable=True)
    from autolog.patching.engine import REGISTRY

    return REGISTRY.patched()


@pytest.fixture
def store(isolated_store):
    """The isolated store, opened."""
    import autolog

    return autolog.open_store(str(isolated_store))
