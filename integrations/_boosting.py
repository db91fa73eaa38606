"""The engine the XGBoost and LightGBM integrations share: one session per boosting call.

A framework module is a translation table: an :class:`Adapter` subclass that says where
its ``train``/``cv`` functions and scikit-learn wrappers live, how to read a call's
params and training data, how to turn one round's callback arguments into metrics, and
how to read a trained booster (rounds, snapshot, model file, importances, resolved
params, best iteration). The :class:`Engine` does everything else once: opening the run,
the callback it adds, the throttle, checkpoints, the closing steps, failures, patching.

A :class:`Session` is the state of one autologged ``train``/``cv``/``fit`` call. A
scikit-learn wrapper's ``fit`` calls ``train`` inside: the ``fit`` patch opens the
session and parks it in :data:`_PENDING`; the ``train`` patch picks it up to add the
callback to the very call the wrapper makes, with the wrapper's own params. Everything
else nested in a logged call passes straight through.

What every run gets (the framework modules' docstrings name their keys): per-round
metrics ``<eval>-<metric>`` at step = round (0-based), each built-in metric's direction
(``autolog.goal.<key>``); with early stopping ``best_iteration`` (in the framework's own
convention), ``best_score`` and, with several metrics, ``best_score.<eval>-<metric>``
for each, and ``stopped_iteration``; resolved params; ``feature_importance.json`` (a
chart too with ``log_importance_plot=True``); the model; checkpoints.
"""

from __future__ import annotations

import contextvars
import importlib
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from autolog.integrations._boosting_parts import argument, log_importances, own_fit_classes, set_argument, with_callback
from autolog.integrations._boosting_parts import wait_for_plots as wait_for_plots  # re-exported: tests and benchmarks wait for charts
from autolog.patching import options
from autolog.patching.engine import REGISTRY, Call, safe_wrapper
from autolog.patching.lifecycle import open_fit_run
from autolog.patching.params import log_flat_params
from autolog.patching.plugins import when_imported
from autolog.reporting import report

if TYPE_CHECKING:
    from autolog.patching.lifecycle import FitRun
    from autolog.tracking.run import ActiveRun

# Checkpoint every this many rounds with checkpoint="all" when log_every_n_steps is 1:
# saving every round re-serialises a growing model each time (quadratic in rounds).
DEFAULT_CHECKPOINT_EVERY = 10
# A round only notes (step, raw values, time); notes become points in bursts at most this
# many rounds or DRAIN_S apart, and at close (~3x less CPU per point: code run once per round
# runs with caches the framework's own work has evicted, so each call there costs several times more).
DRAIN_ROUNDS = 256
DRAIN_S = 0.2  # the writer's own interval: a live view lags by about one more

_time = time.time

_PENDING: contextvars.ContextVar[Session | None] = contextvars.ContextVar("autolog_boosting_pending", default=None)


class Adapter:
    """What one boosting framework tells the engine (subclassed once per framework).

    Attributes name the framework's objects; methods read its calls and boosters. All
    run once per call except ``round_items`` (once per logged round, read in bursts).
    """

    name: str
    train_run: tuple[str, str]  # (run name, estimator_class tag) of a direct train call
    cv_run: tuple[str, str]
    modules: tuple[str, ...]  # modules binding ``train``/``cv`` besides the framework's root
    sklearn_module: str
    wrapper_class: str  # the scikit-learn wrappers' base class in sklearn_module
    data_arg: tuple[str, int]  # the training data argument of train and cv: (name, position)
    train_callbacks: int | None  # position of ``callbacks`` in train (None: keyword only)
    cv_callbacks: int | None

    def callback(self, session: Session) -> Any:
        raise NotImplementedError

    def round_items(self, raw: Any, index: int) -> Iterable[tuple[str, float]]:
        """One round's ``(key, value)`` metrics from the callback's arguments.

        Read after the round, in a burst: ``raw`` is what the callback got at that round,
        ``index`` the round's position in this call (0 for its first round), for a
        framework that hands the whole history so far instead of the round's values.
        """
        raise NotImplementedError

    def cv_items(self, raw: Any, index: int) -> Iterable[tuple[str, float]]:
        raise NotImplementedError

    def goals(self, raw: Any, cv: bool) -> dict[str, str]:
        """Metric key -> ``"min"``/``"max"`` for the metrics whose direction is known."""
        return {}

    def train_params(self, call: Call) -> dict[str, Any]:
        raise NotImplementedError

    def cv_params(self, call: Call) -> dict[str, Any]:
        raise NotImplementedError

    def log_data(self, fit_run: FitRun, data: Any) -> None:
        """Fingerprint the framework's own training-data object."""

    def snapshot(self, booster: Any) -> tuple[bytes, str]:
        """The model as ``(bytes, file extension)`` for checkpoints."""
        raise NotImplementedError

    def rounds(self, booster: Any) -> int:
        raise NotImplementedError

    def best(self, booster: Any, session: Session) -> tuple[int, dict[str, float], float | None] | None:
        """``(best_iteration, {key: score}, best_score)`` after early stopping, else None."""
        raise NotImplementedError

    def cv_best(self, results: Any, params: dict[str, Any]) -> tuple[int, dict[str, float], float | None] | None:
        raise NotImplementedError

    def resolved_params(self, booster: Any) -> dict[str, Any]:
        return {}

    def importances(self, booster: Any) -> dict[str, dict[str, float]]:
        return {}

    def save_model(self, run: ActiveRun, booster: Any, est: Any = None) -> str:
        raise NotImplementedError


class Session:
    """One autologged boosting call: per-round metrics, checkpoints, and how it closes."""

    def __init__(self, adapter: Adapter, fit_run: FitRun, cv: bool = False) -> None:
        self.adapter = adapter
        self.integration = adapter.name
        self.fit_run = fit_run
        self.run = fit_run.run
        self.cv = cv
        self.items = adapter.cv_items if cv else adapter.round_items
        self.every = int(options.get(adapter.name, "log_every_n_steps") or 1)
        self.policy = None if cv else options.get(adapter.name, "checkpoint") or None
        self.checkpoint_every = (self.every if self.every > 1 else DEFAULT_CHECKPOINT_EVERY) if self.policy == "all" else 0
        self.first: int | None = None
        self.last: int | None = None  # the latest round seen
        self.logged: int | None = None  # the latest round logged
        self.raw: Any = None  # the callback's values of the latest round
        self.pending = False  # the latest round was throttled
        self.notes: list[tuple[int, Any, float]] = []  # (step, raw, time) of logged rounds not yet queued as points
        self.drain_at = 0.0  # queue the notes when a round ends after this time
        self.checkpointed: int | None = None
        self.injected = False
        self.closed = False
        self.broken = False

    # -- per round (the hot path: no store reads, no flush) ------------------------------
    def step(self, step: int, raw: Any, model: Any = None) -> None:
        """Record one boosting round; log it unless throttled (the last is logged at close).

        A logged round is noted with its time and queued as points in the next burst
        (:meth:`drain`): same keys, steps, values and timestamps as logging it at once.
        Called from inside the user's training loop: our errors must not stop it, so
        they are reported once and the session stops logging rounds.
        """
        if self.broken:
            return
        try:
            self.raw, self.last = raw, step
            if self.first is None:
                self.begin(step, raw)
            if (step - self.first) % self.every == 0:
                now = _time()
                notes = self.notes
                notes.append((step, raw, now))
                if now >= self.drain_at or len(notes) >= DRAIN_ROUNDS:
                    self.drain(now)
                self.logged, self.pending = step, False
            else:
                self.pending = True
            if self.checkpoint_every and model is not None and (step + 1) % self.checkpoint_every == 0:
                self.checkpoint(model, step + 1)
        except Exception as exc:
            self.broken = True
            report(self.integration, exc)

    def begin(self, step: int, raw: Any) -> None:
        """The first round: the metrics' directions, and the burst clock starts."""
        self.first = step
        self.drain_at = _time() + DRAIN_S
        for key, goal in self.adapter.goals(raw, self.cv).items():
            self.run.set_metric_goal(key, goal)

    def drain(self, now: float | None = None) -> None:
        """Queue the noted rounds' points, each with its round's step and time (the writer's packed format)."""
        notes, self.notes = self.notes, []
        self.drain_at = (now or _time()) + DRAIN_S
        if not notes:
            return
        items, first = self.items, self.first or 0
        self.run.log_timed_points((key, step, value, when) for step, raw, when in notes for key, value in items(raw, step - first))

    def checkpoint(self, model: Any, rounds: int) -> None:
        """Store the model after ``rounds`` rounds as ``checkpoints/round-<rounds>.<ext>``."""
        if self.checkpointed == rounds:
            return
        data, ext = self.adapter.snapshot(model)
        self.run.log_bytes(data, f"checkpoints/round-{rounds:06d}.{ext}")
        self.checkpointed = rounds

    # -- closing ----------------------------------------------------------------------
    def flush_last_round(self) -> None:
        """Queue the noted rounds, and the latest round if the throttle skipped it (the last round is always logged)."""
        if self.broken:
            self.notes = []
        elif self.pending and self.last is not None and self.logged != self.last:
            self.notes.append((self.last, self.raw, _time()))
            self.logged = self.last
        self.pending = False
        self.drain()

    def log_best(self, best: tuple[int, dict[str, float], float | None] | None) -> None:
        """``best_iteration``, ``best_score`` (+ one per metric when several) and ``stopped_iteration``."""
        if best is None:
            return
        iteration, scores, score = best
        step = self.last if self.last is not None else 0
        metrics: dict[str, float] = {"best_iteration": iteration, "stopped_iteration": step}
        if score is not None:
            metrics["best_score"] = score
        if len(scores) > 1:
            metrics.update({f"best_score.{key}": value for key, value in scores.items()})
        self.run.log_metrics(metrics, step=step)

    def close(self, status: str, steps: Iterable[Callable[[], None]] = ()) -> None:
        """Run the closing steps (each guarded on its own), then end or flush the run."""
        if self.closed:
            return
        self.closed = True
        try:
            for fn in (self.flush_last_round, *steps):
                try:
                    fn()
                except Exception as exc:
                    report(self.integration, exc)
        finally:
            self.fit_run.finish(status)


def start(session: Session, steps: Iterable[Callable[[], Any]], token: contextvars.Token | None = None) -> bool:
    """Run the steps that start a logged call (params, datasets), each guarded on its own.

    Under ``AUTOLOG_STRICT`` our error is raised, after the session is unparked and its
    run ended, so a failing start never leaves a run open or a session parked.
    """
    for fn in steps:
        try:
            fn()
        except Exception as exc:
            try:
                report(session.integration, exc)
            except Exception:
                if token is not None:
                    _PENDING.reset(token)
                session.close("FAILED")
                raise
    return True


class Engine:
    """The patches of one boosting framework, driven by its :class:`Adapter`."""

    def __init__(self, adapter: Adapter, integration: Any) -> None:
        self.adapter = adapter
        self.name = adapter.name
        self.integration = integration
        self._wrappers: dict[str, Callable] = {}

    # -- train ------------------------------------------------------------------------
    def join(self, session: Session, call: Call) -> None:
        """Log the train-level params and add our callback to this train call."""
        params = self.adapter.train_params(call)  # read before our callback joins the user's list
        position = self.adapter.train_callbacks
        ours = self.adapter.callback(session)
        set_argument(call, position, "callbacks", with_callback(argument(call, position, "callbacks"), ours))
        log_flat_params(session.fit_run, params)

    def _open(self, call: Call, what: tuple[str, str], cv: bool) -> Session | None:
        fit_run = open_fit_run(self.name, what[0], tags={"estimator_class": what[1]})
        if fit_run is None:
            return None
        session = call.state["session"] = Session(self.adapter, fit_run, cv=cv)
        call.kwargs = dict(call.kwargs)
        return session

    def _log_data(self, session: Session, call: Call) -> None:
        data = argument(call, self.adapter.data_arg[1], self.adapter.data_arg[0])
        if data is not None and options.get(self.name, "log_datasets"):
            self.adapter.log_data(session.fit_run, data)

    def before_train(self, call: Call) -> bool:
        session = self._open(call, self.adapter.train_run, cv=False)
        if session is None:
            return False
        session.injected = True
        return start(session, [lambda: self.join(session, call), lambda: self._log_data(session, call)])

    def after_train(self, call: Call, booster: Any) -> None:
        session = call.state["session"]
        session.close("FINISHED", self.closing(session, booster))

    # -- cv ---------------------------------------------------------------------------
    def before_cv(self, call: Call) -> bool:
        session = self._open(call, self.adapter.cv_run, cv=True)
        if session is None:
            return False

        def params() -> None:
            call.state["params"] = params = self.adapter.cv_params(call)  # before our callback joins
            position = self.adapter.cv_callbacks
            ours = self.adapter.callback(session)
            set_argument(call, position, "callbacks", with_callback(argument(call, position, "callbacks"), ours))
            log_flat_params(session.fit_run, params)

        return start(session, [params, lambda: self._log_data(session, call)])

    def after_cv(self, call: Call, results: Any) -> None:
        session = call.state["session"]
        session.close("FINISHED", [lambda: session.log_best(self.adapter.cv_best(results, call.state.get("params") or {}))])

    # -- the scikit-learn wrappers -----------------------------------------------------
    def before_fit(self, call: Call) -> bool:
        """Open the run of ``XGBModel.fit`` / ``LGBMModel.fit`` and park a session for its train()."""
        from autolog.patching.datasets import log_dataset

        est = call.instance
        if est is None:
            return False
        cls = type(est)
        qualname = f"{cls.__module__}.{cls.__qualname__}"
        fit_run = open_fit_run(self.name, cls.__name__, model=est, tags={"estimator_class": qualname})
        if fit_run is None:
            return False
        session = call.state["session"] = Session(self.adapter, fit_run)
        token = call.state["token"] = _PENDING.set(session)

        def params() -> None:
            fit_run.run.set_tags({"estimator_name": cls.__name__, "estimator_class": qualname})
            log_flat_params(fit_run, {k: v for k, v in est.get_params(deep=False).items() if v is not None})

        def datasets() -> None:
            if options.get(self.name, "log_datasets"):
                X, y = argument(call, 0, "X"), argument(call, 1, "y")
                log_dataset(fit_run, "train", X)
                if y is not None:
                    log_dataset(fit_run, "train.label", y)

        return start(session, [params, datasets], token)

    def after_fit(self, call: Call, result: Any) -> None:
        _PENDING.reset(call.state.pop("token"))
        session, est = call.state["session"], call.instance
        booster = getattr(est, "_Booster", None)
        session.close("FINISHED", self.closing(session, booster, est) if booster is not None else ())

    def on_error(self, call: Call, exc: BaseException) -> None:
        """The user's training raised: what was logged stays, the run is FAILED (KILLED on Ctrl-C)."""
        token = call.state.pop("token", None)
        if token is not None:
            _PENDING.reset(token)
        session = call.state.get("session")
        if session is not None:
            session.close("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")

    # -- closing steps -------------------------------------------------------------------
    def closing(self, session: Session, booster: Any, est: Any = None) -> list[Callable[[], None]]:
        """The steps after training, in order; each is guarded on its own by ``Session.close``."""
        adapter, run, name = self.adapter, session.run, self.name

        def checkpoints() -> None:
            if session.policy == "all":
                session.checkpoint(booster, adapter.rounds(booster))
            elif session.policy in ("best", "last"):
                data, ext = adapter.snapshot(booster)
                run.log_bytes(data, f"checkpoints/{session.policy}.{ext}")

        return [
            lambda: session.log_best(adapter.best(booster, session)),
            lambda: session.fit_run.log_params(adapter.resolved_params(booster)),
            lambda: log_importances(name, run, adapter.importances(booster), plot=options.get(name, "log_importance_plot")),
            lambda: options.get(name, "log_models") and adapter.save_model(run, booster, est),
            checkpoints,
        ]

    # -- patching ---------------------------------------------------------------------------
    def wrappers(self) -> dict[str, Callable]:
        """The wrappers of ``train``, ``cv`` and the wrappers' ``fit`` (built once, reused on re-patching)."""
        if not self._wrappers:
            enabled = self.integration.is_enabled
            safe = safe_wrapper(self.name, self.before_train, self.after_train, self.on_error, enabled=enabled)
            self._wrappers["train"] = self._train_entry(safe)
            self._wrappers["cv"] = safe_wrapper(self.name, self.before_cv, self.after_cv, self.on_error, enabled=enabled)
            self._wrappers["fit"] = safe_wrapper(self.name, self.before_fit, self.after_fit, self.on_error, enabled=enabled)
        return self._wrappers

    def _train_entry(self, safe: Callable) -> Callable:
        # A parked wrapper-fit session joins the train call it makes; any other train call
        # is a call of its own (the engine's safe wrapper).
        def wrapper(wrapped, instance, args, kwargs):
            session = _PENDING.get()
            if session is None or session.injected:
                return safe(wrapped, instance, args, kwargs)
            session.injected = True
            call = Call(instance, args, dict(kwargs))
            try:
                self.join(session, call)
            except Exception as exc:
                report(self.name, exc)
                call = Call(instance, args, kwargs)
            return wrapped(*call.args, **call.kwargs)

        return wrapper

    def patch(self, framework: Any) -> None:
        """Patch ``train`` and ``cv`` wherever the framework binds them, then its scikit-learn wrappers."""
        wrappers = self.wrappers()
        # `from .engine import train, cv` binds the functions in each module: patch every binding.
        for module in (*(importlib.import_module(m) for m in self.adapter.modules), framework):
            for fn in ("train", "cv"):
                if fn in module.__dict__:
                    REGISTRY.apply(self.name, module, fn, wrappers[fn])
        when_imported(self.integration, self.adapter.sklearn_module, self.patch_sklearn)

    def patch_sklearn(self, module: Any) -> None:
        if "train" in module.__dict__:
            REGISTRY.apply(self.name, module, "train", self.wrappers()["train"])
        for cls in own_fit_classes(getattr(module, self.adapter.wrapper_class)):
            REGISTRY.apply(self.name, cls, "fit", self.wrappers()["fit"])
