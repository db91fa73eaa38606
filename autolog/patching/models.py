"""Saving trained models as run artifacts, and finding them again to load.

Each saved model is a folder ``<name>/`` inside the run: the model file(s) in the
framework's own format plus ``meta.json`` with the flavor, file name and the exact
library versions needed to load it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from autolog.patching.plugins import installed_version


def save_model_files(run, write: Callable[[str], str], flavor: str, artifact_dir: str = "model",
                     versions: dict[str, str | None] | None = None, extra: dict[str, Any] | None = None) -> str:
    """Let ``write(folder) -> file name`` save a model into a temp folder, then store the folder.

    Returns the artifact path of the model file.
    """
    import json
    import platform
    import tempfile

    with tempfile.TemporaryDirectory(prefix="autolog-model-") as tmp:
        filename = write(tmp)
        meta = {
            "flavor": flavor,
            "file": filename,
            "python": platform.python_version(),
            "versions": {k: v for k, v in (versions or {}).items() if v},
            **(extra or {}),
        }
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2, sort_keys=True)
        run.log_artifacts(tmp, artifact_dir)
    return f"{artifact_dir}/{filename}"


def versions_of(*distributions: str) -> dict[str, str | None]:
    """Installed versions of the given distributions (None when absent)."""
    return {d: installed_version(d) for d in distributions}


@contextmanager
def model_file(store, run_id: str, artifact_dir: str = "model") -> Iterator[tuple[dict, str]]:
    """Yield ``(meta, path)``: the model folder copied to a temp dir under its own file names.

    Loaders that read the format from the file extension (``.keras``, ``.json``,
    ``.ubj``) need the real name, not the content-addressed blob.
    """
    import json
    import tempfile

    with open(store.artifact_file(run_id, f"{artifact_dir}/meta.json"), encoding="utf-8") as fh:
        meta = json.load(fh)
    with tempfile.TemporaryDirectory(prefix="autolog-load-") as tmp:
        store.download_artifacts(run_id, artifact_dir, tmp)
        yield meta, os.path.join(tmp, artifact_dir, *meta["file"].split("/"))


def resolve_store(store=None):
    """The given store, or the current default one."""
    if store is not None:
        return store
    from autolog.tracking.api import get_store

    return get_store()
