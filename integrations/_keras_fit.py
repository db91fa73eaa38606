"""What one Keras ``fit`` logs: the per-fit state behind ``AutologCallback``.

The callback forwards Keras's events here; this class turns them into run calls.
Only ``batch_end`` runs per batch (possibly on Keras's callback thread pool), so it
only counts and queues points; everything else runs once per epoch or per fit.
"""

from __future__ import annotations

import threading
from typing import Any

from autolog.integrations import _keras_files as files
from autolog.integrations import _keras_parts as parts
from autolog.patching.lifecycle import FitRun
from autolog.patching.params import log_flat_params
from autolog.reporting import warn_once

BATCH_PREFIX = "batch/"


class FitLogger:
    """The logging state of one ``fit``: translates Keras events into run calls."""

    def __init__(self, fit_run: FitRun, model: Any, settings: dict[str, Any], args: dict[str, Any],
                 callbacks: list[Any]) -> None:
        self.fit_run = fit_run
        self.run = fit_run.run
        self.model = model
        self.args = args
        self.callbacks = callbacks
        self.every = settings["log_every_n_steps"]
        self.checkpoint_option = settings["checkpoint"]
        self.checkpoint = settings["checkpoint"] or None
        self.monitor = settings["checkpoint_monitor"]
        self.log_models = settings["log_models"]
        self.per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
        state = fit_run.model_state
        self.batch_base = state.get("batches", 0)
        self.epoch_offset = max(0, state.get("next_epoch", 0) - int(args.get("initial_epoch") or 0))
        self.lock = threading.Lock()
        self.epoch_base = 0  # batches of this fit done before the current epoch
        self.last_count = 0  # highest batch count of this fit seen so far, and its logs
        self.last_logs: dict[str, Any] | None = None
        self.logged_count = 0
        self.keys: dict[str, str] = {}
        self.optimizers: list[tuple[str, Any]] = []
        self.lrs: list[float | None] = []
        self.stated: dict[str, str] = {}  # directions the user's callbacks state (monitor + mode)
        self.goals: dict[str, str] | None = None  # the same, until set on the run at the first epoch end
        self.last_step: int | None = None
        self.best: float | None = None

    # -- events -----------------------------------------------------------------------
    def begin(self, keras_params: dict[str, Any], data_adapter: Any = None) -> None:
        model = self.model
        self.run.set_tags({"keras.backend": _backend(), "keras.model_name": str(getattr(model, "name", ""))})
        params = parts.fit_params(self.args, keras_params, data_adapter)
        self.optimizers = parts.model_optimizers(model)
        params.update(parts.all_optimizer_params(self.optimizers))
        self.stated = parts.callback_goals(self.callbacks)
        self.goals = dict(self.stated)
        params.update(parts.compile_params(model))
        params.update(parts.callback_params(self.callbacks))
        if getattr(model, "built", False):
            params.update(parts.param_counts(model))
        log_flat_params(self.fit_run, params)
        if getattr(model, "built", False) and "model_summary.txt" not in self.fit_run.model_state:
            self.run.log_text(parts.summary_text(model), "model_summary.txt")
            self.fit_run.model_state["model_summary.txt"] = True

    def epoch_begin(self, epoch: int) -> None:
        self.epoch_base = self.last_count  # Keras has run every batch-end of the last epoch
        self.lrs = [parts.current_lr(optimizer) for _, optimizer in self.optimizers]

    def batch_end(self, batch: int, logs: dict[str, Any] | None) -> None:
        # May run on Keras's callback thread pool (async_safe): counts come from the
        # batch index, and the lock orders the few shared fields.
        count = self.epoch_base + batch + 1
        with self.lock:
            if count > self.last_count:
                self.last_count, self.last_logs = count, logs
            if count % self.every < self.per_call:
                self._log_batch(count, logs)

    def _log_batch(self, count: int, logs: dict[str, Any] | None) -> None:
        step = self.batch_base + count
        log = self.run.log_metric
        keys = self.keys
        for key, value in (logs or {}).items():
            name = keys.get(key)
            if name is None:
                name = keys[key] = BATCH_PREFIX + key
            if type(value) is float or _is_number(value):
                log(name, value, step)
        if count > self.logged_count:
            self.logged_count = count

    def epoch_end(self, epoch: int, logs: dict[str, Any] | None) -> None:
        step = epoch + self.epoch_offset
        logs = logs or {}
        for key, value in logs.items():
            if _is_number(value):
                self.run.log_metric(key, float(value), step)
        # One learning-rate key, Keras's own: LearningRateScheduler and ReduceLROnPlateau
        # put ``learning_rate`` into the logs; otherwise ours, read at the epoch's start.
        for i, lr in enumerate(self.lrs):
            key = "learning_rate" if i == 0 else f"learning_rate.opt{i}"
            if lr is not None and key not in logs:
                self.run.log_metric(key, lr, step)
        if self.goals is not None:
            self._set_goals(logs)
        self.last_step = step
        self.fit_run.model_state["next_epoch"] = step + 1
        if not self.fit_run.model_state.get("model_summary.txt") and getattr(self.model, "built", False):
            self.fit_run.log_params(parts.param_counts(self.model))
            self.run.log_text(parts.summary_text(self.model), "model_summary.txt")
            self.fit_run.model_state["model_summary.txt"] = True
        if self.checkpoint:
            self._checkpoint(step, logs)

    def _set_goals(self, logs: dict[str, Any]) -> None:
        # Once, at the first epoch end (the keys are known then): the user's monitor + mode
        # wins, then Keras's own metric names; an unknown custom metric gets none.
        stated, self.goals = self.goals or {}, None
        for key in logs:
            goal = stated.get(key) or parts.metric_goal(key)
            if goal is not None:
                self.run.set_metric_goal(key, goal)
                if key in self.keys:  # its batch/ history too
                    self.run.set_metric_goal(self.keys[key], goal)

    def _checkpoint(self, step: int, logs: dict[str, Any]) -> None:
        if self.checkpoint == "all":
            files.save_model(self.run, self.model, f"checkpoints/epoch-{step:04d}", {"epoch": step})
            return
        if self.checkpoint == "last":
            files.save_model(self.run, self.model, "checkpoints/last", {"epoch": step})
            return
        if self.monitor is None:
            validation = self.args.get("validation_data") is not None or bool(self.args.get("validation_split"))
            self.monitor = "val_loss" if validation or "val_loss" in logs else "loss"
        value = logs.get(self.monitor)
        if not _is_number(value):
            warn_once(f"keras:monitor:{self.monitor}", f"autolog: checkpoint monitor {self.monitor!r} is not in the epoch logs "
                      f"({', '.join(sorted(logs))}); no best checkpoint for those epochs")
            return
        # The user's stated mode, else Keras's own metric names; the name pattern only for the rest.
        mode = self.stated.get(self.monitor) or parts.metric_goal(self.monitor) or parts.monitor_mode(self.monitor)
        best = self.fit_run.model_state.get("best_value", self.best)
        if parts.improved(float(value), best, mode):
            self.best = self.fit_run.model_state["best_value"] = float(value)
            files.save_model(self.run, self.model, "checkpoints/best",
                             {"epoch": step, "monitor": self.monitor, "mode": mode, "value": float(value)})
            self.run.set_tags({"checkpoint.best_epoch": step, "checkpoint.monitor": self.monitor})

    def end(self) -> None:
        """After the last epoch: the last batch point, early stopping, model, TensorBoard."""
        with self.lock:
            if self.last_count > self.logged_count and self.last_logs is not None:
                self._log_batch(self.last_count, self.last_logs)
            self.fit_run.model_state["batches"] = self.batch_base + self.last_count
        self._early_stopping()
        if self.log_models:
            files.save_model(self.run, self.model, "model")
        self.upload_files()
        self.run.flush()

    def abort(self) -> None:
        """``fit`` raised: keep the batch count and whatever TensorBoard wrote."""
        with self.lock:  # batch hooks of the broken epoch may still be running on Keras's pool
            self.fit_run.model_state["batches"] = self.batch_base + self.last_count
        self.upload_files()

    def _early_stopping(self) -> None:
        import keras

        step = self.last_step if self.last_step is not None else self.epoch_offset
        for cb in self.callbacks:
            if not isinstance(cb, keras.callbacks.EarlyStopping):
                continue
            if getattr(cb, "stopped_epoch", 0) > 0:
                self.run.log_metric("stopped_epoch", float(cb.stopped_epoch + self.epoch_offset), step)
            if getattr(cb, "restore_best_weights", False) and getattr(cb, "best_weights", None) is not None:
                self.run.log_metric("restored_epoch", float(cb.best_epoch + self.epoch_offset), step)

    def upload_files(self) -> None:
        """The user's TensorBoard log folders and ModelCheckpoint files, each file once unless it changed."""
        state = self.fit_run.model_state
        files.upload_tensorboard(self.run, self.callbacks, state.setdefault("tensorboard_uploaded", {}))
        files.upload_user_checkpoints(self.run, self.callbacks, self.checkpoint_option, state.setdefault("checkpoints_uploaded", {}))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _backend() -> str:
    import keras

    return keras.backend.backend()
