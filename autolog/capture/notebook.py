"""The notebook a Jupyter kernel runs: its path and name, and its source saved with a run.

The notebook is found in this order, the first that answers wins:

1. VS Code: ``__vsc_ipynb_file__`` in the notebook's namespace.
2. ``$JPY_SESSION_NAME``: Jupyter Server 2 (JupyterLab 4, Notebook 7) sets it to the
   notebook's path for the kernels it starts; set it yourself for nbclient or papermill.
3. The Jupyter servers running on this machine (their runtime files): their sessions API
   says which notebook uses this kernel (matched by the kernel id of the connection file).
4. Otherwise the kernel id: runs are named ``notebook-<kernel id>``.

Runs get the tags ``source.notebook`` (the path) and ``source.notebook_name``, and the
notebook itself is stored as ``source/<name>.ipynb`` with its outputs stripped (at most
``SOURCE_LIMIT`` bytes). When the file cannot be read, the cells executed so far (IPython's
``In``) are stored as ``source/<name>.py`` instead.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

SOURCE_LIMIT = 5 * 2**20  # bytes of stripped notebook JSON stored with a run
SERVER_TIMEOUT = 1.0  # seconds to wait for a local Jupyter server's sessions API

_found: dict[str, Any] = {}
_lock = threading.Lock()


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel running a notebook."""
    return "ipykernel" in sys.modules and _shell() is not None


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get else None
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def kernel_id() -> str | None:
    """The running kernel's id, from its connection file name (``kernel-<id>.json``)."""
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:  # not a kernel, or an ipykernel without it
        return None
    stem = os.path.splitext(name)[0]
    return stem[len("kernel-"):] if stem.startswith("kernel-") else stem or None


def notebook() -> dict[str, str]:
    """``{"path", "name", "found_by"}`` of the notebook this kernel runs (``path`` absent when unknown).

    Found once per kernel (see the module docstring for the order) and cached.
    """
    with _lock:
        if not _found:
            _found.update(_find())
        return dict(_found)


def _find() -> dict[str, str]:
    shell = _shell()
    namespace = getattr(shell, "user_ns", {}) or {}
    for found_by, path in (("vscode", namespace.get("__vsc_ipynb_file__")), ("JPY_SESSION_NAME", os.environ.get("JPY_SESSION_NAME"))):
        if path and str(path).endswith(".ipynb"):
            return _described(str(path), found_by)
    kid = kernel_id()
    if kid:
        path = _from_servers(kid)
        if path:
            return _described(path, "jupyter-server")
    return {"name": f"notebook-{(kid or 'unknown')[:8]}", "found_by": "kernel-id"}


def _described(path: str, found_by: str) -> dict[str, str]:
    path = os.path.abspath(os.path.expanduser(path))
    return {"path": path, "name": os.path.splitext(os.path.basename(path))[0], "found_by": found_by}


def _from_servers(kid: str) -> str | None:
    # Local servers only: their runtime files name a loopback URL and a token.
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    import urllib.request

    for server in list_running_servers():
        url = str(server.get("url", ""))
        if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
            continue
        request = urllib.request.Request(url.rstrip("/") + "/api/sessions", headers={"Authorization": f"token {server.get('token', '')}"})
        try:
            with urllib.request.urlopen(request, timeout=SERVER_TIMEOUT) as response:
                sessions = json.load(response)
        except Exception:  # a stale runtime file, a server that wants a password
            continue
        for session in sessions:
            if (session.get("kernel") or {}).get("id") == kid:
                relative = (session.get("notebook") or {}).get("path") or session.get("path")
                root = server.get("root_dir") or server.get("notebook_dir") or ""
                if relative:
                    return os.path.join(root, relative)
    return None


def stripped_source(path: str) -> bytes | None:
    """The notebook at ``path`` as JSON with outputs and execution counts removed, or None when unreadable or too big."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        for cell in data.get("cells", []):
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
    except (OSError, ValueError, AttributeError):
        return None
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    encoded = text.encode("utf-8")
    return encoded if len(encoded) <= SOURCE_LIMIT else None


def executed_cells() -> bytes:
    """The cells this kernel has executed so far (IPython's ``In``), as one Python file."""
    shell = _shell()
    cells = list((getattr(shell, "user_ns", {}) or {}).get("In", []))[1:]
    text = "".join(f"# In[{i}]:\n{cell}\n\n" for i, cell in enumerate(cells, 1))
    return text.encode("utf-8")[:SOURCE_LIMIT]


def capture() -> tuple[dict[str, str], dict[str, bytes]]:
    """The tags and artifacts that describe the notebook of this kernel, for a run."""
    found = notebook()
    tags = {"source.notebook_name": found["name"], "source.notebook_found_by": found["found_by"]}
    source = None
    if "path" in found:
        tags["source.notebook"] = found["path"]
        source = stripped_source(found["path"])
    if source is not None:
        return tags, {f"source/{found['name']}.ipynb": source}
    return tags, {f"source/{found['name']}.py": executed_cells()}


def name_prefix() -> str | None:
    """The notebook's name when this process is a notebook kernel (run names start with it), else None."""
    if not in_notebook():
        return None
    return notebook()["name"]
