"""Which keys matter when runs are compared: metric goals, headline metrics, params that vary.

One place decides this for ``autolog ls``, ``autolog compare``, ``--plot`` and the
TensorBoard hparams export, so the four never disagree. Direction ("is lower better?")
comes only from what was recorded, the tag ``autolog.goal.<key>`` that integrations set
when they know it (and users set with ``log_metric(goal=)`` / ``set_metric_goal``);
it is never guessed from a metric's name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from autolog.validation import GOAL_TAG_PREFIX, GOALS

if TYPE_CHECKING:
    from autolog.store.base import Run

# Counters and ids: their "best" value means nothing, whatever goal a tag claims.
COUNTER_NAMES = frozenset({
    "step", "steps", "epoch", "epochs", "global_step", "iteration", "iterations", "n_iter", "n_iter_",
    "best_iteration", "stopped_iteration", "best_epoch", "stopped_epoch", "restored_epoch", "best_index",
    "num_boost_round", "best_ntree_limit", "n_estimators", "trial", "fold", "seed",
})
# Training-schedule values logged as metrics: worth a look, never a headline.
SCHEDULE_NAMES = frozenset({"lr", "learning_rate", "momentum", "weight_decay"})
NEVER_DEFAULT_PREFIXES = ("system/", "batch/")
_VAL_WORDS = frozenset({"val", "valid", "validation", "eval", "evaluation", "test", "dev", "holdout", "cv"})
_TRAIN_WORDS = frozenset({"train", "training", "trn"})
_SPLIT = re.compile(r"[^a-z]+")
# Params that identify rather than configure (dataset digests, ids, paths of temp files).
_ID_PARAM = re.compile(r"(^|[._-])(digest|sha256|hash|uuid|run_id|id)$", re.IGNORECASE)
LONG_VALUE = 40  # characters: a param value longer than this is a poor default column


def _leaf(key: str) -> str:
    return re.split(r"[/.]", key)[-1].lower()


def is_counter(key: str) -> bool:
    """Whether a metric is a counter or an id (``best_iteration``, ``stopped_epoch``, ``step``...)."""
    return _leaf(key) in COUNTER_NAMES or key.lower() in COUNTER_NAMES


def is_system(key: str) -> bool:
    """Whether a metric is sampled from the machine (``system/...``) rather than the model."""
    return key.startswith("system/")


def is_default_metric(key: str) -> bool:
    """Whether a metric may be chosen without being asked for: no system/batch series, counters or schedules."""
    return not key.startswith(NEVER_DEFAULT_PREFIXES) and not is_counter(key) and _leaf(key) not in SCHEDULE_NAMES


def stage(key: str) -> int:
    """0 for held-out metrics (``val_loss``, ``validation_0-rmse``, ``best_cv_score``), 2 for training ones, 1 otherwise."""
    words = set(_SPLIT.split(key.lower()))
    if words & _VAL_WORDS:
        return 0
    if words & _TRAIN_WORDS:
        return 2
    return 1


def metric_goal(runs: Iterable[Any], key: str) -> str | None:
    """The recorded direction of ``key`` ("min" or "max") in these runs; None when unknown or contradictory.

    Counters, ids, ``system/`` and per-batch ``batch/`` metrics have no goal, whatever
    was recorded: the last batch's value is noise, not a result.
    """
    if is_counter(key) or key.startswith(NEVER_DEFAULT_PREFIXES):
        return None
    goals = {r.tags.get(GOAL_TAG_PREFIX + key) for r in runs if key in r.metrics}
    goals.discard(None)
    if len(goals) != 1:
        return None
    goal = goals.pop()
    return goal if goal in GOALS else None


def best_value(runs: Sequence[Any], key: str) -> float | None:
    """The best latest value of ``key`` among ``runs`` by its recorded goal; None without a goal."""
    import math

    goal = metric_goal(runs, key)
    if goal is None:
        return None
    values = [r.metrics[key] for r in runs if key in r.metrics and math.isfinite(r.metrics[key])]
    if not values:
        return None
    return min(values) if goal == "min" else max(values)


def top_level(runs: Sequence[Any]) -> list[Any]:
    """The runs whose parent is not among ``runs``; all of them when every run is a child."""
    ids = {r.id for r in runs}
    tops = [r for r in runs if r.parent_run_id not in ids]
    return tops or list(runs)


def headline_metrics(runs: Sequence[Any], limit: int | None = 4) -> list[str]:
    """The metrics to show first for ``runs``, best first.

    Metrics with a recorded goal (what the integrations mark: monitored, evaluated,
    ``best_cv_score``) come before the others; within each group held-out metrics come
    before training ones, then the metrics most runs share. ``system/``, ``batch/``,
    counters, learning-rate schedules and keys only child runs (search candidates) have
    are never chosen.
    """
    base = top_level(runs)
    counts = Counter(k for r in base for k in r.metrics if is_default_metric(k))
    if not counts:
        return []
    with_goal = {k for k in counts if metric_goal(base, k) is not None}

    def rank(key: str) -> tuple:
        return (key not in with_goal, stage(key), -counts[key], len(key), key)

    chosen = sorted(counts, key=rank)
    return chosen if limit is None else chosen[:limit]


def varying_params(runs: Sequence[Any], include_ids: bool = False) -> list[str]:
    """Params with two or more different values among the runs that have them; most widely logged first.

    A param only some runs have, with one value wherever it is, does not differ: runs of
    different frameworks would otherwise "differ" in every param. Keys only child runs
    have are left out (see :func:`top_level`), and so are digests and ids unless
    ``include_ids``: they tell runs apart without saying how they differ. ``dataset.*``
    params come after the model's own, and values longer than ``LONG_VALUE`` after short ones.
    """
    base = top_level(runs)
    if len(base) < 2:
        return []
    values: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for run in base:
        for key, value in run.params.items():
            values.setdefault(key, set()).add(value)
            counts[key] += 1
    out = [k for k, v in values.items() if len(v) > 1 and (include_ids or not _ID_PARAM.search(k))]
    # What the data was (dataset.* shape, dtype) after how the model was configured, and long values
    # (reprs of nested estimators and step lists, whose nested a__b params show the difference) after
    # short ones: a narrow terminal drops those columns first.
    return sorted(out, key=lambda k: (k.startswith("dataset."), max(map(len, values[k])) > LONG_VALUE, -counts[k], k))


AXIS_TAG_PREFIX = "autolog.axis."
# What one step is, by the integration that logged the run, when no axis tag says it.
_INTEGRATION_AXES = {"xgboost": "round", "lightgbm": "round", "keras": "epoch", "sklearn": "step", "tensorboard": "step"}


def metric_axis(run: Run, key: str) -> str:
    """What the steps of ``key`` count in ``run``: ``epoch``, ``round``, ``batch`` or ``step``.

    An ``autolog.axis.<key>`` tag wins; otherwise the integration that made the run tells
    (boosting rounds, Keras epochs and ``batch/`` steps, Lightning ``*_epoch`` keys);
    anything else is a plain step.
    """
    tagged = run.tags.get(AXIS_TAG_PREFIX + key)
    if tagged:
        return tagged
    integration = run.tags.get("autolog.integration", "")
    if key.startswith("batch/"):
        return "batch"
    if integration == "lightning":
        return "epoch" if key.endswith("_epoch") or stage(key) == 0 else "step"
    return _INTEGRATION_AXES.get(integration, "step")
