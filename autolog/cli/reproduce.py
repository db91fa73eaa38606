"""``autolog reproduce RUN``: the shell steps that rebuild a run from what it recorded.

The steps check out the run's commit, apply its uncommitted diff, build a virtual
environment from its ``requirements.txt`` (or, with ``--reuse-env``, use the current
Python), and run its exact command line from the same folder with the same seed
(``$AUTOLOG_SEED``, which ``seed_everything()`` honours when called without a seed). The
new run lands in the same store, tagged ``reproduce.of=<run id>``, so the two compare
directly. The diff and requirements are read straight from the store's artifact blobs.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import re
import shlex
import sys
from typing import TYPE_CHECKING

from autolog import env, secrets
from autolog.cli.tables import printable
from autolog.errors import AutologError

if TYPE_CHECKING:
    from autolog.store.sqlite import SQLiteStore

ENV_DIR = ".autolog-env"
DIFF = "environment/git.diff"
REQUIREMENTS = "environment/requirements.txt"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``autolog reproduce``."""
    parser.add_argument("run", help="run id or unique prefix")
    parser.add_argument("--script", metavar="FILE", help="also write the steps to FILE as an executable bash script")
    parser.add_argument(
        "--reuse-env", action="store_true",
        help="run with the current Python environment instead of building one from the logged requirements",
    )


def run(args: argparse.Namespace, store: SQLiteStore) -> int:
    """Print (and with ``--script`` write) the steps; exit 1 when something needed was not recorded."""
    text, problems = plan(store, args.run, reuse_env=args.reuse_env)
    print(text, end="")
    if args.script:
        with open(args.script, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(args.script, 0o755)
        print(f"autolog: wrote {args.script}", file=sys.stderr)
    for problem in problems:
        print(f"autolog: warning: {problem}", file=sys.stderr)
    return 1 if any(p.startswith("cannot") for p in problems) else 0


def plan(store: SQLiteStore, run_ref: str, reuse_env: bool = False, python: str | None = None) -> tuple[str, list[str]]:
    """The bash steps that rebuild run ``run_ref`` and the problems found (``cannot ...`` is fatal).

    Args:
        store: the store holding the run.
        run_ref: run id or unique prefix.
        reuse_env: use ``python`` (default: this interpreter) instead of building an environment.
        python: the interpreter to run with when reusing the environment.

    Raises:
        RunNotFound: no such run.
    """
    rec = store.get_run(run_ref)
    tags = rec.tags
    problems: list[str] = []
    artifacts = {a.path for a in store.list_artifacts(rec.id)}
    q = quote
    remote = tags.get("git.remote")
    lines = [
        "#!/usr/bin/env bash",
        comment(f"Rebuild run {rec.name!r} ({rec.id}) of experiment {rec.experiment!r},"),
        comment(f"started by {rec.user or '?'} on {tags.get('host', rec.host or '?')}, status {rec.status}."),
        "# Run these steps at the top of a fresh clone of the run's repository"
        + (":\n" + comment(f"  git clone {q(secrets.strip_userinfo(remote))} repro && cd repro") if remote else "."),
        "set -euo pipefail",
        "",
        "# 1. The code: the run's commit plus the uncommitted changes it ran with.",
    ]
    commit = tags.get("git.commit")
    if commit:
        lines.append(f"git checkout --quiet --detach {q(commit)}")
    else:
        problems.append("cannot restore the code: the run recorded no git commit (not run from a git repository?)")
    if tags.get("git.dirty") == "true":
        if DIFF in artifacts and _has_patch(store.artifact_file(rec.id, DIFF)):
            lines.append(f"git apply --whitespace=nowarn {q(store.artifact_file(rec.id, DIFF))}")
        elif DIFF not in artifacts:
            problems.append("the run's working tree had uncommitted changes that were not captured (see tag capture.failed)")
    lines += ["", "# 2. The environment."]
    if reuse_env:
        python = python or sys.executable
        lines.append(comment(f"--reuse-env: the current environment ({python}); the run used Python {tags.get('python.version', '?')}."))
    else:
        python = f"{ENV_DIR}/bin/python"
        lines.append(comment(f"The run used Python {tags.get('python.version', '?')} ({tags.get('python.executable', '?')})."))
        lines.append(f"python3 -m venv {ENV_DIR}")
        if REQUIREMENTS in artifacts:
            lines.append(f"{ENV_DIR}/bin/python -m pip install -r {q(store.artifact_file(rec.id, REQUIREMENTS))}")
        else:
            problems.append("the run recorded no requirements.txt; the environment is built empty")
    lines += ["", "# 3. The run's command, from the same folder, with the same seed."]
    notebook = next((a for a in sorted(artifacts) if a.startswith("source/") and a.endswith(".ipynb")), None)
    if tags.get("source.entry_point") == "notebook" and notebook:
        # The saved notebook (outputs stripped) re-executed headless, named as the original.
        lines.append(f"# The run came from notebook {tags.get('source.notebook', notebook)!r}; re-executed with nbconvert.")
        name = posixpath.basename(notebook)[: -len(".ipynb")]
        command: list[str] | None = [python, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=-1",
                   "--output-dir", ".", "--output", f"{name}-reproduced", store.artifact_file(rec.id, notebook)]
        cmd_problems: list[str] = []
    else:
        command, cmd_problems = _command(tags, python)
    problems += cmd_problems
    cwd = tags.get("source.cwd", ".")
    if command:
        if cwd not in (".", "") and not os.path.isabs(cwd):
            lines.append(f"cd {q(cwd)}")
        variables = {k[len("env."):]: v for k, v in sorted(tags.items()) if k.startswith("env.")}
        for name in [n for n in variables if not _VARIABLE.fullmatch(n)]:
            # Pasted unquoted before `=`, a name like `X;touch pwned` would be a command.
            problems.append(f"left out the recorded environment variable {name!r}: not a valid variable name")
            del variables[name]
        if "seed" in rec.params:
            variables[env.AUTOLOG_SEED] = rec.params["seed"]
        variables[env.AUTOLOG_REPRODUCES] = rec.id
        variables[env.AUTOLOG_URI] = store.root
        if notebook and command[1:3] == ["-m", "jupyter"]:
            variables["JPY_SESSION_NAME"] = tags.get("source.notebook", notebook)
        lines.append(" ".join(f"{k}={q(v)}" for k, v in variables.items()) + " " + " ".join(q(a) for a in command))
    lines += ["", comment(f"Then compare: autolog --store {q(store.root)} compare {rec.id[:8]} <new run>")]
    notes = [comment(f"WARNING: {p}") for p in problems]
    return "\n".join(lines[:4] + notes + lines[4:]) + "\n", problems


def quote(value: str) -> str:
    """``value`` as one bash word: ``shlex.quote``, or ``$'...'`` with escapes when it holds control characters.

    Both are inert in bash; the ``$'...'`` form also keeps the printed script free of raw
    terminal escapes and newlines.
    """
    value = str(value)
    if value.isprintable():
        return shlex.quote(value)
    return "$'" + "".join(_ESCAPES.get(ch) or (ch if ch.isprintable() else _escape(ord(ch))) for ch in value) + "'"


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(code: int) -> str:
    # bash's $'...' escapes: \xHH is a byte, so only ASCII uses it; \u/\U give UTF-8.
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def comment(text: str) -> str:
    """One ``#`` comment line: control characters (newlines above all) shown escaped, so nothing recorded becomes a command."""
    return "# " + printable(text)


def _has_patch(path: str) -> bool:
    # A diff of only untracked non-source files has no patch; `git apply` would reject it.
    with open(path, "rb") as fh:
        return b"\ndiff --git " in b"\n" + fh.read()


def _command(tags: dict[str, str], python: str) -> tuple[list[str] | None, list[str]]:
    """The recorded command line with its interpreter replaced by ``python``."""
    entry = tags.get("source.entry_point", "")
    raw = tags.get("source.command")
    if entry in ("notebook", "interactive") or not raw:
        return None, [f"cannot re-run the command: the run came from {entry or 'an unrecorded command'}"]
    try:
        argv = shlex.split(raw)
    except ValueError as exc:
        raise AutologError(f"tag source.command is not a valid command line: {exc}") from None
    problems = []
    if "***" in argv or any("***" in a for a in argv):
        problems.append("the command line had secret values, recorded as ***; put them back before running")
    argv[0] = python
    launch = tags.get("autolog.run_command")
    if launch:
        # Started by `autolog run`: run it the same way, so the program is autologged again.
        try:
            line = shlex.split(launch)
        except ValueError as exc:
            raise AutologError(f"tag autolog.run_command is not a valid command line: {exc}") from None
        if "--" in line:
            line = line[: line.index("--") + 1] + argv
        argv = [python, "-m", "autolog", *line[1:]]
    cwd = tags.get("source.cwd", ".")
    if entry and not entry.startswith(("-m ", "/")):
        # The script was given as an absolute path of the original checkout: point into this one.
        for i, arg in enumerate(argv[1:], 1):
            if os.path.isabs(arg) and arg.replace(os.sep, "/").endswith("/" + entry):
                argv[i] = posixpath.relpath(entry, cwd if not os.path.isabs(cwd) else ".")
                break
    return argv, problems
