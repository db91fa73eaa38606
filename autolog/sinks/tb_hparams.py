"""The hparams experiment of a TensorBoard export: which params are columns, which metrics are axes.

TensorBoard's parallel-coordinates view leaves out every session group that lacks a
value on any visible axis. Left to infer the experiment, TensorBoard makes every scalar
tag an axis (``system/...``, ``batch/...``, counters), so most runs vanish from the view.
The export therefore writes the experiment explicitly:

- metric axes: the headline metrics (see :mod:`autolog.store.selection`) that every
  top-level run in scope has; headline metrics some runs lack are reported with those
  runs (search candidates usually lack their parent's metrics);
- param columns: the params that vary (no constant ones, no digests or ids); a param a
  run lacks makes its column a text column with the value ``-``, so the run still has a
  value on every axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autolog.store import selection

if TYPE_CHECKING:
    from autolog.store.base import Run

MISSING = "-"
MAX_METRIC_AXES = 4


@dataclass
class HParamsConfig:
    """What the experiment record declares, and the runs left off an axis."""

    metrics: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # name -> "float" | "bool" | "string"
    lacking: dict[str, list[str]] = field(default_factory=dict)  # headline metric -> run ids without it

    def as_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _kind(values: list[str | None]) -> str:
    if any(v is None for v in values):
        return "string"
    if all(v in ("True", "False", "true", "false") for v in values):
        return "bool"
    if all(_number(v) is not None for v in values):  # type: ignore[arg-type]
        return "float"
    return "string"


def build(runs: Sequence[Any]) -> HParamsConfig:
    """The hparams experiment for ``runs`` (one autolog experiment, or every exported run)."""
    config = HParamsConfig()
    if not runs:
        return config
    headline = selection.headline_metrics(runs, None)
    coverage = {k: [r.id for r in runs if k not in r.metrics] for k in headline}
    # Axes are chosen by the top-level runs; search candidates (child runs) lacking them are reported.
    base = selection.top_level(runs)
    full = [k for k in headline if all(k in r.metrics for r in base)]
    # With no headline metric shared by every run, the best-covered one still gets an axis.
    axes = full[:MAX_METRIC_AXES] or sorted(headline, key=lambda k: len(coverage[k]))[:1]
    config.metrics = axes
    config.lacking = {k: ids for k, ids in coverage.items() if ids and (k in axes or k in headline[:MAX_METRIC_AXES])}
    for key in selection.varying_params(runs):
        config.params[key] = _kind([r.params.get(key) for r in runs])
    return config


def session_hparams(run: Run, config: HParamsConfig) -> dict[str, bool | float | str]:
    """The hparams of ``run``'s session: every param, the config's columns typed as declared."""
    # Params are stored as text; numbers and booleans become real values again so that
    # TensorBoard places them on numeric axes.
    out: dict[str, bool | float | str] = {}
    for key, text in run.params.items():
        number = _number(text)
        out[key] = text in ("True", "true") if text in ("True", "true", "False", "false") else number if number is not None else text
    for key, kind in config.params.items():
        value = run.params.get(key)
        if kind == "string":
            out[key] = MISSING if value is None else value
    return out


def experiment_record(tb: Any, config: HParamsConfig, runs: Sequence[Any], created_s: float) -> bytes:
    """The hparams plugin's experiment record: param columns with their domains, metric axes."""
    api = tb.hp_api
    types = {"float": api.DATA_TYPE_FLOAT64, "bool": api.DATA_TYPE_BOOL, "string": api.DATA_TYPE_STRING}
    infos = []
    for key, kind in config.params.items():
        info = api.HParamInfo(name=key, display_name=key, type=types[kind])
        values = [session_hparams(r, config)[key] for r in runs if key in r.params or kind == "string"]
        if kind == "float":
            info.domain_interval.min_value = min(values)
            info.domain_interval.max_value = max(values)
        else:
            info.domain_discrete.extend(sorted(set(values), key=str))
        infos.append(info)
    metrics = [api.MetricInfo(name=api.MetricName(group="", tag=key), display_name=key) for key in config.metrics]
    experiment = api.Experiment(time_created_secs=created_s, hparam_infos=infos, metric_infos=metrics)
    data = tb.plugin_data_pb2.HParamsPluginData(experiment=experiment, version=0)
    value = tb.summary_pb2.Summary.Value(tag=tb.hp_metadata.EXPERIMENT_TAG, tensor=tb.hp_metadata.NULL_TENSOR,
                                         metadata=tb.hp_metadata.create_summary_metadata(data))
    return tb.event_pb2.Event(wall_time=created_s, step=0, summary=tb.summary_pb2.Summary(value=[value])).SerializeToString()
