"""``python -m benchmarks._markdown RESULT.json``: the README's benchmark tables from a saved report.

Reads the raw JSON that ``python -m benchmarks --full --save`` writes and prints every
table as Markdown (the same columns, ratios and notes as the text output), headed by the
date, machine and command, so the README is regenerated from one run, never edited by hand.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from benchmarks.common import fmt


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|")


def table(data: dict[str, Any]) -> str:
    """One saved table as Markdown."""
    header = [""]
    for column in data["columns"]:
        header.append(column["title"])
        if column.get("ratio_to"):
            header.append(f"× {column['ratio_to']}")
    header.append("note")
    lines = [f"#### {data['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in data["rows"]:
        values = row["values"]
        cells = [row["label"]]
        for column in data["columns"]:
            cells.append(_cell(values.get(column["key"])))
            if column.get("ratio_to"):
                ratio = values.get(f"{column['key']}_x_{column['ratio_to']}")
                cells.append("—" if ratio is None else f"×{fmt(ratio)}")
        cells.append(row.get("note", "").replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    if data.get("notes"):
        lines += [""] + [f"- {note}" for note in data["notes"]]
    return "\n".join(lines) + "\n"


def render(report: dict[str, Any]) -> str:
    """Every table of a saved report, with what it was measured on."""
    machine = report.get("machine", {})
    out = [f"Measured {report.get('date', machine.get('date', '?'))} on {machine.get('cpus', '?')} CPUs "
           f"({machine.get('cpu_model') or machine.get('cpu', '?')}), Python {machine.get('python', '?')}, "
           f"{machine.get('platform', '?')}, load average at start {machine.get('load_average')}; "
           f"command: `{report.get('command', 'python -m benchmarks')}`.", ""]
    for bench in report["benchmarks"]:
        out.append(f"### `{bench['name']}`" + (f" ({bench['seconds']:.0f} s)" if "seconds" in bench else ""))
        out.append("")
        if "error" in bench:
            out.append(f"crashed: `{bench['error'].strip().splitlines()[-1]}`\n")
            continue
        out += [table(t) for t in bench["tables"]]
    return "\n".join(out)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as fh:
            print(render(json.load(fh)))
