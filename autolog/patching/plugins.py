"""Integrations: their common shape, discovery by entry points, and switching one on or off.

An integration is a small object (``INTEGRATION`` in its module) naming the framework
module it patches, the distribution and version range it was tested with, the pip
extra that installs it, and a ``patch(framework_module)`` function that applies its
patches through ``autolog.patching.REGISTRY``. Built-in and third-party integrations
are found the same way: the entry-point group ``autolog.integrations``.

``enable`` patches a framework already imported at once and registers a post-import hook
(``hooks.register_post_import_hook``) otherwise, so it works whatever the import order; it imports no framework. The
user-facing ``autolog()`` and its options live in ``autolog.patching.activation``.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from autolog.errors import InvalidType
from autolog.patching import options
from autolog.reporting import report, warn_once

GROUP = "autolog.integrations"


class Integration:
    """What every integration declares; ``patch`` receives the imported framework module.

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect`` (~5 ms), which
    ``import autolog`` must not pay for.
    """

    def __init__(self, name: str, module: str, distribution: str, supported: str, extra: str,
                 patch: Callable[[Any], None], also_modules: tuple[str, ...] = ()) -> None:
        self.name = name
        self.module = module
        self.distribution = distribution
        self.supported = supported
        self.extra = extra
        self.patch = patch
        self.also_modules = also_modules  # other import names that trigger patching (pytorch_lightning)
        self.enabled = False
        self.patched_modules: set[str] = set()

    def __repr__(self) -> str:
        return f"Integration(name={self.name!r}, module={self.module!r}, supported={self.supported!r}, enabled={self.enabled})"

    @property
    def install_hint(self) -> str:
        """The pip command that installs this integration's framework."""
        return f"pip install 'autolog[{self.extra}]'"

    def is_enabled(self) -> bool:
        """Read at every patched call, so ``autolog(disable=True)`` takes effect at once."""
        return self.enabled


_lock = threading.RLock()
_integrations: dict[str, Integration] | None = None
_hooked: set[str] = set()


def entry_points(group: str) -> list[tuple[str, str]]:
    """``(name, "module:attribute")`` of every entry point in ``group``, first on sys.path wins.

    A direct read of ``*.dist-info/entry_points.txt``: ``importlib.metadata`` parses every
    installed distribution's metadata and costs tens of milliseconds at ``autolog()``. The
    answer is kept per environment (``installed.path_cached``): reading dozens of
    ``entry_points.txt`` costs ~3 ms in every process.
    """
    from autolog.capture.installed import path_cached

    return path_cached(f"entry-points-{group}", lambda: _scan(group))


def _scan(group: str) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    seen: set[str] = set()
    header = f"[{group}]"
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = name.split("-", 1)[0].lower().replace("_", "-").replace(".", "-")
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(folder or ".", name, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if header in text:
                for ep_name, value in _section(text, header):
                    found.setdefault(ep_name, value)
    return list(found.items())


def _section(text: str, header: str) -> list[tuple[str, str]]:
    out = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            inside = line == header
        elif inside and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def _load(value: str) -> Any:
    module_name, _, attribute = value.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in attribute.strip().split(".") if attribute.strip() else []:
        obj = getattr(obj, part)
    return obj


# The framework modules each built-in integration patches (its ``module`` and ``also_modules``),
# so that ``autolog()`` can hook them without importing the integration modules (5-15 ms);
# an integration module is imported when its framework is. Third-party integrations are
# imported by ``autolog()``: only they know their framework. A test keeps this in step.
BUILTIN_FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "autolog.integrations.sklearn": ("sklearn",),
    "autolog.integrations.xgboost": ("xgboost",),
    "autolog.integrations.lightgbm": ("lightgbm",),
    "autolog.integrations.keras": ("keras",),
    "autolog.integrations.lightning": ("lightning", "pytorch_lightning"),
    "autolog.integrations.tensorboard": ("torch.utils.tensorboard", "tensorboardX"),
}

_entries: dict[str, str] | None = None  # name -> "module:attribute" of the entry points not imported yet
_wanted: set[str] = set()  # integrations autolog() enabled, loaded or still waiting for their framework


def _entry_map() -> dict[str, str]:
    global _entries
    with _lock:
        if _entries is None:
            _entries = dict(entry_points(GROUP))
        return _entries


def _loaded() -> dict[str, Integration]:
    global _integrations
    with _lock:
        if _integrations is None:
            _integrations = {}
        return _integrations


def _load_entry(ep_name: str) -> Integration | None:
    # Import one entry point's integration (once: its entry is then dropped); one autolog() wants is enabled on load.
    with _lock:
        found = _loaded()
        value = _entry_map().pop(ep_name, None)
        if value is None:
            return found.get(ep_name)
        try:
            obj = _load(value)
        except Exception as exc:
            warn_once(f"load:{ep_name}", f"autolog: could not load integration {ep_name!r} ({value}): {exc}")
            return None
        if not isinstance(obj, Integration):
            warn_once(f"load:{ep_name}", f"autolog: entry point {ep_name!r} ({value}) is not an autolog Integration")
            return None
        found.setdefault(obj.name, obj)
        if obj.name in _wanted and not obj.enabled:
            enable(obj)
        return found[obj.name]


def discover() -> dict[str, Integration]:
    """Load every integration registered under the entry-point group (each imported once per process)."""
    with _lock:
        for ep_name in list(_entry_map()):
            _load_entry(ep_name)
        return _loaded()


def names() -> list[str]:
    """The names of every known integration, without importing any integration module."""
    with _lock:
        return list(dict.fromkeys([*_entry_map(), *_loaded()]))


def get(name: str) -> Integration | None:
    """The integration called ``name`` (its module imported now if needed), or None."""
    with _lock:
        found = _loaded().get(name)
        return found if found is not None else _load_entry(name)


def framework_modules(name: str) -> tuple[str, ...] | None:
    """The modules whose import patches ``name``: read from the table for built-ins, else from the loaded integration."""
    with _lock:
        found = _loaded().get(name)
        if found is None:
            value = _entry_map().get(name, "")
            modules = BUILTIN_FRAMEWORKS.get(value.partition(":")[0].strip())
            if modules is not None:
                return modules
            found = _load_entry(name)
        return None if found is None else (found.module, *found.also_modules)


def enable_name(name: str) -> None:
    """Turn the integration ``name`` on; a built-in one is imported only when its framework is."""
    with _lock:
        found = _loaded().get(name)
        if found is not None:
            enable(found)
            return
        modules = framework_modules(name)
        if modules is None:
            return
        _wanted.add(name)
        if any(m in sys.modules for m in modules):
            _load_entry(name)
            return
        for module_name in modules:
            key = f"load:{name}:{module_name}"
            if key in _hooked:
                continue
            _hooked.add(key)
            from autolog.patching.hooks import register_post_import_hook

            # The hook imports the integration, which (still wanted) enables and patches at once.
            register_post_import_hook(lambda _module, n=name: _load_wanted(n), module_name)


def _load_wanted(name: str) -> None:
    with _lock:
        if name in _wanted:
            _load_entry(name)


def disable_name(name: str) -> None:
    """Turn the integration ``name`` off; one never imported has nothing to restore."""
    with _lock:
        found = _loaded().get(name)
        if found is not None:
            disable(found)
        _wanted.discard(name)


def is_enabled(name: str) -> bool:
    """Whether ``name`` is on: patched (or hooked) now, or waiting for its framework's import."""
    found = _loaded().get(name)
    return found.enabled if found is not None else name in _wanted


def register(integration: Integration) -> None:
    """Add an integration by hand (tests and plugins that are not installed as distributions)."""
    if not isinstance(integration, Integration):
        raise InvalidType(f"expected an autolog Integration, got {type(integration).__name__}")
    _loaded()[integration.name] = integration


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _version_ok(integration: Integration) -> bool:
    found = installed_version(integration.distribution)
    if found is None:
        return True  # imported from a source tree: nothing to check against
    from autolog.capture.installed import version_inside

    if version_inside(found, integration.supported):
        return True
    skip = options.get(integration.name, "disable_for_unsupported_versions")
    warn_once(
        f"version:{integration.name}",
        f"autolog: {integration.distribution} {found} is outside the tested range {integration.supported} "
        f"of the {integration.name} integration; " + ("it is not patched (disable_for_unsupported_versions=True)." if skip else "it is patched anyway."),
    )
    return not skip


def _apply(integration: Integration, module: Any) -> None:
    if not integration.enabled or module.__name__ in integration.patched_modules:
        return
    if not _version_ok(integration):
        return
    try:
        integration.patch(module)
        integration.patched_modules.add(module.__name__)
    except Exception as exc:
        from autolog.patching.engine import REGISTRY

        REGISTRY.revert(integration.name)
        report(integration.name, exc)


def _hook(integration: Integration, module_name: str) -> None:
    if module_name in sys.modules:
        _apply(integration, sys.modules[module_name])
        return
    key = f"{integration.name}:{module_name}"
    if key in _hooked:
        return
    _hooked.add(key)
    # Post-import hooks cannot be removed; the hook checks whether the integration is still enabled.
    from autolog.patching.hooks import register_post_import_hook

    register_post_import_hook(lambda module, i=integration: _apply(i, module), module_name)


def when_imported(integration: Integration, module_name: str, fn: Callable[[Any], None]) -> None:
    """Call ``fn(module)`` now if ``module_name`` is imported, else when it is (while enabled).

    Integrations use it for submodules they patch besides their framework's root.
    """
    def run(module: Any) -> None:
        if integration.enabled:
            try:
                fn(module)
            except Exception as exc:
                report(integration.name, exc)

    if module_name in sys.modules:
        run(sys.modules[module_name])
        return
    key = f"{integration.name}:{module_name}:{getattr(fn, '__qualname__', fn)}"
    with _lock:
        if key in _hooked:
            return
        _hooked.add(key)
    from autolog.patching.hooks import register_post_import_hook

    register_post_import_hook(run, module_name)


def enable(integration: Integration) -> None:
    """Turn one integration on: patch its framework now or as soon as it is imported."""
    with _lock:
        integration.enabled = True
        _wanted.add(integration.name)
        for module_name in (integration.module, *integration.also_modules):
            _hook(integration, module_name)


def disable(integration: Integration) -> None:
    """Turn one integration off and restore every attribute it patched."""
    with _lock:
        integration.enabled = False
        _wanted.discard(integration.name)
        from autolog.patching.engine import REGISTRY

        REGISTRY.revert(integration.name)
        integration.patched_modules.clear()
        options.clear_for(integration.name)


def modules_available(modules: tuple[str, ...]) -> bool:
    """Whether one of ``modules`` is imported or importable (its top package is found; nothing is imported)."""
    if any(m in sys.modules for m in modules):
        return True
    from importlib.util import find_spec

    for module_name in modules:
        try:
            # find_spec("torch.utils.tensorboard") imports torch; the top package's spec imports nothing.
            if find_spec(module_name.partition(".")[0]) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def integration_autolog(name: str) -> Callable[..., bool]:
    """Build the ``autolog(...)`` function an integration module exposes."""

    def autolog_one(**opts: Any) -> bool:
        from autolog.patching.activation import enable_integration

        return enable_integration(name, **opts)

    autolog_one.__name__ = "autolog"
    autolog_one.__doc__ = f"Enable only the {name} integration, with options that win over the global autolog() ones."
    return autolog_one


def import_framework(integration: Integration) -> Any:
    """Import the framework of ``integration`` or raise ImportError naming the extra."""
    try:
        return importlib.import_module(integration.module)
    except ImportError as exc:
        raise ImportError(f"{integration.module} is not installed: {integration.install_hint}") from exc
