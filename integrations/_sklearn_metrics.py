"""scikit-learn metrics: training metrics, search results and post-training metrics.

Post-training metrics follow a fitted model after its fit: ``model.score(X_test, y)``
and ``sklearn.metrics.<fn>(y, model.predict(X_test))`` are logged into the model's
run as ``<name>-<dataset>`` where the dataset is the caller's variable name.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autolog.patching import options
from autolog.patching.engine import Call, safe_wrapper
from autolog.patching.params import flatten, stringify
from autolog.tracking import api
from autolog.validation import GOAL_TAG_PREFIX

if TYPE_CHECKING:
    from autolog.patching.lifecycle import FitRun
    from autolog.tracking.run import ActiveRun

NAME = "sklearn"
METRIC_FUNCTIONS = (
    "accuracy_score", "balanced_accuracy_score", "precision_score", "recall_score", "f1_score", "fbeta_score",
    "log_loss", "roc_auc_score", "average_precision_score", "matthews_corrcoef",
    "mean_squared_error", "root_mean_squared_error", "mean_absolute_error", "median_absolute_error",
    "mean_absolute_percentage_error", "r2_score", "explained_variance_score", "max_error",
)
_OUR_DIRS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    # the whole core package: patched calls pass through its engine and lifecycle frames
    os.path.dirname(os.path.dirname(os.path.abspath(api.__file__))) + os.sep,
)
_skipped_dirs: tuple[str, ...] | None = None

_model_runs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_predictions: dict[int, tuple[Any, Any, str]] = {}
_MAX_PREDICTIONS = 64


def _safe(fn: Callable[[], float]) -> float | None:
    from autolog.reporting import report

    try:
        value = float(fn())
        return value
    except Exception as exc:
        # A metric that does not apply (one class, NaN input) is skipped; our bugs surface.
        if isinstance(exc, (ValueError, TypeError)):
            return None
        report(NAME, exc)
        return None


def training_metrics(est: Any, X: Any, y: Any, sample_weight: Any, fit_result: Any = None) -> dict[str, float]:
    """Metrics of a fitted estimator on its training data, prefixed ``training_``."""
    from sklearn import metrics as M

    from autolog.integrations import _sklearn_scores as scores
    from autolog.integrations._sklearn_patch import estimator_kind

    if X is None:
        return {}
    kind = estimator_kind(est)
    sw = sample_weight
    out: dict[str, float | None] = {}
    if y is not None and kind == "classifier" and hasattr(est, "predict"):
        # One predict and one predict_proba (a forest: predict_proba alone); the metrics come from those arrays.
        proba = _proba(est, X) if hasattr(est, "predict_proba") else None
        y_pred = scores.predict_from_proba(est, proba)
        if y_pred is None:
            y_pred = est.predict(X)
        classes = getattr(est, "classes_", None)
        fast = scores.classifier_metrics(y, y_pred, proba, classes, sw) if classes is not None and scores.applies() else None
        if fast is not None:
            out.update(fast)
        else:
            out.update(_sklearn_classifier_metrics(y, y_pred, proba, classes, sw))
    elif y is not None and kind == "regressor" and hasattr(est, "predict"):
        y_pred = est.predict(X)
        fast = scores.regressor_metrics(y, y_pred, sw) if scores.applies() else None
        if fast is not None:
            out.update(fast)
        else:
            out["training_mean_squared_error"] = _safe(lambda: M.mean_squared_error(y, y_pred, sample_weight=sw))
            out["training_mean_absolute_error"] = _safe(lambda: M.mean_absolute_error(y, y_pred, sample_weight=sw))
            out["training_r2_score"] = _safe(lambda: M.r2_score(y, y_pred, sample_weight=sw))
        mse = out["training_mean_squared_error"]
        out["training_root_mean_squared_error"] = None if mse is None else math.sqrt(mse)
    elif kind == "clusterer":
        labels = getattr(est, "labels_", fit_result)
        if labels is not None:
            out["training_silhouette_score"] = _silhouette(X, labels)
    if y is not None and hasattr(est, "score"):
        # The mixins' score is the accuracy / r2 computed above: reuse it, skip a predict
        # (also through a search that scores with its model's own score).
        scorer = _scoring_estimator(est)
        owner = next((k for k in type(scorer).__mro__ if "score" in k.__dict__), None)
        base = sys.modules["sklearn.base"]
        if owner is base.ClassifierMixin and out.get("training_accuracy_score") is not None:
            out["training_score"] = out["training_accuracy_score"]
        elif owner is base.RegressorMixin and out.get("training_r2_score") is not None:
            out["training_score"] = out["training_r2_score"]
        else:
            out["training_score"] = _score(scorer, X, y, sw)
    return {k: v for k, v in out.items() if v is not None}


def _sklearn_classifier_metrics(y: Any, y_pred: Any, proba: Any, classes: Any, sw: Any) -> dict[str, float | None]:
    # The general case (multi-output, labels outside classes_): sklearn's own functions.
    from sklearn import metrics as M

    out: dict[str, float | None] = {"training_accuracy_score": _safe(lambda: M.accuracy_score(y, y_pred, sample_weight=sw))}
    prf = _safe_tuple(lambda: M.precision_recall_fscore_support(y, y_pred, average="weighted", sample_weight=sw, zero_division=0))
    if prf:
        out["training_precision_score"], out["training_recall_score"], out["training_f1_score"] = prf[:3]
    if proba is not None and getattr(proba, "ndim", 0) == 2:
        out["training_log_loss"] = _safe(lambda: M.log_loss(y, proba, sample_weight=sw, labels=classes))
        if proba.shape[1] == 2:
            out["training_roc_auc"] = _safe(lambda: M.roc_auc_score(y, proba[:, 1], sample_weight=sw))
        else:
            # MLflow's choice: one-vs-one, weighted by prevalence (sklearn takes no sample_weight here).
            out["training_roc_auc"] = _safe(lambda: M.roc_auc_score(y, proba, multi_class="ovo", average="weighted", sample_weight=sw, labels=classes))
    return out


def _scoring_estimator(est: Any) -> Any:
    # The estimator whose score() a search's score() is. A multi-metric search with a
    # callable refit names no metric for it (sklearn raises KeyError): its training_score
    # is the selected model's own score, as it is for a search with scoring=None.
    from autolog.integrations._sklearn_patch import is_search

    if not is_search(est) or not hasattr(est, "best_estimator_"):
        return est
    multimetric = getattr(est, "multimetric_", False)
    if (multimetric and not isinstance(est.refit, str)) or (est.scoring is None and not multimetric):
        return est.best_estimator_
    return est


def _safe_tuple(fn: Callable[[], Any]) -> tuple | None:
    try:
        return tuple(float(v) for v in fn()[:3])
    except (ValueError, TypeError):
        return None


def _proba(est: Any, X: Any) -> Any:
    try:
        return est.predict_proba(X)
    except (AttributeError, ValueError, TypeError, NotImplementedError):
        return None  # e.g. SVC(probability=False) exposes predict_proba but refuses it


def _silhouette(X: Any, labels: Any) -> float | None:
    from sklearn.metrics import silhouette_score

    n_labels = len(set(labels.tolist() if hasattr(labels, "tolist") else labels))
    n = len(labels)
    if not 2 <= n_labels < n:
        return None
    # Silhouette is quadratic; a fixed-size sample keeps it cheap on big data.
    return _safe(lambda: silhouette_score(X, labels, sample_size=min(n, 2000), random_state=0))


def _score(est: Any, X: Any, y: Any, sample_weight: Any) -> float | None:
    if sample_weight is not None:
        try:
            return _safe(lambda: est.score(X, y, sample_weight=sample_weight))
        except TypeError:
            pass
    return _safe(lambda: est.score(X, y))


def log_search_results(fit_run: FitRun, search: Any) -> None:
    """Parent run: best params/score and cv_results.csv; children for the best candidates.

    The children are the top ``max_tuning_runs`` candidates (None: all) by the refit
    metric, the candidate sklearn selected (``best_index_``) first, also for a callable
    refit; they are written in one transaction, tagged with the searched estimator.
    """
    run = fit_run.run
    results = search.cv_results_
    best_index = _best_index(search, results)
    if best_index is not None:
        best, _ = flatten({f"best_{k}": v for k, v in results["params"][best_index].items()})
        fit_run.log_params(best)
    if getattr(search, "best_score_", None) is not None:
        run.log_metric("best_cv_score", float(search.best_score_), step=0)
    run.log_bytes(_cv_results_csv(results), "cv_results.csv")
    limit = options.get(NAME, "max_tuning_runs")
    if limit == 0:
        return
    order = _candidate_order(search, results, best_index)
    if limit is not None:
        order = order[:limit]
    estimator = getattr(search, "estimator", None)
    cls = type(estimator) if estimator is not None else None
    base_name = cls.__name__ if cls is not None else "candidate"
    tags: dict[str, Any] = {"autolog.integration": NAME, **(options.get(NAME, "extra_tags") or {})}
    if cls is not None:
        tags.update({"autolog.model": base_name, "estimator_name": base_name, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"})
    # Successive halving lists a candidate once per round: its round and budget tell those rows apart.
    numeric = [k for k in results if k.startswith(("mean_", "std_", "rank_")) or k in ("iter", "n_resources")]
    tags.update({GOAL_TAG_PREFIX + k: goal for k in numeric if (goal := _search_goal(k))})
    children = []
    for rank, index in enumerate(order, start=1):
        params, _ = flatten(results["params"][index])
        metrics = {}
        for key in numeric:
            value = results[key][index]
            if isinstance(value, (int, float)) or hasattr(value, "__float__"):
                metrics[key] = float(value)
        children.append((f"{base_name}-candidate-{rank}", {**tags, "autolog.search_rank": str(rank)}, params, metrics))
    run.store.create_child_runs(run.id, children)


def _best_index(search: Any, results: dict[str, Any]) -> int | None:
    best = getattr(search, "best_index_", None)
    try:
        best = int(best)
    except (TypeError, ValueError):
        return None
    return best if 0 <= best < len(results["params"]) else None


def _candidate_order(search: Any, results: dict[str, Any], best_index: int | None) -> list[int]:
    # The refit metric's ranks (a named refit, else "score", else the first scorer, as
    # MLflow does), with the selected candidate first.
    refit = getattr(search, "refit", None)
    keys = [f"rank_test_{refit}"] if isinstance(refit, str) else []
    keys += ["rank_test_score"] + [k for k in results if k.startswith("rank_test_")]
    ranks = next((results[k] for k in keys if k in results), None)
    order = sorted(range(len(results["params"])), key=lambda i: (int(ranks[i]), i) if ranks is not None else (0, i))
    if best_index is not None:
        order.remove(best_index)
        order.insert(0, best_index)
    return order


def _search_goal(key: str) -> str | None:
    if key.startswith("rank_"):
        return "min"
    if key.startswith(("mean_test_", "mean_train_")):
        return "max"  # every sklearn scorer is greater-is-better: losses are negated (neg_*)
    if key in ("mean_fit_time", "mean_score_time"):
        return "min"
    return None


_TRAINING_GOALS = {
    "accuracy_score": "max", "precision_score": "max", "recall_score": "max", "f1_score": "max", "roc_auc": "max",
    "r2_score": "max", "score": "max", "silhouette_score": "max",
    "log_loss": "min", "mean_squared_error": "min", "root_mean_squared_error": "min", "mean_absolute_error": "min",
}


def set_training_goals(run: ActiveRun, metrics: dict[str, float], search: bool = False) -> None:
    """Record the direction of each ``training_*`` metric by the function that computed it, and a search's ``best_cv_score`` (one write)."""
    goals = {GOAL_TAG_PREFIX + k: g for k in metrics if (g := _TRAINING_GOALS.get(k[len("training_"):]))}
    if search:
        goals[GOAL_TAG_PREFIX + "best_cv_score"] = "max"  # sklearn scorers are greater-is-better (losses negated)
    if goals:
        run.set_tags(goals)


def _cv_results_csv(results: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    keys = list(results)
    writer = csv.writer(buffer)
    writer.writerow(keys)
    for i in range(len(results["params"])):
        writer.writerow([stringify(results[k][i]) if not isinstance(results[k][i], float) else repr(float(results[k][i])) for k in keys])
    return buffer.getvalue().encode("utf-8")


# -- post-training metrics ---------------------------------------------------------------
def remember_model(est: Any, run: ActiveRun) -> None:
    """Route later ``score``/metric calls on this model's predictions to ``run``."""
    try:
        _model_runs[est] = run
    except TypeError:
        pass


def _run_of(est: Any) -> Any:
    if est is None or not options.get(NAME, "log_post_training_metrics"):
        return None
    try:
        return _model_runs.get(est)
    except TypeError:
        return None


def _library_dirs() -> tuple[str, ...]:
    # Frames are skipped by the package they come from (autolog's, wrapt's and sklearn's
    # own folders), never by a path substring: a user's script in a folder named
    # ``sklearn/`` is the user's frame.
    global _skipped_dirs
    if _skipped_dirs is None:
        dirs = list(_OUR_DIRS)
        for name in ("wrapt", "sklearn"):
            path = getattr(sys.modules.get(name), "__file__", None)
            if path:
                dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
        if "sklearn" not in sys.modules:
            return tuple(dirs)
        _skipped_dirs = tuple(dirs)
    return _skipped_dirs


def dataset_name(data: Any, default: str = "dataset") -> str:
    """The caller's variable name for ``data`` (the first frame outside autolog's, wrapt's and sklearn's packages)."""
    skipped = _library_dirs()
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(skipped):
        frame = frame.f_back
    if frame is not None and data is not None:
        for name, value in frame.f_locals.items():
            if value is data and not name.startswith("_"):
                return name
    return default


def _before_score(call: Call) -> bool:
    run = _run_of(call.instance)
    if run is None:
        return False
    call.state["run"] = run
    X = call.args[0] if call.args else call.kwargs.get("X")
    call.state["dataset"] = dataset_name(X, "unknown_dataset")  # MLflow's name for data no variable holds
    return True


def _after_score(call: Call, result: Any) -> None:
    key = f"{type(call.instance).__name__}_score-{call.state['dataset']}"
    call.state["run"].log_metric(key, float(result))


def _before_predict(call: Call) -> bool:
    return _before_score(call)


def _after_predict(call: Call, result: Any) -> None:
    if len(_predictions) >= _MAX_PREDICTIONS:
        _predictions.pop(next(iter(_predictions)))
    _predictions[id(result)] = (result, call.state["run"], call.state["dataset"])


def post_training_patches() -> list[tuple[str, Callable]]:
    """(method, wrapper) pairs that follow a fitted model's score and predictions."""
    global _PATCHES
    if _PATCHES is None:
        from autolog.integrations.sklearn import INTEGRATION

        enabled = lambda: INTEGRATION.enabled  # noqa: E731
        predict = safe_wrapper(NAME, _before_predict, _after_predict, enabled=enabled)
        _PATCHES = [("score", safe_wrapper(NAME, _before_score, _after_score, enabled=enabled)),
                    ("predict", predict), ("predict_proba", predict)]
    return _PATCHES


_PATCHES: list[tuple[str, Callable]] | None = None


def metric_function_wrapper(name: str, enabled: Callable[[], bool]) -> Callable:
    """Wrapper for ``sklearn.metrics.<name>``: log it when its y_pred came from a tracked model."""

    def before(call: Call) -> bool:
        if not options.get(NAME, "log_post_training_metrics") or not _predictions:
            return False
        args, kwargs = call.args, call.kwargs
        candidates = list(args[1:2]) + [kwargs[k] for k in ("y_pred", "y_score", "y_proba", "y_prob", "probas_pred") if k in kwargs]
        for candidate in candidates:
            hit = _predictions.get(id(candidate))
            if hit is not None and hit[0] is candidate:
                call.state["run"], call.state["dataset"] = hit[1], hit[2]
                return True
        return False

    def after(call: Call, result: Any) -> None:
        try:
            value = float(result)
        except (TypeError, ValueError):
            return  # per-class arrays (average=None) are not one metric
        call.state["run"].log_metric(f"{name}-{call.state['dataset']}", value)

    return safe_wrapper(NAME, before, after, enabled=enabled)
