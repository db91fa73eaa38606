"""``python -m benchmarks store``: how fast a big run store answers searches.

A store of R runs (20,000 by default and in ``--full``), each with 10 params and 5
metrics × 100 steps, written through the store's own API in a fresh interpreter; then,
in that interpreter, the median of several calls of: a full ``search_runs`` (every run
with its params and latest metrics), a filtered one (~10 % of the runs match), the top 10
by a metric, one ``metric_history``, and the ``autolog ls`` command (a fresh process, as a
user runs it). The peer row is MLflow's sqlite store filled with the same data at a
smaller N (its writes take ~0.1 s per run here), with the time per run shown so the two
scales compare.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    BenchError,
    Column,
    Row,
    Table,
    child_environ,
    clock,
    failed_row,
    installed,
    isolated,
    median,
    mode,
    pick,
    version_of,
)

NAME = "store"
DESCRIPTION = "search_runs / top-10 / metric_history / `autolog ls` on a store of 20,000 runs; MLflow sqlite peer"
ORDER = 25

PARAMS, METRICS, STEPS = 10, 5, 100
FILTER = "metrics.m0 < 0.1 and params.p1 != 'x'"
ORDER_BY = ["metrics.m1 ASC"]


def _data(run: int, rng: random.Random) -> tuple[dict[str, str], dict[str, list[float]]]:
    params = {f"p{i}": f"v{rng.randrange(20)}" for i in range(PARAMS)}
    metrics = {f"m{k}": [rng.random() for _ in range(STEPS)] for k in range(METRICS)}
    return params, metrics


def _timed(call: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(reps):
        start = clock()
        result = call()
        times.append(clock() - start)
    return median(times), result


def measure_autolog(runs: int, reps: int = 5) -> dict[str, Any]:
    """Build the store (fresh interpreter) and time its queries; seconds."""
    import autolog

    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        store = autolog.open_store(os.path.join(folder, "store"))
        start = clock()
        ids = []
        for i in range(runs):
            params, metrics = _data(i, rng)
            run = store.create_run("bench", name=f"run-{i}")
            store.log_params(run.id, params)
            now = 1.7e9
            store.write_series([(run.id, key, [(s, v, now + s) for s, v in enumerate(values)]) for key, values in metrics.items()])
            store.end_run(run.id)
            ids.append(run.id)
        build = clock() - start
        result: dict[str, Any] = {"runs": runs, "build_s": build}
        result["full_s"], found = _timed(lambda: store.search_runs(), reps)
        result["full_n"] = len(found)
        result["filtered_s"], found = _timed(lambda: store.search_runs(filter=FILTER), reps)
        result["filtered_n"] = len(found)
        result["top10_s"], found = _timed(lambda: store.search_runs(order_by=ORDER_BY, max_results=10), reps)
        result["top10_n"] = len(found)
        result["history_s"], found = _timed(lambda: store.metric_history(ids[runs // 2], "m2"), reps)
        result["history_n"] = len(found)
        env = child_environ(AUTOLOG_URI=store.root, COLUMNS="160")
        command = [sys.executable, "-m", "autolog.cli.commands", "ls"] if not _cli() else [_cli(), "ls"]

        def ls() -> str:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
            if done.returncode:
                raise RuntimeError(f"autolog ls exited {done.returncode}: {done.stderr[-300:]}")
            return done.stdout

        result["ls_s"], _out = _timed(ls, max(1, reps // 2))
        result["db_bytes"] = sum(os.path.getsize(os.path.join(r, f)) for r, _d, fs in os.walk(store.root) for f in fs)
        store.close()
    return result


def _cli() -> str:
    found = os.path.join(os.path.dirname(sys.executable), "autolog")
    return found if os.path.exists(found) else ""


def measure_mlflow(runs: int, reps: int = 3) -> dict[str, Any]:
    """The same data in MLflow's sqlite store (fresh interpreter); seconds."""
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-store-mlflow-") as folder:
        os.chdir(folder)
        uri = "sqlite:///" + os.path.join(folder, "mlflow.db")
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        exp = client.create_experiment("bench")  # schema migrations: untimed
        start = clock()
        ids = []
        for i in range(runs):
            params, metrics = _data(i, rng)
            run = client.create_run(exp, run_name=f"run-{i}")
            points = [Metric(k, v, 1_700_000_000_000 + s, s) for k, values in metrics.items() for s, v in enumerate(values)]
            client.log_batch(run.info.run_id, metrics=points, params=[Param(k, v) for k, v in params.items()])
            client.set_terminated(run.info.run_id)
            ids.append(run.info.run_id)
        build = clock() - start
        result: dict[str, Any] = {"runs": runs, "build_s": build}
        result["full_s"], found = _timed(lambda: mlflow.search_runs([exp], max_results=100_000), reps)
        result["full_n"] = len(found)
        result["filtered_s"], found = _timed(lambda: mlflow.search_runs([exp], filter_string="metrics.m0 < 0.1 and params.p1 != 'x'",
                                                                       max_results=100_000), reps)
        result["filtered_n"] = len(found)
        result["top10_s"], found = _timed(lambda: mlflow.search_runs([exp], order_by=["metrics.m1 ASC"], max_results=10), reps)
        result["top10_n"] = len(found)
        result["history_s"], found = _timed(lambda: client.get_metric_history(ids[runs // 2], "m2"), reps)
        result["history_n"] = len(found)
        result["db_bytes"] = os.path.getsize(os.path.join(folder, "mlflow.db"))
    return result


def run(args: Any) -> list[Table]:
    """Build each store in a fresh interpreter, time its queries, and tabulate."""
    runs = pick(args, 300, 20_000, 20_000)
    peer_runs = pick(args, 0, 500, 1_000)
    table = Table(NAME, f"store queries: {runs:,} runs × ({PARAMS} params, {METRICS} metrics × {STEPS} steps); medians of repeated calls", [
        Column("runs", "runs"),
        Column("full_ms", "full search ms"),
        Column("filtered_ms", "filtered ms"),
        Column("top10_ms", "top-10 ms"),
        Column("history_ms", "metric_history ms"),
        Column("ls_ms", "autolog ls ms"),
        Column("full_us_run", "full search µs/run"),
        Column("build_ms_run", "write ms/run"),
        Column("bytes_run", "bytes/run"),
    ])
    plan = [("autolog", "measure_autolog", runs, "store.search_runs (Run objects with params and latest metrics)")]
    if peer_runs and installed("mlflow"):
        plan.append((f"mlflow {version_of('mlflow')} sqlite", "measure_mlflow", peer_runs,
                     "mlflow.search_runs (a DataFrame); client.get_metric_history; smaller N: its writes are slow"))
    for label, func, n, note in plan:
        try:
            found = isolated(f"benchmarks.store:{func}", timeout=3600, runs=n)
        except BenchError as exc:
            table.rows.append(failed_row(label, exc))
            continue
        values = {
            "runs": found["runs"],
            "full_ms": found["full_s"] * 1e3,
            "filtered_ms": found["filtered_s"] * 1e3,
            "top10_ms": found["top10_s"] * 1e3,
            "history_ms": found["history_s"] * 1e3,
            "ls_ms": found["ls_s"] * 1e3 if "ls_s" in found else None,
            "full_us_run": found["full_s"] / found["runs"] * 1e6,
            "build_ms_run": found["build_s"] / found["runs"] * 1e3,
            "bytes_run": found["db_bytes"] / found["runs"],
        }
        checks = f"full {found['full_n']:,} runs, filtered {found['filtered_n']:,}, top {found['top10_n']}, history {found['history_n']} points"
        table.rows.append(Row(label, values, f"{note}; {checks}"))
    table.notes += [
        f"filter: {FILTER!r}; top-10: order_by {ORDER_BY}, max_results=10. Each store is built and queried in its own fresh interpreter;",
        "queries are medians of 5 calls (3 for MLflow), `autolog ls` (a fresh process, default 50 rows) of 2.",
        "Targets (BENCHMARKS.md): full search ≤ 0.5 s and top-10 ≤ 20 ms at 20,000 runs; `autolog ls` ≤ 0.3 s.",
    ]
    if mode(args) == "quick":
        table.notes.append("--quick: a small store, no peer.")
    return [table]
