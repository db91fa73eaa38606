"""``python -m benchmarks [name ...]``: run the named benchmarks (default: all) and print their tables.

A benchmark is any module ``benchmarks/<name>.py`` defining ``NAME``, ``DESCRIPTION``
and ``run(args)``; an optional ``ORDER`` number sorts it in the default run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
import traceback
from types import ModuleType

from benchmarks import common

_NOT_BENCHMARKS = {"common", "__main__"}


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _save(report: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def discover() -> dict[str, ModuleType]:
    """Every benchmark module of this package, by name, in run order."""
    folder = os.path.dirname(os.path.abspath(__file__))
    found = []
    for info in pkgutil.iter_modules([folder]):
        if info.name in _NOT_BENCHMARKS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        if callable(getattr(module, "run", None)) and hasattr(module, "NAME"):
            found.append(module)
    found.sort(key=lambda m: (getattr(m, "ORDER", 100), m.NAME))
    return {m.NAME: m for m in found}


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Overhead benchmarks of autolog against its peers (medians taken side by side in one run).",
    )
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run (default: all): {', '.join(names)}")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke mode: small sizes, one repetition")
    size.add_argument("--full", action="store_true", help="full sizes (e.g. 1,000,000-step growth check), more repetitions")
    parser.add_argument("--pairs", type=int, default=None, help="alternating pairs / repetitions per variant (default per benchmark)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text tables")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--save", metavar="FILE", nargs="?", const="",
                        help="also write the raw JSON report (date, machine, command, every table) to FILE"
                             " (default: benchmarks/results/<date>-<mode>.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit code 1 when one of them crashed, 2 for an unknown name."""
    modules = discover()
    args = parse_args(argv, list(modules))
    if args.list:
        for name, module in modules.items():
            print(f"{name:12} {module.DESCRIPTION}")
        return 0
    unknown = [n for n in args.names if n not in modules]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(modules)}", file=sys.stderr)
        return 2
    common.precompile()
    info = common.machine()
    if not args.json:
        print(f"# autolog benchmarks — {info['date']}, Python {info['python']}, {info['platform']}, "
              f"{info['cpus']} CPUs, mode {common.mode(args)}\n", flush=True)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {"date": info["date"], "machine": info, "command": command.strip(), "mode": common.mode(args), "benchmarks": []}
    status = 0
    for name in args.names or list(modules):
        module = modules[name]
        started = time.monotonic()
        try:
            tables = common.as_tables(module.run(args))
        except Exception:
            status = 1
            print(f"benchmark {name} crashed:\n{traceback.format_exc()}", file=sys.stderr)
            report["benchmarks"].append({"name": name, "error": traceback.format_exc(limit=3)})
            continue
        elapsed = time.monotonic() - started
        report["benchmarks"].append({"name": name, "seconds": round(elapsed, 1), "tables": [t.to_dict() for t in tables]})
        if args.save is not None:  # after every benchmark: a run cut short keeps what it measured
            _save(report, args.save or os.path.join(RESULTS, f"{info['date']}-{common.mode(args)}.json"))
        if not args.json:
            for table in tables:
                print(table.render(), flush=True)
            print(f"({name}: {elapsed:.0f} s)\n", flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
