"""``python -m benchmarks boosting``: what autologging adds to ``xgboost.train`` and ``lightgbm.train``.

The job: 500 boosting rounds with an eval set on 20,000 × 20 random data (16,000 rows to
train on, 4,000 to evaluate), one training thread. Variants: plain; with
``autolog(log_models=False)`` (environment capture and system metrics on, as a user gets
them); and, when the ``bench`` extra is installed, ``mlflow.<fw>.autolog(log_models=False)``.
Every measurement is a fresh interpreter that sets its variant up, trains a short
warm-up job (imports and first-run costs stay out of the timing, for every variant
alike), then times full ``train`` calls, the logger's work before and after each
included, and keeps the fastest (a load burst on a shared machine only slows a call).
Variants alternate pair by pair; the table shows medians and the median of the
per-pair ratios to plain, with the raw samples below it. A second autolog row turns the
per-run environment capture and system metrics off: what the integration itself costs,
apart from the core's fixed cost per run. Every row reports the training call's wall and
thread CPU, the time until everything is written (autolog's importance chart is drawn
off the training thread, after the call) and the process's CPU time.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from benchmarks.common import (
    JOB_COLUMNS,
    JOB_NOTES,
    BenchError,
    Row,
    Table,
    failed_row,
    installed,
    isolated,
    job_values,
    mode,
    pairs,
    pick,
    timed_job,
    version_of,
)

NAME = "boosting"
DESCRIPTION = "xgboost.train / lightgbm.train, 500 rounds with an eval set: plain vs autolog vs mlflow autolog"
ORDER = 40

FRAMEWORKS = ("xgboost", "lightgbm")
PLAIN, AUTOLOG, BARE, MLFLOW = "plain", "autolog", "autolog-bare", "mlflow"
TARGET = 1.03  # BENCHMARKS.md: ≤ 3 % overhead
# One training thread: OpenMP workers spinning on a shared 2-core machine make wall times
# swing by ×3, and with one thread the training thread's CPU time is all of training.
THREADS = 1


# -- what runs inside each fresh interpreter ------------------------------------------------
def _data(rows: int, cols: int) -> tuple[Any, Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, cols)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] - 0.3 * X[:, 2] + rng.normal(size=rows) > 0).astype(np.float32)
    cut = rows * 4 // 5
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _trainer(framework: str, rows: int, cols: int):
    X_train, y_train, X_valid, y_valid = _data(rows, cols)
    if framework == "xgboost":
        import xgboost as xgb

        dtrain, dvalid = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)
        params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 6, "nthread": THREADS}

        def train(rounds: int) -> Any:
            return xgb.train(params, dtrain, rounds, evals=[(dvalid, "valid")], verbose_eval=False)

        return train
    import lightgbm as lgb

    params = {"objective": "binary", "metric": "binary_logloss", "verbose": -1, "num_threads": THREADS}

    def train(rounds: int) -> Any:
        # Datasets are built inside: lightgbm frees their raw data once trained.
        dtrain = lgb.Dataset(X_train, label=y_train)
        dvalid = lgb.Dataset(X_valid, label=y_valid, reference=dtrain)
        return lgb.train(params, dtrain, rounds, valid_sets=[dvalid])

    return train


def _setup(variant: str, framework: str, folder: str) -> None:
    if variant == AUTOLOG:
        import autolog

        autolog.set_store(os.path.join(folder, "store"))
        autolog.autolog(only=[framework], log_models=False)
    elif variant == BARE:
        import autolog

        autolog.set_store(os.path.join(folder, "store"))
        autolog.autolog(only=[framework], log_models=False, capture_env=False, log_system_metrics=False)
    elif variant == MLFLOW:
        import mlflow

        os.chdir(folder)  # mlflow puts artifact folders under the working directory
        mlflow.set_tracking_uri("file:" + os.path.join(folder, "mlruns"))
        getattr(mlflow, framework).autolog(log_models=False, silent=True)


def measure(framework: str, variant: str, rounds: int, rows: int, cols: int, repeats: int = 1,
            warmup_rounds: int = 10) -> dict[str, Any]:
    """Time ``repeats`` ``train`` calls of ``rounds`` rounds under ``variant`` (in a fresh interpreter).

    Each call is measured by :func:`timed_job`; the call with the lowest wall time counts
    (on a shared machine a load burst only ever slows a call down). "Until written" waits
    for autolog's importance chart and flush; MLflow draws and writes inside the call.
    """
    with tempfile.TemporaryDirectory(prefix="bench-boosting-") as folder:
        cwd = os.getcwd()
        _setup(variant, framework, folder)
        train = _trainer(framework, rows, cols)
        train(warmup_rounds)
        _settle(variant)
        samples = [timed_job(lambda: train(rounds), lambda: _settle(variant)) for _ in range(repeats)]
        result: dict[str, Any] = dict(min(samples, key=lambda s: s["wall"]))
        result["all"] = [s["wall"] for s in samples]
        if variant in (AUTOLOG, BARE):
            result["points"] = _points_logged()
        os.chdir(cwd)
        return result


def _settle(variant: str) -> None:
    if variant in (AUTOLOG, BARE):
        import autolog
        from autolog.integrations import _boosting

        _boosting.wait_for_plots()  # charts of one call must not overlap the next call
        autolog.flush()


def _points_logged() -> int:
    import autolog

    store = autolog.get_store()
    run = autolog.last_run()
    keys = [k for k in store.metric_keys(run.id) if not k.startswith("system/")]
    return sum(len(store.metric_history(run.id, k)) for k in keys)


# -- the parent: alternate fresh interpreters, build the tables -------------------------------
def _variants(args: Any) -> list[tuple[str, str]]:
    found = [(PLAIN, "plain"), (AUTOLOG, "autolog(log_models=False)"),
             (BARE, "autolog(log_models=False, capture_env=False, log_system_metrics=False)")]
    if installed("mlflow") and mode(args) != "quick":
        found.append((MLFLOW, f"mlflow {version_of('mlflow')} <fw>.autolog(log_models=False)"))
    return found


def _table(args: Any, framework: str) -> Table:
    rounds = pick(args, 50, 500, 500)
    rows = pick(args, 2_000, 20_000, 20_000)
    cols = 20
    n = pairs(args, pick(args, 1, 3, 5))
    repeats = pick(args, 1, 2, 2)
    variants = _variants(args)
    table = Table(NAME, f"{framework}.train, {rounds} rounds with an eval set, {rows:,}×{cols} — "
                        f"{n} alternating round(s), fresh interpreter each, fastest of {repeats} call(s) in it", list(JOB_COLUMNS))
    samples: dict[str, list[dict]] = {v: [] for v, _ in variants}
    errors: dict[str, BenchError] = {}
    for round_ in range(n):
        for variant, _label in (variants if round_ % 2 == 0 else variants[::-1]):
            if variant in errors:
                continue
            try:
                samples[variant].append(isolated(f"{__name__}:measure", timeout=900, framework=framework, variant=variant,
                                                 rounds=rounds, rows=rows, cols=cols, repeats=repeats))
            except BenchError as exc:
                errors[variant] = exc
    plain = samples[PLAIN]
    for variant, label in variants:
        label = label.replace("<fw>", framework)
        if variant in errors:
            table.rows.append(failed_row(label, errors[variant]))
            continue
        values = job_values(samples[variant], plain if variant != PLAIN else None)
        note = ""
        if variant in (AUTOLOG, BARE) and samples[variant]:
            note = f"{samples[variant][-1].get('points')} metric points logged"
            if values.get("thread_cpu_x") is not None:
                note += "; target ≤ 2 % thread CPU, ≤ 3 % wall " + (
                    "met" if values["thread_cpu_x"] <= 1.02 and values["wall_x"] <= TARGET else "NOT met")
        table.rows.append(Row(label, values, note))
    table.notes += JOB_NOTES
    table.notes.append(f"{framework} {version_of(framework)}; the warm-up job is untimed for every variant. autolog: the importance"
                       " chart is drawn off the training thread (in 'until written'); MLflow draws its plots inside the call.")
    return table


def run(args: Any) -> list[Table]:
    """One table per installed framework."""
    found = [fw for fw in FRAMEWORKS if installed(fw)]
    if not found:
        return [Table(NAME, "boosting: neither xgboost nor lightgbm is installed", [], notes=["pip install 'autolog[xgboost,lightgbm]'"])]
    return [_table(args, fw) for fw in found]
