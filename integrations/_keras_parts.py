"""Keras helpers of the keras integration: params read from a model and its fit, model files.

Everything here runs once per fit (or once per epoch for checkpoints), never per batch,
and imports Keras only inside functions so importing ``autolog.integrations.keras``
stays free of it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from typing import Any

from autolog.patching.models import model_file, resolve_store, save_model_files, versions_of

EARLY_STOPPING_ATTRS = ("monitor", "min_delta", "patience", "mode", "baseline", "restore_best_weights", "start_from_epoch")
REDUCE_LR_ATTRS = ("monitor", "factor", "patience", "min_delta", "cooldown", "min_lr", "mode")
FIT_ARGS = ("batch_size", "epochs", "validation_split", "validation_data", "shuffle", "class_weight", "sample_weight",
            "initial_epoch", "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq")
# Monitored metrics that improve upwards; everything else (loss, mae, ...) improves downwards.
_MAX_METRIC = re.compile(r"acc|auc|precision|recall|f1|fbeta|iou|r2|top_k|ndcg", re.IGNORECASE)
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# -- params -------------------------------------------------------------------------------
def tidy(value: Any) -> Any:
    """A float32 value as its shortest decimal (0.01, not 0.009999999776482582)."""
    if isinstance(value, float) and math.isfinite(value):
        import numpy as np

        single = np.float32(value)
        if float(single) == value:
            return float(str(single))
    return value


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """``optimizer`` (class name) and ``optimizer.<key>`` for its whole config.

    A learning-rate schedule is logged as ``optimizer.learning_rate = <schedule class>``
    plus ``optimizer.learning_rate.<key>`` for the schedule's config.
    """
    out: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    try:
        config = dict(optimizer.get_config())
    except Exception:  # a custom optimizer without a config still gets its class logged
        return out
    config.pop("name", None)
    lr = config.pop("learning_rate", None)
    if isinstance(lr, dict) and "class_name" in lr:
        out["optimizer.learning_rate"] = lr["class_name"]
        for key, value in (lr.get("config") or {}).items():
            if key != "name":
                out[f"optimizer.learning_rate.{key}"] = tidy(value)
    elif lr is not None:
        out["optimizer.learning_rate"] = tidy(lr)
    for key, value in config.items():
        out[f"optimizer.{key}"] = {k: tidy(v) for k, v in value.items()} if isinstance(value, dict) else tidy(value)
    return out


def _name_of(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    name = getattr(obj, "name", None) or getattr(obj, "__name__", None)
    return str(name) if name else type(obj).__name__


def compile_params(model: Any) -> dict[str, Any]:
    """The loss and compiled metric names (``loss``, ``metrics``, ``loss_weights``)."""
    import keras

    config = getattr(getattr(model, "_compile_config", None), "config", None) or {}
    loss = config.get("loss", getattr(model, "loss", None))
    out: dict[str, Any] = {}
    if loss is not None:
        if isinstance(loss, dict):
            out["loss"] = {str(k): _name_of(v) for k, v in loss.items()}
        else:
            out["loss"] = ",".join(_name_of(x) for x in keras.tree.flatten(loss) if x is not None)
    for key in ("metrics", "weighted_metrics"):
        found = config.get(key)
        if found:
            out[key] = ",".join(_name_of(m) for m in keras.tree.flatten(found) if m is not None)
    if config.get("loss_weights") is not None:
        out["loss_weights"] = config["loss_weights"]
    return out


def param_counts(model: Any) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts of a built model."""
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    frozen = sum(math.prod(v.shape) for v in model.non_trainable_weights)
    return {"trainable_params": int(trainable), "non_trainable_params": int(frozen), "total_params": int(trainable + frozen)}


def fit_params(args: dict[str, Any], keras_params: dict[str, Any]) -> dict[str, Any]:
    """Params of one ``fit`` call from its arguments (when known) and Keras's callback params."""
    out: dict[str, Any] = {"epochs": args.get("epochs", keras_params.get("epochs"))}
    batch_size = args.get("batch_size")
    if batch_size is None and hasattr(args.get("x"), "shape"):
        batch_size = 32  # Keras's default for array inputs
    if batch_size is not None:
        out["batch_size"] = batch_size
    out["steps_per_epoch"] = keras_params.get("steps") or args.get("steps_per_epoch")
    if args:
        split = args.get("validation_split") or 0.0
        out["validation_split"] = split
        out["validation_data"] = args.get("validation_data") is not None or bool(split)
        out["initial_epoch"] = args.get("initial_epoch", 0)
        out["class_weight"] = args.get("class_weight") is not None
        out["sample_weight"] = args.get("sample_weight") is not None
        out["shuffle"] = args.get("shuffle", True)
        if out["validation_data"]:
            out["validation_freq"] = args.get("validation_freq", 1)
            if args.get("validation_steps") is not None:
                out["validation_steps"] = args["validation_steps"]
    return out


def callback_params(callbacks: list[Any]) -> dict[str, Any]:
    """The user's callback classes plus EarlyStopping / ReduceLROnPlateau settings."""
    import keras

    out: dict[str, Any] = {}
    names = [type(cb).__name__ for cb in callbacks if type(cb).__name__ != "AutologCallback"]
    if names:
        out["callbacks"] = ",".join(names)
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping):
            out.update({f"early_stopping.{a}": tidy(getattr(cb, a)) for a in EARLY_STOPPING_ATTRS if hasattr(cb, a)})
        elif isinstance(cb, keras.callbacks.ReduceLROnPlateau):
            out.update({f"reduce_lr_on_plateau.{a}": tidy(getattr(cb, a)) for a in REDUCE_LR_ATTRS if hasattr(cb, a)})
    return out


def summary_text(model: Any) -> str:
    """``model.summary()`` as plain text, without showing anything in a notebook."""
    lines: list[str] = []
    with _outside_jupyter():
        model.summary(print_fn=lambda text, *args, **kwargs: lines.append(str(text)), line_length=100)
    return "\n".join(lines).rstrip() + "\n"


@contextlib.contextmanager
def _outside_jupyter():
    # Keras renders the summary with a rich Console; in a Jupyter kernel rich displays its
    # (captured, so empty) buffer as an HTML <pre> output in the user's cell. Rich decides
    # per Console from this module-level check, so answer "not Jupyter" for our call only.
    console = sys.modules.get("rich.console")
    check = getattr(console, "_is_jupyter", None)
    if check is None:
        yield
        return
    console._is_jupyter = lambda: False
    try:
        yield
    finally:
        console._is_jupyter = check


def current_lr(optimizer: Any) -> float | None:
    """The learning rate the optimizer applies now (a schedule evaluated at its step)."""
    from keras import ops

    lr = getattr(optimizer, "learning_rate", None)
    if lr is None:
        return None
    return tidy(float(ops.convert_to_numpy(lr)))


def monitor_mode(monitor: str) -> str:
    """``"max"`` for accuracy/AUC-like metrics, else ``"min"``."""
    return "max" if _MAX_METRIC.search(monitor) else "min"


def improved(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (NaN never does)."""
    if value != value:
        return False
    return best is None or (value > best if mode == "max" else value < best)


# -- model files --------------------------------------------------------------------------
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


def save_model(run: Any, model: Any, artifact_dir: str = "model", extra: dict[str, Any] | None = None) -> str:
    """Save ``model`` as ``<artifact_dir>/model.keras`` plus ``meta.json``; return its path."""
    import keras

    cls = type(model)

    def write(folder: str) -> str:
        save_keras(model, os.path.join(folder, "model.keras"))
        return "model.keras"

    info = {"format": "keras", "backend": keras.backend.backend(), "class": f"{cls.__module__}.{cls.__qualname__}", **(extra or {})}
    return save_model_files(run, write, "keras", artifact_dir, _backend_versions(), info)


def load_model(run_id: str, store: Any = None, artifact_dir: str = "model", custom_objects: dict[str, Any] | None = None,
               compile: bool = True) -> Any:
    """Load a Keras model a run saved: the final model, or a checkpoint folder.

    Args:
        run_id: the run (a unique prefix is enough).
        store: the store to read; default the current one.
        artifact_dir: ``"model"`` (final model), ``"checkpoints/best"``, ``"checkpoints/last"``
            or ``"checkpoints/epoch-0003"``.
        custom_objects: passed to ``keras.saving.load_model`` for custom layers/losses.
        compile: whether to restore the compiled state (optimizer, loss, metrics).
    """
    import keras

    store = resolve_store(store)
    run_id = store.resolve_run_id(run_id)
    with model_file(store, run_id, artifact_dir) as (_meta, path):
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile)


def upload_tensorboard(run: Any, callbacks: list[Any], uploaded: dict[str, tuple[int, int]]) -> int:
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
            for name in sorted(names):
                full = os.path.join(folder, name)
                try:
                    stat = os.stat(full)
                except OSError:
                    continue
                key, seen = f"{target}/{name}", (stat.st_size, stat.st_mtime_ns)
                if uploaded.get(key) != seen:
                    run.log_artifact(full, target)
                    uploaded[key] = seen
                    count += 1
    return count
