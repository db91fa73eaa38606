"""scikit-learn integration, the patching half: every estimator's fit, searches, post-training metrics.

Patching never walks ``all_estimators()`` (that imports all of scikit-learn): it wraps
the estimator classes that exist (``BaseEstimator.__subclasses__()``, recursively) and
hooks ``BaseEstimator.__init_subclass__`` (and ``_SetOutputMixin``'s) for classes defined later, wrapping only each
class's own ``fit``/``fit_transform``/``fit_predict`` (inherited ones are covered by the
parent's wrapper; the engine's re-entrancy guard makes ``super().fit()`` log once).
``joblib.Parallel`` is wrapped so that tasks a search hands to worker threads carry the
"inside a patched call" mark: the clones it fits there are nested, not runs of their own.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any

from autolog.integrations._sklearn_metrics import (
    dataset_name,
    log_search_results,
    post_training_patches,
    remember_model,
    set_training_goals,
    training_metrics,
)
from autolog.integrations._sklearn_models import save_model_later
from autolog.integrations.sklearn import INTEGRATION
from autolog.patching import options
from autolog.patching.datasets import dataset_records
from autolog.patching.engine import QUIET, REGISTRY, Call, carry_inside, inside_patched_call, passthrough_guard, safe_wrapper
from autolog.patching.lifecycle import open_fit_run
from autolog.patching.params import log_flat_params
from autolog.patching.plugins import when_imported
from autolog.reporting import report

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
CV_HELPERS = ("cross_validate", "cross_val_score", "cross_val_predict", "learning_curve", "validation_curve", "permutation_test_score")
MODEL_KINDS = ("classifier", "regressor", "clusterer", "outlier_detector", "density_estimator")
NAME = "sklearn"


def _enabled() -> bool:
    return INTEGRATION.enabled


def estimator_kind(est: Any) -> str | None:
    """The estimator type from scikit-learn's tags (classifier, regressor, ...), if any."""
    try:
        return est.__sklearn_tags__().estimator_type
    except Exception:
        return getattr(est, "_estimator_type", None)


def is_search(est: Any) -> bool:
    search = sys.modules.get("sklearn.model_selection._search")
    return search is not None and isinstance(est, search.BaseSearchCV)


def _has_own_integration(est: Any) -> bool:
    # XGBClassifier, LGBMRegressor, ...: their framework's integration logs them (rounds,
    # importances, native model) when it is enabled; sklearn steps aside.
    from autolog.patching.plugins import discover

    root = type(est).__module__.partition(".")[0]
    return root != "sklearn" and any(i.enabled and i.module == root for i in discover().values())


def is_preprocessing(est: Any) -> bool:
    """Transformer-like: transforms but does not predict (scalers, vectorizers, PCA, ColumnTransformer).

    ``CountVectorizer`` is no ``TransformerMixin``, so the test is by behaviour, as MLflow's
    users expect: anything with ``transform``/``fit_transform`` and no ``predict``.
    """
    if hasattr(est, "predict"):
        return False
    base = sys.modules["sklearn.base"]
    return isinstance(est, base.TransformerMixin) or hasattr(est, "transform") or hasattr(est, "fit_transform")


def should_log(est: Any) -> bool | str:
    """Models, pipelines and searches log; standalone preprocessing only when asked.

    Unlogged preprocessing answers ``QUIET``: what it fits inside (``SelectFromModel``'s
    estimator) logs nothing either, and it never takes a user run's first-model slot.
    """
    if _has_own_integration(est):
        return False
    if is_search(est) or estimator_kind(est) in MODEL_KINDS:
        return True
    if is_preprocessing(est):
        return True if options.get(NAME, "log_preprocessing") else QUIET
    return True


_SIGNATURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _signature(est: Any, method: str) -> Any:
    import inspect

    cls = type(est)
    per_class = _SIGNATURES.get(cls)
    if per_class is None:
        per_class = _SIGNATURES[cls] = {}
    sig = per_class.get(method)
    if sig is None:
        sig = per_class[method] = inspect.signature(getattr(est, method))
    return sig


def _fit_inputs(call: Call) -> tuple[Any, Any, Any]:
    """(X, y, sample_weight) bound with the estimator's own signature: ``fit(X, y, None, None, w)`` works."""
    args, kwargs = call.args, call.kwargs
    try:
        sig = _signature(call.instance, call.state.get("method", "fit"))
        bound = sig.bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
        return X, y, kwargs.get("sample_weight")
    X = y = sample_weight = None
    for i, param in enumerate(sig.parameters.values()):
        if param.kind is param.VAR_KEYWORD:
            sample_weight = bound.get(param.name, {}).get("sample_weight", sample_weight)
        elif param.kind is param.VAR_POSITIONAL:
            continue
        elif i == 0:
            X = bound.get(param.name)
        elif param.name in ("y", "Y"):
            y = bound.get(param.name)
        elif param.name == "sample_weight":
            sample_weight = bound.get(param.name)
    return X, y, sample_weight


def _estimator_tags(cls: type) -> dict[str, str]:
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"}


def _before_fit(call: Call) -> bool | str:
    est = call.instance
    if est is None:
        return False
    decision = should_log(est)
    if decision is not True:
        return decision
    cls = type(est)
    tags = _estimator_tags(cls)
    data_params: dict[str, str] = {}
    try:
        # Fingerprints go in with the run's other tags and params: one write each.
        if options.get(NAME, "log_datasets"):
            X, y, _ = _fit_inputs(call)
            name = dataset_name(X, default="X_train")
            for key, value in ((name, X), (f"{name}.y", y)):
                if value is not None:
                    params, context = dataset_records(key, value)
                    data_params.update(params)
                    tags.update(context)
    except Exception as exc:
        report(NAME, exc)
    fit_run = open_fit_run(NAME, cls.__name__, model=est, tags=tags)
    if fit_run is None:
        return False
    call.state["fit_run"] = fit_run
    try:
        log_flat_params(fit_run, {**est.get_params(deep=True), **data_params})
        if not fit_run.owned and data_params:
            fit_run.run.set_tags({k: v for k, v in tags.items() if k.startswith("dataset.")})  # a user's run took no creation tags
    except Exception as exc:
        report(NAME, exc)
    return True


def _after_fit(call: Call, result: Any) -> None:
    fit_run = call.state["fit_run"]
    est = call.instance
    try:
        X, y, sample_weight = _fit_inputs(call)
        if is_search(est):
            log_search_results(fit_run, est)
        metrics = training_metrics(est, X, y, sample_weight, fit_result=result if call.state.get("method") == "fit_predict" else None)
        if metrics:
            fit_run.run.log_metrics(metrics, step=0)
        if metrics or is_search(est):
            set_training_goals(fit_run.run, metrics, search=is_search(est) and getattr(est, "best_score_", None) is not None)
        if options.get(NAME, "log_models"):
            save_model_later(fit_run.run, est)
            if is_search(est) and getattr(est, "best_estimator_", None) is not None:
                save_model_later(fit_run.run, est.best_estimator_, "best_estimator")  # as MLflow logs it
        remember_model(est, fit_run.run)
    finally:
        fit_run.finish("FINISHED")


def _on_fit_error(call: Call, exc: BaseException) -> None:
    call.state["fit_run"].finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")


def _fit_wrapper(method: str):
    def before(call: Call) -> bool:
        call.state["method"] = method
        return _before_fit(call)

    return safe_wrapper(NAME, before, _after_fit, _on_fit_error, enabled=_enabled)


_WRAPPERS: dict[str, Any] = {}


def _owner(cls: type, method: str) -> type | None:
    for klass in cls.__mro__:
        if method in klass.__dict__:
            return None if klass is object else klass
    return None


def patch_class(cls: type) -> None:
    """Wrap the fit-like methods of ``cls`` where they are defined, mixins included.

    ``LogisticRegression.predict`` lives on a mixin outside the BaseEstimator tree, so each
    method is wrapped on the class of the MRO that defines it (once, however many
    estimators share it).
    """
    for method, wrapper in [(m, _WRAPPERS[m]) for m in FIT_METHODS] + post_training_patches():
        owner = _owner(cls, method)
        if owner is not None:
            REGISTRY.apply(NAME, owner, method, wrapper)


def _all_subclasses(root: type) -> list[type]:
    seen: list[type] = []
    stack = [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return seen


def patch(sklearn: Any) -> None:
    """Wrap every estimator class that exists and hook the ones defined later."""
    import sklearn.base as base

    for method in FIT_METHODS:
        _WRAPPERS.setdefault(method, _fit_wrapper(method))
    for cls in [base.BaseEstimator, *_all_subclasses(base.BaseEstimator)]:
        patch_class(cls)
    _hook_subclasses(base.BaseEstimator)
    set_output = sys.modules.get("sklearn.utils._set_output")
    if set_output is not None and hasattr(set_output, "_SetOutputMixin"):
        _hook_subclasses(set_output._SetOutputMixin)
    when_imported(INTEGRATION, "joblib", _patch_joblib)
    when_imported(INTEGRATION, "sklearn.model_selection", _patch_cv_helpers)
    when_imported(INTEGRATION, "sklearn.metrics", _patch_metric_functions)


_defining = threading.local()


def _hook_subclasses(root: type) -> None:
    """Patch every class defined later under ``root``, once its whole ``__init_subclass__`` chain ran.

    ``_SetOutputMixin.__init_subclass__`` wraps a new transformer's ``fit_transform`` after
    ``BaseEstimator``'s hook: patching in the innermost hook would put our wrapper under
    sklearn's, where ``disable`` cannot take it off. So both hooks count their depth and
    only the outermost one patches.
    """
    inherited = root.__init_subclass__.__func__

    def __init_subclass__(cls, **kwargs):
        depth = getattr(_defining, "depth", 0)
        _defining.depth = depth + 1
        try:
            inherited(cls, **kwargs)
        finally:
            _defining.depth = depth
        if depth == 0 and INTEGRATION.enabled:
            try:
                patch_class(cls)
            except Exception as exc:
                report(NAME, exc)

    REGISTRY.set_attribute(NAME, root, "__init_subclass__", classmethod(__init_subclass__))


def _patch_cv_helpers(model_selection: Any) -> None:
    # Helpers that fit many clones create no runs: they only mark "inside a patched call".
    validation = sys.modules.get("sklearn.model_selection._validation")
    for module in (model_selection, validation):
        for name in CV_HELPERS:
            if module is not None and name in module.__dict__:
                REGISTRY.apply(NAME, module, name, passthrough_guard)


def _parallel_call(wrapped, instance, args, kwargs):
    # joblib.Parallel(...)(iterable): on a thread backend, each task carries the caller's
    # "inside a patched call" mark into its worker thread (process backends get the
    # tasks untouched; their workers are not patched).
    # The mark is read here, on the caller's thread: joblib may consume the task
    # generator later from one of its own threads.
    backend = getattr(instance, "_backend", None)
    if args and inside_patched_call() and getattr(backend, "uses_threads", False) and _enabled():
        tasks = args[0]
        carried = ((carry_inside(task[0], True), *task[1:]) for task in tasks)
        # A list stays a list: joblib reads len() of a sized iterable.
        args = (list(carried) if isinstance(tasks, (list, tuple)) else carried, *args[1:])
    return wrapped(*args, **kwargs)


def _patch_joblib(joblib: Any) -> None:
    import joblib.parallel

    REGISTRY.apply(NAME, joblib.parallel.Parallel, "__call__", _parallel_call)


def _patch_metric_functions(metrics: Any) -> None:
    from autolog.integrations._sklearn_metrics import METRIC_FUNCTIONS, metric_function_wrapper

    for name in METRIC_FUNCTIONS:
        if name in metrics.__dict__:
            REGISTRY.apply(NAME, metrics, name, metric_function_wrapper(name, _enabled))
