"""The ``autolog`` command: list, show, compare, delete and garbage-collect runs.

Sub-commands that need optional parts (``sync``, ``ui``, ``reproduce``) live in their
own modules and are imported only when used. Exit codes: 0 success, 1 a runtime
failure (e.g. a server down), 2 bad usage or an unknown run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sqlite3
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from autolog import env
from autolog.cli.tables import fmt_duration, fmt_time, fmt_value, sparkline, table
from autolog.errors import AutologError

# name -> module providing add_arguments(parser) and run(args, store) -> int
EXTERNAL_COMMANDS = {
    "sync": ("autolog.sinks.mlflow", "push runs to an MLflow tracking server"),
    "ui": ("autolog.sinks.tensorboard", "export runs to TensorBoard and start it on 127.0.0.1"),
    "reproduce": ("autolog.cli.reproduce", "print the steps that rebuild a run"),
}


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def _dump(data: Any) -> None:
    print(json.dumps(_finite(data), indent=2, sort_keys=True, default=_json_default))


def _finite(data: Any) -> Any:
    # JSON has no NaN/inf: spell them as strings so scripts can still parse the output.
    if isinstance(data, float) and not math.isfinite(data):
        return "nan" if math.isnan(data) else ("inf" if data > 0 else "-inf")
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def run_dict(run, store=None, history: bool = False) -> dict:
    """A run as plain data for ``--json``."""
    data = {
        "id": run.id, "name": run.name, "experiment": run.experiment, "status": run.status,
        "lifecycle": run.lifecycle, "parent_run_id": run.parent_run_id, "start_time": run.start_time,
        "end_time": run.end_time, "user": run.user, "source": run.source,
        "params": run.params, "tags": run.tags, "metrics": run.metrics,
    }
    if store is not None:
        data["artifacts"] = [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in store.list_artifacts(run.id)]
    return data


def cmd_ls(args: argparse.Namespace, store) -> int:
    runs = store.search_runs(experiment=args.experiment, filter=args.filter, order_by=args.sort or None,
                             max_results=args.limit, lifecycle="all" if args.all else "active")
    if args.json:
        _dump([run_dict(r) for r in runs])
        return 0
    if not runs:
        print("no runs" + (f" in experiment {args.experiment!r}" if args.experiment else "") + f" in {store.root}")
        return 0
    if args.metric:
        metric_keys = args.metric
    else:
        # The metrics most of the listed runs share, so columns are rarely empty.
        counts = Counter(k for r in runs for k in r.metrics if not k.startswith("system/"))
        metric_keys = sorted(k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
    headers = ["id", "name", "experiment", "status", "start", "duration", *metric_keys]
    rows = [[r.id[:8], r.name, r.experiment, r.status + ("*" if r.lifecycle == "deleted" else ""),
             fmt_time(r.start_time), fmt_duration(r.duration_ms), *[fmt_value(r.metrics.get(k)) for k in metric_keys]]
            for r in runs]
    print(table(headers, rows))
    return 0


def cmd_show(args: argparse.Namespace, store) -> int:
    run = store.get_run(args.run)
    if args.json:
        data = run_dict(run, store)
        data["history"] = {k: [list(p) for p in store.metric_history(run.id, k)] for k in run.metrics} if args.history else None
        _dump(data)
        return 0
    print(f"run {run.id}  {run.name}")
    print(f"  experiment {run.experiment}   status {run.status}   started {fmt_time(run.start_time)}   duration {fmt_duration(run.duration_ms)}")
    if run.parent_run_id:
        print(f"  parent {run.parent_run_id}")
    children = store.child_runs(run.id)
    if children:
        print(f"  children {', '.join(c.id[:8] + ' ' + c.name for c in children)}")
    if run.params:
        print("\nparams")
        print(table(["key", "value"], sorted(run.params.items()), max_width=60))
    if run.metrics:
        print("\nmetrics")
        rows = []
        for key in sorted(run.metrics):
            hist = store.metric_history(run.id, key)
            rows.append([key, fmt_value(run.metrics[key]), run.latest[key].step, len(hist), sparkline([p.value for p in hist])])
        print(table(["key", "latest", "step", "points", "history"], rows))
    if run.tags:
        print("\ntags")
        print(table(["key", "value"], sorted(run.tags.items()), max_width=70))
    arts = store.list_artifacts(run.id)
    if arts:
        print("\nartifacts")
        print(table(["path", "size", "sha256"], [[a.path, a.size, a.sha256[:12]] for a in arts], max_width=70))
    return 0


def _best(key: str, values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    lower_is_better = any(word in key.lower() for word in ("loss", "error", "mse", "mae", "rmse", "time", "perplexity"))
    return min(finite) if lower_is_better else max(finite)


def cmd_compare(args: argparse.Namespace, store) -> int:
    runs = [store.get_run(r) for r in args.runs]
    if args.plot:
        from autolog.cli.plots import plot_histories

        path = plot_histories(store, runs, args.plot, args.metric or None)
        print(f"wrote {path}")
        if not args.json:
            return 0
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    if args.json:
        _dump({"runs": [run_dict(r) for r in runs],
               "differing_params": [k for k in params if len({r.params.get(k) for r in runs}) > 1]})
        return 0
    headers = ["", *[f"{r.id[:8]} {r.name}" for r in runs]]
    rows: list[list[object]] = [["status", *[r.status for r in runs]]]
    for key in params:
        values = [r.params.get(k := key, "") for r in runs]
        mark = "≠ " if len(set(values)) > 1 else "  "
        rows.append([f"{mark}params.{k}", *values])
    for key in metrics:
        values = [r.metrics.get(key) for r in runs]
        best = _best(key, [v for v in values if v is not None])
        rows.append([f"  metrics.{key}", *[fmt_value(v) + (" *" if v is not None and v == best and len(runs) > 1 else "") for v in values]])
    print(table(headers, rows, max_width=30))
    print("\n≠ marks params that differ; * marks the best value of each metric")
    return 0


def cmd_rm(args: argparse.Namespace, store) -> int:
    for ref in args.runs:
        run_id = store.resolve_run_id(ref)
        if args.restore:
            store.restore_run(run_id)
            print(f"restored {run_id}")
        else:
            store.delete_run(run_id)
            print(f"deleted {run_id} (restore with: autolog rm --restore {run_id[:8]}; removed for good by: autolog gc)")
    return 0


def cmd_gc(args: argparse.Namespace, store) -> int:
    result = store.gc()
    if args.json:
        _dump(result)
    else:
        print(f"removed {result['runs']} deleted runs and {result['blobs']} unreferenced blobs ({result['bytes']} bytes)")
    return 0


def cmd_experiments(args: argparse.Namespace, store) -> int:
    exps = store.list_experiments()
    if args.json:
        _dump([{"id": e.id, "name": e.name, "created": e.created} for e in exps])
    else:
        print(table(["id", "name", "created"], [[e.id, e.name, fmt_time(e.created)] for e in exps]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``autolog`` command."""
    parser = argparse.ArgumentParser(prog="autolog", description="Search, compare and share autolog runs.")
    parser.add_argument("--store", default=None, help=f"store folder (default ${env.AUTOLOG_URI} or ./{env.DEFAULT_STORE})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ls", help="list runs")
    p.add_argument("--experiment", "-e")
    p.add_argument("--filter", "-f", help="e.g. \"metrics.val_loss < 0.3 and params.model = 'xgb'\"")
    p.add_argument("--sort", "-s", action="append", help="e.g. 'metrics.val_loss' or 'start_time DESC' (repeatable)")
    p.add_argument("--limit", "-n", type=int, default=50)
    p.add_argument("--metric", "-m", action="append", help="metric columns to show (repeatable)")
    p.add_argument("--all", action="store_true", help="include deleted runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", help="one run: params, metrics with sparklines, tags, artifacts")
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", action="store_true", help="with --json: include every metric history")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("compare", help="runs side by side")
    p.add_argument("runs", nargs="+")
    p.add_argument("--plot", metavar="PNG", help="draw metric histories overlaid into this PNG (needs matplotlib)")
    p.add_argument("--metric", "-m", action="append", help="metrics to plot (repeatable; default: shared ones)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("rm", help="delete runs (restorable until gc)")
    p.add_argument("runs", nargs="+")
    p.add_argument("--restore", action="store_true", help="undo a delete")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("gc", help="remove deleted runs and unreferenced artifact blobs for good")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("experiments", help="list experiments")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_experiments)

    # These modules import their heavy dependencies inside run(), so loading them is cheap.
    for name, (module, help_text) in EXTERNAL_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError:
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autolog`` command; returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from autolog.tracking.api import open_store

    try:
        store = open_store(args.store)
        if hasattr(args, "module"):
            return int(importlib.import_module(args.module).run(args, store) or 0)
        return int(args.func(args, store) or 0)
    except (AutologError, ValueError) as exc:  # bad input: an unknown run, a bad filter or path
        print(f"autolog: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError, ConnectionError, sqlite3.Error) as exc:  # e.g. a damaged store
        print(f"autolog: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
