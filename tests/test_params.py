"""Flattening, stringifying and truncation of hyper-parameters into params."""

import functools

import numpy as np
import pytest

import autolog as al
from autolog.patching.params import MAX_VALUE_LENGTH, flatten, stringify


def test_nested_dicts_flatten_with_dots():
    flat, truncated = flatten({"opt": {"lr": 0.1, "betas": (0.9, 0.99)}, "epochs": 3})
    assert flat == {"opt.lr": "0.1", "opt.betas": "(0.9, 0.99)", "epochs": "3"}
    assert truncated == []


def test_long_values_are_cut_and_reported():
    flat, truncated = flatten({"long": "x" * (MAX_VALUE_LENGTH + 10)})
    assert len(flat["long"]) == MAX_VALUE_LENGTH and truncated == ["long"]


def test_stringify_drops_memory_addresses_and_names_classes():
    class Thing:
        pass

    assert " at 0x" not in stringify(Thing())
    assert stringify(Thing).endswith("Thing")
    assert stringify(1e-3) == "0.001"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (np.float64(1.6946), "1.6946"), (np.float32(0.1), "0.1"), (np.int64(3), "3"), (np.bool_(True), "True"),
        (np.array(2.5), "2.5"), (np.str_("rbf"), "rbf"), (1e-5, "1e-05"), (10.0, "10.0"), (None, "None"),
        ([np.float64(0.1), np.float64(1.0)], "[0.1, 1.0]"), ((np.int64(1), "a"), "(1, 'a')"),
        ({"k": np.float64(2.0)}, "{'k': 2.0}"), (np.array([1, 2, 3]), "[1 2 3]"),
    ],
)
def test_numpy_values_are_written_as_mlflow_writes_them(value, text):
    assert stringify(value) == text


def my_metric(y_true, y_pred):
    return "mine", 0.0, False


def test_functions_are_written_by_name():
    assert stringify(my_metric) == "my_metric"
    assert stringify([my_metric, len]) == "[my_metric, len]"
    assert stringify(functools.partial(my_metric, 1)) == "my_metric"
    assert stringify(np.log1p) == "log1p"  # a ufunc: by name, not as <ufunc 'log1p'>
    assert stringify(lambda x: x) == "test_functions_are_written_by_name.<locals>.<lambda>"


def test_scipy_distributions_are_readable():
    stats = pytest.importorskip("scipy.stats")
    assert stringify(stats.uniform(loc=0, scale=1)) == "uniform(loc=0, scale=1)"
    assert stringify(stats.loguniform(1e-3, 1e2)) == "loguniform(0.001, 100.0)"
    assert stringify(stats.randint(1, np.int64(10))) == "randint(1, 10)"


def test_grid_over_logspace_is_searchable(store):
    pytest.importorskip("sklearn", reason="pip install 'autolog[sklearn]'")
    from scipy import stats
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.svm import SVC

    al.autolog(only=["sklearn"], log_models=False, log_datasets=False, log_post_training_metrics=False,
               capture_env=False, log_system_metrics=False)
    X, y = load_iris(return_X_y=True)
    GridSearchCV(SVC(), {"C": np.logspace(-2, 1, 4)}, cv=2).fit(X, y)
    parent = al.last_run()
    found = store.search_runs(filter="params.best_C = '10.0'")
    assert parent.id in [r.id for r in found]
    children = store.search_runs(filter=f"attributes.parent_run_id = '{parent.id}'")
    assert {r.params["C"] for r in children} <= {"0.01", "0.1", "1.0", "10.0"} and children
    RandomizedSearchCV(SVC(), {"C": stats.uniform(loc=0.5, scale=1)}, n_iter=2, cv=2, random_state=0).fit(X, y)
    params = store.get_run(al.last_run().id).params
    assert params["param_distributions.C"] == "uniform(loc=0.5, scale=1)"
    assert not params["best_C"].startswith("np.")


def test_lightgbm_sklearn_eval_metric_is_named(store):
    lgb = pytest.importorskip("lightgbm", reason="pip install 'autolog[lightgbm]'")

    al.autolog(only=["lightgbm"], log_models=False, log_datasets=False, capture_env=False, log_system_metrics=False)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(X, y, eval_set=[(X, y)], eval_metric=my_metric)
    params = store.get_run(al.last_run().id).params
    assert params["feval"] == "my_metric"  # not the repr of LightGBM's _EvalFunctionWrapper
