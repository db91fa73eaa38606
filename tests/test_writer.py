"""The background writer: batching, flush, bounded queue, failures, SIGKILL, many processes, exit."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import autolog as al
from autolog.store import series
from autolog.store.sqlite import SQLiteStore
from autolog.store.writer import BatchWriter

# No environment capture or system sampler: their background writes are tested elsewhere
# and would blur "nothing was written" and exact metric sets here.
QUIET = {"capture_env": False, "log_system_metrics": False}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(store_root: str, **extra: str) -> dict:
    env = dict(os.environ, AUTOLOG_URI=store_root, PYTHONPATH=ROOT, AUTOLOG_STRICT="1")
    env.update(extra)
    return env


def durable(store, run_id: str) -> int:
    """Points committed to the database, read without the store's own flush-before-read."""
    conn = sqlite3.connect(store.db_path)
    try:
        return conn.execute("SELECT COALESCE(SUM(n), 0) FROM metric_chunks WHERE run_id = ?", (run_id,)).fetchone()[0]
    finally:
        conn.close()


def run_script(code: str, store_root: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=child_env(store_root, **extra),
                          capture_output=True, text=True, timeout=timeout)


# -- batching ------------------------------------------------------------------------------
def test_points_become_durable_without_flush(store, monkeypatch):
    with al.start_run(**QUIET, name="timed") as run:
        al.log_metric("x", 1.0)
        deadline = time.monotonic() + 3.0
        while durable(store, run.id) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert durable(store, run.id) == 1  # the time trigger (0.2 s) wrote it


def test_flush_end_and_batch_write(store):
    with al.start_run(**QUIET, name="many") as run:
        for i in range(20_000):
            al.log_metric("loss", i * 0.5, step=i)
            al.log_metric("acc", 1.0, step=i)
        assert al.flush() == 0
        assert store.count_points(run.id) == 40_000
        al.log_metric("late", 1.0)
    # end_run flushed the last point
    assert store.get_run(run.id).metrics["late"] == 1.0
    hist = store.metric_history(run.id, "loss")
    assert [p.step for p in hist] == list(range(20_000)) and hist[-1].value == 9999.5


def test_batches_are_few_transactions(store):
    with al.start_run(**QUIET, name="batched") as run:
        for i in range(5_000):
            al.log_metric("loss", float(i), step=i)
    chunks = store.connection().execute("SELECT COUNT(*) FROM metric_chunks WHERE run_id = ?", (run.id,)).fetchone()[0]
    assert store.count_points(run.id) == 5_000
    assert chunks < 100  # not one row per point


def test_repeated_and_out_of_order_steps_all_kept(store):
    with al.start_run(**QUIET, name="kfold") as run:
        for fold in range(3):
            for step in (2, 0, 1):
                al.log_metric("val_loss", fold + step / 10, step=step)
    hist = store.metric_history(run.id, "val_loss")
    assert len(hist) == 9
    assert [p.step for p in hist] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [p.value for p in hist if p.step == 1] == [0.1, 1.1, 2.1]  # logging order kept within a step


def test_concurrent_threads_lose_nothing(store):
    with al.start_run(**QUIET, name="threads") as run:
        def work(t):
            for i in range(5_000):
                run.log_metric(f"k{t % 2}", float(i), step=i)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert store.count_points(run.id) == 20_000
    assert len(store.metric_history(run.id, "k0")) == 10_000


def test_bounded_queue_makes_the_caller_wait(tmp_path):
    release = threading.Event()
    written = []

    def slow_write(chunks):
        release.wait()
        written.extend(p for c in chunks for p in series.as_tuples(c[2]))

    writer = BatchWriter(slow_write, interval=0.01, limit=1_000)
    queue = writer.series("r", "k")
    done = threading.Event()

    def produce():
        for i in range(5_000):
            queue.extend(series.POINT.pack(i, 0.0, 0.0))
            if len(queue) >= 1_000 * series.POINT.size:
                writer.pressure(queue)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.5)
    assert not done.is_set()  # the store is stuck and the queue is full: the caller waits
    assert writer.pending() <= 1_000 + 1_000  # one queue-full in flight plus one queued
    release.set()
    producer.join(10)
    assert done.is_set()
    assert writer.close() == 0
    assert [p[0] for p in written] == list(range(5_000))  # nothing dropped, order kept


def test_failing_writes_do_not_grow_memory_without_bound():
    writer = BatchWriter(lambda chunks: 1 / 0, interval=0.005, limit=2_000)
    queue = writer.series("r", "k")
    done = threading.Event()

    def produce():
        for i in range(6_000):
            queue.extend(series.POINT.pack(i, 0.0, 0.0))
            if len(queue) >= 500 * series.POINT.size:
                writer.pressure(queue)
        done.set()

    with pytest.warns(RuntimeWarning, match="could not write"):
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        time.sleep(0.5)
    assert not done.is_set()
    assert writer.pending() < 3_000
    writer.write = lambda chunks: None
    with pytest.warns(RuntimeWarning, match="works again"):
        producer.join(10)
    assert done.is_set()
    assert writer.close() == 0 and writer.points_written == 6_000


# -- failures inside the writer thread ----------------------------------------------------------
def test_write_error_warns_and_later_batches_go_out(store, monkeypatch):
    original = SQLiteStore.write_series
    state = {"fail": True, "calls": 0}

    def flaky(self, chunks):
        state["calls"] += 1
        if state["fail"]:
            raise OSError(28, "No space left on device")
        return original(self, chunks)

    monkeypatch.setattr(SQLiteStore, "write_series", flaky)
    with pytest.warns(RuntimeWarning, match="No space left") as caught:
        with al.start_run(**QUIET, name="disk-full") as run:
            for i in range(100):
                al.log_metric("loss", float(i), step=i)
            deadline = time.monotonic() + 5
            while state["calls"] < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            writer = run.writer
            assert writer._thread.is_alive()  # the thread survived the errors
            assert state["calls"] >= 3 and durable(store, run.id) == 0
            for i in range(100, 200):
                al.log_metric("loss", float(i), step=i)  # the program goes on logging
            state["fail"] = False
            deadline = time.monotonic() + 5
            while durable(store, run.id) < 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert durable(store, run.id) == 200  # the writer thread wrote them, no flush
            al.log_metric("loss", 200.0, step=200)
    assert len([w for w in caught if "could not write" in str(w.message)]) == 1  # warned once
    assert any("works again" in str(w.message) for w in caught)
    assert [p.step for p in store.metric_history(run.id, "loss")] == list(range(201))
    assert store.get_run(run.id).status == "FINISHED"


def test_flush_with_timeout_returns_points_left(store, monkeypatch):
    gate = threading.Event()
    original = SQLiteStore.write_series

    def blocking(self, chunks):
        gate.wait(10)
        return original(self, chunks)

    monkeypatch.setattr(SQLiteStore, "write_series", blocking)
    with al.start_run(**QUIET, name="blocked") as run:
        for i in range(10):
            al.log_metric("x", float(i), step=i)
        start = time.monotonic()
        assert al.flush(timeout=0.3) == 10
        assert time.monotonic() - start < 5  # bounded: the 0.3 s timeout was honoured, not the 10 s gate
        gate.set()
        assert al.flush(timeout=5) == 0
    assert store.count_points(run.id) == 10


# -- processes -----------------------------------------------------------------------------
KILL_CHILD = """
import sys, time
import autolog as al
run = al.start_run(capture_env=False, log_system_metrics=False, name="victim")
print("run", run.id, flush=True)
i = 0
while True:
    al.log_metric("x", float(i), step=i)
    al.log_metric("y", -float(i), step=i)
    print(i + 1, repr(time.time()), flush=True)
    i += 1
    time.sleep(0.001)
"""


def test_sigkill_loses_at_most_one_flush_interval(store):
    interval = 0.2  # the default
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD], env=child_env(store.root, AUTOLOG_FLUSH_INTERVAL=str(interval)),
                             stdout=subprocess.PIPE, text=True)
    try:
        run_id = child.stdout.readline().split()[1]
        lines = []
        start = time.monotonic()
        while time.monotonic() - start < 1.5:
            lines.append(child.stdout.readline())
        kill_time = time.time()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        lines.extend(child.stdout.read().splitlines())
        progress = [line.split() for line in lines if line.strip()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # The child printed (count, time) after each pair of points: what was logged by then.
    logged_early = max(int(n) for n, t in progress if float(t) < kill_time - interval - 0.05)
    assert logged_early > 100

    time.sleep(1.1)  # liveness answers are cached for a second
    reopened = SQLiteStore(store.root)
    run = reopened.get_run(run_id[:8])
    assert run.status == "KILLED"
    assert reopened.search_runs(filter="attributes.status = 'KILLED'")[0].id == run_id
    for key in ("x", "y"):
        steps = [p.step for p in reopened.metric_history(run_id, key)]
        assert steps == list(range(len(steps)))  # a clean prefix, no holes
        assert len(steps) >= logged_early, f"{key}: {len(steps)} points stored, {logged_early} logged {interval} s before the kill"


WORKER = """
import sys
import autolog as al
n = int(sys.argv[1])
with al.start_run(capture_env=False, log_system_metrics=False, name="worker-" + sys.argv[2], experiment="sweep") as run:
    al.log_param("worker", sys.argv[2])
    for i in range(n):
        al.log_metric("loss", 1.0 / (i + 1), step=i)
        if i % 500 == 0:
            al.flush()  # many small transactions from every process at once
print(run.id)
"""


def test_four_processes_into_one_store(tmp_path):
    root = str(tmp_path / "shared-store")  # does not exist yet: the schema is created concurrently too
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, "5000", str(w)], env=child_env(root, AUTOLOG_FLUSH_INTERVAL="0.01"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "locked" not in err and "Warning" not in err, err
    store = SQLiteStore(root)
    ids = [out.strip() for out, _ in outputs]
    assert store.count_points() == 20_000
    for run_id in ids:
        run = store.get_run(run_id)
        assert run.status == "FINISHED" and run.experiment == "sweep"
        assert [p.step for p in store.metric_history(run_id, "loss")] == list(range(5_000))
    assert len(store.search_runs(experiment="sweep")) == 4


# -- exit ----------------------------------------------------------------------------------
EXIT_BLOCKED = """
import time
import autolog as al
from autolog.store import series
from autolog.store.sqlite import SQLiteStore
original = SQLiteStore.write_series
def stuck(self, chunks):
    time.sleep(3600)  # a store that never answers (a hung network filesystem)
SQLiteStore.write_series = stuck
run = al.start_run(capture_env=False, log_system_metrics=False, name="stuck")
print(run.id, flush=True)
for i in range({n}):
    al.log_metric("x", float(i), step=i)
{tail}
"""


@pytest.mark.parametrize("tail", ["", "time.sleep(0.5)  # the writer thread is inside the blocked write"])
def test_exit_never_hangs_on_a_blocked_store(store, tail):
    start = time.monotonic()
    proc = run_script(EXIT_BLOCKED.format(n=50, tail=tail), store.root, timeout=30, AUTOLOG_EXIT_TIMEOUT="1")
    took = time.monotonic() - start
    assert took < 10, f"exit took {took:.1f} s"
    assert "50 metric points could not be written within 1 s at exit" in proc.stderr, proc.stderr
    run = store.get_run(proc.stdout.strip())
    assert run.status == "FINISHED"  # the run was still ended, only its points are missing
    assert store.count_points(run.id) == 0


def test_exit_never_hangs_on_a_store_locked_by_another_process(store):
    code = """
    import sys
    import autolog as al
    run = al.start_run(capture_env=False, log_system_metrics=False, name="locked-out")
    print(run.id, flush=True)
    sys.stdin.readline()  # the parent now holds the database's write lock
    for i in range(40):
        al.log_metric("x", float(i), step=i)
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=child_env(store.root, AUTOLOG_EXIT_TIMEOUT="1"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = child.stdout.readline().strip()
    lock = sqlite3.connect(store.db_path, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        start = time.monotonic()
        _out, err = child.communicate("go\n", timeout=30)
        took = time.monotonic() - start
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert took < 8, f"exit took {took:.1f} s with the store locked (busy timeout is 60 s)"
    assert "40 metric points could not be written within 1 s at exit" in err, err
    time.sleep(1.1)
    assert store.get_run(run_id).status == "KILLED"  # it could not record its end: its process is gone


def test_exit_reports_points_of_a_failing_store(store):
    code = """
    import autolog as al
    from autolog.store.sqlite import SQLiteStore
    def full(self, chunks):
        raise OSError(28, "No space left on device")
    SQLiteStore.write_series = full
    with al.start_run(capture_env=False, log_system_metrics=False, name="full") as run:
        for i in range(30):
            al.log_metric("x", float(i), step=i)
    print(run.id, flush=True)
    """
    start = time.monotonic()
    proc = run_script(code, store.root, timeout=30, AUTOLOG_EXIT_TIMEOUT="2", AUTOLOG_STRICT="0")
    assert time.monotonic() - start < 10
    assert proc.returncode == 0, proc.stderr
    assert "No space left" in proc.stderr  # the warning
    assert "30 metric points could not be written" in proc.stderr
    assert store.get_run(proc.stdout.strip()).status == "FINISHED"


def test_exit_flushes_everything_when_the_store_works(store):
    code = """
    import autolog as al
    run = al.start_run(capture_env=False, log_system_metrics=False, name="implicit-end")
    for i in range(1000):
        al.log_metric("x", float(i), step=i)
    print(run.id, flush=True)
    """
    proc = run_script(code, store.root, timeout=30)
    assert proc.returncode == 0 and "could not" not in proc.stderr, proc.stderr
    run = store.get_run(proc.stdout.strip())
    assert run.status == "FINISHED" and store.count_points(run.id) == 1000


def test_exit_after_an_exception_marks_the_run_failed(store):
    code = """
    import autolog as al
    run = al.start_run(capture_env=False, log_system_metrics=False, name="crash")
    print(run.id, flush=True)
    al.log_metric("x", 1.0)
    raise SystemExit(3)
    """
    proc = run_script(code, store.root, timeout=30)
    assert proc.returncode == 3
    run = store.get_run(proc.stdout.strip())
    assert run.status in ("FINISHED", "FAILED") and store.count_points(run.id) == 1
