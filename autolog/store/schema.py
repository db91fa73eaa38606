"""The SQLite schema of the embedded store and how connections are opened."""

from __future__ import annotations

import os
import sqlite3
import time

SCHEMA_VERSION = 2  # 2: latest_by_key_value (top-N by a metric without a scan)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL, status TEXT NOT NULL, lifecycle TEXT NOT NULL DEFAULT 'active',
    parent_id TEXT, start_time INTEGER NOT NULL, end_time INTEGER,
    user TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0, proc_start REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, start_time);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metric_keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS metric_chunks (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, key_id INTEGER NOT NULL, n INTEGER NOT NULL,
    points BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_run_key ON metric_chunks(run_id, key_id, id);
CREATE TABLE IF NOT EXISTS latest_metrics (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latest_by_key_value ON latest_metrics(key, value, run_id);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    created INTEGER NOT NULL, PRIMARY KEY (run_id, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifacts_by_blob ON artifacts(sha256);
"""


def connect(path: str, status_function, *, read_only: bool = False, timeout: float = 60.0) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with a long busy timeout (many processes share one store).

    ``read_only`` opens with SQLite's ``mode=ro`` (a store on a read-only mount), falling
    back to ``immutable=1`` when even the shared-memory file of WAL cannot be created.
    """
    if read_only:
        conn = _connect_read_only(path, timeout)
    else:
        # The busy timeout is set by connect() itself, before the first pragma runs.
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        mode = _retry_busy(lambda: conn.execute("PRAGMA journal_mode").fetchone()[0], timeout)
        if mode.lower() != "wal":
            # Switching a new file to WAL takes an exclusive lock that SQLite does not wait
            # for: several processes opening one new store at once would see "database is
            # locked". Retry until the busy timeout instead.
            mode = _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0], timeout)
        if mode.lower() != "wal":  # e.g. a filesystem without shared memory: still correct, slower
            _retry_busy(lambda: conn.execute("PRAGMA journal_mode = DELETE"), timeout)
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    # Status of a RUNNING run depends on whether its process still lives; SQL sees it too.
    conn.create_function("run_status", 4, status_function, deterministic=False)
    return conn


def _connect_read_only(path: str, timeout: float) -> sqlite3.Connection:
    from urllib.parse import quote

    uri = "file:" + quote(os.path.abspath(path), safe="/")
    last: Exception | None = None
    for flags in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + flags, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:  # no -shm file and no right to create one
            conn.close()
            last = exc
    assert last is not None
    raise last


def _retry_busy(call, timeout: float):
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def schema_current(conn: sqlite3.Connection) -> bool:
    """Whether the file already holds this version of the schema (or a newer one); a read, no lock."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return True
    try:  # stores written before user_version was set keep their version in meta
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:
        return False
    return row is not None and int(row[0]) >= SCHEMA_VERSION


def create_schema(conn: sqlite3.Connection) -> None:
    """Create or upgrade the tables; safe to call from several processes at the same time.

    Callers check :func:`schema_current` first, so opening an existing store never takes
    the write lock (reads must not wait for writers).
    """
    conn.executescript(
        "BEGIN IMMEDIATE;" + SCHEMA
        + f"INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
        + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    )
