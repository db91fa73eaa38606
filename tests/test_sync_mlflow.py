"""``autolog sync`` against a real MLflow tracking server started for this module.

The server (sqlite backend, served artifacts) runs on 127.0.0.1 on a free port; every
test syncs into its own experiment and reads back through MLflow's own client.
"""

from __future__ import annotations

import hashlib
import http.server
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

import autolog as al
from autolog.cli import commands as cli
from autolog.sinks import mlflow_batches as mb
from autolog.sinks import mlflow_push
from autolog.sinks.bookmarks import Bookmarks
from autolog.sinks.mlflow import INSTALL_HINT, sync_to_mlflow, watch

mlflow = pytest.importorskip("mlflow", reason=INSTALL_HINT)
from mlflow import MlflowClient  # noqa: E402

RUN_OPTS = {"capture_env": False, "log_system_metrics": False}
SERVER_DB: dict[str, str] = {}  # the module server's backend store URI (to purge runs behind its back)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ``mlflow server`` for the whole module; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    SERVER_DB["uri"] = f"sqlite:///{root}/mlflow.db"
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")]
    log = open(root / "server.log", "wb")
    # No job runner: this server only stores runs, and fewer processes start faster.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")
    saved = os.environ.get("MLFLOW_DISABLE_TELEMETRY")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no usage reports from the test's client either
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield uri
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
    if saved is None:
        os.environ.pop("MLFLOW_DISABLE_TELEMETRY", None)
    else:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = saved


@pytest.fixture
def client(server):
    return MlflowClient(server)


def _experiment() -> str:
    name = f"sync-{uuid.uuid4().hex[:8]}"
    al.set_experiment(name)
    return name


def _history(store, run_id, key):
    return sorted(store.metric_history(run_id, key), key=lambda p: (p.step, p.timestamp))


def _remote_history(client, remote_id, key):
    return sorted(((m.step, m.value, m.timestamp) for m in client.get_metric_history(remote_id, key)), key=lambda p: (p[0], p[2]))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _remote_files(client, remote_id, path=None) -> list[str]:
    out = []
    for info in client.list_artifacts(remote_id, path):
        out.extend(_remote_files(client, remote_id, info.path) if info.is_dir else [info.path])
    return sorted(out)


def _build_nested(tmp_path):
    """A parent with a 10,000-point history (NaNs included) and artifacts, two children, a grandchild."""
    tags = {"git.commit": "0123abcd", "git.branch": "main", "source.entry_point": "train.py", "user": "alice", "team": "vision"}
    with al.start_run("parent", tags=tags, **RUN_OPTS) as parent:
        parent.log_params({"lr": 0.001, "optimizer": "adam", "layers": [64, 32]})
        for i in range(10_000):
            parent.log_metric("loss", float("nan") if i % 997 == 0 else 1.0 / (i + 1), step=i)
        (tmp_path / "out" / "sub").mkdir(parents=True)
        (tmp_path / "out" / "sub" / "weights.bin").write_bytes(os.urandom(3000))
        (tmp_path / "out" / "notes.txt").write_text("hello")
        parent.log_artifacts(str(tmp_path / "out"), "model")
        parent.log_dict({"a": 1}, "config.json")
        with al.start_run("child-ok", nested=True, **RUN_OPTS) as child:
            child.log_params({"fold": 0})
            child.log_metrics({"acc": 0.5, "val_acc": float("nan")}, step=1)
            child.log_metrics({"acc": 0.75, "val_acc": 0.7}, step=2)
            with al.start_run("grandchild", nested=True, **RUN_OPTS) as grand:
                grand.log_metric("x", 3.0, step=0)
        child_failed = al.start_run("child-failed", nested=True, **RUN_OPTS)
        child_failed.log_metric("acc", 0.1, step=0)
        child_failed.end("FAILED")
    al.flush()
    return parent.id


def test_sync_round_trip_field_by_field(store, client, server, tmp_path):
    exp = _experiment()
    _build_nested(tmp_path)
    local_runs = store.search_runs(experiment=exp)
    assert len(local_runs) == 4
    parent = next(r for r in local_runs if r.name == "parent")

    report = sync_to_mlflow(store, server, experiment=exp, progress=False)
    assert report.ok, report.errors
    total_points = sum(store.count_points(r.id) for r in local_runs)
    assert (report.created, report.runs, report.points) == (4, 4, total_points)
    assert report.artifacts == 3 and "10,0" in report.summary()
    assert client.get_run(report.remote_ids[parent.id]).info.status == "FINISHED"

    # Second sync: nothing is sent (the exact counts below show nothing was duplicated).
    again = sync_to_mlflow(store, server, experiment=exp, progress=False)
    assert (again.runs, again.points, again.requests, again.checked) == (0, 0, 0, 4)

    # Resume the parent, log more: only the new points, the new tag and the new status go.
    with al.start_run(run_id=parent.id, **RUN_OPTS) as resumed:
        for i in range(10_000, 10_050):
            resumed.log_metric("loss", 0.5, step=i)
        resumed.set_tag("phase", "finetune")
        al.flush()
        mid = sync_to_mlflow(store, server, run_ids=[parent.id[:10]], progress=False)
        assert (mid.points, mid.tags, mid.created) == (50, 1, 0)
        assert client.get_run(report.remote_ids[parent.id]).info.status == "RUNNING"
    third = sync_to_mlflow(store, server, experiment=exp, progress=False)
    assert third.points == 0 and third.runs == 1

    # Everything read back through MLflow's client equals the store, field by field.
    remote_exp = client.get_experiment_by_name(exp)
    read_back = {}
    for run in store.search_runs(experiment=exp):
        remote = client.get_run(report.remote_ids[run.id])
        assert remote.info.experiment_id == remote_exp.experiment_id
        assert (remote.info.run_name, remote.info.status) == (run.name, run.status)
        assert (remote.info.start_time, remote.info.end_time) == (run.start_time, run.end_time)
        assert remote.data.params == run.params
        expected_tags = {mb.TAG_MAP.get(k, k): v for k, v in run.tags.items()}
        assert expected_tags.items() <= remote.data.tags.items()
        assert remote.data.tags[mb.LOCAL_RUN_ID_TAG] == run.id
        if run.parent_run_id:
            assert remote.data.tags["mlflow.parentRunId"] == report.remote_ids[run.parent_run_id]
        else:
            assert "mlflow.parentRunId" not in remote.data.tags
        assert set(remote.data.metrics) == set(run.metrics)
        for key in run.metrics:
            ours = _history(store, run.id, key)
            theirs = read_back[run.name, key] = _remote_history(client, remote.info.run_id, key)
            assert len(theirs) == len(ours)
            for a, b in zip(ours, theirs):
                assert (a.step, a.timestamp) == (b[0], b[2]) and _same(a.value, b[1])
        arts = store.list_artifacts(run.id)
        assert _remote_files(client, remote.info.run_id) == [a.path for a in arts]
        for art in arts:
            got = client.download_artifacts(remote.info.run_id, art.path, str(tmp_path / "dl" / run.id))
            with open(got, "rb") as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == art.sha256
    remote = client.get_run(report.remote_ids[parent.id])
    tags = remote.data.tags
    assert tags["mlflow.source.git.commit"] == "0123abcd" and tags["mlflow.user"] == "alice"
    assert tags["mlflow.source.name"] == "train.py" and tags["mlflow.source.git.branch"] == "main"
    assert tags["phase"] == "finetune" and remote.info.user_id == "alice"
    loss = read_back["parent", "loss"]
    assert len(loss) == 10_050 and sum(1 for p in loss if math.isnan(p[1])) == 11


def _long_run(n: int) -> str:
    with al.start_run("long", **RUN_OPTS) as run:
        for i in range(n):
            run.log_metric("loss", float("nan") if i % 500 == 0 else i * 0.5, step=i)
        run.log_param("n", n)
    al.flush()
    return run.id


def test_interrupted_between_send_and_bookmark_resumes_exactly(store, client, server, monkeypatch):
    exp = _experiment()
    run_id = _long_run(3_000)
    sent = []

    def crash(run, batch):
        sent.append(len(batch.metrics))
        if len(sent) == 3:  # the 3rd batch reached the server but its bookmark was never written
            raise KeyboardInterrupt

    monkeypatch.setattr(mlflow_push, "after_batch_hook", crash)
    with pytest.raises(KeyboardInterrupt):
        sync_to_mlflow(store, server, experiment=exp, progress=False)
    monkeypatch.setattr(mlflow_push, "after_batch_hook", None)
    assert sent[1:] == [1000, 1000]  # the first batch also carried the param and a tag

    report = sync_to_mlflow(store, server, experiment=exp, progress=False)
    assert report.resumed == 1000 and report.points == 3_000 - sum(sent)
    remote_id = report.remote_ids[run_id]
    assert [m.step for m in sorted(client.get_metric_history(remote_id, "loss"), key=lambda m: m.step)] == list(range(3_000))
    assert len(client.search_runs([client.get_experiment_by_name(exp).experiment_id])) == 1


def test_killed_sync_subprocess_resumes_without_duplicates(store, client, server, tmp_path):
    exp = _experiment()
    run_id = _long_run(3_000)
    env = dict(os.environ, AUTOLOG_SYNC_BATCH_DELAY="0.5")
    cmd = [sys.executable, "-m", "autolog.cli", "--store", store.root, "sync", "--to", server, "-e", exp, "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pushed = 0
    deadline = time.monotonic() + 60
    with sqlite3.connect(store.db_path, timeout=30) as conn:
        while pushed < 1000 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                pushed = conn.execute("SELECT COALESCE(SUM(pushed), 0) FROM sync_metrics").fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                pushed = 0
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert 1000 <= pushed < 3_000, f"kill came too late or never: pushed={pushed} rc={proc.returncode}"

    report = sync_to_mlflow(store, server, experiment=exp, progress=False)
    assert report.ok and report.created == 0
    assert 0 < report.points <= 3_000 - pushed
    remote_id = report.remote_ids[run_id]
    steps = sorted(m.step for m in client.get_metric_history(remote_id, "loss"))
    assert steps == list(range(3_000))
    assert client.get_run(remote_id).data.params == {"n": "3000"}
    assert len(client.search_runs([client.get_experiment_by_name(exp).experiment_id])) == 1


def test_cli_summary_and_rejected_values(store, client, server, capsys):
    exp = _experiment()
    with al.start_run("odd-keys", **RUN_OPTS) as run:
        run.log_params({"good": 1, "bad@param": 2})
        run.log_metric("acc@1", 0.5, step=0)
        run.log_metric("acc", 0.9, step=0)
    rc = cli.main(["sync", "--to", server, "--experiment", exp])
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"run {run.id[:8]} (odd-keys)" in err and "'bad@param'" in err and "'acc@1'" in err
    assert "synced 1 run (1 new)" in out and "1 point," in out
    remote = client.search_runs([client.get_experiment_by_name(exp).experiment_id])[0]
    assert remote.data.params == {"good": "1"} and set(remote.data.metrics) == {"acc"}
    assert remote.info.status == "FINISHED"
    # Still refused next time, and the bookmarks never claim the rejected keys went through.
    assert cli.main(["sync", "--to", server, "--experiment", exp]) == 1
    assert "'bad@param'" in capsys.readouterr().err


def test_server_down_is_a_quick_clear_error(store, capsys, monkeypatch):
    with al.start_run("r", **RUN_OPTS) as run:
        run.log_metric("m", 1.0)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-pw")
    started = time.monotonic()
    rc = cli.main(["sync", "--to", f"http://bob:hunter2-pw@127.0.0.1:{_free_port()}"])
    err = capsys.readouterr().err
    assert rc == 1 and time.monotonic() - started < 10
    assert "cannot reach the MLflow server http://127.0.0.1:" in err
    assert "hunter2" not in err
    conn = store.connection()
    assert conn.execute("SELECT COUNT(*) FROM sync_runs").fetchone()[0] == 0 if _has_table(conn) else True


def _has_table(conn) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sync_runs'").fetchone())


class _Refuse(http.server.BaseHTTPRequestHandler):
    def _refuse(self):
        self.send_response(401)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"Unauthorized")

    do_GET = do_POST = _refuse

    def log_message(self, *args):
        pass


def test_auth_failure_names_the_variables_never_the_token(store, capsys, monkeypatch):
    # A server that refuses every request, as an auth-enabled MLflow server does without credentials.
    with al.start_run("r", **RUN_OPTS) as run:
        run.log_metric("m", 1.0)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-s3cr3t-value")
        rc = cli.main(["sync", "--to", f"http://127.0.0.1:{httpd.server_address[1]}"])
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()
    err = capsys.readouterr().err
    assert rc == 1 and "refused the credentials" in err and "MLFLOW_TRACKING_TOKEN" in err
    assert "tok-s3cr3t-value" not in err


def test_watch_mirrors_a_live_run(store, client, server):
    exp = _experiment()
    stop = threading.Event()
    reports = []
    errors = []
    thread = threading.Thread(target=watch, args=(store, server, 0.2),
                              kwargs={"experiment": exp, "stop": stop, "on_report": reports.append, "on_error": errors.append})
    with al.start_run("live", **RUN_OPTS) as run:
        run.log_metric("loss", 1.0, step=0)
        al.flush()
        thread.start()
        try:
            _wait(lambda: any(r.remote_ids for r in reports))
            remote_id = next(r.remote_ids[run.id] for r in reports if r.remote_ids)
            for step in range(1, 30):
                run.log_metric("loss", 1.0 / step, step=step)
            al.flush()
            _wait(lambda: len(client.get_metric_history(remote_id, "loss")) == 30)
            assert client.get_run(remote_id).info.status == "RUNNING"
        except BaseException:
            stop.set()
            thread.join()
            raise
    try:
        _wait(lambda: client.get_run(remote_id).info.status == "FINISHED")
    finally:
        stop.set()
        thread.join()
    assert not errors and len(client.get_metric_history(remote_id, "loss")) == 30


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_remote_run_deleted_on_server_is_mirrored_again(store, client, server):
    exp = _experiment()
    with al.start_run("r", **RUN_OPTS) as run:
        run.log_metrics({"a": 1.0, "b": 2.0}, step=0)
    first = sync_to_mlflow(store, server, experiment=exp, progress=False)
    client.delete_run(first.remote_ids[run.id])
    with al.start_run(run_id=run.id, **RUN_OPTS) as again:
        again.log_metric("a", 3.0, step=1)
    second = sync_to_mlflow(store, server, experiment=exp, progress=False)
    new_id = second.remote_ids[run.id]
    assert new_id != first.remote_ids[run.id] and second.created == 1
    assert len(client.get_metric_history(new_id, "a")) == 2 and len(client.get_metric_history(new_id, "b")) == 1


def test_lost_bookmarks_find_the_twin_again(store, client, server):
    exp = _experiment()
    with al.start_run("r", **RUN_OPTS) as run:
        for step in range(20):
            run.log_metric("m", float(step), step=step)
    first = sync_to_mlflow(store, server, experiment=exp, progress=False)
    Bookmarks(store, first.target).forget(run.id)
    with al.start_run(run_id=run.id, **RUN_OPTS) as again:
        again.log_metric("m", 99.0, step=20)
    second = sync_to_mlflow(store, server, experiment=exp, progress=False)
    assert second.created == 0 and second.points == 1
    assert second.remote_ids[run.id] == first.remote_ids[run.id]
    assert len(client.get_metric_history(first.remote_ids[run.id], "m")) == 21


def test_batches_respect_mlflow_limits():
    def entities():
        for i in range(150):
            yield mb.PARAM, f"p{i}", "v" * 5000
        for i in range(250):
            yield mb.TAG, f"t{i}", "x"
        for i in range(2500):
            yield mb.METRIC, "loss", (i, 0.1, 1000 + i)

    seen = {mb.PARAM: 0, mb.TAG: 0, mb.METRIC: 0}
    steps = []
    for batch in mb.batches(entities()):
        assert len(batch.params) <= 100 and len(batch.tags) <= 100 and len(batch.metrics) <= 1000
        assert len(batch) <= 1000 and batch.nbytes <= mb.MAX_REQUEST_BYTES
        seen[mb.PARAM] += len(batch.params)
        seen[mb.TAG] += len(batch.tags)
        seen[mb.METRIC] += len(batch.metrics)
        steps += [m[3] for m in batch.metrics]
    assert seen == {mb.PARAM: 150, mb.TAG: 250, mb.METRIC: 2500} and steps == list(range(2500))


def test_synced_model_loads_and_is_listed_on_the_server(store, client, server, monkeypatch):
    import numpy as np

    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    from autolog.integrations.sklearn import wait_for_models

    exp = _experiment()
    X = np.random.RandomState(1).rand(30, 3)
    y = (X[:, 0] > 0.5).astype(int)
    al.autolog(only=["sklearn"])
    try:
        model = LogisticRegression().fit(X, y)
    finally:
        al.autolog(disable=True)
    run_id = al.last_run().id
    wait_for_models(run_id, timeout=120)
    report = sync_to_mlflow(store, server, experiment=exp, progress=False)
    remote_id = report.remote_ids[run_id]
    history = client.get_run(remote_id).data.tags[mb.MODEL_HISTORY_TAG]
    assert f'"run_id": "{remote_id}"' in history and '"artifact_path": "model"' in history
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)  # MLflow's global and the variable it exports, undone after the test
    monkeypatch.setattr(tracking_utils, "_tracking_uri", server)
    loaded = mlflow.pyfunc.load_model(f"runs:/{remote_id}/model")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert sync_to_mlflow(store, server, experiment=exp, progress=False).runs == 0  # the tag is not sent again


def _purge(client, server: str, remote_ids: list[str]) -> None:
    """Remove runs from the server's database for good, as a database reset does (MLflow's own gc)."""
    for remote_id in remote_ids:
        client.delete_run(remote_id)
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    done = subprocess.run([exe, "gc", "--backend-store-uri", SERVER_DB["uri"], "--run-ids", ",".join(remote_ids)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": server})
    assert done.returncode == 0, done.stderr[-2000:]


def test_local_rm_restore_and_gc_are_passed_on(store, client, server, capsys):
    exp = _experiment()
    with al.start_run("parent", **RUN_OPTS) as parent:
        parent.log_metric("loss", 1.0, step=0)
        with al.start_run("child", nested=True, **RUN_OPTS) as child:
            child.log_metric("acc", 0.5, step=0)
    with al.start_run("keeper", **RUN_OPTS) as keeper:
        keeper.log_metric("loss", 2.0, step=0)
    first = sync_to_mlflow(store, server, experiment=exp, progress=False)
    ids = first.remote_ids

    def stage(run):
        return client.get_run(ids[run.id]).info.lifecycle_stage

    assert cli.main(["rm", parent.id]) == 0  # the parent and its child
    second = sync_to_mlflow(store, server, progress=False)
    assert second.deleted == 2 and "2 deleted" in second.summary()
    assert (stage(parent), stage(child), stage(keeper)) == ("deleted", "deleted", "active")
    again = sync_to_mlflow(store, server, progress=False)  # the deleted children are not pushed back to life
    assert (again.deleted, again.created, again.runs) == (0, 0, 0)
    assert (stage(parent), stage(child)) == ("deleted", "deleted")

    assert cli.main(["rm", "--restore", parent.id]) == 0
    restored = sync_to_mlflow(store, server, progress=False)
    assert restored.restored >= 1 and restored.created == 0
    assert stage(parent) == "active"
    capsys.readouterr()

    assert cli.main(["rm", keeper.id]) == 0 and cli.main(["gc", "--yes"]) == 0
    assert sync_to_mlflow(store, server, experiment=exp, progress=False).deleted == 0  # unknown experiment: left alone
    collected = sync_to_mlflow(store, server, progress=False)
    assert collected.deleted == 1 and stage(keeper) == "deleted"
    assert keeper.id not in Bookmarks(store, collected.target).remote_ids()


def test_target_without_a_scheme_is_a_one_line_error(store, capsys):
    with al.start_run("r", **RUN_OPTS) as run:
        run.log_metric("m", 1.0)
    assert cli.main(["sync", "--to", "127.0.0.1:5055"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "http://127.0.0.1:5055" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="scheme"):
        sync_to_mlflow(store, "localhost:5000")


def test_reset_server_is_not_up_to_date_and_verify_repairs(store, client, server, capsys):
    exp = _experiment()
    with al.start_run("a", tags={"team": "vision"}, **RUN_OPTS) as a:
        for step in range(30):
            a.log_metric("loss", 1.0 / (step + 1), step=step)
    with al.start_run("b", **RUN_OPTS) as b:
        b.log_metric("loss", 3.0, step=0)
    first = sync_to_mlflow(store, server, experiment=exp, progress=False)
    _purge(client, server, [first.remote_ids[a.id], first.remote_ids[b.id]])  # the server lost everything

    rc = cli.main(["sync", "--to", server, "--experiment", exp])
    out, err = capsys.readouterr()
    assert rc == 0 and "up to date" not in out and "synced 2 runs (2 new)" in out, out
    assert "database reset" in err
    exp_id = client.get_experiment_by_name(exp).experiment_id
    remote = {r.info.run_name: r for r in client.search_runs([exp_id])}
    assert set(remote) == {"a", "b"} and len(client.get_metric_history(remote["a"].info.run_id, "loss")) == 30

    # Part of a run lost: --verify finds it and pushes it again (a plain sync trusts the bookmarks).
    client.delete_tag(remote["a"].info.run_id, "team")
    assert sync_to_mlflow(store, server, experiment=exp, progress=False).runs == 0
    assert cli.main(["sync", "--to", server, "--experiment", exp, "--verify"]) == 0
    assert "1 repaired" in capsys.readouterr().out
    assert client.get_run(remote["a"].info.run_id).data.tags["team"] == "vision"
    assert len(client.get_metric_history(remote["a"].info.run_id, "loss")) == 30
