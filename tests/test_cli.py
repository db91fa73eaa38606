"""The `autolog` command: ls, show, compare, rm, gc, --json, prefix ids and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import autolog as al
from autolog.cli.commands import main

QUIET = {"capture_env": False, "log_system_metrics": False}


@pytest.fixture
def runs(store, tmp_path):
    """Three finished runs: two xgb runs that differ in lr, one mlp run with NaN and an artifact."""
    spec = [
        ("xgb-a", {"model": "xgb", "lr": 0.1, "depth": 3}, [0.9, 0.5, 0.3], "FINISHED"),
        ("xgb-b", {"model": "xgb", "lr": 0.01, "depth": 3}, [0.8, 0.6, 0.45], "FINISHED"),
        ("mlp", {"model": "mlp", "lr": 0.001}, [1.0, float("nan")], "FAILED"),
    ]
    (tmp_path / "model.bin").write_bytes(b"weights")
    ids = {}
    for name, params, losses, status in spec:
        run = al.start_run(name=name, experiment="exp", tags={"team": "cv"}, **QUIET)
        al.log_params(params)
        for step, loss in enumerate(losses):
            al.log_metrics({"val_loss": loss, "acc": 1 - loss if loss == loss else 0.0}, step=step)
        if name == "mlp":
            al.log_artifact(tmp_path / "model.bin", "ckpt")
        run.end(status)
        ids[name] = run.id
    return ids


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_table(capsys, runs):
    code, out, err = cli(capsys, "ls")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "name", "status"]
    assert "val_loss" in lines[0] and "acc" in lines[0] and "start" in lines[0] and "duration" in lines[0]
    assert "params.lr" in lines[0] and "params.model" in lines[0]  # the params that differ
    for name, run_id in runs.items():
        assert any(line.startswith(run_id[:8]) and name in line for line in lines)
    assert "FAILED" in out and "nan" in out


def test_ls_filter_sort_limit_json(capsys, runs):
    code, out, _ = cli(capsys, "ls", "--json", "--filter", "params.model = 'xgb'", "--sort", "metrics.val_loss")
    assert code == 0
    data = json.loads(out)
    assert [r["name"] for r in data] == ["xgb-a", "xgb-b"]
    assert data[0]["params"] == {"model": "xgb", "lr": "0.1", "depth": "3"}
    assert data[0]["metrics"]["val_loss"] == 0.3
    code, out, _ = cli(capsys, "ls", "--json", "--limit", "1", "--sort", "metrics.val_loss DESC")
    assert [r["name"] for r in json.loads(out)] == ["xgb-b"]
    code, out, _ = cli(capsys, "ls", "--json", "-e", "exp", "-f", "attributes.status = 'FAILED'")
    mlp = json.loads(out)
    assert [r["name"] for r in mlp] == ["mlp"]
    assert mlp[0]["metrics"]["val_loss"] == "nan"  # JSON has no NaN: spelled as a string
    code, out, _ = cli(capsys, "ls", "-e", "exp", "-f", "metrics.val_loss > 100")
    assert code == 0 and "no runs" in out


def test_show(capsys, runs):
    code, out, err = cli(capsys, "show", runs["xgb-a"][:6])
    assert code == 0, err
    assert runs["xgb-a"] in out and "xgb-a" in out and "FINISHED" in out
    assert "lr" in out and "0.1" in out and "team" in out
    line = next(line for line in out.splitlines() if line.startswith("val_loss"))
    assert "0.3" in line and "█" in line and "▁" in line  # a sparkline of the history
    code, out, _ = cli(capsys, "show", runs["mlp"], "--json", "--history")
    data = json.loads(out)
    assert data["artifacts"] == [{"path": "ckpt/model.bin", "size": 7, "sha256": data["artifacts"][0]["sha256"]}]
    assert data["history"]["val_loss"][0][:2] == [0, 1.0] and data["history"]["val_loss"][1][1] == "nan"
    assert data["status"] == "FAILED"


def test_compare_marks_differing_params_and_best_metrics(capsys, runs):
    code, out, err = cli(capsys, "compare", runs["xgb-a"][:8], runs["xgb-b"][:8])
    assert code == 0, err
    lines = out.splitlines()
    lr = next(line for line in lines if "params.lr" in line)
    depth = next(line for line in lines if "params.depth" in line)
    assert lr.startswith("≠") and not depth.startswith("≠")
    # No goal was recorded for these metrics: no star, whatever their names suggest.
    assert "*" not in "".join(line for line in lines if line.lstrip().startswith("metrics."))
    assert "no recorded goal, so no star: val_loss, acc" in out
    code, out, _ = cli(capsys, "compare", "--json", runs["xgb-a"], runs["mlp"])
    data = json.loads(out)
    assert set(data["differing_params"]) == {"model", "lr", "depth"}
    assert [r["name"] for r in data["runs"]] == ["xgb-a", "mlp"]


def test_rm_restore_and_gc(capsys, runs, store):
    mlp = runs["mlp"]
    code, out, _ = cli(capsys, "rm", mlp[:8])
    assert code == 0 and f"deleted {mlp}" in out
    _, out, _ = cli(capsys, "ls", "--json")
    assert mlp not in {r["id"] for r in json.loads(out)}
    _, out, _ = cli(capsys, "ls", "--json", "--all")
    assert mlp in {r["id"] for r in json.loads(out)}
    code, out, _ = cli(capsys, "rm", "--restore", mlp[:8])
    assert code == 0 and store.get_run(mlp).lifecycle == "active"
    cli(capsys, "rm", mlp)
    code, out, _ = cli(capsys, "gc", "--json")
    assert code == 0 and json.loads(out) == {"runs": 1, "blobs": 1, "bytes": 7}
    code, out, _ = cli(capsys, "gc")
    assert "removed 0 deleted runs" in out
    code, _, err = cli(capsys, "show", mlp)
    assert code == 2 and "no run" in err


def test_unknown_and_ambiguous_runs_exit_2(capsys, runs, store):
    for argv in (["show", "feedbeef"], ["compare", runs["xgb-a"], "nope"], ["rm", "nope"], ["rm", "--restore", "nope"]):
        code, out, err = cli(capsys, *argv)
        assert code == 2, argv
        assert err.startswith("autolog: error:") and "Traceback" not in err
    extra = [store.create_run("exp", f"x{i}") for i in range(40)]
    for r in extra:
        store.end_run(r.id, "FINISHED")
    firsts = [r.id[0] for r in extra]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    code, _, err = cli(capsys, "show", shared)
    assert code == 2 and "ambiguous" in err


def test_bad_usage_exits_2(capsys, runs, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["ls", "--limit", "many"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    capsys.readouterr()
    code, _, err = cli(capsys, "ls", "--filter", "metrics.loss <")
    assert code == 2 and "position" in err and "^" in err
    code, _, err = cli(capsys, "ls", "--limit", "-1")
    assert code == 2 and "max_results" in err and "Traceback" not in err
    code, _, err = cli(capsys, "ls", "-e", "no-such-experiment")
    assert code == 2 and "no-such-experiment" in err
    (tmp_path / "a-file").write_text("x")
    code, _, err = cli(capsys, "--store", str(tmp_path / "a-file"), "ls")
    assert code == 2 and "not a folder" in err


def test_damaged_store_exits_1(capsys, tmp_path):
    bad = tmp_path / "bad-store"
    bad.mkdir()
    (bad / "runs.db").write_bytes(b"this is not a database" * 100)
    code, _, err = cli(capsys, "--store", str(bad), "ls")
    assert code == 1 and "autolog: error:" in err and "Traceback" not in err


def test_experiments(capsys, runs):
    code, out, _ = cli(capsys, "experiments", "--json")
    assert code == 0 and [e["name"] for e in json.loads(out)] == ["exp"]


def test_console_script(runs, store):
    exe = os.path.join(os.path.dirname(sys.executable), "autolog")
    ok = subprocess.run([exe, "--store", store.root, "ls", "--json"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert {r["name"] for r in json.loads(ok.stdout)} == {"xgb-a", "xgb-b", "mlp"}
    missing = subprocess.run([exe, "--store", store.root, "show", "0000"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no run" in missing.stderr
