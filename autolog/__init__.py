"""autolog: one call records every fit into a searchable local run store.

This module only re-exports the public API.
"""

from __future__ import annotations

from .active_run import ActiveRun
from .api import (
    active_run,
    end_run,
    flush,
    get_store,
    last_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    open_store,
    set_experiment,
    set_store,
    set_tag,
    set_tags,
    start_run,
)
from .errors import AutologError
from .store.base import Artifact, Experiment, Metric, MetricPoint, Run

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Artifact",
    "AutologError",
    "Experiment",
    "Metric",
    "MetricPoint",
    "Run",
    "active_run",
    "end_run",
    "flush",
    "get_store",
    "last_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "open_store",
    "set_experiment",
    "set_store",
    "set_tag",
    "set_tags",
    "start_run",
    "__version__",
]
