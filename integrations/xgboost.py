"""XGBoost integration: ``xgboost.train``, ``xgboost.cv`` and the scikit-learn wrappers' ``fit``.

What a run gets:

- Metrics, one history per eval set × eval metric, named as XGBoost prints them:
  ``<eval name>-<metric>`` (``validation_0-logloss`` for the scikit-learn API, the names
  given in ``evals=[(dvalid, "valid")]`` for ``xgboost.train``). ``step`` is the boosting
  round, 0-based (continuing from ``xgb_model``'s rounds). ``log_every_n_steps`` thins
  them; the last round is always logged. ``xgboost.cv`` logs its result columns,
  ``<data>-<metric>-mean`` and ``<data>-<metric>-std`` (``test-rmse-mean``). Built-in
  metrics get their direction (``rmse``, ``logloss``, ``error``... min; ``auc``,
  ``aucpr``, ``ndcg``, ``map`` max).
- With early stopping: ``best_iteration`` as XGBoost counts it (0-based: the round,
  the history's step), ``best_score`` (XGBoost's: the last metric of the last eval
  set), ``best_score.<eval>-<metric>`` for every metric when there are several, and
  ``stopped_iteration`` (the last round trained), logged at the last round's step.
- Params: the booster params as passed (the scikit-learn wrapper's ``get_params()``
  without its unset ``None`` values, then the params it hands to ``train``),
  ``num_boost_round``, ``early_stopping_rounds``, ``evals`` (the eval set names), for
  ``cv`` its fold settings, and the resolved values that matter read from the booster's
  config (``objective``, ``eta``, ``max_depth``, ``tree_method``, ``eval_metric``, ...).
- Dataset fingerprint ``dataset.train.*`` (shape, dtype, digest) of the raw ``X``/``y``
  given to ``fit``, or of the training ``DMatrix``'s data when it can hand it back.
- Artifacts: ``feature_importance.json`` (weight, gain, cover, total_gain, total_cover;
  with ``log_importance_plot=True`` also ``feature_importance_gain.png``, drawn off the
  training thread); the model as ``model/model.ubj`` (UBJSON) + ``model/meta.json`` when
  ``log_models``, loaded back by :func:`load_model`; with ``checkpoint="all"`` the model
  every N rounds (N = ``log_every_n_steps``, or 10 when that is 1) as
  ``checkpoints/round-<N>.ubj``, with ``"best"``/``"last"`` the final model as
  ``checkpoints/<policy>.ubj`` (it keeps ``best_iteration``). ``cv`` saves no model.

``XGBClassifier.fit`` calls ``xgboost.train`` inside: one run, with the wrapper's params.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING, Any

from autolog.integrations._boosting import Adapter, Engine, Session
from autolog.integrations._boosting_parts import argument, callable_names, csr_digest, feature_names, metric_goal, pick_leaves, tidy_number
from autolog.patching.datasets import log_dataset
from autolog.patching.engine import Call
from autolog.patching.models import model_file, resolve_store, save_model_files, versions_of
from autolog.patching.plugins import Integration, integration_autolog

if TYPE_CHECKING:
    from autolog.patching.lifecycle import FitRun
    from autolog.tracking.run import ActiveRun

NAME = "xgboost"
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
# Resolved config values worth a param (leaf names in Booster.save_config()).
RESOLVED = ("booster", "objective", "eta", "learning_rate", "max_depth", "max_leaves", "min_child_weight", "subsample", "colsample_bytree",
            "colsample_bylevel", "colsample_bynode", "lambda", "alpha", "gamma", "min_split_loss", "max_bin", "grow_policy",
            "tree_method", "base_score", "num_class", "seed", "nthread", "device", "scale_pos_weight", "num_feature")
CV_SETTINGS = (("nfold", 3), ("stratified", False), ("shuffle", True), ("seed", 0), ("metrics", ()), ("folds", None))
# DMatrix data is copied back out for the digest only up to this many cells.
DIGEST_LIMIT = 20_000_000

# DMatrix -> its data's dtype and digest params. A DMatrix's data never changes (only its
# labels and other info can), so a loop training one DMatrix many times (a parameter
# search) copies it out and hashes it once, not on the training thread of every call.
_digests: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_callback_class: type | None = None


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


def _params_dict(params: Any) -> dict[str, Any]:
    if isinstance(params, dict) or params is None:
        return dict(params or {})
    merged: dict[str, Any] = {}  # a list of pairs may repeat a key (several eval_metric)
    for key, value in params:
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _data_digest(dtrain: Any) -> dict[str, str]:
    """``dataset.train.dtype``/``digest`` of a DMatrix's data, computed once per DMatrix (empty when it cannot hand its data back)."""
    found = _digests.get(dtrain)
    if found is None:
        try:
            data = dtrain.get_data()  # a CSR copy; QuantileDMatrix and external memory cannot
            found = {"dataset.train.dtype": str(data.dtype), "dataset.train.digest": csr_digest(data)}
        except Exception:
            found = {}
        try:
            _digests[dtrain] = found
        except TypeError:  # not weakly referenceable: no cache, still a digest
            pass
    return found


def _name(key: str, names: list[str]) -> str:
    # get_score keys are feature names, or "f<i>" when the booster has none.
    if key.startswith("f") and key[1:].isdigit() and int(key[1:]) < len(names):
        return names[int(key[1:])]
    return key


class XGBoostAdapter(Adapter):
    """XGBoost's names for the shared boosting engine."""

    name = NAME
    train_run = ("xgboost.train", "xgboost.Booster")
    cv_run = ("xgboost.cv", "xgboost.cv")
    modules = ("xgboost.training",)
    sklearn_module = "xgboost.sklearn"
    wrapper_class = "XGBModel"
    data_arg = ("dtrain", 1)
    train_callbacks = cv_callbacks = None  # keyword only

    def callback(self, session: Session) -> Any:
        return callback_class()(session)

    def round_items(self, evals_log: dict, index: int) -> Any:
        # evals_log: {eval name: {metric: [value per round of this call]}}, the same dict
        # growing every round: a round's values sit at its index.
        for data, metrics in evals_log.items():
            for metric, values in metrics.items():
                value = values[index]
                yield f"{data}-{metric}", float(value[0] if isinstance(value, tuple) else value)

    def cv_items(self, evals_log: dict, index: int) -> Any:
        # xgboost.cv hands (mean, std) per round, the columns of its result.
        for data, metrics in evals_log.items():
            for metric, values in metrics.items():
                mean, std = values[index]
                yield f"{data}-{metric}-mean", float(mean)
                yield f"{data}-{metric}-std", float(std)

    def goals(self, evals_log: dict, cv: bool) -> dict[str, str]:
        suffix = "-mean" if cv else ""
        found = {f"{data}-{metric}{suffix}": metric_goal(metric) for data, metrics in evals_log.items() for metric in metrics}
        return {key: goal for key, goal in found.items() if goal}

    def train_params(self, call: Call) -> dict[str, Any]:
        # The scikit-learn wrappers pass their unset options as None: the resolved values come later.
        params = {k: v for k, v in _params_dict(argument(call, 0, "params")).items() if v is not None}
        params["num_boost_round"] = argument(call, 2, "num_boost_round", 10)
        kwargs = call.kwargs
        for key in ("early_stopping_rounds", "maximize", "obj", "custom_metric"):
            if kwargs.get(key) is not None:
                params[key] = callable_names(kwargs[key])
        evals = argument(call, 3, "evals")  # the demos' xgb.train(param, dtrain, num_round, watchlist)
        if evals:
            params["evals"] = ",".join(str(name) for _, name in evals)
        for cb in kwargs.get("callbacks") or ():  # an EarlyStopping callback instead of the argument
            if type(cb).__name__ == "EarlyStopping" and getattr(cb, "rounds", None):
                params.setdefault("early_stopping_rounds", cb.rounds)
        return params

    def cv_params(self, call: Call) -> dict[str, Any]:
        params = self.train_params(call)
        for name, default in CV_SETTINGS:
            value = call.kwargs.get(name, default)
            if name == "folds" and value is not None:
                value = type(value).__name__  # a splitter or a list of index pairs: its kind, not its content
            if value is not None and value != ():
                params.setdefault(f"cv.{name}" if name in ("seed", "metrics") else name, value)
        return params

    def log_data(self, fit_run: FitRun, dtrain: Any) -> None:
        rows, cols = dtrain.num_row(), dtrain.num_col()
        found = {"dataset.train.shape": f"{rows}x{cols}"}
        if type(dtrain).__name__ == "DMatrix" and rows * cols <= DIGEST_LIMIT:
            found.update(_data_digest(dtrain))
        fit_run.log_params(found)
        fit_run.run.set_tag("dataset.train.context", "training")
        label = dtrain.get_label()
        if label is not None and len(label):
            log_dataset(fit_run, "train.label", label)

    def snapshot(self, booster: Any) -> tuple[bytes, str]:
        return bytes(booster.save_raw("ubj")), "ubj"

    def rounds(self, booster: Any) -> int:
        return booster.num_boosted_rounds()

    def best(self, booster: Any, session: Session) -> Any:
        best = booster.attr("best_iteration")
        if best is None:
            return None
        best, scores = int(best), {}
        index = best - (session.first or 0)  # evals_log holds this call's rounds only
        for data, metrics in (session.raw or {}).items():
            for metric, values in metrics.items():
                if 0 <= index < len(values):
                    scores[f"{data}-{metric}"] = float(values[index])
        score = booster.attr("best_score")
        return best, scores, None if score is None else float(score)

    def cv_best(self, results: Any, params: dict[str, Any]) -> Any:
        columns = [c for c in results if str(c).endswith("-mean")] if params.get("early_stopping_rounds") else []
        if not columns:
            return None
        best = len(results[columns[0]]) - 1  # cv cuts every column at the best round
        scores = {c[: -len("-mean")]: float(list(results[c])[best]) for c in columns}
        return best, scores, scores[columns[-1][: -len("-mean")]]  # XGBoost stops on the last metric

    def resolved_params(self, booster: Any) -> dict[str, Any]:
        config = json.loads(booster.save_config())
        found = pick_leaves(config, RESOLVED)
        metrics = config.get("learner", {}).get("metrics") or []
        if metrics:
            found["eval_metric"] = ",".join(m.get("name", "") for m in metrics)
        return {k: tidy_number(str(v)) for k, v in found.items()}

    def importances(self, booster: Any) -> dict[str, dict[str, float]]:
        from xgboost.core import XGBoostError

        names = feature_names(booster.feature_names, booster.num_features())
        found = {}
        for kind in IMPORTANCE_TYPES:
            try:
                scores = booster.get_score(importance_type=kind)
            except XGBoostError:  # gblinear defines only "weight"
                continue
            found[kind] = {_name(key, names): float(value) for key, value in scores.items() if not isinstance(value, list)}
        return found

    def save_model(self, run: ActiveRun, booster: Any, est: Any = None) -> str:
        return save_model(run, booster, est)


def save_model(run: ActiveRun, booster: Any, est: Any = None, artifact_dir: str = "model") -> str:
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

    with model_file(resolve_store(store), run_id, artifact_dir, flavor=NAME) as (_meta, path):
        booster = xgboost.Booster()
        booster.load_model(path)
    return booster


def _patch(xgboost: Any) -> None:
    ENGINE.patch(xgboost)


INTEGRATION = Integration(
    name=NAME,
    module="xgboost",
    distribution="xgboost",
    supported=">=2.0,<4",
    extra="xgboost",
    patch=_patch,
)
ADAPTER = XGBoostAdapter()
ENGINE = Engine(ADAPTER, INTEGRATION)
autolog = integration_autolog(NAME)
"""Enable only the XGBoost integration (options win over the global ``autolog()`` ones)."""
