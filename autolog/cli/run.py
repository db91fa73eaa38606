"""``autolog run``: run a program with ``autolog()`` enabled, without editing it.

``autolog run [options] -- python train.py --lr 0.1`` (also ``autolog run train.py ARGS``
and ``python -m autolog train.py ARGS``) becomes the program, so the program's exit code,
output and signals are its own. A Python program given as ``python script.py``,
``python -m module`` or ``python -c code`` with no interpreter options runs in this very
process, set up as the interpreter would set it up (``sys.argv``, ``sys.path[0]``, a fresh
``__main__``): a second interpreter start would cost the program 30-50 ms. Any other
program replaces this process (``exec``). A ``sitecustomize`` placed first on
``PYTHONPATH`` enables autolog at interpreter start-up in every Python subprocess the
program starts; see :mod:`autolog.cli.bootstrap` for the environment variables and for
how the program's run is named, tagged and ended.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from autolog import env
from autolog.errors import InvalidName

if TYPE_CHECKING:
    import argparse

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_bootstrap")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``autolog run``: autolog() options, then the program and its arguments."""
    import argparse

    parser.add_argument("--experiment", "-e", help="experiment the program's runs go into")
    parser.add_argument("--run-name", help="name of the program's run (default: the program's name and the time)")
    parser.add_argument("--only", help="comma-separated integrations to enable, e.g. sklearn,xgboost (default: all installed)")
    parser.add_argument("--no-models", action="store_true", help="do not save trained models")
    parser.add_argument("--log-every-n-steps", type=int, metavar="N", help="log per-step metrics every N steps")
    parser.add_argument("--seed", type=int, metavar="N", help="call seed_everything(N) before the program starts")
    parser.add_argument("--tags", action="append", default=[], metavar="K=V", help="tag for the program's runs (repeatable)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the program: 'python train.py ARGS', 'train.py ARGS', 'python -m pkg.mod', or a console script")


def program(command: list[str]) -> list[str]:
    """The argv to execute for ``command``: a ``.py`` file runs with this interpreter.

    Raises:
        InvalidName: no program was given, or it cannot be found.
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise InvalidName("autolog run needs a program, e.g. 'autolog run -- python train.py'")
    first = command[0]
    if first.endswith(".py") or first == "-m":
        return [sys.executable, *command]
    if first in ("python", "python3"):
        # The interpreter autolog is installed in, whichever `python` comes first on PATH.
        return [sys.executable, *command[1:]]
    import shutil

    if os.sep in first or shutil.which(first):
        return command
    raise InvalidName(f"program {first!r} not found on PATH")


def _name(argv: list[str]) -> str:
    # Named after what runs: the script's stem, the -m module, or the console script.
    args = argv[1:] if os.path.basename(argv[0]).startswith("python") else argv
    for i, arg in enumerate(args):
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1].rsplit(".", 1)[-1]
        if not arg.startswith("-"):
            stem = os.path.splitext(os.path.basename(arg))[0]
            return stem if args is argv or arg.endswith(".py") else os.path.basename(argv[0])
    return os.path.basename(argv[0])


def _tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidName(f"--tags takes KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


def environment(args: argparse.Namespace, argv: list[str], store: str | None) -> dict[str, str]:
    """The environment the program runs with: the bootstrap on PYTHONPATH and its settings."""
    import time

    from autolog.secrets import redact_argv

    options: dict[str, Any] = {}
    if args.only:
        options["only"] = [name.strip() for name in args.only.split(",") if name.strip()]
    if args.no_models:
        options["log_models"] = False
    if args.log_every_n_steps is not None:
        options["log_every_n_steps"] = args.log_every_n_steps
    launch = launch_line(args, argv)
    config = {
        "autolog": options,
        "experiment": args.experiment,
        "run_name": args.run_name or f"{_name(argv)}-{time.strftime('%H%M%S')}",
        "tags": _tags(args.tags),
        "seed": args.seed,
        "command": shlex.join(redact_argv(launch)),
    }
    child = dict(os.environ)
    child.pop("AUTOLOG_PROGRAM_RUN", None)  # a program run inside another starts its own
    child["AUTOLOG_BOOTSTRAP"] = json.dumps(config)
    child["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *filter(None, [os.environ.get("PYTHONPATH")])])
    if store:
        child[env.AUTOLOG_URI] = os.path.abspath(store)
    if args.seed is not None:
        child[env.AUTOLOG_SEED] = str(args.seed)
    return child


def launch_line(args: argparse.Namespace, argv: list[str]) -> list[str]:
    """The ``autolog run`` command line that runs ``argv`` again with the same options (recorded on the run)."""
    line = ["autolog", "run"]
    for flag, value in (("--experiment", args.experiment), ("--run-name", args.run_name), ("--only", args.only),
                        ("--log-every-n-steps", args.log_every_n_steps), ("--seed", args.seed)):
        if value is not None:
            line += [flag, str(value)]
    if args.no_models:
        line.append("--no-models")
    for tag in args.tags:
        line += ["--tags", tag]
    return [*line, "--", *argv]


def subcommand(argv: list[str]) -> str | None:
    """The sub-command word of an ``autolog`` command line (global ``--store`` skipped), or None."""
    i = 0
    while i < len(argv) and argv[i].startswith("--store"):
        i += 1 if "=" in argv[i] else 2
    return argv[i] if i < len(argv) else None


def main(argv: list[str]) -> int:
    """``autolog [--store S] run ...`` without loading the other sub-commands (start-up cost is the program's)."""
    i = argv.index("run")
    args = plain_args(argv[:i], argv[i + 1:])
    if args is None:
        import argparse

        parser = argparse.ArgumentParser(prog="autolog run", description="Run a program with autolog() enabled, without editing it.")
        parser.add_argument("--store", default=None, help="store folder the program's runs go into")
        add_arguments(parser)
        args = parser.parse_args(argv[:i] + argv[i + 1:])
    try:
        return run(args)
    except InvalidName as exc:
        print(f"autolog: error: {exc}", file=sys.stderr)
        return 2


def plain_args(before: list[str], after: list[str]) -> Any:
    """The arguments argparse would make of ``autolog [--store S] run PROGRAM...`` with no option of
    ``run`` before the program (``--`` or a word first), else None: argparse (~4 ms with the
    gettext and locale it loads) is then left to parse them, errors and help included.
    """
    if not after or (after[0] != "--" and after[0].startswith("-")):
        return None
    if not before:
        store = None
    elif len(before) == 2 and before[0] == "--store" and not before[1].startswith("-"):
        store = before[1]
    elif len(before) == 1 and before[0].startswith("--store="):
        store = before[0].partition("=")[2]
    else:
        return None
    import types

    return types.SimpleNamespace(store=store, experiment=None, run_name=None, only=None, no_models=False,
                                 log_every_n_steps=None, seed=None, tags=[], command=list(after))


def run(args: argparse.Namespace, store: Any = None) -> int:
    """Become the program, autologged: run a plain Python program here, else ``exec`` it; returns its exit code."""
    argv = program(list(args.command))
    child = environment(args, argv, getattr(args, "store", None))
    form = python_form(argv)
    if form is not None:
        return _run_here(argv, form, child)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, child)
    except OSError as exc:
        print(f"autolog: error: cannot start {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


def python_form(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """``("script", path, args)``, ``("module", name, args)`` or ``("code", text, args)`` when ``argv``
    is this interpreter running a ``.py`` file, ``-m`` or ``-c`` with no interpreter option; else None.

    Anything else (interpreter options, here or in the program's command, stdin, a folder or
    zip app, another interpreter, a program started inside another ``autolog run``) is
    executed as it is.
    """
    if len(argv) < 2 or argv[0] != sys.executable or os.environ.get("AUTOLOG_BOOTSTRAP"):
        return None
    ours = list(getattr(sys, "orig_argv", None) or [])
    if len(ours) < 2 or (ours[1] != "-m" and ours[1].startswith("-")):
        return None  # this interpreter runs with options (-O, -I, -X ...) a plain `python` would not have
    first = argv[1]
    if first in ("-m", "-c"):
        return ("module" if first == "-m" else "code", argv[2], argv[3:]) if len(argv) > 2 else None
    if first.endswith(".py") and not first.startswith("-") and os.path.isfile(first):
        return ("script", first, argv[2:])
    return None


def _run_here(argv: list[str], form: tuple[str, str, list[str]], child: dict[str, str]) -> int:
    # What the interpreter does for `python X ARGS` (see Modules/main.c and runpy), then the
    # bootstrap the sitecustomize would run, then the program.
    import builtins
    import types

    kind, target, rest = form
    for key in [k for k in os.environ if k not in child]:
        del os.environ[key]
    os.environ.update(child)
    from importlib.machinery import BuiltinImporter, SourceFileLoader

    main = types.ModuleType("__main__")
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__annotations__ = {}
    main.__loader__ = BuiltinImporter
    sys.orig_argv = list(argv)
    if kind == "script":
        path = filename = os.path.abspath(target)
        main.__file__ = path
        main.__cached__ = None  # type: ignore[attr-defined]
        main.__loader__ = SourceFileLoader("__main__", path)
        sys.argv = [target, *rest]
        first_path = os.path.dirname(os.path.realpath(target))
    else:
        filename = "<string>"
        sys.argv = [f"-{kind[0]}", *rest]  # -m: runpy puts the module's file there
        first_path = os.getcwd() if kind == "module" else ""
    if not getattr(sys.flags, "safe_path", False):  # -P / PYTHONSAFEPATH (3.11): no first path
        sys.path[0] = first_path  # the folder of the `autolog` command (or the cwd of `python -m autolog`)
    sys.modules["__main__"] = main
    _bootstrap()
    try:
        if kind == "module":
            import runpy

            runpy._run_module_as_main(target, alter_argv=True)  # type: ignore[attr-defined]  # what `python -m` calls
        else:
            if kind == "script":
                with open(target, "rb") as fh:
                    source: str | bytes = fh.read()
            else:
                source = target
            code = compile(source, filename, "exec", dont_inherit=True)
            exec(code, main.__dict__)
    except (SystemExit, KeyboardInterrupt):
        raise  # the interpreter reports them as it would have (exit code; death by SIGINT)
    except BaseException as exc:
        # The traceback starts in the program, as under `python`.
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return 1
    return 0


def _bootstrap() -> None:
    # The sitecustomize's start, run here: this process is the program's first process.
    try:
        from autolog.cli.bootstrap import start

        start()
    except Exception as exc:  # a broken bootstrap must never stop the user's program
        if os.environ.get("AUTOLOG_STRICT") == "1":
            raise
        print(f"autolog: autolog run could not enable autologging: {exc!r}", file=sys.stderr)
