"""The scikit-learn integration against real scikit-learn on tiny data."""

from __future__ import annotations

import inspect
import sys
import threading

import pytest

pytest.importorskip("sklearn", reason="pip install 'autolog[sklearn]'")

import numpy as np  # noqa: E402

import autolog as al  # noqa: E402
from autolog import autolog  # noqa: E402


@pytest.fixture
def data():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    return X[:150], X[150:], y[:150], y[150:]


def _runs(store, **kw):
    return store.search_runs(**kw)


def test_fit_logs_params_training_metrics_and_model(store, data):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data
    autolog()
    model = LogisticRegression(C=0.5, max_iter=200).fit(X_train, y_train)
    run = store.get_run(al.last_run().id)
    assert run.status == "FINISHED"
    assert run.name.startswith("LogisticRegression-")
    assert run.params["C"] == "0.5" and run.params["max_iter"] == "200"
    assert run.tags["autolog.integration"] == "sklearn"
    assert run.tags["estimator_name"] == "LogisticRegression"
    for key in ("training_accuracy_score", "training_precision_score", "training_recall_score", "training_f1_score",
                "training_log_loss", "training_roc_auc", "training_score"):
        assert key in run.metrics, key
    assert run.metrics["training_score"] == pytest.approx(model.score(X_train, y_train))
    assert run.params["dataset.X_train.shape"] == "150x6"
    from autolog.integrations.sklearn import wait_for_models

    assert wait_for_models(run.id, timeout=60)  # the model is written off the training thread
    paths = [a.path for a in store.list_artifacts(run.id)]
    assert "model/model.skops" in paths and "model/meta.json" in paths


def test_loaded_model_predicts_the_same(store, data):
    from sklearn.ensemble import RandomForestClassifier

    from autolog.integrations.sklearn import load_model

    X_train, X_test, y_train, _ = data
    autolog()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, y_train)
    loaded = load_model(al.last_run().id)
    assert np.array_equal(loaded.predict(X_test), model.predict(X_test))


def test_regressor_metrics_and_sample_weight(store, data):
    from sklearn.linear_model import Ridge

    X_train, _, y_train, _ = data
    autolog()
    weights = np.linspace(0.1, 1.0, len(y_train))
    model = Ridge().fit(X_train, y_train, sample_weight=weights)
    run = store.get_run(al.last_run().id)
    for key in ("training_mean_squared_error", "training_root_mean_squared_error", "training_mean_absolute_error", "training_r2_score"):
        assert key in run.metrics
    assert run.metrics["training_score"] == pytest.approx(model.score(X_train, y_train, sample_weight=weights))


def test_patched_fit_keeps_signature_name_and_doc():
    from sklearn.ensemble import RandomForestClassifier

    before = inspect.signature(RandomForestClassifier.fit)
    doc = RandomForestClassifier.fit.__doc__
    autolog()
    assert inspect.signature(RandomForestClassifier.fit) == before
    assert RandomForestClassifier.fit.__name__ == "fit"
    assert RandomForestClassifier.fit.__doc__ == doc


def test_available_if_delegation_survives(store, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    autolog()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    assert hasattr(pipe, "predict_proba")
    assert not hasattr(Pipeline([("scale", StandardScaler())]), "predict_proba")


def test_disable_restores_originals_exactly():
    from sklearn.base import BaseEstimator
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.ensemble._forest import BaseForest

    original = BaseForest.__dict__["fit"]
    had_hook = "__init_subclass__" in BaseEstimator.__dict__
    autolog()
    assert BaseForest.__dict__["fit"] is not original
    autolog(disable=True)
    assert BaseForest.__dict__["fit"] is original
    assert RandomForestClassifier.fit is original
    assert ("__init_subclass__" in BaseEstimator.__dict__) == had_hook


def test_autolog_twice_patches_once(store, data):
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = data
    autolog()
    wrapped = LogisticRegression.__dict__["fit"]
    autolog(log_models=False)
    assert LogisticRegression.__dict__["fit"] is wrapped
    LogisticRegression().fit(X_train, y_train)
    run = al.last_run()
    assert not [a for a in store.list_artifacts(run.id) if a.path.startswith("model/")]
    assert len(_runs(store)) == 1


def test_pipeline_and_grid_search_log_one_parent_run(store, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, _, y_train, _ = data
    autolog(log_models=False, max_tuning_runs=2)
    Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X_train, y_train)
    assert [r.name.split("-")[0] for r in _runs(store)] == ["Pipeline"]
    pipe_run = store.get_run(al.last_run().id)
    assert pipe_run.params["clf__C"] == "1.0"
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0, 10.0, 100.0]}, cv=3).fit(X_train, y_train)
    parent = store.get_run(al.last_run().id)
    assert parent.name.startswith("GridSearchCV-")
    assert parent.params["best_C"] == str(search.best_params_["C"])
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "cv_results.csv" in [a.path for a in store.list_artifacts(parent.id)]
    children = store.child_runs(parent.id)
    assert len(children) == 2
    assert {c.params["C"] for c in children} <= {"0.1", "1.0", "10.0", "100.0"}
    assert all("mean_test_score" in c.metrics for c in children)
    # 1 pipeline + 1 search + 2 candidates: the search's 12 inner fits made no runs.
    assert len(_runs(store)) == 4


def test_cross_val_score_creates_no_runs(store, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X_train, _, y_train, _ = data
    autolog()
    cross_val_score(LogisticRegression(), X_train, y_train, cv=3)
    assert _runs(store) == []


def test_preprocessing_logs_only_when_asked(store, data):
    from sklearn.preprocessing import StandardScaler

    X_train = data[0]
    autolog()
    StandardScaler().fit(X_train)
    assert _runs(store) == []
    autolog(log_preprocessing=True)
    StandardScaler().fit(X_train)
    assert len(_runs(store)) == 1


def test_fit_inside_user_run_logs_there_and_leaves_it_open(store, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X_train, _, y_train, _ = data
    autolog(log_models=False)
    with al.start_run(name="mine") as run:
        LogisticRegression(C=2.0).fit(X_train, y_train)
        assert al.active_run() is run
        assert store.get_run(run.id).status == "RUNNING"
        # A sweep: other models in the same run go to child runs, never a param conflict.
        for depth in (1, 2, 3):
            DecisionTreeClassifier(max_depth=depth).fit(X_train, y_train)
    mine = store.get_run(run.id)
    assert mine.status == "FINISHED" and mine.params["C"] == "2.0"
    children = store.child_runs(run.id)
    assert sorted(c.params["max_depth"] for c in children) == ["1", "2", "3"]


def test_failing_fit_raises_same_exception_and_run_failed(store):
    from sklearn.linear_model import LogisticRegression

    autolog()
    bad = np.array([[np.nan, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError) as info:
        LogisticRegression().fit(bad, [0, 1])
    assert "NaN" in str(info.value)
    runs = _runs(store)
    assert len(runs) == 1 and runs[0].status == "FAILED"


def test_importing_sklearn_after_autolog_still_patches(tmp_path):
    import subprocess

    script = (
        "import autolog, sys\n"
        "autolog.autolog(log_models=False)\n"
        "assert 'sklearn' not in sys.modules\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])\n"
        "print(len(autolog.open_store().search_runs()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "AUTOLOG_URI": str(tmp_path / "s")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("1")


def test_error_in_our_metrics_code_warns_and_keeps_fit_result(store, data, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    from autolog.integrations import _sklearn_metrics

    X_train, _, y_train, _ = data
    monkeypatch.setenv("AUTOLOG_STRICT", "0")

    def broken(*args, **kwargs):
        raise RuntimeError("bug in autolog metrics")

    monkeypatch.setattr(_sklearn_metrics, "training_metrics", broken)
    import autolog.integrations._sklearn_patch as integ

    monkeypatch.setattr(integ, "training_metrics", broken)
    from autolog import reporting as safety

    safety.reset_warnings()
    autolog(log_models=False)
    with pytest.warns(safety.AutologWarning, match="bug in autolog metrics"):
        model = LogisticRegression().fit(X_train, y_train)
    assert hasattr(model, "coef_")
    run = store.get_run(al.last_run().id)
    assert run.status == "FINISHED" and run.params["C"] == "1.0"


def test_error_in_our_code_raises_under_strict_mode(store, data, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    import autolog.integrations._sklearn_patch as integ

    X_train, _, y_train, _ = data

    def broken(*args, **kwargs):
        raise RuntimeError("bug in autolog metrics")

    monkeypatch.setattr(integ, "training_metrics", broken)
    autolog(log_models=False)
    with pytest.raises(RuntimeError, match="bug in autolog"):
        LogisticRegression().fit(X_train, y_train)


def test_post_training_metrics_named_after_dataset(store, data):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data
    autolog(log_models=False)
    # Metric functions are followed when imported after autolog() (like MLflow).
    from sklearn.metrics import accuracy_score

    model = LogisticRegression().fit(X_train, y_train)
    score = model.score(X_test, y_test)
    acc = accuracy_score(y_test, model.predict(X_test))
    run = store.get_run(al.last_run().id)
    assert run.metrics["LogisticRegression_score-X_test"] == pytest.approx(score)
    assert run.metrics["accuracy_score-X_test"] == pytest.approx(acc)
    autolog(log_models=False, log_post_training_metrics=False)
    model.score(X_test, y_test)
    assert len(store.metric_history(run.id, "LogisticRegression_score-X_test")) == 1



def test_post_training_metric_on_unnamed_data_is_unknown_dataset(store, data):
    # MLflow's test_basic_post_training_metric_autologging: data no variable holds is
    # "unknown_dataset"; it was named "X", the parameter's name, beside a user variable X.
    from sklearn.linear_model import LogisticRegression

    X, X_test, y, y_test = data
    autolog(log_models=False)
    from sklearn.metrics import accuracy_score

    model = LogisticRegression().fit(X, y)
    score = model.score(X_test.copy(), y_test.copy())
    acc = accuracy_score(y_test, model.predict(X_test[:]))
    run = store.get_run(al.last_run().id)
    assert run.metrics["LogisticRegression_score-unknown_dataset"] == pytest.approx(score)
    assert run.metrics["accuracy_score-unknown_dataset"] == pytest.approx(acc)
    assert not [key for key in run.metrics if key.endswith("-X")]

def test_fits_in_two_threads_log_into_their_own_runs(store, data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X_train, _, y_train, _ = data
    autolog(log_models=False)
    errors = []

    def fit_tree():
        try:
            DecisionTreeClassifier(max_depth=2).fit(X_train, y_train)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=fit_tree)
    thread.start()
    LogisticRegression().fit(X_train, y_train)
    thread.join()
    assert not errors
    runs = _runs(store)
    assert sorted(r.name.split("-")[0] for r in runs) == ["DecisionTreeClassifier", "LogisticRegression"]
    by_name = {r.name.split("-")[0]: r for r in runs}
    assert "max_depth" in by_name["DecisionTreeClassifier"].params and "max_depth" not in by_name["LogisticRegression"].params


def test_user_subclass_calling_super_fit_logs_once(store, data):
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = data
    autolog(log_models=False)

    class MyModel(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            return super().fit(X, y, sample_weight=sample_weight)

    MyModel().fit(X_train, y_train)
    runs = _runs(store)
    assert len(runs) == 1 and runs[0].name.startswith("MyModel-")


def test_log_metric_right_after_fit_goes_into_the_fit_run(store, data):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data
    autolog(log_models=False)
    LogisticRegression().fit(X_train, y_train)
    al.log_metric("holdout_accuracy", 0.9)
    run = store.get_run(al.last_run().id)
    assert run.metrics["holdout_accuracy"] == 0.9
    assert len(_runs(store)) == 1


def test_exclusive_logs_only_into_user_runs(store, data):
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = data
    autolog(exclusive=True, log_models=False)
    LogisticRegression().fit(X_train, y_train)
    assert _runs(store) == []
    with al.start_run() as run:
        LogisticRegression().fit(X_train, y_train)
    assert store.get_run(run.id).params["C"] == "1.0"


def test_secret_params_are_redacted(store, data):
    from sklearn.base import BaseEstimator, ClassifierMixin

    X_train, _, y_train, _ = data
    autolog(log_models=False)

    class Remote(ClassifierMixin, BaseEstimator):
        def __init__(self, api_key="sk-live-123", depth=2):
            self.api_key = api_key
            self.depth = depth

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    Remote().fit(X_train, y_train)
    run = store.get_run(al.last_run().id)
    assert run.params["api_key"] == "***" and run.params["depth"] == "2"


@pytest.mark.parametrize("order", [["sklearn", "xgboost"], ["xgboost", "sklearn"]])
def test_estimators_with_their_own_integration_log_through_it(store, data, order):
    pytest.importorskip("xgboost", reason="pip install 'autolog[xgboost]'")
    import xgboost as xgb

    X_train, _, y_train, _ = data
    autolog(only=order, log_models=False)
    xgb.XGBClassifier(n_estimators=3).fit(X_train, y_train, eval_set=[(X_train, y_train)], verbose=False)
    runs = _runs(store)
    assert len(runs) == 1 and runs[0].tags["autolog.integration"] == "xgboost"
    assert len(store.metric_history(runs[0].id, "validation_0-logloss")) == 3


# -- what a user of MLflow's autolog expects (issue: correct in real use) ----------------------
def test_search_on_threading_backend_logs_one_parent_and_top_children(store, data):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X_train, _, y_train, _ = data
    autolog(log_models=False, max_tuning_runs=3)
    grid = {"C": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}
    with joblib.parallel_backend("threading"):
        GridSearchCV(LogisticRegression(), grid, cv=5, n_jobs=2).fit(X_train, y_train)
    runs = _runs(store)
    parent = store.get_run(al.last_run().id)
    # 6 candidates x 5 folds fitted on worker threads are nested, not 30 runs of their own.
    assert len(runs) == 4
    assert len(store.child_runs(parent.id)) == 3


def test_own_thread_pool_still_logs_one_run_per_fit(store, data):
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = data
    autolog(log_models=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda c: LogisticRegression(C=c).fit(X_train, y_train), [0.1, 1.0, 10.0]))
    assert sorted(r.params["C"] for r in _runs(store)) == ["0.1", "1.0", "10.0"]


def test_text_vectorizers_are_preprocessing_inside_a_user_run(store):
    from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    docs = ["good movie", "bad movie", "great film", "awful film", "good film", "bad plot"] * 5
    labels = [1, 0, 1, 0, 1, 0] * 5
    autolog(log_models=False)
    CountVectorizer().fit(docs)
    assert _runs(store) == []
    with al.start_run(name="text") as run:
        HashingVectorizer(n_features=64).fit_transform(docs)
        CountVectorizer().fit_transform(docs)
        X = TfidfVectorizer().fit_transform(docs)
        LogisticRegression(C=3.0).fit(X, labels)
    logged = store.get_run(run.id)
    assert logged.params["C"] == "3.0" and "ngram_range" not in logged.params
    assert store.child_runs(run.id) == []


def test_preprocessing_wrapping_a_model_logs_nothing(store, data):
    from sklearn.feature_selection import SelectFromModel
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = data
    autolog(log_models=False)
    SelectFromModel(LogisticRegression()).fit(X_train, y_train)
    assert _runs(store) == []


def test_positional_sample_weight_is_used(store, data):
    from sklearn.linear_model import SGDClassifier

    X_train, _, y_train, _ = data
    weights = np.random.default_rng(0).uniform(0.01, 1.0, len(y_train)) ** 3
    autolog(log_models=False)
    model = SGDClassifier(max_iter=5, tol=None, random_state=0).fit(X_train, y_train, None, None, weights)
    run = store.get_run(al.last_run().id)
    weighted = model.score(X_train, y_train, sample_weight=weights)
    assert weighted != model.score(X_train, y_train)
    assert run.metrics["training_score"] == pytest.approx(weighted)


def _search(n_jobs=None, **kwargs):
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    return GridSearchCV(SVC(), {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 0.1, 1.0]}, cv=3, n_jobs=n_jobs, **kwargs)


def test_max_tuning_runs_none_logs_every_candidate(store, data):
    X_train, _, y_train, _ = data
    autolog(log_models=False, max_tuning_runs=None)
    _search().fit(X_train, y_train)
    assert len(store.child_runs(al.last_run().id)) == 9


def test_search_children_carry_estimator_tags_and_metric_goals(store, data):
    X_train, _, y_train, _ = data
    autolog(log_models=False, max_tuning_runs=2)
    _search().fit(X_train, y_train)
    parent = store.get_run(al.last_run().id)
    found = store.search_runs(filter="tags.estimator_name = 'SVC'")
    assert len(found) == 2 and {r.parent_run_id for r in found} == {parent.id}
    child = found[0]
    assert child.tags["estimator_class"] == "sklearn.svm._classes.SVC"
    assert child.tags["autolog.goal.mean_test_score"] == "max" and child.tags["autolog.goal.rank_test_score"] == "min"
    assert parent.tags["autolog.goal.best_cv_score"] == "max"
    assert parent.tags["autolog.goal.training_accuracy_score"] == "max"


def test_training_metrics_record_their_direction(store, data):
    from sklearn.linear_model import LogisticRegression, Ridge

    X_train, _, y_train, _ = data
    autolog(log_models=False)
    LogisticRegression().fit(X_train, y_train)
    tags = store.get_run(al.last_run().id).tags
    assert tags["autolog.goal.training_log_loss"] == "min" and tags["autolog.goal.training_f1_score"] == "max"
    Ridge().fit(X_train, y_train.astype(float))
    tags = store.get_run(al.last_run().id).tags
    assert tags["autolog.goal.training_mean_squared_error"] == "min" and tags["autolog.goal.training_r2_score"] == "max"


def test_multiclass_roc_auc_is_one_vs_one_weighted_like_mlflow(store):
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, weights=[0.7, 0.2, 0.1],
                               random_state=1)
    autolog(log_models=False)
    model = LogisticRegression(max_iter=500).fit(X, y)
    logged = store.get_run(al.last_run().id).metrics["training_roc_auc"]
    proba = model.predict_proba(X)
    ovo = roc_auc_score(y, proba, multi_class="ovo", average="weighted")
    assert ovo != roc_auc_score(y, proba, multi_class="ovr", average="weighted")
    assert logged == ovo


def test_multi_metric_search_with_callable_refit(store, data):
    X_train, _, y_train, _ = data

    def pick_least_precise(results):  # a refit rule that does not pick rank 1
        return int(np.argmin(results["mean_test_precision"]))

    autolog(log_models=False, max_tuning_runs=4)
    search = _search(scoring=["precision", "recall"], refit=pick_least_precise).fit(X_train, y_train)
    parent = store.get_run(al.last_run().id)
    children = sorted(store.child_runs(parent.id), key=lambda r: int(r.tags["autolog.search_rank"]))
    best = search.cv_results_["params"][search.best_index_]
    assert children[0].params == {k: str(v) for k, v in best.items()}
    assert parent.params["best_C"] == str(best["C"]) and parent.params["best_gamma"] == str(best["gamma"])
    # the others follow by the first scorer's rank
    ranks = [c.metrics["rank_test_precision"] for c in children[1:]]
    others = sorted(r for i, r in enumerate(search.cv_results_["rank_test_precision"]) if i != search.best_index_)
    assert ranks == others[:3]
    assert parent.metrics["training_score"] == pytest.approx(search.best_estimator_.score(X_train, y_train))


def test_multi_metric_search_children_ranked_by_refit_metric(store, data):
    X_train, _, y_train, _ = data
    autolog(log_models=False, max_tuning_runs=3)
    search = _search(scoring=["precision", "recall"], refit="recall").fit(X_train, y_train)
    children = sorted(store.child_runs(al.last_run().id), key=lambda r: int(r.tags["autolog.search_rank"]))
    assert children[0].params["C"] == str(search.best_params_["C"])
    ranks = [c.metrics["rank_test_recall"] for c in children]
    assert ranks == sorted(search.cv_results_["rank_test_recall"].tolist())[:3]



def test_successive_halving_children_say_their_round_and_budget(store):
    # sklearn's successive-halving example: cv_results_ has one row per candidate and round,
    # so the best children were the same params several times with nothing telling them apart.
    from sklearn.datasets import make_classification
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV
    from sklearn.svm import SVC

    X, y = make_classification(n_samples=200, random_state=0)
    autolog(log_models=False, max_tuning_runs=None)
    search = HalvingGridSearchCV(SVC(), {"C": [1, 10, 100], "gamma": [0.1, 0.01]}, factor=2, random_state=0).fit(X, y)
    parent = store.get_run(al.last_run().id)
    children = _runs(store, filter=f"attributes.parent_run_id = '{parent.id}'")
    assert len(children) == len(search.cv_results_["params"])
    seen = {(tuple(sorted(c.params.items())), c.metrics["iter"], c.metrics["n_resources"]) for c in children}
    assert len(seen) == len(children)
    expected = {(tuple(sorted((k, str(v)) for k, v in p.items())), float(i), float(n))
                for p, i, n in zip(search.cv_results_["params"], search.cv_results_["iter"], search.cv_results_["n_resources"])}
    assert seen == expected

def test_post_training_metrics_from_a_script_in_a_folder_named_sklearn(store, data, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data
    folder = tmp_path / "sklearn"
    folder.mkdir()
    script = folder / "train.py"
    script.write_text("model = LogisticRegression().fit(X_train, y_train)\nmodel.score(X_valid, y_valid)\n")
    autolog(log_models=False)
    namespace = {"LogisticRegression": LogisticRegression, "X_train": X_train, "y_train": y_train, "X_valid": X_test, "y_valid": y_test}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    run = store.get_run(al.last_run().id)
    assert "LogisticRegression_score-X_valid" in run.metrics
    assert run.params["dataset.X_train.shape"] == "150x6"


def test_first_model_save_happens_off_the_training_thread(tmp_path):
    import subprocess

    # A fresh process: the fit returns before skops is imported; the model is stored by exit.
    script = (
        "import sys, threading, autolog\n"
        "autolog.autolog()\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "main = threading.current_thread()\n"
        "imported_on = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'skops.io':\n"
        "            imported_on.append(threading.current_thread() is main)\n"
        "sys.meta_path.insert(0, Spy())\n"
        "LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])\n"
        "from autolog.integrations.sklearn import wait_for_models\n"
        "assert wait_for_models(timeout=120)\n"
        "print('main-thread-import', any(imported_on))\n"
        "run = autolog.last_run().id\n"
        "print(sorted(a.path for a in autolog.open_store().list_artifacts(run)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                         env={**__import__("os").environ, "AUTOLOG_URI": str(tmp_path / "s")})
    assert out.returncode == 0, out.stderr
    assert "main-thread-import False" in out.stdout
    assert "model/model.skops" in out.stdout


def test_model_saved_when_the_fit_returned_not_later(store, data):
    from sklearn.linear_model import SGDClassifier

    from autolog.integrations.sklearn import load_model

    X_train, X_test, y_train, _ = data
    autolog()
    model = SGDClassifier(max_iter=5, tol=None, random_state=0, warm_start=True).fit(X_train, y_train)
    first_run = al.last_run().id
    expected = model.coef_.copy()
    model.coef_ += 1.0  # the user changes the model right away; the saved one is the fitted one
    assert np.array_equal(load_model(first_run).coef_, expected)


def test_script_exit_waits_for_the_model(tmp_path):
    import subprocess

    script = (
        "import autolog\n"
        "autolog.autolog()\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "m = RandomForestClassifier(n_estimators=3, random_state=0).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])\n"
        "print(m.predict([[3.0]]).tolist()[0])\n"
        "print(autolog.last_run().id)\n"
    )
    env = {**__import__("os").environ, "AUTOLOG_URI": str(tmp_path / "s"), "AUTOLOG_EXIT_TIMEOUT": "120"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    predicted, run_id = out.stdout.strip().splitlines()[-2:]
    from autolog.integrations.sklearn import load_model

    # The saved model predicts what the script's model predicted (a 3-tree forest may not fit 4 points).
    assert load_model(run_id, store=al.open_store(str(tmp_path / "s"))).predict([[3.0]]).tolist() == [int(predicted)]




def _slow_to_save(base):
    """A picklable subclass of ``base`` whose serialization is slow on the background saving thread only."""

    def __getstate__(self):
        import time

        if threading.current_thread().name == "autolog-sklearn-models":
            time.sleep(0.5)
        return base.__getstate__(self)

    cls = type(f"SlowToSave{base.__name__}", (base,), {"__getstate__": __getstate__, "__module__": __name__})
    globals()[cls.__name__] = cls  # found by pickle, so the save happens in the background
    return cls


def test_artifacts_read_right_after_the_user_run_include_the_model(store, data):
    # MLflow's test_estimator: `with start_run(): fit()`, then list_artifacts has "model".
    # The model is saved in the background, so reads of that run wait for it.
    from sklearn.linear_model import LogisticRegression

    SlowLogisticRegression = _slow_to_save(LogisticRegression)
    X_train, _, y_train, _ = data
    autolog()
    with al.start_run() as run:
        SlowLogisticRegression().fit(X_train, y_train)
    assert "model/model.skops" in {a.path for a in store.list_artifacts(run.id)}
    with al.start_run() as run2:
        SlowLogisticRegression().fit(X_train, y_train)
    assert store.artifact_file(run2.id, "model/meta.json")

def test_model_saving_at_exit_survives_temp_folder_cleanup(tmp_path):
    # From sklearn's ColumnTransformer example: the search that ends the script was still being
    # saved when the interpreter exited, and weakref's exit hook (registered by the first
    # save's temp folder, after autolog's) deleted the folder under the save.
    import subprocess

    script = (
        "import threading, time\n"
        "import autolog\n"
        "autolog.autolog()\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from autolog.integrations._sklearn_models import wait_for_models\n"
        "X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]\n"
        "LogisticRegression().fit(X, y)\n"
        "wait_for_models()\n"
        "saving = threading.Event()\n"
        "class SlowToSave(LogisticRegression):\n"
        "    def __getstate__(self):  # slow only while the background save serializes it\n"
        "        if threading.current_thread().name == 'autolog-sklearn-models':\n"
        "            saving.set()\n"
        "            time.sleep(1.0)\n"
        "        return super().__getstate__()\n"
        "SlowToSave().fit(X, y)\n"
        "print(autolog.last_run().id)\n"
        "saving.wait(60)  # the script ends while its model is being saved\n"
    )
    env = {**__import__("os").environ, "AUTOLOG_URI": str(tmp_path / "s"), "AUTOLOG_EXIT_TIMEOUT": "120"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    assert "AutologWarning" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    paths = {a.path for a in al.open_store(str(tmp_path / "s")).list_artifacts(run_id)}
    assert "model/model.skops" in paths

def _expected_metrics(model, X, y, w):
    from sklearn import metrics as M

    pred = model.predict(X)
    if hasattr(model, "classes_"):
        proba = model.predict_proba(X)
        p, r, f, _ = M.precision_recall_fscore_support(y, pred, average="weighted", sample_weight=w, zero_division=0)
        out = {"training_accuracy_score": M.accuracy_score(y, pred, sample_weight=w), "training_precision_score": p,
               "training_recall_score": r, "training_f1_score": f,
               "training_log_loss": M.log_loss(y, proba, sample_weight=w, labels=model.classes_)}
        if proba.shape[1] == 2:
            out["training_roc_auc"] = M.roc_auc_score(y, proba[:, 1], sample_weight=w)
        elif w is None:
            out["training_roc_auc"] = M.roc_auc_score(y, proba, multi_class="ovo", average="weighted", labels=model.classes_)
        return out
    return {"training_mean_squared_error": M.mean_squared_error(y, pred, sample_weight=w),
            "training_root_mean_squared_error": M.root_mean_squared_error(y, pred, sample_weight=w),
            "training_mean_absolute_error": M.mean_absolute_error(y, pred, sample_weight=w),
            "training_r2_score": M.r2_score(y, pred, sample_weight=w)}


@pytest.mark.parametrize("case", ["binary", "binary-weighted", "multiclass", "multiclass-weighted", "string-labels",
                                  "tied-scores", "regression", "regression-weighted"])
def test_training_metrics_equal_sklearn_metrics(store, case):
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier

    from autolog.integrations._sklearn_metrics import training_metrics

    rng = np.random.default_rng(3)
    w = rng.uniform(0.1, 2.0, 400) if case.endswith("weighted") else None
    if case.startswith("regression"):
        X, y = make_regression(n_samples=400, n_features=5, noise=10.0, random_state=0)
        model = Ridge().fit(X, y, sample_weight=w)
    else:
        n_classes = 3 if case.startswith("multiclass") else 2
        X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_classes=n_classes, weights=None if n_classes == 2 else [0.6, 0.3, 0.1],
                                   flip_y=0.1, random_state=0)
        if case == "string-labels":
            y = np.array(["cat", "dog"])[y]
        model = (DecisionTreeClassifier(max_depth=3, random_state=0) if case == "tied-scores" else LogisticRegression(max_iter=500)).fit(X, y, sample_weight=w)
    logged = training_metrics(model, X, y, w)
    expected = _expected_metrics(model, X, y, w)
    for key, value in expected.items():
        assert logged[key] == value, (key, logged[key], value)
    assert set(expected) <= set(logged)


def test_pipeline_search_example_runs_and_logs_one_search(tmp_path):
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "s"), "AUTOLOG_EXIT_TIMEOUT": "120"}
    done = subprocess.run([sys.executable, os.path.join(root, "examples", "sklearn_pipeline_search.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = al.open_store(str(tmp_path / "s"))
    runs = store.search_runs(experiment="sklearn-pipeline-search")
    (parent,) = [r for r in runs if r.parent_run_id is None]
    assert parent.name.startswith("GridSearchCV-") and "GridSearchCV_score-X_test" in parent.metrics
    children = store.search_runs(experiment="sklearn-pipeline-search", filter="tags.estimator_name = 'Pipeline'")
    assert len(children) == 3 and len(runs) == 4
    assert "model/model.skops" in {a.path for a in store.list_artifacts(parent.id)}


def test_patched_calls_do_not_reread_the_rank_environment(store, data, monkeypatch):
    import os

    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = data
    autolog(log_models=False)
    LogisticRegression().fit(X_train, y_train)
    reads = []

    class CountingEnviron(dict):
        def get(self, key, default=None):
            if key in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "LOCAL_RANK"):
                reads.append(key)
            return super().get(key, default)

    monkeypatch.setattr(os, "environ", CountingEnviron(os.environ))
    for _ in range(3):
        LogisticRegression().fit(X_train, y_train)
    assert reads == []  # the rank is read once per process (and when autolog() patches)
    assert len(_runs(store)) == 4


def test_user_joblib_parallel_inside_a_custom_fit_is_nested(store, data):
    import joblib
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.tree import DecisionTreeClassifier

    X_train, _, y_train, _ = data
    autolog(log_models=False)

    class Bagged(ClassifierMixin, BaseEstimator):
        def __init__(self, n=3):
            self.n = n

        def fit(self, X, y):
            # the user's own thread pool inside a fit: its trees belong to this fit's run
            self.trees_ = joblib.Parallel(n_jobs=2, prefer="threads")(
                [joblib.delayed(DecisionTreeClassifier(max_depth=2, random_state=i).fit)(X, y) for i in range(self.n)])
            self.classes_ = self.trees_[0].classes_
            return self

        def predict(self, X):
            return self.trees_[0].predict(X)

    Bagged().fit(X_train, y_train)
    runs = _runs(store)
    assert [r.name.split("-")[0] for r in runs] == ["Bagged"]


def test_search_logs_its_best_estimator_as_a_model_like_mlflow(store, data):
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X_train, X_test, y_train, _ = data
    autolog(max_tuning_runs=0)
    search = GridSearchCV(SVC(), {"C": [0.5, 2.0]}, cv=2).fit(X_train, y_train)
    run_id = al.last_run().id
    paths = {a.path for a in store.list_artifacts(run_id)}  # waits for the background saves
    assert any(p.startswith("model/") for p in paths) and any(p.startswith("best_estimator/") for p in paths)
    from autolog.integrations.sklearn import load_model

    best = load_model(run_id, artifact_dir="best_estimator")
    assert type(best) is SVC and best.predict(X_test).tolist() == search.best_estimator_.predict(X_test).tolist()
