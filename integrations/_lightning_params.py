"""What a Lightning fit is configured with, as flat params, and the learning-rate metric keys.

Key scheme (documented in the integration's module docstring):

- trainer settings under their Trainer argument names: ``max_epochs``, ``max_steps``,
  ``accumulate_grad_batches``, ``gradient_clip_val``, ``precision``, ``devices``, ``strategy``...
- the module's ``save_hyperparameters`` values as the user named them; the datamodule's too,
  or as ``datamodule.<name>`` where the module already has that name with another value;
- optimizer ``i`` (0-based, in ``configure_optimizers`` order): ``optimizer.<i>.class`` and the
  hyper-parameters of its first param group as ``optimizer.<i>.<name>`` (``optimizer.0.lr``,
  ``optimizer.0.betas``); further groups as ``optimizer.<i>.group.<g>.<name>``;
- LR scheduler ``j``: ``lr_scheduler.<j>.class``, ``.interval``, ``.frequency``, ``.monitor`` and
  its own settings (``lr_scheduler.0.step_size``, ``lr_scheduler.0.gamma``);
- ``model.total_params``, ``model.trainable_params``, ``model.non_trainable_params``.

Learning-rate metrics (every logged step): ``lr`` for the first group of the first optimizer,
``lr.pg<g>`` for its other groups, ``lr.opt<i>`` / ``lr.opt<i>.pg<g>`` for other optimizers.
"""

from __future__ import annotations

from typing import Any

_SKIP_GROUP_KEYS = ("params", "param_names")
_NOT_HPARAMS = ("_instantiator",)


def scalar(value: Any) -> Any:
    """A param-friendly version of ``value``: numbers, strings, short tuples; None when unsuitable."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 16 and all(isinstance(v, (bool, int, float, str)) or v is None for v in value):
        return tuple(value)
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            if numel() == 1:
                return float(value)
        except Exception:
            return None
    return None


def trainer_params(trainer: Any) -> dict[str, Any]:
    """The Trainer settings that decide what a fit does."""
    out: dict[str, Any] = {}
    for name in ("max_epochs", "min_epochs", "max_steps", "accumulate_grad_batches", "gradient_clip_val",
                 "gradient_clip_algorithm", "precision", "num_nodes", "world_size", "val_check_interval",
                 "check_val_every_n_epoch", "limit_train_batches", "limit_val_batches"):
        value = scalar(getattr(trainer, name, None))
        if value is not None:
            out[name] = value
    out["devices"] = getattr(trainer, "num_devices", None)
    out["strategy"] = type(trainer.strategy).__name__
    out["accelerator"] = type(trainer.accelerator).__name__
    return out


def hparams_of(obj: Any) -> dict[str, Any]:
    """``save_hyperparameters`` values of a module or datamodule (as first given)."""
    if obj is None:
        return {}
    try:
        hp = getattr(obj, "hparams_initial", None) or getattr(obj, "hparams", None)
        # LightningCLI adds the path of its instantiator function: how the object was built, not a setting.
        return {k: v for k, v in hp.items() if k not in _NOT_HPARAMS} if hp else {}
    except Exception:
        return {}


def merged_hparams(module: Any, datamodule: Any) -> dict[str, Any]:
    """Module hparams, plus datamodule hparams (prefixed ``datamodule.`` on a clash)."""
    out = hparams_of(module)
    for key, value in hparams_of(datamodule).items():
        if key in out and str(out[key]) != str(value):
            out[f"datamodule.{key}"] = value
        else:
            out.setdefault(key, value)
    return out


def optimizer_params(optimizers: list[Any]) -> dict[str, Any]:
    """Class and per-param-group hyper-parameters of every optimizer."""
    out: dict[str, Any] = {}
    for i, opt in enumerate(optimizers):
        out[f"optimizer.{i}.class"] = type(opt).__name__
        for g, group in enumerate(getattr(opt, "param_groups", [])):
            prefix = f"optimizer.{i}." if g == 0 else f"optimizer.{i}.group.{g}."
            for key, value in group.items():
                if key in _SKIP_GROUP_KEYS:
                    continue
                value = scalar(value)
                if value is not None:
                    out[prefix + str(key)] = value
    return out


def scheduler_params(configs: list[Any]) -> dict[str, Any]:
    """Class, interval, frequency, monitor and own settings of every LR scheduler."""
    out: dict[str, Any] = {}
    for j, config in enumerate(configs):
        scheduler = getattr(config, "scheduler", config)
        prefix = f"lr_scheduler.{j}."
        out[prefix + "class"] = type(scheduler).__name__
        for name in ("interval", "frequency", "monitor", "name"):
            value = scalar(getattr(config, name, None))
            if value is not None:
                out[prefix + name] = value
        try:
            state = scheduler.state_dict()
        except Exception:
            state = {}
        for key, value in state.items():
            if key.startswith("_") or key in ("last_epoch", "optimizer"):
                continue
            value = scalar(value)
            if value is not None:
                out[prefix + key] = value
    return out


def param_counts(module: Any) -> dict[str, int]:
    """Total, trainable and frozen parameter counts (lazy, uninitialised parameters skipped)."""
    total = trainable = 0
    for p in module.parameters():
        try:
            n = p.numel()
        except Exception:  # UninitializedParameter of lazy modules
            continue
        total += n
        if p.requires_grad:
            trainable += n
    return {"model.total_params": total, "model.trainable_params": trainable, "model.non_trainable_params": total - trainable}


def early_stopping_params(callbacks: list[Any]) -> dict[str, Any]:
    """Monitor, patience, mode and min_delta of each EarlyStopping callback."""
    out: dict[str, Any] = {}
    for i, cb in enumerate(callbacks):
        prefix = "early_stopping." if i == 0 else f"early_stopping.{i}."
        for name in ("monitor", "patience", "mode", "min_delta"):
            value = scalar(getattr(cb, name, None))
            if value is not None:
                out[prefix + name] = value
    return out


def lr_groups(optimizers: list[Any]) -> list[tuple[str, dict]]:
    """``(metric key, param group)`` for every param group of every optimizer."""
    out = []
    for i, opt in enumerate(optimizers):
        for g, group in enumerate(getattr(opt, "param_groups", [])):
            key = "lr" if i == 0 else f"lr.opt{i}"
            if g:
                key += f".pg{g}"
            out.append((key, group))
    return out


def metric_goals(callbacks: list[Any]) -> dict[str, str]:
    """``{monitored metric: "min"|"max"}`` from EarlyStopping/ModelCheckpoint callbacks (their ``monitor`` and ``mode``)."""
    out: dict[str, str] = {}
    for cb in callbacks:
        monitor, mode = getattr(cb, "monitor", None), getattr(cb, "mode", None)
        if isinstance(monitor, str) and monitor and mode in ("min", "max"):
            out.setdefault(monitor, mode)
    return out
