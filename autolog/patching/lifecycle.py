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
  active run go into that fit's run (``autolog.last_run()`` returns it too).
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from autolog.patching import options
from autolog.tracking import api
from autolog.tracking.run import ActiveRun

_STATE = "_autolog_fits"


class FitRun:
    """The run one autologged call writes to, plus per-model state kept across fits."""

    def __init__(self, run: ActiveRun, owned: bool, model_state: dict[str, Any]) -> None:
        self.run = run
        self.owned = owned
        self.model_state = model_state
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
            self.run.end(status)
            api._set_after_fit(self.run)
        else:
            self.run.flush()
        api._set_last_run(self.run)


def _model_states(run: ActiveRun) -> list[tuple[Any, dict]]:
    states = run.__dict__.get(_STATE)
    if states is None:
        states = run.__dict__[_STATE] = []
    return states


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
        states = _model_states(user)
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


def _run_name(what: str) -> str:
    return f"{what}-{time.strftime('%H%M%S')}"
