"""The team set-up for real: four machines' local stores syncing at once into one MLflow server on PostgreSQL.

A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temp folder, on a free port,
as the ``postgres`` user when the tests run as root) backs a real ``mlflow server``. Four
processes, each with its own local store, log runs and run ``autolog sync`` at the same
time, twice (the second time with more points). Every run and every point must be on
the server exactly once.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

pytest.importorskip("mlflow", reason="pip install 'autolog[mlflow]'")
pytest.importorskip("psycopg2", reason="pip install psycopg2-binary (in the dev extra)")
from mlflow import MlflowClient  # noqa: E402

WORKERS = 4
RUNS_PER_WORKER = 2
POINTS = 300


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster on 127.0.0.1 for this module; yields the URI of an empty database."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found): apt-get install -y postgresql")
    user = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    root = tempfile.mkdtemp(prefix="autolog-pg-")
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = os.path.join(root, "data"), _free_port()
    as_user = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run([initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"], check=True, capture_output=True,
                   timeout=180, cwd=root, env=env, **as_user)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    started = subprocess.run([pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "pg.log"), "-w", "-t", "120", "start"],
                             capture_output=True, text=True, timeout=180, cwd=root, env=env, **as_user)
    if started.returncode != 0:
        log = open(os.path.join(root, "pg.log")).read()[-2000:] if os.path.exists(os.path.join(root, "pg.log")) else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{log}")
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE mlflow")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True, timeout=120, cwd=root, env=env, **as_user)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def team_server(postgres, tmp_path_factory):
    """``mlflow server`` on the PostgreSQL database; yields its URL."""
    root = tmp_path_factory.mktemp("pg-mlflow")
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    cmd = [exe, "server", "--backend-store-uri", postgres, "--artifacts-destination", str(root / "artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(root / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill(proc)
            pytest.fail(f"mlflow server on PostgreSQL did not start: {(root / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    """Stop the server's whole process group (its workers too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(20)
            break
        except subprocess.TimeoutExpired:
            continue


# One "machine": log runs (a parent with a child each) into its own store, then sync.
WORKER = f"""
import sys, autolog as al
from autolog.cli import commands as cli
store, server, worker, round_ = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
al.set_store(store)
al.set_experiment("team")
opts = dict(capture_env=False, log_system_metrics=False)
for i in range({RUNS_PER_WORKER}):
    name = f"w{{worker}}-r{{i}}"
    if round_ == 0:
        with al.start_run(name, **opts) as run:
            run.log_params({{"worker": worker, "i": i}})
            for step in range({POINTS}):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            with al.start_run(name + "-child", nested=True, **opts) as child:
                child.log_metric("acc", 0.5, step=0)
    else:  # more points into the same runs, synced incrementally
        run_id = al.open_store(store).search_runs(filter=f"attributes.name = '{{name}}'")[0].id
        with al.start_run(run_id=run_id, **opts) as run:
            for step in range({POINTS}, 2 * {POINTS}):
                run.log_metric("loss", 0.5, step=step)
al.flush()
sys.exit(cli.main(["--store", store, "sync", "--to", server, "--quiet"]))
"""


def _round(stores: list[str], server: str, round_: int) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, store, server, str(i), str(round_)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, store in enumerate(stores)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]


def test_four_stores_sync_concurrently_into_postgres(team_server, tmp_path):
    stores = [str(tmp_path / f"machine-{i}" / "autolog-runs") for i in range(WORKERS)]
    _round(stores, team_server, 0)
    _round(stores, team_server, 1)
    client = MlflowClient(team_server)
    exp = client.get_experiment_by_name("team")
    remote = client.search_runs([exp.experiment_id], max_results=1000)
    assert len(remote) == WORKERS * RUNS_PER_WORKER * 2  # parents and children, each exactly once
    local_ids = [r.data.tags["autolog.run_id"] for r in remote]
    assert len(set(local_ids)) == len(local_ids)
    by_name = {r.info.run_name: r for r in remote}
    for worker in range(WORKERS):
        for i in range(RUNS_PER_WORKER):
            parent = by_name[f"w{worker}-r{i}"]
            child = by_name[f"w{worker}-r{i}-child"]
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert parent.data.params == {"worker": str(worker), "i": str(i)}
            steps = sorted(m.step for m in client.get_metric_history(parent.info.run_id, "loss"))
            assert steps == list(range(2 * POINTS)), f"w{worker}-r{i}: {len(steps)} points"
            assert [m.value for m in client.get_metric_history(child.info.run_id, "acc")] == [0.5]
