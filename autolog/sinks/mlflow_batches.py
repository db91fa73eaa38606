"""What a run looks like to MLflow, and how its data is cut into ``log_batch`` requests.

Everything here reads the local store only; nothing imports mlflow. Metric points are
read in the order they were committed (chunk order), not sorted by step, so "the first
N points" of a history never changes as the history grows: the bookmark of a history is
just that N.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from autolog.store import series

# Our tag names -> MLflow's reserved ones, so its UI shows them in their usual places.
# The one table of the mapping; everything else passes through unchanged.
TAG_MAP = {
    "git.commit": "mlflow.source.git.commit",
    "git.branch": "mlflow.source.git.branch",
    "git.remote": "mlflow.source.git.repoURL",
    "source.entry_point": "mlflow.source.name",
    "user": "mlflow.user",
}
LOCAL_RUN_ID_TAG = "autolog.run_id"  # finds the remote twin again if bookmarks are lost
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
SOURCE_TAG = "mlflow.source.name"
MODEL_HISTORY_TAG = "mlflow.log-model.history"  # how MLflow's UI finds a run's logged models

# MLflow's log_batch limits (mlflow.utils.validation), enforced by its server.
MAX_METRICS = 1000
MAX_PARAMS = 100
MAX_TAGS = 100
MAX_ENTITIES = 1000
MAX_REQUEST_BYTES = 900_000  # the server's limit is 1e6; leave room for the JSON envelope

METRIC, PARAM, TAG = "metric", "param", "tag"


def remote_tags(run, parent_remote_id: str | None) -> dict[str, str]:
    """The tags the MLflow twin of ``run`` carries: ours mapped through TAG_MAP plus links."""
    tags = {TAG_MAP.get(k, k): v for k, v in run.tags.items()}
    # An explicit tag wins over the run attribute it duplicates.
    if run.user and USER_TAG not in tags:
        tags[USER_TAG] = run.user
    if run.source and SOURCE_TAG not in tags:
        tags[SOURCE_TAG] = run.source
    tags[LOCAL_RUN_ID_TAG] = run.id
    if parent_remote_id:
        tags[PARENT_TAG] = parent_remote_id
    return tags


def model_history(store, run_id: str, shown_run_id: str, cache: dict | None = None) -> str | None:
    """The ``mlflow.log-model.history`` tag for the run's saved models (each folder with an ``MLmodel``), or None.

    ``shown_run_id`` is the id the models are listed under (the remote twin's after a sync).
    ``cache`` (digest -> parsed MLmodel) spares re-reading the same file.
    """
    models = []
    for art in store.list_artifacts(run_id):
        if art.path != "MLmodel" and not art.path.endswith("/MLmodel"):
            continue
        if cache is None or art.sha256 not in cache:
            spec = _read_mlmodel(store.blobs.blob_path(art.sha256))
            if cache is not None:
                cache[art.sha256] = spec
        else:
            spec = cache[art.sha256]
        if spec:
            keep = {k: spec[k] for k in ("flavors", "utc_time_created", "model_uuid") if k in spec}
            models.append({**keep, "run_id": shown_run_id, "artifact_path": art.path[: -len("MLmodel")].rstrip("/")})
    return json.dumps(models) if models else None


def _read_mlmodel(path: str) -> dict | None:
    import yaml  # a dependency of mlflow, which is present wherever this runs

    try:
        with open(path, encoding="utf-8") as fh:
            spec = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError):
        return None
    return spec if isinstance(spec, dict) and isinstance(spec.get("flavors"), dict) else None


def metric_counts(store, run_id: str) -> dict[str, int]:
    """How many points each metric history of ``run_id`` holds, without decoding any."""
    rows = store.connection().execute(
        "SELECT k.key, SUM(c.n) FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id"
        " WHERE c.run_id = ? GROUP BY k.key",
        (run_id,),
    )
    return {key: int(n) for key, n in rows}


def points_after(store, run_id: str, key: str, skip: int) -> Iterator[tuple[int, float, int]]:
    """Points ``(step, value, timestamp_ms)`` of a history in commit order, after the first ``skip``."""
    conn = store.connection()
    chunks = conn.execute(
        "SELECT c.id, c.n FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id"
        " WHERE c.run_id = ? AND k.key = ? ORDER BY c.id",
        (run_id, key),
    ).fetchall()
    seen = 0
    for chunk_id, n in chunks:
        if seen + n <= skip:  # whole chunk already pushed: not even read
            seen += n
            continue
        points = series.decode(conn.execute("SELECT points FROM metric_chunks WHERE id = ?", (chunk_id,)).fetchone()[0])
        start = max(0, skip - seen)
        seen += n
        for step, value, t in points[start:]:
            # Same rounding as SQLiteStore.metric_history, so both sides agree to the ms.
            yield int(step), float(value), int(t * 1000)


@dataclass
class Batch:
    """One ``log_batch`` request in the making, within MLflow's limits."""

    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ts, step
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    nbytes: int = 0
    # per metric key: how many of its points are in the batch and the last one
    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, tuple[int, float, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def fits(self, kind: str, size: int) -> bool:
        """Whether one more entity of ``kind`` (about ``size`` JSON bytes) may join."""
        if len(self) >= MAX_ENTITIES or self.nbytes + size > MAX_REQUEST_BYTES:
            return not len(self)  # an empty batch takes anything, however large
        if kind == METRIC:
            return len(self.metrics) < MAX_METRICS
        return len(self.params if kind == PARAM else self.tags) < (MAX_PARAMS if kind == PARAM else MAX_TAGS)

    def add(self, kind: str, key: str, payload, size: int) -> None:
        """Append one entity (``payload`` is a value, or ``(step, value, ts)`` for a metric)."""
        self.nbytes += size
        if kind == METRIC:
            step, value, ts = payload
            self.metrics.append((key, value, ts, step))
            self.counts[key] = self.counts.get(key, 0) + 1
            self.last[key] = payload
        elif kind == PARAM:
            self.params.append((key, payload))
        else:
            self.tags.append((key, payload))

    def drop(self, kind: str, key: str) -> None:
        """Remove every entity of ``kind`` named ``key`` (the server rejected it)."""
        if kind == METRIC:
            self.metrics = [m for m in self.metrics if m[0] != key]
            self.counts.pop(key, None)
            self.last.pop(key, None)
        elif kind == PARAM:
            self.params = [p for p in self.params if p[0] != key]
        else:
            self.tags = [t for t in self.tags if t[0] != key]

    def entity(self, kind: str, index: int) -> str | None:
        """The key of the ``index``-th entity of ``kind`` (how the server names a bad one)."""
        items: list[tuple[Any, ...]] = self.metrics if kind == METRIC else self.params if kind == PARAM else self.tags
        return items[index][0] if 0 <= index < len(items) else None


def entity_size(kind: str, key: str, payload) -> int:
    """A cheap upper estimate of an entity's share of the JSON request body."""
    if kind == METRIC:
        return len(key) + 96
    return len(json.dumps(key)) + len(json.dumps(payload)) + 24


def batches(entities: Iterator[tuple[str, str, object]]) -> Iterator[Batch]:
    """Cut a stream of ``(kind, key, payload)`` into batches the server accepts."""
    batch = Batch()
    for kind, key, payload in entities:
        size = entity_size(kind, key, payload)
        if not batch.fits(kind, size):
            yield batch
            batch = Batch()
        batch.add(kind, key, payload, size)
    if len(batch):
        yield batch
