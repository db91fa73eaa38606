"""Small pieces the boosting engine and its framework tables share.

Call arguments by position or name, the callback list we add to, params tidied from
float32 text, feature names, the metric directions of the frameworks' built-in eval
metrics, and the feature-importance artifacts: ``feature_importance.json`` always, the
PNG chart only with ``log_importance_plot=True``, drawn by one background worker
(matplotlib costs ~1 s to import and render; the training thread only queues the job).
:func:`wait_for_plots` waits for queued charts, and so does interpreter exit (up to
:data:`EXIT_WAIT_S`).
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from autolog import process
from autolog.reporting import report

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

TOP_FEATURES = 20
# How long interpreter exit waits for charts still being drawn.
EXIT_WAIT_S = 30.0
# Directions of the frameworks' built-in eval metrics (names as XGBoost and LightGBM print
# them, without an "@k" suffix). A metric not listed (a custom feval) gets no goal: the
# direction is recorded where it is known, never guessed from a name.
LOWER_BETTER = frozenset({
    "rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "mlogloss", "merror", "poisson-nloglik", "gamma-nloglik",
    "cox-nloglik", "gamma-deviance", "tweedie-nloglik", "aft-nloglik", "l1", "l2", "quantile", "huber", "fair", "poisson",
    "gamma", "gamma_deviance", "tweedie", "binary_logloss", "binary_error", "multi_logloss", "multi_error", "cross_entropy",
    "cross_entropy_lambda", "kullback_leibler",
})
HIGHER_BETTER = frozenset({"auc", "aucpr", "pre", "ndcg", "map", "average_precision", "auc_mu", "interval-regression-accuracy"})


# -- call arguments -------------------------------------------------------------------------
def argument(call: Any, position: int | None, name: str, default: Any = None) -> Any:
    """The value of a parameter passed positionally at ``position`` or by ``name``."""
    return call.argument(position, name, default)


def set_argument(call: Any, position: int | None, name: str, value: Any) -> None:
    """Replace a parameter's value in the call, wherever the user passed it."""
    if position is not None and len(call.args) > position:
        args = list(call.args)
        args[position] = value
        call.args = tuple(args)
    else:
        call.kwargs[name] = value


def with_callback(callbacks: Any, ours: Any) -> list:
    """A new list: ours, then the user's callbacks (never mutated, never replaced).

    Ours comes first because XGBoost calls ``after_iteration`` through ``any()``: a callback
    listed after one that says "stop" (the user's ``EarlyStopping``) never sees that round.
    LightGBM sorts callbacks by their ``order``, so the position does not matter there.
    """
    if callbacks is None:
        return [ours]
    if isinstance(callbacks, (list, tuple)):
        return [ours, *callbacks]
    return [ours, callbacks]


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


def callable_names(value: Any) -> Any:
    """Functions (one or a list; LightGBM's wrappers around them too) as their qualified names, else ``value``.

    ``LGBMModel.fit(eval_metric=f)`` reaches ``train`` as ``[_EvalFunctionWrapper]``: its
    repr says nothing, the user's function name does.
    """
    from autolog.patching.params import stringify

    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(callable(v) for v in items):
        return value
    return ",".join(stringify(getattr(v, "func", v)) for v in items)


# -- params ------------------------------------------------------------------------------
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


def csr_digest(matrix: Any) -> str:
    """A 16-hex digest of a scipy CSR matrix's content (values, indices, row pointers, shape)."""
    import hashlib

    digest = hashlib.sha256(repr(matrix.shape).encode())
    for part in (matrix.data, matrix.indices, matrix.indptr):
        digest.update(memoryview(part).cast("B"))
    return digest.hexdigest()[:16]


def metric_goal(metric: str) -> str | None:
    """``"min"``/``"max"`` for a built-in eval metric name (``ndcg@5`` as ``ndcg``), else None."""
    base = metric.split("@", 1)[0]
    if base in HIGHER_BETTER:
        return "max"
    if base in LOWER_BETTER:
        return "min"
    return None


# -- feature importances ------------------------------------------------------------------
def feature_names(names: Iterable[Any] | None, count: int) -> list[str]:
    """Feature names as strings, ``f0..f<n-1>`` when the framework has none."""
    listed = [str(n) for n in names] if names is not None else []
    return listed if len(listed) == count else [f"f{i}" for i in range(count)]


_jobs: queue.Queue = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()
_plot_errors: list[BaseException] = []


def log_importances(integration: str, run: ActiveRun, importances: dict[str, dict[str, float]], plot: bool = False,
                    chart: str = "gain", artifact_file: str = "feature_importance.json") -> None:
    """Store every importance type as one JSON artifact; with ``plot``, queue a chart of ``chart``'s top features."""
    importances = {kind: dict(sorted(values.items(), key=lambda kv: -kv[1])) for kind, values in importances.items() if values}
    if not importances:
        return
    run.log_dict(importances, artifact_file)
    if plot:
        kind = chart if chart in importances else next(iter(importances))
        _ensure_worker()
        _jobs.put((integration, run, kind, importances[kind]))


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


def _work() -> None:
    while True:
        job = _jobs.get()
        try:
            if job is None:  # stop (process exit)
                return
            _plot(*job)
        finally:
            _jobs.task_done()


def _stop_at_exit() -> None:
    # Charts still queued are drawn within the exit budget, then the worker stops.
    global _worker
    deadline = process.exit_deadline()
    try:
        wait_for_plots(EXIT_WAIT_S if deadline is None else max(0.0, min(EXIT_WAIT_S, deadline - time.monotonic())))
    except Exception:
        pass  # reported already; exit must go on
    worker = _worker
    if worker is not None and worker.is_alive():
        _jobs.put(None)
        worker.join(timeout=1.0)
    _worker = None


def _reset_in_child() -> None:
    # The parent's queued charts are the parent's to draw; a child starts its worker when it plots.
    global _jobs, _worker, _worker_lock
    _jobs, _worker, _worker_lock = queue.Queue(), None, threading.Lock()


process.on_exit("plot worker", _stop_at_exit, process.FINISH_CAPTURES + 1)
process.on_fork_child("plot worker", _reset_in_child)


def _plot(integration: str, run: ActiveRun, kind: str, values: dict[str, float]) -> None:
    try:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            import logging  # only here: importing logging costs every autolog() milliseconds

            logging.getLogger("autolog").debug("autolog: matplotlib is not installed; the feature importance chart is skipped")
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
