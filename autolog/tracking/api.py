"""The fluent tracking API: the active-run stack, start_run/end_run and the log_* calls.

The active run is kept per thread and per asyncio task with ``contextvars``: a fit in a
worker thread never logs into the main thread's run by accident. ``log_metric`` is the
hot path: it validates cheaply and appends to the store's writer queue.

Only this process ends the runs it started: at exit (``autolog.process``) the runs it
left open end FINISHED (FAILED after an uncaught exception); a forked child never ends
its parent's runs. With no active run, ``log_*`` calls go to the run that
``set_implicit_run_provider``'s provider names (the run lifecycle: right after an
autologged fit, its run), else to a new run.

Its size (a little over 400 lines) is the public fluent surface itself, two dozen small
functions with their docstrings; checks live in ``autolog.validation`` and each run's
work in ``ActiveRun``.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autolog import env, process, validation
from autolog.errors import InvalidState, InvalidType, StoreLocked
from autolog.store import series
from autolog.store.writer import flush_all, writer_for

if TYPE_CHECKING:
    from autolog.store.base import Artifact, Experiment
    from autolog.store.sqlite import SQLiteStore
    from autolog.tracking.run import ActiveRun

_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar("autolog_run_stack", default=())
_current: contextvars.ContextVar[ActiveRun | None] = contextvars.ContextVar("autolog_active_run", default=None)

_state_lock = threading.RLock()
_store_uri: str | None = None
_stores: dict[str, SQLiteStore] = {}
_experiment: str | None = None
_open_runs: dict[str, ActiveRun] = {}
_pending_params: dict[str, str] = {}
_last_run: ActiveRun | None = None

# Called with (run, options) after a run is created: environment capture, system metrics.
run_start_hooks: list[Callable[[ActiveRun, dict], None]] = []
# Names the run log_* calls go to when none is active (set by the run lifecycle), or None.
_implicit_provider: Callable[[], ActiveRun | None] | None = None

_time = time.time
_pack = series.POINT.pack
_MIN_STEP, _MAX_STEP = -validation.MAX_STEP, validation.MAX_STEP  # globals: no attribute lookup or negation per point


# -- stores and experiments -------------------------------------------------------------
def open_store(uri: str | os.PathLike | None = None, *, create: bool = True) -> SQLiteStore:
    """Open (creating if needed) the store at ``uri``; default ``$AUTOLOG_URI``, else the discovered one.

    The discovered store is the first ``autolog-runs`` found walking up to the git root,
    else ``autolog-runs`` at the git root (see ``autolog.store.discovery``). With
    ``create=False`` a folder holding no store raises StoreNotFound instead of becoming one.
    Usable as ``with open_store(path) as store:`` (closes its connections at the end).
    """
    if uri is not None and not isinstance(uri, (str, os.PathLike)):
        raise InvalidType(f"store uri must be a str or os.PathLike, got {type(uri).__name__} {uri!r}")
    # No argument: the store set_store() chose, else the default.
    path = os.fspath(uri) if uri is not None else (_store_uri or env.store_uri())
    if not path.strip():
        raise validation.InvalidName("store uri must not be empty")
    key = os.path.abspath(os.path.expanduser(path))
    with _state_lock:
        store = _stores.get(key)
        if store is None:
            from autolog.store.sqlite import SQLiteStore


            store = _stores[key] = SQLiteStore(path, create=create)
        return store


def set_store(uri: str | os.PathLike) -> SQLiteStore:
    """Make ``uri`` the store new runs are written to and return it."""
    global _store_uri
    if uri is None:  # None would silently mean the default store
        raise InvalidType("set_store needs a store path or URI, got None")
    store = open_store(uri)
    _store_uri = store.root
    return store


def get_store() -> SQLiteStore:
    """The store new runs go to (``set_store``, else ``$AUTOLOG_URI``, else the discovered ``autolog-runs``)."""
    return open_store(_store_uri)


def set_experiment(name: str) -> Experiment:
    """Make ``name`` the experiment new runs belong to (created on first use).

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: ``name`` is empty or too long.
    """
    global _experiment
    validation.check_name(name, "experiment")
    exp = get_store().get_or_create_experiment(name)
    _experiment = name
    return exp


def current_experiment() -> str:
    """Name of the experiment new runs go to."""
    return _experiment or os.environ.get("AUTOLOG_EXPERIMENT") or env.DEFAULT_EXPERIMENT


# -- the run stack -----------------------------------------------------------------------
def _push(run: ActiveRun) -> None:
    _stack.set(_stack.get() + (run,))
    _current.set(run)


def _remove(run: ActiveRun) -> None:
    global _last_run
    _open_runs.pop(run.id, None)
    _last_run = run
    stack = _stack.get()
    if run in stack:
        stack = tuple(r for r in stack if r is not run)
        _stack.set(stack)
        _current.set(stack[-1] if stack else None)


def active_run() -> ActiveRun | None:
    """The run ``log_*`` calls go to in this thread/task, or None."""
    return _current.get()


def last_run() -> ActiveRun | None:
    """The run most recently created by a fit, or ended, in this process."""
    return _last_run


def set_last_run(run: ActiveRun) -> None:
    """Make ``run`` what ``last_run()`` returns (the run lifecycle calls it after a fit)."""
    global _last_run
    _last_run = run


def set_implicit_run_provider(provider: Callable[[], ActiveRun | None] | None) -> None:
    """Let ``provider()`` name the run that ``log_*`` calls with no active run go to (None: a new run)."""
    global _implicit_provider
    _implicit_provider = provider


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    tags: dict[str, Any] | None = None,
    nested: bool = False,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    capture_env: bool | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active run; use it as a context manager.

    Args:
        name: run name; default ``run-<month><day>-<time>``.
        experiment: experiment name; default the one from ``set_experiment``.
        tags: tags set at creation.
        nested: start a child of the active run instead of failing when one is active.
        run_id: resume this existing run instead of creating one.
        parent_run_id: explicit parent (implies nesting).
        capture_env: capture git/environment/hardware in the background (default on).
        log_system_metrics: sample CPU/memory/GPU as ``system/...`` metrics (default on).

    Raises:
        InvalidState: a run is active and ``nested`` is False.
        TypeError/ValueError: a bad name, experiment or tag, before anything is written.
    """
    active = _current.get()
    if active is not None and active.program_run:
        nested = True  # under `autolog run`, the script's own runs are children of the program's run
    if active is not None and not nested and parent_run_id is None and run_id is None:
        raise InvalidState(f"run {active.name!r} ({active.id[:8]}) is already active; end it first or pass nested=True")
    if name is not None:
        validation.check_name(name, "name")
    if experiment is not None:
        validation.check_name(experiment, "experiment")
    if tags is not None and not isinstance(tags, dict):
        raise InvalidType(f"tags must be a dict, got {type(tags).__name__}")
    store = get_store()
    try:
        if run_id is not None:
            record = store.reopen_run(run_id)
        else:
            parent = parent_run_id or (active.id if nested and active is not None else None)
            exp = experiment or (active.experiment if nested and active is not None else current_experiment())
            record = store.create_run(exp, name or _default_name(), parent_run_id=parent, tags=tags, source=_source())
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise StoreLocked(
            f"could not start a run: another process held the write lock of store {store.root} for over "
            f"{process.lock_timeout():g} s (AUTOLOG_LOCK_TIMEOUT)"
        ) from exc
    from autolog.tracking.run import ActiveRun

    run = ActiveRun(store, record, writer_for(store.root, store.write_series), on_end=_remove)
    with _state_lock:
        _open_runs[run.id] = run
        pending = dict(_pending_params)
        _pending_params.clear()
    _push(run)
    if pending:
        run.log_params(pending)
    options = {"capture_env": capture_env, "log_system_metrics": log_system_metrics}
    for hook in list(run_start_hooks):
        hook(run, options)
    return run


def _default_name() -> str:
    from autolog.capture.notebook import name_prefix

    return f"{name_prefix() or 'run'}-{time.strftime('%m%d-%H%M%S')}"


def _source() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    from autolog.capture.notebook import in_notebook

    notebook = in_notebook()
    if path is None and getattr(main, "__spec__", None) is None and not notebook:
        from autolog.capture.environment import entry_from_argv  # before __main__ is set up (autolog run)

        entry = entry_from_argv(list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]))
        return os.path.basename(entry) if entry != "interactive" else entry
    return os.path.basename(path) if path else ("notebook" if notebook else "interactive")


def end_run(status: str = "FINISHED") -> None:
    """End the active run with ``status`` (FINISHED, FAILED or KILLED); no-op without one."""
    status = validation.check_status(status)
    run = _current.get()
    if run is not None:
        run.end(status)


def _implicit_run() -> ActiveRun:
    # Right after an autologged fit (no user run), log_* calls go into that fit's run (the
    # run lifecycle decides, see set_implicit_run_provider); otherwise, like MLflow, logging
    # with no active run starts one, ended at exit.
    provider = _implicit_provider
    fit = provider() if provider is not None else None
    if fit is not None and fit.store is get_store():
        return fit
    return start_run()


def pending_param(key: str, value: Any) -> None:
    """Log ``key`` into the active run, or into the next run started when none is active."""
    run = _current.get()
    if run is not None:
        run.log_param(key, value)
    else:
        validation.check_key(key, "param key")
        with _state_lock:
            _pending_params[key] = str(value)


# -- logging -----------------------------------------------------------------------------
def log_metric(key: str, value: float, step: int | None = None, goal: str | None = None) -> None:
    """Log one metric point into the active run (one is started if none is active).

    This is the hot path: it checks the key (cached), converts the value and appends
    to an in-memory queue that a background thread commits every ~200 ms. ``goal``
    ("min" or "max") records the metric's direction once (see ``set_metric_goal``).

    Raises:
        TypeError/ValueError: bad key, non-numeric value or non-integer step.
    """
    # An inlined copy of ActiveRun.log_metric: one Python call less per point.
    run = _current.get()
    if run is None:
        run = _run_for_metric(key, value, step)
    if goal is not None:
        run.set_metric_goal(key, goal)
    try:
        queue = run.queues.get(key)
    except TypeError:  # unhashable: let the key check name the argument
        queue = run.series(key)
    if queue is None:
        queue = run.series(key)
    if type(value) is not float:
        value = validation.metric_value(value, key)
    if step is None:
        counter = run.auto_steps.get(key)
        if counter is None:
            counter = run.auto_steps.setdefault(key, itertools.count())
        step = next(counter)  # atomic under the GIL: threads logging one key never share a step
    elif type(step) is not int or not _MIN_STEP <= step <= _MAX_STEP:
        step = validation.metric_step(step, key)
    queue += _pack(step, value, _time())  # one C call, atomic under the GIL (see store/writer.py)
    if len(queue) >= run.writer.pressure_len:
        run.writer.pressure(queue)


def _run_for_metric(key: Any, value: Any, step: Any) -> ActiveRun:
    # Not a lambda inside log_metric: a closure there would make its arguments cells,
    # allocated on every call of the hot path.
    return _run_for(lambda: validation.check_metric(key, value, step))


def set_metric_goal(key: str, goal: str) -> None:
    """Record in the active run whether lower ("min") or higher ("max") values of ``key`` are better.

    Written as the tag ``autolog.goal.<key>``; ``autolog compare`` stars the best run only
    for metrics whose goal is known, never guessing from the name.

    Raises:
        ValueError: ``goal`` is not "min" or "max", or ``key`` is not a valid metric key.
    """
    validation.check_goal(goal)
    _run_for(lambda: validation.check_key(key, "metric key")).set_metric_goal(key, goal)


def _run_for(check: Callable[[], Any]) -> ActiveRun:
    # With no active run, bad input must raise before the implicit run is written.
    run = _current.get()
    if run is None:
        check()
        run = _implicit_run()
    return run


def _checked() -> None:
    """The ``check`` of ``_run_for`` for a record validated before the run was chosen."""


def _check_file(path: Any, argument: str, folder: bool = False) -> None:
    from autolog.errors import ArtifactNotFound

    if not isinstance(path, (str, os.PathLike)):
        raise InvalidType(f"{argument} must be a path, got {type(path).__name__} {path!r}")
    if not (os.path.isdir(path) if folder else os.path.isfile(path)):
        raise ArtifactNotFound(f"{argument} {os.fspath(path)!r} is not an existing {'folder' if folder else 'file'}")


def _check_artifact_path(path: Any, argument: str) -> None:
    from autolog.store.artifacts import safe_artifact_path

    if path is not None:
        safe_artifact_path(path, argument)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log several metrics at one step; all are validated before any is logged."""
    _run_for(lambda: validation.check_metrics(metrics, step)).log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    """Log one param into the active run; params are written once."""
    validation.check_key(key, "param key")  # before {key: value}: an unhashable key must not raise TypeError
    record = validation.checked_params({key: value})
    _run_for(_checked).log_params(record)


def log_params(params: dict[str, Any]) -> None:
    """Log several params into the active run, all or nothing."""
    record = validation.checked_params(params)
    _run_for(_checked).log_params(record)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    validation.check_key(key, "tag key")  # before {key: value}: an unhashable key must not raise TypeError
    record = validation.checked_tags({key: value})
    _run_for(_checked).set_tags(record)


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active run."""
    record = validation.checked_tags(tags)
    _run_for(_checked).set_tags(record)


def log_artifact(local_path: str | os.PathLike, artifact_path: str | None = None) -> Artifact:
    """Copy a file into the active run's artifacts (under the folder ``artifact_path``)."""
    def check() -> None:
        _check_file(local_path, "local_path")
        _check_artifact_path(artifact_path, "artifact_path")

    return _run_for(check).log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[Artifact]:
    """Copy a folder's files into the active run's artifacts, keeping their structure."""
    def check() -> None:
        _check_file(local_dir, "local_dir", folder=True)
        _check_artifact_path(artifact_path, "artifact_path")

    return _run_for(check).log_artifacts(local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> Artifact:
    """Store ``text`` as an artifact of the active run."""
    def check() -> None:
        if not isinstance(text, str):
            raise InvalidType(f"text must be a str, got {type(text).__name__}")
        _check_artifact_path(artifact_file, "artifact_file")

    return _run_for(check).log_text(text, artifact_file)


def log_dict(data: Any, artifact_file: str) -> Artifact:
    """Store ``data`` as a JSON artifact of the active run."""
    return _run_for(lambda: _check_artifact_path(artifact_file, "artifact_file")).log_dict(data, artifact_file)


def flush(timeout: float | None = None) -> int:
    """Block until every metric point logged so far is durable; return points left unwritten."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0):
        raise InvalidType(f"timeout must be None or a number of seconds >= 0, got {type(timeout).__name__} {timeout!r:.80}")
    return flush_all(timeout)


def open_runs() -> list[ActiveRun]:
    """Runs this process started and has not ended, in any thread."""
    return list(_open_runs.values())


def close_stores() -> None:
    """Close every store this module opened (their writers stop); the next use opens them again."""
    with _state_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()


def _end_open_runs_at_exit() -> None:
    # Only runs this process started: a forked child leaving must not end its parent's runs.
    failed = getattr(sys, "last_value", None) is not None
    pid = os.getpid()
    for run in reversed(list(_open_runs.values())):
        if run.owner_pid != pid:
            continue
        try:
            run.end("FAILED" if failed else "FINISHED")
        except Exception as exc:  # exit must never hang or crash on our account
            print(f"autolog: could not end run {run.id[:8]} at exit: {exc}", file=sys.stderr)


def _reset_in_child() -> None:
    # The parent's runs stay usable for logging in the child (its points are the child's to
    # write), but they are not the child's to end; their cached queues are looked up again so
    # the child's writer thread starts only when the child logs.
    global _state_lock
    _state_lock = threading.RLock()
    for run in [*_open_runs.values(), *_stack.get(), _last_run]:
        if run is not None:
            run.forget_queues()
    _open_runs.clear()


process.on_exit("end runs", _end_open_runs_at_exit, process.END_RUNS)
process.on_fork_child("api", _reset_in_child)
