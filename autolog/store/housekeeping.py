"""Deleting, restoring and garbage-collecting runs and artifact blobs of the SQLite store.

How ``gc`` stays safe while other threads and processes log artifacts:

* A writer puts a blob file first, then records the artifact row inside a write
  transaction (``BEGIN IMMEDIATE``) that checks the blob file still exists and writes it
  again when it does not (``SQLiteStore._record_artifact``).
* ``gc`` lists blob files without a lock, then deletes them in batches, each inside its own
  write transaction that re-checks which of them a row references. A blob is unlinked
  only while gc holds the write lock and knows no row points to it.

SQLite serialises the two transactions. If the writer's commits first, gc sees its row and
keeps the blob; if gc's commits first, the writer sees the blob gone and puts it back
before its row commits. A deduplicating writer (same content already stored) is covered
the same way, so no clock or file mtime is involved and a freshly orphaned blob can be
collected at once. Only half-written uploads (``blobs/.incoming-*``) are judged by age:
they are removed once older than an hour, when their writer has certainly died.

Rows whose run no longer exists (written by a process that kept logging into a run that
was deleted and collected) are removed too.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from autolog.errors import RunNotFound

if TYPE_CHECKING:
    from autolog.store.artifacts import BlobRepository

# Tables whose rows belong to a run (column run_id).
RUN_TABLES = ("params", "tags", "metric_chunks", "latest_metrics", "artifacts")
_BATCH = 500


class Housekeeping:
    """Mixin for the store: soft delete and restore with child runs, gc, id prefixes."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        root: str
        blobs: BlobRepository

        def _conn(self) -> sqlite3.Connection: ...
        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    # -- lifecycle ---------------------------------------------------------------------
    def run_tree(self, run_id: str) -> list[str]:
        """The run and all its descendants (child runs, their children, ...), the run first."""
        run_id = self.resolve_run_id(run_id, include_deleted=True)
        rows = self._conn().execute(
            "WITH RECURSIVE tree(id, depth) AS (SELECT ?, 0 UNION SELECT r.id, t.depth + 1 FROM runs r JOIN tree t ON r.parent_id = t.id)"
            " SELECT id FROM tree ORDER BY depth, id", (run_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def running(self, run_ids: list[str]) -> list[str]:
        """Those of ``run_ids`` that are RUNNING with their process alive (or on another host)."""
        found = []
        for i in range(0, len(run_ids), _BATCH):
            part = run_ids[i : i + _BATCH]
            marks = ",".join("?" * len(part))
            found += [r[0] for r in self._conn().execute(
                f"SELECT id FROM runs WHERE id IN ({marks}) AND run_status(status, host, pid, proc_start) = 'RUNNING'", part)]
        return found

    def delete_run(self, run_id: str, children: bool = False) -> list[str]:
        """Soft-delete a run (with ``children=True`` also its descendants): hidden from searches, restorable until ``gc()``.

        The default deletes only the run, as MLflow does; ``autolog rm`` passes ``children=True``.

        Returns:
            The ids soft-deleted, the run first.
        """
        ids = self.run_tree(run_id) if children else [self.resolve_run_id(run_id, include_deleted=True)]
        with self._tx() as tx:
            tx.executemany("UPDATE runs SET lifecycle = 'deleted' WHERE id = ?", [(r,) for r in ids])
        return ids

    def restore_run(self, run_id: str, children: bool = False) -> list[str]:
        """Undo ``delete_run``: the run (with ``children=True`` also its deleted descendants) becomes active again.

        Returns:
            The ids restored, the run first.
        """
        tree = self.run_tree(run_id) if children else [self.resolve_run_id(run_id, include_deleted=True)]
        with self._tx() as tx:
            ids = [r for r in tree if tx.execute("SELECT 1 FROM runs WHERE id = ? AND lifecycle = 'deleted'", (r,)).fetchone()]
            tx.executemany("UPDATE runs SET lifecycle = 'active' WHERE id = ?", [(r,) for r in ids])
        return ids

    # -- gc ----------------------------------------------------------------------------
    def gc_plan(self) -> dict[str, Any]:
        """What ``gc()`` would remove now, without removing anything.

        Returns:
            ``{"runs": [(id, name)], "rows": int, "blobs": [(sha256, size)], "incoming": [(path, size)]}``:
            deleted runs, rows of deleted or missing runs, unreferenced blobs, abandoned uploads.
        """
        conn = self._conn()
        runs = conn.execute("SELECT id, name FROM runs WHERE lifecycle = 'deleted' ORDER BY start_time, rowid").fetchall()
        live = "SELECT id FROM runs WHERE lifecycle != 'deleted'"
        rows = sum(conn.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id NOT IN ({live})").fetchone()[0] for t in RUN_TABLES)
        keep = {r[0] for r in conn.execute(f"SELECT DISTINCT sha256 FROM artifacts WHERE run_id IN ({live})")}
        blobs = sorted((sha, size) for sha, size in self.blobs.list_blobs() if sha not in keep)
        return {"runs": runs, "rows": rows, "blobs": blobs, "incoming": self.blobs.stale_incoming()}

    def gc(self, dry_run: bool = False) -> dict[str, int]:
        """Remove deleted runs for good, rows of runs that no longer exist, unreferenced blobs
        and uploads abandoned for over an hour. Safe while other threads and processes log
        (see this module's docstring).

        Args:
            dry_run: only count what would be removed.

        Returns:
            ``{"runs", "rows", "blobs", "incoming", "bytes"}``: deleted runs, their and orphaned
            rows, blob files and temp files removed, and the bytes freed on disk.
        """
        if dry_run:
            plan = self.gc_plan()
            freed = sum(size for _, size in plan["blobs"]) + sum(size for _, size in plan["incoming"])
            return {"runs": len(plan["runs"]), "rows": plan["rows"], "blobs": len(plan["blobs"]), "incoming": len(plan["incoming"]), "bytes": freed}
        with self._tx() as tx:
            dead = [(r[0],) for r in tx.execute("SELECT id FROM runs WHERE lifecycle = 'deleted'")]
            tx.executemany("DELETE FROM runs WHERE id = ?", dead)
            # Also rows a process kept writing after its run was deleted and collected.
            rows = sum(tx.execute(f"DELETE FROM {t} WHERE run_id NOT IN (SELECT id FROM runs)").rowcount for t in RUN_TABLES)
        blobs, freed = self._collect_blobs()
        incoming = 0
        for path, size in self.blobs.stale_incoming():
            if _unlink(path):
                incoming += 1
                freed += size
        try:
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception:  # busy with other writers: the WAL shrinks at a later checkpoint
            pass
        return {"runs": len(dead), "rows": rows, "blobs": blobs, "incoming": incoming, "bytes": freed}

    def _collect_blobs(self) -> tuple[int, int]:
        candidates = [sha for sha, _size in self.blobs.list_blobs()]
        files = freed = 0
        for i in range(0, len(candidates), _BATCH):
            part = candidates[i : i + _BATCH]
            marks = ",".join("?" * len(part))
            # Short transactions: writers wait for one batch at most, never for the whole walk.
            with self._tx() as tx:
                used = {r[0] for r in tx.execute(f"SELECT DISTINCT sha256 FROM artifacts WHERE sha256 IN ({marks})", part)}
                for sha in part:
                    if sha not in used:
                        size = self.blobs.remove(sha)
                        if size is not None:
                            files += 1
                            freed += size
        return files, freed

    # -- ids ---------------------------------------------------------------------------
    def resolve_run_id(self, run_id: str, include_deleted: bool = True) -> str:
        """Return the full id of the run whose id is or starts with ``run_id``.

        Raises:
            RunNotFound: no run matches, or several do (the message lists them).
        """
        if not isinstance(run_id, str) or not run_id.strip():
            raise RunNotFound(f"run_id must be a non-empty str, got {run_id!r}")
        life = "" if include_deleted else " AND lifecycle = 'active'"
        conn = self._conn()
        if conn.execute(f"SELECT 1 FROM runs WHERE id = ?{life}", (run_id,)).fetchone():
            return run_id
        escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = conn.execute(f"SELECT id, name FROM runs WHERE id LIKE ? ESCAPE '\\'{life} ORDER BY id LIMIT 11", (escaped + "%",)).fetchall()
        if not rows:
            raise RunNotFound(f"no run with id {run_id!r} in store {self.root}")
        if len(rows) > 1:
            shown = ", ".join(f"{rid[:12]} ({name})" for rid, name in rows[:10]) + (", ..." if len(rows) > 10 else "")
            raise RunNotFound(f"run id prefix {run_id!r} is ambiguous: it matches {shown}; give more characters")
        return rows[0][0]


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False
