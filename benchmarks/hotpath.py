"""``python -m benchmarks hotpath``: what one ``log_metric(key, value, step=i)`` call costs.

For N calls (200,000 by default) it measures, per logger: (a) the caller's cost in µs
per call — what the training thread pays; (b) sustained durable throughput in points
per second, the logger's final flush/close included; (c) bytes on disk per point (the
store folder's growth / N, SQLite write-ahead logs folded back first; values are
random so compression is honest). Every row runs the same loop, each in a fresh
interpreter. Slow peers stop after a time budget, with a smaller N shown in the table:
per-call figures stay comparable. A second table checks that the per-call cost does not
grow with the run's length.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    BenchError,
    Column,
    Row,
    Table,
    alternate_isolated,
    checkpoint_sqlite,
    clock,
    failed_row,
    folder_size,
    installed,
    isolated,
    median,
    mode,
    pairs,
    pick,
    sqlite_files,
    version_of,
)

NAME = "hotpath"
DESCRIPTION = "log_metric caller cost, durable throughput, bytes/point, cost growth with run length"
ORDER = 10

KEY = "train/loss"
FLOOR = "list.append (floor)"
AUTOLOG = "autolog"


# -- what runs inside each fresh interpreter ----------------------------------------------
def _setup_autolog(folder: str, bound: bool) -> tuple[Callable, Callable, str, Callable]:
    import autolog as al

    store = al.set_store(os.path.join(folder, "store"))
    # Environment capture and the system-metrics sampler are per-run costs, measured elsewhere.
    run = al.start_run(name="hotpath", capture_env=False, log_system_metrics=False)
    log = run.log_metric if bound else al.log_metric

    def finish() -> None:
        al.flush()
        al.end_run()

    return log, finish, store.root, lambda: len(store.metric_history(run.id, KEY))


def _setup_floor(folder: str) -> tuple[Callable, Callable, str, Callable]:
    buffer: list = []
    append = buffer.append

    # The cheapest logger a Python training loop could call: one function call, one append.
    def log_metric(key: str, value: float, step: int | None = None) -> None:
        append((key, value, step))

    return log_metric, lambda: None, "", lambda: len(buffer)


def _setup_mlflow(folder: str, backend: str) -> tuple[Callable, Callable, str, Callable]:
    import mlflow

    os.chdir(folder)  # mlflow puts artifact folders under the working directory
    if backend == "file":
        mlflow.set_tracking_uri("file:" + os.path.join(folder, "mlruns"))
    else:
        mlflow.set_tracking_uri("sqlite:///" + os.path.join(folder, "mlflow.db"))
    mlflow.set_experiment("hotpath")  # creates the schema (minutes of migrations on sqlite) untimed
    mlflow.start_run()
    return mlflow.log_metric, mlflow.end_run, folder, lambda: None


def _setup_tensorboard(folder: str) -> tuple[Callable, Callable, str, Callable]:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(os.path.join(folder, "tb"))

    def log(key: str, value: float, step: int | None = None) -> None:
        writer.add_scalar(key, value, step)

    return log, writer.close, folder, lambda: None


def _setup_dvclive(folder: str, next_step: bool = False) -> tuple[Callable, Callable, str, Callable]:
    from dvclive import Live

    os.chdir(folder)
    live = Live(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False, dvcyaml=None, report=None)

    if next_step:  # the documented per-step pattern: rewrites summary files every step
        def log(key: str, value: float, step: int | None = None) -> None:
            live.log_metric(key, value)
            live.next_step()
    else:
        def log(key: str, value: float, step: int | None = None) -> None:
            live.step = step
            live.log_metric(key, value)

    return log, live.end, folder, lambda: None


SETUPS: dict[str, Callable[..., tuple[Callable, Callable, str, Callable]]] = {
    "autolog": lambda folder: _setup_autolog(folder, bound=False),
    "autolog-run": lambda folder: _setup_autolog(folder, bound=True),
    "floor": _setup_floor,
    "mlflow-file": lambda folder: _setup_mlflow(folder, "file"),
    "mlflow-sqlite": lambda folder: _setup_mlflow(folder, "sqlite"),
    "tensorboard": _setup_tensorboard,
    "dvclive": _setup_dvclive,
    "dvclive-next-step": lambda folder: _setup_dvclive(folder, next_step=True),
}


def measure(variant: str, n: int, budget: float = 1e9, chunk: int = 1000, seed: int = 0, chunk_times: bool = False) -> dict[str, Any]:
    """Log up to ``n`` random points with ``variant`` (stopping after ``budget`` seconds); runs in a child.

    Every variant runs the same loop: ``log(key, values[i], step=i)`` in chunks of
    ``chunk`` calls, the clock read between chunks only.
    """
    rng = random.Random(seed)
    values = [rng.random() for _ in range(n)]
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as folder:
        log, finish, data_dir, count = SETUPS[variant](folder)
        before = _disk(data_dir)
        marks = []
        done = 0
        start = clock()
        for first in range(0, n, chunk):
            last = min(first + chunk, n)
            for i in range(first, last):
                log(KEY, values[i], step=i)
            now = clock()
            marks.append(now)
            done = last
            if now - start > budget:
                break
        loop_s = clock() - start
        finish()
        finish_s = clock() - start - loop_s
        after = _disk(data_dir)
        stored = count()
    result = {"n": done, "loop_s": loop_s, "finish_s": finish_s, "stored": stored,
              "bytes": (after - before) if data_dir else None}
    chunk_us = [(b - a) / chunk * 1e6 for a, b in zip([start, *marks], marks)]
    result["typical_us"] = statistics.median(chunk_us)
    if chunk_times:
        result["chunk_us"] = chunk_us
    return result


def _disk(folder: str) -> int:
    if not folder:
        return 0
    checkpoint_sqlite(sqlite_files(folder))
    return folder_size(folder)


# -- the parent: plan, alternate, tabulate ---------------------------------------------
def _variants(args: Any) -> list[tuple[str, str, dict[str, Any], str]]:
    """(label, variant, measure kwargs, note) of every row to run, cheap ones first."""
    n = pick(args, 20_000, 200_000, 200_000)
    budget = pick(args, 0.5, 8.0, 30.0)
    rows = [
        (AUTOLOG, "autolog", {"n": n}, "al.log_metric, background writer"),
        ("autolog (run.log_metric)", "autolog-run", {"n": n}, "the ActiveRun's bound method"),
        (FLOOR, "floor", {"n": n}, "a Python function doing one list.append"),
    ]
    peers = [
        (("mlflow",), "mlflow-file", f"mlflow {version_of('mlflow')} log_metric, file store", 5_000),
        (("mlflow",), "mlflow-sqlite", f"mlflow {version_of('mlflow')} log_metric, sqlite", 2_000),
        (("torch", "tensorboard"), "tensorboard", f"SummaryWriter.add_scalar (torch {version_of('torch')})", 20_000),
        (("dvclive",), "dvclive", f"dvclive {version_of('dvclive')} Live.log_metric, no next_step", 20_000),
    ]
    for needs, variant, note, cap in peers:
        if variant == "mlflow-sqlite" and mode(args) == "quick":  # its schema migrations alone take seconds
            rows.append((variant, "", {}, f"skipped in --quick: {note}"))
        elif all(installed(module) for module in needs):
            rows.append((variant, variant, {"n": min(n, cap), "budget": budget, "chunk": 100}, note))
        else:
            rows.append((variant, "", {}, f"not installed (pip install 'autolog[bench]'): {note}"))
    return rows


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = max(r["n"] for r in results)
    sizes = [r["bytes"] / r["n"] for r in results if r["bytes"] is not None and r["n"]]
    return {
        "n": n,
        "caller_us": median(r["loop_s"] / r["n"] * 1e6 for r in results),
        "typical_us": median(r["typical_us"] for r in results),
        "durable_pps": median(r["n"] / (r["loop_s"] + r["finish_s"]) for r in results),
        "finish_ms": median(r["finish_s"] * 1e3 for r in results),
        "bytes_per_point": median(sizes) if sizes else None,
        "stored": min((r["stored"] for r in results if r["stored"] is not None), default=None),
    }


def _throughput_table(args: Any) -> Table:
    table = Table(NAME, "hotpath: log_metric(key, value, step=i), medians per logger", [
        Column("n", "N"),
        Column("caller_us", "caller µs/call", ratio_to=AUTOLOG),
        Column("typical_us", "typical µs/call"),
        Column("durable_pps", "durable points/s"),
        Column("finish_ms", "final flush ms"),
        Column("bytes_per_point", "bytes/point"),
    ])
    plan = _variants(args)
    cheap = [p for p in plan if p[1] and "budget" not in p[2]]
    peers = [p for p in plan if p[1] and "budget" in p[2]]
    repeats, peer_repeats = pairs(args, 3), (pairs(args, 3) if mode(args) == "full" else 1)
    target = "benchmarks.hotpath:measure"
    # Cheap rows alternate round by round (order reversed each round) so load drift hits all alike.
    results, errors = alternate_isolated({label: (target, dict(kw, variant=v)) for label, v, kw, _ in cheap}, repeats)
    peer_results, peer_errors = alternate_isolated({label: (target, dict(kw, variant=v)) for label, v, kw, _ in peers},
                                                   peer_repeats, timeout=900)
    results.update(peer_results)
    errors.update(peer_errors)
    for label, variant, _kwargs, note in plan:
        if label in errors:
            table.rows.append(failed_row(label, errors[label]))
        elif results.get(label):
            summary = _summary(results[label])
            if summary["stored"] is not None and summary["stored"] != summary["n"]:
                note += f"; ONLY {summary['stored']:,} of {summary['n']:,} points read back"
            elif variant.startswith("autolog"):
                note += "; all points read back"
            table.rows.append(Row(label, summary, note))
        else:
            table.rows.append(Row(label, {}, note))
    table.notes += [
        f"{repeats} run(s) per autolog/floor row, alternating; {peer_repeats} per peer; each run a fresh interpreter; random values.",
        "caller µs/call: the logging loop's time / N (writer-thread contention included); typical: the median over chunks",
        "of 1,000 calls (100 for peers), i.e. without the pauses. durable points/s: N / (loop + final flush/close).",
        "bytes/point: growth of the logger's folder / N, after folding SQLite WAL files into their databases.",
        "autolog runs start with capture_env=False, log_system_metrics=False: those are per-run costs, not per-point.",
        "Peers stop after a time budget (N shown); their per-call figures compare with the 200,000-call rows.",
        "Targets (BENCHMARKS.md): ≤ 1 µs/call, ≥ 500,000 durable points/s, ≤ 24 bytes/point.",
    ]
    return table


def _growth_table(args: Any) -> Table:
    n = pick(args, 50_000, 300_000, 1_000_000)
    table = Table(NAME, f"cost growth: µs per call at step ~1,000 vs at step ~{n:,} (one run of {n:,} calls)", [
        Column("n", "N"),
        Column("early_us", "µs/call early"),
        Column("late_us", "µs/call late"),
        Column("growth_pct", "growth %"),
        Column("early_mean", "mean early"),
        Column("late_mean", "mean late"),
    ])
    rows = [(AUTOLOG, "autolog", {"n": n}), (FLOOR, "floor", {"n": n})]
    if mode(args) == "full" and installed("dvclive"):
        rows.append(("dvclive with next_step", "dvclive-next-step", {"n": 3_000, "chunk": 100}))
    for label, variant, kwargs in rows:
        try:
            result = isolated("benchmarks.hotpath:measure", variant=variant, chunk_times=True, **kwargs)
        except BenchError as exc:
            table.rows.append(failed_row(label, exc))
            continue
        chunk = kwargs.get("chunk", 1000)
        table.rows.append(Row(label, _growth(result["chunk_us"], chunk),
                              f"early: steps {chunk:,}–{11 * chunk:,}; late: the last {10 * chunk:,}"))
    table.notes += [
        "Each figure is the median (mean: spikes included) of per-call costs over 10 chunks of calls,",
        "early in the run vs at its end, all in one run. Target: growth within 10 %.",
    ]
    if mode(args) != "full":
        table.notes.append(f"--full logs 1,000,000 points (and adds dvclive with next_step); this run logged {n:,}.")
    return table


def _growth(chunk_us: list[float], chunk: int) -> dict[str, Any]:
    # Skip chunk 0 (first-call set-up); the window covers steps 1·chunk..11·chunk.
    early, late = chunk_us[1:11], chunk_us[-10:]
    early_median, late_median = median(early), median(late)
    return {
        "n": len(chunk_us) * chunk,
        "early_us": early_median,
        "late_us": late_median,
        "growth_pct": (late_median / early_median - 1) * 100 if early_median else None,
        "early_mean": sum(early) / len(early),
        "late_mean": sum(late) / len(late),
    }


def run(args: Any) -> list[Table]:
    """Measure every logger's hot path, then the autolog cost growth."""
    return [_throughput_table(args), _growth_table(args)]
