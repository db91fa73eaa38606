"""``python -m benchmarks startup``: what ``import autolog`` and ``autolog.autolog()`` cost at start-up.

Each measurement is a fresh interpreter running a few lines that read the clock before
anything else is imported (so no module is pre-loaded on autolog's behalf), then report
which frameworks ended up in ``sys.modules``: enabling every integration must import
none of them. A second table shows what ``autolog()``'s post-import hooks add to a
framework's own import, alternating plain and hooked interpreters.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import (
    RESULT_MARKER,
    BenchError,
    Column,
    Row,
    Table,
    child_environ,
    failed_row,
    installed,
    median,
    mode,
    pairs,
    pick,
    ratios,
    spread,
    version_of,
)

NAME = "startup"
DESCRIPTION = "cost of `import autolog` and `autolog()`, and which frameworks they import"
ORDER = 20

FRAMEWORKS = ("torch", "sklearn", "keras", "lightning", "pytorch_lightning", "xgboost", "lightgbm",
              "tensorflow", "mlflow", "tensorboard")
ALSO_WATCHED = ("numpy", "pandas")

# Runs in a fresh interpreter; only builtin modules (sys, time) are loaded before t0.
_PROBE = """\
import sys, time
missing = False
t0 = time.perf_counter()
{first}
t1 = time.perf_counter()
{second}
t2 = time.perf_counter()
{third}
t3 = time.perf_counter()
loaded = [m for m in {watched!r} if m in sys.modules]
print({marker!r} + repr({{"first": t1 - t0, "second": t2 - t1, "third": t3 - t2, "loaded": loaded, "missing": missing}}), flush=True)
"""

_AUTOLOG_CALL = """\
missing = not callable(getattr(autolog, "autolog", None))
if not missing:
    autolog.autolog()
"""


def probe(first: str, second: str = "pass", third: str = "pass", timeout: float = 300) -> dict[str, Any]:
    """Run the three statements in a fresh interpreter; return their times (s) and the frameworks loaded."""
    code = _PROBE.format(first=first, second=second, third=third, watched=FRAMEWORKS + ALSO_WATCHED, marker=RESULT_MARKER)
    env = child_environ()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        env.setdefault("AUTOLOG_URI", os.path.join(folder, "store"))
        env["MLFLOW_TRACKING_URI"] = "sqlite:///" + os.path.join(folder, "mlflow.db")
        try:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=folder, env=env)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"ran past {timeout:.0f} s") from exc
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return ast.literal_eval(line[len(RESULT_MARKER):])
    tail = (done.stdout + done.stderr).strip().splitlines()[-6:]
    raise BenchError(f"exit {done.returncode}: " + " | ".join(tail))


def _startup_table(args: Any) -> Table:
    reps = pairs(args, 5)
    table = Table(NAME, f"start-up: fresh interpreters, median of {reps}", [
        Column("import_ms", "import ms"),
        Column("enable_ms", "autolog() ms"),
        Column("total_ms", "total ms"),
        Column("frameworks", "frameworks imported"),
    ])
    variants = [
        ("import autolog", "import autolog", "pass", ""),
        ("import autolog; autolog.autolog()", "import autolog", _AUTOLOG_CALL, ""),
    ]
    if installed("mlflow") and mode(args) != "quick":
        variants.append(("import mlflow; mlflow.autolog()", "import mlflow", "mlflow.autolog()",
                         f"peer: mlflow {version_of('mlflow')}"))
    peer_reps = pick(args, 1, 3, reps)
    # Alternate variant by variant, round by round, so load drift falls on all rows alike.
    results: dict[str, list[dict]] = {v[0]: [] for v in variants}
    errors: dict[str, BenchError] = {}
    for round_ in range(reps):
        for label, first, second, _note in (variants if round_ % 2 == 0 else variants[::-1]):
            if label in errors or (label.startswith("import mlflow") and round_ >= peer_reps):
                continue
            try:
                results[label].append(probe(first, second))
            except BenchError as exc:
                errors[label] = exc
    for label, _first, _second, note in variants:
        if label in errors:
            table.rows.append(failed_row(label, errors[label]))
            continue
        found = results[label]
        if any(r["missing"] for r in found):
            table.rows.append(Row(label, {"import_ms": median(r["first"] * 1e3 for r in found)},
                                  "autolog.autolog does not exist (yet): only the import was measured"))
            continue
        loaded = sorted({m for r in found for m in r["loaded"]})
        frameworks = [m for m in loaded if m in FRAMEWORKS]
        values = {
            "import_ms": median(r["first"] * 1e3 for r in found),
            "enable_ms": median(r["second"] * 1e3 for r in found) if "autolog()" in label else None,
            "total_ms": median((r["first"] + r["second"]) * 1e3 for r in found),
            "frameworks": ", ".join(frameworks) or "none",
        }
        extra = [m for m in loaded if m in ALSO_WATCHED]
        if extra:
            note = "; ".join(filter(None, [note, f"also imported: {', '.join(extra)}"]))
        if len(found) != reps:
            note = "; ".join(filter(None, [note, f"{len(found)} run(s)"]))
        table.rows.append(Row(label, values, note))
    slowest = _slowest_imports("import autolog; autolog.autolog() if callable(getattr(autolog, 'autolog', None)) else None")
    if slowest:
        table.notes.append("Slowest modules in `import autolog` (self ms, -X importtime, one run): " + slowest)
    installed_fw = [f for f in FRAMEWORKS if installed(f)]
    table.notes += [
        f"Installed here: {', '.join(installed_fw)}. Timed in-process from the first line, interpreter start-up excluded.",
        "Target (BENCHMARKS.md): import autolog + autolog() ≤ 50 ms with every framework installed, importing none.",
    ]
    return table


def _hook_table(args: Any) -> Table:
    names = pick(args, ["sklearn"], ["sklearn"], ["sklearn", "xgboost", "lightgbm", "torch", "keras", "lightning"])
    n = pairs(args, pick(args, 1, 3, 3))
    table = Table(NAME, f"framework import cost the post-import hooks add: `import <fw>` after `import autolog`, without vs with `autolog.autolog()`, {n} alternating pairs", [
        Column("plain_ms", "without autolog() ms"),
        Column("hooked_ms", "after autolog() ms"),
        Column("added_ms", "added ms"),
        Column("ratio", "ratio"),
    ])
    for name in names:
        if not installed(name):
            table.rows.append(Row(f"import {name}", {}, "not installed"))
            continue
        times: dict[str, list[float]] = {"plain": [], "hooked": []}
        try:
            for round_ in range(n):
                for which in (("plain", "hooked") if round_ % 2 == 0 else ("hooked", "plain")):
                    # Both import autolog first, so modules it loads never count for or against the hooks.
                    if which == "plain":
                        found = probe("import autolog", "pass", f"import {name}")
                    else:
                        found = probe("import autolog", _AUTOLOG_CALL, f"import {name}")
                    times[which].append(found["third"])
        except BenchError as exc:
            table.rows.append(failed_row(f"import {name}", exc))
            continue
        plain, hooked = median(times["plain"]), median(times["hooked"])
        table.rows.append(Row(f"import {name}", {
            "plain_ms": plain * 1e3, "hooked_ms": hooked * 1e3, "added_ms": (hooked - plain) * 1e3,
            "ratio": ratios(times, "plain")["hooked"],
        }, f"{name} {version_of(_DIST.get(name, name))}"))
    table.notes.append("added ms: what the post-import hooks (patching on import) add to the framework's own import;"
                       " framework imports take seconds here, so a few hundred ms either way is load noise.")
    if mode(args) != "full":
        table.notes.append("--full adds xgboost, lightgbm, torch, keras and lightning.")
    return table


_DIST = {"sklearn": "scikit-learn"}


def _slowest_imports(code: str, top: int = 6) -> str:
    """The ``top`` modules with the largest own import time when running ``code`` (one run)."""
    env = child_environ()
    with tempfile.TemporaryDirectory(prefix="bench-importtime-") as folder:
        env.setdefault("AUTOLOG_URI", os.path.join(folder, "store"))
        try:
            done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                                  timeout=120, cwd=folder, env=env)
        except subprocess.TimeoutExpired:
            return ""
    found = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            found.append((int(parts[0]), int(parts[1]), parts[2].strip()))
    found.sort(reverse=True)
    total = max((cumulative for _self, cumulative, name in found if name == "autolog"), default=0)
    listed = ", ".join(f"{name} {own / 1e3:.1f}" for own, _cumulative, name in found[:top])
    return f"{listed} (all of autolog: {total / 1e3:.0f} ms under -X importtime)" if listed else ""


def _process_seconds(argv: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise BenchError(f"{' '.join(argv[:3])} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return elapsed


def _bootstrap_table(args: Any) -> Table:
    reps = pairs(args, pick(args, 1, 7, 11))
    table = Table(NAME, f"`autolog run` bootstrap: a whole process from spawn to exit, {reps} alternating round(s)", [
        Column("median_ms", "median ms"),
        Column("spread_ms", "min–max"),
        Column("added_ms", "added ms (per-round median)"),
    ])
    cli = os.path.join(os.path.dirname(sys.executable), "autolog")
    if not os.path.exists(cli):
        table.rows.append(Row("autolog run -- python -c pass", {}, "the autolog command is not installed (pip install -e .)"))
        return table
    variants = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "autolog run -- python -c pass": [cli, "run", "--", "python", "-c", "pass"],
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    env = child_environ()
    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as folder:
        env["AUTOLOG_URI"] = os.path.join(folder, "store")
        try:
            _process_seconds(variants["autolog run -- python -c pass"], env, folder)  # creates the store: untimed
            for round_ in range(reps):
                for label in (list(variants) if round_ % 2 == 0 else list(variants)[::-1]):
                    times[label].append(_process_seconds(variants[label], env, folder))
        except BenchError as exc:
            table.rows.append(failed_row("autolog run -- python -c pass", exc))
            return table
    plain = times["python -c pass"]
    for label, found in times.items():
        values: dict[str, Any] = {"median_ms": median(found) * 1e3, "spread_ms": spread(found, 1e3)}
        if label != "python -c pass":
            values["added_ms"] = median((t - p) * 1e3 for t, p in zip(found, plain))
        table.rows.append(Row(label, values, "the program's run started, environment captured, ended at exit" if "autolog" in label else ""))
    table.notes.append("added ms: the `autolog` command's own start and exec, plus autolog's start-up and exit steps in the program."
                       " Target (BENCHMARKS.md): ≤ 60 ms.")
    return table


def run(args: Any) -> list[Table]:
    """Measure start-up cost, the `autolog run` bootstrap and the import-hook cost autolog adds to frameworks."""
    return [_startup_table(args), _bootstrap_table(args), _hook_table(args)]
