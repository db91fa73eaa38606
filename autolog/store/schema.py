"""The SQLite schema of the embedded store and how connections are opened."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

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
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    created INTEGER NOT NULL, PRIMARY KEY (run_id, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifacts_by_blob ON artifacts(sha256);
"""


def connect(path: str, status_function) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with a long busy timeout (many processes share one store)."""
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 60000")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":  # e.g. a filesystem without shared memory: still correct, slower
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    # Status of a RUNNING run depends on whether its process still lives; SQL sees it too.
    conn.create_function("run_status", 4, status_function, deterministic=False)
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables once; safe to call from several processes at the same time."""
    conn.executescript(
        "BEGIN IMMEDIATE;" + SCHEMA
        + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
    )
