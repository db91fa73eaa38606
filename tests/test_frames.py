"""Runs from Python: search_runs and metric_histories DataFrames, load_model, and store discovery."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="pip install 'autolog[pandas]'")

import autolog as al  # noqa: E402
from autolog.errors import InvalidModel, MissingDependency  # noqa: E402
from autolog.store.discovery import default_store_path  # noqa: E402
from autolog.tracking import frames  # noqa: E402

QUIET = {"capture_env": False, "log_system_metrics": False}


def _manual_runs() -> list[str]:
    ids = []
    for i, lr in enumerate([0.1, 0.01]):
        with al.start_run(name=f"m{i}", experiment="frames", tags={"team": "cv"}, **QUIET) as run:
            al.log_params({"lr": lr, "layers": 2 + i, **({"dropout": 0.5} if i else {})})
            for step in range(3):
                al.log_metrics({"loss": 1.0 / (step + 1) + lr, "acc": 0.5 + step / 10}, step=step)
            if i == 1:
                al.log_metric("loss", math.nan, step=3)
            ids.append(run.id)
    with al.start_run(name="child", experiment="frames", parent_run_id=ids[0], **QUIET) as child:
        al.log_metric("acc", 0.99)
    return [*ids, child.id]


def test_search_runs_has_mlflow_shape_and_dtypes(store):
    ids = _manual_runs()
    df = al.search_runs(experiment="frames", order_by=["attributes.start_time"])
    assert list(df.columns[:8]) == ["run_id", "experiment", "name", "status", "start_time", "end_time", "duration", "parent_run_id"]
    assert [c for c in df.columns[8:]] == ["params.dropout", "params.layers", "params.lr", "metrics.acc", "metrics.loss",
                                           *sorted(c for c in df.columns if c.startswith("tags."))]
    assert list(df["run_id"]) == ids and list(df["name"]) == ["m0", "m1", "child"]
    for column in ("start_time", "end_time"):
        assert isinstance(df[column].dtype, pd.DatetimeTZDtype) and str(df[column].dt.tz) == "UTC"
    assert df["start_time"].iloc[0].tzinfo is not None
    assert df["duration"].iloc[0] == df["end_time"].iloc[0] - df["start_time"].iloc[0]
    assert df["params.lr"].tolist() == ["0.1", "0.01", None] and df["params.lr"].dtype == object
    assert df["metrics.acc"].dtype == "float64" and df["metrics.loss"].dtype == "float64"
    assert df["metrics.acc"].tolist() == [pytest.approx(0.7), pytest.approx(0.7), 0.99]
    assert math.isnan(df["metrics.loss"].iloc[1]) and math.isnan(df["metrics.loss"].iloc[2])  # NaN logged; not logged
    assert df["parent_run_id"].tolist() == [None, None, ids[0]] and df["tags.team"].tolist()[:2] == ["cv", "cv"]
    filtered = al.search_runs(filter="metrics.acc > 0.9", experiment="frames")
    assert filtered["run_id"].tolist() == [ids[2]]
    assert len(al.search_runs(max_results=1)) == 1
    empty = al.search_runs(filter="params.lr = 'none'")
    assert list(empty.columns) == frames.RUN_COLUMNS and len(empty) == 0
    # The store's own search keeps returning run objects.
    assert type(store.search_runs(experiment="frames")[0]).__name__ == "Run"


def test_metric_histories_is_long_form(store):
    ids = _manual_runs()
    df = al.metric_histories(ids[:2], ["loss"])
    assert list(df.columns) == ["run_id", "key", "step", "value", "timestamp"]
    assert df["run_id"].tolist() == [ids[0]] * 3 + [ids[1]] * 4
    assert df["step"].tolist() == [0, 1, 2, 0, 1, 2, 3] and df["step"].dtype == "int64"
    assert df["value"].iloc[0] == pytest.approx(1.1) and math.isnan(df["value"].iloc[-1])
    assert isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype)
    every = al.metric_histories(ids[0][:8])
    assert set(every["key"]) == {"loss", "acc"} and len(every) == 6


def test_pandas_missing_names_the_extra(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependency, match=r"pip install 'autolog\[pandas\]'"):
        al.search_runs()
    with pytest.raises(MissingDependency, match="pandas"):
        al.metric_histories([], [])


def test_load_model_picks_the_integration_that_saved_it(store):
    xgb = pytest.importorskip("xgboost", reason="pip install 'autolog[xgboost]'")
    linear = pytest.importorskip("sklearn.linear_model", reason="pip install 'autolog[sklearn]'")
    rng = np.random.RandomState(0)
    X = rng.rand(60, 3)
    y = X @ np.array([1.0, 2.0, -1.0])
    al.autolog(only=["xgboost", "sklearn"], log_models=True)
    booster_model = xgb.XGBRegressor(n_estimators=5, max_depth=2).fit(X, y)
    xgb_run = al.last_run().id
    ridge = linear.Ridge(alpha=0.1).fit(X, y)
    sk_run = al.last_run().id
    al.autolog(disable=True)
    assert store.get_run(xgb_run).tags["autolog.integration"] == "xgboost"

    loaded = al.load_model(xgb_run)
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_allclose(loaded.predict(xgb.DMatrix(X)), booster_model.predict(X), rtol=1e-6)
    np.testing.assert_allclose(al.load_model(sk_run[:8]).predict(X), ridge.predict(X))

    from autolog.integrations import sklearn as sk_integration
    from autolog.integrations import xgboost as xgb_integration

    with pytest.raises(InvalidModel, match="'sklearn' model, not a 'xgboost' one"):
        xgb_integration.load_model(sk_run)
    with pytest.raises(InvalidModel, match="xgboost"):
        sk_integration.load_model(xgb_run)
    with al.start_run(name="no model", **QUIET) as bare:
        al.log_metric("x", 1.0)
    with pytest.raises(InvalidModel, match="saved no model"):
        al.load_model(bare.id)
    with pytest.raises(InvalidModel, match="saved no model"):
        xgb_integration.load_model(bare.id)


def test_public_api_exports_the_dataframe_functions():
    for name in ("search_runs", "metric_histories", "load_model"):
        assert name in al.__all__ and callable(getattr(al, name))
    # pandas is imported by the functions, never by `import autolog`.
    code = "import sys, autolog; autolog.search_runs; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# -- store discovery -------------------------------------------------------------------------
def _git_repo(path):
    path.mkdir(parents=True)
    (path / ".git").mkdir()  # what git itself looks for; no git binary needed
    return path


def test_default_store_is_found_walking_up_to_the_git_root(tmp_path):
    repo = _git_repo(tmp_path / "repo")
    sub = repo / "notebooks" / "deep"
    sub.mkdir(parents=True)
    assert default_store_path(str(sub)) == str(repo / "autolog-runs")  # none yet: at the git root
    (repo / "autolog-runs").mkdir()
    assert default_store_path(str(sub)) == str(repo / "autolog-runs")
    (repo / "notebooks" / "autolog-runs").mkdir()
    assert default_store_path(str(sub)) == str(repo / "notebooks" / "autolog-runs")  # the nearest wins
    (tmp_path / "autolog-runs").mkdir()  # above the git root: never used
    other = _git_repo(tmp_path / "other")
    assert default_store_path(str(other)) == str(other / "autolog-runs")
    outside = tmp_path / "plain" / "dir"
    outside.mkdir(parents=True)
    assert default_store_path(str(outside)) == str(outside / "autolog-runs")


def test_writer_in_a_subfolder_and_autolog_ls_at_the_root_use_one_store(tmp_path):
    repo = _git_repo(tmp_path / "proj")
    sub = repo / "notebooks"
    sub.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "AUTOLOG_URI"}
    script = "import autolog as al\nwith al.start_run(name='from-sub', capture_env=False, log_system_metrics=False):\n    al.log_metric('m', 1.0)\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=sub, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (repo / "autolog-runs").is_dir() and not (sub / "autolog-runs").exists()
    exe = os.path.join(os.path.dirname(sys.executable), "autolog")
    listed = subprocess.run([exe, "ls", "--format", "csv", "-c", "name"], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "from-sub" in listed.stdout, listed.stderr
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    nothing = subprocess.run([exe, "ls"], cwd=empty, env=env, capture_output=True, text=True, timeout=120)
    assert str(empty / "autolog-runs") in nothing.stdout + nothing.stderr  # says which store it looked for
