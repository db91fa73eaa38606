"""The data model and the Store protocol every backend implements.

The records are plain classes written as ``dataclasses`` would generate them (same
fields, ``__init__``, ``__eq__``, ``__repr__``; the frozen ones immutable and hashable):
``dataclasses`` imports ``inspect`` (~7 ms with it), which every process that starts a
run would pay for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol


class FrozenInstanceError(AttributeError):
    """Assigning to (or deleting) a field of an immutable record, as ``dataclasses.FrozenInstanceError``."""


class _Frozen:
    """An immutable value record: fields set once, compared, hashed and printed by value."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple:
        return tuple([self.__dict__[name] for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}(" + ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._fields) + ")"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


class Experiment(_Frozen):
    """A named group of runs."""

    _fields = __match_args__ = ("id", "name", "created")
    id: int
    name: str
    created: int

    def __init__(self, id: int, name: str, created: int = 0) -> None:  # noqa: A002 - the field's name
        self.__dict__.update(id=id, name=name, created=created)


class MetricPoint(NamedTuple):
    """One logged value of a metric history: ``(step, value, timestamp_ms)``."""

    step: int
    value: float
    timestamp: int


class Metric(_Frozen):
    """The latest value of a metric (the one at the highest step)."""

    _fields = __match_args__ = ("key", "value", "step", "timestamp")
    key: str
    value: float
    step: int
    timestamp: int

    def __init__(self, key: str, value: float, step: int, timestamp: int) -> None:
        self.__dict__.update(key=key, value=value, step=step, timestamp=timestamp)


class Artifact(_Frozen):
    """A file stored with a run: its path inside the run, size in bytes and sha256."""

    _fields = __match_args__ = ("path", "size", "sha256")
    path: str
    size: int
    sha256: str

    def __init__(self, path: str, size: int, sha256: str) -> None:
        self.__dict__.update(path=path, size=size, sha256=sha256)


_NEW: Any = object()  # "a new empty dict": the dataclass's default_factory


class Run:
    """A run as read from the store: attributes plus params, tags and latest metrics."""

    __match_args__ = ("id", "name", "experiment_id", "experiment", "status", "lifecycle", "parent_run_id", "start_time",
                      "end_time", "user", "source", "host", "pid", "params", "tags", "metrics", "latest")

    def __init__(self, id: str, name: str, experiment_id: int, experiment: str, status: str, lifecycle: str,  # noqa: A002
                 parent_run_id: str | None, start_time: int, end_time: int | None, user: str, source: str,
                 host: str = "", pid: int = 0, params: dict[str, str] = _NEW, tags: dict[str, str] = _NEW,
                 metrics: dict[str, float] = _NEW, latest: dict[str, Metric] = _NEW) -> None:
        self.id = id
        self.name = name
        self.experiment_id = experiment_id
        self.experiment = experiment
        self.status = status
        self.lifecycle = lifecycle
        self.parent_run_id = parent_run_id
        self.start_time = start_time
        self.end_time = end_time
        self.user = user
        self.source = source
        self.host = host
        self.pid = pid
        self.params: dict[str, str] = {} if params is _NEW else params
        self.tags: dict[str, str] = {} if tags is _NEW else tags
        self.metrics: dict[str, float] = {} if metrics is _NEW else metrics
        self.latest: dict[str, Metric] = {} if latest is _NEW else latest

    def _values(self) -> tuple:
        return tuple([getattr(self, name) for name in self.__match_args__])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as a dataclass with eq

    def __repr__(self) -> str:
        return "Run(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__) + ")"

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
