"""LightGBM integration: ``lightgbm.train``, ``lightgbm.cv`` and the scikit-learn wrappers' ``fit``.

What a run gets:

- Metrics, one history per eval set × eval metric, named ``<data_name>-<eval_name>`` as
  LightGBM reports them (``valid_0-l2``, ``training-binary_logloss``, or the user's
  ``valid_names``/``eval_names``). ``lightgbm.cv`` logs each aggregated metric's mean and
  standard deviation over the folds as ``<data>-<metric>-mean`` and ``<data>-<metric>-stdv``
  (``valid-l2-mean``, ``valid-l2-stdv``; LightGBM's own result keys are ``valid l2-mean``).
  ``step`` is the boosting round, 0-based (continuing from ``init_model``'s rounds);
  ``log_every_n_steps`` thins them and the last round is always logged. Each metric's
  direction is LightGBM's own ``is_higher_better`` (``autolog.goal.<key>``).
- Early stopping: ``best_iteration`` as LightGBM counts it, from 1 (what it prints,
  ``Best iteration is: [20]``, and what ``Booster.best_iteration`` returns): its values
  sit at step ``best_iteration - 1`` of the 0-based histories. ``best_score`` (the first
  validation metric at that round), ``best_score.<data>-<metric>`` for every metric
  when there are several, and ``stopped_iteration`` (the last round trained, 0-based
  like the histories), logged at the last round's step.
- Params: the params as passed (the scikit-learn wrapper's ``get_params()`` without its
  ``None`` values, then the params it hands to ``train``), ``num_boost_round``,
  ``valid_names``, the early-stopping rounds (from params or an ``early_stopping``
  callback), ``feval`` by function name, for ``cv`` its fold settings, and the resolved
  values that matter from the model's parameter block (``objective``, ``learning_rate``,
  ``num_leaves``, ``max_depth``, ``metric``, ...).
- Dataset fingerprint ``dataset.train.*`` of the raw ``X``/``y`` given to ``fit``, or of
  ``Dataset.data``/``label`` while the Dataset still holds them (else its shape).
- Artifacts: ``feature_importance.json`` (split, gain; with ``log_importance_plot=True``
  also ``feature_importance_gain.png``, drawn off the training thread); the model as
  ``model/model.txt`` (LightGBM's text format, every round) + ``model/meta.json`` when
  ``log_models``, loaded back by :func:`load_model` with its ``best_iteration``; with
  ``checkpoint="all"`` the model every N rounds (N = ``log_every_n_steps``, or 10 when
  that is 1) as ``checkpoints/round-<N>.txt``, with ``"best"``/``"last"`` the final model
  as ``checkpoints/<policy>.txt``. ``cv`` saves no model.

``LGBMClassifier.fit`` calls ``lightgbm.train`` inside: one run, with the wrapper's params.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autolog.integrations._boosting import Adapter, Engine, Session
from autolog.integrations._boosting_parts import argument, callable_names, feature_names, tidy_number
from autolog.patching.datasets import log_dataset
from autolog.patching.engine import Call
from autolog.patching.models import model_file, resolve_store, save_model_files, versions_of
from autolog.patching.plugins import Integration, integration_autolog

if TYPE_CHECKING:
    from autolog.patching.lifecycle import FitRun
    from autolog.tracking.run import ActiveRun

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
CV_SETTINGS = (("nfold", 5), ("stratified", True), ("shuffle", True), ("seed", 0), ("metrics", None), ("eval_train_metric", False),
               ("folds", None), ("feval", None))


class AutologCallback:
    """A LightGBM callback handing every round's evaluation results to an autolog session."""

    def __init__(self, session: Session) -> None:
        # Instance attributes: lightgbm.train fills a missing ``order`` into the instance dict.
        self.session = session
        self.order = CALLBACK_ORDER
        self.before_iteration = False

    def __call__(self, env: Any) -> None:
        self.session.step(env.iteration, env.evaluation_result_list, env.model)


def _arg(call: Call, table: dict[str, int], name: str, default: Any = None) -> Any:
    return argument(call, table[name], name, default)


def _common_params(call: Call, table: dict[str, int]) -> dict[str, Any]:
    # The scikit-learn wrappers pass their unset options as None: the resolved values come later.
    params = {k: v for k, v in dict(_arg(call, table, "params") or {}).items() if v is not None}
    params["num_boost_round"] = _arg(call, table, "num_boost_round", 100)
    if not any(params.get(alias) for alias in EARLY_STOPPING_ALIASES):
        rounds = next((cb.stopping_rounds for cb in _arg(call, table, "callbacks") or [] if getattr(cb, "stopping_rounds", None)), None)
        if rounds:
            params["early_stopping_round"] = rounds
    if _arg(call, table, "feval"):  # the scikit-learn wrappers pass [] when there is none
        params["feval"] = callable_names(_arg(call, table, "feval"))
    return params


def _stops_early(params: dict[str, Any]) -> bool:
    return any(params.get(alias) for alias in EARLY_STOPPING_ALIASES)


class LightGBMAdapter(Adapter):
    """LightGBM's names for the shared boosting engine."""

    name = NAME
    train_run = ("lightgbm.train", "lightgbm.Booster")
    cv_run = ("lightgbm.cv", "lightgbm.CVBooster")
    modules = ("lightgbm.engine",)
    sklearn_module = "lightgbm.sklearn"
    wrapper_class = "LGBMModel"
    data_arg = ("train_set", 1)
    train_callbacks = TRAIN_POS["callbacks"]
    cv_callbacks = CV_POS["callbacks"]

    def callback(self, session: Session) -> Any:
        return AutologCallback(session)

    def round_items(self, results: list, index: int) -> Any:
        # (data_name, eval_name, value, is_higher_better[, stdv]) per eval set × metric: a new list every round.
        for result in results:
            yield f"{result[0]}-{result[1]}", float(result[2])

    def cv_items(self, results: list, index: int) -> Any:
        for result in results:
            yield f"{result[0]}-{result[1]}-mean", float(result[2])
            yield f"{result[0]}-{result[1]}-stdv", float(result[4])

    def goals(self, results: list, cv: bool) -> dict[str, str]:
        suffix = "-mean" if cv else ""
        return {f"{r[0]}-{r[1]}{suffix}": "max" if r[3] else "min" for r in results}

    def train_params(self, call: Call) -> dict[str, Any]:
        params = _common_params(call, TRAIN_POS)
        train_set, valid_sets = _arg(call, TRAIN_POS, "train_set"), _arg(call, TRAIN_POS, "valid_sets")
        if valid_sets is not None:
            valid_sets = [valid_sets] if not isinstance(valid_sets, (list, tuple)) else valid_sets
            given = _arg(call, TRAIN_POS, "valid_names")
            given = [given] if isinstance(given, str) else list(given or [])
            names = [given[i] if i < len(given) else ("training" if v is train_set else f"valid_{i}") for i, v in enumerate(valid_sets)]
            params["valid_names"] = ",".join(map(str, names))
        return params

    def cv_params(self, call: Call) -> dict[str, Any]:
        params = _common_params(call, CV_POS)
        for name, default in CV_SETTINGS:
            value = _arg(call, CV_POS, name, default)
            if name == "folds" and value is not None:
                value = type(value).__name__  # a splitter object or a list of index arrays: its kind, not its content
            if value is not None:
                params.setdefault(f"cv.{name}" if name in ("seed", "metrics") else name, value)
        return params

    def log_data(self, fit_run: FitRun, train_set: Any) -> None:
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

    def snapshot(self, booster: Any) -> tuple[bytes, str]:
        return booster.model_to_string(num_iteration=-1).encode("utf-8"), "txt"

    def rounds(self, booster: Any) -> int:
        return booster.current_iteration()

    def best(self, booster: Any, session: Session) -> Any:
        best = int(getattr(booster, "best_iteration", 0) or 0)
        if best <= 0:
            return None
        pairs = [(data, values) for data, values in (getattr(booster, "best_score", None) or {}).items() if values]
        pairs.sort(key=lambda item: item[0] == "training")  # a validation set first
        scores = {f"{data}-{metric}": float(value) for data, values in pairs for metric, value in values.items()}
        return best, scores, next(iter(scores.values()), None)

    def cv_best(self, results: Any, params: dict[str, Any]) -> Any:
        means = [k for k in results if k.endswith("-mean")] if isinstance(results, dict) and _stops_early(params) else []
        if not means:
            return None
        best = len(results[means[0]])  # cv cuts every history at the best round, counted from 1
        scores = {k[: -len("-mean")].replace(" ", "-"): float(results[k][best - 1]) for k in means}
        valid = [k for k in scores if not k.startswith("train-")] or list(scores)
        return best, scores, scores[valid[0]]

    def resolved_params(self, booster: Any) -> dict[str, Any]:
        # The model text ends with every resolved parameter; starting past the last tree skips the trees.
        text = booster.model_to_string(start_iteration=booster.current_iteration())
        found = {}
        for line in text[text.find("\nparameters:"):].splitlines():
            if line.startswith("[") and ": " in line:
                key, _, value = line[1:].rstrip("]").partition(": ")
                if key in RESOLVED and value != "":
                    found[key] = tidy_number(value)
        return found

    def importances(self, booster: Any) -> dict[str, dict[str, float]]:
        names = feature_names(booster.feature_name(), booster.num_feature())
        return {kind: {name: float(value) for name, value in zip(names, booster.feature_importance(importance_type=kind))}
                for kind in IMPORTANCE_TYPES}

    def save_model(self, run: ActiveRun, booster: Any, est: Any = None) -> str:
        return save_model(run, booster, est)


def save_model(run: ActiveRun, booster: Any, est: Any = None, artifact_dir: str = "model") -> str:
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

    with model_file(resolve_store(store), run_id, artifact_dir, flavor=NAME) as (meta, path):
        booster = lightgbm.Booster(model_file=path)
    booster.best_iteration = int(meta.get("best_iteration", 0) or 0)
    return booster


def _patch(lightgbm: Any) -> None:
    ENGINE.patch(lightgbm)


INTEGRATION = Integration(
    name=NAME,
    module="lightgbm",
    distribution="lightgbm",
    supported=">=4.0,<5",
    extra="lightgbm",
    patch=_patch,
)
ADAPTER = LightGBMAdapter()
ENGINE = Engine(ADAPTER, INTEGRATION)
autolog = integration_autolog(NAME)
"""Enable only the LightGBM integration (options win over the global ``autolog()`` ones)."""
