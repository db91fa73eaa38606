"""LightGBM integration: ``lightgbm.train``, ``lightgbm.cv`` and the scikit-learn wrappers' ``fit``.

What a run gets:

- Metrics, one history per eval set × eval metric, named ``<data_name>-<eval_name>`` as
  LightGBM reports them (``valid_0-l2``, ``training-binary_logloss``, or the user's
  ``valid_names``/``eval_names``). ``lightgbm.cv`` logs each aggregated metric's mean and
  standard deviation over the folds as ``<data>-<metric>-mean`` and ``<data>-<metric>-stdv``
  (``valid-l2-mean``, ``valid-l2-stdv``; LightGBM's own result keys are ``valid l2-mean``).
  ``step`` is the boosting round, 0-based (continuing from ``init_model``'s rounds);
  ``log_every_n_steps`` thins them and the last round is always logged.
- Early stopping: ``best_iteration`` as a 0-based round, the step where the best
  values sit in the histories (LightGBM's ``Booster.best_iteration`` counts from 1, so
  it is this + 1), ``best_score`` (the first validation metric at that round) and
  ``stopped_iteration`` (the last round trained), logged at the last round's step.
- Params: the params as passed (the scikit-learn wrapper's ``get_params()`` without its
  ``None`` values, then the params it hands to ``train``), ``num_boost_round``,
  ``valid_names``, the early-stopping rounds (from params or an ``early_stopping``
  callback), for ``cv`` its fold settings, and the resolved values that matter from the
  model's parameter block (``objective``, ``learning_rate``, ``num_leaves``, ``max_depth``,
  ``metric``, ...).
- Dataset fingerprint ``dataset.train.*`` of the raw ``X``/``y`` given to ``fit``, or of
  ``Dataset.data``/``label`` while the Dataset still holds them (else its shape).
- Artifacts: ``feature_importance.json`` (split, gain) and ``feature_importance_gain.png``
  (top 20, drawn off-thread, needs matplotlib); the model as ``model/model.txt``
  (LightGBM's text format, every round) + ``model/meta.json`` when ``log_models``, loaded
  back by :func:`load_model` with its ``best_iteration``; with ``checkpoint="all"`` the
  model every N rounds (N = ``log_every_n_steps``, or 10 when that is 1) as
  ``checkpoints/round-<N>.txt``, with ``"best"``/``"last"`` the final model as
  ``checkpoints/<policy>.txt``. ``cv`` saves no model.

``LGBMClassifier.fit`` calls ``lightgbm.train`` inside: one run, with the wrapper's params.
"""

from __future__ import annotations

from typing import Any

from autolog.integrations._boosting import (
    Session,
    argument,
    begin_wrapper_fit,
    end_wrapper_fit,
    feature_names,
    log_importances,
    own_fit_classes,
    set_argument,
    start,
    tidy_number,
    train_entry,
    unpark,
    with_callback,
)
from autolog.patching import options
from autolog.patching.datasets import log_dataset
from autolog.patching.engine import REGISTRY, Call, safe_wrapper
from autolog.patching.lifecycle import open_fit_run
from autolog.patching.models import model_file, resolve_store, save_model_files, versions_of
from autolog.patching.params import log_flat_params
from autolog.patching.plugins import Integration, integration_autolog, when_imported

NAME = "lightgbm"
IMPORTANCE_TYPES = ("split", "gain")
RESOLVED = ("boosting", "objective", "metric", "learning_rate", "num_leaves", "max_depth", "min_data_in_leaf",
            "min_sum_hessian_in_leaf", "bagging_fraction", "bagging_freq", "feature_fraction", "lambda_l1", "lambda_l2",
            "min_gain_to_split", "max_bin", "num_iterations", "early_stopping_round", "num_class", "seed", "num_threads",
            "device_type", "scale_pos_weight", "is_unbalance", "linear_tree", "data_sample_strategy")
EARLY_STOPPING_ALIASES = ("early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change")
# Between LightGBM's record_evaluation (20) and early_stopping (30): the round that
# triggers early stopping is still seen.
CALLBACK_ORDER = 25
# Positions of parameters that may be passed positionally.
TRAIN_POS = {"params": 0, "train_set": 1, "num_boost_round": 2, "valid_sets": 3, "valid_names": 4, "feval": 5, "callbacks": 8}
CV_POS = {"params": 0, "train_set": 1, "num_boost_round": 2, "folds": 3, "nfold": 4, "stratified": 5, "shuffle": 6,
          "metrics": 7, "feval": 8, "seed": 11, "callbacks": 12, "eval_train_metric": 13}


def _enabled() -> bool:
    return INTEGRATION.enabled


class AutologCallback:
    """A LightGBM callback handing every round's evaluation results to an autolog session."""

    def __init__(self, session: Session) -> None:
        # Instance attributes: lightgbm.train fills a missing ``order`` into the instance dict.
        self.session = session
        self.order = CALLBACK_ORDER
        self.before_iteration = False

    def __call__(self, env: Any) -> None:
        self.session.step(env.iteration, env.evaluation_result_list, env.model)


def _round_items(results: list) -> Any:
    # (data_name, eval_name, value, is_higher_better[, stdv]) per eval set × metric.
    for result in results:
        yield f"{result[0]}-{result[1]}", float(result[2])


def _cv_items(results: list) -> Any:
    for result in results:
        yield f"{result[0]}-{result[1]}-mean", float(result[2])
        yield f"{result[0]}-{result[1]}-stdv", float(result[4])


def _snapshot(booster: Any) -> tuple[bytes, str]:
    return booster.model_to_string(num_iteration=-1).encode("utf-8"), "txt"


def _arg(call: Call, table: dict[str, int], name: str, default: Any = None) -> Any:
    return argument(call, table[name], name, default)


def _early_stopping_rounds(params: dict, callbacks: Any) -> Any:
    for alias in EARLY_STOPPING_ALIASES:
        if params.get(alias):
            return params[alias]
    for cb in callbacks or []:
        if getattr(cb, "stopping_rounds", None):
            return cb.stopping_rounds
    return None


# -- params and data --------------------------------------------------------------------
def _train_params(call: Call) -> dict[str, Any]:
    # The scikit-learn wrappers pass their unset options as None: the resolved values come later.
    params = {k: v for k, v in dict(_arg(call, TRAIN_POS, "params") or {}).items() if v is not None}
    params["num_boost_round"] = _arg(call, TRAIN_POS, "num_boost_round", 100)
    train_set = _arg(call, TRAIN_POS, "train_set")
    valid_sets = _arg(call, TRAIN_POS, "valid_sets")
    if valid_sets is not None:
        valid_sets = [valid_sets] if not isinstance(valid_sets, (list, tuple)) else valid_sets
        given = _arg(call, TRAIN_POS, "valid_names")
        given = [given] if isinstance(given, str) else list(given or [])
        names = [given[i] if i < len(given) else ("training" if v is train_set else f"valid_{i}") for i, v in enumerate(valid_sets)]
        params["valid_names"] = ",".join(map(str, names))
    rounds = _early_stopping_rounds(params, _arg(call, TRAIN_POS, "callbacks"))
    if rounds and not any(a in params for a in EARLY_STOPPING_ALIASES):
        params["early_stopping_round"] = rounds
    if _arg(call, TRAIN_POS, "feval"):  # the scikit-learn wrappers pass [] when there is none
        params["feval"] = _arg(call, TRAIN_POS, "feval")
    return params


def _join(session: Session, call: Call) -> None:
    """Log the train-level params and add our callback to this train call."""
    params = _train_params(call)  # read before our callback joins the user's list
    set_argument(call, TRAIN_POS["callbacks"], "callbacks", with_callback(_arg(call, TRAIN_POS, "callbacks"), AutologCallback(session)))
    log_flat_params(session.fit_run, params)


def _log_lgb_dataset(fit_run: Any, train_set: Any) -> None:
    data = getattr(train_set, "data", None)
    if data is not None and not isinstance(data, (str, bytes)) and not hasattr(data, "__fspath__"):
        log_dataset(fit_run, "train", data)
        label = getattr(train_set, "label", None)
        if label is not None:
            log_dataset(fit_run, "train.label", label)
    elif getattr(train_set, "_handle", None) is not None:
        fit_run.log_params({"dataset.train.shape": f"{train_set.num_data()}x{train_set.num_feature()}"})
    elif data is not None:
        fit_run.log_params({"dataset.train.path": str(data)})


def _resolved_params(booster: Any) -> dict[str, str]:
    # The model text ends with every resolved parameter; starting past the last tree skips the trees.
    text = booster.model_to_string(start_iteration=booster.current_iteration())
    block = text[text.find("\nparameters:"):]
    found = {}
    for line in block.splitlines():
        if line.startswith("[") and ": " in line:
            key, _, value = line[1:].rstrip("]").partition(": ")
            if key in RESOLVED and value != "":
                found[key] = tidy_number(value)
    return found


# -- lightgbm.train and lightgbm.cv ------------------------------------------------------
def _before_train(call: Call) -> bool:
    fit_run = open_fit_run(NAME, "lightgbm.train", tags={"estimator_class": "lightgbm.Booster"})
    if fit_run is None:
        return False
    session = call.state["session"] = Session(NAME, fit_run, _round_items, _snapshot)
    session.injected = True
    call.kwargs = dict(call.kwargs)
    train_set = _arg(call, TRAIN_POS, "train_set")
    log_data = train_set is not None and options.get(NAME, "log_datasets")
    return start(session, [lambda: _join(session, call), lambda: log_data and _log_lgb_dataset(fit_run, train_set)])


def _after_train(call: Call, booster: Any) -> None:
    session = call.state["session"]
    session.close("FINISHED", _closing(session, booster))


def _before_cv(call: Call) -> bool:
    fit_run = open_fit_run(NAME, "lightgbm.cv", tags={"estimator_class": "lightgbm.CVBooster"})
    if fit_run is None:
        return False
    session = call.state["session"] = Session(NAME, fit_run, _cv_items)
    call.kwargs = dict(call.kwargs)
    callbacks = _arg(call, CV_POS, "callbacks")
    set_argument(call, CV_POS["callbacks"], "callbacks", with_callback(callbacks, AutologCallback(session)))
    train_set = _arg(call, CV_POS, "train_set")
    log_data = train_set is not None and options.get(NAME, "log_datasets")
    return start(session, [lambda: _log_cv_params(call, callbacks, fit_run), lambda: log_data and _log_lgb_dataset(fit_run, train_set)])


def _log_cv_params(call: Call, callbacks: Any, fit_run: Any) -> None:
    params = {k: v for k, v in dict(_arg(call, CV_POS, "params") or {}).items() if v is not None}
    for name, default in (("num_boost_round", 100), ("nfold", 5), ("stratified", True), ("shuffle", True), ("seed", 0),
                          ("metrics", None), ("eval_train_metric", False), ("folds", None), ("feval", None)):
        value = _arg(call, CV_POS, name, default)
        if name == "folds" and value is not None:
            value = type(value).__name__  # a splitter object or a list of index arrays: its kind, not its content
        if value is not None:
            params.setdefault(f"cv.{name}" if name in ("seed", "metrics") else name, value)
    rounds = _early_stopping_rounds(params, callbacks)
    if rounds and not any(a in params for a in EARLY_STOPPING_ALIASES):
        params["early_stopping_round"] = rounds
    call.state["early_stopping"] = bool(rounds)
    log_flat_params(fit_run, params)


def _after_cv(call: Call, results: Any) -> None:
    session = call.state["session"]

    def early_stopping() -> None:
        means = [k for k in results if k.endswith("-mean")] if isinstance(results, dict) else []
        if not call.state.get("early_stopping") or not means:
            return
        best = len(results[means[0]]) - 1  # cv cuts every history at the best round
        step = session.last if session.last is not None else best
        session.run.log_metrics({"best_iteration": best, "stopped_iteration": step,
                                 "best_score": float(results[means[0]][best])}, step=step)

    session.close("FINISHED", [early_stopping])


def _on_error(call: Call, exc: BaseException) -> None:
    unpark(call.state.pop("token", None))
    session = call.state.get("session")
    if session is not None:
        session.abort(exc)


# -- the scikit-learn wrappers ---------------------------------------------------------------
def _before_fit(call: Call) -> bool:
    return begin_wrapper_fit(NAME, call, lambda fit_run: Session(NAME, fit_run, _round_items, _snapshot))


def _after_fit(call: Call, result: Any) -> None:
    end_wrapper_fit(call, _closing)


# -- closing steps ---------------------------------------------------------------------------
def _closing(session: Session, booster: Any, est: Any = None) -> list:
    run = session.run

    def early_stopping() -> None:
        best = int(getattr(booster, "best_iteration", 0) or 0)
        if best <= 0:
            return
        step = session.last if session.last is not None else best - 1
        metrics: dict[str, Any] = {"best_iteration": best - 1, "stopped_iteration": step}
        scores = [(data, values) for data, values in (getattr(booster, "best_score", None) or {}).items() if values]
        scores.sort(key=lambda item: item[0] == "training")  # a validation set first
        if scores:
            metrics["best_score"] = float(next(iter(scores[0][1].values())))
        run.log_metrics(metrics, step=step)

    def resolved_params() -> None:
        session.fit_run.log_params(_resolved_params(booster))

    def importances() -> None:
        names = feature_names(booster.feature_name(), booster.num_feature())
        found = {}
        for kind in IMPORTANCE_TYPES:
            values = booster.feature_importance(importance_type=kind)
            found[kind] = {name: float(value) for name, value in zip(names, values)}
        log_importances(session, found)

    def model() -> None:
        if options.get(NAME, "log_models"):
            save_model(run, booster, est)

    def checkpoints() -> None:
        if session.policy == "all":
            session.checkpoint(booster, booster.current_iteration())
        elif session.policy in ("best", "last"):
            data, ext = _snapshot(booster)
            run.log_bytes(data, f"checkpoints/{session.policy}.{ext}")

    return [early_stopping, resolved_params, importances, model, checkpoints]


# -- models ------------------------------------------------------------------------------------
def save_model(run: Any, booster: Any, est: Any = None, artifact_dir: str = "model") -> str:
    """Save a Booster in LightGBM's text format (every round) with ``meta.json``; return its path."""
    def write(folder: str) -> str:
        booster.save_model(f"{folder}/model.txt", num_iteration=-1)
        return "model.txt"

    cls = type(est) if est is not None else None
    extra = {"format": "text", "class": f"{cls.__module__}.{cls.__qualname__}" if cls else "lightgbm.basic.Booster",
             "best_iteration": int(getattr(booster, "best_iteration", 0) or 0), "num_trees": booster.num_trees()}
    return save_model_files(run, write, NAME, artifact_dir, versions_of("lightgbm", "numpy", "scipy"), extra)


def load_model(run_id: str, store: Any = None, artifact_dir: str = "model") -> Any:
    """Load the ``lightgbm.Booster`` a run saved; it predicts exactly as the trained one.

    The file keeps every round; the saved ``best_iteration`` is set back on the booster,
    so ``predict`` uses the same rounds by default. Models trained through
    ``LGBMClassifier``/``LGBMRegressor`` come back as their Booster; ``meta.json`` names the class.
    """
    import lightgbm

    with model_file(resolve_store(store), run_id, artifact_dir) as (meta, path):
        booster = lightgbm.Booster(model_file=path)
    booster.best_iteration = int(meta.get("best_iteration", 0) or 0)
    return booster


# -- patching ------------------------------------------------------------------------------------
_WRAPPERS: dict[str, Any] = {}


def _wrappers() -> dict[str, Any]:
    if not _WRAPPERS:
        safe = safe_wrapper(NAME, _before_train, _after_train, _on_error, enabled=_enabled)
        _WRAPPERS["train"] = train_entry(NAME, safe, _join)
        _WRAPPERS["cv"] = safe_wrapper(NAME, _before_cv, _after_cv, _on_error, enabled=_enabled)
        _WRAPPERS["fit"] = safe_wrapper(NAME, _before_fit, _after_fit, _on_error, enabled=_enabled)
    return _WRAPPERS


def _patch(lightgbm: Any) -> None:
    import lightgbm.engine as engine

    wrappers = _wrappers()
    # `from .engine import train, cv` binds the functions in each module: patch every binding.
    for module in (engine, lightgbm):
        for name in ("train", "cv"):
            if name in module.__dict__:
                REGISTRY.apply(NAME, module, name, wrappers[name])
    when_imported(INTEGRATION, "lightgbm.sklearn", _patch_sklearn)


def _patch_sklearn(module: Any) -> None:
    if "train" in module.__dict__:
        REGISTRY.apply(NAME, module, "train", _wrappers()["train"])
    for cls in own_fit_classes(module.LGBMModel):
        REGISTRY.apply(NAME, cls, "fit", _wrappers()["fit"])


INTEGRATION = Integration(
    name=NAME,
    module="lightgbm",
    distribution="lightgbm",
    supported=">=4.0,<5",
    extra="lightgbm",
    patch=_patch,
)
autolog = integration_autolog(NAME)
"""Enable only the LightGBM integration (options win over the global ``autolog()`` ones)."""
