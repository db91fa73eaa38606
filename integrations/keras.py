"""Keras 3 integration: params, per-epoch and per-batch histories, checkpoints, TensorBoard logs.

``keras.Model.fit`` is patched to append an :class:`AutologCallback` to the user's
callbacks (a copy of the list; a callback the user added by hand is used instead, never
added twice). The patch owns the run: it opens it before ``fit`` and ends it FINISHED,
or FAILED when ``fit`` raised (from a user callback, say), re-raising the same
exception. Added by hand without ``autolog()``, the callback opens its own run in
``on_train_begin`` and ends it in ``on_train_end``; Keras calls no callback when fit
raises, so such a run ends FAILED when the callback starts its next fit or when the
interpreter exits on the uncaught exception.

What is logged (metric keys keep Keras's names):

- params: ``epochs``, ``batch_size``, ``steps_per_epoch``, ``validation_split``,
  ``validation_data`` (given or not), ``initial_epoch``, ``class_weight``/``sample_weight``
  (given or not), ``optimizer`` (class) and ``optimizer.<key>`` (its whole config; a
  schedule as ``optimizer.learning_rate = <class>`` plus ``optimizer.learning_rate.<key>``);
  a model holding several optimizers as attributes (a custom ``compile()``, keras.io's
  GAN) logs each as Lightning does, ``optimizer.<i>.class``, ``optimizer.<i>.<key>`` and
  ``optimizer.<i>.attribute``, leaving out the unused default RMSprop of ``super().compile()``;
  ``batch_size`` for a PyDataset, generator or DataLoader is read from its first batch,
  ``loss``, ``metrics``, ``trainable_params``/``non_trainable_params``/``total_params``,
  ``callbacks`` and ``early_stopping.<key>`` / ``reduce_lr_on_plateau.<key>``;
- per epoch, ``step`` = epoch index (0-based, as Keras counts): every key of the epoch
  logs (``loss``, ``val_loss``, ``accuracy``...) and ``learning_rate`` (Keras's own key:
  ``LearningRateScheduler``/``ReduceLROnPlateau`` put it into the logs; otherwise the
  rate at the start of that epoch; one key, never also ``lr``), ``learning_rate.opt<i>``
  for a model's further optimizers;
- metric directions (``autolog.goal.<key>``): the ``monitor``/``mode`` of the user's
  EarlyStopping, ModelCheckpoint and ReduceLROnPlateau, else Keras's own names
  (``loss``/``*_loss``/``mae`` min, ``accuracy``/``auc`` max); custom metrics get none;
- per batch, under the key prefix ``batch/`` (``batch/loss``...), ``step`` = number of
  training batches done so far: Keras's running epoch averages. A fit of N batches logs
  the batches whose count is a multiple of ``log_every_n_steps`` plus its last batch,
  that is ``ceil(N / n)`` points;
- ``stopped_epoch`` / ``restored_epoch`` (epoch axis) when an EarlyStopping stopped
  training or restored its best weights;
- artifacts: ``model_summary.txt``; checkpoints per the ``checkpoint`` option in
  ``checkpoints/best``, ``checkpoints/last`` or ``checkpoints/epoch-NNNN`` (each a
  ``model.keras`` plus ``meta.json``); the files of the user's own ``ModelCheckpoint``
  callbacks as ``checkpoints/<file>`` at the end of fit, once each (``checkpoint=False``:
  none, ``"best"``: those with ``save_best_only``, ``"last"``: the newest); the final model
  in ``model/`` (``log_models``; a model without ``get_config`` as ``model.weights.h5``);
  the log folder of a ``keras.callbacks.TensorBoard`` callback under ``tensorboard/``
  at the end of fit (files whose size or time changed since the last upload).

Fitting the same model again in the same run continues both step axes.
"""

from __future__ import annotations

import inspect
import sys
import threading
from typing import Any

from autolog.integrations import _keras_parts as parts
from autolog.integrations._keras_files import load_model as load_model  # re-exported: the public loader
from autolog.integrations._keras_files import save_model as save_model
from autolog.integrations._keras_fit import BATCH_PREFIX as BATCH_PREFIX  # re-exported: the per-batch key prefix
from autolog.integrations._keras_fit import FitLogger
from autolog.patching import options
from autolog.patching.datasets import log_dataset
from autolog.patching.engine import REGISTRY, Call, safe_wrapper
from autolog.patching.lifecycle import FitRun, open_fit_run
from autolog.patching.plugins import Integration, integration_autolog
from autolog.reporting import guarded, report

NAME = "keras"
_guarded = guarded(NAME)  # a hook's error becomes one warning (raised under AUTOLOG_STRICT=1); training goes on

_class_lock = threading.Lock()
_fit_signature: inspect.Signature | None = None


def __getattr__(name: str) -> Any:
    # The callback subclasses keras.callbacks.Callback, so it is built on first use:
    # importing this module must not import Keras.
    if name == "AutologCallback":
        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def callback_class() -> type:
    """The ``AutologCallback`` class (imports Keras on first call)."""
    with _class_lock:
        cls = globals().get("AutologCallback")
        if cls is None:
            cls = globals()["AutologCallback"] = _build_callback_class()
        return cls


def _settings(cb: Any) -> dict[str, Any]:
    """The callback's own settings, else the autolog() options at this fit."""
    out = {}
    for key in ("log_every_n_steps", "checkpoint", "checkpoint_monitor", "log_models"):
        value = cb.settings.get(key)
        out[key] = options.get(NAME, key) if value is None else value
    options.validate({k: v for k, v in out.items() if v is not None})
    return out


def _fit_frame(cb: Any) -> tuple[dict[str, Any], list[Any]]:
    """The locals of the ``fit`` running ``cb.model`` and the other callbacks of its CallbackList.

    Read from the calling frames (Keras's CallbackList and ``fit`` itself), once per fit;
    nothing is found when Keras calls callbacks some other way.
    """
    found: dict[str, Any] = {}
    siblings: list[Any] = []
    frame = sys._getframe(2)
    for _ in range(16):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if not siblings and type(owner).__name__ == "CallbackList" and cb in getattr(owner, "callbacks", ()):
            siblings = [c for c in owner.callbacks if c is not cb]
        if frame.f_code.co_name == "fit" and owner is cb.model:
            found = frame.f_locals
            break
        frame = frame.f_back
    return found, siblings


def _build_callback_class() -> type:
    import keras

    class AutologCallback(keras.callbacks.Callback):
        """Log a Keras ``fit`` into the current autolog run (or a run of its own).

        Args:
            log_every_n_steps: log training metrics every n batches (``batch/<key>``);
                default the autolog() option (1).
            checkpoint: ``"best"``, ``"last"``, ``"all"`` or False; default the option.
            checkpoint_monitor: the epoch metric ``"best"`` follows; default ``val_loss``
                with validation data, else ``loss``.
            log_models: save the final model under ``model/``; default the option.
        """

        # Our batch hook only queues points, under its own lock: Keras may keep running
        # batch callbacks (and its float conversion of the logs) off the training thread.
        async_safe = True

        def __init__(self, log_every_n_steps: int | None = None, checkpoint: str | bool | None = None,
                     checkpoint_monitor: str | None = None, log_models: bool | None = None) -> None:
            super().__init__()
            self.settings = {"log_every_n_steps": log_every_n_steps, "checkpoint": checkpoint,
                             "checkpoint_monitor": checkpoint_monitor, "log_models": log_models}
            options.validate({k: v for k, v in self.settings.items() if v is not None})
            self._attached: tuple[FitRun, dict[str, Any], list[Any]] | None = None
            self._owned: FitRun | None = None
            self._logger: FitLogger | None = None

        # -- called by the fit patch --------------------------------------------------
        def _attach(self, fit_run: FitRun, args: dict[str, Any], callbacks: list[Any]) -> None:
            self._attached = (fit_run, args, callbacks)

        def _detach(self, failed: bool) -> None:
            logger, self._logger, self._attached = self._logger, None, None
            if logger is not None and failed:
                logger.abort()
            elif logger is not None:  # fit returned without calling on_train_end
                logger.end()

        # -- Keras events -------------------------------------------------------------
        def on_train_begin(self, logs: dict | None = None) -> None:
            if self._owned is not None:  # the previous fit raised: Keras never called on_train_end
                self._owned, stale = None, self._owned
                stale.finish("FAILED")
            self._logger = None
            self._begin()

        @_guarded
        def _begin(self) -> None:
            found, siblings = _fit_frame(self)
            # A generator's first batch is already peeked by Keras's data adapter: the batch size comes from it.
            adapter = getattr(found.get("epoch_iterator"), "data_adapter", None)
            if self._attached is not None:
                fit_run, args, callbacks = self._attached
            else:
                args, callbacks = {k: found[k] for k in ("x", *parts.FIT_ARGS) if k in found}, siblings
                fit_run = open_fit_run(NAME, type(self.model).__name__, model=self.model)
                if fit_run is None:
                    return
                self._owned = fit_run
            self._logger = FitLogger(fit_run, self.model, _settings(self), args, callbacks)
            self._logger.begin(self.params or {}, adapter)

        @_guarded
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if self._logger is not None:
                self._logger.epoch_begin(epoch)

        @_guarded
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            logger = self._logger
            if logger is not None:
                logger.batch_end(batch, logs)

        @_guarded
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self._logger is not None:
                self._logger.epoch_end(epoch, logs)

        def on_train_end(self, logs: dict | None = None) -> None:
            logger, self._logger = self._logger, None
            owned, self._owned = self._owned, None
            try:
                if logger is not None:
                    _guarded(FitLogger.end)(logger)
            finally:
                if owned is not None:
                    owned.finish("FINISHED")

    AutologCallback.__module__ = __name__
    AutologCallback.__qualname__ = "AutologCallback"
    return AutologCallback


# -- the fit patch ------------------------------------------------------------------------
def _bind(call: Call) -> dict[str, Any] | None:
    try:
        bound = _fit_signature.bind(call.instance, *call.args, **call.kwargs)
    except TypeError:
        return None  # let Keras raise its own error about the arguments
    bound.apply_defaults()
    args = dict(bound.arguments)
    args.pop("self", None)
    return args


def _set_callbacks(call: Call, callbacks: list[Any]) -> None:
    names = list(_fit_signature.parameters)
    index = names.index("callbacks") - 1  # without self
    if "callbacks" not in call.kwargs and len(call.args) > index:
        args = list(call.args)
        args[index] = callbacks
        call.args = tuple(args)
    else:
        call.kwargs = {**call.kwargs, "callbacks": callbacks}


def _before_fit(call: Call) -> bool:
    model = call.instance
    args = _bind(call) if model is not None else None
    if args is None:
        return False
    given = args.get("callbacks")
    if given is not None and not isinstance(given, (list, tuple)):
        return False  # a CallbackList built by the user: left exactly as it is
    cls = callback_class()
    user_callbacks = list(given or [])
    ours = next((cb for cb in user_callbacks if isinstance(cb, cls)), None)
    fit_run = open_fit_run(NAME, type(model).__name__, model=model)
    if fit_run is None:
        return False
    call.state["fit_run"] = fit_run
    if ours is None:
        ours = cls()
        _set_callbacks(call, [*user_callbacks, ours])
    ours._attach(fit_run, args, [cb for cb in user_callbacks if cb is not ours])
    call.state["callback"] = ours
    try:
        if options.get(NAME, "log_datasets") and hasattr(args.get("x"), "shape"):
            log_dataset(fit_run, "x_train", args["x"])
            if hasattr(args.get("y"), "shape"):
                log_dataset(fit_run, "x_train.y", args["y"])
    except Exception as exc:
        report(NAME, exc)
    return True


def _after_fit(call: Call, result: Any) -> None:
    try:
        call.state["callback"]._detach(failed=False)
    finally:
        call.state["fit_run"].finish("FINISHED")


def _on_fit_error(call: Call, exc: BaseException) -> None:
    try:
        call.state["callback"]._detach(failed=True)
    finally:
        call.state["fit_run"].finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")


def _patch(keras: Any) -> None:
    global _fit_signature
    model_class = keras.Model
    _fit_signature = inspect.signature(inspect.getattr_static(model_class, "fit"))
    # keras.Model (not the backend trainer that defines fit): every model class users
    # build derives from it, and it is the attribute they call.
    REGISTRY.apply(NAME, model_class, "fit", safe_wrapper(NAME, _before_fit, _after_fit, _on_fit_error, enabled=INTEGRATION.is_enabled))


INTEGRATION = Integration(
    name=NAME,
    module="keras",
    distribution="keras",
    supported=">=3.0,<4",
    extra="keras",
    patch=_patch,
)
autolog = integration_autolog(NAME)
