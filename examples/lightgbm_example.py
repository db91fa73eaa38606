"""LightGBM with autolog(): ``lightgbm.train``, ``lightgbm.cv`` and ``LGBMRegressor``, each a run.

Every boosting round's eval metrics (mean and stdv over the folds for ``cv``), the
early-stopping outcome, feature importances and the model land in the default store
(./autolog-runs or $AUTOLOG_URI).

Run: python examples/lightgbm_example.py
"""

from __future__ import annotations

import autolog

autolog.autolog()

import lightgbm as lgb  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main() -> None:
    autolog.set_experiment("lightgbm-demo")
    X, y = load_diabetes(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, random_state=0)
    params = {"objective": "regression", "metric": ["l2", "l1"], "learning_rate": 0.05, "num_leaves": 15, "verbose": -1}

    train = lgb.Dataset(X_train, label=y_train)
    valid = lgb.Dataset(X_valid, label=y_valid, reference=train)
    booster = lgb.train(params, train, 500, valid_sets=[valid], valid_names=["valid"],
                        callbacks=[lgb.early_stopping(20, verbose=False)])
    print(f"lightgbm.train: best iteration {booster.best_iteration}, valid l2 {booster.best_score['valid']['l2']:.1f}, "
          f"run {autolog.last_run().id[:8]}")

    results = lgb.cv(params, lgb.Dataset(X_train, label=y_train), 100, nfold=3, stratified=False)
    print(f"lightgbm.cv: final valid l2 {results['valid l2-mean'][-1]:.1f} ± {results['valid l2-stdv'][-1]:.1f}, "
          f"run {autolog.last_run().id[:8]}")

    model = lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15, verbose=-1)
    model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)])
    print(f"LGBMRegressor: valid R² {model.score(X_valid, y_valid):.3f}, run {autolog.last_run().id[:8]}")


if __name__ == "__main__":
    main()
