"""``autolog compare``: runs side by side, with the best value starred only where "best" is known.

A metric gets a star only when its direction was recorded (tag ``autolog.goal.<key>``,
set by the integrations or by ``log_metric(goal=)``); counters, ids and ``system/``
metrics never do. Param names are wrapped, never cut, and params whose values are
dicts (``{'learning_rate': 0.1, ...}``) are opened up so the differing entry shows.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
from typing import TYPE_CHECKING, Any

from autolog.cli.tables import fmt_duration, fmt_value, grid, shorten, wrap_key
from autolog.store import selection

if TYPE_CHECKING:
    from autolog.store.sqlite import SQLiteStore

LABEL_WIDTH = 40
VALUE_WIDTH = 30


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``autolog compare``."""
    p.add_argument("runs", nargs="+", help="run ids or unique prefixes, in column order")
    p.add_argument("--diff", action="store_true", help="show only the params and metrics whose values differ")
    p.add_argument("--plot", metavar="PNG", help="draw metric histories overlaid into this image file (needs matplotlib)")
    p.add_argument("--metric", "-m", action="append",
                   help="with --plot: metrics to draw (repeatable; default: shared histories, headline metrics first)")
    p.add_argument("--json", action="store_true", help="print runs, differing params, goals and best runs as JSON")


def _nested(text: str | None) -> dict[str, Any] | None:
    # Some integrations log a whole config dict as one param value.
    if not text or text[0] != "{":
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = repr(value)
    return out


def differing_nested(runs: list[Any], key: str) -> list[tuple[str, list[str]]]:
    """For a param holding dicts in every run: ``(sub key, values)`` of the entries that differ."""
    dicts = [_nested(r.params.get(key)) for r in runs]
    if any(d is None for d in dicts):
        return []
    flats = [_flat(d) for d in dicts if d is not None]
    subkeys = sorted({k for f in flats for k in f})
    return [(k, [f.get(k, "") for f in flats]) for k in subkeys if len({f.get(k) for f in flats}) > 1]


def metric_order(runs: list[Any]) -> list[str]:
    """Every metric of the runs: headline metrics first, then the rest by name, ``system/`` and ``batch/`` last."""
    keys = {k for r in runs for k in r.metrics}
    head = [k for k in selection.headline_metrics(runs, None) if k in keys]
    rest = sorted(keys - set(head), key=lambda k: (k.startswith(selection.NEVER_DEFAULT_PREFIXES), k))
    return head + rest


def _same(values: list[Any]) -> bool:
    return len({fmt_value(v) for v in values}) <= 1


def _label(text: str, mark: str) -> list[str]:
    lines = wrap_key(text, LABEL_WIDTH)
    return [mark + lines[0], *("   " + line for line in lines[1:])]


def cmd_compare(args: argparse.Namespace, store: SQLiteStore) -> int:
    """Print the runs side by side (or as JSON), and draw their histories with ``--plot``."""
    from autolog.cli.commands import print_json, run_dict

    runs = [store.get_run(r) for r in args.runs]
    if args.plot:
        from autolog.cli.plots import plot_histories_report

        report = plot_histories_report(store, runs, args.plot, args.metric or None)
        print(f"wrote {report['path']}: {', '.join(report['drawn'])}")
        if report["left_out"]:
            print(f"left out: {'; '.join(report['left_out'])} (draw them with -m KEY)")
        if not args.json:
            return 0
    params = sorted({k for r in runs for k in r.params})
    metrics = metric_order(runs)
    goals = {k: selection.metric_goal(runs, k) for k in metrics}
    if args.json:
        best_runs: dict[str, list[str]] = {}
        for key in metrics:
            value = selection.best_value(runs, key)
            if value is not None and len(runs) > 1:
                best_runs[key] = [r.id for r in runs if r.metrics.get(key) == value]
        print_json({"runs": [run_dict(r) for r in runs],
               "differing_params": [k for k in params if len({r.params.get(k) for r in runs}) > 1],
               "goals": {k: g for k, g in goals.items() if g}, "best": best_runs})
        return 0
    headers = ["", *[shorten(f"{r.id[:8]} {r.name}", LABEL_WIDTH) for r in runs]]
    rows: list[list[Any]] = []
    for label, cells in (("status", [r.status for r in runs]), ("duration", [fmt_duration(r.duration_ms) for r in runs])):
        if not args.diff or not _same(cells):
            rows.append([_label(label, "  "), *cells])
    for key in params:
        values = [r.params.get(key, "") for r in runs]
        differs = not _same(values)
        if args.diff and not differs:
            continue
        rows.append([_label(f"params.{key}", "≠ " if differs else "  "), *[shorten(v, VALUE_WIDTH) for v in values]])
        if differs:
            for sub, sub_values in differing_nested(runs, key):
                rows.append([_label(f"params.{key}[{sub}]", "≠ "), *[shorten(v, VALUE_WIDTH) for v in sub_values]])
    unstarred = []
    for key in metrics:
        points = [r.metrics.get(key) for r in runs]
        if args.diff and _same(points):
            continue
        best = selection.best_value(runs, key) if len(runs) > 1 else None
        if goals[key] is None and selection.is_default_metric(key):
            unstarred.append(key)
        cells = [fmt_value(v) + (" *" if best is not None and v is not None and not math.isnan(v) and v == best else "") for v in points]
        goal = {"min": " (min)", "max": " (max)"}.get(goals[key] or "", "")
        rows.append([_label(f"metrics.{key}{goal}", "  "), *cells])
    if args.diff and not rows:
        print("the runs do not differ in any param or metric")
        return 0
    print(grid(headers, rows))
    print("\n≠ marks params that differ; * marks the best value of metrics with a recorded goal (min/max)")
    if unstarred:
        shown = ", ".join(unstarred[:6]) + (f" and {len(unstarred) - 6} more" if len(unstarred) > 6 else "")
        print(f"no recorded goal, so no star: {shown} (record one with log_metric(..., goal='min'|'max') or set_metric_goal)")
    return 0
