"""Read side of the SQLite store: runs, searches, metric histories and artifacts."""

from __future__ import annotations

import gc
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from autolog import process
from autolog.errors import ArtifactNotFound, InvalidArgument, InvalidFilter, InvalidType, RunNotFound
from autolog.store import pending, series
from autolog.store.artifacts import check_stored, safe_artifact_path
from autolog.store.base import Artifact, Experiment, Metric, MetricPoint, Run
from autolog.store.query import compile_filter, compile_order_by

if TYPE_CHECKING:
    from autolog.store.artifacts import BlobRepository


def _by_one_metric(order_by: Sequence[str] | str | None) -> tuple[str, str] | None:
    """``(key, "ASC"|"DESC")`` when ``order_by`` is one plain ``metrics.<key> [ASC|DESC]``, else None."""
    items = [order_by] if isinstance(order_by, str) else list(order_by or [])
    if len(items) != 1 or not isinstance(items[0], str):
        return None
    found = _ONE_METRIC.fullmatch(items[0].strip())
    if found is None:
        return None
    return found.group(1), (found.group(2) or "ASC").upper()


_ONE_METRIC = re.compile(r"metrics\.([A-Za-z0-9_/.\-]+)(?:\s+(ASC|DESC|asc|desc))?")
_WHOLE_TABLES_FROM = 2_000  # runs found: above this, params/tags/metrics are read table by table

_RUN_COLUMNS = (
    # Only a RUNNING run's status needs its process probed: the others skip the Python call.
    "r.id, r.name, r.experiment_id, e.name,"
    " CASE r.status WHEN 'RUNNING' THEN run_status(r.status, r.host, r.pid, r.proc_start) ELSE r.status END,"
    " r.lifecycle, r.parent_id, r.start_time, r.end_time, r.user, r.source, r.host, r.pid"
)


class RunReader:
    """Mixin with every read query; the class using it provides ``_conn`` and ``blobs``."""

    if TYPE_CHECKING:  # provided by SQLiteStore and Housekeeping
        root: str
        blobs: BlobRepository

        def _conn(self) -> sqlite3.Connection: ...
        def resolve_run_id(self, run_id: str, include_deleted: bool = True) -> str: ...

    def _flush_own_writes(self) -> None:
        # Reads see what this process logged: points still queued are written first.
        from autolog.process import lock_timeout
        from autolog.store.writer import existing_writer

        writer = existing_writer(self.root)
        if writer is not None and writer.pending():
            writer.flush(timeout=lock_timeout())  # a locked or hung store must not hang every read

    # -- experiments -------------------------------------------------------------------
    def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""
        return [Experiment(*row) for row in self._conn().execute("SELECT id, name, created FROM experiments ORDER BY id")]

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        """Return an experiment by name or id; raise RunNotFound when there is none."""
        column = "id" if isinstance(name_or_id, int) and not isinstance(name_or_id, bool) else "name"
        if column == "name" and not isinstance(name_or_id, str):
            raise InvalidType(f"experiment must be a name (str) or an id (int), got {type(name_or_id).__name__} {name_or_id!r}")
        row = self._conn().execute(f"SELECT id, name, created FROM experiments WHERE {column} = ?", (name_or_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no experiment {name_or_id!r} in store {self.root}")
        return Experiment(*row)

    # -- runs --------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """Return the run with this id (or unique id prefix), params, tags and latest metrics included."""
        self._flush_own_writes()
        run_id = self.resolve_run_id(run_id)
        rows = self._conn().execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?", (run_id,)
        ).fetchall()
        return self._hydrate(rows)[0]

    def search_runs(
        self,
        experiment: str | int | Iterable[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int | None = None,
        lifecycle: str = "active",
    ) -> list[Run]:
        """Runs matching ``filter`` (see ``autolog.query``), sorted by ``order_by``.

        Args:
            experiment: a name, an id, a list of them, or None for every experiment.
            filter: e.g. ``"metrics.val_loss < 0.3 and params.model = 'xgb'"``.
            order_by: e.g. ``["metrics.val_loss", "attributes.start_time DESC"]``;
                default newest first.
            max_results: at most this many runs.
            lifecycle: "active" (default), "deleted" or "all".

        Raises:
            InvalidFilter: the filter or order_by is malformed (the message points at the token).
            InvalidType, InvalidArgument: max_results or lifecycle of the wrong type or out of range (named).
        """
        _check_search_arguments(filter, order_by, max_results, lifecycle)
        self._flush_own_writes()
        where, binds = compile_filter(filter)
        order, order_binds = compile_order_by(order_by)
        conditions = [where] if where else []
        if lifecycle != "all":
            conditions.append("r.lifecycle = ?")
            binds.append(lifecycle)
        if experiment is not None:
            wanted = [experiment] if isinstance(experiment, (str, int)) else list(experiment)
            ids = [self.get_experiment(x).id for x in wanted]
            conditions.append(f"r.experiment_id IN ({','.join('?' * len(ids))})")
            binds.extend(ids)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        top = _by_one_metric(order_by) if max_results is not None else None
        if top is not None and max_results is not None:
            # Top-N by one metric: walk the (key, value) index in order and stop after N; runs
            # without the value sort last, so when fewer than N have it the general query runs.
            key, direction = top
            inner = ("SELECT r.rowid FROM latest_metrics m JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id"
                     " WHERE m.key = ? AND m.value IS NOT NULL" + "".join(f" AND ({c})" for c in conditions)
                     + f" ORDER BY m.value {direction}, m.run_id LIMIT {int(max_results)}")
            found = self._conn().execute(
                f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.rowid IN ({inner})"
                f" ORDER BY {order}", [key, *binds, *order_binds]).fetchall()
            if len(found) == int(max_results):
                return self._hydrate(found)
        if max_results is not None:
            # Top-N: sort only the run ids, then read the columns of the N found (sorting
            # every run's full row made a top-10 of 20,000 runs five times slower).
            inner = "SELECT r.rowid FROM runs r JOIN experiments e ON e.id = r.experiment_id"
            inner += sql[sql.index(" WHERE "):] if conditions else ""
            inner += f" ORDER BY {order} LIMIT {int(max_results)}"
            sql = f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.rowid IN ({inner})"
            binds = binds + order_binds
        sql += f" ORDER BY {order}"
        with _gc_paused():
            return self._hydrate(self._conn().execute(sql, binds + order_binds).fetchall())

    def _hydrate(self, rows: list[tuple]) -> list[Run]:
        if not rows:
            return []
        conn = self._conn()
        ids = [row[0] for row in rows]
        if len(ids) > _WHOLE_TABLES_FROM:
            # Many runs: one scan of each table beats thousands of IN (...) lookups; rows of
            # runs not asked for are read and dropped.
            parts: list[tuple[str, list]] = [("", [])]
        else:
            parts = [(f" WHERE run_id IN ({','.join('?' * len(ids[i:i + 500]))})", ids[i:i + 500]) for i in range(0, len(ids), 500)]
        params = _texts_by_run(conn, "params", parts, ids)
        tags = _texts_by_run(conn, "tags", parts, ids)
        make: Callable[..., Run] = Run  # row holds the columns before params and tags
        runs = [make(*row, p, t) for row, p, t in zip(rows, params, tags)]
        by_id = dict(zip(ids, runs))
        for where, binds in parts:
            _add_latest_metrics(conn, where, binds, by_id)
        return runs

    def child_runs(self, run_id: str) -> list[Run]:
        """The runs whose parent is ``run_id``, oldest first."""
        rows = self._conn().execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id"
            " WHERE r.parent_id = ? AND r.lifecycle = 'active' ORDER BY r.start_time, r.rowid",
            (self.resolve_run_id(run_id),),
        ).fetchall()
        return self._hydrate(rows)

    # -- metrics -----------------------------------------------------------------------
    def metric_keys(self, run_id: str) -> list[str]:
        """Names of every metric the run has logged, sorted."""
        self._flush_own_writes()
        run_id = self.resolve_run_id(run_id)
        rows = self._conn().execute("SELECT key FROM latest_metrics WHERE run_id = ? ORDER BY key", (run_id,))
        return [r[0] for r in rows]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged point of ``key`` as ``(step, value, timestamp_ms)``, in step order.

        Points with the same step keep the order they were logged in (k-fold loops and
        resumed runs repeat steps; nothing is dropped).
        """
        if not isinstance(key, str):
            raise InvalidType(f"key must be a metric name (str), got {type(key).__name__} {key!r:.80}")
        self._flush_own_writes()
        run_id = self.resolve_run_id(run_id)
        rows = self._conn().execute(
            "SELECT c.points FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id"
            " WHERE c.run_id = ? AND k.key = ? ORDER BY c.id",
            (run_id, key),
        ).fetchall()
        points: list[MetricPoint] = []
        for (blob,) in rows:
            points.extend(MetricPoint(step, value, int(t * 1000)) for step, value, t in series.decode(blob))
        points.sort(key=lambda p: p.step)
        return points

    def count_points(self, run_id: str | None = None) -> int:
        """How many metric points are stored (for one run or in all)."""
        self._flush_own_writes()
        if run_id is None:
            return self._conn().execute("SELECT COALESCE(SUM(n), 0) FROM metric_chunks").fetchone()[0]
        run_id = self.resolve_run_id(run_id)
        return self._conn().execute("SELECT COALESCE(SUM(n), 0) FROM metric_chunks WHERE run_id = ?", (run_id,)).fetchone()[0]

    # -- artifacts ---------------------------------------------------------------------
    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        """Artifacts of a run (optionally only those under the folder ``prefix``), sorted by path."""
        run_id = self.resolve_run_id(run_id)
        pending.wait_for(run_id)  # a model this process is still saving in the background
        rows = self._conn().execute("SELECT path, size, sha256 FROM artifacts WHERE run_id = ? ORDER BY path", (run_id,)).fetchall()
        for path, _size, sha in rows:  # the store may have been edited by someone else
            check_stored(run_id, path, sha)
        if prefix:
            folder = safe_artifact_path(prefix, "prefix").rstrip("/") + "/"
            rows = [r for r in rows if r[0].startswith(folder) or r[0] == folder[:-1]]
        return [Artifact(*r) for r in rows]

    def find_artifact(self, sha256: str, exclude_run: str | None = None) -> tuple[str, str] | None:
        """``(run_id, path)`` of the newest artifact with content ``sha256`` (not of ``exclude_run``), or None."""
        row = self._conn().execute(
            "SELECT run_id, path FROM artifacts WHERE sha256 = ? AND run_id != ? ORDER BY created DESC LIMIT 1",
            (sha256, exclude_run or "")).fetchone()
        return (row[0], row[1]) if row is not None else None

    def artifact_file(self, run_id: str, path: str) -> str:
        """Local path of the stored content of artifact ``path`` (read-only; do not modify)."""
        run_id = self.resolve_run_id(run_id)
        pending.wait_for(run_id)
        path = safe_artifact_path(path)
        row = self._conn().execute("SELECT sha256 FROM artifacts WHERE run_id = ? AND path = ?", (run_id, path)).fetchone()
        if row is None:
            raise RunNotFound(f"run {run_id[:8]} has no artifact {path!r}")
        return self._existing_blob(run_id, path, row[0])

    def _existing_blob(self, run_id: str, path: str, sha256: str) -> str:
        check_stored(run_id, path, sha256)
        blob = self.blobs.blob_path(sha256)
        if not os.path.isfile(blob):
            raise ArtifactNotFound(f"artifact {path!r} of run {run_id} has lost its stored content (blob {sha256[:12]}... is missing from {self.blobs.root})")
        return blob

    def download_artifacts(self, run_id: str, path: str = "", dst: str = ".") -> str:
        """Copy an artifact file, or every artifact under a folder, into ``dst``; return the copy's path."""
        arts = self.list_artifacts(run_id, path) if path else self.list_artifacts(run_id)
        if not arts:
            raise RunNotFound(f"run {run_id[:8]} has no artifact {path!r}")
        run_id = self.resolve_run_id(run_id)
        # Every record is checked before the first file is written.
        sources = [(self._existing_blob(run_id, art.path, art.sha256), art) for art in arts]
        for _blob, art in sources:
            self.blobs.copy_out(art.sha256, os.path.join(dst, *art.path.split("/")))
        return os.path.join(dst, *path.split("/")) if path else dst


_gc_lock = threading.Lock()
_gc_pauses = 0  # searches building their result right now, in any thread
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a search builds its result.

    A full search of 20,000 runs creates some 150,000 objects (runs, their dicts, Metric
    records), none of them garbage; every 700 of them the collector ran, and twice per
    search it walked every object of the process, the caller's previous result included:
    a third of the search's CPU time. Paused, the new objects are examined once, as the
    young generation, at the next collection. Pauses of several threads nest; the
    collector comes back on only if it was on when the first began.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _gc_after_fork() -> None:
    # Forked while another thread's search had the collector paused: that search is not in the child.
    global _gc_lock, _gc_pauses
    _gc_lock = threading.Lock()
    if _gc_pauses and _gc_was_enabled:
        gc.enable()
    _gc_pauses = 0


process.on_fork_child("search gc pause", _gc_after_fork)


def _texts_by_run(conn: sqlite3.Connection, table: str, parts: list[tuple[str, list]], ids: list[str]) -> list[dict[str, str]]:
    """The params or tags of each run of ``ids`` (its own dict, keys in key order), read in ``parts``."""
    found: dict[str, str] = {}
    try:
        # One JSON object per run, all parsed by one json.loads call: a Python tuple per
        # (run, key, value) row cost twice as much. Key order is the primary key's, as row by row.
        for where, binds in parts:
            found.update(conn.execute(f"SELECT run_id, json_group_object(key, value) FROM {table}{where} GROUP BY run_id", binds).fetchall())
    except sqlite3.OperationalError:
        # An SQLite without JSON functions, or a value JSON cannot hold (a BLOB another tool wrote).
        texts: dict[str, dict[str, str]] = {}
        for where, binds in parts:
            for run_id, key, value in conn.execute(f"SELECT run_id, key, value FROM {table}{where} ORDER BY run_id, key", binds):
                texts.setdefault(run_id, {})[key] = value
        return [texts.get(run_id) or {} for run_id in ids]
    if not found:
        return [{} for _ in ids]
    # Parsed in the runs' order: each run's dicts lie next to each other in memory, which the
    # garbage collector's later passes over the result read faster.
    return json.loads("[" + ",".join([found.get(run_id, "{}") for run_id in ids]) + "]")


def _add_latest_metrics(conn: sqlite3.Connection, where: str, binds: list, by_id: dict[str, Run]) -> None:
    # Values stay SQL REALs: SQLite's JSON writes 15 significant digits, which is not exact.
    nan = float("nan")
    current = None
    values: dict[str, float] = {}
    latest: dict[str, Metric] = {}
    for run_id, key, value, step, ts in conn.execute(
            f"SELECT run_id, key, value, step, timestamp FROM latest_metrics{where} ORDER BY run_id, key", binds):
        if run_id != current:  # rows come grouped by run (the primary key's order)
            current = run_id
            run = by_id.get(run_id)
            values, latest = (run.metrics, run.latest) if run is not None else ({}, {})
        if value is None:  # NaN is stored as NULL
            value = nan
        values[key] = value
        latest[key] = Metric(key, value, step, ts)


def _check_search_arguments(filter: object, order_by: object, max_results: object, lifecycle: object) -> None:
    if filter is not None and not isinstance(filter, str):
        raise InvalidFilter(f"filter must be a str, got {type(filter).__name__} {filter!r:.80}")
    if order_by is not None and not isinstance(order_by, str) and not (
        isinstance(order_by, (list, tuple)) and all(isinstance(x, str) for x in order_by)
    ):
        raise InvalidFilter(f"order_by must be a str or a list of str, got {type(order_by).__name__} {order_by!r:.80}")
    if max_results is not None:
        if isinstance(max_results, bool) or not isinstance(max_results, int):
            raise InvalidType(f"max_results must be an int, got {type(max_results).__name__} {max_results!r:.80}")
        if max_results < 0:
            raise InvalidArgument(f"max_results must be a non-negative int, got {max_results!r}")
    if lifecycle not in ("active", "deleted", "all"):
        raise InvalidArgument(f"lifecycle must be 'active', 'deleted' or 'all', got {lifecycle!r:.80}")
