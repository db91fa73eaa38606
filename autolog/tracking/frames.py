"""Runs from Python as pandas DataFrames, and models loaded by the integration that saved them.

``search_runs`` has the shape of ``mlflow.search_runs``: one row per run, the columns
``run_id, experiment, name, status, start_time, end_time, duration, parent_run_id``, then
``params.*`` (str), ``metrics.*`` (latest values, float) and ``tags.*`` (str).
``metric_histories`` is long-form: one row per logged point. pandas is imported only
here, inside the functions, so ``import autolog`` never pays for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from autolog.errors import InvalidModel, InvalidType, MissingDependency, RunNotFound

if TYPE_CHECKING:
    from autolog.store.base import Run

PANDAS_EXTRA = "pip install 'autolog[pandas]'"
RUN_COLUMNS = ["run_id", "experiment", "name", "status", "start_time", "end_time", "duration", "parent_run_id"]
HISTORY_COLUMNS = ["run_id", "key", "step", "value", "timestamp"]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise MissingDependency(f"DataFrames need pandas, which is not installed: {PANDAS_EXTRA}") from exc
    return pandas


def _store(store: Any) -> Any:
    from autolog.patching.models import resolve_store

    return resolve_store(store)


def search_runs(filter: str | None = None, experiment: str | int | Iterable[str | int] | None = None,
                order_by: Sequence[str] | str | None = None, max_results: int | None = None, store: Any = None) -> Any:
    """Runs of the store as a pandas DataFrame, one row per run, like ``mlflow.search_runs``.

    Columns: ``run_id``, ``experiment``, ``name``, ``status``, ``start_time`` and
    ``end_time`` (timezone-aware UTC datetimes; ``end_time`` NaT while running),
    ``duration`` (a Timedelta), ``parent_run_id``, then ``params.<key>`` as str,
    ``metrics.<key>`` (latest value) as float and ``tags.<key>`` as str, each group sorted
    by key; a run without a key has NaN/None there. Nothing is written.

    Args:
        filter: e.g. ``"metrics.val_loss < 0.3 and params.model = 'xgb'"``.
        experiment: a name, an id, or a list of them; default every experiment.
        order_by: e.g. ``["metrics.val_loss"]``; default newest first.
        max_results: at most this many runs.
        store: the store to read; default the current one (``set_store``, ``$AUTOLOG_URI``
            or the discovered ``autolog-runs``).

    Raises:
        MissingDependency: pandas is not installed (names the ``pandas`` extra).
        InvalidFilter: the filter or order_by is malformed.
        RunNotFound: the experiment does not exist.
    """
    pd = _pandas()
    runs = _store(store).search_runs(experiment=experiment, filter=filter, order_by=order_by, max_results=max_results)
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    tags = sorted({k for r in runs for k in r.tags})
    data: dict[str, Any] = {
        "run_id": pd.Series([r.id for r in runs], dtype=object),
        "experiment": pd.Series([r.experiment for r in runs], dtype=object),
        "name": pd.Series([r.name for r in runs], dtype=object),
        "status": pd.Series([r.status for r in runs], dtype=object),
        "start_time": pd.to_datetime(pd.Series([r.start_time for r in runs], dtype="float64"), unit="ms", utc=True),
        "end_time": pd.to_datetime(pd.Series([r.end_time for r in runs], dtype="float64"), unit="ms", utc=True),
        "duration": pd.to_timedelta(pd.Series([r.duration_ms for r in runs], dtype="float64"), unit="ms"),
        "parent_run_id": pd.Series([r.parent_run_id for r in runs], dtype=object),
    }
    for key in params:
        data[f"params.{key}"] = pd.Series([r.params.get(key) for r in runs], dtype=object)
    for key in metrics:
        data[f"metrics.{key}"] = pd.Series([r.metrics.get(key) for r in runs], dtype="float64")
    for key in tags:
        data[f"tags.{key}"] = pd.Series([r.tags.get(key) for r in runs], dtype=object)
    return pd.DataFrame(data, columns=list(data))


def metric_histories(run_ids: str | Iterable[str], keys: str | Iterable[str] | None = None, store: Any = None) -> Any:
    """Every logged point of ``keys`` in ``run_ids`` as a long-form pandas DataFrame.

    Columns: ``run_id`` (full id), ``key``, ``step`` (int64), ``value`` (float64, NaN and
    inf kept) and ``timestamp`` (timezone-aware UTC datetime), one row per point, runs in
    the given order, then keys, then steps. ``df.pivot_table(index="step",
    columns="run_id", values="value")`` lines runs up for plotting. Nothing is written.

    Args:
        run_ids: one run id or several (unique prefixes work).
        keys: metric keys; default every metric each run logged.
        store: the store to read; default the current one.

    Raises:
        MissingDependency: pandas is not installed.
        RunNotFound: a run id matches no run.
    """
    pd = _pandas()
    store = _store(store)
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    wanted = [keys] if isinstance(keys, str) else None if keys is None else list(keys)
    if any(not isinstance(r, str) for r in ids):
        raise InvalidType(f"run_ids must be str run ids, got {ids!r:.80}")
    rows: dict[str, list[Any]] = {c: [] for c in HISTORY_COLUMNS}
    for ref in ids:
        run_id = store.resolve_run_id(ref)
        for key in wanted if wanted is not None else store.metric_keys(run_id):
            for point in store.metric_history(run_id, key):
                rows["run_id"].append(run_id)
                rows["key"].append(key)
                rows["step"].append(point.step)
                rows["value"].append(point.value)
                rows["timestamp"].append(point.timestamp)
    return pd.DataFrame({
        "run_id": pd.Series(rows["run_id"], dtype=object),
        "key": pd.Series(rows["key"], dtype=object),
        "step": pd.Series(rows["step"], dtype="int64"),
        "value": pd.Series(rows["value"], dtype="float64"),
        "timestamp": pd.to_datetime(pd.Series(rows["timestamp"], dtype="int64"), unit="ms", utc=True),
    })


def load_model(run_id: str, store: Any = None, **kwargs: Any) -> Any:
    """Load the model a run saved, with the loader of the integration that saved it.

    The integration is read from the run's ``autolog.integration`` tag (its loader waits
    for a save still running in this process), else from the saved model's
    ``meta.json``; extra keyword arguments go to that loader (e.g. ``module_class=`` for
    Lightning, ``custom_objects=`` for Keras). Nothing is written.

    Raises:
        RunNotFound: the run does not exist.
        InvalidModel: the run saved no model, or one no installed integration loads.
        MissingDependency: the framework that saved the model is not installed.
    """
    store = _store(store)
    run = store.get_run(run_id)
    name = run.tags.get("autolog.integration") or _saved_flavor(store, run)
    try:
        return _loader(run, name)(run.id, store=store, **kwargs)
    except InvalidModel:
        # A user's run holding fits of two frameworks is tagged with the last one.
        flavor = _saved_flavor(store, run)
        if flavor == name:
            raise
        return _loader(run, flavor)(run.id, store=store, **kwargs)


def _saved_flavor(store: Any, run: Run) -> str:
    import json

    try:
        with open(store.artifact_file(run.id, "model/meta.json"), encoding="utf-8") as fh:
            return str(json.load(fh).get("flavor"))
    except RunNotFound:
        raise InvalidModel(f"run {run.id[:8]} ({run.name}) saved no model: it has no model/ artifact"
                           " (autolog saves one at the end of a fit unless log_models=False)") from None
    except (OSError, ValueError) as exc:
        raise InvalidModel(f"run {run.id[:8]} ({run.name}) has an unreadable model/meta.json: {exc}") from None


def _loader(run: Run, name: str) -> Any:
    try:
        module = importlib.import_module(f"autolog.integrations.{name}")
    except ImportError as exc:
        raise MissingDependency(f"the model of run {run.id[:8]} was saved by {name!r}: pip install 'autolog[{name}]' ({exc})") from exc
    loader = getattr(module, "load_model", None)
    if loader is None:
        raise InvalidModel(f"run {run.id[:8]} saved a model of flavor {name!r}, which no installed integration loads")
    return loader
