"""Saving trained models as run artifacts, and finding them again to load.

Each saved model is a folder ``<name>/`` inside the run: the model file(s) in the
framework's own format plus ``meta.json`` with the flavor, file name and the exact
library versions needed to load it, and an ``MLmodel`` file (see ``mlmodel.py``) that
makes the folder an MLflow Model.
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
    import shutil
    import tempfile

    # mkdtemp, not TemporaryDirectory: models are saved on background threads, also while the
    # interpreter exits, and weakref's exit hook deletes every live TemporaryDirectory under the save.
    tmp = tempfile.mkdtemp(prefix="autolog-model-")
    try:
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
        _write_mlmodel(tmp, meta)
        run.log_artifacts(tmp, artifact_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"{artifact_dir}/{filename}"


def _write_mlmodel(folder: str, meta: dict[str, Any]) -> None:
    # The MLmodel file only adds a way to load the model: a failure there never costs the model.
    from autolog.patching.mlmodel import write_mlmodel

    try:
        write_mlmodel(folder, meta)
    except Exception as exc:
        from autolog.reporting import report

        report(f"{meta.get('flavor')} MLmodel", exc)


def versions_of(*distributions: str) -> dict[str, str | None]:
    """Installed versions of the given distributions (None when absent)."""
    return {d: installed_version(d) for d in distributions}


@contextmanager
def model_file(store, run_id: str, artifact_dir: str = "model", flavor: str | None = None) -> Iterator[tuple[dict, str]]:
    """Yield ``(meta, path)``: the model folder copied to a temp dir under its own file names.

    Loaders that read the format from the file extension (``.keras``, ``.json``,
    ``.ubj``) need the real name, not the content-addressed blob. With ``flavor``, a model
    saved by another integration raises ``InvalidModel`` naming the loader to use, instead
    of the framework failing on a file it cannot read.

    Raises:
        InvalidModel: the run saved no model under ``artifact_dir``, or one of another flavor.
    """
    import json
    import tempfile

    from autolog.errors import InvalidModel, RunNotFound

    try:
        meta_path = store.artifact_file(run_id, f"{artifact_dir}/meta.json")
    except RunNotFound:
        raise InvalidModel(f"run {run_id[:8]} saved no model under {artifact_dir + '/'!r}"
                           " (autolog saves one at the end of a fit unless log_models=False)") from None
    with open(meta_path, encoding="utf-8") as fh:
        meta = json.load(fh)
    saved = meta.get("flavor")
    if flavor is not None and saved != flavor:
        raise InvalidModel(f"run {run_id[:8]} saved a {saved!r} model, not a {flavor!r} one: load it with"
                           f" autolog.integrations.{saved}.load_model, or autolog.load_model(run_id) which picks the loader")
    with tempfile.TemporaryDirectory(prefix="autolog-load-") as tmp:
        store.download_artifacts(run_id, artifact_dir, tmp)
        yield meta, os.path.join(tmp, artifact_dir, *meta["file"].split("/"))


def resolve_store(store=None):
    """The given store, or the current default one."""
    if store is not None:
        return store
    from autolog.tracking.api import get_store

    return get_store()
