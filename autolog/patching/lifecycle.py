"""Which run an autologged call logs into, and how that run ends.

Rules (DESIGN.md "Safety rules" and issue 3):
- With a user's active run, the first autologged fit logs into it and leaves it open.
  Fitting the same model again in that run (fine-tuning) logs into it again and
  continues its step axis. Fitting another model in the same user run gets a nested
  child run, so a sweep of five fits never collides on params.
- Without an active run the call gets its own run, named after what it trained plus a
  time suffix, ended FINISHED, or FAILED when the user's code raised.
  ``exclusive=True`` logs only into user-created runs.
- Right after an autologged fit with no user run, ``log_metric`` and friends without an
  active run go into that fit's run (``autolog.last_run()`` returns it too), but only in
  the same thread (or asyncio task) and within ``AFTER_FIT_WINDOW`` seconds of the fit's end,
  and only until another run starts. Such a run keeps its status; its end time is
  recorded again (``ActiveRun.settle``) when the next run starts or the process exits.
- Only the process that started a run ends it (a forked child never ends its parent's).

The public API integrations call (one owner: integrations never end runs themselves):

``LIFECYCLE.open_fit(integration, name, model=None, tags=None) -> FitRun | None``
    Which run a fit uses (``open_fit_run`` is the same call). None: do not log
    (``exclusive=True`` with no user run).
``LIFECYCLE.resume(run_id, integration) -> FitRun | None``
    Reopen an ended run of this store for more results of the same training (Lightning's
    ``validate``/``test`` after ``fit``). ``finish("FINISHED")`` then restores the run's
    earlier FAILED/KILLED status instead of overwriting it. None: the run is gone or the
    store refused; the caller opens a fresh one with ``open_fit``.
``LIFECYCLE.open_child(parent, integration, name, tags=None) -> FitRun``
    A new owned child run of ``parent`` for one trial of a sweep (TensorBoard's
    ``add_hparams``), never made the active run; ended with ``finish`` like any other.
``FitRun.finish(status)``
    How it ends: an owned run ends with ``status`` and becomes the after-fit run; a user's
    run is only flushed and left open. Call it exactly once per ``open_fit``/``resume``.
``FitRun.owned``, ``FitRun.run``, ``FitRun.model_state``
    Whether this fit created the run (and so ends it), the ``ActiveRun`` to log into, and
    per-model state kept across fits of the same model in the same user run.
``LIFECYCLE.after_fit_run()``
    The run a ``log_*`` call with no active run goes to now, or None.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import weakref
from typing import Any

from autolog import process
from autolog.patching import options
from autolog.tracking import api
from autolog.tracking.run import ActiveRun

AFTER_FIT_WINDOW = 60.0  # seconds after an owned fit run ends during which implicit log_* calls still go to it


class FitRun:
    """The run one autologged call writes to, plus per-model state kept across fits."""

    def __init__(self, run: ActiveRun, owned: bool, model_state: dict[str, Any], keep_status: str | None = None) -> None:
        self.run = run
        self.owned = owned
        self.model_state = model_state
        # A resumed run's earlier FAILED/KILLED status, kept when this fit finishes well.
        self.keep_status = keep_status
        self._logged_params: set[str] | None = None

    def log_params(self, params: dict[str, Any]) -> None:
        """Log params, skipping keys the run already has (a second fit never conflicts)."""
        if self._logged_params is None:
            self._logged_params = set(self.run.store.get_run(self.run.id).params)
        fresh = {k: v for k, v in params.items() if k not in self._logged_params}
        if fresh:
            self.run.log_params(fresh)
            self._logged_params.update(fresh)

    def finish(self, status: str = "FINISHED") -> None:
        """End an owned run (or just flush a user's run) and remember it as the last run."""
        if self.owned:
            if self.keep_status is not None and status == "FINISHED":
                status = self.keep_status
            self.run.end(status)
            LIFECYCLE.note_fit_ended(self.run)
        else:
            self.run.flush()
        api.set_last_run(self.run)


class RunLifecycle:
    """The one owner of the run rules: which run a fit uses, how it ends, what follows a fit."""

    def __init__(self) -> None:
        self.after_fit_window = AFTER_FIT_WINDOW
        # (run, monotonic deadline) per thread / asyncio task: the after-fit run of this context.
        self._after_fit: contextvars.ContextVar[tuple[ActiveRun, float] | None] = contextvars.ContextVar("autolog_after_fit", default=None)
        self._unsettled: dict[str, ActiveRun] = {}  # ended runs logged into after their end
        self._lock = threading.Lock()

    def open_fit(self, integration: str, name: str, model: Any = None, tags: dict[str, Any] | None = None) -> FitRun | None:
        """Return the run an autologged call of ``integration`` should log into, or None (see the module doc)."""
        return open_fit_run(integration, name, model, tags)

    def resume(self, run_id: str, integration: str) -> FitRun | None:
        """Reopen the ended run ``run_id`` as an owned fit run; None when it cannot be reopened."""
        try:
            status = api.get_store().get_run(run_id).status
            run = api.start_run(run_id=run_id, capture_env=False, log_system_metrics=False)
        except Exception as exc:  # the store changed, or the run was deleted: the caller opens a new run
            from autolog.reporting import warn_once

            warn_once(f"{integration}:reopen", f"autolog: could not reopen run {run_id[:8]} ({type(exc).__name__}: {exc})")
            return None
        return FitRun(run, owned=True, model_state={}, keep_status=status if status in ("FAILED", "KILLED") else None)

    def open_child(self, parent: ActiveRun, integration: str, name: str, tags: dict[str, Any] | None = None) -> FitRun:
        """A new owned child run of ``parent`` (one trial of a sweep), never made the active run."""
        all_tags = {"autolog.integration": integration, "autolog.model": name}
        all_tags.update(options.get(integration, "extra_tags") or {})
        all_tags.update(tags or {})
        # Started in a copied context: the user's active run and after-fit run stay as they were.
        run = contextvars.copy_context().run(api.start_run, name=_run_name(name), experiment=parent.experiment, parent_run_id=parent.id,
                                             tags=all_tags, capture_env=False, log_system_metrics=False)
        return FitRun(run, owned=True, model_state={})

    def note_fit_ended(self, run: ActiveRun) -> None:
        """An owned fit run ended: implicit ``log_*`` calls in this context may go to it for a while."""
        self._after_fit.set((run, time.monotonic() + self.after_fit_window))

    def after_fit_run(self) -> ActiveRun | None:
        """The run a ``log_*`` call with no active run goes to in this context, or None."""
        record = self._after_fit.get()
        if record is None:
            return None
        run, until = record
        if time.monotonic() > until:
            self._after_fit.set(None)
            self.settle()
            return None
        if run.id not in self._unsettled:
            with self._lock:
                self._unsettled[run.id] = run
        run.logged_after_end()
        return run

    def settle(self) -> None:
        """Record the new end time of every ended run that was logged into after its end."""
        with self._lock:
            runs, self._unsettled = list(self._unsettled.values()), {}
        pid = os.getpid()
        for run in runs:
            if run.owner_pid == pid:
                run.settle()

    def _on_run_start(self, run: ActiveRun, options: dict) -> None:
        # A new run closes the after-fit window of this context.
        self._after_fit.set(None)
        if self._unsettled:
            self.settle()

    def _after_fork(self) -> None:
        self._unsettled = {}
        self._lock = threading.Lock()


LIFECYCLE = RunLifecycle()


def _state_for(states: list[tuple[Any, dict]], model: Any) -> dict | None:
    for ref, state in states:
        if model is not None and ref is not None and ref() is model:
            return state
    return None


def _ref(model: Any):
    if model is None:
        return None
    try:
        return weakref.ref(model)
    except TypeError:
        return lambda: model  # not weak-referenceable: keep it alive for the run's life


def open_fit_run(integration: str, name: str, model: Any = None, tags: dict[str, Any] | None = None) -> FitRun | None:
    """Return the run an autologged call of ``integration`` should log into, or None.

    Args:
        integration: the integration's name (tag ``autolog.integration``).
        name: what was trained (estimator or module class, ``xgboost.train``).
        model: the object being fitted; fitting it again in a user's run continues there.
        tags: extra tags for a run created here.
    """
    all_tags = {"autolog.integration": integration, "autolog.model": name}
    all_tags.update(options.get(integration, "extra_tags") or {})
    all_tags.update(tags or {})
    user = api.active_run()
    if user is not None and not user.ended:
        states = user.fit_states
        state = _state_for(states, model)
        if state is not None:
            return FitRun(user, owned=False, model_state=state)
        if not states:
            state = {}
            states.append((_ref(model), state))
            user.set_tags(all_tags)
            return FitRun(user, owned=False, model_state=state)
        child = api.start_run(name=_run_name(name), nested=True, tags=all_tags, capture_env=False, log_system_metrics=False)
        return FitRun(child, owned=True, model_state={})
    if options.get(integration, "exclusive"):
        return None
    run = api.start_run(
        name=_run_name(name),
        tags=all_tags,
        capture_env=options.get(integration, "capture_env"),
        log_system_metrics=options.get(integration, "log_system_metrics"),
    )
    # The fit's end does not wait for the environment capture; it completes in the background.
    run.wait_for_capture = False
    return FitRun(run, owned=True, model_state={})


def _install() -> None:
    hooks = api.run_start_hooks
    # Replace an earlier registration (importlib.reload) instead of running twice.
    hooks[:] = [h for h in hooks if getattr(h, "__qualname__", None) != "RunLifecycle._on_run_start"]
    hooks.append(LIFECYCLE._on_run_start)
    api.set_implicit_run_provider(LIFECYCLE.after_fit_run)
    process.on_exit("settle after-fit runs", LIFECYCLE.settle, process.END_RUNS + 1)
    process.on_fork_child("run lifecycle", LIFECYCLE._after_fork)


_install()


def _run_name(what: str) -> str:
    from autolog.capture.notebook import name_prefix

    prefix = name_prefix()  # in a notebook, runs are named after it too
    name = f"{prefix + '-' if prefix else ''}{what}-{time.strftime('%H%M%S')}"
    # Several fits within one second (a loop of short fits) get -2, -3... so names stay distinct.
    with _names_lock:
        if name[-6:] != _names_second[0]:
            _names_second[0] = name[-6:]
            _names_count.clear()
        count = _names_count[name] = _names_count.get(name, 0) + 1
    return name if count == 1 else f"{name}-{count}"


_names_lock = threading.Lock()
_names_second = [""]  # the second the counts below belong to
_names_count: dict[str, int] = {}
