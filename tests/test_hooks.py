"""Post-import hooks: a hook runs once, right after its module's code, with the real loader in place.

The modules are small packages written to tmp_path and imported by the test.
"""

from __future__ import annotations

import sys
import uuid

import pytest

from autolog.patching.hooks import register_post_import_hook


def _write_package(tmp_path, monkeypatch, source: str) -> str:
    module = f"hooked_{uuid.uuid4().hex[:8]}"
    (tmp_path / module).mkdir()
    (tmp_path / module / "__init__.py").write_text(source)
    (tmp_path / module / "sub.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_post_import_hook_runs_after_the_module_code_once(tmp_path, monkeypatch):
    module_name = _write_package(tmp_path, monkeypatch, "VALUE = 1\n")
    seen: list = []
    register_post_import_hook(lambda m: seen.append(("root", m.VALUE)), module_name)
    register_post_import_hook(lambda m: seen.append(("sub", m.VALUE)), f"{module_name}.sub")
    assert seen == [] and module_name not in sys.modules
    try:
        sub = __import__(f"{module_name}.sub", fromlist=["VALUE"])
        assert seen == [("root", 1), ("sub", 2)]
        root = sys.modules[module_name]
        # The real loader stays the module's (importlib.resources and inspect read it).
        assert type(root.__loader__).__name__ == "SourceFileLoader" and root.__spec__.loader is root.__loader__
        assert type(sub.__loader__).__name__ == "SourceFileLoader"
        # Already imported: the hook runs at once; earlier hooks do not run again.
        register_post_import_hook(lambda m: seen.append(("again", m.VALUE)), module_name)
        assert __import__(module_name) is root and seen == [("root", 1), ("sub", 2), ("again", 1)]
    finally:
        sys.modules.pop(f"{module_name}.sub", None)
        sys.modules.pop(module_name, None)


def test_post_import_hook_waits_when_the_module_fails_to_import(tmp_path, monkeypatch):
    module_name = _write_package(tmp_path, monkeypatch, "raise ImportError('not today')\n")
    seen: list = []
    register_post_import_hook(seen.append, module_name)
    try:
        with pytest.raises(ImportError, match="not today"):
            __import__(module_name)
        assert seen == []
        (tmp_path / module_name / "__init__.py").write_text("VALUE = 3\n")
        sys.modules.pop(module_name, None)
        module = __import__(module_name)  # a second try runs the hook once it succeeds
        assert [m.VALUE for m in seen] == [3] and seen[0] is module
    finally:
        sys.modules.pop(module_name, None)
