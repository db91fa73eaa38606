"""autolog: one call records every fit into a searchable local run store.

This module only re-exports the public API.
"""

from __future__ import annotations

from autolog.capture.seeding import seed_everything  # also registers environment capture and system metrics
from autolog.errors import AutologError
from autolog.patching.activation import autolog
from autolog.tracking.api import (
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
    set_metric_goal,
    set_store,
    set_tag,
    set_tags,
    start_run,
)

__version__ = "0.1.0"

# Data classes load on first use: the store's modules cost milliseconds that
# `import autolog` at the top of every training script should not pay.
_LAZY = {
    "ActiveRun": "autolog.tracking.run",
    "Artifact": "autolog.store.base",
    "Experiment": "autolog.store.base",
    "Metric": "autolog.store.base",
    "MetricPoint": "autolog.store.base",
    "Run": "autolog.store.base",
    # DataFrames and model loading: pandas and the frameworks load inside the functions.
    "load_model": "autolog.tracking.frames",
    "metric_histories": "autolog.tracking.frames",
    "search_runs": "autolog.tracking.frames",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'autolog' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

__all__ = [
    "ActiveRun",
    "Artifact",
    "AutologError",
    "Experiment",
    "Metric",
    "MetricPoint",
    "Run",
    "active_run",
    "autolog",
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
    "load_model",
    "metric_histories",
    "open_store",
    "set_experiment",
    "set_metric_goal",
    "set_store",
    "set_tag",
    "set_tags",
    "search_runs",
    "seed_everything",
    "start_run",
    "__version__",
]
