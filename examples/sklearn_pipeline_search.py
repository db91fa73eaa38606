"""A Pipeline with a ColumnTransformer for mixed types, tuned by GridSearchCV, under autolog().

Adapted from scikit-learn's official example "Column Transformer with Mixed Types"
(https://github.com/scikit-learn/scikit-learn, examples/compose/plot_column_transformer_mixed_types.py):
the same preprocessing (numeric columns median-imputed and scaled; categorical columns
one-hot encoded, then the best of them kept by a chi2 ``SelectPercentile``), the same
``LogisticRegression`` and the same kind of grid over the imputer strategy, the selected
percentile and ``C``. The example downloads the Titanic data from OpenML; here a
Titanic-like table with the same columns (with missing values) is generated, so it runs
offline in a few seconds.

What autolog records, in the default store (./autolog-runs or $AUTOLOG_URI): one run for
the search with every pipeline parameter, ``best_*`` params, ``best_cv_score``,
``cv_results.csv``, training metrics and the selected model; a child run per top candidate
(``max_tuning_runs``), ranked by the search's own metric and tagged with the estimator
(``tags.estimator_name = 'Pipeline'``); and ``GridSearchCV_score-X_test`` once the script
scores the model on held-out data. The preprocessing fitted inside the pipeline makes no
runs of its own.

Run: python examples/sklearn_pipeline_search.py
"""

from __future__ import annotations

import autolog

autolog.autolog(max_tuning_runs=3)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.feature_selection import SelectPercentile, chi2  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

NUMERIC = ["age", "fare"]
CATEGORICAL = ["embarked", "sex", "pclass"]


def passengers(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A Titanic-like table: who survived depends on sex, class, age and fare, with gaps as in the real data."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.36, 0.64])
    pclass = rng.choice([1, 2, 3], n, p=[0.24, 0.21, 0.55])
    age = np.clip(rng.normal(30, 14, n), 0.5, 80).round(1)
    fare = np.round(np.exp(rng.normal(3.4 - 0.6 * (pclass - 1), 0.6)), 2)
    embarked = rng.choice(["S", "C", "Q"], n, p=[0.72, 0.19, 0.09]).astype(object)
    logit = 1.2 + 2.4 * (sex == "female") - 0.9 * (pclass - 1) - 0.02 * (age - 30) + 0.004 * fare
    survived = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    age[rng.random(n) < 0.2] = np.nan  # about a fifth of the ages are unknown, as on the Titanic
    embarked[rng.random(n) < 0.01] = np.nan
    X = pd.DataFrame({"age": age, "fare": fare, "embarked": embarked, "sex": sex, "pclass": pclass})
    return X, pd.Series(survived, name="survived")


def main() -> None:
    autolog.set_experiment("sklearn-pipeline-search")
    X, y = passengers()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

    numeric_transformer = Pipeline(steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())])
    categorical_transformer = Pipeline(steps=[
        ("encoder", OneHotEncoder(handle_unknown="ignore")),
        ("selector", SelectPercentile(chi2, percentile=50)),
    ])
    preprocessor = ColumnTransformer(transformers=[
        ("num", numeric_transformer, NUMERIC),
        ("cat", categorical_transformer, CATEGORICAL),
    ])
    clf = Pipeline(steps=[("preprocessor", preprocessor), ("classifier", LogisticRegression())])

    param_grid = {
        "preprocessor__num__imputer__strategy": ["mean", "median"],
        "preprocessor__cat__selector__percentile": [30, 70],
        "classifier__C": [0.1, 1.0, 10.0],
    }
    search = GridSearchCV(clf, param_grid, cv=5)
    search.fit(X_train, y_train)
    print("best params:", search.best_params_)
    print(f"internal CV score: {search.best_score_:.3f}")
    print(f"model score on held-out data: {search.score(X_test, y_test):.3f}")
    run = autolog.last_run()
    children = autolog.open_store().child_runs(run.id)
    print(f"run {run.id[:8]} ({run.name}) with {len(children)} candidate child runs")


if __name__ == "__main__":
    main()
