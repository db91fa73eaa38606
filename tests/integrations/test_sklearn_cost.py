"""What the scikit-learn integration's cheaper fit path records: the same values as the plain way.

Forests' training labels come from the probabilities already computed; a fit's params skip
what its run already holds; a search's children are written together. Each test checks the
record, never a duration.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn", reason="pip install 'autolog[sklearn]'")

import numpy as np  # noqa: E402

import autolog as al  # noqa: E402
from autolog import autolog  # noqa: E402


def _classification(case: str):
    from sklearn.datasets import make_classification

    n_classes = 3 if case.startswith("multiclass") else 2
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=n_classes, flip_y=0.2, random_state=1)
    if case == "string-labels":
        y = np.array(["cat", "dog"])[y]
    w = np.random.default_rng(0).uniform(0.1, 2.0, len(y)) if case.endswith("weighted") else None
    return X, y, w


@pytest.mark.parametrize("forest", ["RandomForestClassifier", "ExtraTreesClassifier"])
@pytest.mark.parametrize("case", ["binary", "binary-weighted", "multiclass", "string-labels"])
def test_forest_training_metrics_equal_sklearn_metrics_on_its_own_predict(store, forest, case):
    import sklearn.ensemble
    from sklearn import metrics as M

    X, y, w = _classification(case)
    autolog(log_models=False)
    # Shallow, few trees, noisy labels: many samples with probabilities close to a tie.
    model = getattr(sklearn.ensemble, forest)(n_estimators=7, max_depth=3, random_state=0).fit(X, y, sample_weight=w)
    logged = store.get_run(al.last_run().id).metrics
    pred, proba = model.predict(X), model.predict_proba(X)
    p, r, f, _ = M.precision_recall_fscore_support(y, pred, average="weighted", sample_weight=w, zero_division=0)
    expected = {"training_accuracy_score": M.accuracy_score(y, pred, sample_weight=w), "training_precision_score": p,
                "training_recall_score": r, "training_f1_score": f, "training_score": model.score(X, y, sample_weight=w),
                "training_log_loss": M.log_loss(y, proba, sample_weight=w, labels=model.classes_)}
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=0, abs=0), (key, logged[key], value)


def _expected_classifier_metrics(model, X, y):
    from sklearn import metrics as M

    pred, proba = model.predict(X), model.predict_proba(X)
    p, r, f, _ = M.precision_recall_fscore_support(y, pred, average="weighted", zero_division=0)
    return {"training_accuracy_score": M.accuracy_score(y, pred), "training_precision_score": p, "training_recall_score": r,
            "training_f1_score": f, "training_log_loss": M.log_loss(y, proba, labels=model.classes_)}


@pytest.mark.parametrize("wrapper", ["pipeline", "search", "search-of-pipeline"])
def test_forest_behind_a_pipeline_or_search_logs_sklearn_metrics_of_its_predict(store, wrapper):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _ = _classification("multiclass")
    forest = RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0)
    if wrapper == "pipeline":
        model = make_pipeline(StandardScaler(), forest)
    elif wrapper == "search":
        model = GridSearchCV(forest, {"max_depth": [2, 3]}, cv=2)
    else:
        model = GridSearchCV(make_pipeline(StandardScaler(), forest), {"randomforestclassifier__max_depth": [2, 3]}, cv=2)
    autolog(log_models=False)
    model.fit(X, y)
    logged = store.get_run(al.last_run().id).metrics
    for key, value in _expected_classifier_metrics(model, X, y).items():
        assert logged[key] == value, (key, logged[key], value)


def test_forest_subclass_with_its_own_predict_is_scored_by_it(store):
    from sklearn.ensemble import RandomForestClassifier

    class AlwaysFirst(RandomForestClassifier):
        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    X, y, _ = _classification("binary")
    autolog(log_models=False)
    AlwaysFirst(n_estimators=5, random_state=0).fit(X, y)
    logged = store.get_run(al.last_run().id).metrics
    assert logged["training_accuracy_score"] == float(np.mean(y == y.min()))


def test_multi_output_forest_logs_like_before(store):
    from sklearn.ensemble import RandomForestClassifier

    X, y, _ = _classification("binary")
    Y = np.column_stack([y, 1 - y])
    autolog(log_models=False)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    run = store.get_run(al.last_run().id)
    assert run.status == "FINISHED" and run.params["n_estimators"] == "5"
    assert run.metrics["training_score"] == model.score(X, Y)


def test_fit_params_beside_a_pending_seed_keep_the_seed(store):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Seeded(ClassifierMixin, BaseEstimator):
        def __init__(self, seed=7, C=1.0):
            self.seed = seed
            self.C = C

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    from autolog.tracking import api

    X, y, _ = _classification("binary")
    api.pending_param("seed", 42)  # what seed_everything does with no run: the next run starts with param "seed"
    autolog(log_models=False)
    Seeded().fit(X, y)
    run = store.get_run(al.last_run().id)
    assert run.params["seed"] == "42" and run.params["C"] == "1.0"  # the run's first seed stays; the rest is logged
    assert "dataset.X.digest" in run.params
    assert run.metrics["training_accuracy_score"] == float(np.mean(y == y.min()))


def test_second_fit_in_a_user_run_logs_only_new_params(store):
    from sklearn.linear_model import LogisticRegression

    X, y, _ = _classification("binary")
    autolog(log_models=False)
    model = LogisticRegression(C=0.5)
    with al.start_run() as run:
        model.fit(X, y)
        model.set_params(max_iter=300)  # fine-tuning the same model: its first params stay
        model.fit(X, y)
    params = store.get_run(run.id).params
    assert params["C"] == "0.5" and params["max_iter"] == "100"


def test_search_children_are_all_recorded_with_their_params_and_metrics(store):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y, _ = _classification("binary")
    autolog(log_models=False, max_tuning_runs=None)
    grid = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30]
    search = GridSearchCV(LogisticRegression(max_iter=200), {"C": grid}, cv=3).fit(X, y)
    parent = store.get_run(al.last_run().id)
    children = store.child_runs(parent.id)
    assert len(children) == 8
    results = search.cv_results_
    by_c = {child.params["C"]: child for child in children}
    assert set(by_c) == {str(c) for c in grid}
    for i, params in enumerate(results["params"]):
        child = by_c[str(params["C"])]
        assert child.status == "FINISHED" and child.parent_run_id == parent.id and child.experiment == parent.experiment
        assert child.metrics["mean_test_score"] == float(results["mean_test_score"][i])
        assert child.metrics["rank_test_score"] == float(results["rank_test_score"][i])
        assert child.tags["estimator_name"] == "LogisticRegression"
        assert [p.step for p in store.metric_history(child.id, "mean_test_score")] == [0]
    # The selected candidate is rank 1, and the children were written together (one start time).
    assert by_c[str(search.best_params_["C"])].tags["autolog.search_rank"] == "1"
    assert len({child.start_time for child in children}) == 1
    assert parent.params["best_C"] == str(search.best_params_["C"])
