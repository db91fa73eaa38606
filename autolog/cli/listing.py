"""``autolog ls``: the run table, with the columns asked for, fitted to the terminal.

Columns: ``-c`` picks any mix of ``params.X``, ``metrics.X``, ``tags.X`` and attributes
(globs allowed); keys in ``--filter``/``--sort`` are added; otherwise the headline metrics
and the params that differ. Child runs follow their parent, indented (``--flat`` lists
them as found, with a parent column). Output formats: table, csv, json, markdown.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autolog.cli import columns as col
from autolog.cli.tables import fit_table, fmt_value

if TYPE_CHECKING:
    from autolog.store.base import Run
    from autolog.store.sqlite import SQLiteStore

FORMATS = ("table", "csv", "json", "markdown")
FOOTER_NAMES = 12  # columns named one by one in the footer; the rest are counted
# Lower numbers stay when the terminal is too narrow.
_KEEP_FIRST, _ASKED, _HEADLINE, _PARAM, _CONTEXT = 0, 3, 4, 5, 7


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``autolog ls``."""
    p.add_argument("--experiment", "-e", help="only runs of this experiment")
    p.add_argument("--filter", "-f", help="e.g. \"metrics.val_loss < 0.3 and params.model = 'xgb'\"; its keys become columns")
    p.add_argument("--sort", "-s", action="append",
                   help="e.g. 'metrics.val_loss', 'duration' or 'start_time DESC' (repeatable; any attribute works)")
    p.add_argument("--limit", "-n", type=int, default=50, help="show at most this many runs (default 50)")
    p.add_argument("--columns", "-c", action="append", metavar="KEYS",
                   help="columns: params.X, metrics.X, tags.X, attributes such as duration; globs like "
                        "'params.optimizer.*'; comma-separated or repeated (default: headline metrics and params that differ)")
    p.add_argument("--metric", "-m", action="append", help="metric columns to show (repeatable); same as -c metrics.X")
    p.add_argument("--flat", action="store_true", help="list child runs where they sort, with a parent column, not under their parent")
    p.add_argument("--all", action="store_true", help="include deleted runs (marked with *)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: a table that fits the terminal)")
    p.add_argument("--json", action="store_true", help="same as --format json: every run with all params, metrics and tags")


def terminal_width() -> int | None:
    """The width to fit: the terminal's, ``$COLUMNS`` when set, or None (no limit) for a pipe."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def tree_order(runs: Sequence[Any]) -> list[tuple[Any, int]]:
    """``(run, depth)`` with each child right after its parent (when listed), siblings in listed order."""
    ids = {r.id for r in runs}
    children: dict[str, list[Any]] = {}
    roots = []
    for run in runs:
        if run.parent_run_id in ids and run.parent_run_id != run.id:
            children.setdefault(run.parent_run_id, []).append(run)
        else:
            roots.append(run)
    out: list[tuple[Any, int]] = []
    seen: set[str] = set()

    def walk(run: Run, depth: int) -> None:
        if run.id in seen:  # a parent cycle in a store written by someone else
            return
        seen.add(run.id)
        out.append((run, depth))
        for child in children.get(run.id, []):
            walk(child, depth + 1)

    for run in roots:
        walk(run, 0)
    out.extend((r, 0) for r in runs if r.id not in seen)
    return out


def choose_columns(args: argparse.Namespace, runs: Sequence[Any]) -> tuple[list[col.Column], list[int], list[str]]:
    """The columns of the table in display order, their keep-priorities, and warnings for unknown keys."""
    known = col.known_keys(runs)
    asked = [s for spec in (args.columns or []) for s in spec.split(",") if s.strip()]
    asked += [f"metrics.{m}" for m in args.metric or []]
    auto = col.keys_in_filter(args.filter) + col.keys_in_sort(args.sort)
    picked, warnings = col.resolve(asked, runs, known)
    auto_cols, auto_warnings = col.resolve(auto, runs, known)
    warnings += auto_warnings
    chosen: list[tuple[col.Column, int]] = [(col.attribute_column("id"), _KEEP_FIRST), (col.attribute_column("name"), _KEEP_FIRST + 1)]
    if not args.experiment and len({r.experiment for r in runs}) > 1:
        chosen.append((col.attribute_column("experiment"), _CONTEXT))
    chosen.append((col.attribute_column("status"), 2))
    chosen += [(c, _ASKED) for c in picked + auto_cols]
    if not asked:
        chosen += [(c, _HEADLINE if c.key.startswith("metrics.") else _PARAM) for c in col.default_columns(runs)]
        chosen += [(col.attribute_column("start_time"), _CONTEXT + 1), (col.attribute_column("duration"), _CONTEXT)]
    ids = {r.id for r in runs}
    if any(r.parent_run_id and (args.flat or r.parent_run_id not in ids) for r in runs):
        chosen.append((col.attribute_column("parent_run_id"), _CONTEXT))
    seen: set[str] = set()
    out: list[tuple[col.Column, int]] = []
    for column, priority in chosen:
        if column.key not in seen:
            seen.add(column.key)
            out.append((column, priority))
    return [c for c, _ in out], [p for _, p in out], warnings


def _no_runs(args: argparse.Namespace, store: SQLiteStore) -> None:
    where = f" in experiment {args.experiment!r}" if args.experiment else ""
    print(f"no runs{where} in {store.root}")
    keys = col.keys_in_filter(args.filter) + col.keys_in_sort(args.sort)
    if not keys:
        return
    # A typo in a filter key finds nothing: say so, with the keys that do exist.
    every = store.search_runs(experiment=args.experiment, lifecycle="all" if args.all else "active")
    known = col.known_keys(every)
    for key in keys:
        entity, bare = col.split_key(key)
        if entity == "attributes" or bare in known.get(entity or "", []):
            continue
        _warn(col.unknown_message(key, known, "any run" + where))


def _warn(message: str) -> None:
    print(f"autolog: warning: {message}", file=sys.stderr)


def cmd_ls(args: argparse.Namespace, store: SQLiteStore) -> int:
    """List runs as a table (or csv/json/markdown) with the chosen columns."""
    from autolog.cli.commands import print_json, run_dict

    fmt = "json" if args.json else args.format
    runs = store.search_runs(experiment=args.experiment, filter=args.filter, order_by=col.normal_sort(args.sort),
                             max_results=args.limit, lifecycle="all" if args.all else "active")
    if fmt == "json":
        print_json([run_dict(r) for r in runs])
        return 0
    if not runs:
        _no_runs(args, store)
        return 0
    columns, priority, warnings = choose_columns(args, runs)
    for message in warnings:
        _warn(message)
    ordered = [(r, 0) for r in runs] if args.flat else tree_order(runs)
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.key.removeprefix("attributes.") for c in columns])
        for run, _ in ordered:
            writer.writerow([_raw(c.get(run)) for c in columns])
        return 0
    rows = [[_indent(c.show(c.get(run)), depth) if c.key == "attributes.name" else c.show(c.get(run)) for c in columns]
            for run, depth in ordered]
    headers = [c.header for c in columns]
    if fmt == "markdown":
        print(markdown(headers, rows))
        return 0
    width = terminal_width()
    text, cut = fit_table(headers, rows, width, priority)
    print(text)
    if cut:
        named = ", ".join(cut[:FOOTER_NAMES]) + (f" and {len(cut) - FOOTER_NAMES} more" if len(cut) > FOOTER_NAMES else "")
        note = (f"({len(cut)} column{'s' if len(cut) > 1 else ''} left out to fit {width} characters: {named};"
                " pick columns with -c, or use --format csv)")
        print(textwrap.fill(note, width, break_on_hyphens=False, break_long_words=False) if width else note)
    return 0


def _indent(name: str, depth: int) -> str:
    return name if depth == 0 else "  " * (depth - 1) + "└─ " + name


def _raw(value: Any) -> Any:
    if isinstance(value, float):
        return fmt_value(value) if value != value or value in (float("inf"), float("-inf")) else repr(value)
    return "" if value is None else value


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table; ``|`` in cells is escaped."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return "\n".join([line(headers), "|" + "|".join("---" for _ in headers) + "|", *(line(r) for r in rows)])
