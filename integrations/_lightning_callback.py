"""What ``AutologCallback`` does, whichever Lightning package (``lightning`` / ``pytorch_lightning``) it subclasses.

Axes (never mixed for one key):

- step axis: what the module logs with ``on_step=True`` (``loss``, or ``loss_step`` when also
  ``on_epoch``), the learning rates, every ``log_every_n_steps`` optimizer steps and at the last
  step of each epoch; ``step`` is the batch counter Lightning's own loggers use
  (``_batches_that_stepped``: one per optimizer step in automatic optimization, one per batch
  in manual optimization whatever the number of optimizers), so a resumed fit continues it;
- epoch axis: epoch aggregates (``loss_epoch``, ``acc``, ``val_loss``...), key as logged,
  ``step`` = the epoch index; standalone ``validate``/``test`` results at ``step`` = the
  trainer's epoch count (after a fit: one past its last epoch).

Values logged during the sanity-check validation are never recorded. Only global rank 0
records anything; other ranks never touch the store.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from autolog.integrations._lightning_artifacts import ArtifactLogic
from autolog.integrations._lightning_params import (
    early_stopping_params,
    lr_groups,
    merged_hparams,
    metric_goals,
    optimizer_params,
    param_counts,
    scheduler_params,
    trainer_params,
)
from autolog.patching import options
from autolog.patching.lifecycle import LIFECYCLE, FitRun
from autolog.patching.params import log_flat_params
from autolog.reporting import guarded
from autolog.tracking import api

NAME = "lightning"
DEVICE_BATCH = 64  # values living on an accelerator are converted in batches: one sync per this many points
_TRAINER_RUNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # trainer -> id of its last fit's run


_guarded = guarded(NAME)  # a hook's error becomes one warning (raised under AUTOLOG_STRICT=1); training goes on


def _stage(trainer: Any) -> str:
    fn = trainer.state.fn
    return str(getattr(fn, "value", fn))


def _step_forks(metrics: dict[str, Any]) -> set[str]:
    """``x_step`` keys whose ``x_epoch`` twin is present: per-batch values of an epoch metric."""
    return {k for k in metrics if k.endswith("_step") and f"{k[:-5]}_epoch" in metrics}


class CallbackLogic(ArtifactLogic):
    """Translates Lightning events into run metrics, params and artifacts (mixed into AutologCallback)."""

    package = "lightning"

    def __init__(self, *, log_every_n_steps: int | None = None, log_models: bool | None = None,
                 checkpoint: str | bool | None = None, checkpoint_monitor: str | None = None,
                 log_tensorboard: bool = True) -> None:
        super().__init__()
        given = {"log_every_n_steps": log_every_n_steps, "log_models": log_models,
                 "checkpoint": checkpoint, "checkpoint_monitor": checkpoint_monitor}
        self._config = options.validate({k: v for k, v in given.items() if v is not None})
        self._log_tensorboard = bool(log_tensorboard)
        self._reset()

    def _opt(self, key: str) -> Any:
        return self._config[key] if key in self._config else options.get(NAME, key)

    def _reset(self) -> None:
        self._fit: FitRun | None = None
        self._fit_pending = False  # on_fit_start was seen; the run opens when training starts
        self._eval: FitRun | None = None
        self._results = self._epoch_loop = None
        self._every, self._auto = 1, True
        self._last_step = self._last_logged = -1
        self._step_offset = self._epoch_offset = 0
        self._step_keys: set[str] = set()
        self._seen: dict[str, Any] = {}
        self._epoch_pending: int | None = None
        self._lr: list[tuple[str, dict]] = []
        self._lr_now: list[Any] = []
        self._pending: list[tuple[str, int, Any]] = []
        self._uploaded: dict[str, tuple] = {}
        self._own_policy: str | None = None
        self._best: float | None = None

    def __getstate__(self) -> dict:
        # ddp_spawn pickles the trainer and its callbacks: runs stay in the process that opened them.
        state = dict(self.__dict__)
        state.update(_fit=None, _eval=None, _results=None, _epoch_loop=None, _seen={}, _lr=[], _lr_now=[], _pending=[])
        return state

    def __reduce__(self):
        from autolog.integrations.lightning import rebuild_callback

        return (rebuild_callback, (self.package, self.__getstate__()))

    @property
    def run(self):
        """The ActiveRun of the fit (or validate/test) in progress, else None."""
        current = self._fit or self._eval
        return current.run if current is not None else None

    # -- fit start: the run and its params ----------------------------------------------
    @_guarded
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.end_runs("FAILED")  # a run left open by an earlier call that never reached its end hooks
        self._reset()
        # The run opens in on_train_start: a fit that trains nothing (max_epochs already reached,
        # as in a second trainer.fit) creates no run. Nothing is recorded before training starts.
        self._fit_pending = trainer.global_rank == 0

    def _open_fit(self, trainer: Any, pl_module: Any) -> None:
        self._fit_pending = False
        cls = type(pl_module)
        fit = LIFECYCLE.open_fit(NAME, cls.__name__, model=pl_module,
                                 tags={"lightning.package": self.package, "module_class": f"{cls.__module__}.{cls.__qualname__}"})
        if fit is None:
            return
        self._fit = fit
        _TRAINER_RUNS[trainer] = fit.run.id
        self._every = self._opt("log_every_n_steps")
        self._auto = bool(getattr(pl_module, "automatic_optimization", True))
        self._own_policy = self._checkpoint_policy(trainer)
        params = {**trainer_params(trainer), **optimizer_params(trainer.optimizers),
                  **scheduler_params(trainer.lr_scheduler_configs), **param_counts(pl_module),
                  **early_stopping_params(trainer.early_stopping_callbacks)}
        params.update(merged_hparams(pl_module, trainer.datamodule))  # the user's own names win
        log_flat_params(fit, params)
        for key, goal in metric_goals([*trainer.early_stopping_callbacks, *trainer.checkpoint_callbacks]).items():
            fit.run.set_metric_goal(key, goal)
        self._tag_resume(trainer)

    def _tag_resume(self, trainer: Any) -> None:
        ckpt = trainer.ckpt_path
        if not ckpt:
            return
        tags = {"autolog.resumed_from": str(ckpt)}
        if os.path.isfile(ckpt):
            import hashlib

            digest = hashlib.sha256()
            with open(ckpt, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            row = self._fit.run.store.find_artifact(digest.hexdigest(), exclude_run=self._fit.run.id)
            if row is not None:
                tags.update({"autolog.resumed_from_run": row[0], "autolog.resumed_from_artifact": row[1]})
        self._fit.run.set_tags(tags)

    @_guarded
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._fit_pending:
            self._open_fit(trainer, pl_module)
        if self._fit is not None:
            self._epoch_loop = trainer.fit_loop.epoch_loop
            self._results = getattr(self._epoch_loop, "_results", None)
            self._lr = lr_groups(trainer.optimizers)
            # Fitting the same module again in a user's run with a fresh Trainer continues both axes.
            state = self._fit.model_state
            self._step_offset = max(0, state.get("next_step", 0) - self._epoch_loop._batches_that_stepped)
            self._epoch_offset = max(0, state.get("next_epoch", 0) - trainer.current_epoch)

    # -- the step axis (hot path) ---------------------------------------------------------
    @_guarded
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        # The rate this batch trains with: epoch schedulers step before on_train_batch_end of an epoch's last batch.
        if self._fit is not None:
            self._lr_now = [group["lr"] for _, group in self._lr]

    @_guarded
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._fit is None:
            return
        loop = self._epoch_loop
        if self._auto and loop._should_accumulate():
            return  # Lightning's loggers skip accumulating batches too
        step = self._last_step = loop._batches_that_stepped
        if (step + 1) % self._every == 0:
            self._log_step(step)

    def _log_step(self, step: int) -> None:
        put = self._put
        self._last_logged = step
        step += self._step_offset
        for key, value in self._results.metrics(True)["log"].items():
            if key not in self._step_keys:
                self._step_keys.add(key)
            put(key, value, step)
        for (key, _), value in zip(self._lr, self._lr_now):
            put(key, value, step)

    def _put(self, key: str, value: Any, step: int) -> None:
        if type(value) is not float:
            device = getattr(value, "device", None)
            if device is not None and device.type != "cpu":
                # float() would wait for the accelerator at every step: convert in batches instead.
                self._pending.append((key, step, value))
                if len(self._pending) >= DEVICE_BATCH:
                    self._drain()
                return
            value = float(value)
        (self._fit or self._eval).run.log_metric(key, value, step)

    def _drain(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        run = self.run
        try:
            import torch

            values = torch.stack([v.detach().reshape(()).float() for _, _, v in pending]).tolist()
        except Exception:  # mixed devices or shapes: one by one
            values = [float(v) for _, _, v in pending]
        for (key, step, _), value in zip(pending, values):
            run.log_metric(key, value, step)

    # -- the epoch axis ---------------------------------------------------------------------
    @_guarded
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self._fit is not None:
            self._boundary(trainer)
            self._lr = lr_groups(trainer.optimizers)  # callbacks such as BackboneFinetuning add groups

    @_guarded
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._fit is None:
            return
        if self._last_step >= 0 and self._last_step != self._last_logged:
            self._log_step(self._last_step)  # the last step of an epoch is always logged
        # Epoch values are read at the next boundary: the module's own on_train_epoch_end runs after us.
        self._epoch_pending = trainer.current_epoch
        if self._own_policy:
            self._own_checkpoint(trainer)

    @_guarded
    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        if self._fit is not None:
            self._seen.update(trainer.logged_metrics)  # sanity-check values are never recorded

    @_guarded
    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        if self._eval is not None:
            self._end_eval(trainer)
        elif self._fit is not None:
            self._log_epoch(trainer, trainer.current_epoch)

    def _boundary(self, trainer: Any) -> None:
        if self._epoch_pending is not None:
            self._log_epoch(trainer, self._epoch_pending)
            self._epoch_pending = None
        self._drain()
        self._sync_tensorboard(trainer)

    def _log_epoch(self, trainer: Any, epoch: int) -> None:
        logged = trainer.logged_metrics
        step_keys = self._step_keys | self._declared_step_keys()
        fresh = {}
        for key, value in logged.items():
            if self._seen.get(key) is value:
                continue  # unchanged since the last read: logged in an earlier epoch
            self._seen[key] = value
            if key not in step_keys:
                fresh[key] = value
        forks = _step_forks(logged)
        for key, value in fresh.items():
            if key not in forks:
                self._put(key, value, epoch + self._epoch_offset)

    def _declared_step_keys(self) -> set[str]:
        # Keys the training step logs per step, even when no step was recorded yet (log_every_n_steps > 1).
        keys: set[str] = set()
        for item in (self._results or {}).values():
            meta = getattr(item, "meta", None)
            if meta is not None and meta.on_step:
                keys.add(meta.forked_name(True))
        return keys

    # -- standalone validate / test -------------------------------------------------------
    @_guarded
    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if _stage(trainer) == "validate":
            self._start_eval(trainer, pl_module)

    @_guarded
    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._start_eval(trainer, pl_module)

    @_guarded
    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        if self._eval is not None:
            self._end_eval(trainer)

    def _start_eval(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_rank != 0 or self._fit is not None:
            return
        user = api.active_run()
        previous = _TRAINER_RUNS.get(trainer)
        if (user is None or user.ended) and previous is not None:
            # Results of the same training go into the fit's run (None: it is gone, a new run instead).
            self._eval = LIFECYCLE.resume(previous, NAME)
            if self._eval is not None:
                return
        cls = type(pl_module)
        self._eval = LIFECYCLE.open_fit(NAME, cls.__name__, model=pl_module, tags={"lightning.package": self.package})
        if self._eval is not None and (user is None or user.ended):
            _TRAINER_RUNS[trainer] = self._eval.run.id

    def _end_eval(self, trainer: Any) -> None:
        logged = dict(trainer.logged_metrics)
        forks = _step_forks(logged)
        for key, value in logged.items():
            if key not in forks:
                self._put(key, value, trainer.current_epoch)
        self._drain()
        fit, self._eval = self._eval, None
        fit.finish("FINISHED")  # a resumed run that had failed keeps its status (the lifecycle's rule)

    # -- the end ----------------------------------------------------------------------------
    @_guarded
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._fit is None:
            return
        self._boundary(trainer)
        self._fit.model_state.update(next_step=self._last_step + self._step_offset + 1,
                                     next_epoch=trainer.current_epoch + self._epoch_offset)
        for i, es in enumerate(trainer.early_stopping_callbacks):
            prefix = "early_stopping." if i == 0 else f"early_stopping.{i}."
            stopped = int(getattr(es, "stopped_epoch", 0) or 0)
            values = {prefix + "stopped": float(stopped > 0), prefix + "stopped_epoch": float(stopped),
                      prefix + "wait_count": float(getattr(es, "wait_count", 0))}
            best = getattr(es, "best_score", None)
            if best is not None and abs(float(best)) != float("inf"):
                values[prefix + "best_score"] = float(best)
            self._fit.run.log_metrics(values, step=0)

    @_guarded
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self._fit is None:
            return
        try:
            self._boundary(trainer)
            self._sync_checkpoints(trainer)
            if self._opt("log_models"):
                self._save_model(trainer, pl_module)
        finally:
            self.end_runs("FINISHED")

    @_guarded
    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        status = "KILLED" if isinstance(exception, KeyboardInterrupt) else "FAILED"
        try:
            if self._fit_pending:  # failed before training started (in setup or the sanity check)
                self._open_fit(trainer, pl_module)
            if self._fit is not None:
                self._drain()
                self._sync_checkpoints(trainer)
        finally:
            self.end_runs(status)

    def end_runs(self, status: str) -> None:
        """End the runs still open (the fit wrapper calls it too, as a safety net)."""
        self._fit_pending = False
        for attr in ("_fit", "_eval"):
            fit = getattr(self, attr)
            if fit is None:
                continue
            try:
                self._drain()
            finally:
                setattr(self, attr, None)
                fit.finish(status)
