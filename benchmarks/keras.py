"""``python -m benchmarks keras``: what recording a Keras fit costs the training loop.

The job (BENCHMARKS.md): an MLP (20 → 64 → 64 → 1) on 20,000×20 synthetic data, batch 64,
5 epochs (≈1,565 steps), torch backend, ``verbose=0``. Each row runs in a fresh interpreter
that alternates plain fits with fits under one logger (``a b``, ``b a``, ...), a fresh
model per fit, after an untimed warm-up pair; the overhead is the median over pairs of
(logged fit time / plain fit time). autolog logs every batch (``log_every_n_steps=1``), as
does the MLflow row. A second figure, free of the machine's noise, times the callback's
batch hook alone (µs per batch) and compares it with the plain fit's time per step.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from benchmarks.common import (
    JOB_COLUMNS,
    JOB_NOTES,
    BenchError,
    Column,
    Row,
    Table,
    alternate_toggled,
    clock,
    failed_row,
    installed,
    isolated,
    job_values,
    median,
    mode,
    pairs,
    pick,
    timed_job,
    version_of,
)

NAME = "keras"
DESCRIPTION = "Keras MLP 5 epochs ≈1,500 steps, per-step logging: plain vs autolog vs mlflow.keras.autolog"
ORDER = 50


def _enable_disable(variant: str, folder: str) -> tuple[Any, Any]:
    if variant.startswith("autolog"):
        import autolog

        autolog.set_store(os.path.join(folder, "autolog-runs"))
        models = variant == "autolog-models"
        return (lambda: autolog.autolog(only=["keras"], log_models=models, checkpoint="best" if models else False),
                lambda: autolog.autolog(disable=True))
    if variant == "mlflow":
        import mlflow
        import mlflow.keras

        mlflow.set_tracking_uri("file:" + os.path.join(folder, "mlruns"))
        return (lambda: mlflow.keras.autolog(log_every_n_steps=1, log_models=False, log_datasets=False, silent=True),
                lambda: mlflow.keras.autolog(disable=True))
    raise ValueError(f"unknown variant {variant!r}")


def measure(variant: str, pairs: int, rows: int, epochs: int = 5, warmup: int = 1) -> dict[str, Any]:
    """In a child: alternate plain fits with ``variant`` fits; return both lists of fit times (s)."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["KERAS_BACKEND"] = "torch"
    import torch

    torch.set_num_threads(1)
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 20)).astype("float32")
    y = (x[:, :5].sum(1) > 0).astype("float32")

    def settle() -> None:
        if variant.startswith("autolog"):
            import autolog

            autolog.flush()

    def fit() -> dict[str, float]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="relu"),
                                  keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return timed_job(lambda: model.fit(x, y, epochs=epochs, batch_size=64, verbose=0), settle)

    with tempfile.TemporaryDirectory(prefix=f"bench-keras-{variant}-") as folder:
        os.chdir(folder)  # mlflow and Keras write next to the working directory
        enable, disable = _enable_disable(variant, folder)
        times = alternate_toggled(fit, enable, disable, variant, pairs, warmup)
        points = _points(variant)
        hook_us = _hook_cost() if variant == "autolog" else None
    steps = epochs * -(-rows // 64)
    return {"plain": times["plain"], "logged": times[variant], "points": points, "hook_us": hook_us, "steps": steps}


def _points(variant: str) -> int | None:
    if not variant.startswith("autolog"):
        return None
    import autolog

    run = autolog.last_run()
    store = autolog.get_store()
    return sum(len(store.metric_history(run.id, k)) for k in store.metric_keys(run.id) if not k.startswith("system/"))


def _hook_cost(calls: int = 20_000) -> float:
    """µs per ``on_train_batch_end`` of a hand-added callback logging every batch."""
    import keras

    import autolog
    from autolog.integrations.keras import AutologCallback

    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    callback = AutologCallback(log_every_n_steps=1, log_models=False, checkpoint=False)
    callback.set_model(model)
    callback.set_params({"epochs": 1, "steps": calls, "verbose": 0})
    with autolog.start_run(name="hook-cost", capture_env=False, log_system_metrics=False):
        callback.on_train_begin()
        callback.on_epoch_begin(0)
        logs = {"accuracy": 0.75, "loss": 0.5}  # what Keras passes: floats, already converted
        hook = callback.on_train_batch_end
        start = clock()
        for batch in range(calls):
            hook(batch, logs)
        elapsed = clock() - start
        callback.on_epoch_end(0, logs)
        callback.on_train_end()
    return elapsed / calls * 1e6


def run(args: Any) -> list[Table]:
    """Measure each logger's cost on the Keras job, pairwise against plain fits."""
    rows = pick(args, 2_000, 20_000, 20_000)
    epochs = pick(args, 2, 5, 5)
    n = pairs(args, 3)
    steps = epochs * -(-rows // 64)
    table = Table(NAME, f"Keras MLP fit, {epochs} epochs × {rows:,} rows, batch 64 ({steps:,} steps, per-step logging)",
                  [*JOB_COLUMNS, Column("points", "points/fit")])
    if not installed("keras") or not installed("torch"):
        table.rows.append(Row("autolog", {}, "keras/torch not installed (pip install 'autolog[keras]' torch)"))
        return [table]
    plan = [("autolog", "autolog", "autolog(log_models=False, checkpoint=False): batch/* every step, epoch logs, lr, params")]
    if mode(args) == "full":
        plan.append(("autolog + best checkpoint + model", "autolog-models", "checkpoint='best' and log_models=True: one .keras save per improvement + final"))
    if installed("mlflow") and mode(args) != "quick":
        plan.append(("mlflow.keras.autolog", "mlflow",
                     f"mlflow {version_of('mlflow')}, log_every_n_steps=1, log_models=False, log_datasets=False, file store"))
    elif mode(args) != "quick":
        table.rows.append(Row("mlflow.keras.autolog", {}, "not installed (pip install 'autolog[bench]')"))
    hook = None
    for label, variant, note in plan:
        try:
            result = isolated("benchmarks.keras:measure", timeout=3600, variant=variant, pairs=n, rows=rows, epochs=epochs)
        except BenchError as exc:
            table.rows.append(failed_row(label, exc))
            continue
        table.rows.append(Row(f"{label}: plain", job_values(result["plain"], None), "the plain fits alternating with this row's"))
        values = job_values(result["logged"], result["plain"])
        values["points"] = result["points"]
        if variant == "autolog" and values.get("thread_cpu_x") is not None:
            note += "; target ≤ 2 % thread CPU " + ("met" if values["thread_cpu_x"] <= 1.02 else "NOT met")
        table.rows.append(Row(label, values, note))
        if result.get("hook_us") is not None:
            hook = (result["hook_us"], median(s["wall"] for s in result["plain"]) / result["steps"] * 1e6)
    table.notes += [
        f"{n} alternating pair(s) per row after a warm-up pair, each row in a fresh interpreter (keras {version_of('keras')}, "
        f"torch {version_of('torch')} backend, 1 torch thread). Fit time includes autolog's run start and end.",
        *JOB_NOTES,
    ]
    if hook is not None:
        us, step_us = hook
        table.notes.append(f"autolog's batch hook alone: {us:.1f} µs per batch (2 metrics) = {us / step_us * 100:.2f} % of a plain "
                           f"step ({step_us:,.0f} µs here); Keras runs it on its callback thread (the callback is async_safe).")
    return [table]
