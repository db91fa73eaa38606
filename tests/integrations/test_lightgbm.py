"""The LightGBM integration against real LightGBM on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

lgb = pytest.importorskip("lightgbm", reason="pip install 'autolog[lightgbm]'")

import numpy as np  # noqa: E402

import autolog as al  # noqa: E402
from autolog.integrations import _boosting  # noqa: E402
from autolog.integrations import lightgbm as integration  # noqa: E402
from autolog.patching.params import stringify  # noqa: E402

PARAMS = {"objective": "regression", "metric": ["l2", "l1"], "verbose": -1, "num_threads": 1, "learning_rate": 0.3}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=400)
    return X[:300], X[300:], y[:300], y[300:]


@pytest.fixture
def sets(data):
    X_train, X_valid, y_train, y_valid = data
    train = lgb.Dataset(X_train, label=y_train)
    return train, lgb.Dataset(X_valid, label=y_valid, reference=train)


def _enable(**opts):
    al.autolog(only=["lightgbm"], **opts)


def _steps(store, run_id, key):
    return [p.step for p in store.metric_history(run_id, key)]


def test_train_logs_every_round_of_every_eval_metric(store, sets):
    train, valid = sets
    _enable(log_models=False)
    lgb.train(PARAMS, train, 10, valid_sets=[train, valid], valid_names=["train", "valid"])
    run = store.get_run(al.last_run().id)
    assert run.status == "FINISHED" and run.name.startswith("lightgbm.train-")
    assert run.tags["autolog.integration"] == "lightgbm"
    for key in ("train-l2", "train-l1", "valid-l2", "valid-l1"):
        assert _steps(store, run.id, key) == list(range(10)), key
    assert run.params["num_boost_round"] == "10" and run.params["valid_names"] == "train,valid"
    assert run.params["learning_rate"] == "0.3" and run.params["objective"] == "regression"
    assert run.params["num_leaves"] == "31" and run.params["boosting"] == "gbdt"  # resolved defaults
    assert run.params["dataset.train.shape"] == "300x5" and "dataset.train.digest" in run.params


def test_default_valid_names_and_throttle_keep_the_last_round(store, sets):
    train, valid = sets
    _enable(log_models=False, log_every_n_steps=3)
    lgb.train(PARAMS, train, 8, valid_sets=[valid])
    assert _steps(store, al.last_run().id, "valid_0-l2") == [0, 3, 6, 7]


def test_early_stopping_logs_best_and_stopped_iteration(store, sets):
    train, valid = sets
    _enable(log_models=False)
    params = dict(PARAMS, metric="l2", learning_rate=0.8, num_leaves=63, min_data_in_leaf=2)
    booster = lgb.train(params, train, 300, valid_sets=[valid], callbacks=[lgb.early_stopping(3, verbose=False)])
    run = store.get_run(al.last_run().id)
    history = store.metric_history(run.id, "valid_0-l2")
    assert len(history) < 300  # it did stop early
    # LightGBM's own convention: counted from 1, as it prints "Best iteration is: [N]"; the history's step is N - 1.
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["stopped_iteration"] == history[-1].step == len(history) - 1
    assert run.metrics["best_score"] == pytest.approx(booster.best_score["valid_0"]["l2"])
    assert "best_score.valid_0-l2" not in run.metrics  # one metric: best_score alone
    assert min(history, key=lambda p: p.value).step == booster.best_iteration - 1
    assert run.params["early_stopping_round"] == "3"
    assert run.tags["autolog.goal.valid_0-l2"] == "min"


def test_early_stopping_with_several_metrics_logs_best_score_per_metric(store, sets):
    train, valid = sets
    _enable(log_models=False)
    params = dict(PARAMS, metric=["l2", "l1"], learning_rate=0.8, num_leaves=63, min_data_in_leaf=2)
    booster = lgb.train(params, train, 300, valid_sets=[valid], valid_names=["valid"], callbacks=[lgb.early_stopping(3, verbose=False)])
    run = store.get_run(al.last_run().id)
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["best_score.valid-l2"] == pytest.approx(booster.best_score["valid"]["l2"])
    assert run.metrics["best_score.valid-l1"] == pytest.approx(booster.best_score["valid"]["l1"])
    assert run.metrics["best_score"] == pytest.approx(booster.best_score["valid"]["l2"])
    assert run.tags["autolog.goal.valid-l1"] == "min"


def test_metric_direction_is_lightgbms_own_is_higher_better(store, data):
    X_train, X_valid, y_train, y_valid = data
    _enable(log_models=False)
    lgb.train(dict(PARAMS, objective="binary", metric=["auc", "binary_logloss"]), lgb.Dataset(X_train, label=y_train > 0), 3,
              valid_sets=[lgb.Dataset(X_valid, label=y_valid > 0)])
    tags = store.get_run(al.last_run().id).tags
    assert tags["autolog.goal.valid_0-auc"] == "max" and tags["autolog.goal.valid_0-binary_logloss"] == "min"


def test_user_callbacks_still_run_and_see_the_same_values(store, sets):
    train, valid = sets
    seen = []

    def recorder(env):
        seen.append((env.iteration, env.evaluation_result_list[0][2]))

    callbacks = [recorder]
    _enable(log_models=False)
    lgb.train(dict(PARAMS, metric="l2"), train, 6, valid_sets=[valid], callbacks=callbacks)
    assert callbacks == [recorder]
    logged = [(p.step, p.value) for p in store.metric_history(al.last_run().id, "valid_0-l2")]
    assert logged == seen and len(logged) == 6


def test_cv_logs_mean_and_stdv_histories(store, data):
    X_train, _, y_train, _ = data
    _enable(log_models=False)
    results = lgb.cv(dict(PARAMS, metric="l2"), lgb.Dataset(X_train, label=y_train), 7, nfold=3, stratified=False)
    run = store.get_run(al.last_run().id)
    assert run.name.startswith("lightgbm.cv-") and len(store.search_runs()) == 1
    means = store.metric_history(run.id, "valid-l2-mean")
    stdvs = store.metric_history(run.id, "valid-l2-stdv")
    assert [p.step for p in means] == list(range(7)) == [p.step for p in stdvs]
    assert [p.value for p in means] == pytest.approx(results["valid l2-mean"])
    assert [p.value for p in stdvs] == pytest.approx(results["valid l2-stdv"])
    assert run.params["nfold"] == "3" and run.params["num_boost_round"] == "7"


def test_cv_early_stopping_logs_the_best_round(store, data):
    X_train, _, y_train, _ = data
    _enable(log_models=False)
    params = dict(PARAMS, metric="l2", learning_rate=0.9, num_leaves=63, min_data_in_leaf=2)
    results = lgb.cv(params, lgb.Dataset(X_train, label=y_train), 200, nfold=3, stratified=False,
                     callbacks=[lgb.early_stopping(2, verbose=False)])
    run = store.get_run(al.last_run().id)
    best = len(results["valid l2-mean"])  # cv cuts its histories at the best round; LightGBM counts it from 1
    assert run.metrics["best_iteration"] == best
    assert run.metrics["best_score"] == pytest.approx(results["valid l2-mean"][best - 1])
    assert run.metrics["stopped_iteration"] == len(store.metric_history(run.id, "valid-l2-mean")) - 1 >= best - 1
    assert run.tags["autolog.goal.valid-l2-mean"] == "min"


def test_sklearn_wrapper_fit_logs_one_run_with_its_params(store, data):
    X_train, X_valid, y_train, y_valid = data
    _enable(log_models=False)
    lgb.LGBMRegressor(n_estimators=6, num_leaves=7, verbose=-1, n_jobs=1).fit(X_train, y_train, eval_set=[(X_valid, y_valid)])
    runs = store.search_runs()
    assert len(runs) == 1
    run = runs[0]
    assert run.name.startswith("LGBMRegressor-") and run.tags["estimator_name"] == "LGBMRegressor"
    assert _steps(store, run.id, "valid_0-l2") == list(range(6))
    assert run.params["n_estimators"] == "6" and run.params["num_leaves"] == "7"
    assert run.params["dataset.train.shape"] == "300x5"


def my_rmse(y_true, y_pred):
    return "my_rmse", float(np.sqrt(np.mean((y_true - y_pred) ** 2))), False


def test_sklearn_custom_eval_metric_is_logged_by_function_name(store, data):
    X_train, X_valid, y_train, y_valid = data
    _enable(log_models=False)
    lgb.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1).fit(X_train, y_train, eval_set=[(X_valid, y_valid)], eval_metric=my_rmse)
    run = store.get_run(al.last_run().id)
    assert run.params["feval"] == stringify(my_rmse)  # was "[<lightgbm.sklearn._EvalFunctionWrapper object>]"
    assert run.tags["autolog.goal.valid_0-my_rmse"] == "min"  # the function's own is_higher_better=False


def test_loaded_models_predict_identically_and_importances_are_stored(store, data, sets):
    X_train, X_valid, y_train, y_valid = data
    train, valid = sets
    _enable()
    booster = lgb.train(dict(PARAMS, metric="l2"), train, 40, valid_sets=[valid], callbacks=[lgb.early_stopping(2, verbose=False)])
    run_id = al.last_run().id
    loaded = integration.load_model(run_id)
    assert loaded.best_iteration == booster.best_iteration
    assert np.array_equal(loaded.predict(X_valid), booster.predict(X_valid))

    y_class = (y_train > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X_train, y_class)
    sk_run = al.last_run().id
    loaded = integration.load_model(sk_run, store=store)
    assert np.array_equal(loaded.predict(X_valid), model.predict_proba(X_valid)[:, 1])

    _boosting.wait_for_plots()
    paths = {a.path for a in store.list_artifacts(run_id)}
    assert {"model/model.txt", "model/meta.json", "feature_importance.json"} <= paths
    importances = json.loads(open(store.artifact_file(run_id, "feature_importance.json"), encoding="utf-8").read())
    assert set(importances) == {"split", "gain"}
    split = dict(zip(booster.feature_name(), booster.feature_importance("split").tolist()))
    assert importances["split"] == {k: float(v) for k, v in split.items()}
    assert "feature_importance_gain.png" not in paths  # the chart is drawn only on request


def test_importance_chart_only_with_log_importance_plot(store, sets):
    pytest.importorskip("matplotlib")
    train, valid = sets
    integration.autolog(log_models=False, log_importance_plot=True)  # the integration's own autolog takes the option too
    lgb.train(PARAMS, train, 3, valid_sets=[valid])
    _boosting.wait_for_plots()
    assert open(store.artifact_file(al.last_run().id, "feature_importance_gain.png"), "rb").read().startswith(b"\x89PNG")


def test_checkpoint_all_saves_every_n_rounds(store, sets):
    train, valid = sets
    _enable(log_models=False, checkpoint="all", log_every_n_steps=4)
    lgb.train(PARAMS, train, 9, valid_sets=[valid])
    run_id = al.last_run().id
    paths = sorted(a.path for a in store.list_artifacts(run_id, "checkpoints"))
    assert paths == ["checkpoints/round-000004.txt", "checkpoints/round-000008.txt", "checkpoints/round-000009.txt"]
    fourth = lgb.Booster(model_str=open(store.artifact_file(run_id, paths[0]), encoding="utf-8").read())
    assert fourth.current_iteration() == 4


def test_run_inside_a_user_run_stays_open(store, sets):
    train, valid = sets
    _enable(log_models=False)
    with al.start_run(name="mine") as run:
        lgb.train(PARAMS, train, 3, valid_sets=[valid])
        assert not run.ended and store.get_run(run.id).status == "RUNNING"
    assert store.get_run(run.id).status == "FINISHED" and len(store.search_runs()) == 1
    assert _steps(store, run.id, "valid_0-l1") == [0, 1, 2]


def test_training_error_passes_through_and_fails_the_run(store, sets):
    train, valid = sets

    def boom(env):
        if env.iteration == 2:
            raise RuntimeError("user callback failed")

    _enable(log_models=False)
    with pytest.raises(RuntimeError, match="user callback failed"):
        lgb.train(PARAMS, train, 10, valid_sets=[valid], callbacks=[boom])
    run = store.search_runs()[0]
    assert run.status == "FAILED"
    assert _steps(store, run.id, "valid_0-l2") == [0, 1]  # the user's callback runs before ours


def test_disable_restores_the_originals():
    import lightgbm.engine
    import lightgbm.sklearn

    def current():
        return (lgb.train, lgb.cv, lightgbm.engine.train, lightgbm.engine.cv, lightgbm.sklearn.train,
                lightgbm.sklearn.LGBMModel.__dict__["fit"], lightgbm.sklearn.LGBMClassifier.__dict__["fit"])

    originals = current()
    _enable()
    assert lgb.train is not originals[0] and lightgbm.sklearn.train is not originals[4]
    al.autolog(only=["lightgbm"], disable=True)
    assert all(a is b for a, b in zip(current(), originals))


def test_importing_the_integration_does_not_import_lightgbm():
    code = "import sys, autolog.integrations.lightgbm; print('lightgbm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_runs_started_within_one_second_get_distinct_names(store, sets):
    train, _ = sets
    _enable(log_models=False, capture_env=False, log_system_metrics=False)
    for _ in range(3):
        lgb.train(PARAMS, train, 1)
    names = [run.name for run in store.search_runs()]
    assert len(names) == 3 and len(set(names)) == 3  # a counter suffix, never the same name twice


def test_rounds_queued_in_bursts_keep_each_rounds_value_and_time(store, sets, monkeypatch):
    # No burst before close: every round is noted and queued at the end, yet each point
    # keeps its own round's value and time.
    monkeypatch.setattr(_boosting, "DRAIN_S", 3600.0)
    monkeypatch.setattr(_boosting, "DRAIN_ROUNDS", 10**6)
    train, valid = sets
    seen = []

    def clock(env):
        seen.append((env.iteration, env.evaluation_result_list[0][2], int(time.time() * 1000)))
        time.sleep(0.02)  # rounds 20 ms apart: a point stamped at close would share one time

    clock.order = 30  # after ours (25): its time is taken right after our callback's
    _enable(log_models=False)
    lgb.train(dict(PARAMS, metric="l2"), train, 6, valid_sets=[valid], callbacks=[clock])
    points = store.metric_history(al.last_run().id, "valid_0-l2")
    assert [(p.step, p.value) for p in points] == [(step, value) for step, value, _ in seen]
    times = [p.timestamp for p in points]
    assert times == sorted(set(times))  # one time per round, in order
    assert all(abs(t - s) <= 10 for t, (_, _, s) in zip(times, seen)), (times, seen)


def test_a_long_fit_queues_its_rounds_in_several_bursts(store, sets, monkeypatch):
    monkeypatch.setattr(_boosting, "DRAIN_ROUNDS", 4)
    bursts = []
    drain = _boosting.Session.drain
    monkeypatch.setattr(_boosting.Session, "drain", lambda self, now=None: (bursts.append(len(self.notes)), drain(self, now)))
    train, valid = sets
    _enable(log_models=False)
    lgb.train(dict(PARAMS, metric="l2"), train, 10, valid_sets=[valid])
    assert sum(bursts) == 10 and max(bursts) <= 4 and bursts[:2] == [4, 4]
    assert _steps(store, al.last_run().id, "valid_0-l2") == list(range(10))
