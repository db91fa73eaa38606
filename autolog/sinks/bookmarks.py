"""Per-run sync bookmarks: what of each local run already reached a remote target.

They live in the local store's own SQLite file, in tables of their own, keyed by the
target (a tracking URI without credentials) so one store can mirror to several servers.
For every run they record the remote run id, the attributes last pushed, how many points
of each metric history went through (histories only grow, in commit order), a digest of
every param, tag and artifact pushed, and the metric batch in flight. A sync writes the
in-flight batch down before sending it and clears it in the same transaction that
advances the counts, so a sync killed in between knows exactly which batch to check.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_runs (
    target TEXT NOT NULL, run_id TEXT NOT NULL, remote_id TEXT NOT NULL,
    name TEXT, status TEXT, end_time INTEGER, pending TEXT, updated INTEGER NOT NULL,
    PRIMARY KEY (target, run_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_metrics (
    target TEXT NOT NULL, run_id TEXT NOT NULL, key TEXT NOT NULL, pushed INTEGER NOT NULL,
    PRIMARY KEY (target, run_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_items (
    target TEXT NOT NULL, run_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    digest TEXT NOT NULL, PRIMARY KEY (target, run_id, kind, key)) WITHOUT ROWID;
"""

# kinds of sync_items rows (STATE: key "lifecycle", digest "deleted" while the remote twin is deleted)
PARAM, TAG, ARTIFACT, STATE = "param", "tag", "artifact", "state"


def digest(text: str) -> str:
    """A short fingerprint of a param or tag value (values themselves are not copied)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class RunMark:
    """The bookmark of one run at one target."""

    remote_id: str
    name: str | None = None
    status: str | None = None
    end_time: int | None = None
    # key -> [count before the batch, count after it, last (step, value, timestamp) sent]
    pending: dict[str, list] = field(default_factory=dict)


class Bookmarks:
    """Read and advance the sync bookmarks of ``store`` for one ``target``."""

    def __init__(self, store, target: str) -> None:
        self.store = store
        self.target = target
        conn = store.connection()
        conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")

    def _rows(self, sql: str, *binds) -> list[tuple]:
        return self.store.connection().execute(sql, (self.target, *binds)).fetchall()

    # -- reading -----------------------------------------------------------------------
    def run(self, run_id: str) -> RunMark | None:
        """The bookmark of ``run_id``, or None when it never reached this target."""
        rows = self._rows("SELECT remote_id, name, status, end_time, pending FROM sync_runs WHERE target = ? AND run_id = ?", run_id)
        if not rows:
            return None
        remote_id, name, status, end_time, pending = rows[0]
        return RunMark(remote_id, name, status, end_time, json.loads(pending) if pending else {})

    def metric_counts(self, run_id: str) -> dict[str, int]:
        """How many points of each metric history were pushed."""
        return dict(self._rows("SELECT key, pushed FROM sync_metrics WHERE target = ? AND run_id = ?", run_id))

    def items(self, run_id: str, kind: str) -> dict[str, str]:
        """Digests of the params, tags or artifacts (``kind``) pushed, by key or path."""
        return dict(self._rows("SELECT key, digest FROM sync_items WHERE target = ? AND run_id = ? AND kind = ?", run_id, kind))

    def remote_ids(self) -> dict[str, str]:
        """Every bookmarked local run id and the id of its remote twin."""
        return dict(self._rows("SELECT run_id, remote_id FROM sync_runs WHERE target = ?"))

    def deleted(self) -> set[str]:
        """Local run ids whose remote twin this store deleted (local rm or gc passed on)."""
        return {r[0] for r in self._rows("SELECT run_id FROM sync_items WHERE target = ? AND kind = ? AND digest = 'deleted'", STATE)}

    # -- writing -----------------------------------------------------------------------
    def set_deleted(self, run_id: str, deleted: bool) -> None:
        """Record whether the remote twin of ``run_id`` is deleted."""
        with self.store.transaction() as tx:
            if deleted:
                tx.execute("INSERT OR REPLACE INTO sync_items VALUES (?, ?, ?, 'lifecycle', 'deleted')", (self.target, run_id, STATE))
            else:
                tx.execute("DELETE FROM sync_items WHERE target = ? AND run_id = ? AND kind = ?", (self.target, run_id, STATE))

    def rewind(self, run_id: str, counts: dict[str, int], missing: Iterable[tuple[str, str]], attributes: bool) -> None:
        """After a check of the server: lower metric counts to what it holds, forget items it lacks,
        and forget the attributes (name, status, end time) when they differ, so the next push resends them."""
        with self.store.transaction() as tx:
            tx.executemany("UPDATE sync_metrics SET pushed = ? WHERE target = ? AND run_id = ? AND key = ?",
                           [(n, self.target, run_id, key) for key, n in counts.items()])
            tx.executemany("DELETE FROM sync_items WHERE target = ? AND run_id = ? AND kind = ? AND key = ?",
                           [(self.target, run_id, kind, key) for kind, key in missing])
            if attributes:
                tx.execute("UPDATE sync_runs SET name = NULL, status = NULL, end_time = NULL WHERE target = ? AND run_id = ?",
                           (self.target, run_id))

    def start(self, run_id: str, remote_id: str, items: Iterable[tuple[str, str, str]] = ()) -> None:
        """Record the remote run that mirrors ``run_id``, forgetting any older bookmark."""
        with self.store.transaction() as tx:
            self._forget(tx, run_id)
            tx.execute("INSERT INTO sync_runs(target, run_id, remote_id, updated) VALUES (?, ?, ?, ?)",
                       (self.target, run_id, remote_id, _now_ms()))
            tx.executemany("INSERT OR REPLACE INTO sync_items VALUES (?, ?, ?, ?, ?)",
                           [(self.target, run_id, kind, key, dig) for kind, key, dig in items])

    def set_pending(self, run_id: str, pending: dict[str, list]) -> None:
        """Write down the metric batch about to be sent (see the module docstring)."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE sync_runs SET pending = ? WHERE target = ? AND run_id = ?",
                       (json.dumps(pending, allow_nan=True) if pending else None, self.target, run_id))

    def commit(self, run_id: str, counts: dict[str, int], items: Iterable[tuple[str, str, str]] = (),
               removed: Iterable[tuple[str, str]] = ()) -> None:
        """Advance metric counts and item digests after a batch went through; clear the pending batch."""
        with self.store.transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO sync_metrics VALUES (?, ?, ?, ?)",
                           [(self.target, run_id, key, n) for key, n in counts.items()])
            tx.executemany("INSERT OR REPLACE INTO sync_items VALUES (?, ?, ?, ?, ?)",
                           [(self.target, run_id, kind, key, dig) for kind, key, dig in items])
            tx.executemany("DELETE FROM sync_items WHERE target = ? AND run_id = ? AND kind = ? AND key = ?",
                           [(self.target, run_id, kind, key) for kind, key in removed])
            tx.execute("UPDATE sync_runs SET pending = NULL, updated = ? WHERE target = ? AND run_id = ?",
                       (_now_ms(), self.target, run_id))

    def set_attributes(self, run_id: str, name: str, status: str, end_time: int | None) -> None:
        """Record the run name, status and end time last pushed."""
        with self.store.transaction() as tx:
            tx.execute("UPDATE sync_runs SET name = ?, status = ?, end_time = ?, updated = ? WHERE target = ? AND run_id = ?",
                       (name, status, end_time, _now_ms(), self.target, run_id))

    def forget(self, run_id: str) -> None:
        """Drop every bookmark of ``run_id`` at this target (the remote run is gone)."""
        with self.store.transaction() as tx:
            self._forget(tx, run_id)

    def _forget(self, tx, run_id: str) -> None:
        for table in ("sync_runs", "sync_metrics", "sync_items"):
            tx.execute(f"DELETE FROM {table} WHERE target = ? AND run_id = ?", (self.target, run_id))


def _now_ms() -> int:
    return int(time.time() * 1000)
