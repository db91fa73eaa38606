"""The data model and the Store protocol every backend implements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: int
    name: str
    created: int = 0


class MetricPoint(NamedTuple):
    """One logged value of a metric history: ``(step, value, timestamp_ms)``."""

    step: int
    value: float
    timestamp: int


@dataclass(frozen=True)
class Metric:
    """The latest value of a metric (the one at the highest step)."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class Artifact:
    """A file stored with a run: its path inside the run, size in bytes and sha256."""

    path: str
    size: int
    sha256: str


@dataclass
class Run:
    """A run as read from the store: attributes plus params, tags and latest metrics."""

    id: str
    name: str
    experiment_id: int
    experiment: str
    status: str
    lifecycle: str
    parent_run_id: str | None
    start_time: int
    end_time: int | None
    user: str
    source: str
    host: str = ""
    pid: int = 0
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    latest: dict[str, Metric] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """Alias of ``id`` for readers used to MLflow's ``run.info.run_id``."""
        return self.id

    @property
    def info(self) -> Run:
        """MLflow-style access: ``run.info.run_id``, ``run.info.status``."""
        return self

    @property
    def duration_ms(self) -> int | None:
        """Wall time of the run in milliseconds, None while it is running."""
        return None if self.end_time is None else self.end_time - self.start_time


# One batch entry written by the background writer: (run_id, key, step, value, time_s).
PointRow = tuple[str, str, int, float, float]


class Store(Protocol):
    """What the API, the CLI and the sinks need from a run backend."""

    def get_or_create_experiment(self, name: str) -> Experiment: ...
    def create_run(self, experiment: str, name: str, *, parent_run_id: str | None = ..., tags: dict[str, str] | None = ...) -> Run: ...
    def end_run(self, run_id: str, status: str) -> None: ...
    def log_params(self, run_id: str, params: dict[str, str]) -> None: ...
    def set_tags(self, run_id: str, tags: dict[str, str]) -> None: ...
    def write_points(self, rows: Sequence[PointRow]) -> None: ...
    def log_artifact(self, run_id: str, local_path: str, path: str) -> Artifact: ...
    def get_run(self, run_id: str) -> Run: ...
    def search_runs(self, experiment: str | int | Iterable[str | int] | None = ..., filter: str | None = ..., order_by: Sequence[str] | None = ..., max_results: int | None = ...) -> list[Run]: ...
    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...
    def list_artifacts(self, run_id: str, prefix: str = ...) -> list[Artifact]: ...
    def delete_run(self, run_id: str, children: bool = ...) -> list[str]: ...
    def restore_run(self, run_id: str, children: bool = ...) -> list[str]: ...
    def gc(self, dry_run: bool = ...) -> dict[str, int]: ...
