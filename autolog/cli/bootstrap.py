"""Inside a program started by ``autolog run``: enable autolog and own the program's run.

``autolog run`` calls :func:`start` itself before a plain Python program it runs in its own
process, and the ``sitecustomize`` it puts on ``PYTHONPATH`` calls it in every other Python
process of the program (an exec'd program, its subprocesses). Environment variables (set by ``autolog run``,
inherited by subprocesses):

- ``AUTOLOG_BOOTSTRAP``: JSON with the ``autolog()`` options, experiment, run name, tags,
  seed and the exact ``autolog run`` command line.
- ``AUTOLOG_PROGRAM_RUN``: the id of the program's run, set by the first process for its
  subprocesses, so that they do not start a second program run.
- ``AUTOLOG_URI`` (``--store``) and ``AUTOLOG_SEED`` (``--seed``) as everywhere else.

The first process (global rank 0) starts one run for the whole program, named after
it and tagged with the command line; the program's fits log into it (the first fit) or
into child runs of it. It ends FINISHED when the program exits normally, FAILED on an
uncaught exception or a non-zero ``sys.exit``, KILLED on Ctrl-C; a program killed by a
signal leaves it RUNNING with a dead process, which reads KILLED.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

BOOTSTRAP_ENV = "AUTOLOG_BOOTSTRAP"
PROGRAM_RUN_ENV = "AUTOLOG_PROGRAM_RUN"
RUN_COMMAND_TAG = "autolog.run_command"
PROGRAM_RUN_TAG = "autolog.program_run"


def start() -> None:
    """Enable autolog in this process as ``$AUTOLOG_BOOTSTRAP`` says; start the program run in the first one."""
    config: dict[str, Any] = json.loads(os.environ[BOOTSTRAP_ENV])
    import autolog as al
    from autolog.patching.engine import is_rank_zero

    if config.get("experiment"):
        al.set_experiment(config["experiment"])
    options = dict(config.get("autolog") or {})
    tags = dict(config.get("tags") or {})
    parent = os.environ.get(PROGRAM_RUN_ENV)
    if parent:
        options["extra_tags"] = {**tags, PROGRAM_RUN_TAG: parent}
    elif tags:
        options["extra_tags"] = tags
    al.autolog(**options)
    if parent or not is_rank_zero():
        if config.get("seed") is not None:
            al.seed_everything(int(config["seed"]))
        return
    run = al.start_run(name=config.get("run_name"), tags={**tags, RUN_COMMAND_TAG: config.get("command", "")})
    run.program_run = True
    os.environ[PROGRAM_RUN_ENV] = run.id
    if config.get("seed") is not None:
        al.seed_everything(int(config["seed"]))
    _watch_exit(run)


def _watch_exit(run: ActiveRun) -> None:
    # atexit runs last-registered first: this ends the program run before the API's
    # own exit hook would end it FINISHED, with the status the program's exit deserves.
    outcome: dict[str, Any] = {"code": None, "exc": None}
    real_exit = sys.exit
    real_hook = sys.excepthook

    def exit(status: Any = None) -> NoReturn:  # noqa: A001 - stands in for sys.exit
        outcome["code"] = status
        real_exit(status)

    def excepthook(kind, value, tb) -> None:
        outcome["exc"] = kind
        real_hook(kind, value, tb)

    def end() -> None:
        if run.ended or os.getpid() != run_pid:
            return
        if outcome["exc"] is not None:
            status = "KILLED" if issubclass(outcome["exc"], KeyboardInterrupt) else "FAILED"
        elif outcome["code"] not in (None, 0):
            status = "FAILED"
        else:
            status = "FINISHED"
        try:
            run.end(status)
        except Exception as exc:  # exit must never crash on our account
            print(f"autolog: could not end run {run.id[:8]} at exit: {exc}", file=sys.stderr)

    run_pid = os.getpid()
    sys.exit = exit
    sys.excepthook = excepthook
    atexit.register(end)
