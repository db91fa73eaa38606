"""The ``autolog`` command: list, show, compare, delete and garbage-collect runs.

Sub-commands that need optional parts (``sync``, ``ui``, ``reproduce``) live in their
own modules and are imported only when used. Exit codes: 0 success, 1 a runtime
failure (e.g. a server down), 2 bad usage or an unknown run.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autolog import env
from autolog.errors import AutologError, StoreNotFound

if TYPE_CHECKING:
    import argparse

# The table, listing and store modules (and argparse and json) load in the functions that use
# them: `autolog run` goes through main() too, and the program it starts must not pay for them.

STORE_HELP = (f"store folder (default ${env.AUTOLOG_URI}, else the first {env.DEFAULT_STORE}/ found from here up to"
              f" the git root, else ./{env.DEFAULT_STORE} there); also accepted after the command")

# name -> module providing add_arguments(parser) and run(args, store) -> int
EXTERNAL_COMMANDS = {
    "sync": ("autolog.sinks.mlflow", "push runs to an MLflow tracking server"),
    "ui": ("autolog.cli.ui", "MLflow's UI reading this store live on 127.0.0.1 (--tensorboard: TensorBoard export)"),
    "reproduce": ("autolog.cli.reproduce", "print the steps that rebuild a run"),
    "run": ("autolog.cli.run", "run a program with autolog() enabled, without editing it"),
}


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys (NaN/inf spelled as strings): every ``--json`` output."""
    import json

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


def cmd_show(args: argparse.Namespace, store) -> int:
    from autolog.cli import housekeeping
    from autolog.cli.tables import fmt_duration, fmt_time, fmt_value, printable, sparkline, table

    run = store.get_run(args.run)
    if args.json:
        data = run_dict(run, store)
        data["history"] = {k: [list(p) for p in store.metric_history(run.id, k)] for k in run.metrics} if args.history else None
        print_json(data)
        return 0
    print(f"run {run.id}  {printable(run.name)}" + ("   [DELETED]" if run.lifecycle == "deleted" else ""))
    if run.lifecycle == "deleted":
        print(f"  this run is deleted: restore it with `autolog restore {run.id[:8]}`; `autolog gc` removes it for good")
    print(f"  experiment {printable(run.experiment)}   status {run.status}   started {fmt_time(run.start_time)}   duration {fmt_duration(run.duration_ms)}")
    if run.parent_run_id:
        print(f"  parent {run.parent_run_id}")
    children = store.child_runs(run.id)
    if children:
        print(f"  children {printable(', '.join(c.id[:8] + ' ' + c.name for c in children))}")
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
        print(table(["path", "size", "sha256"], [[a.path, housekeeping.fmt_size(a.size), a.sha256[:12]] for a in arts], max_width=70))
    return 0


def cmd_experiments(args: argparse.Namespace, store) -> int:
    from autolog.cli.tables import fmt_time, table

    exps = store.list_experiments()
    if args.json:
        print_json([{"id": e.id, "name": e.name, "created": e.created} for e in exps])
    else:
        print(table(["id", "name", "created"], [[e.id, e.name, fmt_time(e.created)] for e in exps]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``autolog`` command."""
    import argparse

    from autolog.cli import compare, housekeeping, listing

    parser = argparse.ArgumentParser(prog="autolog", description="Search, compare and share autolog runs.")
    parser.add_argument("--store", default=None, help=STORE_HELP)
    parser.add_argument("--version", action="version", version=f"autolog {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ls", help="list runs as a table with the columns you choose")
    listing.add_arguments(p)
    p.set_defaults(func=listing.cmd_ls)

    p = sub.add_parser("show", help="one run: params, metrics with sparklines, tags, artifacts")
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument("--json", action="store_true", help="print the run as JSON: attributes, params, metrics, tags, artifacts")
    p.add_argument("--history", action="store_true", help="with --json: include every metric history")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("compare", help="runs side by side; the best value starred where the metric's goal is known")
    compare.add_arguments(p)
    p.set_defaults(func=compare.cmd_compare)

    housekeeping.add_commands(sub)  # rm, restore, gc

    p = sub.add_parser("experiments", help="list experiments")
    p.add_argument("--json", action="store_true", help="print the experiments as JSON")
    p.set_defaults(func=cmd_experiments)

    # These modules import their heavy dependencies inside run(), so loading them is cheap.
    for name, (module, help_text) in EXTERNAL_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError:
            p.add_argument("rest", nargs=argparse.REMAINDER)
    # `autolog ls --store DIR` works as well as `autolog --store DIR ls`; SUPPRESS keeps a
    # store given before the command when none is given after it.
    for p in sub.choices.values():
        if "--store" not in p._option_string_actions:
            p.add_argument("--store", default=argparse.SUPPRESS, help=STORE_HELP)
    return parser


def _version() -> str:
    from autolog import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autolog`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from autolog.cli import run as run_command

    if run_command.subcommand(argv) == "run":  # the program's start-up must not pay for the other commands
        return run_command.main(argv)
    import sqlite3

    args = build_parser().parse_args(argv)
    from autolog.tracking.api import open_store

    try:
        if getattr(args, "module", None) == "autolog.cli.run":  # the program opens the store, not us
            return int(importlib.import_module(args.module).run(args) or 0)
        store = open_store(args.store, create=False)  # a mistyped --store must not create an empty store
        if hasattr(args, "module"):
            return int(importlib.import_module(args.module).run(args, store) or 0)
        code = int(args.func(args, store) or 0)
        sys.stdout.flush()  # inside the try: a reader that went away (`| head`) is not an error
        return code
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except StoreNotFound as exc:  # nothing to read there: a runtime failure, not bad syntax
        print(f"autolog: error: {exc}", file=sys.stderr)
        return 1
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
