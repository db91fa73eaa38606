"""``autolog ui``: MLflow's real server on 127.0.0.1 reading the store live (REST, browser, lifecycle).

One ``autolog ui`` process serves a store for the whole module; the fixture starts it on a
port that is already taken (so it must pick another and say so) and, at the end, stops it
with SIGINT (Ctrl-C) and checks that no process of the server is left.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import psutil
import pytest
from chromium_devtools import DevTools

import autolog as al
from autolog.cli import commands as cli
from autolog.tracking import api

pytest.importorskip("mlflow", reason="pip install 'autolog[ui]'")

RUN_OPTS = {"capture_env": False, "log_system_metrics": False}


def _build(root: str, tmp) -> dict[str, str]:
    al.set_store(root)
    with al.start_run("resnet-fit", **RUN_OPTS) as parent:
        parent.log_params({"learning_rate": 0.01, "batch": 32})
        for i in range(40):
            parent.log_metric("train_loss", 2.0 / (i + 1), step=i)
        (tmp / "plot.png").write_bytes(base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="))
        parent.log_artifact(str(tmp / "plot.png"), "figures")
        with al.start_run("fold-0", nested=True, **RUN_OPTS) as child:
            child.log_metric("val_acc", 0.9, step=1)
    al.flush()
    return {"parent": parent.id, "child": child.id}


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """``autolog ui`` on a fresh store, asked for a port that is taken; yields (url, store root, run ids)."""
    tmp = tmp_path_factory.mktemp("ui")
    root = str(tmp / "autolog-runs")
    saved_uri = api._store_uri
    runs = _build(root, tmp)
    api._store_uri = saved_uri
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "autolog.cli", "--store", root, "ui", "--port", str(taken)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "MLflow UI at" in line:
            break
    output = "".join(lines)
    if "MLflow UI at" not in output:
        proc.kill()
        pytest.fail(f"autolog ui did not start:\n{output}")
    assert f"port {taken} is taken; using " in output
    url = output.split("MLflow UI at ", 1)[1].split()[0]
    base = url.split("/#", 1)[0].rstrip("/")
    assert int(urllib.parse.urlparse(base).port) != taken
    assert "workflowType=machine_learning" in url
    server_procs = psutil.Process(proc.pid).children(recursive=True)
    assert server_procs, "the MLflow server runs as a child of autolog ui"
    yield {"base": base, "url": url, "root": root, "runs": runs}
    blocker.close()
    # Ctrl-C: autolog ui exits cleanly and no process of the server (workers included) is left.
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(60)
    finally:
        gone, alive = psutil.wait_procs(server_procs, timeout=30)
        for leftover in alive:
            leftover.kill()
    assert code == 0 and not alive, f"exit code {code}; left running: {alive}"


def _get(base: str, endpoint: str, **params):
    with urllib.request.urlopen(f"{base}{endpoint}?{urllib.parse.urlencode(params)}", timeout=60) as resp:
        body = resp.read()
    return json.loads(body) if endpoint.startswith("/api") else body


def _post(base: str, path: str, payload: dict):
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.loads(resp.read())


def test_rest_api_returns_what_the_store_holds(ui):
    base, runs = ui["base"], ui["runs"]
    store = al.open_store(ui["root"])
    found = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "filter": "params.learning_rate = '0.01'"})["runs"]
    assert [r["info"]["run_id"] for r in found] == [runs["parent"]]
    data = found[0]["data"]
    assert {p["key"]: p["value"] for p in data["params"]} == {"learning_rate": "0.01", "batch": "32"}
    assert {t["key"]: t["value"] for t in data["tags"]}["mlflow.runName"] == "resnet-fit"
    history = _get(base, "/api/2.0/mlflow/metrics/get-history", run_id=runs["parent"], metric_key="train_loss")["metrics"]
    ours = store.metric_history(runs["parent"], "train_loss")
    assert [(m["step"], m["value"], m["timestamp"]) for m in history] == [tuple(p) for p in ours]
    listing = _get(base, "/api/2.0/mlflow/artifacts/list", run_id=runs["parent"], path="figures")["files"]
    assert listing == [{"path": "figures/plot.png", "is_dir": False, "file_size": store.list_artifacts(runs["parent"])[0].size}]
    blob = _get(base, "/get-artifact", run_id=runs["parent"], path="figures/plot.png")
    assert hashlib.sha256(blob).hexdigest() == store.list_artifacts(runs["parent"])[0].sha256
    child = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "filter": "tags.mlflow.runName = 'fold-0'"})["runs"][0]
    assert {t["key"]: t["value"] for t in child["data"]["tags"]}["mlflow.parentRunId"] == runs["parent"]


def test_a_run_logged_while_the_ui_is_open_appears_and_grows(ui):
    base = ui["base"]
    al.set_store(ui["root"])
    with al.start_run("live-run", **RUN_OPTS) as run:
        run.log_metric("loss", 1.0, step=0)
        al.flush()
        found = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "filter": "attributes.run_name = 'live-run'"})["runs"]
        assert [r["info"]["status"] for r in found] == ["RUNNING"]
        for step in range(1, 25):
            run.log_metric("loss", 1.0 / step, step=step)
        al.flush()
        history = _get(base, "/api/2.0/mlflow/metrics/get-history", run_id=run.id, metric_key="loss")["metrics"]
        assert len(history) == 25
    final = _get(base, "/api/2.0/mlflow/runs/get", run_id=run.id)
    assert final["run"]["info"]["status"] == "FINISHED"


def test_experiment_and_run_pages_in_headless_chromium(ui, tmp_path):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless Chromium is not installed: apt-get install -y chromium")
    base, runs = ui["base"], ui["runs"]
    shots = os.environ.get("AUTOLOG_SCREENSHOTS") or str(tmp_path)
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(binary, profile, window_size=(1400, 1000))
        try:
            table = browser.page(ui["url"], ["resnet-fit", "Run Name"], os.path.join(shots, "mlflow-experiment.png"))
            overview = browser.page(f"{base}/#/experiments/0/runs/{runs['parent']}?workflowType=machine_learning",
                                    ["resnet-fit", "learning_rate", "0.01", "fold-0"], os.path.join(shots, "mlflow-run.png"))
            charts = browser.page(f"{base}/#/experiments/0/runs/{runs['parent']}/model-metrics?workflowType=machine_learning",
                                  ["train_loss", "Step"], os.path.join(shots, "mlflow-charts.png"),
                                  extra_check="document.querySelectorAll('.js-plotly-plot').length > 0")
        finally:
            browser.close()
    assert "resnet-fit" in table, f"run name not in the runs table (screenshot in {shots})"
    assert "learning_rate" in overview and "0.01" in overview and "fold-0" in overview, f"run page incomplete (screenshot in {shots})"
    assert "train_loss" in charts, f"no metric chart (screenshot in {shots})"


def test_ui_without_mlflow_names_the_extra(store, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert cli.main(["ui"]) == 1
    assert "pip install 'autolog[ui]'" in capsys.readouterr().err


def test_tensorboard_flag_keeps_the_export(store, tmp_path, capsys):
    with al.start_run("tb-run", **RUN_OPTS) as run:
        run.log_metric("loss", 1.0, step=0)
    assert cli.main(["ui", "--tensorboard", "--export-only", str(tmp_path / "tb")]) == 0
    assert "exported 1 runs" in capsys.readouterr().out


def test_unknown_experiment_fails_before_a_server_starts(store, capsys):
    assert cli.main(["ui", "--experiment", "no-such-experiment"]) == 2
    assert "no-such-experiment" in capsys.readouterr().err
