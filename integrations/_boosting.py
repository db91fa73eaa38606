"""What the XGBoost and LightGBM integrations share: one session per boosting call.

A :class:`Session` is the state of one autologged ``train``/``cv``/``fit`` call: the run,
the throttle of per-round metrics, periodic checkpoints and the closing steps (the last
round, early stopping, resolved params, feature importances, the model). Framework
modules only translate their callback's arguments into ``Session.step`` calls and say
how to save, name and read their boosters.

A scikit-learn wrapper's ``fit`` calls ``train`` inside: the ``fit`` patch opens the
session and parks it in :data:`_PENDING`; the ``train`` patch (see :func:`train_entry`)
picks it up to add the callback to the very call the wrapper makes, with the wrapper's
own params. Everything else nested in a logged call passes straight through.

Feature-importance charts are drawn off the training thread, by one worker (matplotlib
is slow to import and to render); :func:`wait_for_plots` waits for them, and so does
interpreter exit (up to :data:`EXIT_WAIT_S`).
"""

from __future__ import annotations

import atexit
import contextvars
import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from autolog.patching import options
from autolog.reporting import report

TOP_FEATURES = 20
# Checkpoint every this many rounds with checkpoint="all" when log_every_n_steps is 1:
# saving every round re-serialises a growing model each time (quadratic in rounds).
DEFAULT_CHECKPOINT_EVERY = 10

_PENDING: contextvars.ContextVar[Session | None] = contextvars.ContextVar("autolog_boosting_pending", default=None)
_log = logging.getLogger("autolog")


class Session:
    """One autologged boosting call: per-round metrics, checkpoints, and how it closes.

    Args:
        integration: the integration's name (options and warnings).
        fit_run: the FitRun from ``open_fit_run``.
        items: ``items(raw) -> [(key, value), ...]``, the metric names and values of one
            round from whatever the framework's callback received.
        snapshot: ``snapshot(model) -> (bytes, extension)`` for checkpoints, or None.
    """

    def __init__(self, integration: str, fit_run: Any, items: Callable[[Any], Iterable[tuple[str, float]]],
                 snapshot: Callable[[Any], tuple[bytes, str]] | None = None) -> None:
        self.integration = integration
        self.fit_run = fit_run
        self.run = fit_run.run
        self.items = items
        self.snapshot = snapshot
        self.every = int(options.get(integration, "log_every_n_steps") or 1)
        self.policy = options.get(integration, "checkpoint") or None
        self.checkpoint_every = (self.every if self.every > 1 else DEFAULT_CHECKPOINT_EVERY) if self.policy == "all" else 0
        self.first: int | None = None
        self.last: int | None = None  # the latest round seen
        self.logged: int | None = None  # the latest round logged
        self.pending: Any = None  # raw values of the latest round when it was throttled
        self.checkpointed: int | None = None
        self.injected = False
        self.closed = False
        self.broken = False

    # -- per round (the hot path: no store reads, no flush) ------------------------------
    def step(self, step: int, raw: Any, model: Any = None) -> None:
        """Record one boosting round; log it unless throttled (the last is logged at close).

        Called from inside the user's training loop: our errors must not stop it, so
        they are reported once and the session stops logging rounds.
        """
        if self.broken:
            return
        try:
            if self.first is None:
                self.first = step
            self.last = step
            if (step - self.first) % self.every == 0:
                log = self.run.log_metric
                for key, value in self.items(raw):
                    log(key, value, step)
                self.logged = step
                self.pending = None
            else:
                self.pending = raw
            if self.checkpoint_every and model is not None and (step + 1) % self.checkpoint_every == 0:
                self.checkpoint(model, step + 1)
        except Exception as exc:
            self.broken = True
            report(self.integration, exc)

    def checkpoint(self, model: Any, rounds: int) -> None:
        """Store the model after ``rounds`` rounds as ``checkpoints/round-<rounds>.<ext>``."""
        if self.snapshot is None or self.checkpointed == rounds:
            return
        data, ext = self.snapshot(model)
        self.run.log_bytes(data, f"checkpoints/round-{rounds:06d}.{ext}")
        self.checkpointed = rounds

    # -- closing ----------------------------------------------------------------------
    def flush_last_round(self) -> None:
        """Log the latest round if the throttle skipped it (the last round is always logged)."""
        if not self.broken and self.pending is not None and self.last is not None and self.logged != self.last:
            for key, value in self.items(self.pending):
                self.run.log_metric(key, value, self.last)
            self.logged = self.last
        self.pending = None

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

    def abort(self, exc: BaseException) -> None:
        """Close after the user's training raised: what was logged stays, the run is FAILED."""
        self.close("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")


def start(session: Session, steps: Iterable[Callable[[], None]], token: contextvars.Token | None = None) -> bool:
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
                unpark(token)
                session.close("FAILED")
                raise
    return True


# -- nesting: a wrapper's fit hands its session to the train call it makes ---------------
def park(session: Session) -> contextvars.Token:
    """Make ``session`` the one the next patched ``train`` call in this context joins."""
    return _PENDING.set(session)


def unpark(token: contextvars.Token | None) -> None:
    """Undo :func:`park` (in the fit wrapper's after/on_error)."""
    if token is not None:
        _PENDING.reset(token)


def train_entry(integration: str, safe: Callable, join: Callable[[Session, Any], None]) -> Callable:
    """The wrapt wrapper of a ``train`` function: join a parked fit session, else ``safe``.

    ``join(session, call)`` adds the session's callback to the call's arguments (and logs
    the train-level params); ``safe`` is the engine's wrapper for a direct train call.
    """
    from autolog.patching.engine import Call

    def wrapper(wrapped, instance, args, kwargs):
        session = _PENDING.get()
        if session is None or session.injected:
            return safe(wrapped, instance, args, kwargs)
        session.injected = True
        call = Call(instance, args, dict(kwargs))
        try:
            join(session, call)
        except Exception as exc:
            report(integration, exc)
            call = Call(instance, args, kwargs)
        return wrapped(*call.args, **call.kwargs)

    return wrapper


def begin_wrapper_fit(integration: str, call: Any, new_session: Callable[[Any], Session]) -> bool:
    """Start of ``XGBModel.fit`` / ``LGBMModel.fit``: open the run and park a session for train().

    The wrapper's own params (``get_params()`` without unset values) and the raw X/y
    fingerprints are logged as the session's first steps.
    """
    from autolog.patching.datasets import log_dataset
    from autolog.patching.lifecycle import open_fit_run
    from autolog.patching.params import log_flat_params

    est = call.instance
    if est is None:
        return False
    cls = type(est)
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    fit_run = open_fit_run(integration, cls.__name__, model=est, tags={"estimator_class": qualname})
    if fit_run is None:
        return False
    session = call.state["session"] = new_session(fit_run)
    token = call.state["token"] = park(session)

    def params() -> None:
        fit_run.run.set_tags({"estimator_name": cls.__name__, "estimator_class": qualname})
        log_flat_params(fit_run, {k: v for k, v in est.get_params(deep=False).items() if v is not None})

    def datasets() -> None:
        if options.get(integration, "log_datasets"):
            X, y = argument(call, 0, "X"), argument(call, 1, "y")
            log_dataset(fit_run, "train", X)
            if y is not None:
                log_dataset(fit_run, "train.label", y)

    return start(session, [params, datasets], token)


def end_wrapper_fit(call: Any, closing: Callable[[Session, Any, Any], Iterable[Callable[[], None]]]) -> None:
    """End of the wrapper's fit: unpark the session and close it with the booster's closing steps."""
    unpark(call.state.pop("token", None))
    session = call.state["session"]
    est = call.instance
    booster = getattr(est, "_Booster", None)
    session.close("FINISHED", closing(session, booster, est) if booster is not None else ())


def own_fit_classes(root: type) -> list[type]:
    """``root`` and its subclasses defined in the same module that have their own ``fit``.

    Subclasses call ``super().fit``: the engine logs the outermost call only. Estimators
    of other modules (dask, spark) train through other functions and are left alone.
    """
    found, stack = [], [root]
    while stack:
        cls = stack.pop()
        if cls.__module__ == root.__module__ and "fit" in cls.__dict__ and cls not in found:
            found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def with_callback(callbacks: Any, ours: Any) -> list:
    """A new list: the user's callbacks (never mutated, never replaced) plus ours."""
    if callbacks is None:
        return [ours]
    if isinstance(callbacks, (list, tuple)):
        return [*callbacks, ours]
    return [callbacks, ours]


def argument(call: Any, position: int, name: str, default: Any = None) -> Any:
    """The value of a parameter passed positionally at ``position`` or by ``name``."""
    if len(call.args) > position:
        return call.args[position]
    return call.kwargs.get(name, default)


def set_argument(call: Any, position: int, name: str, value: Any) -> None:
    """Replace a parameter's value in the call, wherever the user passed it."""
    if len(call.args) > position:
        args = list(call.args)
        args[position] = value
        call.args = tuple(args)
    else:
        call.kwargs[name] = value


def csr_digest(matrix: Any) -> str:
    """A 16-hex digest of a scipy CSR matrix's content (values, indices, row pointers, shape)."""
    import hashlib

    digest = hashlib.sha256(repr(matrix.shape).encode())
    for part in (matrix.data, matrix.indices, matrix.indptr):
        digest.update(memoryview(part).cast("B"))
    return digest.hexdigest()[:16]


# -- params ----------------------------------------------------------------------------
def tidy_number(text: str) -> str:
    """``"0.300000012"`` (a float32 printed in full) -> ``"0.3"``; other text unchanged."""
    raw = text.strip().strip("[]")
    try:
        value = float(raw)
    except ValueError:
        return text
    if value.is_integer() and "e" not in raw.lower() and "." not in raw:
        return raw
    import numpy as np

    short = str(np.float32(value))
    return short[:-2] if short.endswith(".0") and "." not in raw else short


def pick_leaves(tree: Any, wanted: Iterable[str]) -> dict[str, Any]:
    """The first value found for each wanted key anywhere in a nested dict/list."""
    wanted = set(wanted)
    found: dict[str, Any] = {}
    stack = [tree]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, (dict, list)):
                    stack.append(value)
                elif key in wanted and key not in found:
                    found[key] = value
        elif isinstance(node, list):
            stack.extend(node)
    return found


# -- feature importances ------------------------------------------------------------------
_jobs: queue.Queue = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()
_plot_errors: list[BaseException] = []
# How long interpreter exit waits for charts still being drawn.
EXIT_WAIT_S = 30.0


def log_importances(session: Session, importances: dict[str, dict[str, float]], chart: str = "gain",
                    artifact_file: str = "feature_importance.json") -> None:
    """Store every importance type as one JSON artifact and chart ``chart``'s top features off-thread."""
    importances = {kind: dict(sorted(values.items(), key=lambda kv: -kv[1])) for kind, values in importances.items() if values}
    if not importances:
        return
    session.run.log_dict(importances, artifact_file)
    kind = chart if chart in importances else next(iter(importances))
    _ensure_worker()
    _jobs.put((session.integration, session.run, kind, importances[kind]))


def wait_for_plots(timeout: float | None = None) -> None:
    """Block until the importance charts queued so far are stored (tests, examples, exit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _jobs.all_tasks_done:
        while _jobs.unfinished_tasks:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            _jobs.all_tasks_done.wait(left)
    if _plot_errors:
        raise _plot_errors.pop(0)


def _ensure_worker() -> None:
    # One daemon thread for every chart: queuing costs the training thread microseconds,
    # where starting a thread per fit waits for it to be scheduled. Exit waits for the queue.
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="autolog-importance-plots", daemon=True)
            _worker.start()
            atexit.unregister(_drain_at_exit)
            atexit.register(_drain_at_exit)


def _work() -> None:
    while True:
        job = _jobs.get()
        try:
            _plot(*job)
        finally:
            _jobs.task_done()


def _drain_at_exit() -> None:
    try:
        wait_for_plots(EXIT_WAIT_S)
    except Exception:
        pass  # reported already; exit must go on


def _plot(integration: str, run: Any, kind: str, values: dict[str, float]) -> None:
    try:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            _log.debug("autolog: matplotlib is not installed; the feature importance chart is skipped")
            return
        run.log_bytes(_bar_chart(Figure, FigureCanvasAgg, kind, values), f"feature_importance_{kind}.png")
    except Exception as exc:
        try:
            report(integration, exc)
        except Exception as strict:  # AUTOLOG_STRICT: hand it to wait_for_plots, a thread cannot raise to the test
            _plot_errors.append(strict)


def _bar_chart(Figure: Any, Canvas: Any, kind: str, values: dict[str, float]) -> bytes:
    # The object API (no pyplot): no global figure state, safe beside a user's own plots.
    top = list(values.items())[:TOP_FEATURES][::-1]
    fig = Figure(figsize=(7, max(2.5, 0.3 * len(top) + 1.2)), dpi=100)
    ax = fig.add_subplot()
    ax.barh([_short(name) for name, _ in top], [value for _, value in top], color="#4c72b0")
    ax.set_xlabel(f"importance ({kind})")
    ax.set_title(f"Feature importance: {kind} (top {len(top)})")
    fig.tight_layout()
    buf = io.BytesIO()
    Canvas(fig).print_png(buf)
    return buf.getvalue()


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def feature_names(names: Iterable[Any] | None, count: int) -> list[str]:
    """Feature names as strings, ``f0..f<n-1>`` when the framework has none."""
    listed = [str(n) for n in names] if names is not None else []
    return listed if len(listed) == count else [f"f{i}" for i in range(count)]
