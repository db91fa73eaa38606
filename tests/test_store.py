"""The SQLite store: experiments, runs, params, tags, metrics, artifacts, lifecycle, KILLED."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import autolog as al
from autolog.errors import ParamConflict, RunNotFound
from autolog.store.sqlite import SQLiteStore

# No environment capture or system sampler: their background writes are tested elsewhere
# and would blur "nothing was written" and exact metric sets here.
QUIET = {"capture_env": False, "log_system_metrics": False}


def blob_files(store) -> list[str]:
    return sorted(name for _d, _s, names in os.walk(store.blobs.root) for name in names)


# -- experiments and runs ------------------------------------------------------------------
def test_experiments_created_once_and_listed(store):
    a = store.get_or_create_experiment("vision")
    b = store.get_or_create_experiment("vision")
    c = store.get_or_create_experiment("nlp")
    assert a == b and a.id != c.id
    assert [e.name for e in store.list_experiments()] == ["vision", "nlp"]
    assert store.get_experiment("nlp") == c == store.get_experiment(c.id)
    with pytest.raises(RunNotFound):
        store.get_experiment("missing")


def test_run_attributes_round_trip(store):
    before = int(time.time() * 1000)
    run = store.create_run("vision", "resnet", tags={"team": "cv"}, source="train.py")
    got = store.get_run(run.id)
    assert (got.name, got.experiment, got.status, got.lifecycle) == ("resnet", "vision", "RUNNING", "active")
    assert got.tags == {"team": "cv"} and got.source == "train.py"
    assert got.pid == os.getpid() and got.host and got.user
    assert before <= got.start_time <= int(time.time() * 1000)
    assert got.end_time is None and got.duration_ms is None
    store.end_run(run.id, "FAILED")
    got = store.get_run(run.id)
    assert got.status == "FAILED" and got.end_time >= got.start_time
    assert got.info.run_id == run.id


def test_parent_and_children(store):
    parent = store.create_run("e", "parent")
    kids = [store.create_run("e", f"kid{i}", parent_run_id=parent.id[:10]) for i in range(2)]
    assert store.get_run(kids[0].id).parent_run_id == parent.id
    assert [r.id for r in store.child_runs(parent.id)] == [k.id for k in kids]
    with pytest.raises(RunNotFound):
        store.create_run("e", "orphan", parent_run_id="doesnotexist")
    for r in (*kids, parent):
        store.end_run(r.id, "FINISHED")


def test_prefix_ids(store):
    runs = [store.create_run("e", f"r{i}") for i in range(30)]
    for r in runs:
        store.end_run(r.id, "FINISHED")
    for r in runs:
        assert store.resolve_run_id(r.id) == r.id
        assert store.get_run(r.id[:12]).id == r.id
    # 30 random hex ids: some one-character prefix is shared by two of them
    firsts = [r.id[0] for r in runs]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.resolve_run_id(shared)
    for bad in ("zzzz", "", "%", "_", "' OR 1=1 --"):
        with pytest.raises(RunNotFound):
            store.get_run(bad)


# -- params and tags -----------------------------------------------------------------------
def test_params_written_once(store):
    run = store.create_run("e", "p")
    store.log_params(run.id, {"lr": 0.1, "layers": [64, 64], "name": "x"})
    store.log_params(run.id, {"lr": 0.1})
    with pytest.raises(ParamConflict, match="lr"):
        store.log_params(run.id, {"lr": 0.2, "other": 1})
    assert store.get_run(run.id).params == {"lr": "0.1", "layers": "[64, 64]", "name": "x"}
    store.end_run(run.id, "FINISHED")


def test_tags_are_mutable(store):
    run = store.create_run("e", "t", tags={"a": "1"})
    store.set_tags(run.id, {"a": "2", "b": 3})
    store.delete_tag(run.id, "b")
    assert store.get_run(run.id).tags == {"a": "2"}
    store.end_run(run.id, "FINISHED")


# -- metrics -------------------------------------------------------------------------------
def test_metrics_special_values_out_of_order_and_repeated_steps(store):
    run = store.create_run("e", "m")
    t = time.time()
    rows = [
        (run.id, "loss", 5, 0.5, t), (run.id, "loss", 1, float("nan"), t), (run.id, "loss", 3, float("inf"), t),
        (run.id, "loss", 1, 0.9, t + 1), (run.id, "loss", 0, float("-inf"), t), (run.id, "loss", 5, 0.4, t + 2),
        (run.id, "acc", -1, 1e308, t),
    ]
    store.write_points(rows[:3])
    store.write_points(rows[3:])
    hist = store.metric_history(run.id, "loss")
    # every point kept, sorted by step; equal steps keep the order they were logged in
    assert [p.step for p in hist] == [0, 1, 1, 3, 5, 5]
    assert hist[0].value == -math.inf and math.isnan(hist[1].value) and hist[2].value == 0.9
    assert hist[3].value == math.inf and [hist[4].value, hist[5].value] == [0.5, 0.4]
    assert hist[5].timestamp == int((t + 2) * 1000)
    got = store.get_run(run.id)
    assert got.metrics == {"loss": 0.4, "acc": 1e308}  # latest = highest step, last logged
    assert got.latest["loss"].step == 5
    assert store.count_points(run.id) == 7 and store.metric_keys(run.id) == ["acc", "loss"]
    assert store.metric_history(run.id, "missing") == []
    store.end_run(run.id, "FINISHED")


def test_latest_nan_reads_back_as_nan(store):
    run = store.create_run("e", "n")
    store.write_points([(run.id, "x", 0, 1.0, time.time()), (run.id, "x", 1, float("nan"), time.time())])
    assert math.isnan(store.get_run(run.id).metrics["x"])
    store.end_run(run.id, "FINISHED")


def test_latest_keeps_highest_step_across_batches(store):
    run = store.create_run("e", "late")
    store.write_points([(run.id, "x", 10, 1.0, time.time())])
    store.write_points([(run.id, "x", 2, 2.0, time.time())])  # an older step arriving late
    assert store.get_run(run.id).latest["x"].step == 10
    assert store.get_run(run.id).metrics["x"] == 1.0
    store.end_run(run.id, "FINISHED")


# -- artifacts -----------------------------------------------------------------------------
def test_artifacts_content_addressed(store, tmp_path):
    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    a.write_bytes(b"weights" * 1000)
    b.write_bytes(b"weights" * 1000)
    r1 = store.create_run("e", "one")
    r2 = store.create_run("e", "two")
    art1 = store.log_artifact(r1.id, str(a), "ckpt/a.ckpt")
    art2 = store.log_artifact(r2.id, str(b), "b.ckpt")
    store.log_artifact_bytes(r2.id, b"weights" * 1000, "dup/again.bin")
    assert art1.sha256 == art2.sha256 and art1.size == 7000
    assert len(blob_files(store)) == 1  # two identical checkpoints, one blob
    assert [x.path for x in store.list_artifacts(r2.id)] == ["b.ckpt", "dup/again.bin"]
    assert [x.path for x in store.list_artifacts(r2.id, prefix="dup")] == ["dup/again.bin"]
    with open(store.artifact_file(r1.id, "ckpt/a.ckpt"), "rb") as fh:
        assert fh.read() == a.read_bytes()
    out = store.download_artifacts(r1.id, "ckpt", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "ckpt" / "a.ckpt").read_bytes() == a.read_bytes() and out.endswith("ckpt")
    with pytest.raises(RunNotFound):
        store.artifact_file(r1.id, "nope")
    with pytest.raises(ValueError, match="artifact_path"):
        store.log_artifact(r1.id, str(a), "../../etc/passwd")
    for r in (r1, r2):
        store.end_run(r.id, "FINISHED")


# -- lifecycle -----------------------------------------------------------------------------
def test_soft_delete_restore_and_gc(store, tmp_path):
    shared, own = tmp_path / "shared.bin", tmp_path / "own.bin"
    shared.write_bytes(b"shared")
    own.write_bytes(b"only the deleted run has this")
    keep = store.create_run("e", "keep")
    gone = store.create_run("e", "gone", tags={"x": "1"})
    store.log_artifact(keep.id, str(shared))
    store.log_artifact(gone.id, str(shared))
    store.log_artifact(gone.id, str(own))
    store.log_params(gone.id, {"p": 1})
    store.write_points([(gone.id, "loss", i, 1.0, time.time()) for i in range(10)])
    store.write_points([(keep.id, "loss", i, 1.0, time.time()) for i in range(3)])
    for r in (keep, gone):
        store.end_run(r.id, "FINISHED")

    store.delete_run(gone.id[:8])
    assert [r.id for r in store.search_runs()] == [keep.id]
    assert [r.id for r in store.search_runs(lifecycle="deleted")] == [gone.id]
    assert store.get_run(gone.id).lifecycle == "deleted"  # still readable until gc
    store.restore_run(gone.id)
    assert {r.id for r in store.search_runs()} == {keep.id, gone.id}

    store.delete_run(gone.id)
    assert len(blob_files(store)) == 2
    result = store.gc()
    # rows: 1 param, 1 tag, 1 metric chunk, 1 latest value, 2 artifacts of the deleted run
    assert result == {"runs": 1, "rows": 6, "blobs": 1, "incoming": 0, "bytes": len(own.read_bytes())}
    assert blob_files(store) == [store.list_artifacts(keep.id)[0].sha256]
    with pytest.raises(RunNotFound):
        store.get_run(gone.id)
    conn = sqlite3.connect(store.db_path)
    for table in ("params", "tags", "metric_chunks", "latest_metrics", "artifacts"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (gone.id,)).fetchone()[0] == 0
    conn.close()
    assert store.count_points() == 3
    assert open(store.artifact_file(keep.id, "shared.bin"), "rb").read() == b"shared"
    assert store.gc() == {"runs": 0, "rows": 0, "blobs": 0, "incoming": 0, "bytes": 0}


# -- KILLED --------------------------------------------------------------------------------
CHILD = """
import sys, time
from autolog.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
run = store.create_run("e", "doomed")
print(run.id, flush=True)
time.sleep(60)
"""


def test_run_of_dead_process_reads_killed(store):
    child = subprocess.Popen([sys.executable, "-c", CHILD, store.root], stdout=subprocess.PIPE, text=True)
    try:
        run_id = child.stdout.readline().strip()
        assert store.get_run(run_id).status == "RUNNING"
        assert [r.id for r in store.search_runs(filter="attributes.status = 'RUNNING'")] == [run_id]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    time.sleep(1.1)  # liveness answers are cached for a second
    assert store.get_run(run_id).status == "KILLED"
    assert [r.id for r in store.search_runs(filter="attributes.status = 'KILLED'")] == [run_id]
    assert store.search_runs(filter="attributes.status = 'RUNNING'") == []
    # a fresh store object in a fresh process sees it too
    out = subprocess.run(
        [sys.executable, "-c", f"from autolog.store.sqlite import SQLiteStore; print(SQLiteStore({store.root!r}).get_run({run_id!r}).status)"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "KILLED"


def test_run_of_other_host_keeps_recorded_status(store):
    run = store.create_run("e", "remote")
    with store.transaction() as tx:
        tx.execute("UPDATE runs SET host = 'elsewhere', pid = 999999 WHERE id = ?", (run.id,))
    assert store.get_run(run.id).status == "RUNNING"
    store.end_run(run.id, "FINISHED")


# -- opening -------------------------------------------------------------------------------
def test_store_path_forms(tmp_path):
    s = SQLiteStore(str(tmp_path / "a"))
    assert os.path.isfile(s.db_path)
    assert SQLiteStore(f"file://{tmp_path / 'a'}").root == s.root
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        SQLiteStore(str(tmp_path / "afile"))
    with pytest.raises(TypeError):
        SQLiteStore(5)


def test_wal_mode(store):
    assert store.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopen_run_resumes(store):
    with al.start_run(**QUIET, name="first") as run:
        al.log_metric("x", 1.0, step=0)
    with al.start_run(**QUIET, run_id=run.id[:8]) as again:
        assert again.id == run.id
        assert store.get_run(run.id).status == "RUNNING"
        al.log_metric("x", 2.0, step=1)
    got = store.get_run(run.id)
    assert got.status == "FINISHED" and [p.value for p in store.metric_history(run.id, "x")] == [1.0, 2.0]


def test_delete_run_cascades_only_when_asked(store):
    parent = store.create_run("e", "parent")
    child = store.create_run("e", "child", parent_run_id=parent.id)
    grandchild = store.create_run("e", "grandchild", parent_run_id=child.id)
    assert store.run_tree(parent.id) == [parent.id, child.id, grandchild.id]
    assert store.delete_run(parent.id) == [parent.id]  # like MLflow: the run alone
    assert {r.name for r in store.search_runs()} == {"child", "grandchild"}
    assert store.delete_run(parent.id, children=True) == [parent.id, child.id, grandchild.id]
    assert store.search_runs() == []
    assert store.restore_run(parent.id, children=True) == [parent.id, child.id, grandchild.id]
    assert len(store.search_runs()) == 3
    for r in (grandchild, child, parent):
        store.end_run(r.id, "FINISHED")


def test_opening_an_existing_store_is_a_read(store):
    assert store.connection().execute("PRAGMA user_version").fetchone()[0] >= 1
    # A store written before user_version existed keeps its version in meta: still current, nothing rewritten.
    with store.transaction() as tx:
        tx.execute("PRAGMA user_version = 0")
    before = os.stat(store.db_path).st_mtime_ns, os.path.getsize(store.db_path + "-wal")
    again = SQLiteStore(store.root)
    assert again.connection().execute("PRAGMA user_version").fetchone()[0] == 0
    assert (os.stat(store.db_path).st_mtime_ns, os.path.getsize(store.db_path + "-wal")) == before
    again.close()


def test_records_behave_as_the_dataclasses_they_replace():
    import copy
    import pickle

    from autolog.store.base import Artifact, Experiment, FrozenInstanceError, Metric, Run

    metric = Metric("loss", 0.5, 3, 1700)
    assert metric == Metric("loss", 0.5, 3, 1700) and metric != Metric("loss", 0.5, 4, 1700) and metric != ("loss", 0.5, 3, 1700)
    assert hash(metric) == hash(Metric("loss", 0.5, 3, 1700)) and len({metric, Metric("loss", 0.5, 3, 1700)}) == 1
    assert repr(metric) == "Metric(key='loss', value=0.5, step=3, timestamp=1700)"
    assert repr(Experiment(1, "default")) == "Experiment(id=1, name='default', created=0)"
    assert repr(Artifact("a.txt", 3, "ab")) == "Artifact(path='a.txt', size=3, sha256='ab')"
    for record in (metric, Experiment(1, "default"), Artifact("a.txt", 3, "ab")):
        with pytest.raises(FrozenInstanceError):
            record.name = "other"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del record.name  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(record)) == record == copy.deepcopy(record)
    args = ("r1", "n", 1, "e", "RUNNING", "active", None, 10, None, "u", "s")
    run = Run(*args, tags={"a": "b"})
    assert run == Run(*args, tags={"a": "b"}) and run != Run(*args) and Run(*args).params is not Run(*args).params
    assert repr(run).startswith("Run(id='r1', name='n', experiment_id=1,") and repr(run).endswith("tags={'a': 'b'}, metrics={}, latest={})")
    with pytest.raises(TypeError):
        hash(run)
    run.status = "FINISHED"
    assert run.info.run_id == "r1" and run.duration_ms is None and pickle.loads(pickle.dumps(run)) == run


def test_a_run_start_imports_neither_inspect_nor_dataclasses(tmp_path):
    # Which modules load (not a timing): dataclasses imports inspect, ~7 ms of every run start.
    code = ("import sys, autolog\nwith autolog.start_run():\n    autolog.log_metric('m', 1.0)\n"
            "print(sorted(m for m in ('inspect', 'dataclasses', 'wrapt') if m in sys.modules))\n")
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
