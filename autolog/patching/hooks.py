"""Post-import hooks: run a function right after a module's code has run, whatever the import order.

What ``wrapt.register_post_import_hook`` does, without importing wrapt and ``inspect`` (~8 ms)
in a process that imports no framework: ``autolog()`` registers one hook per framework it
waits for, and wrapt is imported only when a hook patches something (``engine``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


def spec_from_other_finders(finder: Any, fullname: str, path: Any, target: Any = None) -> Any:
    """The spec the other finders on ``sys.meta_path`` give ``fullname``, or None (for a finder that only wraps loaders)."""
    for other in sys.meta_path:
        if other is finder or not hasattr(other, "find_spec"):
            continue
        spec = other.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _PostImportHooks:
    """Calls hooks right after a watched module's code has run (wrapt's post-import hooks, without wrapt).

    A meta path finder (duck-typed, like ``capture.seeding``'s: ``importlib.abc`` and wrapt
    cost milliseconds to import) that answers only for the names it watches, delegates finding
    them to the other finders, and wraps the loader they return. As with wrapt, a hook for a
    module already in ``sys.modules`` runs at once, hooks run outside the lock, a module whose
    code raised runs none, and the finder stays installed once it is needed.
    """

    def __init__(self) -> None:
        self.hooks: dict[str, list[Callable[..., Any]]] = {}
        self._lock = threading.Lock()
        self._busy = threading.local()

    def register(self, hook: Callable[..., Any], name: str) -> None:
        """Call ``hook(module)`` now if ``name`` is imported, else once right after it is."""
        with self._lock:
            module = sys.modules.get(name)
            if module is None:
                self.hooks.setdefault(name, []).append(hook)
                if self not in sys.meta_path:
                    sys.meta_path.insert(0, self)
        if module is not None:
            hook(module)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        busy: set[str] | None = getattr(self._busy, "names", None)
        if fullname not in self.hooks or (busy is not None and fullname in busy):
            return None
        if busy is None:
            busy = self._busy.names = set()
        busy.add(fullname)
        try:
            spec = spec_from_other_finders(self, fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is None:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module") and not isinstance(spec.loader, _HookedLoader):
            spec.loader = _HookedLoader(spec.loader, self)  # a Loader by duck typing
        return spec

    def loaded(self, module: Any) -> None:
        with self._lock:
            hooks = self.hooks.pop(module.__name__, ())
        for hook in hooks:
            hook(module)


class _HookedLoader:
    """Runs the real loader, puts it back on the module, then runs the module's post-import hooks."""

    def __init__(self, loader: Any, hooks: _PostImportHooks) -> None:
        self._loader = loader
        self._hooks = hooks

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        # The real loader first: importlib.resources and inspect look at it.
        if getattr(module, "__loader__", None) in (None, self):
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        self._hooks.loaded(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


_post_import_hooks = _PostImportHooks()


def register_post_import_hook(hook: Callable[..., Any], name: str) -> None:
    """Call ``hook(module)`` now if the module ``name`` is imported, else right after its import.

    As with wrapt, hooks cannot be removed: each one checks whether its integration is still enabled.
    """
    _post_import_hooks.register(hook, name)
