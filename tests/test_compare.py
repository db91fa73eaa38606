"""``autolog compare``: stars only where the metric's goal is recorded, --diff, wrapped keys, nested params."""

from __future__ import annotations

import json

import numpy as np
import pytest

import autolog as al
from autolog.cli.commands import main

QUIET = {"capture_env": False, "log_system_metrics": False}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _row(out: str, label: str) -> str:
    return next(line for line in out.splitlines() if line[2:].startswith(label))


def _data(seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.rand(240, 5)
    return X, X @ np.array([3.0, -2.0, 1.0, 0.0, 0.0]) + 0.05 * rng.randn(240)


def test_compare_stars_the_lower_mae_of_real_xgboost_runs(store, capsys):
    xgb = pytest.importorskip("xgboost", reason="pip install 'autolog[xgboost]'")
    X, y = _data()
    al.autolog(only=["xgboost"], log_models=False)
    ids = {}
    for depth in (1, 4):  # depth 4 fits this target far better
        model = xgb.XGBRegressor(n_estimators=20, max_depth=depth, eval_metric="mae", early_stopping_rounds=5)
        model.fit(X[:180], y[:180], eval_set=[(X[180:], y[180:])], verbose=False)
        ids[depth] = al.last_run().id
    al.autolog(disable=True)
    runs = {d: store.get_run(i) for d, i in ids.items()}
    key = "validation_0-mae"
    assert runs[4].metrics[key] < runs[1].metrics[key]
    code, out, err = cli(capsys, "compare", ids[1][:8], ids[4][:8])
    assert code == 0, err
    row = _row(out, f"metrics.{key} (min)")
    assert row.rstrip().endswith(f"{runs[4].metrics[key]:.6g} *") and f"{runs[1].metrics[key]:.6g} *" not in row
    # A counter never gets a star, even though its values differ.
    assert "*" not in _row(out, "metrics.best_iteration")
    _, out, _ = cli(capsys, "compare", "--json", ids[1], ids[4])
    data = json.loads(out)
    assert data["goals"][key] == "min" and data["best"][key] == [ids[4]]
    assert "best_iteration" not in data["goals"]


def test_compare_stars_the_higher_auc_of_real_lightgbm_runs(store, capsys):
    lgb = pytest.importorskip("lightgbm", reason="pip install 'autolog[lightgbm]'")
    X, y = _data(1)
    labels = (y > np.median(y)).astype(int)
    al.autolog(only=["lightgbm"], log_models=False)
    ids = {}
    for leaves in (2, 15):
        model = lgb.LGBMClassifier(n_estimators=15, num_leaves=leaves, min_child_samples=5, verbose=-1)
        model.fit(X[:180], labels[:180], eval_set=[(X[180:], labels[180:])], eval_metric="auc")
        ids[leaves] = al.last_run().id
    al.autolog(disable=True)
    runs = [store.get_run(i) for i in ids.values()]
    key = next(k for k in runs[0].metrics if k.endswith("-auc"))
    assert runs[0].tags[f"autolog.goal.{key}"] == "max"
    best = max(runs, key=lambda r: r.metrics[key])
    worst = min(runs, key=lambda r: r.metrics[key])
    assert best.metrics[key] > worst.metrics[key]
    code, out, _ = cli(capsys, "compare", *ids.values())
    row = _row(out, f"metrics.{key} (max)")
    assert f"{best.metrics[key]:.6g} *" in row and f"{worst.metrics[key]:.6g} *" not in row
    loss = next(k for k in runs[0].metrics if k.endswith("-binary_logloss"))
    assert _row(out, f"metrics.{loss} (min)")  # the default metric's direction is known too


def test_no_star_without_a_recorded_goal_and_never_for_counters_or_system(store, capsys):
    ids = []
    for i, (score, mae) in enumerate([(0.5, 3.0), (0.9, 1.0)]):
        with al.start_run(name=f"r{i}", **QUIET) as run:
            al.log_metric("best_score", mae)  # an MAE called "score": the name says nothing
            al.log_metric("rank_test_score", float(i + 1), goal="min")
            al.log_metric("val_auc", score)
            al.log_metric("system/memory_used_mb", 100.0 + i)
            al.log_metric("stopped_epoch", 3.0 + i, goal="max")  # a claimed goal on a counter is ignored
            al.set_tag("autolog.goal.system/memory_used_mb", "min")
            ids.append(run.id)
        if i == 1:
            with al.start_run(run_id=run.id, **QUIET):
                al.set_metric_goal("val_auc", "max")
    code, out, _ = cli(capsys, "compare", *ids)
    assert code == 0
    assert "*" not in _row(out, "metrics.best_score")
    assert _row(out, "metrics.rank_test_score (min)").split()[2:] == ["1", "*", "2"]
    assert _row(out, "metrics.val_auc (max)").split()[2:] == ["0.5", "0.9", "*"]
    assert "*" not in _row(out, "metrics.system/memory_used_mb") and "*" not in _row(out, "metrics.stopped_epoch")
    assert "no recorded goal, so no star: best_score" in out


def test_diff_shows_only_differing_rows_and_never_cuts_param_names(store, capsys):
    long_key = "optimizer.learning_rate.schedule.initial_learning_rate_of_the_warmup_phase"
    ids = []
    for i in range(2):
        with al.start_run(name=f"n{i}", **QUIET) as run:
            al.log_params({"optimizer": "Adam", long_key: 0.1 * (i + 1), "batch_size": 32,
                           "optimizer.config": str({"learning_rate": 0.001 * (i + 1), "beta_1": 0.9})})
            al.log_metrics({"val_loss": 0.5, "loss": 0.4 - i / 10})
            ids.append(run.id)
    code, out, _ = cli(capsys, "compare", *ids)
    assert "params.batch_size" in out and "metrics.val_loss" in out
    code, out, _ = cli(capsys, "compare", "--diff", *ids)
    assert code == 0
    assert "batch_size" not in out and "val_loss" not in out and "status" not in out
    assert "params.optimizer " not in out and "metrics.loss" in out
    # The long key is wrapped at its separators: every piece is whole, on consecutive lines.
    lines = out.splitlines()
    width = len(lines[1].split("  ")[0])  # the first column, from the dashes under the header
    labels = [line[:width].strip(" ≠") for line in lines]
    start = next(i for i, text in enumerate(labels) if text.startswith("params.optimizer.learning_rate"))
    assert "".join(labels[start:start + 3]) == f"params.{long_key}"
    assert width <= 45 and len(labels[start + 1]) > 0
    # Runs differing only inside a dict-valued param show which entry differs.
    row = _row(out, "params.optimizer.config[learning_rate]")
    assert row.startswith("≠") and "0.001" in row and "0.002" in row
    assert "[beta_1]" not in out  # the entry that is the same gets no row


def test_diff_of_identical_runs_says_so(store, capsys):
    ids = []
    for _ in range(2):
        with al.start_run(name="same", **QUIET) as run:
            al.log_params({"a": 1})
            al.log_metric("m", 1.0)
            ids.append(run.id)
    code, out, _ = cli(capsys, "compare", "--diff", *ids)
    assert code == 0 and "do not differ" in out


def test_keras_runs_star_the_lower_val_loss_but_never_per_batch_values_or_the_rate(store, capsys):
    keras = pytest.importorskip("keras", reason="pip install 'autolog[keras]'")
    X, y = _data(2)
    X = X.astype("float32")
    labels = (y > np.median(y)).astype("float32")
    al.autolog(only=["keras"], log_models=False)
    ids = []
    for rate in (0.05, 1e-5):  # the tiny rate barely trains
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="binary_crossentropy")
        model.fit(X[:180], labels[:180], validation_data=(X[180:], labels[180:]), epochs=4, batch_size=32, verbose=0)
        ids.append(al.last_run().id)
    al.autolog(disable=True)
    runs = [store.get_run(i) for i in ids]
    assert runs[0].metrics["val_loss"] < runs[1].metrics["val_loss"]
    code, out, _ = cli(capsys, "compare", *ids)
    assert code == 0
    assert _row(out, "metrics.val_loss (min)").split()[2:] == [f"{runs[0].metrics['val_loss']:.6g}", "*", f"{runs[1].metrics['val_loss']:.6g}"]
    for key in (k for k in runs[0].metrics if k.startswith("batch/") or "learning_rate" in k or k == "lr"):
        assert "*" not in _row(out, f"metrics.{key}"), key
