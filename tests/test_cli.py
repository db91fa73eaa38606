"""The `autolog` command: ls, show, compare, rm, gc, --json, prefix ids and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

import autolog as al
from autolog.cli.commands import build_parser, main

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
    code, out, err = cli(capsys, "show", mlp)
    assert code == 0 and "DELETED" in out and f"autolog restore {mlp[:8]}" in out
    code, out, _ = cli(capsys, "gc", "--dry-run")
    assert code == 0 and f"{mlp[:8]} mlp" in out and "1 unreferenced artifact blob (7 B)" in out
    code, out, _ = cli(capsys, "gc", "--dry-run", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [mlp] and store.get_run(mlp).lifecycle == "deleted"
    code, out, err = cli(capsys, "gc", "--json")  # no terminal to ask on: it never asks, says what goes, and goes
    result = json.loads(out)
    assert code == 0 and "1 deleted run" in err
    assert result["runs"] == 1 and result["blobs"] == 1 and result["bytes"] == 7 and result["rows"] > 0
    code, out, _ = cli(capsys, "gc")
    assert code == 0 and "removed 0 deleted runs" in out and "freed 0 B" in out
    code, _, err = cli(capsys, "show", mlp)
    assert code == 2 and "no run" in err


def test_rm_cascades_to_child_runs_and_restore_brings_them_back(capsys, store):
    with al.start_run(name="search", **QUIET) as parent:
        for i in range(2):
            with al.start_run(name=f"child{i}", nested=True, **QUIET) as child:
                with al.start_run(name=f"grandchild{i}", nested=True, **QUIET):
                    pass
    other = store.create_run("Default", "unrelated")
    store.end_run(other.id, "FINISHED")
    code, out, _ = cli(capsys, "rm", parent.id[:8])
    assert code == 0 and f"deleted {parent.id} and 4 child runs" in out
    assert [r.name for r in store.search_runs()] == ["unrelated"]
    code, out, _ = cli(capsys, "restore", parent.id[:8])
    assert code == 0 and f"restored {parent.id} and 4 child runs" in out
    assert len(store.search_runs()) == 6 and child.id in {r.id for r in store.search_runs()}


def test_rm_of_several_ids_changes_nothing_if_one_is_bad(capsys, runs, store):
    code, _, err = cli(capsys, "rm", runs["xgb-a"], runs["xgb-b"], "nope")
    assert code == 2 and "nope" in err
    assert {r.id for r in store.search_runs()} == set(runs.values())
    code, out, _ = cli(capsys, "rm", runs["xgb-a"][:8], runs["xgb-b"][:8])
    assert code == 0 and {r.name for r in store.search_runs()} == {"mlp"}


def test_ambiguous_prefix_lists_the_candidates(capsys, store):
    made = [store.create_run("exp", f"cand{i}") for i in range(40)]
    for r in made:
        store.end_run(r.id, "FINISHED")
    firsts = [r.id[0] for r in made]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    code, _, err = cli(capsys, "show", shared)
    assert code == 2 and "ambiguous" in err
    for r in made:
        if r.id.startswith(shared):
            assert f"{r.id[:12]} ({r.name})" in err


def test_sizes_are_human_readable():
    from autolog.cli.housekeeping import fmt_size

    assert [fmt_size(n) for n in (0, 999, 1000, 1_234_567, 5 * 10**9)] == ["0 B", "999 B", "1.0 KB", "1.2 MB", "5.0 GB"]


GC_AT_A_TERMINAL = """
import os, pty, subprocess, sys
master, slave = pty.openpty()
proc = subprocess.Popen([sys.executable, "-m", "autolog.cli.commands", "--store", sys.argv[1], "gc"],
                        stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
os.write(master, (sys.argv[2] + "\\n").encode())
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
print(proc.wait(timeout=60))
print(out.decode())
"""


@pytest.mark.parametrize("answer", ["n", "y"])
def test_gc_asks_at_a_terminal(runs, store, answer):
    store.delete_run(runs["mlp"])
    proc = subprocess.run([sys.executable, "-c", GC_AT_A_TERMINAL, store.root, answer], capture_output=True, text=True, timeout=120)
    code, out = proc.stdout.split("\n", 1)
    assert "gc will remove for good" in out and "remove these for good? [y/N]" in out, proc.stdout + proc.stderr
    if answer == "n":
        assert code == "1" and "nothing removed" in out and store.get_run(runs["mlp"]).lifecycle == "deleted"
    else:
        assert code == "0" and "removed 1 deleted run" in out and store.search_runs(lifecycle="deleted") == []


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


# -- the run table: columns, defaults, children, width, formats ---------------------------------
def _table(out: str) -> tuple[list[str], list[list[str]]]:
    """Header words and rows of a table split at its column boundaries (the dashes line)."""
    lines = out.splitlines()
    spans, pos = [], 0
    for dashes in lines[1].split("  "):
        spans.append((pos, pos + len(dashes)))
        pos += len(dashes) + 2
    cut = [[line[a:b].strip() for a, b in spans] for line in lines]
    return cut[0], [row for row, line in zip(cut[2:], lines[2:]) if line and not line.startswith("(")]


def test_ls_columns_globs_and_keys_from_filter_and_sort(capsys, store):
    for i, (opt, lr) in enumerate([("adam", 0.1), ("sgd", 0.01), ("adam", 0.001)]):
        with al.start_run(name=f"k{i}", experiment="keras", tags={"team": "cv"}, **QUIET):
            al.log_params({"optimizer": opt, "optimizer.learning_rate": lr, "optimizer.beta_1": 0.9, "batch_size": 32})
            al.log_metrics({"val_loss": 1.0 - i / 10, "loss": 0.9 - i / 10})
    code, out, err = cli(capsys, "ls", "-c", "params.optimizer.*,tags.team", "-c", "duration")
    assert code == 0 and err == ""
    header, rows = _table(out)
    assert header == ["id", "name", "status", "params.optimizer.beta_1", "params.optimizer.learning_rate", "tags.team", "duration"]
    assert [r[4] for r in rows] == ["0.001", "0.01", "0.1"] and {r[5] for r in rows} == {"cv"}
    # Keys of --filter and --sort become columns by themselves.
    code, out, _ = cli(capsys, "ls", "-c", "name", "-f", "params.optimizer = 'adam'", "-s", "metrics.val_loss")
    header, rows = _table(out)
    assert header == ["id", "name", "status", "params.optimizer", "val_loss"]
    assert [r[1] for r in rows] == ["k2", "k0"] and [r[4] for r in rows] == ["0.8", "1"]


def test_ls_unknown_keys_warn_with_the_closest_existing_ones(capsys, runs):
    code, out, err = cli(capsys, "ls", "-c", "params.dpth", "-m", "val_los")
    assert code == 0
    assert "no key 'params.dpth'" in err and "closest: params.depth" in err
    assert "no key 'metrics.val_los'" in err and "metrics.val_loss" in err
    assert "dpth" not in out.splitlines()[0]  # no empty column
    code, out, err = cli(capsys, "ls", "-f", "params.modl = 'xgb'")
    assert code == 0 and "no runs" in out and "closest: params.model" in err


def test_ls_defaults_are_headline_metrics_and_differing_params(capsys, store):
    linear = pytest.importorskip("sklearn.linear_model", reason="pip install 'autolog[sklearn]'")
    search_mod = pytest.importorskip("sklearn.model_selection", reason="pip install 'autolog[sklearn]'")
    import numpy as np

    rng = np.random.RandomState(0)
    X = rng.rand(60, 3)
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.01 * rng.randn(60)
    al.autolog(only=["sklearn"], log_models=False)
    search = search_mod.GridSearchCV(linear.Ridge(), {"alpha": [0.01, 1.0, 10.0]}, cv=3).fit(X, y)
    al.autolog(disable=True)
    parent = store.search_runs(filter="attributes.parent_run_id = ''") or [r for r in store.search_runs() if r.parent_run_id is None]
    assert any("best_cv_score" in r.metrics for r in parent) and search.best_score_
    for i in range(2):
        with al.start_run(name=f"noisy{i}", experiment=parent[0].experiment, **QUIET):
            al.log_params({"alpha": 0.5 + i})
            al.log_metrics({"system/cpu_percent": 50.0, "batch/loss": 0.3, "best_iteration": 3.0, "best_cv_score": 0.5})
    code, out, _ = cli(capsys, "ls")
    header, rows = _table(out)
    metric_columns = [h for h in header if h not in ("id", "name", "status", "start", "duration", "parent") and not h.startswith("params.")]
    assert metric_columns[0] == "best_cv_score"  # the search's headline metric
    for never in ("cpu_percent", "system/", "batch/", "best_iteration", "mean_fit_time", "rank_test_score", "mean_test_score"):
        assert not any(never in h for h in header), (never, header)
    # The candidates sit indented under their search; --flat lists them with a parent column.
    names = [r[1] for r in rows]
    first_child = next(i for i, n in enumerate(names) if n.startswith("└─ "))
    assert not names[first_child - 1].startswith("└─ ")
    assert sum(n.startswith("└─ ") for n in names) == 3
    code, out, _ = cli(capsys, "ls", "--flat")
    header, rows = _table(out)
    assert "parent" in header and not any(r[1].startswith("└─") for r in rows)



def test_ls_puts_the_model_params_before_the_data_description(capsys, store):
    # LightGBM's advanced example: runs differing in objective and feval also differ in the
    # label dtype; the dtype filled the first param column and objective/feval were cut.
    for i, (objective, dtype) in enumerate([("binary", "int64"), ("loglikelihood", "float32")]):
        with al.start_run(name=f"lgb{i}", **QUIET):
            al.log_params({"dataset.train.label.dtype": dtype, "dataset.train.shape": f"{700 * (i + 1)}x28",
                           "objective": objective, "feval": f"error{i}"})
            al.log_metric("valid_0-binary_logloss", 0.3 + i)
    code, out, _ = cli(capsys, "ls")
    header, _ = _table(out)
    params = [h for h in header if h.startswith("params.")]
    assert params[:2] == ["params.feval", "params.objective"], header
    assert set(params[2:]) == {"params.dataset.train.label.dtype", "params.dataset.train.shape"}


def test_ls_puts_short_param_values_before_estimator_reprs(capsys, store):
    # scikit-learn's ColumnTransformer example: the Pipeline's `preprocessor` and `steps` reprs
    # differ between two fits, and so does the one setting that tells them apart.
    for i, selector in enumerate(["['age', 'fare']", "<sklearn.compose._column_transformer.make_column_selector object>"]):
        with al.start_run(name=f"pipe{i}", **QUIET):
            al.log_params({"preprocessor": f"ColumnTransformer(transformers=[('num', Pipeline(...), {selector})])",
                           "preprocessor__num__imputer__strategy": ["median", "mean"][i]})
            al.log_metric("training_score", 0.8)
    code, out, _ = cli(capsys, "ls")
    header, _ = _table(out)
    params = [h for h in header if h.startswith("params.")]
    assert params[0].endswith("imputer__strategy") and params[1] == "params.preprocessor", header

def test_ls_fits_the_terminal_and_names_what_it_left_out(capsys, store, monkeypatch):
    for i in range(2):
        with al.start_run(name=f"a-rather-long-run-name-that-ends-with-its-number-{i}", **QUIET):
            al.log_params({f"param_{k}": i * k for k in range(8)})
            al.log_metrics({"val_loss": 0.1 * i, "loss": 0.2 * i})
    monkeypatch.setenv("COLUMNS", "90")
    code, out, _ = cli(capsys, "ls")
    lines = out.splitlines()
    assert all(len(line) <= 90 for line in lines)
    start = next(i for i, line in enumerate(lines) if line.startswith("("))
    footer = " ".join(lines[start:])
    assert "left out to fit 90 characters" in footer and "params.param_7" in footer
    header, rows = _table("\n".join(lines[:start]))
    assert "val_loss" in header  # headline metrics stay longest
    assert {r[1][-2:] for r in rows} == {"-0", "-1"}  # the distinguishing tail of the names is kept
    monkeypatch.delenv("COLUMNS")
    code, out, _ = cli(capsys, "ls")
    assert "left out" not in out and "params.param_7" in out  # a pipe gets every column


def test_ls_csv_markdown_and_json_formats(capsys, runs):
    code, out, _ = cli(capsys, "ls", "--format", "csv", "-c", "params.lr,metrics.val_loss", "-s", "name")
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["id", "name", "status", "params.lr", "metrics.val_loss"]
    by_name = {row[1]: row for row in table[1:]}
    assert by_name["xgb-a"][0] == runs["xgb-a"] and by_name["xgb-a"][3:5] == ["0.1", "0.3"] and by_name["mlp"][4] == "nan"
    code, out, _ = cli(capsys, "ls", "--format", "markdown", "-c", "params.model")
    lines = out.splitlines()
    assert lines[0] == "| id | name | status | params.model |" and lines[1] == "|---|---|---|---|" and len(lines) == 5
    code, out, _ = cli(capsys, "ls", "--format", "json")
    assert {r["name"] for r in json.loads(out)} == {"xgb-a", "xgb-b", "mlp"}


def test_ls_into_a_closed_pipe_exits_quietly(runs, store):
    for i in range(200):
        store.end_run(store.create_run("exp", f"bulk-{i}").id, "FINISHED")
    proc = subprocess.Popen([sys.executable, "-m", "autolog.cli", "--store", store.root, "ls", "-n", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written, as after `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert err == ""


def test_ls_sorts_by_duration_and_every_attribute(capsys, store):
    ids = []
    for i, took in enumerate([3000, 1000, 2000]):
        run = store.create_run("exp", f"d{i}")
        store.end_run(run.id, "FINISHED", end_time=run.start_time + took)
        ids.append(run.id)
    code, out, _ = cli(capsys, "ls", "-s", "duration", "-c", "name")
    assert [r[1] for r in _table(out)[1]] == ["d1", "d2", "d0"]
    code, out, _ = cli(capsys, "ls", "-s", "duration DESC", "--format", "csv", "-c", "name")
    assert [line.split(",")[1] for line in out.splitlines()[1:]] == ["d0", "d2", "d1"]
    for attribute in ("id", "name", "experiment", "status", "start", "start_time", "end_time", "duration", "user", "source",
                      "parent_run_id", "lifecycle", "experiment_id", "attributes.duration", "run_id"):
        code, out, err = cli(capsys, "ls", "-s", f"{attribute} DESC", "--format", "csv")
        assert code == 0 and err == "", (attribute, err)
        assert len(out.splitlines()) == 4


def test_version_and_store_after_the_command(capsys, runs, store, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"autolog {al.__version__}"
    elsewhere = tmp_path / "other-store"
    code, out, _ = cli(capsys, "ls", "--store", store.root, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 3
    code, out, _ = cli(capsys, "--store", str(elsewhere), "compare", runs["xgb-a"], "--store", store.root)
    assert code == 0 and "xgb-a" in out  # the store given after the command wins
    for name in ("ls", "show", "compare", "experiments"):
        help_text = build_parser()._subparsers._group_actions[0].choices[name].format_help()
        assert "--store" in help_text


def test_every_option_has_help_text():
    parser = build_parser()
    missing = [a.option_strings for a in parser._actions if not a.help and a.option_strings]
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        missing += [(name, a.option_strings or a.dest) for a in sub._actions if not a.help]
    assert missing == []
