"""MLflow tracking store over an autolog store: MLflow's UI, server and client read it live.

Registered under the entry-point group ``mlflow.tracking_store`` for the scheme
``autolog:`` (``autolog:/abs/path/to/autolog-runs``, ``autolog:relative/path``, or just
``autolog:`` for the default store). Runs look as if MLflow had logged them: params,
tags (git and user tags under MLflow's ``mlflow.*`` names, ``mlflow.runName``,
``mlflow.parentRunId``, ``mlflow.log-model.history`` for saved models), every metric
point with its step and timestamp, status (a run whose process died is ``KILLED``).
Experiment ids are our ids as strings, except the default experiment, which is MLflow's
``"0"``. The few writes the UI makes (rename, tags, notes, delete, restore) go into the
store through its API; everything else raises ``MlflowException`` saying it is not
supported. Imported only by MLflow, never by ``import autolog``.
"""

from __future__ import annotations

import os

from mlflow.entities import Experiment, ExperimentTag, Metric, Param, Run, RunData, RunInfo, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils

from autolog import env
from autolog.errors import AutologError
from autolog.sinks import mlflow_search
from autolog.sinks.mlflow_artifacts import artifact_uri
from autolog.sinks.mlflow_batches import LOCAL_RUN_ID_TAG, MODEL_HISTORY_TAG, TAG_MAP, model_history, remote_tags
from autolog.sinks.mlflow_search import not_supported

SCHEME = "autolog"
DEFAULT_ID = "0"
NOTE_TAG = "mlflow.note.content"
RUN_NAME_TAG = "mlflow.runName"
# MLflow 3's UI opens experiments of this kind on the runs table (not the GenAI overview).
_KIND = ExperimentTag("mlflow.experimentKind", "custom_model_development")
_OURS = {mlflow_key: ours for ours, mlflow_key in TAG_MAP.items()}


def store_root(store_uri: str | None) -> str:
    """The store folder named by ``autolog:/abs``, ``autolog:rel``, ``autolog:///abs`` or ``autolog:``."""
    uri = store_uri or ""
    if uri.startswith(SCHEME + ":"):
        uri = uri[len(SCHEME) + 1:]
    if uri.startswith("//"):
        uri = uri[2:]
    return os.path.abspath(os.path.expanduser(uri or env.store_uri()))


def _missing(what: str) -> MlflowException:
    return MlflowException(what, RESOURCE_DOES_NOT_EXIST)


class AutologTrackingStore(AbstractStore):
    """MLflow's ``AbstractStore`` read side (and the UI's few writes) over an autolog store."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()
        from autolog.tracking.api import open_store

        self.root = store_root(store_uri)
        if not os.path.isfile(os.path.join(self.root, "runs.db")) and os.path.exists(self.root) and os.listdir(self.root):
            raise MlflowException(f"{self.root} is not an autolog store (no runs.db in it)")
        self.store = open_store(self.root)
        self._model_cache: dict[str, dict | None] = {}

    # -- experiments -------------------------------------------------------------------
    def _experiment(self, exp) -> Experiment:
        exp_id = DEFAULT_ID if exp.name == env.DEFAULT_EXPERIMENT else str(exp.id)
        return Experiment(exp_id, exp.name, artifact_uri(self.root, "").rstrip("/"), "active", [_KIND], exp.created, exp.created)

    def _experiments(self) -> list[Experiment]:
        exps = [self._experiment(e) for e in self.store.list_experiments()]
        if not any(e.experiment_id == DEFAULT_ID for e in exps):
            # MLflow clients fall back to experiment "0"; it exists (empty) as in every MLflow store.
            exps.insert(0, Experiment(DEFAULT_ID, env.DEFAULT_EXPERIMENT, artifact_uri(self.root, "").rstrip("/"), "active", [_KIND], 0, 0))
        return exps

    def search_experiments(self, view_type=ViewType.ACTIVE_ONLY, max_results=SEARCH_MAX_RESULTS_DEFAULT, filter_string=None,
                           order_by=None, page_token=None):
        exps = [] if view_type == ViewType.DELETED_ONLY else self._experiments()
        exps = SearchExperimentsUtils.filter(exps, filter_string)
        exps = SearchExperimentsUtils.sort(exps, order_by or ["last_update_time DESC", "experiment_id ASC"])
        start = SearchUtils.parse_start_offset_from_page_token(page_token)
        end = start + (max_results or SEARCH_MAX_RESULTS_DEFAULT)
        token = SearchUtils.create_page_token(end) if end < len(exps) else None
        return PagedList(exps[start:end], token)

    def _our_experiment(self, experiment_id):
        experiment_id = str(experiment_id)
        try:
            if experiment_id == DEFAULT_ID:
                return self.store.get_experiment(env.DEFAULT_EXPERIMENT)
            return self.store.get_experiment(int(experiment_id))
        except (AutologError, ValueError):
            return None

    def get_experiment(self, experiment_id):
        exp = self._our_experiment(experiment_id)
        if exp is not None:
            return self._experiment(exp)
        if str(experiment_id) == DEFAULT_ID:
            return self._experiments()[0]
        raise _missing(f"No Experiment with id={experiment_id} exists")

    def get_experiment_by_name(self, experiment_name):
        for exp in self._experiments():
            if exp.name == experiment_name:
                return exp
        return None

    # -- runs --------------------------------------------------------------------------
    def _mlflow_run(self, run) -> Run:
        exp_id = DEFAULT_ID if run.experiment == env.DEFAULT_EXPERIMENT else str(run.experiment_id)
        # Keywords after the first seven: mlflow 2.x has run_id between artifact_uri and run_name.
        info = RunInfo(run.id, exp_id, run.user, run.status, run.start_time, run.end_time, run.lifecycle,
                       artifact_uri=artifact_uri(self.root, run.id), run_name=run.name)
        tags = remote_tags(run, run.parent_run_id)
        tags.pop(LOCAL_RUN_ID_TAG, None)
        tags.setdefault("mlflow.source.type", "LOCAL")
        tags[RUN_NAME_TAG] = run.name
        models = model_history(self.store, run.id, run.id, self._model_cache)
        if models:
            tags[MODEL_HISTORY_TAG] = models
        data = RunData(
            metrics=[Metric(m.key, m.value, m.timestamp, m.step) for m in run.latest.values()],
            params=[Param(k, v) for k, v in run.params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        return Run(info, data)

    def _run_id(self, run_id: str) -> str:
        try:
            return self.store.resolve_run_id(run_id)
        except AutologError:
            raise _missing(f"Run with id={run_id} not found") from None

    def get_run(self, run_id):
        try:
            return self._mlflow_run(self.store.get_run(self._run_id(run_id)))
        except AutologError as exc:
            raise _missing(str(exc)) from None

    def _search_runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        ours, rest = mlflow_search.translate_filter(filter_string)
        order = mlflow_search.translate_order_by(order_by)
        lifecycle = {ViewType.ACTIVE_ONLY: "active", ViewType.DELETED_ONLY: "deleted"}.get(run_view_type, "all")
        exps = [e for e in (self._our_experiment(i) for i in experiment_ids or []) if e is not None]
        if experiment_ids and not exps:
            return [], None
        start = SearchUtils.parse_start_offset_from_page_token(page_token)
        limit = None if rest else start + max_results + 1
        try:
            found = self.store.search_runs([e.id for e in exps] or None, filter=ours or None, order_by=order,
                                           max_results=limit, lifecycle=lifecycle)
        except AutologError as exc:
            raise not_supported(f"the filter {filter_string!r} ({exc})") from None
        runs = [self._mlflow_run(r) for r in found]
        if rest:
            runs = [r for r in runs if mlflow_search.matches(r, rest)]
        end = start + max_results
        return runs[start:end], (SearchUtils.create_page_token(end) if len(runs) > end else None)

    def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
        points = self.store.metric_history(self._run_id(run_id), metric_key)
        metrics = [Metric(metric_key, p.value, p.timestamp, p.step) for p in points]
        if max_results is None:
            return PagedList(metrics, None)
        start = SearchUtils.parse_start_offset_from_page_token(page_token)
        end = start + max_results
        return PagedList(metrics[start:end], SearchUtils.create_page_token(end) if end < len(metrics) else None)

    # -- the writes the UI makes -------------------------------------------------------
    def update_run_info(self, run_id, run_status, end_time, run_name):
        run_id = self._run_id(run_id)
        run = self.store.get_run(run_id)
        if isinstance(run_status, int):
            run_status = RunStatus.to_string(run_status)
        if run_status is not None and run_status != run.status or end_time is not None and end_time != run.end_time:
            raise not_supported("changing a run's status or end time through MLflow")
        if run_name and run_name != run.name:
            self.store.set_run_name(run_id, run_name)
        return self.get_run(run_id).info

    def set_tag(self, run_id, tag):
        run_id = self._run_id(run_id)
        if tag.key == RUN_NAME_TAG:
            self.store.set_run_name(run_id, tag.value)
        elif tag.key in mlflow_search.DERIVED_TAGS or tag.key == "mlflow.parentRunId":
            raise not_supported(f"setting the tag {tag.key!r} through MLflow")
        else:
            self._write(lambda: self.store.set_tags(run_id, {_OURS.get(tag.key, tag.key): tag.value}))

    def delete_tag(self, run_id, key):
        self.store.delete_tag(self._run_id(run_id), _OURS.get(key, key))

    def delete_run(self, run_id):
        self.store.delete_run(self._run_id(run_id))

    def restore_run(self, run_id):
        self.store.restore_run(self._run_id(run_id))

    def log_batch(self, run_id, metrics, params, tags):
        if metrics or params:
            raise not_supported("logging metrics or params through MLflow (log them with autolog)")
        for tag in tags:
            self.set_tag(run_id, tag)

    @staticmethod
    def _write(action) -> None:
        try:
            action()
        except (AutologError, ValueError, TypeError) as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None

    # -- everything else ---------------------------------------------------------------
    def create_experiment(self, name, artifact_location=None, tags=None):
        raise not_supported("creating experiments through MLflow (autolog creates them: al.set_experiment)")

    def delete_experiment(self, experiment_id):
        raise not_supported("deleting experiments")

    def restore_experiment(self, experiment_id):
        raise not_supported("restoring experiments")

    def rename_experiment(self, experiment_id, new_name):
        raise not_supported("renaming experiments")

    def set_experiment_tag(self, experiment_id, tag):
        raise not_supported("experiment tags")

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
        raise not_supported("creating runs through MLflow (start them with autolog)")

    def log_inputs(self, run_id, datasets=None, models=None):
        raise not_supported("logging inputs")

    def log_outputs(self, run_id, models):
        raise not_supported("logging model outputs")

    def record_logged_model(self, run_id, mlflow_model):
        raise not_supported("logging models through MLflow (autolog saves them)")

    def create_logged_model(self, *args, **kwargs):
        raise not_supported("logged-model writes")

    def finalize_logged_model(self, *args, **kwargs):
        raise not_supported("logged-model writes")

    def set_logged_model_tags(self, *args, **kwargs):
        raise not_supported("logged-model writes")

    def delete_logged_model_tag(self, *args, **kwargs):
        raise not_supported("logged-model writes")

    def delete_logged_model(self, *args, **kwargs):
        raise not_supported("logged-model writes")

    def get_logged_model(self, model_id, allow_deleted=False):
        raise _missing(f"Logged model with ID '{model_id}' not found (the autolog store keeps models as run artifacts)")

    def search_logged_models(self, experiment_ids, filter_string=None, datasets=None, max_results=None, order_by=None, page_token=None):
        # Models are run artifacts here (runs:/<id>/model); MLflow falls back to them.
        return PagedList([], None)

    def search_traces(self, *args, **kwargs):
        return [], None

    def query_trace_metrics(self, *args, **kwargs):
        return PagedList([], None)

    def start_trace(self, *args, **kwargs):
        raise not_supported("tracing")

    def log_spans(self, *args, **kwargs):
        raise not_supported("tracing")

    def set_trace_tag(self, *args, **kwargs):
        raise not_supported("tracing")

    def delete_traces(self, *args, **kwargs):
        raise not_supported("tracing")

    def get_trace_info(self, trace_id):
        raise _missing(f"Trace {trace_id!r} not found (tracing is not supported by the autolog store)")
