"""MLflow reads the store natively: ``mlflow.set_tracking_uri("autolog:" + store)``, no server.

Everything goes through the real ``mlflow`` package and its plugin entry points
(``mlflow.tracking_store`` / ``mlflow.artifact_repository``), as a user would call it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

import autolog as al

mlflow = pytest.importorskip("mlflow", reason="pip install 'autolog[ui]'")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

RUN_OPTS = {"capture_env": False, "log_system_metrics": False}


def point_mlflow_at(monkeypatch, tracking_uri: str, registry_uri: str | None = None) -> None:
    """Set MLflow's tracking (and registry) URI for one test: its globals and the variables it exports."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_uri)
    if registry_uri is not None:
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry_uri)
        monkeypatch.setattr(registry_utils, "_registry_uri", registry_uri)


@pytest.fixture
def tracking(store, monkeypatch):
    """MLflow's tracking URI pointing at the isolated store; restored afterwards."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    point_mlflow_at(monkeypatch, "autolog:" + store.root)
    return MlflowClient()


def _runs(tmp_path):
    """A parent (params, tags, 300-point history, artifacts) with a child, and a run in another experiment."""
    with al.start_run("parent", tags={"git.commit": "0123abcd", "team": "vision", "source.entry_point": "train.py"}, **RUN_OPTS) as parent:
        parent.log_params({"lr": 0.001, "optimizer": "adam"})
        for i in range(300):
            parent.log_metric("loss", float("nan") if i == 7 else 1.0 / (i + 1), step=i * 2)
        (tmp_path / "out" / "sub").mkdir(parents=True)
        (tmp_path / "out" / "sub" / "weights.bin").write_bytes(os.urandom(3000))
        (tmp_path / "out" / "notes.txt").write_text("hello")
        parent.log_artifacts(str(tmp_path / "out"), "files")
        with al.start_run("child", nested=True, **RUN_OPTS) as child:
            child.log_param("fold", 0)
            child.log_metric("acc", 0.75, step=1)
    with al.start_run("other", experiment="elsewhere", **RUN_OPTS) as other:
        other.log_metric("loss", 5.0, step=0)
    al.flush()
    return parent, child, other


def test_search_runs_dataframe_and_history(tracking, tmp_path, store):
    parent, child, other = _runs(tmp_path)
    df = mlflow.search_runs(experiment_names=["Default"])
    assert set(df["run_id"]) == {parent.id, child.id}
    row = df.set_index("run_id").loc[parent.id]
    assert row["params.lr"] == "0.001" and row["params.optimizer"] == "adam"
    assert row["metrics.loss"] == pytest.approx(1.0 / 300)
    assert row["tags.mlflow.runName"] == "parent" and row["tags.team"] == "vision"
    assert row["tags.mlflow.source.git.commit"] == "0123abcd" and row["tags.mlflow.source.name"] == "train.py"
    assert row["status"] == "FINISHED"
    assert df.set_index("run_id").loc[child.id]["tags.mlflow.parentRunId"] == parent.id

    everything = mlflow.search_runs(search_all_experiments=True)
    assert set(everything["run_id"]) == {parent.id, child.id, other.id}

    history = tracking.get_metric_history(parent.id, "loss")
    ours = store.metric_history(parent.id, "loss")
    assert len(history) == 300 == len(ours)
    for theirs, mine in zip(sorted(history, key=lambda m: m.step), ours):
        assert (theirs.step, theirs.timestamp) == (mine.step, mine.timestamp)
        assert theirs.value == mine.value or (theirs.value != theirs.value and mine.value != mine.value)
    sampled = tracking._tracking_client.store.get_metric_history_bulk_interval([parent.id], "loss", 50, None, None)
    assert 40 <= len(sampled) <= 60 and sampled[0].step == 0 and sampled[-1].step == 598


def test_mlflow_filters_and_order_translate(tracking, tmp_path):
    parent, child, other = _runs(tmp_path)
    exp_ids = [e.experiment_id for e in tracking.search_experiments()]

    def ids(filter_string="", order_by=None):
        return [r.info.run_id for r in tracking.search_runs(exp_ids, filter_string, order_by=order_by)]

    assert ids("metrics.loss < 1 and params.lr = '0.001'") == [parent.id]
    assert ids("tags.`mlflow.runName` = 'child'") == [child.id]
    assert ids("attributes.run_name LIKE 'oth%'") == [other.id]
    assert ids("tags.mlflow.source.git.commit = '0123abcd'") == [parent.id]
    assert ids(f"attributes.run_id IN ('{child.id}', '{other.id}')", ["attributes.start_time ASC"]) == [child.id, other.id]
    assert ids(f"tags.mlflow.parentRunId = '{parent.id}'") == [child.id]
    assert ids("params.fold IS NULL and attributes.status = 'FINISHED'", ["metrics.loss DESC"]) == [other.id, parent.id]
    page = tracking.search_runs(exp_ids, max_results=2)
    rest = tracking.search_runs(exp_ids, max_results=2, page_token=page.token)
    assert len(page) == 2 and len(rest) == 1 and rest.token is None
    with pytest.raises(MlflowException, match="not supported by the autolog store"):
        tracking.search_runs(exp_ids, "datasets.name = 'train'")
    with pytest.raises(MlflowException):
        tracking.search_runs(exp_ids, "metrics.loss <")


def test_experiments_and_default_id(tracking, tmp_path):
    _runs(tmp_path)
    names = {e.name: e.experiment_id for e in tracking.search_experiments()}
    assert names["Default"] == "0" and names["elsewhere"].isdigit() and names["elsewhere"] != "0"
    assert tracking.get_experiment("0").name == "Default"
    assert tracking.get_experiment_by_name("elsewhere").experiment_id == names["elsewhere"]
    assert tracking.get_experiment_by_name("nope") is None
    with pytest.raises(MlflowException, match="No Experiment"):
        tracking.get_experiment("999")


def test_artifacts_list_and_download(tracking, tmp_path, store):
    parent, _, _ = _runs(tmp_path)
    top = tracking.list_artifacts(parent.id)
    assert [(f.path, f.is_dir) for f in top] == [("files", True)]
    inner = tracking.list_artifacts(parent.id, "files")
    assert [(f.path, f.is_dir, f.file_size) for f in inner] == [("files/notes.txt", False, 5), ("files/sub", True, None)]
    dst = tmp_path / "dl"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=parent.id, artifact_path="files", dst_path=str(dst))
    for art in store.list_artifacts(parent.id):
        with open(os.path.join(dst, *art.path.split("/")), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == art.sha256
    assert open(os.path.join(local, "notes.txt")).read() == "hello"
    one = mlflow.artifacts.download_artifacts(f"runs:/{parent.id}/files/notes.txt", dst_path=str(tmp_path))
    assert open(one).read() == "hello"


def test_ui_writes_go_into_the_store(tracking, tmp_path, store):
    parent, child, _ = _runs(tmp_path)
    tracking.update_run(parent.id, name="renamed")
    tracking.set_tag(parent.id, "mlflow.note.content", "a **note**")
    tracking.set_tag(parent.id, "reviewed", "yes")
    run = store.get_run(parent.id)
    assert run.name == "renamed" and run.tags["mlflow.note.content"] == "a **note**" and run.tags["reviewed"] == "yes"
    tracking.delete_tag(parent.id, "reviewed")
    assert "reviewed" not in store.get_run(parent.id).tags
    tracking.delete_run(child.id)
    assert store.get_run(child.id).lifecycle == "deleted"
    assert tracking.get_run(child.id).info.lifecycle_stage == "deleted"
    assert child.id not in {r.info.run_id for r in tracking.search_runs(["0"])}
    tracking.restore_run(child.id)
    assert store.get_run(child.id).lifecycle == "active"


def test_unsupported_calls_raise_mlflow_exception(tracking, tmp_path):
    parent, _, _ = _runs(tmp_path)
    for call in (lambda: tracking.create_run("0"), lambda: tracking.log_metric(parent.id, "x", 1.0),
                 lambda: tracking.create_experiment("new"), lambda: tracking.log_param(parent.id, "p", 1),
                 lambda: tracking.log_artifact(parent.id, __file__)):
        with pytest.raises(MlflowException, match="not supported by the autolog store"):
            call()


def test_killed_run_and_live_history(tracking, store):
    # A run whose process died without ending it reads as KILLED, as autolog shows it.
    script = ("import os, autolog as al\n"
              "run = al.start_run('doomed', capture_env=False, log_system_metrics=False)\n"
              "run.log_metric('m', 1.0, step=0); al.flush(); os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "AUTOLOG_URI": store.root}, timeout=120)
    doomed = tracking.search_runs(["0"], "attributes.run_name = 'doomed'")[0]
    assert doomed.info.status == "KILLED"
    assert tracking.search_runs(["0"], "attributes.status = 'KILLED'")[0].info.run_id == doomed.info.run_id
    with al.start_run("live", **RUN_OPTS) as run:
        run.log_metric("m", 1.0, step=0)
        al.flush()
        assert len(tracking.get_metric_history(run.id, "m")) == 1
        run.log_metric("m", 2.0, step=1)
        al.flush()
        assert [m.value for m in tracking.get_metric_history(run.id, "m")] == [1.0, 2.0]
        assert tracking.get_run(run.id).info.status == "RUNNING"


def test_import_autolog_and_autolog_never_import_mlflow(tmp_path):
    # Saving a model (and its MLmodel file) does not import mlflow either.
    code = ("import sys, autolog\nautolog.autolog()\nfrom sklearn.linear_model import LinearRegression\n"
            "LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])\nfrom autolog.integrations.sklearn import wait_for_models\n"
            "wait_for_models(timeout=60)\nrun = autolog.last_run()\n"
            "assert autolog.open_store().artifact_file(run.id, 'model/MLmodel')\nprint('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- saved models are MLflow Models ----------------------------------------------------------
def _data():
    import numpy as np

    X = np.random.RandomState(0).rand(48, 4).astype("float32")
    return X, (X[:, 0] + X[:, 1] > 1.0).astype("int64")


def _fit(framework: str):
    """Train a tiny model through autolog(); return (run id, predictions of the trained model)."""
    X, y = _data()
    al.autolog(only=[framework])
    try:
        if framework == "sklearn":
            from sklearn.linear_model import LogisticRegression

            from autolog.integrations.sklearn import wait_for_models

            model = LogisticRegression().fit(X, y)
            run_id = al.last_run().id
            wait_for_models(run_id, timeout=120)
            expected = model.predict(X)
        elif framework == "xgboost":
            import xgboost

            model = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
            run_id, expected = al.last_run().id, model.predict_proba(X)[:, 1]  # the model loads as its Booster
        elif framework == "lightgbm":
            import lightgbm

            model = lightgbm.LGBMRegressor(n_estimators=3, min_child_samples=2, verbose=-1).fit(X, y)
            run_id, expected = al.last_run().id, model.predict(X)
        elif framework == "keras":
            import keras

            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
            model.compile("sgd", "mse")
            model.fit(X, y.astype("float32"), epochs=1, batch_size=16, verbose=0)
            run_id, expected = al.last_run().id, model.predict(X, verbose=0)
        else:
            import lightning
            import torch

            module = TinyModule()
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y, dtype=torch.float32)), batch_size=16)
            lightning.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                              enable_model_summary=False).fit(module, loader)
            run_id = al.last_run().id
            with torch.no_grad():
                expected = module.eval()(torch.tensor(X)).numpy()
    finally:
        al.autolog(disable=True)
    al.flush()
    return run_id, expected


def _lightning_module():
    try:
        import lightning
        import torch
    except ImportError:
        return None

    class TinyModule(lightning.LightningModule):
        def __init__(self, hidden: int = 3):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _index):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x).squeeze(-1), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    TinyModule.__module__, TinyModule.__qualname__ = __name__, "TinyModule"  # loaded back by name, like a user's class
    return TinyModule


TinyModule = _lightning_module()
FLAVORS = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm", "keras": "keras", "lightning": None}


@pytest.mark.parametrize("framework", list(FLAVORS))
def test_saved_model_is_an_mlflow_model(framework, tracking, store, monkeypatch):
    import numpy as np

    pytest.importorskip(framework, reason=f"pip install 'autolog[{framework}]'")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # MLflow's own gate on loading model files
    run_id, expected = _fit(framework)
    spec = open(store.artifact_file(run_id, "model/MLmodel"), encoding="utf-8").read()
    assert "python_function:" in spec and (FLAVORS[framework] is None or f"  {FLAVORS[framework]}:" in spec)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    X, _ = _data()
    np.testing.assert_allclose(np.asarray(model.predict(X)).ravel(), np.asarray(expected).ravel(), rtol=1e-5, atol=1e-6)
    history = tracking.get_run(run_id).data.tags["mlflow.log-model.history"]
    assert '"artifact_path": "model"' in history and "python_function" in history


def test_saved_model_can_be_registered(tracking, store, tmp_path, monkeypatch):
    import numpy as np

    pytest.importorskip("sklearn")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    run_id, expected = _fit("sklearn")
    point_mlflow_at(monkeypatch, "autolog:" + store.root, f"sqlite:///{tmp_path}/registry.db")
    version = mlflow.register_model(f"runs:/{run_id}/model", "tiny-classifier")
    assert str(version.version) == "1"
    X, _ = _data()
    np.testing.assert_array_equal(mlflow.pyfunc.load_model("models:/tiny-classifier/1").predict(X), expected)
