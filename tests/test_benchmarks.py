"""The benchmark runner works end to end; no timing is asserted (the machines are shared and noisy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import common, startup
from benchmarks.__main__ import discover

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_hotpath_quick_prints_its_tables_with_the_autolog_row():
    done = _bench("hotpath", "--quick")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "## hotpath: log_metric" in out
    assert "## cost growth" in out
    lines = out.splitlines()
    autolog_rows = [line for line in lines if line.startswith("autolog ")]
    # one row in the throughput table, one in the growth table, plus the bound-method row
    assert len(autolog_rows) >= 2, out
    assert "all points read back" in out, out  # every logged point was durable and read back
    floor = next(line for line in lines if line.startswith("list.append (floor)"))
    assert "failed" not in floor
    assert not any(line.startswith("autolog") and "failed" in line for line in lines), out


def test_list_and_unknown_names():
    listed = _bench("--list", timeout=60)
    assert listed.returncode == 0
    assert {"hotpath", "startup"} <= {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    unknown = _bench("no-such-benchmark", timeout=60)
    assert unknown.returncode == 2
    assert "unknown benchmark" in unknown.stderr


def test_registry_finds_the_benchmark_modules():
    found = discover()
    assert list(found)[:2] == ["hotpath", "startup"]
    assert all(callable(m.run) and m.DESCRIPTION for m in found.values())


def test_enabling_autolog_imports_no_framework():
    # Not a timing: which modules a fresh `import autolog; autolog.autolog()` loads.
    result = startup.probe("import autolog", startup._AUTOLOG_CALL)
    frameworks = [m for m in result["loaded"] if m in startup.FRAMEWORKS]
    assert frameworks == []


def test_isolated_returns_the_child_result_and_reports_its_failure():
    info = common.isolated("benchmarks.common:machine")
    assert info["cpus"] == os.cpu_count()
    with pytest.raises(common.BenchError, match="ZeroDivisionError|TypeError"):
        common.isolated("benchmarks.common:median", values=None)


def test_table_render_and_json_include_ratios():
    table = common.Table("t", "demo", [common.Column("us", "µs", ratio_to="base")])
    table.rows += [common.Row("base", {"us": 2.0}), common.Row("peer", {"us": 100.0}, "slow"), common.Row("gone", {}, "not installed")]
    text = table.render()
    assert "×50.0" in text and "not installed" in text and "—" in text
    data = json.loads(json.dumps(table.to_dict()))
    assert data["rows"][1]["values"]["us_x_base"] == 50.0
    assert data["rows"][2]["values"]["us_x_base"] is None


def test_alternate_interleaves_and_ratios_are_pairwise():
    calls = []
    times = common.alternate({"plain": lambda: calls.append("p"), "other": lambda: calls.append("o")}, pairs=3, warmup=1)
    assert calls == ["p", "o", "p", "o", "o", "p", "p", "o"]
    assert len(times["plain"]) == len(times["other"]) == 3
    assert common.ratios({"plain": [1.0, 2.0], "other": [2.0, 4.0]}, "plain")["other"] == 2.0


def test_alternate_isolated_collects_results_and_stops_a_failing_variant():
    results, errors = common.alternate_isolated({
        "ok": ("benchmarks.common:median", {"values": [1, 2, 3]}),
        "bad": ("benchmarks.common:median", {"values": None}),
    }, pairs=2)
    assert results["ok"] == [2, 2]
    assert results["bad"] == [] and "bad" in errors
