"""Shared helpers of the benchmarks: tables, medians of alternating runs, fresh subprocesses.

Every benchmark returns :class:`Table` objects; ``__main__`` prints them as text or
JSON. Timings are medians taken side by side in one run (the machines this runs on are
shared and noisy), so a table compares rows measured under the same load. Variants
that patch or import heavy frameworks run in a fresh interpreter each
(:func:`isolated`) so one logger's patches, threads or imports never touch another's.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT_MARKER = "@@autolog-bench-result@@"
clock = time.perf_counter

# Quiet, offline settings for every child: peers must not phone home or nag.
CHILD_ENV = {
    "MLFLOW_ALLOW_FILE_STORE": "true",  # mlflow 3 refuses file: stores without it
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "DVC_NO_ANALYTICS": "1",
    "DVCLIVE_OPEN": "0",
    "DO_NOT_TRACK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONWARNINGS": "ignore",
    "KERAS_BACKEND": "torch",  # the only Keras backend installed (never TensorFlow)
}


def child_environ(**extra: str) -> dict[str, str]:
    """The environment of a measured child: ours + :data:`CHILD_ENV`, the repository on the path.

    ``PYTHONDONTWRITEBYTECODE`` is dropped: with it every child would compile every module
    from source, a cost no installed package pays (see :func:`precompile`).
    """
    env = dict(os.environ)
    env.update(CHILD_ENV)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def precompile() -> None:
    """Write the bytecode of autolog and the benchmarks, as an installed package has it, before timing."""
    import compileall

    for folder in ("autolog", "integrations", "benchmarks"):
        path = os.path.join(REPO_ROOT, folder)
        if os.path.isdir(path):
            compileall.compile_dir(path, quiet=2)


class BenchError(RuntimeError):
    """A variant failed; the message carries the tail of its output."""


# -- modes -----------------------------------------------------------------------------
def mode(args: Any) -> str:
    """``"quick"``, ``"full"`` or ``"default"`` from the parsed command line."""
    if getattr(args, "quick", False):
        return "quick"
    if getattr(args, "full", False):
        return "full"
    return "default"


def pick(args: Any, quick: Any, default: Any, full: Any) -> Any:
    """The value for the current mode."""
    return {"quick": quick, "default": default, "full": full}[mode(args)]


def pairs(args: Any, default: int = 5) -> int:
    """Number of alternating pairs: ``--pairs`` if given, else 1 in quick mode, else ``default``."""
    given = getattr(args, "pairs", None)
    if given:
        return int(given)
    return 1 if mode(args) == "quick" else default


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def version_of(dist: str) -> str:
    """Installed version of distribution ``dist``, or ``"?"``."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cpu_model": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- statistics --------------------------------------------------------------------------
def median(values: Iterable[float]) -> float | None:
    """Median of the numbers in ``values`` (None when there are none)."""
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def spread(values: Iterable[float | None], scale: float = 1.0) -> str | None:
    """``"min–max"`` of the numbers in ``values`` (times ``scale``), as printed next to a median."""
    found = [v * scale for v in values if v is not None]
    if not found:
        return None
    return fmt(min(found)) if len(found) == 1 else f"{fmt(min(found))}–{fmt(max(found))}"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children so far, in seconds."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def alternate(variants: dict[str, Callable[[], Any]], pairs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every variant ``pairs`` times, interleaved, and return each one's wall times in seconds.

    Rounds alternate the order (``a b``, ``b a``, ...) so drift in the machine's load
    falls on every variant alike; ``warmup`` untimed rounds go first. Use
    :func:`ratios` on the result for per-pair ratios against the plain variant.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(pairs):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            start = clock()
            variants[name]()
            times[name].append(clock() - start)
    return times


def alternate_toggled(fit: Callable[[], Any], enable: Callable[[], None], disable: Callable[[], None],
                      variant: str, pairs: int, warmup: int = 1) -> dict[str, list[Any]]:
    """Time ``fit()`` plain and with the logger switched on, alternating in one process.

    ``enable``/``disable`` switch the logger around each logged call; the first
    ``warmup`` rounds are not kept. Returns ``{"plain": [...], variant: [...]}``.
    """
    times: dict[str, list[Any]] = {"plain": [], variant: []}
    for round_ in range(warmup + pairs):
        for name in (["plain", variant] if round_ % 2 == 0 else [variant, "plain"]):
            if name != "plain":
                enable()
            try:
                elapsed = fit()
            finally:
                if name != "plain":
                    disable()
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def ratios(times: dict[str, list[float]], plain: str) -> dict[str, float | None]:
    """Median over pairs of ``variant time / plain time`` (pairwise, so load drift cancels)."""
    base = times[plain]
    return {name: median(t / b for t, b in zip(ts, base) if b > 0) for name, ts in times.items()}


# -- disk ------------------------------------------------------------------------------
def folder_size(path: str) -> int:
    """Total bytes of the files under ``path`` (0 when missing)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def checkpoint_sqlite(paths: Iterable[str]) -> None:
    """Fold each SQLite file's write-ahead log back into it, so its size is the data's size."""
    for path in paths:
        if os.path.isfile(path):
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()


def sqlite_files(root: str) -> list[str]:
    """SQLite database files under ``root``."""
    found = []
    for folder, _dirs, files in os.walk(root):
        found += [os.path.join(folder, f) for f in files if f.endswith((".db", ".sqlite"))]
    return found


# -- fresh subprocesses -------------------------------------------------------------------
def isolated(target: str, timeout: float = 600.0, cwd: str | None = None, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Call ``module:function(**kwargs)`` in a fresh interpreter and return its JSON-able result.

    The child gets the repository on ``sys.path`` and :data:`CHILD_ENV`; its output is
    captured and only shown (its tail) in the :class:`BenchError` raised when it fails.
    """
    child_env = child_environ(**(env or {}))
    command = [sys.executable, "-c", "from benchmarks.common import _child_main; _child_main()", target, json.dumps(kwargs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO_ROOT, env=child_env)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{target} ran past {timeout:.0f} s") from exc
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            payload = json.loads(line[len(RESULT_MARKER):])
            if "error" in payload:
                raise BenchError(payload["error"])
            return payload["result"]
    tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
    raise BenchError(f"{target} exited {done.returncode} without a result: " + " | ".join(tail))


def alternate_isolated(
    variants: dict[str, tuple[str, dict[str, Any]]], pairs: int, timeout: float = 600.0
) -> tuple[dict[str, list[Any]], dict[str, BenchError]]:
    """Run each variant ``(target, kwargs)`` ``pairs`` times, interleaved, each time in a fresh interpreter.

    Use it when variants must not share a process (one logger's patches or imports would
    affect the next). The child's function times its own job and returns what it
    measured; rounds alternate the order as in :func:`alternate`. A variant that fails
    is recorded in the second dict and not run again.
    """
    results: dict[str, list[Any]] = {label: [] for label in variants}
    errors: dict[str, BenchError] = {}
    labels = list(variants)
    for round_ in range(pairs):
        for label in labels if round_ % 2 == 0 else labels[::-1]:
            if label in errors:
                continue
            target, kwargs = variants[label]
            try:
                results[label].append(isolated(target, timeout=timeout, **kwargs))
            except BenchError as exc:
                errors[label] = exc
    return results, errors


def _child_main() -> None:
    """Entry point of :func:`isolated`'s child: run the target, print its result after a marker."""
    target, raw = sys.argv[1], sys.argv[2]
    module_name, func_name = target.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        payload = {"result": func(**json.loads(raw))}
    except Exception as exc:  # reported by the parent as this variant's failure
        payload = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(payload), flush=True)


# -- tables ------------------------------------------------------------------------------
@dataclass
class Column:
    """One measured quantity: ``key`` in each row's values, shown under ``title``."""

    key: str
    title: str
    ratio_to: str | None = None  # also show "× <row label>" for this column


@dataclass
class Row:
    """One variant: a label, its measured values (None: not measured) and a short note."""

    label: str
    values: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Table:
    """A benchmark's printed result: rows of one comparison, plus notes below it."""

    name: str
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, label: str) -> Row | None:
        """The row called ``label``, or None."""
        return next((r for r in self.rows if r.label == label), None)

    def to_dict(self) -> dict[str, Any]:
        """The table as plain JSON-able data (ratios included)."""
        data = asdict(self)
        for column in self.columns:
            if column.ratio_to:
                for row, out in zip(self.rows, data["rows"]):
                    out["values"][f"{column.key}_x_{column.ratio_to}"] = self._ratio(row, column)
        return data

    def _ratio(self, row: Row, column: Column) -> float | None:
        base = self.row(column.ratio_to or "")
        value = row.values.get(column.key)
        ref = base.values.get(column.key) if base else None
        if not isinstance(value, (int, float)) or not isinstance(ref, (int, float)) or ref <= 0:
            return None
        return value / ref

    def render(self) -> str:
        """The table as aligned text."""
        header = ["", *self._titles(), "note"]
        body = []
        for row in self.rows:
            cells = [row.label]
            for column in self.columns:
                cells.append(fmt(row.values.get(column.key)))
                if column.ratio_to:
                    ratio = self._ratio(row, column)
                    cells.append("—" if ratio is None else f"×{fmt(ratio)}")
            body.append([*cells, row.note])
        widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
        lines = [f"## {self.title}", ""]
        for n, line in enumerate([header, *body]):
            cells = [str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(line[:-1])]
            lines.append("  ".join(cells) + ("  " + line[-1] if line[-1] else ""))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths[:-1]) + "  ----")
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def _titles(self) -> list[str]:
        titles = []
        for column in self.columns:
            titles.append(column.title)
            if column.ratio_to:
                titles.append(f"× {column.ratio_to}")
        return titles


def fmt(value: Any) -> str:
    """A number with as many digits as are meaningful; None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def failed_row(label: str, exc: BaseException) -> Row:
    """A row for a variant that could not be measured, saying why."""
    message = str(exc).replace("\n", " ")
    return Row(label, {}, note=f"failed: {message[:160]}")


def as_tables(result: Table | Sequence[Table]) -> list[Table]:
    """A benchmark's ``run()`` result as a list of tables."""
    return [result] if isinstance(result, Table) else list(result)


# -- whole jobs: wall, CPU, training thread, until written ---------------------------------
def timed_job(call: Callable[[], Any], settle: Callable[[], Any] | None = None) -> dict[str, float]:
    """Run a training call and measure it four ways (seconds).

    ``wall``: the call on the training thread; ``thread_cpu``: that thread's own CPU time
    (``time.thread_time``, which load from other processes does not inflate); ``written``:
    wall time until ``settle()`` returns, i.e. until the logger's work after the call
    (flushes, plots, uploads) is done; ``cpu``: the process's CPU time over that span,
    every thread and waited-for child included (``resource.getrusage``).
    """
    cpu0, thread0, start = cpu_seconds(), time.thread_time(), clock()
    call()
    wall, thread_cpu = clock() - start, time.thread_time() - thread0
    if settle is not None:
        settle()
    return {"wall": wall, "thread_cpu": thread_cpu, "written": clock() - start, "cpu": cpu_seconds() - cpu0}


JOB_COLUMNS = [
    Column("wall_s", "train s"),
    Column("wall_spread", "min–max"),
    Column("wall_x", "× plain"),
    Column("thread_cpu_x", "thread CPU × plain"),
    Column("written_s", "until written s"),
    Column("written_x", "× plain"),
    Column("cpu_s", "process CPU s"),
    Column("cpu_x", "× plain"),
]

JOB_NOTES = [
    "train s: the training call on the training thread (wall), median with the min–max of the rounds; × plain: median of",
    "per-round ratios to the plain row measured next to it. thread CPU: time.thread_time of the training thread.",
    "until written s: from the call's start until the logger's work after it (flush, plots, models) is done, for every row alike.",
    "process CPU s: resource.getrusage (self + children) over that span: every thread's work, which wall time on a shared",
    "2-core machine can hide.",
]


def job_values(samples: Sequence[dict[str, float]], plain: Sequence[dict[str, float]] | None) -> dict[str, Any]:
    """Table values of one job row from its per-round :func:`timed_job` samples and the plain row's."""
    values: dict[str, Any] = {
        "wall_s": median(s["wall"] for s in samples),
        "wall_spread": spread(s["wall"] for s in samples),
        "written_s": median(s["written"] for s in samples),
        "cpu_s": median(s["cpu"] for s in samples),
    }
    if plain:
        for key in ("wall", "thread_cpu", "written", "cpu"):
            values[f"{key}_x"] = median(s[key] / p[key] for s, p in zip(samples, plain) if p[key] > 0)
    return values
