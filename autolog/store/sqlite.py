"""The embedded default store: one SQLite file (WAL) plus a folder of artifact blobs.

Several processes may log into one store at once: every write is one short
``BEGIN IMMEDIATE`` transaction and waits on the busy timeout instead of failing.
Metric histories are stored as compact chunks (see ``series.py``) with the latest
value of every key kept in its own table, so searches never decode histories.

Opening never takes the write lock when the schema is already there, so readers
(``autolog ls``, searches) never wait for writers. A folder that cannot be written is
opened read-only: reads work, writes raise :class:`~autolog.errors.ReadOnlyStore`.

Reads live in ``reader.py`` and deletion/gc in ``housekeeping.py``; this module keeps the
connections and the whole write path together (about 400 lines), because every write must
go through the same transaction, busy-timeout and redaction rules.
"""

from __future__ import annotations

import errno
import getpass
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from autolog import env, process, secrets, validation
from autolog.errors import ArtifactNotFound, InvalidName, InvalidPath, InvalidType, ParamConflict, ReadOnlyStore, StoreNotFound
from autolog.store import series, writer
from autolog.store.artifacts import BlobRepository, safe_artifact_path
from autolog.store.base import Artifact, Experiment, PointRow, Run
from autolog.store.housekeeping import Housekeeping
from autolog.store.liveness import HOST, effective_status, process_start_time
from autolog.store.reader import RunReader
from autolog.store.schema import connect, create_schema, schema_current

DB_NAME = "runs.db"
DEFAULT_EXPERIMENT = env.DEFAULT_EXPERIMENT


def _now_ms() -> int:
    return int(time.time() * 1000)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _writable(root: str, db_path: str) -> bool:
    # access() answers EROFS for a read-only mount even to root.
    return os.access(root, os.W_OK) and (not os.path.exists(db_path) or os.access(db_path, os.W_OK))


class SQLiteStore(Housekeeping, RunReader):
    """A run store in a folder: ``runs.db`` and ``blobs/``.

    Usable as a context manager: ``with open_store(path) as store:`` closes every
    thread's connection at the end (the store object stays usable and reconnects).
    """

    def __init__(self, root: str, *, create: bool = True) -> None:
        """Open the store in ``root``; with ``create=False`` a folder without a store raises StoreNotFound."""
        if not isinstance(root, str) and not hasattr(root, "__fspath__"):
            raise InvalidType(f"store path must be a str or os.PathLike, got {type(root).__name__} {root!r}")
        root = os.fspath(root)
        if "\x00" in root:
            raise InvalidName(f"store path must not contain NUL characters, got {root!r}")
        if root.startswith("sqlite:///"):
            root = os.path.dirname(root[len("sqlite:///"):]) or "."
        elif root.startswith("file://"):
            root = root[len("file://"):]
        self.root = os.path.abspath(os.path.expanduser(root))
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise InvalidPath(f"store path {root!r} exists and is not a folder")
        self.db_path = os.path.join(self.root, DB_NAME)
        if not os.path.isfile(self.db_path):
            if not create:
                raise StoreNotFound(f"no autolog store at {self.root} (no {DB_NAME} there); check --store or ${env.AUTOLOG_URI}")
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                raise ReadOnlyStore(f"cannot create a store at {self.root}: {exc.strerror}") from exc
        self.read_only = not _writable(self.root, self.db_path)
        if self.read_only and not os.path.isfile(self.db_path):
            raise ReadOnlyStore(f"cannot create a store in the read-only folder {self.root}")
        self.blobs = BlobRepository(os.path.join(self.root, "blobs"), read_only=self.read_only)
        self._local = threading.local()
        self._conns: list[tuple[int, weakref.ref, sqlite3.Connection]] = []  # (pid, thread, conn) for close()
        self._conns_lock = threading.Lock()
        self._generation = 0
        self._key_ids: dict[str, int] = {}
        self._pid = os.getpid()
        self._proc_start = process_start_time()
        conn = self._conn()
        # A read first: an existing store is opened without the write lock.
        if not schema_current(conn):
            if self.read_only:
                raise StoreNotFound(f"{self.db_path} holds no autolog store (or an older one) and cannot be written to create it")
            create_schema(conn)
        self._identity = _identity(self.db_path)
        self._next_check = 0.0
        self._vanished = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.root!r}{', read-only' if self.read_only else ''})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        pid = os.getpid()
        if conn is None or local.key != (pid, self._generation):
            conn = connect(self.db_path, effective_status, read_only=self.read_only)
            local.conn, local.key = conn, (pid, self._generation)
            local.busy_ms = None  # connect() set its own busy timeout
            with self._conns_lock:
                kept = []
                for entry in self._conns:
                    if entry[0] == pid and entry[1]() is None:
                        entry[2].close()  # its thread ended: nobody can use it any more
                    elif entry[0] == pid:
                        kept.append(entry)
                kept.append((pid, weakref.ref(threading.current_thread()), conn))
                self._conns = kept
        return conn

    def _check_identity(self) -> None:
        # The store folder or runs.db deleted (or replaced) under a live writer: SQLite keeps
        # writing to the unlinked file and everything is lost. Say so once, naming the path.
        if self._vanished or _identity(self.db_path) == self._identity:
            return
        self._vanished = True
        from autolog.reporting import warn_once

        warn_once(f"store-vanished:{self.db_path}", f"autolog: the store {self.db_path} was deleted or replaced while this process"
                  " writes to it; what it logs from now on goes to the old, unreachable file and is lost")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to ``runs.db``, for tables kept next to the runs (sync bookmarks)."""
        return self._conn()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``) on this thread's connection: commits on success, rolls back on error.

        Raises:
            ReadOnlyStore: the store is read-only.
        """
        return self._tx()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise ReadOnlyStore(f"store {self.root} is read-only (a read-only folder or mount): it can be read but not written")
        now = time.monotonic()
        if now >= self._next_check:  # once a second at most: one stat, never per point
            self._next_check = now + 1.0
            self._check_identity()
        conn = self._conn()
        # How long this thread may wait for another process's write lock: AUTOLOG_LOCK_TIMEOUT on
        # the training thread, longer on the writer thread, never past the exit deadline.
        busy_ms = process.busy_timeout_ms()
        if busy_ms != getattr(self._local, "busy_ms", None) or process.exit_deadline() is not None:
            conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            self._local.busy_ms = busy_ms
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
        """Write this process's queued points, then close every thread's connection.

        The store stays usable: the next call in any thread opens a new connection.
        """
        self._flush_own_writes()
        writer.close_writer(self.root)  # stops this store's writer thread; the next write starts a new one
        pid = os.getpid()
        with self._conns_lock:
            conns, self._conns = self._conns, []
            self._generation += 1
        for owner, _thread, conn in conns:
            if owner == pid:  # a connection inherited through fork belongs to the parent
                try:
                    conn.close()
                except sqlite3.Error:
                    pass

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
        clean_tags = secrets.redact_mapping(validation.checked_tags(tags or {}))
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

    def create_child_runs(self, parent_run_id: str, children: Sequence[tuple[str, dict[str, Any], dict[str, Any], dict[str, float]]],
                          status: str = "FINISHED") -> list[str]:
        """Insert ended child runs ``(name, tags, params, metrics at step 0)`` of a parent in one transaction.

        For results known only once a job is over (a parameter search's candidates): the
        children take the parent's experiment, user, source and process. Returns their ids.
        """
        status = validation.check_status(status)
        rows = []
        for name, tags, params, metrics in children:
            rows.append((
                os.urandom(16).hex(), validation.check_name(name, "run name"),
                secrets.redact_mapping(validation.checked_tags(tags)),
                secrets.redact_mapping(validation.checked_params(params)),
                {validation.check_key(k): float(v) for k, v in metrics.items()},
            ))
        key_ids = self._key_ids_for(k for row in rows for k in row[4])
        now = _now_ms()
        with self._tx() as tx:
            for run_id, name, tags, params, metrics in rows:
                tx.execute(
                    "INSERT INTO runs(id, experiment_id, name, status, parent_id, start_time, end_time, user, source, host, pid, proc_start)"
                    " SELECT ?, experiment_id, ?, ?, id, ?, ?, user, source, host, pid, proc_start FROM runs WHERE id = ?",
                    (run_id, name, status, now, now, parent_run_id),
                )
                tx.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", [(run_id, k, v) for k, v in tags.items()])
                tx.executemany("INSERT OR IGNORE INTO params VALUES (?, ?, ?)", [(run_id, k, v) for k, v in params.items()])
                tx.executemany("INSERT INTO metric_chunks(run_id, key_id, n, points) VALUES (?, ?, 1, ?)",
                               [(run_id, key_ids[k], series.encode([(0, v, now / 1000)])) for k, v in metrics.items()])
                tx.executemany("INSERT OR REPLACE INTO latest_metrics VALUES (?, ?, ?, 0, ?)",
                               [(run_id, k, None if v != v else v, now) for k, v in metrics.items()])
        return [row[0] for row in rows]

    def set_run_name(self, run_id: str, name: str) -> None:
        """Rename a run."""
        validation.check_name(name, "run name")
        with self._tx() as tx:
            tx.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Write params once: re-logging a key with another value raises ParamConflict."""
        checked = validation.checked_params(params)  # a record the API or ActiveRun checked passes as it is
        if not checked:
            return
        clean = secrets.redact_mapping(checked)  # whoever logs them: the user, an integration, the MLflow plugin
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
        clean = secrets.redact_mapping(validation.checked_tags(tags))  # checked once, wherever it entered
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

    def write_series(self, chunks: Sequence[tuple[str, str, series.Points]]) -> None:
        """Write chunks ``(run_id, key, points)`` in one transaction (points: see ``series.Points``).

        Each chunk becomes one compact row; the latest value of each key (highest step,
        the last logged among equal steps) is upserted for searches.
        """
        rows = []
        latest = []
        for run_id, key, points in chunks:
            blob, (step, value, t) = series.encode_with_latest(points)
            latest.append((run_id, key, None if value != value else value, step, int(t * 1000)))
            rows.append((run_id, key, series.count(points), blob))
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
        return self._record_artifact(run_id, path, sha, size, lambda: self.blobs.put_file(local_path))

    def log_artifact_bytes(self, run_id: str, data: bytes, path: str) -> Artifact:
        """Store in-memory ``data`` as ``path`` inside the run."""
        path = safe_artifact_path(path)
        sha, size = self.blobs.put_bytes(data)
        return self._record_artifact(run_id, path, sha, size, lambda: self.blobs.put_bytes(data))

    def _record_artifact(self, run_id: str, path: str, sha: str, size: int, put_again) -> Artifact:
        parts = path.split("/")
        folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
        clash_sql = "SELECT path FROM artifacts WHERE run_id = ? AND ((path >= ? AND path < ?)"
        clash_sql += f" OR path IN ({','.join('?' * len(folders))}))" if folders else ")"
        with self._tx() as tx:
            # 'd' and 'd/x.json' cannot both exist: they would clash on download.
            clash = tx.execute(clash_sql + " LIMIT 1", (run_id, path + "/", path + "0", *folders)).fetchone()
            if clash is not None:
                raise InvalidPath(f"artifact_path {path!r} clashes with the artifact {clash[0]!r} of run {run_id[:8]}: a path cannot be a file and a folder")
            # gc deletes a blob only inside its own write transaction, after re-checking that no
            # row references it; this check runs inside ours, so either gc sees our row or we
            # see its deletion and put the content back before the row commits.
            if not os.path.exists(self.blobs.blob_path(sha)):
                sha, size = put_again()
            tx.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?)", (run_id, path, sha, size, _now_ms()))
        return Artifact(path, size, sha)

    def delete_artifact(self, run_id: str, path: str) -> None:
        """Forget an artifact path of a run (its blob goes at the next gc if unshared)."""
        with self._tx() as tx:
            tx.execute("DELETE FROM artifacts WHERE run_id = ? AND path = ?", (run_id, safe_artifact_path(path)))

    def touch_runs(self, run_ids: Iterable[str]) -> None:
        """Re-own RUNNING runs after a fork so the child is seen alive."""
        with self._tx() as tx:
            tx.executemany("UPDATE runs SET host = ?, pid = ?, proc_start = ? WHERE id = ?", [(HOST, os.getpid(), process_start_time(), r) for r in run_ids])
