"""``ActiveRun``: a handle on one run that this process is logging into.

Integrations log through these methods so that a callback always writes into the
run it belongs to, whatever thread or context it is called from. Metric logging
only appends to the store's writer queue; params, tags and artifacts are written
synchronously because they are rare and their errors must reach the caller.

No call waits longer than ``AUTOLOG_LOCK_TIMEOUT`` for another process's lock: a param, tag
or in-memory artifact that could not be written in that time, and a run's end that could
not be recorded for any store error (locked, disk full), is handed to the writer thread,
which retries it in order; leaving ``with start_run()`` never raises a store error.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from autolog import validation
from autolog.errors import ArtifactNotFound, InvalidPath
from autolog.store import series
from autolog.store.artifacts import safe_artifact_path
from autolog.store.writer import RETRYABLE, BatchWriter

if TYPE_CHECKING:
    from autolog.store.base import Artifact, Run
    from autolog.store.sqlite import SQLiteStore

_time = time.time
_pack = series.POINT.pack
STEP_LIMIT = validation.MAX_STEP
_MIN_STEP = -STEP_LIMIT  # a global: no negation per point


class ActiveRun:
    """A run being logged by this process; also a context manager that ends it."""

    def __init__(self, store: SQLiteStore, run: Run, writer: BatchWriter, on_end: Callable[[ActiveRun], None] | None = None) -> None:
        self.store = store
        self.id = run.id
        self.name = run.name
        self.experiment_id = run.experiment_id
        self.experiment = run.experiment
        self.parent_run_id = run.parent_run_id
        # The hot path (this class and api.log_metric, its inlined copy) reads these three directly.
        self.writer = writer
        self.queues: dict[str, bytearray] = {}  # key -> the writer's queue of packed points for it
        # One counter per key: next() is atomic under the GIL, so threads never share a step.
        self.auto_steps: dict[str, Iterator[int]] = {}
        self._params: dict[str, str] = {}
        self._goals: dict[str, str] = {}  # metric key -> "min"/"max" already tagged
        # The run `autolog run` starts for a whole program: start_run() inside it nests.
        self.program_run = False
        self._end_hooks: list[Callable[[ActiveRun, str], None]] = []
        self._lock = threading.Lock()
        self.ended = False
        self.status = "RUNNING"
        # Called once after the run ended (the API drops it from the active-run stack).
        self.on_end = on_end
        # Only the process that started the run ends it at exit; a forked child never does.
        self.owner_pid = os.getpid()
        # Whether the run's end waits for its environment capture (fit runs do not).
        self.wait_for_capture = True
        # Per-model state of the autologged fits in this run, kept by the run lifecycle.
        self.fit_states: list[tuple[Any, dict[str, Any]]] = []
        self._logged_after_end = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name!r} id={self.id[:8]} status={self.status}>"

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        self.end(status)

    # -- reading back ------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """Alias of ``id``."""
        return self.id

    @property
    def info(self) -> Run:
        """The run as stored now (flushes first): ``.status``, ``.start_time``, ..."""
        return self.data()

    def data(self) -> Run:
        """Flush pending points and return the stored run with params, tags and metrics."""
        self.writer.flush()
        return self.store.get_run(self.id)

    params = property(lambda self: self.data().params, doc="Params as stored.")
    tags = property(lambda self: self.data().tags, doc="Tags as stored.")
    metrics = property(lambda self: self.data().metrics, doc="Latest metric values as stored.")
    start_time = property(lambda self: self.data().start_time, doc="Start time, ms since the epoch.")
    end_time = property(lambda self: self.data().end_time, doc="End time, ms since the epoch.")

    # -- logging -----------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int | None = None, goal: str | None = None) -> None:
        """Queue one metric point (``step`` None: the next step of this key, from 0).

        ``goal`` ("min" or "max") records the metric's direction once, as the tag
        ``autolog.goal.<key>``; comparisons star the best run only for metrics with a goal.
        """
        if goal is not None:
            self.set_metric_goal(key, goal)
        try:
            queue = self.queues.get(key)
        except TypeError:  # unhashable: let the key check name the argument
            queue = self.series(key)
        if queue is None:
            queue = self.series(key)
        if type(value) is not float:
            value = validation.metric_value(value, key)
        if step is None:
            counter = self.auto_steps.get(key)
            if counter is None:
                counter = self.auto_steps.setdefault(key, itertools.count())
            step = next(counter)
        elif type(step) is not int or not _MIN_STEP <= step <= STEP_LIMIT:
            # Out-of-range ints would only fail later, inside the writer thread.
            step = validation.metric_step(step, key)
        queue += _pack(step, value, _time())  # one C call, atomic under the GIL (see store/writer.py)
        if len(queue) >= self.writer.pressure_len:
            self.writer.pressure(queue)

    def set_metric_goal(self, key: str, goal: str) -> None:
        """Record whether lower ("min") or higher ("max") values of ``key`` are better (tag ``autolog.goal.<key>``)."""
        validation.check_key(key, "metric key")
        validation.check_goal(goal)
        if self._goals.get(key) != goal:
            self.store.set_tags(self.id, {validation.GOAL_TAG_PREFIX + key: goal})
            self._goals[key] = goal

    def log_timed_points(self, points: Iterable[tuple[str, int, float, float]]) -> None:
        """Queue ``(key, step, value, time_s)`` points noted earlier, each with its own time.

        For integrations that note values on a hot path and queue them later in bursts (the
        boosting engine): the same record as ``log_metric`` at the moment of each point. Steps
        and values come from the framework; a value that is not a number raises ``struct.error``
        before anything of that point is queued.
        """
        queues, touched = self.queues, set()
        for key, step, value, when in points:
            queue = queues.get(key)
            if queue is None:
                queue = self.series(key)
            queue += _pack(step, value, when)
            touched.add(key)
        pressure_len = self.writer.pressure_len
        for key in touched:
            if len(queues[key]) >= pressure_len:
                self.writer.pressure(queues[key])

    def series(self, key: str):
        """Validate ``key`` once and return the writer queue its points go to."""
        validation.check_key(key)
        queue = self.queues[key] = self.writer.series(self.id, key)
        return queue

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Queue several metrics at one step; all are validated before any is queued."""
        clean, step = validation.check_metrics(metrics, step)
        for key, value in clean:
            self.log_metric(key, value, step)

    def log_param(self, key: str, value: Any) -> None:
        """Write one param (written once: another value for the same key raises ParamConflict)."""
        self.log_params(validation.checked_params({validation.check_key(key, "param key"): value}))

    def log_params(self, params: dict[str, Any]) -> None:
        """Write several params in one transaction, all or nothing."""
        record = validation.checked_params(params)  # once: the store trusts the record
        self._store_call(f"params {_names(record)} of run {self.id[:8]}", self.store.log_params, self.id, record)
        self._params.update(record)

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (tags may change)."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags in one transaction."""
        record = validation.checked_tags(tags)  # once: the store trusts the record
        self._store_call(f"tags {_names(record)} of run {self.id[:8]}", self.store.set_tags, self.id, record)

    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> Artifact:
        """Store a file under ``artifact_path/`` (a folder inside the run; default: the top)."""
        local_path = _local(local_path, "local_path")
        if artifact_path is not None and not isinstance(artifact_path, str):
            raise validation.InvalidType(f"artifact_path must be a str folder inside the run, got {type(artifact_path).__name__} {artifact_path!r}")
        if not os.path.isfile(local_path):
            raise ArtifactNotFound(f"local_path {local_path!r} is not an existing file")
        name = os.path.basename(local_path)
        path = safe_artifact_path(f"{artifact_path}/{name}" if artifact_path else name)
        return self.store.log_artifact(self.id, local_path, path)

    def log_artifacts(self, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[Artifact]:
        """Store every file under ``local_dir``, keeping the folder structure."""
        local_dir = _local(local_dir, "local_dir")
        if not os.path.isdir(local_dir):
            raise ArtifactNotFound(f"local_dir {local_dir!r} is not an existing folder")
        if artifact_path is not None and not isinstance(artifact_path, str):
            raise validation.InvalidType(f"artifact_path must be a str folder inside the run, got {type(artifact_path).__name__} {artifact_path!r}")
        if artifact_path:
            safe_artifact_path(artifact_path)
        stored, skipped = [], []
        for folder, _dirs, names in os.walk(local_dir):
            for name in sorted(names):
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, local_dir).replace(os.sep, "/")
                if not os.path.isfile(full):  # a dangling symlink, a FIFO or a socket: no content to copy
                    skipped.append(rel)
                    continue
                path = safe_artifact_path(f"{artifact_path}/{rel}" if artifact_path else rel)
                stored.append(self.store.log_artifact(self.id, full, path))
        if skipped:
            from autolog.reporting import warn_once

            warn_once(f"log_artifacts:{local_dir}:{skipped}", f"autolog: log_artifacts skipped {len(skipped)} entries of {local_dir!r}"
                      f" that are not regular files (dangling symlinks, FIFOs, sockets): {', '.join(skipped)}")
        return stored

    def log_text(self, text: str, artifact_file: str) -> Artifact:
        """Store ``text`` as the artifact ``artifact_file`` (UTF-8)."""
        if not isinstance(text, str):
            raise validation.InvalidType(f"text must be a str, got {type(text).__name__}")
        path = _file_path(artifact_file)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise validation.InvalidName(f"text must be valid UTF-8 text: {exc}") from None
        return self._store_bytes(data, path)

    def log_dict(self, data: Any, artifact_file: str) -> Artifact:
        """Store ``data`` as a JSON artifact."""
        _file_path(artifact_file)
        import json

        try:  # e.g. {1: 2, "1": 3}: keys that cannot be sorted, or that would collide as JSON strings
            text = json.dumps(data, indent=2, sort_keys=True, default=str)
        except (TypeError, ValueError) as exc:
            raise validation.InvalidType(f"data cannot be stored as JSON: {exc}") from None
        return self.log_text(text, artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> Artifact:
        """Store raw bytes as an artifact."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise validation.InvalidType(f"data must be bytes, got {type(data).__name__}")
        return self._store_bytes(bytes(data), _file_path(artifact_file))

    def _store_bytes(self, data: bytes, path: str) -> Artifact:
        result: list[Artifact] = []

        def store() -> None:
            result.append(self.store.log_artifact_bytes(self.id, data, path))

        self._store_call(f"artifact {path!r} of run {self.id[:8]}", store)
        if result:
            return result[0]
        import hashlib

        from autolog.store.base import Artifact

        return Artifact(path, len(data), hashlib.sha256(data).hexdigest())  # stored once the store accepts writes

    def _store_call(self, what: str, call: Callable[..., Any], *args: Any, final: bool = False, any_error: bool = False) -> None:
        """Make a store call now, or hand it to the writer thread when the store is locked.

        Calls queue behind earlier deferred ones so that the store sees them in order.
        ``any_error``: defer on every store error (a run's end), not only on a lock timeout.
        """
        writer = self.writer
        bound = functools.partial(call, *args) if args else call
        if writer.has_deferred():
            writer.defer(what, bound, final)
            return
        try:
            bound()
        except RETRYABLE as exc:
            if not (any_error or _locked(exc)):
                raise
            writer.defer(what, bound, final, error=exc)

    def log_file_copy(self, writer: Callable[[str], Any], artifact_file: str) -> Artifact:
        """Let ``writer(path)`` write a file into a temp folder, then store it as ``artifact_file``."""
        artifact_file = _file_path(artifact_file)

        import tempfile

        with tempfile.TemporaryDirectory(prefix="autolog-") as tmp:
            path = os.path.join(tmp, os.path.basename(artifact_file))
            writer(path)
            return self.store.log_artifact(self.id, path, artifact_file)

    def add_end_hook(self, hook: Callable[[ActiveRun, str], None]) -> None:
        """Call ``hook(run, status)`` just before the run ends (uploads, samplers)."""
        self._end_hooks.append(hook)

    def flush(self) -> None:
        """Write every point queued so far; waits at most ``AUTOLOG_LOCK_TIMEOUT`` for a locked store."""
        self.writer.flush()

    def forget_queues(self) -> None:
        """Drop the cached writer queues (after a fork): the next point looks its queue up again."""
        self.queues.clear()

    def logged_after_end(self) -> None:
        """Note that points or updates went into this run after it ended (``settle`` re-ends it)."""
        if self.ended:
            self._logged_after_end = True

    def settle(self) -> None:
        """Re-end a run logged into after its end: same status, the end time of now."""
        if self._logged_after_end:
            self._logged_after_end = False
            self.writer.flush()
            self._record_end(self.status)

    # -- ending ------------------------------------------------------------------------
    def end(self, status: str = "FINISHED") -> None:
        """End the run: run end hooks, flush its points, record status and end time."""
        status = validation.check_status(status)
        with self._lock:
            if self.ended:
                return
            self.ended = True
        for hook in reversed(self._end_hooks):
            try:
                hook(self, status)
            except Exception as exc:  # an upload failing must not lose the run's status
                from autolog.reporting import report

                report("run-end", exc)
        self.writer.flush()
        self._record_end(status)
        # Points logged after the end (into a finished fit's run) re-register their queues.
        self.queues.clear()
        self.writer.forget_run(self.id)
        self.status = status
        if self.on_end is not None:
            self.on_end(self)

    def _record_end(self, status: str) -> None:
        # Never raises a store error: leaving `with start_run()` must let the user's own
        # exception through, and a full disk must not crash a finished training.
        end_time = int(time.time() * 1000)
        self._store_call(f"the end of run {self.id[:8]} ({status})", self.store.end_run, self.id, status, end_time, final=True, any_error=True)


def _names(data: dict) -> str:
    # Words for a warning; the keys are validated by the store call itself.
    return ", ".join(str(k) for k in list(data)[:20]) + (", ..." if len(data) > 20 else "")


def _locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _local(path: Any, argument: str) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        raise validation.InvalidType(f"{argument} must be a str or os.PathLike, got {type(path).__name__} {path!r:.80}") from None


def _file_path(artifact_file: Any) -> str:
    # A file name ending in '/' would later collide with a folder of the same name.
    if isinstance(artifact_file, str) and artifact_file.endswith(("/", "\\")):
        raise InvalidPath(f"artifact_file must name a file, not a folder: {artifact_file!r}")
    return safe_artifact_path(artifact_file, "artifact_file")
