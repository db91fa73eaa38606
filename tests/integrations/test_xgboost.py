"""The XGBoost integration against real XGBoost on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

xgb = pytest.importorskip("xgboost", reason="pip install 'autolog[xgboost]'")

import numpy as np  # noqa: E402

import autolog as al  # noqa: E402
from autolog.integrations import _boosting  # noqa: E402
from autolog.integrations import xgboost as integration  # noqa: E402


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + 0.8 * rng.normal(size=300) > 0).astype(int)
    return X[:200], X[200:], y[:200], y[200:]


@pytest.fixture
def dmats(data):
    X_train, X_valid, y_train, y_valid = data
    return xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)


PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 3, "nthread": 1}


def _enable(**opts):
    al.autolog(only=["xgboost"], **opts)


def _steps(store, run_id, key):
    return [p.step for p in store.metric_history(run_id, key)]


def test_train_logs_every_round_of_every_eval_metric(store, dmats):
    dtrain, dvalid = dmats
    _enable(log_models=False)
    booster = xgb.train(PARAMS, dtrain, 12, evals=[(dtrain, "train"), (dvalid, "valid")], verbose_eval=False)
    run = store.get_run(al.last_run().id)
    assert run.status == "FINISHED" and run.name.startswith("xgboost.train-")
    assert run.tags["autolog.integration"] == "xgboost"
    for key in ("train-logloss", "train-error", "valid-logloss", "valid-error"):
        assert _steps(store, run.id, key) == list(range(12)), key
    final = dict(item.split(":") for item in booster.eval(dvalid, "valid").split("\t")[1:])  # "[0]\tvalid-logloss:0.3..."
    assert run.metrics["valid-logloss"] == pytest.approx(float(final["valid-logloss"]), rel=1e-4)
    assert run.params["num_boost_round"] == "12" and run.params["evals"] == "train,valid"
    assert run.params["max_depth"] == "3" and run.params["objective"] == "binary:logistic"
    # resolved defaults the user did not pass
    assert run.params["eta"] == "0.3" and run.params["booster"] == "gbtree"
    assert run.params["dataset.train.shape"] == "200x6" and "dataset.train.digest" in run.params



def test_evals_passed_by_position_are_logged(store, dmats):
    # XGBoost's evals_result demo: xgb.train(param, dtrain, num_round, watchlist, ...).
    dtrain, dvalid = dmats
    _enable(log_models=False)
    with pytest.warns(FutureWarning):
        xgb.train(PARAMS, dtrain, 3, [(dvalid, "eval"), (dtrain, "train")], verbose_eval=False)
    run = store.get_run(al.last_run().id)
    assert run.params["evals"] == "eval,train"
    assert _steps(store, run.id, "eval-logloss") == [0, 1, 2]

def test_last_round_logged_despite_log_every_n_steps(store, dmats):
    dtrain, dvalid = dmats
    _enable(log_models=False, log_every_n_steps=4)
    xgb.train(PARAMS, dtrain, 10, evals=[(dvalid, "valid")], verbose_eval=False)
    assert _steps(store, al.last_run().id, "valid-logloss") == [0, 4, 8, 9]


def test_early_stopping_logs_best_and_stopped_iteration(store, dmats):
    dtrain, dvalid = dmats
    _enable(log_models=False)
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "eta": 0.9, "max_depth": 6, "nthread": 1}
    booster = xgb.train(params, dtrain, 200, evals=[(dvalid, "valid")], early_stopping_rounds=3, verbose_eval=False)
    run = store.get_run(al.last_run().id)
    rounds = booster.num_boosted_rounds()
    assert rounds < 200  # it did stop early
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["stopped_iteration"] == rounds - 1
    assert run.metrics["best_score"] == pytest.approx(booster.best_score)
    history = store.metric_history(run.id, "valid-logloss")
    assert len(history) == rounds
    assert min(history, key=lambda p: p.value).step == booster.best_iteration
    assert run.params["early_stopping_rounds"] == "3"



def test_early_stopping_callback_of_the_user_does_not_hide_the_last_round(store, dmats, data):
    # XGBoost's cross-validation demo passes callbacks=[EarlyStopping(3)]: XGBoost calls the
    # callbacks with any(), so one listed after a callback that says "stop" never sees that round.
    dtrain, dvalid = dmats
    X_train, _, y_train, _ = data
    _enable(log_models=False)
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "eta": 0.9, "max_depth": 6, "nthread": 1}
    booster = xgb.train(params, dtrain, 200, evals=[(dvalid, "valid")], callbacks=[xgb.callback.EarlyStopping(rounds=3)], verbose_eval=False)
    rounds = booster.num_boosted_rounds()
    assert rounds < 200
    run = store.get_run(al.last_run().id)
    assert _steps(store, run.id, "valid-logloss") == list(range(rounds))
    assert run.metrics["stopped_iteration"] == rounds - 1 and run.params["early_stopping_rounds"] == "3"
    printed = []
    xgb.cv(params, xgb.DMatrix(X_train, label=y_train), 200, nfold=3, seed=0,
           callbacks=[_Printed(printed), xgb.callback.EarlyStopping(rounds=3)])  # the demo's order
    cv_run = store.get_run(al.last_run().id)
    assert cv_run.id != run.id and printed
    assert _steps(store, cv_run.id, "test-logloss-mean") == [epoch for epoch, _ in printed]
    assert cv_run.metrics["stopped_iteration"] == printed[-1][0]


class _Printed(xgb.callback.TrainingCallback):
    """What EvaluationMonitor would print: every round's test-logloss mean."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def after_iteration(self, model, epoch, evals_log):
        self.seen.append((epoch, evals_log["test"]["logloss"][-1]))
        return False

def test_early_stopping_with_several_metrics_logs_best_score_per_metric_and_goals(store, dmats):
    dtrain, dvalid = dmats
    _enable(log_models=False)
    params = dict(PARAMS, eval_metric=["auc", "logloss"], max_depth=6, eta=1.0)
    booster = xgb.train(params, dtrain, 200, evals=[(dvalid, "valid")], early_stopping_rounds=2, verbose_eval=False)
    run = store.get_run(al.last_run().id)
    best = booster.best_iteration  # XGBoost's own convention: 0-based, the history's step
    assert run.metrics["best_iteration"] == best and run.metrics["best_score"] == pytest.approx(float(booster.best_score))
    assert run.metrics["best_score.valid-logloss"] == pytest.approx(float(booster.best_score))  # XGBoost stops on the last metric
    auc = dict((p.step, p.value) for p in store.metric_history(run.id, "valid-auc"))
    assert run.metrics["best_score.valid-auc"] == pytest.approx(auc[best])
    assert run.tags["autolog.goal.valid-auc"] == "max" and run.tags["autolog.goal.valid-logloss"] == "min"


def test_cv_gets_a_run_with_mean_and_std_histories(store, data):
    X_train, _, y_train, _ = data
    _enable(log_models=False)
    results = xgb.cv(PARAMS, xgb.DMatrix(X_train, label=y_train), 6, nfold=3, early_stopping_rounds=50, as_pandas=False)
    runs = store.search_runs()
    assert len(runs) == 1 and runs[0].name.startswith("xgboost.cv-") and runs[0].tags["autolog.integration"] == "xgboost"
    run = runs[0]
    for column in ("test-logloss-mean", "test-logloss-std", "train-error-mean"):
        assert [p.value for p in store.metric_history(run.id, column)] == pytest.approx(results[column]), column
    assert run.params["nfold"] == "3" and run.params["num_boost_round"] == "6" and run.params["max_depth"] == "3"
    assert run.metrics["best_iteration"] == len(results["test-error-mean"]) - 1
    assert run.metrics["best_score"] == pytest.approx(results["test-error-mean"][-1])
    assert run.tags["autolog.goal.test-logloss-mean"] == "min"


def test_user_callbacks_still_run_and_see_the_same_values(store, dmats):
    dtrain, dvalid = dmats

    class Recorder(xgb.callback.TrainingCallback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def after_iteration(self, model, epoch, evals_log):
            self.seen.append((epoch, evals_log["valid"]["logloss"][-1]))
            return False

    recorder = Recorder()
    callbacks = [recorder]
    _enable(log_models=False)
    xgb.train(PARAMS, dtrain, 6, evals=[(dvalid, "valid")], callbacks=callbacks, verbose_eval=False)
    assert callbacks == [recorder]  # the user's list is not changed
    logged = [(p.step, p.value) for p in store.metric_history(al.last_run().id, "valid-logloss")]
    assert logged == recorder.seen and len(logged) == 6


def test_sklearn_wrapper_fit_logs_one_run_with_its_params(store, data):
    X_train, X_valid, y_train, y_valid = data
    _enable(log_models=False)
    model = xgb.XGBClassifier(n_estimators=7, max_depth=2, n_jobs=1)
    model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
    runs = store.search_runs()
    assert len(runs) == 1
    run = runs[0]
    assert run.name.startswith("XGBClassifier-") and run.tags["estimator_name"] == "XGBClassifier"
    assert _steps(store, run.id, "validation_0-logloss") == list(range(7))
    assert run.params["n_estimators"] == "7" and run.params["num_boost_round"] == "7"
    assert run.params["max_depth"] == "2" and run.params["objective"] == "binary:logistic"
    assert run.params["learning_rate"] == "0.3"  # resolved: the wrapper leaves it unset
    assert run.params["dataset.train.shape"] == "200x6" and run.params["dataset.train.label.shape"] == "200"


def test_sklearn_and_xgboost_integrations_together_still_log_once(store, data):
    X_train, _, y_train, _ = data
    al.autolog(only=["sklearn", "xgboost"], log_models=False)
    xgb.XGBRegressor(n_estimators=4, n_jobs=1).fit(X_train, X_train[:, 0], eval_set=[(X_train, X_train[:, 0])], verbose=False)
    runs = store.search_runs()
    assert len(runs) == 1 and runs[0].tags["autolog.integration"] == "xgboost"
    assert _steps(store, runs[0].id, "validation_0-rmse") == [0, 1, 2, 3]


def test_loaded_models_predict_identically_and_importances_are_stored(store, data, dmats):
    X_train, X_valid, y_train, _ = data
    dtrain, dvalid = dmats
    _enable()
    booster = xgb.train(PARAMS, dtrain, 8, evals=[(dvalid, "valid")], verbose_eval=False)
    run_id = al.last_run().id
    loaded = integration.load_model(run_id)
    assert np.array_equal(loaded.predict(dvalid), booster.predict(dvalid))

    model = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X_train, y_train)
    sk_run = al.last_run().id
    loaded = integration.load_model(sk_run, store=store)
    assert np.array_equal(loaded.predict(xgb.DMatrix(X_valid)), model.predict_proba(X_valid)[:, 1])
    meta = json.loads(open(store.artifact_file(sk_run, "model/meta.json"), encoding="utf-8").read())
    assert meta["class"] == "xgboost.sklearn.XGBClassifier" and meta["file"] == "model.ubj"

    _boosting.wait_for_plots()
    paths = {a.path for a in store.list_artifacts(run_id)}
    assert {"model/model.ubj", "model/meta.json", "feature_importance.json"} <= paths
    importances = json.loads(open(store.artifact_file(run_id, "feature_importance.json"), encoding="utf-8").read())
    assert set(importances) == set(integration.IMPORTANCE_TYPES)
    assert importances["weight"] == {k: float(v) for k, v in booster.get_score(importance_type="weight").items()}
    assert "feature_importance_gain.png" not in paths  # the chart is drawn only on request



def test_linear_booster_logs_the_importance_it_has(store, dmats):
    # MLflow's test_xgb_autolog_does_not_throw_if_importance_values_not_supported: gblinear
    # refuses every importance type but "weight"; that failure hid the model's importances.
    dtrain, _ = dmats
    _enable()
    booster = xgb.train({"booster": "gblinear", "objective": "binary:logistic", "nthread": 1}, dtrain, 5)
    run_id = al.last_run().id
    store_ = al.open_store()
    paths = {a.path for a in store_.list_artifacts(run_id)}
    assert "model/model.ubj" in paths and "feature_importance.json" in paths
    with open(store_.artifact_file(run_id, "feature_importance.json"), encoding="utf-8") as fh:
        logged = json.load(fh)
    assert set(logged) == {"weight"}
    assert logged["weight"] == pytest.approx(booster.get_score(importance_type="weight"))

def test_importance_chart_only_with_log_importance_plot(store, dmats):
    pytest.importorskip("matplotlib")
    dtrain, dvalid = dmats
    _enable(log_models=False, log_importance_plot=True)
    xgb.train(PARAMS, dtrain, 3, evals=[(dvalid, "valid")], verbose_eval=False)
    _boosting.wait_for_plots()
    png = open(store.artifact_file(al.last_run().id, "feature_importance_gain.png"), "rb").read()
    assert png.startswith(b"\x89PNG")


def test_checkpoint_all_saves_every_n_rounds(store, dmats):
    dtrain, dvalid = dmats
    _enable(log_models=False, checkpoint="all", log_every_n_steps=5)
    xgb.train(PARAMS, dtrain, 12, evals=[(dvalid, "valid")], verbose_eval=False)
    run_id = al.last_run().id
    paths = sorted(a.path for a in store.list_artifacts(run_id, "checkpoints"))
    assert paths == ["checkpoints/round-000005.ubj", "checkpoints/round-000010.ubj", "checkpoints/round-000012.ubj"]
    fifth = xgb.Booster()
    fifth.load_model(bytearray(open(store.artifact_file(run_id, paths[0]), "rb").read()))
    assert fifth.num_boosted_rounds() == 5


def test_run_inside_a_user_run_stays_open(store, dmats):
    dtrain, dvalid = dmats
    _enable(log_models=False)
    with al.start_run(name="mine") as run:
        xgb.train(PARAMS, dtrain, 3, evals=[(dvalid, "valid")], verbose_eval=False)
        assert not run.ended and store.get_run(run.id).status == "RUNNING"
        run.flush()
        assert _steps(store, run.id, "valid-logloss") == [0, 1, 2]
    assert store.get_run(run.id).status == "FINISHED" and len(store.search_runs()) == 1


def test_training_error_passes_through_and_fails_the_run(store, dmats):
    dtrain, dvalid = dmats

    class Boom(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if epoch == 2:
                raise RuntimeError("user callback failed")
            return False

    _enable(log_models=False)
    with pytest.raises(RuntimeError, match="user callback failed"):
        xgb.train(PARAMS, dtrain, 10, evals=[(dvalid, "valid")], callbacks=[Boom()], verbose_eval=False)
    run = store.search_runs()[0]
    assert run.status == "FAILED"
    assert _steps(store, run.id, "valid-logloss") == [0, 1, 2]  # ours runs first: round 2 was evaluated


def test_disable_restores_the_originals():
    import xgboost.sklearn
    import xgboost.training

    originals = (xgb.train, xgboost.training.train, xgboost.sklearn.train, xgboost.sklearn.XGBModel.__dict__["fit"],
                 xgboost.sklearn.XGBClassifier.__dict__["fit"])
    _enable()
    assert xgb.train is not originals[0] and xgboost.sklearn.train is not originals[2]
    al.autolog(only=["xgboost"], disable=True)
    restored = (xgb.train, xgboost.training.train, xgboost.sklearn.train, xgboost.sklearn.XGBModel.__dict__["fit"],
                xgboost.sklearn.XGBClassifier.__dict__["fit"])
    assert all(a is b for a, b in zip(restored, originals))


def test_importing_the_integration_does_not_import_xgboost():
    code = "import sys, autolog.integrations.xgboost, autolog.integrations._boosting; print('xgboost' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_error_in_our_callback_warns_once_and_training_goes_on(store, dmats, monkeypatch):
    dtrain, dvalid = dmats
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr(integration.ADAPTER, "round_items", lambda evals_log, index: 1 / 0)
    from autolog.reporting import AutologWarning, reset_warnings

    reset_warnings()
    _enable(log_models=False)
    with pytest.warns(AutologWarning, match="xgboost integration hit an error"):
        booster = xgb.train(PARAMS, dtrain, 5, evals=[(dvalid, "valid")], verbose_eval=False)
    assert booster.num_boosted_rounds() == 5
    run = store.search_runs()[0]
    assert run.status == "FINISHED" and run.params["num_boost_round"] == "5"
    assert "valid-logloss" not in run.metrics


def test_rounds_queued_in_bursts_keep_each_rounds_value_and_time(store, dmats, monkeypatch):
    # No burst before close: every round is noted and queued at the end, yet each point
    # keeps its own round's value (read from the growing evals_log by index) and time.
    monkeypatch.setattr(_boosting, "DRAIN_S", 3600.0)
    monkeypatch.setattr(_boosting, "DRAIN_ROUNDS", 10**6)
    dtrain, dvalid = dmats
    stamps = []

    class Clock(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            stamps.append(int(time.time() * 1000))
            time.sleep(0.02)  # rounds 20 ms apart: a point stamped at close would share one time
            return False

    _enable(log_models=False)
    history: dict = {}
    xgb.train(PARAMS, dtrain, 8, evals=[(dvalid, "valid")], evals_result=history, verbose_eval=False, callbacks=[Clock()])
    run_id = al.last_run().id
    for key, values in (("valid-logloss", history["valid"]["logloss"]), ("valid-error", history["valid"]["error"])):
        points = store.metric_history(run_id, key)
        assert [(p.step, p.value) for p in points] == [(i, pytest.approx(v)) for i, v in enumerate(values)], key
        times = [p.timestamp for p in points]
        assert times == sorted(set(times)), key  # one time per round, in order
        assert all(abs(t - s) <= 10 for t, s in zip(times, stamps)), (times, stamps)


def test_rounds_are_visible_while_training_goes_on(store, dmats, monkeypatch):
    # A burst every round: a reader flushing mid-training sees every round so far.
    monkeypatch.setattr(_boosting, "DRAIN_S", 0.0)
    dtrain, dvalid = dmats
    seen = []

    class Reader(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            al.flush()
            seen.append(_steps(store, al.active_run().id, "valid-logloss"))
            return False

    _enable(log_models=False)
    xgb.train(PARAMS, dtrain, 4, evals=[(dvalid, "valid")], verbose_eval=False, callbacks=[Reader()])
    assert seen == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]


def test_a_dmatrix_trained_again_is_copied_out_and_hashed_once(store, data, monkeypatch):
    X_train, X_valid, y_train, y_valid = data
    dtrain, dvalid = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)
    copies = []
    get_data = xgb.DMatrix.get_data
    monkeypatch.setattr(xgb.DMatrix, "get_data", lambda self: (copies.append(self), get_data(self))[1])  # counts, then the real copy
    _enable(log_models=False)
    runs = []
    for depth in (2, 3):
        xgb.train(dict(PARAMS, max_depth=depth), dtrain, 3, evals=[(dvalid, "valid")], verbose_eval=False)
        runs.append(store.get_run(al.last_run().id))
    assert copies == [dtrain]
    assert runs[0].params["dataset.train.digest"] == runs[1].params["dataset.train.digest"]
    assert runs[0].params["dataset.train.dtype"] == runs[1].params["dataset.train.dtype"] == "float32"
    # Another DMatrix of other data: its own digest, its own copy.
    xgb.train(PARAMS, xgb.DMatrix(X_valid, label=y_valid), 2, verbose_eval=False)
    assert len(copies) == 2
    assert store.get_run(al.last_run().id).params["dataset.train.digest"] != runs[0].params["dataset.train.digest"]
