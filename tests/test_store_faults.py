"""The store under races, locks, faults and tampering: gc against live writers, orphaned
rows, a store deleted mid-run, abandoned uploads, locked and read-only stores, tampered
artifact records and bad arguments. Real processes and real SQLite throughout."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

import pytest

import autolog as al
from autolog.errors import (
    ArtifactNotFound,
    AutologError,
    CorruptArtifact,
    InvalidArgument,
    InvalidFilter,
    InvalidPath,
    InvalidType,
    ReadOnlyStore,
    StoreNotFound,
)
from autolog.store.housekeeping import RUN_TABLES
from autolog.store.sqlite import SQLiteStore

QUIET = {"capture_env": False, "log_system_metrics": False}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    return env


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolog.cli.commands", *argv], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), stdin=subprocess.DEVNULL)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- 1: gc against writers in threads and processes ---------------------------------------
# Each step logs some content into a run that is then deleted (its blob becomes garbage),
# and logs the same content into a kept run: the second write dedupes onto a blob that gc
# is about to collect, the race that lost a third of the artifacts before.
def content(tag: str, i: int) -> bytes:
    return (f"content {tag}-{i} " * 200).encode()


def write_steps(store, tag: str, n: int, folder: str) -> None:
    local = os.path.join(folder, f"local-{tag}.bin")
    for i in range(n):
        data = content(tag, i)
        gone = store.create_run("race", f"gone-{tag}-{i}")
        store.log_artifact_bytes(gone.id, data, f"{tag}-{i}.bin")
        store.end_run(gone.id, "FINISHED")
        store.delete_run(gone.id)
        kept = store.create_run("race", f"kept-{tag}-{i}")
        if i % 2:
            with open(local, "wb") as fh:
                fh.write(data)
            store.log_artifact(kept.id, local, f"{tag}-{i}.bin")
        else:
            store.log_artifact_bytes(kept.id, data, f"{tag}-{i}.bin")
        store.end_run(kept.id, "FINISHED")


# The same steps run in this process's threads and in the child processes.
ARTIFACT_WRITER = "\n".join([
    "import os, sys", "from autolog.store.sqlite import SQLiteStore", inspect.getsource(content), inspect.getsource(write_steps),
    "write_steps(SQLiteStore(sys.argv[1]), sys.argv[2], int(sys.argv[4]), sys.argv[3])",
])


def _thread_writer(store: SQLiteStore, tag: str, n: int, folder: str, errors: list) -> None:
    try:
        write_steps(store, tag, n, folder)
    except Exception as exc:  # reported by the test, not swallowed
        errors.append(exc)


def test_gc_in_a_loop_never_loses_artifacts_of_threads_and_processes(store, tmp_path):
    n = 100
    procs = [subprocess.Popen([sys.executable, "-c", ARTIFACT_WRITER, store.root, tag, str(tmp_path), str(n)],
                              env=child_env(), stderr=subprocess.PIPE, text=True) for tag in ("p1", "p2")]
    errors: list = []
    threads = [threading.Thread(target=_thread_writer, args=(store, tag, n, str(tmp_path), errors)) for tag in ("t1", "t2")]
    for t in threads:
        t.start()
    passes = collected = 0
    gc_store = SQLiteStore(store.root)  # its own connections, as another process's gc would have
    while any(t.is_alive() for t in threads) or any(p.poll() is None for p in procs):
        collected += gc_store.gc()["blobs"]
        passes += 1
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
        p.stderr.close()
    assert not errors, errors
    gc_store.gc()
    runs = store.search_runs(experiment="race")
    assert sorted(r.name for r in runs) == sorted(f"kept-{tag}-{i}" for tag in ("p1", "p2", "t1", "t2") for i in range(n))
    checked = 0
    for run in runs:
        (art,) = store.list_artifacts(run.id)
        out = store.download_artifacts(run.id, dst=str(tmp_path / "dl" / run.id))
        data = open(os.path.join(out, art.path), "rb").read()
        tag, i = art.path[:-4].split("-")
        assert data == content(tag, int(i)) and hashlib.sha256(data).hexdigest() == art.sha256
        checked += 1
    assert checked == 4 * n and passes > 1
    print(f"gc passes {passes}, blobs collected {collected}, artifacts verified {checked}")


# -- 4: deleting a live run; rows of runs that no longer exist -----------------------------
LIVE_LOGGER = """
import os, sys, time
import autolog as al
al.set_store(sys.argv[1])
run = al.start_run(name="live", capture_env=False, log_system_metrics=False)
print(run.id, flush=True)
i = 0
deadline = time.time() + 120
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    al.log_metric("x", float(i), step=i)
    i += 1
    time.sleep(0.001)
al.set_tag("late", "1")
al.end_run()
"""


def test_rm_refuses_a_live_run_and_gc_collects_rows_written_after(store, tmp_path):
    stop = tmp_path / "stop"
    child = subprocess.Popen([sys.executable, "-c", LIVE_LOGGER, store.root, str(stop)], env=child_env(AUTOLOG_FLUSH_INTERVAL="0.05"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = child.stdout.readline().strip()
        wait_for(lambda: store.count_points(run_id) > 0, what="first points")
        refused = cli("--store", store.root, "rm", run_id[:8])
        assert refused.returncode == 2 and "still running" in refused.stderr and "--force" in refused.stderr
        assert store.get_run(run_id).lifecycle == "active"
        forced = cli("--store", store.root, "rm", "--force", run_id[:8])
        assert forced.returncode == 0, forced.stderr
        assert store.gc()["runs"] == 1
        conn = sqlite3.connect(store.db_path)
        wait_for(lambda: conn.execute("SELECT COUNT(*) FROM metric_chunks WHERE run_id = ?", (run_id,)).fetchone()[0] > 0,
                 what="points written after the run was collected")
    finally:
        stop.touch()
        _out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    orphans = sum(conn.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id = ?", (run_id,)).fetchone()[0] for t in RUN_TABLES)
    assert orphans > 0
    result = store.gc()
    assert result["runs"] == 0 and result["rows"] == orphans
    assert sum(conn.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id = ?", (run_id,)).fetchone()[0] for t in RUN_TABLES) == 0
    conn.close()
    print(f"orphan rows collected: {orphans}")


# -- 5: the store vanishes mid-run ----------------------------------------------------------
def test_store_deleted_mid_run_warns_once_naming_the_path(tmp_path):
    root = str(tmp_path / "doomed-store")
    stop = tmp_path / "stop"
    child = subprocess.Popen([sys.executable, "-c", LIVE_LOGGER, root, str(stop)], env=child_env(AUTOLOG_FLUSH_INTERVAL="0.05"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = child.stdout.readline().strip()
        reader = SQLiteStore(root)
        wait_for(lambda: reader.count_points(run_id) > 0, what="first points")
        reader.close()
        shutil.rmtree(root)
        # Keep logging past several once-a-second checks, then stop.
        time.sleep(3.0)
    finally:
        stop.touch()
        _out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    db_path = os.path.join(root, "runs.db")
    warned = [line for line in err.splitlines() if "was deleted or replaced" in line and db_path in line]
    assert len(warned) == 1, err


# -- 7: half-written uploads ---------------------------------------------------------------
def test_gc_reclaims_uploads_abandoned_for_over_an_hour(store):
    os.makedirs(store.blobs.root, exist_ok=True)
    old = os.path.join(store.blobs.root, ".incoming-killed")
    fresh = os.path.join(store.blobs.root, ".incoming-live")
    for path in (old, fresh):
        with open(path, "wb") as fh:
            fh.write(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert store.gc(dry_run=True)["incoming"] == 1 and os.path.exists(old)
    result = store.gc()
    assert result["incoming"] == 1 and result["bytes"] == 1000
    assert not os.path.exists(old) and os.path.exists(fresh)


FILE_SIZE_LIMIT = """
import os, resource, signal, sys
import autolog as al
al.set_store(sys.argv[1])
run = al.start_run(name="fsize", capture_env=False, log_system_metrics=False)
al.flush()
big = os.path.join(sys.argv[2], "big.bin")
with open(big, "wb") as fh:
    fh.write(os.urandom(3 << 20))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
for name, call in [("log_text", lambda: al.log_text("y" * (2 << 20), "big.txt")),
                   ("log_dict", lambda: al.log_dict({"k": "z" * (2 << 20)}, "big.json")),
                   ("log_artifact", lambda: al.log_artifact(big))]:
    try:
        call()
        print(name, "stored")
    except OSError as exc:
        print(name, "failed", exc.errno)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
al.end_run()
"""


def test_write_errors_remove_their_temp_files(store, tmp_path):
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT, store.root, str(tmp_path)], env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["log_text failed 27", "log_dict failed 27", "log_artifact failed 27"], proc.stdout
    assert [n for n in os.listdir(store.blobs.root) if n.startswith(".incoming-")] == []


# -- 11: reads never wait for writers ---------------------------------------------------------
HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def hold_lock(db_path: str, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, db_path, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


SEARCH = """
import sys
import autolog as al
store = al.open_store(sys.argv[1])
print(len(store.search_runs(filter="params.p = '1'")), store.get_run(sys.argv[2]).name)
"""


def test_reads_work_while_another_process_holds_the_write_lock(store):
    run = store.create_run("e", "readable")
    store.log_params(run.id, {"p": 1})
    store.end_run(run.id, "FINISHED")
    store.close()
    holder = hold_lock(store.db_path, 120)
    try:
        started = time.monotonic()
        ls = cli("--store", store.root, "ls", "--json", timeout=30)
        assert ls.returncode == 0, ls.stderr
        assert [r["name"] for r in json.loads(ls.stdout)] == ["readable"]
        show = cli("--store", store.root, "show", run.id[:8], timeout=30)
        assert show.returncode == 0 and "readable" in show.stdout, show.stderr
        search = subprocess.run([sys.executable, "-c", SEARCH, store.root, run.id], capture_output=True, text=True, timeout=30, env=child_env())
        assert search.returncode == 0 and search.stdout.split() == ["1", "readable"], search.stderr
        print(f"ls + show + search under a held write lock: {time.monotonic() - started:.2f} s")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_opening_a_new_store_waits_for_a_lock_instead_of_failing(tmp_path):
    # The race behind concurrent processes creating one store: switching a new file to WAL
    # while another process holds the lock failed at once with "database is locked".
    root = tmp_path / "new-store"
    root.mkdir()
    db = str(root / "runs.db")
    sqlite3.connect(db).close()  # an empty file, still in rollback-journal mode
    holder = hold_lock(db, 2)
    try:
        opened = SQLiteStore(str(root))
        assert opened.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert opened.list_experiments() == []
    finally:
        holder.wait(timeout=60)
        holder.stdout.close()


# -- 12: read-only stores ---------------------------------------------------------------------
READ_ONLY_CHILD = """
import json, os, sys
import autolog as al
from autolog.errors import ReadOnlyStore
root, run_id, dst = sys.argv[1], sys.argv[2], sys.argv[3]
store = al.set_store(root)
out = {"read_only": store.read_only, "names": [r.name for r in store.search_runs()],
       "points": [p.value for p in store.metric_history(run_id, "loss")]}
store.download_artifacts(run_id, dst=dst)
out["artifact"] = open(os.path.join(dst, "notes.txt")).read()
for name, call in [("create_run", lambda: store.create_run("e", "nope")),
                   ("start_run", lambda: al.start_run(name="nope", capture_env=False, log_system_metrics=False))]:
    try:
        call()
        out[name] = "written"
    except ReadOnlyStore as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""


def run_on_read_only_mount(folder: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``argv`` with ``folder`` bind-mounted read-only (root ignores file modes), or with modes when not root."""
    if os.geteuid() != 0:
        for base, _dirs, files in os.walk(folder):
            for name in files:
                os.chmod(os.path.join(base, name), 0o444)
            os.chmod(base, 0o555)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=child_env())
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a read-only folder as root")
    import shlex

    script = f"mount --bind -o ro {shlex.quote(folder)} {shlex.quote(folder)} && exec {shlex.join(argv)}"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120, env=child_env())
    if "mount" in proc.stderr and proc.returncode != 0 and "autolog" not in proc.stderr:
        pytest.skip(f"cannot mount read-only here: {proc.stderr.strip()}")
    return proc


def test_read_only_store_reads_and_refuses_writes(tmp_path):
    root = str(tmp_path / "ro-store")
    with al.open_store(root) as store:
        run = store.create_run("e", "frozen")
        store.write_points([(run.id, "loss", i, 1.0 / (i + 1), time.time()) for i in range(3)])
        store.log_artifact_bytes(run.id, b"kept", "notes.txt")
        store.end_run(run.id, "FINISHED")
    assert not os.path.exists(os.path.join(root, "runs.db-wal"))  # closed cleanly: no -shm to reuse
    dst = tmp_path / "dl"
    dst.mkdir()
    proc = run_on_read_only_mount(root, [sys.executable, "-c", READ_ONLY_CHILD, root, run.id, str(dst)])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["read_only"] is True and out["names"] == ["frozen"] and out["points"] == [1.0, 0.5, 1 / 3]
    assert out["artifact"] == "kept"
    for name in ("create_run", "start_run"):
        assert "read-only" in out[name] and root in out[name], out
    ls = run_on_read_only_mount(root, [sys.executable, "-m", "autolog.cli.commands", "--store", root, "ls", "--json"])
    assert ls.returncode == 0 and [r["name"] for r in json.loads(ls.stdout)] == ["frozen"], ls.stderr
    new = os.path.join(root, "new-store")  # creating a store inside the read-only folder: a clear error
    made = run_on_read_only_mount(root, [sys.executable, "-c", f"import autolog as al; al.open_store({new!r})"])
    assert made.returncode == 1 and "ReadOnlyStore" in made.stderr and new in made.stderr, made.stderr


def test_read_command_on_a_folder_without_a_store_exits_1_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo-store"
    for argv in (["ls"], ["show", "abc"], ["gc", "-y"], ["experiments"]):
        proc = cli("--store", str(missing), *argv)
        assert proc.returncode == 1, (argv, proc.stderr)
        assert "no autolog store" in proc.stderr and str(missing) in proc.stderr and "Traceback" not in proc.stderr
    assert not missing.exists()
    with pytest.raises(StoreNotFound, match="no autolog store"):
        al.open_store(str(missing), create=False)


# -- 14: reading checks what was stored -------------------------------------------------------
def test_tampered_artifact_records_are_refused(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the store")
    run = store.create_run("e", "tampered")
    store.log_artifact_bytes(run.id, b"fine", "ok.txt")
    store.end_run(run.id, "FINISHED")
    good_sha = store.list_artifacts(run.id)[0].sha256
    dst = tmp_path / "dst"
    for path, sha in [("../../escaped.txt", good_sha), ("ok2.txt", str(secret)), ("a/\x1bb", good_sha), ("/abs.txt", good_sha)]:
        with store.transaction() as tx:
            tx.execute("DELETE FROM artifacts WHERE run_id = ? AND path != 'ok.txt'", (run.id,))
            tx.execute("INSERT INTO artifacts VALUES (?, ?, ?, 4, 0)", (run.id, path, sha))
        with pytest.raises(CorruptArtifact) as info:
            store.download_artifacts(run.id, dst=str(dst))
        assert run.id in str(info.value) and repr(path) in str(info.value)
        with pytest.raises(CorruptArtifact):
            store.list_artifacts(run.id)
        if path == "ok2.txt":  # the digest is a path: no file may be read through it
            with pytest.raises(CorruptArtifact, match="digest"):
                store.artifact_file(run.id, path)
        assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
        assert not dst.exists() or not any(dst.rglob("*"))  # nothing written before the refusal
    shown = cli("--store", store.root, "show", run.id)
    assert shown.returncode == 2 and run.id in shown.stderr and "Traceback" not in shown.stderr


def test_sync_refuses_a_tampered_digest(store, tmp_path):
    pytest.importorskip("mlflow", reason="pip install 'autolog[mlflow]'")
    secret = tmp_path / "secret.txt"
    secret.write_text("never upload me")
    run = store.create_run("e", "tampered")
    store.log_artifact_bytes(run.id, b"fine", "ok.txt")
    store.end_run(run.id, "FINISHED")
    with store.transaction() as tx:
        tx.execute("UPDATE artifacts SET sha256 = ? WHERE run_id = ?", (str(secret), run.id))
    proc = cli("--store", store.root, "sync", "--to", f"sqlite:///{tmp_path / 'mlflow.db'}", timeout=300)
    assert proc.returncode != 0
    assert run.id[:8] in proc.stderr and "ok.txt" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    uploaded = [p for p in tmp_path.rglob("*") if p.is_file() and p != secret and p.read_bytes() == secret.read_bytes()]
    assert uploaded == []


# -- 18: bad arguments, clashes, lost blobs -----------------------------------------------------
def test_bad_store_arguments_raise_autolog_errors_naming_them(store, tmp_path):
    run = store.create_run("e", "r")
    for kwargs, error, word in [({"order_by": 1}, InvalidFilter, "order_by"), ({"max_results": -1}, InvalidArgument, "max_results"),
                                ({"max_results": "5"}, InvalidType, "max_results"), ({"lifecycle": "x"}, InvalidArgument, "lifecycle"),
                                ({"filter": 3}, InvalidFilter, "filter")]:
        with pytest.raises(error, match=word):
            store.search_runs(**kwargs)
    with pytest.raises(InvalidType, match="key"):
        store.metric_history(run.id, None)
    with pytest.raises(AutologError, match="NUL"):
        al.open_store("x\0y")
    with pytest.raises(InvalidType, match="None"):
        al.set_store(None)
    with pytest.raises(InvalidPath, match="control"):
        store.log_artifact_bytes(run.id, b"x", "a\x7fb.txt")
    store.log_artifact_bytes(run.id, b"{}", "d/x.json")
    with pytest.raises(InvalidPath, match="clashes"):
        store.log_artifact_bytes(run.id, b"x", "d")
    store.log_artifact_bytes(run.id, b"x", "e")
    with pytest.raises(InvalidPath, match="clashes"):
        store.log_artifact_bytes(run.id, b"x", "e/y.txt")
    store.log_artifact_bytes(run.id, b"again", "d/x.json")  # the same path again replaces it
    store.log_artifact_bytes(run.id, b"x", "d.txt")  # a sibling whose name starts like the folder
    assert [a.path for a in store.list_artifacts(run.id)] == ["d.txt", "d/x.json", "e"]
    os.chmod(store.artifact_file(run.id, "e"), 0o644)
    os.unlink(store.artifact_file(run.id, "e"))
    with pytest.raises(ArtifactNotFound, match="'e'") as info:
        store.artifact_file(run.id, "e")
    assert run.id in str(info.value)
    with pytest.raises(ArtifactNotFound, match="'e'"):
        store.download_artifacts(run.id, "e", str(tmp_path / "dl"))
    store.end_run(run.id, "FINISHED")


def test_bad_api_arguments_raise_autolog_errors_naming_them(store, tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    with al.start_run(name="bad", **QUIET):
        for call, word in [(lambda: al.log_param(["a"], 1), "param key"), (lambda: al.flush("x"), "timeout"),
                           (lambda: al.log_artifact(f, "\ud800"), "artifact_path"), (lambda: al.log_dict({1: 2, "1": 3}, "d.json"), "data")]:
            with pytest.raises(AutologError, match=word):
                call()


def test_log_artifacts_skips_dangling_symlinks_and_fifos_with_one_warning(store, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("b")
    os.symlink(tmp_path / "nowhere", folder / "dangling")
    os.mkfifo(folder / "pipe")
    with al.start_run(name="dir", **QUIET) as run:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stored = al.log_artifacts(folder)
    assert sorted(a.path for a in stored) == ["a.txt", "sub/b.txt"]
    assert sorted(a.path for a in store.list_artifacts(run.id)) == ["a.txt", "sub/b.txt"]
    mine = [w for w in caught if "log_artifacts skipped" in str(w.message)]
    assert len(mine) == 1 and "dangling" in str(mine[0].message) and "pipe" in str(mine[0].message)


# -- connections --------------------------------------------------------------------------------
def test_close_closes_every_threads_connection_and_store_is_a_context_manager(tmp_path):
    root = str(tmp_path / "ctx")
    with al.open_store(root) as store:
        store.create_run("e", "r")
        conns = []
        threads = [threading.Thread(target=lambda: conns.append(store.connection()) or store.list_experiments()) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conns.append(store.connection())
        assert len({id(c) for c in conns}) == 4
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    assert [e.name for e in store.list_experiments()] == ["e"]  # still usable: it reconnects
    store.close()


def test_read_only_error_is_an_autolog_error():
    assert issubclass(ReadOnlyStore, AutologError) and issubclass(ReadOnlyStore, PermissionError)
