"""Keeping the server's copy honest: local deletions passed on, and checks of what the server holds.

* ``autolog rm`` (a soft delete, children included) deletes the remote twins at the next
  sync; ``autolog rm --restore`` restores them; runs removed for good by ``autolog gc``
  have their twins deleted by the next sync that is not limited to an experiment or runs.
  Deleted runs are never pushed again, so the children of a deleted parent stay deleted.
* The bookmarks say what the server holds. Every sync checks one of them (one request);
  when that run is gone (a server whose database was reset), or with ``--verify``, every
  bookmarked run is checked: what the server lacks is forgotten and pushed again.
"""

from __future__ import annotations

from autolog.sinks.bookmarks import ARTIFACT, PARAM, TAG, digest
from autolog.sinks.mlflow_errors import classify

RESET_WARNING = ("the MLflow server {target} no longer holds runs it received before (was its database reset?); "
                 "checking every run and pushing again what is missing")


def _not_found(exc: BaseException) -> bool:
    return str(getattr(exc, "error_code", "") or "") == "RESOURCE_DOES_NOT_EXIST"


def restore(pusher, runs) -> None:
    """Restore the remote twins of selected (active) runs whose twins this store had deleted."""
    deleted = pusher.marks.deleted()
    for run in runs:
        if run.id not in deleted:
            continue
        mark = pusher.marks.run(run.id)
        try:
            pusher.client.restore_run(mark.remote_id)
        except Exception as exc:
            if not _not_found(exc):
                raise classify(exc, pusher.target, f"restoring run {run.id[:8]}") from None
            pusher.marks.forget(run.id)  # gone from the server for good: pushed again from scratch
        else:
            pusher.marks.set_deleted(run.id, False)
        pusher.report.restored += 1
        pusher.report.requests += 1


def delete(pusher, experiment: str | None, run_ids: set[str] | None) -> None:
    """Delete the remote twins of runs deleted (or removed by gc) in the local store."""
    local = {rid: (life, exp) for rid, life, exp in pusher.store.connection().execute(
        "SELECT r.id, r.lifecycle, e.name FROM runs r JOIN experiments e ON e.id = r.experiment_id")}
    deleted = pusher.marks.deleted()
    unlimited = experiment is None and run_ids is None
    for run_id, remote_id in pusher.marks.remote_ids().items():
        life, exp = local.get(run_id, (None, None))
        if life is None:
            if not unlimited:
                continue  # removed by gc: its experiment is unknown, so only a full sync passes it on
        elif life != "deleted" or run_id in deleted:
            continue
        elif (experiment is not None and exp != experiment) or (run_ids is not None and run_id not in run_ids):
            continue
        try:
            pusher.client.delete_run(remote_id)
        except Exception as exc:
            if not _not_found(exc):
                raise classify(exc, pusher.target, f"deleting run {run_id[:8]}") from None
        pusher.report.requests += 1
        pusher.report.deleted += 1
        if life is None:
            pusher.marks.forget(run_id)
        else:
            pusher.marks.set_deleted(run_id, True)


def spot_check(pusher, runs) -> bool:
    """Whether the server still holds the most recently synced of ``runs`` (one read, like the first check, not counted)."""
    marks = [(m.remote_id, r) for r in runs if (m := pusher.marks.run(r.id)) is not None]
    if not marks:
        return True
    remote_id, run = max(marks, key=lambda pair: pair[1].start_time)
    try:
        pusher.client.get_run(remote_id)
    except Exception as exc:
        if _not_found(exc):
            return False
        raise classify(exc, pusher.target, f"checking run {run.id[:8]}") from None
    return True


def verify(pusher, runs) -> None:
    """Compare every bookmarked run with the server; forget what it lacks so the push resends it."""
    for run in runs:
        mark = pusher.marks.run(run.id)
        if mark is None:
            continue
        try:
            _verify_run(pusher, run, mark)
        except Exception as exc:
            if not _not_found(exc):
                raise classify(exc, pusher.target, f"checking run {run.id[:8]}") from None
            pusher.marks.forget(run.id)  # the twin is gone: created again by the push
            pusher.report.repaired += 1


def _verify_run(pusher, run, mark) -> None:
    client = pusher.client
    remote = client.get_run(mark.remote_id)
    pusher.report.requests += 1
    if remote.info.lifecycle_stage != "active":
        return  # deleted on the server: the push mirrors it again (or it stays deleted if deleted here)
    counts = {}
    for key, pushed in pusher.marks.metric_counts(run.id).items():
        held = len(client.get_metric_history(mark.remote_id, key)) if key in remote.data.metrics else 0
        pusher.report.requests += 1
        if held < pushed:  # points go in commit order, so what is missing is the end of the history
            counts[key] = held
    missing = [(PARAM, k) for k, d in pusher.marks.items(run.id, PARAM).items() if digest(remote.data.params.get(k, "\0")) != d]
    missing += [(TAG, k) for k, d in pusher.marks.items(run.id, TAG).items() if digest(remote.data.tags.get(k, "\0")) != d]
    files = _remote_files(client, mark.remote_id)
    missing += [(ARTIFACT, path) for path in pusher.marks.items(run.id, ARTIFACT) if path not in files]
    attributes = (remote.info.run_name, remote.info.status, remote.info.end_time) != (mark.name, mark.status, mark.end_time)
    if counts or missing or attributes:
        pusher.marks.rewind(run.id, counts, missing, attributes)
        pusher.report.repaired += 1


def _remote_files(client, remote_id: str, path: str | None = None) -> set[str]:
    found: set[str] = set()
    for info in client.list_artifacts(remote_id, path):
        found |= _remote_files(client, remote_id, info.path) if info.is_dir else {info.path}
    return found
