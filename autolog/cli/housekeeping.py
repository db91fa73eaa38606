"""``autolog rm``, ``autolog restore`` and ``autolog gc``: deleting runs and reclaiming space.

``rm`` soft-deletes runs with their child runs (restorable until ``gc``). Every id is
resolved and checked before anything changes, so one bad id changes nothing, and a
run whose process is still alive is refused unless ``--force``. ``gc`` shows what it
will remove for good and, at a terminal, asks first; ``-y/--yes`` skips the question.
It never asks without a terminal (scripts, CI, cron): there it lists what it removes on
stderr and goes ahead, as before. ``--dry-run`` only lists what would go.
"""

from __future__ import annotations

import argparse
import json
import sys

from autolog.errors import InvalidState

_SHOWN = 20  # runs listed by name in a gc plan before "... and N more"


def fmt_size(n: int) -> str:
    """Bytes as a short human-readable size: ``512 B``, ``1.2 MB``."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # unreachable


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def add_commands(sub) -> None:
    """Register ``rm``, ``restore`` and ``gc`` on the sub-command parser ``sub``."""
    p = sub.add_parser("rm", help="delete runs and their child runs (restorable until gc)")
    p.add_argument("runs", nargs="+", help="run ids or unique prefixes; nothing changes if one is unknown")
    p.add_argument("--restore", action="store_true", help="undo a delete (same as: autolog restore)")
    p.add_argument("--force", action="store_true", help="also delete runs whose process is still running")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("restore", help="bring back deleted runs and their child runs")
    p.add_argument("runs", nargs="+", help="run ids or unique prefixes; nothing changes if one is unknown")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("gc", help="remove deleted runs, unreferenced artifact blobs and abandoned uploads for good")
    p.add_argument("--dry-run", "-n", action="store_true", help="only list what would be removed")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation (gc never asks when not at a terminal)")
    p.add_argument("--json", action="store_true", help="print the result (or with --dry-run the plan) as JSON")
    p.set_defaults(func=cmd_gc)


def cmd_rm(args: argparse.Namespace, store) -> int:
    """Soft-delete runs with their descendants; refuses live runs unless --force."""
    if args.restore:
        return cmd_restore(args, store)
    targets = list(dict.fromkeys(store.resolve_run_id(ref) for ref in args.runs))
    trees = {run_id: store.run_tree(run_id) for run_id in targets}
    if not args.force:
        live = store.running(sorted({r for tree in trees.values() for r in tree}))
        if live:
            raise InvalidState(
                f"refusing to delete {_plural(len(live), 'run')} whose process is still running ({', '.join(r[:8] for r in live)}):"
                " what it logs after gc would be lost; stop it first, or pass --force"
            )
    for run_id in targets:
        children = len(store.delete_run(run_id, children=True)) - 1
        extra = f" and {_plural(children, 'child run')}" if children else ""
        print(f"deleted {run_id}{extra} (restore with: autolog restore {run_id[:8]}; removed for good by: autolog gc)")
    return 0


def cmd_restore(args: argparse.Namespace, store) -> int:
    """Restore soft-deleted runs with their deleted descendants."""
    targets = list(dict.fromkeys(store.resolve_run_id(ref) for ref in args.runs))
    for run_id in targets:
        restored = store.restore_run(run_id, children=True)
        children = len([r for r in restored if r != run_id])
        extra = f" and {_plural(children, 'child run')}" if children else ""
        print(f"restored {run_id}{extra}")
    return 0


def _describe(plan: dict) -> list[str]:
    runs, blobs, incoming = plan["runs"], plan["blobs"], plan["incoming"]
    lines = []
    if runs:
        names = ", ".join(f"{rid[:8]} {name}" for rid, name in runs[:_SHOWN])
        more = f", ... and {len(runs) - _SHOWN} more" if len(runs) > _SHOWN else ""
        lines.append(f"  {_plural(len(runs), 'deleted run')}: {names}{more}")
    if plan["rows"]:
        lines.append(f"  {_plural(plan['rows'], 'row')} of params, tags, metrics and artifacts of deleted or missing runs")
    if blobs:
        lines.append(f"  {_plural(len(blobs), 'unreferenced artifact blob')} ({fmt_size(sum(s for _, s in blobs))})")
    if incoming:
        lines.append(f"  {_plural(len(incoming), 'upload')} abandoned for over an hour ({fmt_size(sum(s for _, s in incoming))})")
    return lines


def cmd_gc(args: argparse.Namespace, store) -> int:
    """Show what gc removes, ask (unless -y), then remove it for good."""
    plan = store.gc_plan()
    lines = _describe(plan)
    if args.dry_run:
        if args.json:
            print(json.dumps({"runs": [{"id": r, "name": n} for r, n in plan["runs"]], "rows": plan["rows"],
                              "blobs": [{"sha256": s, "size": n} for s, n in plan["blobs"]],
                              "incoming": [{"path": p, "size": n} for p, n in plan["incoming"]]}, indent=2))
        else:
            print("\n".join(["gc would remove for good:", *lines]) if lines else "nothing to remove")
        return 0
    if lines and not args.yes and not sys.stdin.isatty():
        print("\n".join(["gc removes for good:", *lines]), file=sys.stderr)  # no terminal to ask on
    elif lines and not args.yes:
        print("\n".join(["gc will remove for good:", *lines]))
        try:
            answer = input("remove these for good? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    result = store.gc()
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(f"removed {_plural(result['runs'], 'deleted run')}, {_plural(result['rows'], 'row')},"
              f" {_plural(result['blobs'], 'unreferenced blob')} and {_plural(result['incoming'], 'abandoned upload')};"
              f" freed {fmt_size(result['bytes'])}")
    return 0
