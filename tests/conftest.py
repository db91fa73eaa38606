"""Fixtures shared by every test: an isolated store, strict mode, and leak checks.

Each test gets its own store folder and working directory, runs with
``AUTOLOG_STRICT=1`` so autolog's own bugs raise, and fails if it leaves a run
open or autolog patches applied.
"""

from __future__ import annotations

import os
import sys

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
    leaked = api.open_runs()
    for run in leaked:
        run.end("KILLED")
    _disable_autolog()
    api.flush()
    api._store_uri, api._experiment, api._last_run = saved
    api._pending_params.clear()
    assert not leaked, f"test left runs open: {leaked}"


def _disable_autolog() -> None:
    plugins = sys.modules.get("autolog.patching.plugins")
    if plugins is not None:
        plugins.autolog(disable=True)


@pytest.fixture
def store(isolated_store):
    """The isolated store, opened."""
    import autolog

    return autolog.open_store(str(isolated_store))
