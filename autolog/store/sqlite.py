"""The embedded default store: one SQLite file (WAL) plus a folder of artifact blobs.

Several processes may log into one store at once: every write is one short
``BEGIN IMMEDIATE`` transaction and waits on the busy timeout instead of failing.
Metric histories are stored as compact chunks (see ``series.py``) with the latest
value of every key kept in its own table, so searches never decode histories.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from autolog import env, validation
from autolog.errors import ArtifactNotFound, ParamConflict, RunNotFound
from autolog.store import series, writer
from autolog.store.artifacts import BlobRepository, safe_artifact_path
from autolog.store.base import Artifact, Experiment, PointRow, Run
from autolog.store.liveness import HOST, effective_status, process_start_time
from autolog.store.reader import RunReader
from autolog.store.schema import connect, create_schema

DB_NAME = "runs.db"
DEFAULT_EXPERIMENT = env.DEFAULT_EXPERIMENT


def _now_ms() -> int:
    return int(time.time() * 1000)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


class SQLiteStore(RunReader):
    """A run store in a folder: ``runs.db`` and ``blobs/``."""

    def __init__(self, root: str) -> None:
        if not isinstance(root, str) and not hasattr(root, "__fspath__"):
            raise TypeError(f"store path must be a str or os.PathLike, got {type(root).__name__} {root!r}")
        root = os.fspath(root)
        if root.startswith("sqlite:///"):
            root = os.path.dirname(root[len("sqlite:///"):]) or "."
        elif root.startswith("file://"):
            root = root[len("file://"):]
        self.root = os.path.abspath(os.path.expanduser(root))
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ValueError(f"store path {root!r} exists and is not a folder")
        os.makedirs(self.root, exist_ok=True)
        self.db_path = os.path.join(self.root, DB_NAME)
        self.blobs = BlobRepository(os.path.join(self.root, "blobs"))
        self._local = threading.local()
        self._key_ids: dict[str, int] = {}
        self._pid = os.getpid()
        self._proc_start = process_start_time()
        create_schema(self._conn())

    def __repr__(self) -> str:
        return f"SQLiteStore({self.root!r})"

    # -- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = connect(self.db_path, effective_status)
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        exit_deadline = writer._exit_deadline
        if exit_deadline is not None:
            # The interpreter is exiting: a store locked by another process must not
            # hold it for the whole busy timeout, only for what is left of the exit budget.
            conn.execute(f"PRAGMA busy_timeout = {max(1, int((exit_deadline - time.monotonic()) * 1000))}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (disk full, I/O error); a failed COMMIT
            # leaves the transaction open. Either way the caller sees the original error.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- experiments -------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> Experiment:
        """Return the experiment called ``name``, creating it on first use."""
        validation.check_name(name, "experiment")
        conn = self._conn()
        row = conn.execute("SELECT id, name, created FROM experiments WHERE name = ?", (name,)).fetchone()
        if row is None:
            with self._tx() as tx:
                tx.execute("INSERT OR IGNORE INTO experiments(name, created) VALUES (?, ?)", (name, _now_ms()))
            row = conn.execute("SELECT id, name, created FROM experiments WHERE name = ?", (name,)).fetchone()
        return Experiment(*row)

    # -- runs --------------------------------------------------------------------------
    def create_run(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        name: str | None = None,
        *,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        source: str = "",
    ) -> Run:
        """Insert a RUNNING run owned by this process and return it."""
        # Every check comes before the experiment is created: bad input writes nothing.
        validation.check_name(experiment, "experiment")
        name = validation.check_name(name, "run name") if name is not None else f"run-{time.strftime('%m%d-%H%M%S')}"
        if parent_run_id is not None:
            parent_run_id = self.resolve_run_id(parent_run_id)
        clean_tags = {validation.check_key(k, "tag key"): validation.text_value(v, f"tag {k!r}", validation.MAX_TAG_LENGTH) for k, v in (tags or {}).items()}
        exp = self.get_or_create_experiment(experiment)
        run_id = os.urandom(16).hex()
        start = _now_ms()
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO runs(id, experiment_id, name, status, parent_id, start_time, user, source, host, pid, proc_start)"
                " VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?)",
                (run_id, exp.id, name, parent_run_id, start, _user(), source, HOST, os.getpid(), self._proc_start),
            )
            tx.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [(run_id, k, v) for k, v in clean_tags.items()])
        return Run(run_id, name, exp.id, exp.name, "RUNNING", "active", parent_run_id, start, None, _user(), source, HOST, os.getpid(), tags=clean_tags)

    def reopen_run(self, run_id: str) -> Run:
        """Mark an ended run RUNNING again, owned by this process (resuming a run)."""
        run_id = self.resolve_run_id(run_id)
        with self._tx() as tx:
            tx.execute(
                "UPDATE runs SET status = 'RUNNING', end_time = NULL, host = ?, pid = ?, proc_start = ? WHERE id = ?",
                (HOST, os.getpid(), self._proc_start, run_id),
            )
        return self.get_run(run_id)

    def end_run(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        """Set a run's final status and end time."""
        status = validation.check_status(status)
        with self._tx() as tx:
            tx.execute("UPDATE runs SET status = ?, end_time = ? WHERE id = ?", (status, end_time or _now_ms(), run_id))

    def set_run_name(self, run_id: str, name: str) -> None:
        """Rename a run."""
        validation.check_name(name, "run name")
        with self._tx() as tx:
            tx.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Write params once: re-logging a key with another value raises ParamConflict."""
        clean = {validation.check_key(k, "param key"): validation.text_value(v, f"param {k!r}", validation.MAX_PARAM_LENGTH) for k, v in params.items()}
        if not clean:
            return
        with self._tx() as tx:
            keys = list(clean)
            existing: dict[str, str] = {}
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                existing.update(tx.execute(f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})", (run_id, *part)).fetchall())
            for key, old in existing.items():
                if old != clean[key]:
                    raise ParamConflict(f"param {key!r} of run {run_id[:8]} is already {old!r}; cannot log {clean[key]!r} (params are written once)")
            tx.executemany("INSERT OR IGNORE INTO params VALUES (?, ?, ?)", [(run_id, k, v) for k, v in clean.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        """Set (or overwrite) tags of a run."""
        clean = {validation.check_key(k, "tag key"): validation.text_value(v, f"tag {k!r}", validation.MAX_TAG_LENGTH) for k, v in tags.items()}
        if clean:
            with self._tx() as tx:
                tx.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [(run_id, k, v) for k, v in clean.items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        with self._tx() as tx:
            tx.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key))

    # -- metrics -----------------------------------------------------------------------
    def _key_ids_for(self, keys: Iterable[str]) -> dict[str, int]:
        # Cached only after the commit, so a rolled-back insert never leaves a stale id.
        missing = [k for k in set(keys) if k not in self._key_ids]
        if missing:
            with self._tx() as tx:
                tx.executemany("INSERT OR IGNORE INTO metric_keys(key) VALUES (?)", [(k,) for k in missing])
                marks = ",".join("?" * len(missing))
                found = dict(tx.execute(f"SELECT key, id FROM metric_keys WHERE key IN ({marks})", missing).fetchall())
            self._key_ids.update(found)
        return self._key_ids

    def write_points(self, rows: Sequence[PointRow]) -> None:
        """Write ``(run_id, key, step, value, time_s)`` rows in one transaction."""
        groups: dict[tuple[str, str], list] = {}
        for run_id, key, step, value, t in rows:
            groups.setdefault((run_id, key), []).append((step, value, t))
        self.write_series([(r, k, points) for (r, k), points in groups.items()])

    def write_series(self, chunks: Sequence[tuple[str, str, Sequence[series.Point]]]) -> None:
        """Write chunks ``(run_id, key, [(step, value, time_s), ...])`` in one transaction.

        Each chunk becomes one compact row; the latest value of each key (highest step,
        the last logged among equal steps) is upserted for searches.
        """
        rows = []
        latest = []
        for run_id, key, points in chunks:
            step, value, t = series.latest(points)
            latest.append((run_id, key, None if value != value else value, step, int(t * 1000)))
            rows.append((run_id, key, len(points), series.encode(points)))
        key_ids = self._key_ids_for(row[1] for row in rows)
        with self._tx() as tx:
            tx.executemany(
                "INSERT INTO metric_chunks(run_id, key_id, n, points) VALUES (?, ?, ?, ?)",
                [(r, key_ids[k], n, blob) for r, k, n, blob in rows],
            )
            tx.executemany(
                "INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET"
                " value = excluded.value, step = excluded.step, timestamp = excluded.timestamp"
                " WHERE excluded.step >= latest_metrics.step",
                latest,
            )

    # -- artifacts ---------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str, path: str | None = None) -> Artifact:
        """Store a local file as ``path`` inside the run (content-addressed)."""
        local_path = os.fspath(local_path)
        if not os.path.isfile(local_path):
            raise ArtifactNotFound(f"local_path {local_path!r} is not an existing file")
        path = safe_artifact_path(path if path is not None else os.path.basename(local_path))
        sha, size = self.blobs.put_file(local_path)
        return self._record_artifact(run_id, path, sha, size)

    def log_artifact_bytes(self, run_id: str, data: bytes, path: str) -> Artifact:
        """Store in-memory ``data`` as ``path`` inside the run."""
        path = safe_artifact_path(path)
        sha, size = self.blobs.put_bytes(data)
        return self._record_artifact(run_id, path, sha, size)

    def _record_artifact(self, run_id: str, path: str, sha: str, size: int) -> Artifact:
        with self._tx() as tx:
            tx.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?)", (run_id, path, sha, size, _now_ms()))
        return Artifact(path, size, sha)

    def delete_artifact(self, run_id: str, path: str) -> None:
        """Forget an artifact path of a run (its blob goes at the next gc if unshared)."""
        with self._tx() as tx:
            tx.execute("DELETE FROM artifacts WHERE run_id = ? AND path = ?", (run_id, safe_artifact_path(path)))

    # -- lifecycle ---------------------------------------------------------------------
    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run: hidden from searches, restorable until ``gc()``."""
        run_id = self.resolve_run_id(run_id, include_deleted=True)
        with self._tx() as tx:
            tx.execute("UPDATE runs SET lifecycle = 'deleted' WHERE id = ?", (run_id,))

    def restore_run(self, run_id: str) -> None:
        """Undo ``delete_run``."""
        run_id = self.resolve_run_id(run_id, include_deleted=True)
        with self._tx() as tx:
            tx.execute("UPDATE runs SET lifecycle = 'active' WHERE id = ?", (run_id,))

    def gc(self) -> dict[str, int]:
        """Remove deleted runs for good and every blob no remaining artifact references."""
        with self._tx() as tx:
            dead = [r[0] for r in tx.execute("SELECT id FROM runs WHERE lifecycle = 'deleted'")]
            for table, column in (("params", "run_id"), ("tags", "run_id"), ("metric_chunks", "run_id"), ("latest_metrics", "run_id"), ("artifacts", "run_id"), ("runs", "id")):
                tx.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(r,) for r in dead])
            referenced = {r[0] for r in tx.execute("SELECT DISTINCT sha256 FROM artifacts")}
        files, freed = self.blobs.gc(referenced)
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"runs": len(dead), "blobs": files, "bytes": freed}

    def resolve_run_id(self, run_id: str, include_deleted: bool = True) -> str:
        """Return the full id of the run whose id is or starts with ``run_id``."""
        if not isinstance(run_id, str) or not run_id.strip():
            raise RunNotFound(f"run_id must be a non-empty str, got {run_id!r}")
        life = "" if include_deleted else " AND lifecycle = 'active'"
        conn = self._conn()
        if conn.execute(f"SELECT 1 FROM runs WHERE id = ?{life}", (run_id,)).fetchone():
            return run_id
        escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = conn.execute(f"SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\'{life} LIMIT 2", (escaped + "%",)).fetchall()
        if not rows:
            raise RunNotFound(f"no run with id {run_id!r} in store {self.root}")
        if len(rows) > 1:
            raise RunNotFound(f"run id prefix {run_id!r} is ambiguous; give more characters")
        return rows[0][0]

    def touch_runs(self, run_ids: Iterable[str]) -> None:
        """Re-own RUNNING runs after a fork so the child is seen alive."""
        with self._tx() as tx:
            tx.executemany("UPDATE runs SET host = ?, pid = ?, proc_start = ? WHERE id = ?", [(HOST, os.getpid(), process_start_time(), r) for r in run_ids])
