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


def test_spread_and_job_values_pair_each_round_with_its_plain_round():
    assert common.spread([3.0, 1.0, 2.0]) == "1.00–3.00"
    assert common.spread([None]) is None
    plain = [{"wall": 1.0, "thread_cpu": 1.0, "written": 1.0, "cpu": 2.0}, {"wall": 2.0, "thread_cpu": 2.0, "written": 2.0, "cpu": 4.0}]
    logged = [{"wall": 1.1, "thread_cpu": 1.0, "written": 1.5, "cpu": 3.0}, {"wall": 2.2, "thread_cpu": 2.0, "written": 3.0, "cpu": 6.0}]
    values = common.job_values(logged, plain)
    assert round(values["wall_x"], 6) == 1.1 and values["thread_cpu_x"] == 1.0
    assert values["written_x"] == 1.5 and values["cpu_x"] == 1.5
    assert values["wall_spread"] == "1.10–2.20"


def test_timed_job_measures_the_call_and_the_settling_apart():
    import time

    done = []
    sample = common.timed_job(lambda: done.append("call"), lambda: (time.sleep(0.05), done.append("settle")))
    assert done == ["call", "settle"]
    assert sample["written"] >= sample["wall"] + 0.04  # the settling is in "written" only
    assert set(sample) == {"wall", "thread_cpu", "written", "cpu"}


def test_children_get_bytecode_and_the_repository_on_their_path(monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = common.child_environ(EXTRA="1")
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["EXTRA"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == ROOT


def test_quick_mode_runs_our_rows_only_and_saves_the_raw_report(tmp_path):
    saved = tmp_path / "results" / "run.json"
    done = _bench("hotpath", "--quick", "--json", "--save", str(saved))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    kept = json.loads(saved.read_text())
    assert kept["command"] == f"python -m benchmarks hotpath --quick --json --save {saved}"
    assert kept["machine"]["cpus"] == os.cpu_count() and kept["date"] and kept["benchmarks"] == report["benchmarks"]
    tables = report["benchmarks"][0]["tables"]
    labels = {row["label"] for table in tables for row in table["rows"]}
    assert labels == {"autolog", "autolog (run.log_metric)", "list.append (floor)"}
    growth = tables[-1]["rows"][0]["values"]
    assert growth["rounds"] == 1 and growth["last_first"] > 0


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_boosting_probes_see_every_round_and_the_call_start_and_end(framework):
    # Not a timing: the probes installed in a fresh child catch each round's callback and the engine's start and end.
    pytest.importorskip(framework)
    result = common.isolated("benchmarks.boosting:measure", framework=framework, variant="autolog-bare", rounds=7, rows=400, cols=5,
                             warmup_rounds=3)
    assert result["ours_rounds"] == 7 and result["ours_calls"] == 2  # before_train + after_train of the timed call only
    assert result["points"] == 7
    assert 0 < result["ours_round_s"] + result["ours_call_s"] < result["thread_cpu"]
    assert result["probe_overhead_s"] > 0


def test_lightning_probes_see_every_step_and_the_fit_start_and_end():
    # Not a timing: the probes installed in a fresh child catch each step's hooks, each epoch boundary and the fit's start and end.
    pytest.importorskip("lightning")
    result = common.isolated("benchmarks.lightning:measure", variant="autolog", pairs=1, batches=7, epochs=2, warmup=0)
    logged, plain = result["logged"][0], result["plain"][0]
    assert logged["ours_steps"] == 14
    hooks = logged["ours_hooks"]
    assert hooks["on_train_batch_start"] == hooks["on_train_batch_end"] == 14
    assert hooks["on_train_epoch_start"] == hooks["on_train_epoch_end"] == 2
    assert hooks["before"] == hooks["after"] == hooks["on_train_start"] == hooks["on_fit_end"] == 1  # the patch and the run's open and end
    assert 0 < logged["ours_step_s"] + logged["ours_fit_s"] < logged["thread_cpu"]
    assert plain["ours_probes"] == 0  # autolog off: no callback, nothing probed
    assert result["points"] == 28  # loss + lr at each of the 14 steps
    assert logged["probe_overhead_s"] > 0
