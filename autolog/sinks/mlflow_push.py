"""Pushing local runs into an MLflow tracking server, one run at a time, resumably.

For each run: settle a batch left in flight by a killed sync, create (or find again)
the remote twin, send params, tags and new metric points in ``log_batch`` requests,
upload new artifacts, then set name, status and end time. The run's bookmark advances
after every request that went through, so nothing is sent twice.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator

from autolog import env, secrets
from autolog.errors import RunNotFound
from autolog.sinks import mlflow_batches as mb
from autolog.sinks.bookmarks import ARTIFACT, PARAM, TAG, Bookmarks, RunMark, digest
from autolog.sinks.mlflow_errors import RejectedValue, SyncError, SyncReport, classify, scrub

MLFLOW_PARAM_LIMIT = 6000  # longer param values are cut by the server (MLFLOW_TRUNCATE_LONG_VALUES)
_ENTITY_INDEX = re.compile(r"\b(metrics|params|tags)\[(\d+)\]")
_KINDS = {"metrics": mb.METRIC, "params": mb.PARAM, "tags": mb.TAG}

# Test hook: a callable run after a batch went through and before its bookmark is written.
after_batch_hook = None


class _RemoteRunGone(Exception):
    """The remote twin a bookmark points at was deleted on the server."""


def _label(run) -> str:
    return f"run {run.id[:8]} ({run.name})"


class Pusher:
    """Pushes runs of one store to one MLflow client, advancing bookmarks as requests succeed."""

    def __init__(self, client, store, target: str, report: SyncReport, bar=None) -> None:
        self.client = client
        self.store = store
        self.target = target
        self.report = report
        self.bar = bar
        self.marks = Bookmarks(store, target)
        self.experiments: dict[str, str] = {}
        self.mlmodels: dict[str, dict | None] = {}  # MLmodel digest -> parsed content
        self.delay = env.number(env.AUTOLOG_SYNC_BATCH_DELAY, 0.0)

    # -- planning ----------------------------------------------------------------------
    def new_points(self, run) -> int:
        """How many metric points of ``run`` the server has not seen (cheap: no decoding)."""
        pushed = self.marks.metric_counts(run.id)
        return sum(max(0, n - pushed.get(k, 0)) for k, n in mb.metric_counts(self.store, run.id).items())

    def push(self, run, parent_remote_id: str | None) -> str:
        """Bring the remote twin of ``run`` up to date and return its remote id."""
        self.report.checked += 1
        try:
            return self._push(run, parent_remote_id)
        except _RemoteRunGone:
            self.marks.forget(run.id)  # deleted on the server: mirror it again from scratch
            return self._push(run, parent_remote_id)

    def _push(self, run, parent_remote_id: str | None) -> str:
        mark = self.marks.run(run.id)
        if mark is not None and mark.pending:
            self._settle(run, mark)
        # The one redaction policy again: a store written with redaction off, or by an older
        # version, must not push credentials to a shared server (AUTOLOG_REDACT=0 opts out).
        tags = secrets.redact_mapping(mb.remote_tags(run, parent_remote_id))
        models = mb.model_history(self.store, run.id, mark.remote_id, self.mlmodels) if mark else None
        if models:
            tags[mb.MODEL_HISTORY_TAG] = models
        sent_tags = self.marks.items(run.id, TAG) if mark else {}
        tag_todo = {k: v for k, v in tags.items() if sent_tags.get(k) != digest(v)}
        removed = [k for k in sent_tags if k not in tags]
        sent_params = self.marks.items(run.id, PARAM) if mark else {}
        param_todo = {k: v for k, v in secrets.redact_mapping(run.params).items() if sent_params.get(k) != digest(v)}
        pushed = self.marks.metric_counts(run.id) if mark else {}
        metric_todo = {k: pushed.get(k, 0) for k, n in mb.metric_counts(self.store, run.id).items() if n > pushed.get(k, 0)}
        sent_arts = self.marks.items(run.id, ARTIFACT) if mark else {}
        art_todo = [a for a in self.store.list_artifacts(run.id) if sent_arts.get(a.path) != a.sha256]
        status, end_time = self._final_state(run)
        attrs_changed = mark is None or (mark.name, mark.status, mark.end_time) != (run.name, status, end_time)
        if mark is not None and not (tag_todo or removed or param_todo or metric_todo or art_todo or attrs_changed):
            return mark.remote_id
        requests = self.report.requests
        if mark is None:
            mark = self._create(run, tags)
            tag_todo = {k: v for k, v in tag_todo.items() if self.marks.items(run.id, TAG).get(k) != digest(v)}
            models = mb.model_history(self.store, run.id, mark.remote_id, self.mlmodels)
            if models:  # MLflow's UI lists the run's models from this tag (it names the remote run)
                tag_todo[mb.MODEL_HISTORY_TAG] = models
            # A twin found on the server (bookmarks lost) already holds part of the histories.
            pushed = self.marks.metric_counts(run.id)
            metric_todo = {k: pushed.get(k, 0) for k, n in mb.metric_counts(self.store, run.id).items() if n > pushed.get(k, 0)}
        self.report.remote_ids[run.id] = mark.remote_id
        try:
            for key in removed:
                self.client.delete_tag(mark.remote_id, key)
            if removed:
                self.marks.commit(run.id, {}, removed=[(TAG, k) for k in removed])
            self._send_batches(run, mark.remote_id, param_todo, tag_todo, metric_todo, pushed)
            self._upload(run, mark.remote_id, art_todo)
            if (mark.name, mark.status, mark.end_time) != (run.name, status, end_time):
                self._set_attributes(run, mark, status, end_time)
        except (SyncError, _RemoteRunGone):
            raise
        except Exception as exc:
            if _gone(exc):
                raise _RemoteRunGone() from exc
            raise classify(exc, self.target, _label(run)) from None
        finally:
            self.report.runs += self.report.requests > requests
        return mark.remote_id

    @staticmethod
    def _final_state(run) -> tuple[str, int | None]:
        if run.status == "RUNNING":
            return "RUNNING", None
        if run.end_time is not None:
            return run.status, run.end_time
        # A run whose process died has no end time: its last logged point is the best guess.
        return run.status, max([run.start_time, *(m.timestamp for m in run.latest.values())])

    # -- remote run --------------------------------------------------------------------
    def _experiment_id(self, name: str) -> str:
        if name in self.experiments:
            return self.experiments[name]
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = self.client.create_experiment(name)
            except Exception as exc:  # another sync created it meanwhile
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise classify(exc, self.target, f"creating experiment {name!r}") from None
                exp_id = exp.experiment_id
        elif exp.lifecycle_stage != "active":
            raise SyncError(f"experiment {name!r} is deleted on the MLflow server {self.target}; "
                            "restore it there (mlflow experiments restore) before syncing into it")
        else:
            exp_id = exp.experiment_id
        self.experiments[name] = exp_id
        return exp_id

    def _create(self, run, tags: dict[str, str]) -> RunMark:
        try:
            exp_id = self._experiment_id(run.experiment)
            # A sync killed between creating the twin and writing its bookmark left it tagged.
            found = self.client.search_runs([exp_id], filter_string=f"tags.`{mb.LOCAL_RUN_ID_TAG}` = '{run.id}'", max_results=1)
            first = _creation_tags(tags)
            if found:
                remote_id = found[0].info.run_id
                self.marks.start(run.id, remote_id)
                self._adopt(run, remote_id, found[0])
            else:
                remote = self.client.create_run(exp_id, start_time=run.start_time, tags=first, run_name=run.name)
                remote_id = remote.info.run_id
                self.marks.start(run.id, remote_id, [(TAG, k, digest(v)) for k, v in first.items()])
                self.marks.set_attributes(run.id, run.name, "RUNNING", None)
                self.report.created += 1
                self.report.requests += 1
        except SyncError:
            raise
        except Exception as exc:
            raise classify(exc, self.target, _label(run)) from None
        mark = self.marks.run(run.id)
        assert mark is not None  # marks.start above wrote it
        return mark

    def _adopt(self, run, remote_id: str, remote) -> None:
        """Bookmark what an already existing twin holds (its metric histories counted on the server)."""
        counts = {}
        for key in remote.data.metrics:
            counts[key] = len(self.client.get_metric_history(remote_id, key))
        self.marks.commit(run.id, counts)

    def _settle(self, run, mark: RunMark) -> None:
        """Decide for a batch left in flight whether it reached the server: its last point per key is there."""
        counts = {}
        try:
            for key, (before, after, last) in mark.pending.items():
                history = self.client.get_metric_history(mark.remote_id, key)
                step, value, ts = last
                arrived = any(m.step == step and m.timestamp == ts and _same(m.value, value) for m in history)
                counts[key] = after if arrived else before
                if arrived:
                    self.report.resumed += after - before
        except Exception as exc:
            if _gone(exc):
                raise _RemoteRunGone() from exc
            raise classify(exc, self.target, _label(run)) from None
        self.marks.commit(run.id, counts)

    # -- batches -----------------------------------------------------------------------
    def _entities(self, run, params: dict, tags: dict, metric_todo: dict[str, int]) -> Iterator[tuple[str, str, object]]:
        for key, value in params.items():
            if len(value) > MLFLOW_PARAM_LIMIT:
                self.report.warnings.append(f"param {key!r} of {_label(run)} is {len(value)} characters; "
                                            f"MLflow keeps the first {MLFLOW_PARAM_LIMIT}")
            yield mb.PARAM, key, value
        for key, value in tags.items():
            yield mb.TAG, key, value
        for key, skip in metric_todo.items():
            for point in mb.points_after(self.store, run.id, key, skip):
                yield mb.METRIC, key, point

    def _send_batches(self, run, remote_id: str, params: dict, tags: dict, metric_todo: dict[str, int], pushed: dict[str, int]) -> None:
        bad: set[tuple[str, str]] = set()
        counts = dict(pushed)
        for batch in mb.batches(self._entities(run, params, tags, metric_todo)):
            for kind, key in bad:
                batch.drop(kind, key)
            if not len(batch):
                continue
            pending = {k: [counts.get(k, 0), counts.get(k, 0) + n, list(batch.last[k])] for k, n in batch.counts.items()}
            if pending:
                self.marks.set_pending(run.id, pending)
            self._log_batch(run, remote_id, batch, bad)
            if not len(batch):  # every entity was rejected: nothing went through
                self.marks.commit(run.id, {})
                continue
            if after_batch_hook is not None:
                after_batch_hook(run, batch)
            if self.delay:
                time.sleep(self.delay)
            for key, n in batch.counts.items():
                counts[key] = counts.get(key, 0) + n
            items = [(PARAM, k, digest(v)) for k, v in batch.params] + [(TAG, k, digest(v)) for k, v in batch.tags]
            self.marks.commit(run.id, {k: counts[k] for k in batch.counts}, items)
            self.report.points += len(batch.metrics)
            self.report.params += len(batch.params)
            self.report.tags += len(batch.tags)
            self.report.bytes += batch.nbytes
            if self.bar is not None:
                self.bar.update(len(batch.metrics))

    def _log_batch(self, run, remote_id: str, batch: mb.Batch, bad: set[tuple[str, str]]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        while len(batch):
            try:
                self.client.log_batch(
                    remote_id,
                    metrics=[Metric(k, v, ts, step) for k, v, ts, step in batch.metrics],
                    params=[Param(k, v) for k, v in batch.params],
                    tags=[RunTag(k, v) for k, v in batch.tags],
                    synchronous=True,
                )
                self.report.requests += 1
                return
            except Exception as exc:
                if _gone(exc):
                    raise _RemoteRunGone() from exc
                error = classify(exc, self.target, _label(run))
                culprit = _culprit(batch, str(exc)) if isinstance(error, RejectedValue) else None
                if culprit is None:
                    raise error from None
                kind, key = culprit
                reason = scrub(str(exc)).split(": ", 1)[-1][:300]
                self.report.errors.append(f"the MLflow server {self.target} rejected {kind} {key!r} of {_label(run)}: {reason}")
                bad.add(culprit)
                batch.drop(kind, key)

    # -- artifacts and attributes ------------------------------------------------------
    def _upload(self, run, remote_id: str, artifacts) -> None:
        if not artifacts:
            return
        with tempfile.TemporaryDirectory(prefix="autolog-sync-") as tmp:
            for i, art in enumerate(artifacts):
                folder, _, name = art.path.rpartition("/")
                staged = os.path.join(tmp, str(i), name)
                os.makedirs(os.path.dirname(staged))
                blob = self.store.blobs.blob_path(art.sha256)
                try:  # the blob is named by its digest; give MLflow the artifact's own name
                    os.symlink(blob, staged)
                except OSError:
                    import shutil

                    shutil.copyfile(blob, staged)
                self.client.log_artifact(remote_id, staged, artifact_path=folder or None)
                self.marks.commit(run.id, {}, [(ARTIFACT, art.path, art.sha256)])
                self.report.artifacts += 1
                self.report.bytes += art.size
                self.report.requests += 1

    def _set_attributes(self, run, mark: RunMark, status: str, end_time: int | None) -> None:
        if mark.name != run.name:
            self.client.update_run(mark.remote_id, name=run.name)
            self.report.requests += 1
        if (mark.status, mark.end_time) != (status, end_time):
            if status == "RUNNING":
                self.client.update_run(mark.remote_id, status="RUNNING")
            else:
                self.client.set_terminated(mark.remote_id, status=status, end_time=end_time)
            self.report.requests += 1
        self.marks.set_attributes(run.id, run.name, status, end_time)


def _creation_tags(tags: dict[str, str]) -> dict[str, str]:
    # Sent with CreateRun: the link back to us, the parent link and the user (MLflow
    # derives the run's user_id from it only at creation).
    return {k: tags[k] for k in (mb.LOCAL_RUN_ID_TAG, mb.PARENT_TAG, mb.USER_TAG) if k in tags}


def _culprit(batch: mb.Batch, message: str) -> tuple[str, str] | None:
    match = _ENTITY_INDEX.search(message)
    if match:
        kind = _KINDS[match.group(1)]
        key = batch.entity(kind, int(match.group(2)))
        if key is not None:
            return kind, key
    if len(batch) == 1:
        kind = mb.METRIC if batch.metrics else (mb.PARAM if batch.params else mb.TAG)
        only = batch.entity(kind, 0)
        return (kind, only) if only is not None else None
    return None


def _gone(exc: BaseException) -> bool:
    # Deleted for good ("Run with id=... not found") or soft-deleted ("must be in the 'active' state").
    code = str(getattr(exc, "error_code", "") or "")
    message = str(exc)
    return (code == "RESOURCE_DOES_NOT_EXIST" and "Run" in message) or "must be in the 'active' state" in message


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def parent_chain(store, runs) -> list:
    """``runs`` plus their ancestors, parents before children, oldest first among siblings."""
    by_id = {r.id: r for r in runs}
    todo = list(runs)
    while todo:
        run = todo.pop()
        parent = run.parent_run_id
        if parent and parent not in by_id:
            try:
                by_id[parent] = store.get_run(parent)
                todo.append(by_id[parent])
            except RunNotFound:
                pass  # removed for good by gc: the child is synced without a parent link

    def depth(run) -> int:
        d, seen = 0, set()
        while run.parent_run_id in by_id and run.id not in seen:
            seen.add(run.id)
            run = by_id[run.parent_run_id]
            d += 1
        return d

    return sorted(by_id.values(), key=lambda r: (depth(r), r.start_time, r.id))
