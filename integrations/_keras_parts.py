"""Keras helpers of the keras integration: params, metric directions and checkpoint rules read from a model and its fit.

Everything here runs once per fit (or once per epoch for checkpoints), never per batch,
and imports Keras only inside functions so importing ``autolog.integrations.keras``
stays free of it.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
from typing import Any

EARLY_STOPPING_ATTRS = ("monitor", "min_delta", "patience", "mode", "baseline", "restore_best_weights", "start_from_epoch")
REDUCE_LR_ATTRS = ("monitor", "factor", "patience", "min_delta", "cooldown", "min_lr", "mode")
FIT_ARGS = ("batch_size", "epochs", "validation_split", "validation_data", "shuffle", "class_weight", "sample_weight",
            "initial_epoch", "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq")
# Monitored metrics that improve upwards; everything else (loss, mae, ...) improves downwards.
_MAX_METRIC = re.compile(r"acc|auc|precision|recall|f1|fbeta|iou|r2|top_k|ndcg", re.IGNORECASE)
# Directions of Keras's built-in metric names as they appear in the logs.
KNOWN_GOALS = {
    **dict.fromkeys(("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                     "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision", "recall",
                     "f1_score", "fbeta_score", "iou", "mean_iou", "r2_score"), "max"),
    **dict.fromkeys(("mae", "mse", "mape", "msle", "rmse", "mean_absolute_error", "mean_squared_error", "root_mean_squared_error",
                     "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "binary_crossentropy",
                     "categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence", "poisson", "hinge",
                     "squared_hinge", "categorical_hinge", "log_cosh_error", "logcosh"), "min"),
}


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


def model_optimizers(model: Any) -> list[tuple[str, Any]]:
    """``(attribute, optimizer)`` for every optimizer the model trains with.

    ``model.optimizer``, plus the optimizers a custom ``compile()`` keeps as attributes
    (keras.io's GAN: ``self.d_optimizer``, ``self.g_optimizer``). Beside those, the
    RMSprop that ``super().compile()`` creates by default is never used and is left out.
    """
    import keras

    held = [(k, v) for k, v in vars(model).items() if isinstance(v, keras.optimizers.Optimizer) and not k.startswith("_")]
    main = getattr(model, "optimizer", None)
    others = [(k, v) for k, v in held if v is not main]
    found = [("optimizer", main)] if main is not None and not (others and _is_default_rmsprop(main)) else []
    return found + others


def _is_default_rmsprop(optimizer: Any) -> bool:
    import keras

    if type(optimizer).__name__ != "RMSprop":
        return False
    mine, default = dict(optimizer.get_config()), dict(keras.optimizers.RMSprop().get_config())
    mine.pop("name", None), default.pop("name", None)
    return mine == default


def all_optimizer_params(optimizers: list[tuple[str, Any]]) -> dict[str, Any]:
    """One optimizer: ``optimizer``/``optimizer.<key>``; several: Lightning's ``optimizer.<i>.class``/``.<key>``.

    With several, ``optimizer.<i>.attribute`` names the model attribute holding each one.
    """
    if len(optimizers) == 1:
        return optimizer_params(optimizers[0][1])
    out: dict[str, Any] = {}
    for i, (attribute, optimizer) in enumerate(optimizers):
        for key, value in optimizer_params(optimizer).items():
            out[f"optimizer.{i}.class" if key == "optimizer" else f"optimizer.{i}.{key[len('optimizer.'):]}"] = value
        out[f"optimizer.{i}.attribute"] = attribute
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


def first_batch_size(x: Any, data_adapter: Any = None) -> int | None:
    """The batch size of batched inputs (PyDataset, generator, DataLoader), read from the first batch as MLflow does.

    A ``batch_size`` attribute (torch DataLoader, most PyDatasets) is taken as it is; a
    generator's first batch is the one Keras's data adapter already peeked, so the
    user's generator is not advanced; a PyDataset is asked for ``x[0]``.
    """
    import keras

    size = getattr(x, "batch_size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    peeked = getattr(data_adapter, "_first_batches", None)
    if peeked:
        first = peeked[0]
    elif isinstance(x, keras.utils.PyDataset) and len(x):
        first = x[0]
    else:
        return None
    inputs = first[0] if isinstance(first, (tuple, list)) else first
    leaves = keras.tree.flatten(inputs)
    shape = getattr(leaves[0], "shape", None) if leaves else None
    return int(shape[0]) if shape else (len(leaves[0]) if leaves else None)


def fit_params(args: dict[str, Any], keras_params: dict[str, Any], data_adapter: Any = None) -> dict[str, Any]:
    """Params of one ``fit`` call from its arguments (when known) and Keras's callback params."""
    out: dict[str, Any] = {"epochs": args.get("epochs", keras_params.get("epochs"))}
    batch_size = args.get("batch_size")
    if batch_size is None and hasattr(args.get("x"), "shape"):
        batch_size = 32  # Keras's default for array inputs
    elif batch_size is None and args.get("x") is not None:
        batch_size = first_batch_size(args["x"], data_adapter)
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


def metric_goal(key: str) -> str | None:
    """``"min"``/``"max"`` for Keras's own loss and metric names (``val_``/``batch/`` prefixes aside), else None."""
    name = key.rpartition("/")[2]
    name = name[4:] if name.startswith("val_") else name
    if name == "loss" or name.endswith("_loss"):
        return "min"
    return KNOWN_GOALS.get(name)


def callback_goals(callbacks: list[Any]) -> dict[str, str]:
    """Metric directions the user's EarlyStopping / ModelCheckpoint / ReduceLROnPlateau state by ``monitor`` and ``mode``."""
    import keras

    out: dict[str, str] = {}
    for cb in callbacks:
        if isinstance(cb, (keras.callbacks.EarlyStopping, keras.callbacks.ModelCheckpoint, keras.callbacks.ReduceLROnPlateau)):
            monitor, mode = getattr(cb, "monitor", None), getattr(cb, "mode", "auto")
            if isinstance(monitor, str) and mode in ("min", "max"):
                out[monitor] = mode
    return out


def monitor_mode(monitor: str) -> str:
    """``"max"`` for accuracy/AUC-like metrics, else ``"min"``."""
    return "max" if _MAX_METRIC.search(monitor) else "min"


def improved(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (NaN never does)."""
    if value != value:
        return False
    return best is None or (value > best if mode == "max" else value < best)
