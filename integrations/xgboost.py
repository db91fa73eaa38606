"""XGBoost integration: ``xgboost.train`` and the scikit-learn wrappers' ``fit``.

What a run gets:

- Metrics, one history per eval set × eval metric, named as XGBoost prints them:
  ``<eval name>-<metric>`` (``validation_0-logloss`` for the scikit-learn API, the names
  given in ``evals=[(dvalid, "valid")]`` for ``xgboost.train``). ``step`` is the boosting
  round, 0-based (continuing from ``xgb_model``'s rounds). ``log_every_n_steps`` thins
  them; the last round is always logged. With early stopping: ``best_iteration`` (the
  0-based round, as XGBoost counts), ``best_score`` and ``stopped_iteration`` (the last
  round trained), logged at the last round's step.
- Params: the booster params as passed (the scikit-learn wrapper's ``get_params()``
  without its unset ``None`` values, then the params it hands to ``train``),
  ``num_boost_round``, ``early_stopping_rounds``, ``evals`` (the eval set names), and
  the resolved values that matter read from the booster's config (``objective``,
  ``eta``, ``max_depth``, ``tree_method``, ``eval_metric``, ``base_score``, ...).
- Dataset fingerprint ``dataset.train.*`` (shape, dtype, digest) of the raw ``X``/``y``
  given to ``fit``, or of the training ``DMatrix``'s data when it can hand it back.
- Artifacts: ``feature_importance.json`` (weight, gain, cover, total_gain, total_cover)
  and a bar chart of the top 20 by gain, ``feature_importance_gain.png`` (drawn off-thread;
  skipped without matplotlib);
  the model as ``model/model.ubj`` (UBJSON) + ``model/meta.json`` when ``log_models``,
  loaded back by :func:`load_model`; with ``checkpoint="all"`` the model every N rounds
  (N = ``log_every_n_steps``, or 10 when that is 1) as ``checkpoints/round-<N>.ubj``,
  with ``"best"``/``"last"`` the final model as ``checkpoints/<policy>.ubj`` (it keeps
  ``best_iteration``).

``XGBClassifier.fit`` calls ``xgboost.train`` inside: one run, with the wrapper's params.
"""

from __future__ import annotations

import json
from typing import Any

from autolog.integrations._boosting import (
    Session,
    argument,
    begin_wrapper_fit,
    csr_digest,
    end_wrapper_fit,
    feature_names,
    log_importances,
    own_fit_classes,
    pick_leaves,
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

NAME = "xgboost"
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
# Resolved config values worth a param (leaf names in Booster.save_config()).
RESOLVED = ("booster", "objective", "eta", "learning_rate", "max_depth", "max_leaves", "min_child_weight", "subsample", "colsample_bytree",
            "colsample_bylevel", "colsample_bynode", "lambda", "alpha", "gamma", "min_split_loss", "max_bin", "grow_policy",
            "tree_method", "base_score", "num_class", "seed", "nthread", "device", "scale_pos_weight", "num_feature")
# DMatrix data is copied back out for the digest only up to this many cells.
DIGEST_LIMIT = 20_000_000

_callback_class: type | None = None


def _enabled() -> bool:
    return INTEGRATION.enabled


def callback_class() -> type:
    """The ``xgboost.callback.TrainingCallback`` subclass feeding a session (built on first use)."""
    global _callback_class
    if _callback_class is None:
        from xgboost.callback import TrainingCallback

        class AutologCallback(TrainingCallback):
            """Hands every round's latest eval values to an autolog session."""

            def __init__(self, session: Session) -> None:
                super().__init__()
                self.session = session

            def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
                self.session.step(epoch, evals_log, model)
                return False

        _callback_class = AutologCallback
    return _callback_class


def _round_items(evals_log: dict) -> Any:
    # evals_log: {eval name: {metric: [value per round]}}; the newest value is last.
    for data, metrics in evals_log.items():
        for metric, values in metrics.items():
            value = values[-1]
            yield f"{data}-{metric}", float(value[0] if isinstance(value, tuple) else value)


def _snapshot(booster: Any) -> tuple[bytes, str]:
    return bytes(booster.save_raw("ubj")), "ubj"


def _new_session(fit_run: Any) -> Session:
    return Session(NAME, fit_run, _round_items, _snapshot)


# -- params and data -------------------------------------------------------------------
def _params_dict(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, dict):
        return dict(params)
    merged: dict[str, Any] = {}  # a list of pairs may repeat a key (several eval_metric)
    for key, value in params:
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _train_params(call: Call) -> dict[str, Any]:
    # The scikit-learn wrappers pass their unset options as None: the resolved values come later.
    params = {k: v for k, v in _params_dict(argument(call, 0, "params")).items() if v is not None}
    params["num_boost_round"] = argument(call, 2, "num_boost_round", 10)
    kwargs = call.kwargs
    if kwargs.get("early_stopping_rounds"):
        params["early_stopping_rounds"] = kwargs["early_stopping_rounds"]
    if kwargs.get("maximize") is not None:
        params["maximize"] = kwargs["maximize"]
    evals = kwargs.get("evals")
    if evals:
        params["evals"] = ",".join(str(name) for _, name in evals)
    for key in ("obj", "custom_metric"):
        if kwargs.get(key) is not None:
            params[key] = kwargs[key]
    return params


def _join(session: Session, call: Call) -> None:
    """Log the train-level params and add our callback to this train call."""
    call.kwargs["callbacks"] = with_callback(call.kwargs.get("callbacks"), callback_class()(session))
    log_flat_params(session.fit_run, _train_params(call))


def _log_dmatrix(fit_run: Any, dtrain: Any) -> None:
    rows, cols = dtrain.num_row(), dtrain.num_col()
    data = None
    if type(dtrain).__name__ == "DMatrix" and rows * cols <= DIGEST_LIMIT:
        try:
            data = dtrain.get_data()  # a CSR copy; QuantileDMatrix and external memory cannot
        except Exception:
            data = None
    if data is not None:
        fit_run.log_params({"dataset.train.shape": f"{rows}x{cols}", "dataset.train.dtype": str(data.dtype),
                            "dataset.train.digest": csr_digest(data)})
    else:
        fit_run.log_params({"dataset.train.shape": f"{rows}x{cols}"})
    fit_run.run.set_tag("dataset.train.context", "training")
    label = dtrain.get_label()
    if label is not None and len(label):
        log_dataset(fit_run, "train.label", label)


# -- xgboost.train ------------------------------------------------------------------------
def _before_train(call: Call) -> bool:
    fit_run = open_fit_run(NAME, "xgboost.train", tags={"estimator_class": "xgboost.Booster"})
    if fit_run is None:
        return False
    session = call.state["session"] = _new_session(fit_run)
    session.injected = True
    call.kwargs = dict(call.kwargs)
    dtrain = argument(call, 1, "dtrain")
    log_data = dtrain is not None and options.get(NAME, "log_datasets")
    return start(session, [lambda: _join(session, call), lambda: log_data and _log_dmatrix(fit_run, dtrain)])


def _after_train(call: Call, booster: Any) -> None:
    session = call.state["session"]
    session.close("FINISHED", _closing(session, booster))


def _on_error(call: Call, exc: BaseException) -> None:
    unpark(call.state.pop("token", None))
    session = call.state.get("session")
    if session is not None:
        session.abort(exc)


# -- the scikit-learn wrappers --------------------------------------------------------------
def _before_fit(call: Call) -> bool:
    return begin_wrapper_fit(NAME, call, _new_session)


def _after_fit(call: Call, result: Any) -> None:
    end_wrapper_fit(call, _closing)


# -- closing steps ---------------------------------------------------------------------------
def _closing(session: Session, booster: Any, est: Any = None) -> list:
    run = session.run

    def early_stopping() -> None:
        best = booster.attr("best_iteration")
        if best is None:
            return
        step = session.last if session.last is not None else 0
        metrics = {"best_iteration": int(best), "stopped_iteration": step}
        score = booster.attr("best_score")
        if score is not None:
            metrics["best_score"] = float(score)
        run.log_metrics(metrics, step=step)

    def resolved_params() -> None:
        config = json.loads(booster.save_config())
        found = pick_leaves(config, RESOLVED)
        metrics = config.get("learner", {}).get("metrics") or []
        if metrics:
            found["eval_metric"] = ",".join(m.get("name", "") for m in metrics)
        session.fit_run.log_params({k: tidy_number(str(v)) for k, v in found.items()})

    def importances() -> None:
        names = feature_names(booster.feature_names, booster.num_features())
        found = {}
        for kind in IMPORTANCE_TYPES:
            scores = booster.get_score(importance_type=kind)
            found[kind] = {_name(key, names): float(value) for key, value in scores.items() if not isinstance(value, list)}
        log_importances(session, found)

    def model() -> None:
        if options.get(NAME, "log_models"):
            save_model(run, booster, est)

    def checkpoints() -> None:
        if session.policy == "all":
            session.checkpoint(booster, booster.num_boosted_rounds())
        elif session.policy in ("best", "last"):
            data, ext = _snapshot(booster)
            run.log_bytes(data, f"checkpoints/{session.policy}.{ext}")

    return [early_stopping, resolved_params, importances, model, checkpoints]


def _name(key: str, names: list[str]) -> str:
    # get_score keys are feature names, or "f<i>" when the booster has none.
    if key.startswith("f") and key[1:].isdigit() and int(key[1:]) < len(names):
        return names[int(key[1:])]
    return key


# -- models ------------------------------------------------------------------------------------
def save_model(run: Any, booster: Any, est: Any = None, artifact_dir: str = "model") -> str:
    """Save a Booster as UBJSON (``model/model.ubj``) with ``meta.json``; return its artifact path."""
    def write(folder: str) -> str:
        booster.save_model(f"{folder}/model.ubj")
        return "model.ubj"

    cls = type(est) if est is not None else None
    extra = {"format": "ubj", "class": f"{cls.__module__}.{cls.__qualname__}" if cls else "xgboost.core.Booster",
             "num_boosted_rounds": booster.num_boosted_rounds()}
    best = booster.attr("best_iteration")
    if best is not None:
        extra["best_iteration"] = int(best)
    return save_model_files(run, write, NAME, artifact_dir, versions_of("xgboost", "numpy", "scipy"), extra)


def load_model(run_id: str, store: Any = None, artifact_dir: str = "model") -> Any:
    """Load the ``xgboost.Booster`` a run saved; it predicts exactly as the trained one.

    Models trained through ``XGBClassifier``/``XGBRegressor`` come back as their Booster
    (``booster.predict(xgboost.DMatrix(X))``); ``meta.json`` names the original class.
    """
    import xgboost

    with model_file(resolve_store(store), run_id, artifact_dir) as (_meta, path):
        booster = xgboost.Booster()
        booster.load_model(path)
    return booster


# -- patching ------------------------------------------------------------------------------------
_ENTRY: dict[str, Any] = {}


def _entry() -> Any:
    if "train" not in _ENTRY:
        safe = safe_wrapper(NAME, _before_train, _after_train, _on_error, enabled=_enabled)
        _ENTRY["train"] = train_entry(NAME, safe, _join)
        _ENTRY["fit"] = safe_wrapper(NAME, _before_fit, _after_fit, _on_error, enabled=_enabled)
    return _ENTRY


def _patch(xgboost: Any) -> None:
    import xgboost.training as training

    entry = _entry()["train"]
    # `from .training import train` binds the function in each module: patch every binding.
    for module in (training, xgboost):
        if "train" in module.__dict__:
            REGISTRY.apply(NAME, module, "train", entry)
    when_imported(INTEGRATION, "xgboost.sklearn", _patch_sklearn)


def _patch_sklearn(module: Any) -> None:
    if "train" in module.__dict__:
        REGISTRY.apply(NAME, module, "train", _entry()["train"])
    for cls in own_fit_classes(module.XGBModel):
        REGISTRY.apply(NAME, cls, "fit", _entry()["fit"])


INTEGRATION = Integration(
    name=NAME,
    module="xgboost",
    distribution="xgboost",
    supported=">=2.0,<4",
    extra="xgboost",
    patch=_patch,
)
autolog = integration_autolog(NAME)
"""Enable only the XGBoost integration (options win over the global ``autolog()`` ones)."""
