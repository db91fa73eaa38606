"""The store seen through TensorBoard: incremental event-file export and ``autolog ui``.

Each autolog run becomes one TensorBoard run folder ``<run name>-<short id>`` holding
every metric history as scalars (the store's steps and wall times; values as float32,
the precision TensorBoard's fast loader reads) and an hparams session (params, start
time, final status), so TensorBoard's HPARAMS table and parallel-coordinates views
compare the runs by their final metrics.

TensorBoard's fast loader keeps one value per step and tag (the last one written), so a
metric logged twice at the same step (k-fold loops, resumed runs) shows its last value
there, while ``--load_fast=false`` and the store itself keep both.

Exports are incremental. A small SQLite file in the logdir remembers, per run, the
folder name, the params and end status already written, and per metric how many points
were written and up to which step; a later export appends only the new points, in a new
event file, so TensorBoard never sees a point twice. When something cannot be appended
(params added after the first export, points logged at an earlier step, a run reopened)
the run's folder is rewritten. Event files are written under a temporary name and
renamed, and a run's state commits after its file is in place; a file left by a crash
in between is recognised by its sequence number and removed on the next export.

Only the ``tensorboard`` package is needed, not TensorFlow (see :mod:`.tfevents`); it is
imported inside functions so that ``autolog --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from typing import TYPE_CHECKING, Any

from autolog.errors import RunNotFound
from autolog.sinks import tb_hparams, tfevents
from autolog.sinks.tfevents import END_STATUS

if TYPE_CHECKING:
    from autolog.store.base import Run
    from autolog.store.sqlite import SQLiteStore

STATE_FILE = ".autolog-export.db"
EXPERIMENT_STATE = ".autolog-hparams.json"  # the experiment record last written into the logdir root
DEFAULT_PORT = 6006
RELOAD_SECONDS = 15.0
SCALAR_SAMPLES = 10_000  # points per curve TensorBoard keeps; "0" would mean none, not all
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]+")


def run_dir_name(run: Run) -> str:
    """The TensorBoard run name of an autolog run: ``<run name>-<first 8 id chars>``, file-system safe."""
    name = _UNSAFE.sub("_", run.name).strip("._") or "run"
    return f"{name[:80]}-{run.id[:8]}"


class _State:
    """The export state in ``<logdir>/.autolog-export.db``: one row per exported run."""

    def __init__(self, logdir: str) -> None:
        self.conn = sqlite3.connect(os.path.join(logdir, STATE_FILE), timeout=60.0, isolation_level=None)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, dir TEXT NOT NULL, params TEXT NOT NULL,"
            " end_status TEXT, seq INTEGER NOT NULL, total INTEGER NOT NULL, keys TEXT NOT NULL)")

    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT dir, params, end_status, seq, total, keys FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return {"dir": row[0], "params": json.loads(row[1]), "end_status": row[2], "seq": row[3], "total": row[4], "keys": json.loads(row[5])}

    def put(self, run_id: str, row: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, row["dir"], json.dumps(row["params"], sort_keys=True), row["end_status"], row["seq"], row["total"],
             json.dumps(row["keys"], sort_keys=True)))

    def run_ids(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT run_id, dir FROM runs").fetchall())


def _new_points(history: list[Any], prev: list[int] | None) -> list[Any] | None:
    """The points of ``history`` not yet exported, or None when they cannot simply be appended.

    ``prev`` is ``[count, max_step, count_below_max_step]`` of the last export. The history
    is sorted by step and keeps log order within a step, so when no new point has a step
    below ``max_step`` the first ``count`` points are exactly the exported ones.
    """
    if prev is None:
        return history
    count, max_step, below = prev
    if len(history) < count or sum(1 for p in history if p.step < max_step) != below:
        return None
    return history[count:]


def _key_state(history: list[Any]) -> list[int]:
    if not history:
        return [0, 0, 0]
    top = history[-1].step
    return [len(history), top, sum(1 for p in history if p.step < top)]


def _export_run(tb: Any, store: SQLiteStore, state: _State, logdir: str, run: Run, hparams: dict[str, Any]) -> tuple[str, int]:
    """Bring one run's folder up to date; return (what happened, points written).

    ``hparams`` are the session's values (see :mod:`.tb_hparams`); when they change (a
    param became a column of the experiment, a run gained a param) the folder is rewritten.
    """
    row = state.get(run.id)
    created = row is None
    name = run_dir_name(run)
    folder = os.path.join(logdir, name)
    end_status = run.status if run.status in END_STATUS else None
    count = getattr(store, "count_points", None)
    total = count(run.id) if count is not None else None
    seq = row["seq"] if row is not None else 0
    for file_seq, path in tfevents.our_event_files(folder).items():
        if file_seq > seq:  # written by an export that crashed before committing its state
            os.remove(path)
    # A renamed run is written afresh so that its hparams session carries the new name too.
    rewrite = (row is None or row["dir"] != name or row["params"] != hparams
               or (row["end_status"] is not None and row["end_status"] != end_status))
    if row is not None and row["dir"] != name:
        shutil.rmtree(os.path.join(logdir, row["dir"]), ignore_errors=True)
    if not rewrite and row is not None and total == row["total"] and end_status == row["end_status"]:
        return "unchanged", 0
    histories = {key: store.metric_history(run.id, key) for key in store.metric_keys(run.id)}
    fresh: dict[str, list[Any]] = {}
    if not rewrite and row is not None:
        for key, history in histories.items():
            new = _new_points(history, row["keys"].get(key))
            if new is None:
                rewrite = True
                break
            fresh[key] = new
    records = []
    if rewrite:
        for path in tfevents.our_event_files(folder).values():
            os.remove(path)
        fresh = histories
        row = {"dir": name, "params": hparams, "end_status": None, "keys": {}}
        records.append(tfevents.session_start_record(tb, hparams, name, run.start_time / 1000.0))
    assert row is not None  # the stored state, or a fresh one when rewritten
    points = 0
    for key, new in fresh.items():
        records.extend(tfevents.scalar_records(tb, key, new, first=key not in row["keys"]))
        points += len(new)
    if end_status is not None and row["end_status"] is None:
        records.append(tfevents.session_end_record(tb, run.status, (run.end_time or run.start_time) / 1000.0))
    if records:
        seq += 1
        tfevents.write_event_file(tb, folder, seq, records)
    row["keys"] = {key: _key_state(history) for key, history in histories.items()}
    row.update(seq=seq, end_status=end_status, total=sum(k[0] for k in row["keys"].values()))
    state.put(run.id, row)
    outcome = "new" if created else "rewritten" if rewrite else "updated" if records else "unchanged"
    return outcome, points


def _write_experiment(tb: Any, logdir: str, config: tb_hparams.HParamsConfig, runs: list[Any]) -> None:
    """Write the hparams experiment record into the logdir's root run when it changed.

    A changed record goes into a new file and the old one is removed: TensorBoard keeps
    the first metadata it read per tag, so a running TensorBoard shows the new columns
    after a restart (``autolog ui`` exports before it starts TensorBoard).
    """
    state_path = os.path.join(logdir, EXPERIMENT_STATE)
    try:
        with open(state_path, encoding="utf-8") as fh:
            previous = json.load(fh)
    except (OSError, ValueError):
        previous = {"seq": 0, "config": None}
    wanted = config.as_json()
    existing = tfevents.our_event_files(logdir)
    if previous.get("config") == wanted and previous.get("seq") in existing:
        return
    seq = max([previous.get("seq") or 0, *existing]) + 1
    tfevents.write_event_file(tb, logdir, seq, [tb_hparams.experiment_record(tb, config, runs, time.time())])
    tmp = state_path + f".{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"seq": seq, "config": wanted}, fh)
    os.replace(tmp, state_path)
    for old_seq, path in existing.items():
        if old_seq != seq:
            os.remove(path)


def _is_gone(store: SQLiteStore, run_id: str) -> bool:
    try:
        return store.get_run(run_id).lifecycle != "active"
    except RunNotFound:
        return True


def export_to_tensorboard(store: SQLiteStore, logdir: str | os.PathLike[str], experiment: str | None = None) -> dict[str, Any]:
    """Write (incrementally) TensorBoard event files for the store's runs into ``logdir``.

    One folder per run, named ``<run name>-<short id>``, with every metric history as
    scalars at the store's steps and wall times, and the params plus the final status as
    an hparams session. Only what changed since the previous export into the same
    ``logdir`` is written: an unchanged run writes nothing, a grown one one new event
    file with the new points. Folders of runs deleted from the store are removed.

    Args:
        store: the run store to read.
        logdir: the TensorBoard log folder (created when missing); it also holds the
            export state file ``.autolog-export.db``.
        experiment: only the runs of this experiment (default: every active run).

    Returns:
        Counts: ``runs`` (in scope), ``written`` (runs that got a new file), of these
        ``new`` and ``rewritten`` ones, ``unchanged``, ``removed`` (folders of deleted
        runs), ``points`` (scalar points written),
        ``logdir`` and ``seconds``.

    Raises:
        MissingDependency: the tensorboard package is not installed.
        RunNotFound: ``experiment`` does not exist.
    """
    started = time.perf_counter()
    tb = tfevents.load()
    logdir = os.path.abspath(os.fspath(logdir))
    os.makedirs(logdir, exist_ok=True)
    if experiment is not None:
        store.get_experiment(experiment)  # a typo should fail loudly, not export nothing
    runs = store.search_runs(experiment=experiment)
    counts: dict[str, Any] = {"runs": len(runs), "written": 0, "new": 0, "rewritten": 0, "unchanged": 0, "removed": 0, "points": 0}
    config = tb_hparams.build(runs)
    _write_experiment(tb, logdir, config, runs)
    names = {r.id: run_dir_name(r) for r in runs}
    counts["hparams"] = {**config.as_json(), "lacking": {k: [names[i] for i in ids] for k, ids in config.lacking.items()}}
    state = _State(logdir)
    try:
        for run in runs:
            # One write lock per run: a second exporter on the same logdir waits instead of
            # appending the same points again, and each run's state commits with its file.
            state.conn.execute("BEGIN IMMEDIATE")
            try:
                outcome, points = _export_run(tb, store, state, logdir, run, tb_hparams.session_hparams(run, config))
            except BaseException:
                state.conn.execute("ROLLBACK")
                raise
            state.conn.execute("COMMIT")
            counts["points"] += points
            counts["unchanged" if outcome == "unchanged" else "written"] += 1
            if outcome in ("new", "rewritten"):
                counts[outcome] += 1
        in_scope = {r.id for r in runs}
        for run_id, folder in state.run_ids().items():
            if run_id not in in_scope and _is_gone(store, run_id):
                shutil.rmtree(os.path.join(logdir, folder), ignore_errors=True)
                state.conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                counts["removed"] += 1
    finally:
        state.conn.close()
    counts.update(logdir=logdir, seconds=round(time.perf_counter() - started, 3))
    return counts


# -- the ``autolog ui`` command ------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``autolog ui``."""
    parser.add_argument("--experiment", "-e", help="only this experiment's runs (default: all)")
    parser.add_argument("--port", "-p", type=int, default=None,
                        help=f"TensorBoard port on 127.0.0.1 (default: {DEFAULT_PORT}, or a free one when taken)")
    parser.add_argument("--logdir", help="where the event files go (default: <store>/tensorboard/<experiment or all>)")
    parser.add_argument("--export-only", metavar="DIR", help="write the event files into DIR and exit; no server")
    parser.add_argument("--reload", type=float, default=RELOAD_SECONDS, metavar="SECONDS",
                        help=f"re-export new points this often while TensorBoard runs (default {RELOAD_SECONDS:g}; 0: never)")


def default_logdir(store: SQLiteStore, experiment: str | None) -> str:
    """Where ``autolog ui`` exports to when no ``--logdir`` is given: inside the store folder."""
    part = "all" if experiment is None else "experiment-" + (_UNSAFE.sub("_", experiment).strip("._") or "_")
    return os.path.join(store.root, "tensorboard", part)


def _port_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_tensorboard(logdir: str, port: int, log_path: str | None = None) -> subprocess.Popen:
    """Start TensorBoard over ``logdir`` on ``127.0.0.1:port`` and wait until it answers.

    Up to ``SCALAR_SAMPLES`` points per curve are kept (TensorBoard thins to 1,000 by
    default, which hides spikes in long histories users compare runs by).
    TensorBoard's own output goes to ``log_path`` (default ``<logdir>/.tensorboard.log``).

    Raises:
        RuntimeError: TensorBoard exited or did not answer within 90 seconds; the message
            holds the end of its log.
    """
    log_path = log_path or os.path.join(logdir, ".tensorboard.log")
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
           "--port", str(port), "--samples_per_plugin", f"scalars={SCALAR_SAMPLES}", "--reload_interval", "5"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    from autolog.sinks.serving import wait_until_serving

    return wait_until_serving(proc, f"http://127.0.0.1:{port}/data/logdir", 90, log_path,
                              f"TensorBoard on 127.0.0.1:{port}", stop_tensorboard)


def stop_tensorboard(proc: subprocess.Popen) -> None:
    """Stop a TensorBoard started by :func:`start_tensorboard` (terminate, then kill)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _summary(counts: dict[str, Any]) -> str:
    text = (f"exported {counts['runs']} runs to {counts['logdir']}: {counts['written']} written"
            f" ({counts['new']} new, {counts['rewritten']} rewritten, {counts['points']} points), {counts['unchanged']} unchanged,"
            f" {counts['removed']} removed in {counts['seconds']:.1f}s")
    hparams = counts.get("hparams") or {}
    if hparams.get("metrics"):
        text += f"\nHPARAMS axes: {', '.join(hparams['metrics'])}; columns: {', '.join(hparams['params']) or 'none (no param varies)'}"
    for key, lacking in (hparams.get("lacking") or {}).items():
        shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
        effect = "the parallel-coordinates view leaves them out" if key in hparams["metrics"] else "so it is no HPARAMS axis"
        text += f"\n{key}: {len(lacking)} runs lack it, {effect} ({shown})"
    return text


def run(args: argparse.Namespace, store: SQLiteStore) -> int:
    """``autolog ui``: export the store, then serve it with TensorBoard until Ctrl-C."""
    if args.export_only:
        print(_summary(export_to_tensorboard(store, args.export_only, args.experiment)))
        return 0
    logdir = args.logdir or default_logdir(store, args.experiment)
    print(_summary(export_to_tensorboard(store, logdir, args.experiment)), flush=True)
    port = args.port
    if port is None:
        port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port()
    proc = start_tensorboard(logdir, port)
    print(f"TensorBoard at http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # A plain `kill` must not leave TensorBoard running without us: unwind through finally.
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        while proc.poll() is None:
            try:
                proc.wait(args.reload if args.reload > 0 else None)
            except subprocess.TimeoutExpired:
                # Live runs keep growing: append their new points; TensorBoard picks them up.
                try:
                    export_to_tensorboard(store, logdir, args.experiment)
                except Exception as exc:  # a busy or half-written store must not take the viewer down
                    print(f"autolog ui: re-export failed, will retry: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_tensorboard(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"autolog ui: TensorBoard exited with code {proc.returncode}; its log: {os.path.join(logdir, '.tensorboard.log')}",
          file=sys.stderr)
    return 1
