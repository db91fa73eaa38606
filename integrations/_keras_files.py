"""Keras model files and the files a Keras fit leaves on disk: saving, loading, uploads.

``save_model`` writes ``model.keras`` (or, for a model without ``get_config``, its
weights); the uploads store the user's TensorBoard log folders and ModelCheckpoint
files, each file once unless it changed. Keras is imported only inside functions.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from autolog.errors import InvalidModel
from autolog.patching.models import model_file, resolve_store, save_model_files, versions_of
from autolog.reporting import warn_once

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
WEIGHTS_FILE = "model.weights.h5"


def save_keras(model: Any, path: str) -> None:
    """``model.save(path)`` with fixed zip dates, so unchanged weights give identical bytes.

    Keras stamps the save time into the archive (entry dates, ``metadata.json``);
    without it the content-addressed store keeps one copy for any number of saves of
    an unchanged model.
    """
    import json
    import zipfile

    model.save(path)
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as dst:
        for info, data in entries:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta, sort_keys=True).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)
    os.replace(tmp, path)


def _backend_versions() -> dict[str, str | None]:
    import keras

    backend = keras.backend.backend()
    dist = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}.get(backend)
    return versions_of("keras", "numpy", "h5py", *([dist] if dist else []))


def save_model(run: ActiveRun, model: Any, artifact_dir: str = "model", extra: dict[str, Any] | None = None) -> str:
    """Save ``model`` as ``<artifact_dir>/model.keras`` plus ``meta.json``; return its path."""
    import keras

    cls = type(model)
    info = {"format": "keras", "backend": keras.backend.backend(), "class": f"{cls.__module__}.{cls.__qualname__}", **(extra or {})}

    def write(folder: str) -> str:
        try:
            save_keras(model, os.path.join(folder, "model.keras"))
            return "model.keras"
        except NotImplementedError:
            # A subclassed model built from objects Keras cannot serialise (keras.io's GAN) has
            # no get_config: its weights still load into the same architecture built in code.
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            warn_once(f"keras:weights-only:{cls.__qualname__}", f"autolog: {cls.__name__} has no get_config(), so only its "
                      f"weights are saved ({artifact_dir}/{WEIGHTS_FILE}); load them with load_model(run_id, model=<built model>)")
            model.save_weights(os.path.join(folder, WEIGHTS_FILE))
            info["format"] = "weights"
            return WEIGHTS_FILE

    return save_model_files(run, write, "keras", artifact_dir, _backend_versions(), info)


def load_model(run_id: str, store: Any = None, artifact_dir: str = "model", custom_objects: dict[str, Any] | None = None,
               compile: bool = True, model: Any = None) -> Any:
    """Load a Keras model a run saved: the final model, or a checkpoint folder.

    Args:
        run_id: the run (a unique prefix is enough).
        store: the store to read; default the current one.
        artifact_dir: ``"model"`` (final model), ``"checkpoints/best"``, ``"checkpoints/last"``
            or ``"checkpoints/epoch-0003"``.
        custom_objects: passed to ``keras.saving.load_model`` for custom layers/losses.
        compile: whether to restore the compiled state (optimizer, loss, metrics).
        model: for a model saved as weights only (it had no ``get_config``), the same
            architecture built in code: the weights are loaded into it and it is returned.

    Raises:
        InvalidModel: the run saved weights only and no ``model`` was given.
    """
    import keras

    store = resolve_store(store)
    run_id = store.resolve_run_id(run_id)
    with model_file(store, run_id, artifact_dir, flavor="keras") as (meta, path):
        if meta.get("format") == "weights":
            if model is None:
                raise InvalidModel(f"run {run_id[:8]} saved only the weights of {meta.get('class')!r} (it has no get_config); "
                                   "pass model=<the same architecture, built> to load them into")
            model.load_weights(path)
            return model
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile)


def upload_user_checkpoints(run: ActiveRun, callbacks: list[Any], policy: Any, uploaded: dict[str, tuple[int, int]]) -> int:
    """Store the files the user's own ``ModelCheckpoint`` callbacks wrote, once each (unchanged files are skipped).

    Under ``checkpoints/<file>`` (``checkpoints/<i>/<file>`` for the i-th such callback).
    ``checkpoint=False`` stores none; ``"best"`` only the file of callbacks with
    ``save_best_only``; ``"last"`` each callback's newest file; None or ``"all"`` every one.
    A ``filepath`` with ``{epoch}``-style fields matches every file it produced.
    """
    import glob

    import keras

    if policy is False:
        return 0
    count = 0
    own = [cb for cb in callbacks if isinstance(cb, keras.callbacks.ModelCheckpoint)]
    for i, cb in enumerate(own):
        if policy == "best" and not getattr(cb, "save_best_only", False):
            continue
        path = os.fspath(cb.filepath)
        files = sorted(glob.glob(re.sub(r"\{[^}]*\}", "*", glob.escape(path)))) if "{" in path else [path]
        files = [f for f in files if os.path.isfile(f)]
        if policy in ("best", "last") and files:
            files = [max(files, key=os.path.getmtime)]
        target = "checkpoints" if i == 0 else f"checkpoints/{i}"
        count += sum(_upload_if_changed(run, full, target, uploaded) for full in files)
    return count


def _upload_if_changed(run: ActiveRun, full: str, target: str, uploaded: dict[str, tuple[int, int]]) -> bool:
    """Store ``full`` under ``target/`` unless this run has it with the same size and mtime already."""
    try:
        stat = os.stat(full)
    except OSError:
        return False  # removed meanwhile (a rotating checkpoint): nothing to store
    key, seen = f"{target}/{os.path.basename(full)}", (stat.st_size, stat.st_mtime_ns)
    if uploaded.get(key) == seen:
        return False
    run.log_artifact(full, target)
    uploaded[key] = seen
    return True


def upload_tensorboard(run: ActiveRun, callbacks: list[Any], uploaded: dict[str, tuple[int, int]]) -> int:
    """Store the log folders of the user's TensorBoard callbacks under ``tensorboard/``.

    Only files whose size or modification time changed since the last upload into
    this run are stored again (``uploaded`` remembers them); return how many were.
    """
    import keras

    count = 0
    for cb in callbacks:
        log_dir = getattr(cb, "log_dir", None) if isinstance(cb, keras.callbacks.TensorBoard) else None
        if not log_dir or not os.path.isdir(str(log_dir)):
            continue
        log_dir = os.fspath(log_dir)
        for folder, _dirs, names in os.walk(log_dir):
            rel_folder = os.path.relpath(folder, log_dir).replace(os.sep, "/")
            target = "tensorboard" if rel_folder == "." else f"tensorboard/{rel_folder}"
            count += sum(_upload_if_changed(run, os.path.join(folder, name), target, uploaded) for name in sorted(names))
    return count
