"""What an environment holds and a run cannot change: installed distributions, framework versions, machine tags.

Each is read once: ``cached`` keeps a value for the life of the process, and ``env_cached``
keeps it in a small file per environment, so a sweep of runs (or of processes) pays once.
Split from ``environment`` (which runs a run's capture) because the cache key and what is
read change for other reasons than the capture's steps and threads.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from autolog import process
from autolog.secrets import strip_userinfo

# Tag suffix -> distribution name, for every framework autolog integrates (plus the array stack).
FRAMEWORKS = {
    "torch": "torch", "keras": "keras", "tensorflow": "tensorflow", "sklearn": "scikit-learn",
    "xgboost": "xgboost", "lightgbm": "lightgbm", "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning", "tensorboard": "tensorboard", "jax": "jax",
    "numpy": "numpy", "pandas": "pandas", "mlflow": "mlflow", "autolog": "autolog",
}

_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def cached(name: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per process, kept under ``name``."""
    # Installed packages and hardware do not change within a process; sweeps pay once.
    with _cache_lock:
        if name not in _cache:
            _cache[name] = compute()
        return _cache[name]


def peek(name: str) -> Any:
    """The value ``cached`` keeps under ``name`` in this process, or None when none was computed yet."""
    return _cache.get(name)


def env_cached(name: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per environment, not once per process: kept in a small JSON file.

    The key is the interpreter, the machine, the visible GPUs and the modification times of
    the site-packages folders (installing, upgrading or removing a package changes them), so
    a changed environment is read again. Same content, same bytes: the run store keeps one
    copy of the artifact for every run of that environment. Unreadable or unwritable cache
    files only cost the computation.
    """
    import hashlib
    import json

    folders = sorted({p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)})
    try:
        stamp = [name, sys.executable, sys.version, os.uname().nodename, os.environ.get("CUDA_VISIBLE_DEVICES", "-")]
        stamp += [f"{p}:{os.stat(p).st_mtime_ns}" for p in folders]
    except (OSError, AttributeError):
        return compute()
    key = hashlib.sha256("\n".join(stamp).encode("utf-8")).hexdigest()[:24]
    folder = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autolog")
    path = os.path.join(folder, f"{name}-{key}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute()
    try:
        _write_whole(folder, path, json.dumps({"value": value}))
    except (OSError, TypeError, ValueError):
        pass
    return value


def path_cached(name: str, compute: Callable[[], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """``compute()`` (pairs of strings without tabs or newlines) once per state of the sys.path folders.

    What distributions a process can import (entry points) changes only when a folder on
    sys.path gains or loses an entry, which changes that folder's modification time: the
    file ``<cache>/autolog/<name>-<interpreter>.txt`` starts with those times and is
    rewritten when they differ, so it never multiplies.
    """
    import zlib

    try:
        stamp = "\x1f".join([name, sys.executable, *(f"{p}:{os.stat(p or '.').st_mtime_ns}" for p in sys.path if os.path.isdir(p or "."))])
    except OSError:
        return compute()
    folder = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autolog")
    path = os.path.join(folder, f"{name}-{zlib.crc32(sys.executable.encode()):08x}.txt")
    try:
        with open(path, encoding="utf-8") as fh:
            first, _, rest = fh.read().partition("\n")
        if first == stamp:
            return [(a, b) for a, _, b in (line.partition("\t") for line in rest.splitlines())]
    except (OSError, UnicodeError):
        pass
    value = compute()
    try:
        _write_whole(folder, path, stamp + "\n" + "".join(f"{a}\t{b}\n" for a, b in value))
    except OSError:
        pass
    return value


def _write_whole(folder: str, path: str, text: str) -> None:
    """Write a cache file under a temporary name, then rename it: readers see the old file or the whole new one."""
    os.makedirs(folder, exist_ok=True)
    partial = f"{path}.{os.getpid()}.tmp"
    with open(partial, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(partial, path)


def version_inside(found: str, supported: str) -> bool:
    """Whether version ``found`` lies in the range ``supported`` (an unparsable version counts as inside).

    The answer is kept per environment (``env_cached``): importing ``packaging``
    to ask it costs ~4 ms CPU in every process that imports a framework.
    """
    import zlib

    def check() -> bool:
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        try:
            return Version(found) in SpecifierSet(supported, prereleases=True)
        except InvalidVersion:
            return True

    stamp = f"{found} {supported}"
    value = env_cached(f"supported-{zlib.crc32(stamp.encode()):08x}", lambda: [stamp, check()])
    if not isinstance(value, list) or len(value) != 2 or value[0] != stamp:
        return check()  # another question under the same short name
    return bool(value[1])


def requirements() -> str:
    """The installed distributions as a pip requirements file (from ``importlib.metadata``, no pip)."""
    import platform
    from importlib import metadata

    lines: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        if key in lines:  # the first one on sys.path is the one Python imports
            continue
        lines[key] = requirement_line(dist, name)
    header = (
        f"# Installed distributions of {sys.executable} (Python {platform.python_version()}), "
        f"captured by autolog on {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    )
    return header + "\n".join(lines[k] for k in sorted(lines)) + "\n"


def requirement_line(dist: Any, name: str) -> str:
    import json

    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except (ValueError, OSError):
        direct = None
    if isinstance(direct, dict):
        url = strip_userinfo(str(direct.get("url", "")))  # pip must be able to use it
        vcs = direct.get("vcs_info")
        if isinstance(vcs, dict) and vcs.get("commit_id"):
            return f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}"
        if (direct.get("dir_info") or {}).get("editable"):
            # A local checkout: pip cannot fetch it, so say where it came from instead.
            return f"# {name}=={dist.version}  (editable install from {url})"
    return f"{name}=={dist.version}"


def system_tags() -> dict[str, str]:
    import platform
    import socket

    tags: dict[str, str] = {"user": user()}
    tags["host"] = socket.gethostname()
    tags["python.version"] = platform.python_version()
    tags["python.executable"] = sys.executable
    tags["platform"] = platform.platform()
    return tags


def user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): not worth a failure tag
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def framework_versions() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for tag, dist in FRAMEWORKS.items():
        try:
            found[f"version.{tag}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def _reset_in_child() -> None:
    # A fork can copy the lock held by another thread; the cached values stay valid.
    global _cache_lock
    _cache_lock = threading.Lock()


process.on_fork_child("installed facts cache", _reset_in_child)
