"""XGBoost with autolog(): ``xgboost.train`` with early stopping, and ``XGBClassifier``, each a run.

Every boosting round's eval metrics, the early-stopping outcome, feature importances and
the model land in the default store (./autolog-runs or $AUTOLOG_URI).

Run: python examples/xgboost_example.py
"""

from __future__ import annotations

import autolog

autolog.autolog()

import xgboost as xgb  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main() -> None:
    autolog.set_experiment("xgboost-demo")
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)

    dtrain, dvalid = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "eta": 0.1, "max_depth": 3}
    booster = xgb.train(params, dtrain, 300, evals=[(dtrain, "train"), (dvalid, "valid")],
                        early_stopping_rounds=20, verbose_eval=False)
    print(f"xgboost.train: best round {booster.best_iteration}, valid auc {booster.best_score:.4f}, "
          f"run {autolog.last_run().id[:8]}")

    model = xgb.XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.1)
    model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
    print(f"XGBClassifier: valid accuracy {model.score(X_valid, y_valid):.4f}, run {autolog.last_run().id[:8]}")


if __name__ == "__main__":
    main()
