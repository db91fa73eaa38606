"""scikit-learn with autolog(): a model, a pipeline and a grid search, each a run.

Run: python examples/sklearn_example.py
"""

from __future__ import annotations

import autolog

autolog.autolog()

from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def main() -> None:
    autolog.set_experiment("sklearn-demo")
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X_train, y_train)
    print("forest test accuracy", forest.score(X_test, y_test))
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    print("pipeline test accuracy", pipe.score(X_test, y_test))
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=3).fit(X_train, y_train)
    print("best C", search.best_params_["C"], "cv score", round(search.best_score_, 4))


if __name__ == "__main__":
    main()
