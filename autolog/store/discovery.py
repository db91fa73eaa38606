"""Where the default store is: found the way git finds ``.git``.

A notebook in ``notebooks/`` and ``autolog ls`` at the repository root must use the same
store. Without ``set_store``/``--store``/``$AUTOLOG_URI``, the store is the first
``autolog-runs`` folder found walking up from the working directory, stopping at the git
root (the folder holding ``.git``); when there is none, it is ``autolog-runs`` at the git
root, or in the working directory outside a git repository. Writers and readers both
call :func:`default_store_path`, so they agree.
"""

from __future__ import annotations

import os

from autolog import env


def _is_store(folder: str) -> bool:
    return os.path.isdir(folder)


def git_root(start: str) -> str | None:
    """The nearest folder at or above ``start`` holding ``.git`` (a folder or a worktree file), or None."""
    folder = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def default_store_path(start: str | None = None) -> str:
    """The store path used when none is given (see the module docstring); an absolute path.

    Args:
        start: the folder to search from; default the working directory.
    """
    start = os.path.abspath(start or os.getcwd())
    root = git_root(start)
    if root is None:  # outside git there is no project boundary: never pick up a store from far above
        return os.path.join(start, env.DEFAULT_STORE)
    folder = start
    while True:
        candidate = os.path.join(folder, env.DEFAULT_STORE)
        if _is_store(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if folder == root or parent == folder:
            break
        folder = parent
    return os.path.join(root, env.DEFAULT_STORE)
