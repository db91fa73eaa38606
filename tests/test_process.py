"""Process lifetime: fork children, exit, lock timeouts, a full disk, bounded memory, threads.

Real processes throughout: multiprocessing with the fork start method, os.fork, a second
process holding the store's write lock (BEGIN IMMEDIATE), and a file-size limit
(RLIMIT_FSIZE) standing in for a full disk.
"""

from __future__ import annotations

import contextvars
import multiprocessing
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

import autolog as al
from autolog import process
from autolog.capture import environment as envcapture
from autolog.patching import lifecycle
from autolog.patching.lifecycle import open_fit_run

QUIET = {"capture_env": False, "log_system_metrics": False}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def durable(db_path: str, run_id: str | None = None, key: str | None = None) -> int:
    """Points committed to the database, read with a plain connection (no flush first)."""
    conn = sqlite3.connect(db_path)
    try:
        sql = "SELECT COALESCE(SUM(n), 0) FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id WHERE 1"
        args: list = []
        if run_id is not None:
            sql += " AND c.run_id = ?"
            args.append(run_id)
        if key is not None:
            sql += " AND k.key LIKE ?"
            args.append(key)
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def script(code: str, store_root: str, **extra: str) -> subprocess.Popen:
    env = dict(os.environ, AUTOLOG_URI=store_root, PYTHONPATH=ROOT, AUTOLOG_STRICT="1", **extra)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The child's next stdout line; fails (instead of hanging) when none comes within ``timeout``."""
    lines = _LINES.get(proc)
    if lines is None:
        lines = _LINES[proc] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        raise AssertionError(f"no output within {timeout} s: the child hangs") from None


_LINES: dict = {}


class LockHolder:
    """A second process holding the store's write lock (BEGIN IMMEDIATE) until the block ends."""

    CODE = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\nsys.stdin.readline()\nc.execute('ROLLBACK')\n"

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path

    def __enter__(self) -> LockHolder:
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE, self.db_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert read_line(self.proc) == "locked"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.write("release\n")
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()


# -- fork children (multiprocessing) ---------------------------------------------------------
def _child_logs(n: int, key: str) -> None:
    for i in range(n):
        al.log_metric(key, float(i), step=i)


@fork_only
def test_multiprocessing_child_points_are_durable_when_join_returns(store):
    ctx = multiprocessing.get_context("fork")
    with al.start_run(**QUIET, name="parent") as run:
        child = ctx.Process(target=_child_logs, args=(5_000, "child"))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        # The child left through os._exit (no atexit): its finalizer flushed its points.
        assert durable(store.db_path, run.id, "child") == 5_000
        assert store.get_run(run.id).status == "RUNNING"  # and it did not end the parent's run
    assert store.get_run(run.id).status == "FINISHED"


def _child_run(queue) -> None:
    run = al.start_run(**QUIET, name="child-run")  # left open: the child's exit ends it
    queue.put(run.id)
    _child_logs(1_000, "own")


@fork_only
def test_a_run_started_in_a_multiprocessing_child_ends_when_the_child_exits(store):
    ctx = multiprocessing.get_context("fork")
    ids = ctx.Queue()
    child = ctx.Process(target=_child_run, args=(ids,))
    child.start()
    run_id = ids.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    run = store.get_run(run_id)
    assert run.status == "FINISHED" and run.end_time is not None  # not KILLED: the child ended it through os._exit
    assert durable(store.db_path, run_id) == 1_000


def _task(i: int) -> int:
    _child_logs(500, f"task{i}")
    return i


@fork_only
@pytest.mark.parametrize("ending", ["terminate", "close"])
def test_pool_workers_points_are_durable_when_the_pool_is_done(store, ending):
    ctx = multiprocessing.get_context("fork")
    with al.start_run(**QUIET, name="pool") as run:
        if ending == "terminate":
            with ctx.Pool(2) as pool:  # __exit__ terminates the workers (SIGTERM)
                assert pool.map(_task, range(8)) == list(range(8))
        else:
            pool = ctx.Pool(2)
            assert pool.map(_task, range(8)) == list(range(8))
            pool.close()
            pool.join()
        assert durable(store.db_path, run.id, "task%") == 8 * 500
        assert store.get_run(run.id).status == "RUNNING"


FORK_EXIT = """
import os, sys, threading
import autolog as al
run = al.start_run(name="parent")  # with environment capture and system metrics
al.log_metric("parent", 1.0)
al.flush()
pid = os.fork()
if pid == 0:
    names = sorted(t.name for t in threading.enumerate() if t.name.startswith("autolog"))
    print("threads-in-child", names, flush=True)
    for i in range(100):
        al.log_metric("child", float(i), step=i)
    sys.exit(0)  # a normal exit: atexit runs in the child
_, status = os.waitpid(pid, 0)
print("child-exit", os.waitstatus_to_exitcode(status), flush=True)
info = al.get_store().get_run(run.id)
print("after-child", info.status, info.end_time, al.get_store().count_points(run.id), flush=True)
print("run", run.id, flush=True)
"""


@fork_only
def test_forked_child_exiting_normally_never_ends_the_parents_run(store):
    proc = script(FORK_EXIT, store.root, AUTOLOG_SYSTEM_METRICS_INTERVAL="0.2", AUTOLOG_EXIT_TIMEOUT="30")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["threads-in-child"] == "[]"  # no autolog thread in a child until it logs
    assert lines["child-exit"] == "0"
    assert lines["after-child"] == "RUNNING None 101"  # the child's points arrived; the run was not ended
    run = store.get_run(lines["run"])
    assert run.status == "FINISHED", err  # ended once, by the parent's exit
    assert "not finished when the process exited" not in run.tags.get("capture.failed", "")


# -- threads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["al.log_metric", "ActiveRun.log_metric"])
def test_auto_steps_are_unique_across_threads(store, api):
    per_thread, threads = 50_000, 4
    with al.start_run(**QUIET) as run:
        def work() -> None:
            log = al.log_metric if api == "al.log_metric" else run.log_metric
            for _ in range(per_thread):
                log("shared", 1.0)

        # Each thread sees the run as its active run (a copy of this context).
        workers = [threading.Thread(target=contextvars.copy_context().run, args=(work,)) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    steps = [p.step for p in store.metric_history(run.id, "shared")]
    assert len(steps) == per_thread * threads
    assert sorted(steps) == list(range(per_thread * threads))  # no step given twice


# -- bounded memory while the store refuses ---------------------------------------------------------
def test_queue_stays_bounded_while_another_process_holds_the_lock(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_LOCK_TIMEOUT", "0.5")
    total = 400_000
    with al.start_run(**QUIET, name="bounded") as run:
        writer = run.writer
        writer.limit = 60_000
        peak = 0
        with LockHolder(store.db_path):
            with pytest.warns(RuntimeWarning, match="dropped to keep memory bounded"):
                for i in range(total):
                    al.log_metric("x", float(i), step=i)
                    if i % 5_000 == 0:
                        peak = max(peak, writer.pending())
            dropped = writer.points_dropped
        assert al.flush(timeout=60) == 0
    assert 0 < dropped < total
    assert peak <= 2 * writer.limit  # never the whole 400k in memory
    assert store.count_points(run.id) + dropped == total  # every point is either stored or counted as dropped


# -- lock waits are bounded; the run's state is retried -------------------------------------------
LOCKED_RUN = """
import faulthandler, sys
faulthandler.dump_traceback_later(150, exit=True)  # a hang shows where it waits
import autolog as al
with al.start_run(capture_env=False, log_system_metrics=False, name="locked") as run:
    print(run.id, flush=True)
    sys.stdin.readline()  # the test now holds the store's write lock
    al.log_param("lr", 0.1)
    al.set_tag("phase", "locked")
    for i in range(100):
        al.log_metric("x", float(i), step=i)
    print("left", al.flush(), flush=True)
print("done", flush=True)
sys.stdin.readline()  # the lock is released
"""


def test_lock_waits_are_bounded_and_the_run_is_written_later(store):
    proc = script(LOCKED_RUN, store.root, AUTOLOG_LOCK_TIMEOUT="0.5", AUTOLOG_EXIT_TIMEOUT="30")
    try:
        run_id = read_line(proc)
        with LockHolder(store.db_path):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            # With the lock held all along: log_param, set_tag, flush and leaving `with` all returned.
            assert read_line(proc, timeout=60) == "left 100"
            assert read_line(proc, timeout=60) == "done"
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(60)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert err.count("could not write") == 1, err  # one warning
    run = store.get_run(run_id)
    assert run.status == "FINISHED" and run.params == {"lr": "0.1"} and run.tags["phase"] == "locked"
    assert [p.step for p in store.metric_history(run_id, "x")] == list(range(100))


def test_start_run_under_a_held_lock_fails_fast_with_a_clear_error(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_LOCK_TIMEOUT", "0.3")
    from autolog.errors import StoreLocked

    with LockHolder(store.db_path):
        with pytest.raises(StoreLocked, match="AUTOLOG_LOCK_TIMEOUT"):
            al.start_run(**QUIET)
    assert al.active_run() is None


def test_environment_capture_under_a_lock_warns_once_and_writes_later(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_LOCK_TIMEOUT", "0.3")
    errors: list = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    with al.start_run(**QUIET, name="captured") as run:
        with LockHolder(store.db_path):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                capture = envcapture.start(run)
                assert capture.done.wait(60)
        assert al.flush(timeout=60) == 0
    assert not errors, errors  # the capture thread never died with a traceback
    assert len([w for w in caught if "could not" in str(w.message)]) == 1
    tags = store.get_run(run.id).tags
    assert "python.version" in tags  # written once the lock was released
    assert any(a.path == "environment/requirements.txt" for a in store.list_artifacts(run.id))


# -- a full disk at the run's end -----------------------------------------------------------------
FULL_DISK = """
import os, resource, signal, sys
import autolog as al
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
with al.start_run(capture_env=False, log_system_metrics=False, name="full") as run:
    print(run.id, flush=True)
    al.log_param("before", 1)
    al.flush()
    root = al.get_store().root
    limit = max(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root) if f.startswith("runs.db"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    for i in range(200_000):
        al.log_metric("x", float(i), step=i)
    if sys.argv[1] == "raise":
        raise ValueError("the user's own error")
print("left the with block", flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("mode", ["finish", "raise"])
def test_full_disk_at_run_end_never_raises_a_store_error(store, mode):
    env = dict(os.environ, AUTOLOG_URI=store.root, PYTHONPATH=ROOT, AUTOLOG_EXIT_TIMEOUT="2", AUTOLOG_LOCK_TIMEOUT="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FULL_DISK), mode], env=env, capture_output=True, text=True, timeout=120)
    err = proc.stderr
    assert "sqlite3.OperationalError" not in err, err  # never raised out of `with start_run()`
    if mode == "raise":
        assert proc.returncode == 1
        traceback = err[err.index("Traceback"):]
        assert traceback.splitlines()[2] == "ValueError: the user's own error", err  # the user's exception, unchanged
        assert "During handling" not in err
    else:
        assert proc.returncode == 0, err
        assert "left the with block" in proc.stdout
    assert err.count("could not write") == 1, err  # warned once
    run_id = proc.stdout.split()[0]
    # Exactly what was lost is reported at exit.
    assert f"the end of run {run_id[:8]} ({'FAILED' if mode == 'raise' else 'FINISHED'})" in err, err
    assert "metric points could not be written" in err
    assert store.get_run(run_id).params == {"before": "1"}


# -- process API ---------------------------------------------------------------------------------
def test_store_close_stops_its_writer(store):
    with al.start_run(**QUIET) as run:
        al.log_metric("x", 1.0)
    assert any(t.name == "autolog-writer" for t in threading.enumerate())
    al.get_store().close()
    assert durable(store.db_path, run.id) == 1
    assert not [t for t in threading.enumerate() if t.name == "autolog-writer" and t.is_alive()]


def test_exit_steps_run_once_in_order(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(process, "_exit_steps", [])
    process.on_exit("late", lambda: seen.append("late"), 30)
    process.on_exit("early", lambda: seen.append("early"), 10)
    process.on_exit("broken", lambda: 1 / 0, 20)  # reported, the next step still runs
    process.shutdown(timeout=1.0)
    process.shutdown(timeout=1.0)
    assert seen == ["early", "late", "early", "late"]  # shutdown lets the process log (and exit) again


def test_open_store_without_argument_is_the_store_set_store_chose(tmp_path):
    chosen = al.set_store(str(tmp_path / "elsewhere"))
    assert al.open_store() is chosen


# -- logging right after an autologged fit --------------------------------------------------------
def test_log_metric_after_a_fit_goes_to_its_run_and_re_ends_it(store):
    fit = open_fit_run("sklearn", "LinearRegression")
    fit.run.log_metric("loss", 0.5)
    fit.finish("FINISHED")
    first_end = store.get_run(fit.run.id).end_time
    al.log_metric("test_score", 0.9)  # no active run: the fit's run, within the window
    with al.start_run(**QUIET) as later:  # the window closes; the fit run is re-ended
        pass
    run = store.get_run(fit.run.id)
    assert run.status == "FINISHED"
    assert run.metrics["test_score"] == 0.9
    assert run.end_time >= run.latest["test_score"].timestamp >= first_end
    assert "test_score" not in store.get_run(later.id).metrics


def test_log_metric_after_the_window_or_in_another_thread_gets_a_new_run(store, monkeypatch):
    monkeypatch.setattr(lifecycle.LIFECYCLE, "after_fit_window", 0.0)
    fit = open_fit_run("sklearn", "LinearRegression")
    fit.finish("FINISHED")
    other: list = []
    thread = threading.Thread(target=lambda: (al.log_metric("elsewhere", 1.0), other.append(al.active_run())))
    thread.start()
    thread.join()
    assert other[0] is not None and other[0].id != fit.run.id
    other[0].end()
    al.log_metric("late", 1.0)
    late = al.active_run()
    assert late is not None and late.id != fit.run.id
    late.end()
    assert "late" not in store.get_run(fit.run.id).metrics


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no per-thread signal masks here")
def test_a_background_thread_blocks_sigterm_and_leaves_the_caller_alone():
    masks: list = []

    def background() -> None:
        process.block_signals_in_this_thread()
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert signal.SIGTERM in masks[0]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
