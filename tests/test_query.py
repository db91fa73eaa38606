"""The run filter language: metrics/params/tags/attributes, LIKE, order_by, errors, injection."""

from __future__ import annotations

import sqlite3
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autolog as al
from autolog.errors import InvalidFilter
from autolog.store.query import compile_filter, compile_order_by

# No environment capture or system sampler: their background writes are tested elsewhere
# and would blur "nothing was written" and exact metric sets here.
QUIET = {"capture_env": False, "log_system_metrics": False}


@pytest.fixture
def runs(store):
    """Four runs with known params, tags and metrics in two experiments."""
    spec = [
        ("xgb-small", "trees", {"model": "xgb", "lr": 0.1, "depth": 3}, {"team": "Vision"}, {"val_loss": 0.25, "acc": 0.9}, "FINISHED"),
        ("xgb-big", "trees", {"model": "xgb", "lr": 0.01, "depth": 10}, {"team": "vision"}, {"val_loss": 0.40, "acc": 0.8}, "FINISHED"),
        ("mlp", "nets", {"model": "mlp", "lr": 0.001, "depth": 2}, {"team": "nlp"}, {"val_loss": 0.10, "acc": 0.95}, "FAILED"),
        ("nan-run", "nets", {"model": "mlp_v2", "lr": "auto"}, {}, {"val_loss": float("nan")}, "FINISHED"),
    ]
    ids = {}
    for name, exp, params, tags, metrics, status in spec:
        run = al.start_run(**QUIET, name=name, experiment=exp, tags=tags)
        al.log_params(params)
        al.log_metrics(metrics, step=0)
        run.end(status)
        ids[name] = run.id
        time.sleep(0.003)  # distinct start times for the default newest-first order
    return ids


def names(store, **kw) -> list[str]:
    return [r.name for r in store.search_runs(**kw)]


def test_metric_comparisons(store, runs):
    assert set(names(store, filter="metrics.val_loss < 0.3")) == {"xgb-small", "mlp"}
    assert set(names(store, filter="metrics.val_loss >= 0.25 and metrics.acc != 0.9")) == {"xgb-big"}
    assert names(store, filter="metrics.acc = 0.95") == ["mlp"]
    assert names(store, filter="metrics.acc == 0.95") == ["mlp"]
    assert set(names(store, filter="metrics.acc <> 0.95")) == {"xgb-small", "xgb-big"}
    assert names(store, filter="metrics.val_loss <= 0.1") == ["mlp"]
    assert names(store, filter="metrics.val_loss > 1e-1 and metrics.val_loss < .3") == ["xgb-small"]
    assert names(store, filter="metrics.missing < 1") == []


def test_param_text_and_number_comparisons(store, runs):
    assert set(names(store, filter="params.model = 'xgb'")) == {"xgb-small", "xgb-big"}
    assert set(names(store, filter='params.model != "xgb"')) == {"mlp", "nan-run"}
    # numbers compare numerically where the param looks like a number; 'auto' never matches
    assert set(names(store, filter="params.lr < 0.05")) == {"xgb-big", "mlp"}
    assert names(store, filter="params.depth > 5") == ["xgb-big"]  # 10 > 5 as numbers, not as text
    assert names(store, filter="params.lr = 0.1") == ["xgb-small"]
    assert names(store, filter="params.depth = 3") == ["xgb-small"]
    assert names(store, filter="params.lr = 'auto'") == ["nan-run"]


def test_like_is_case_sensitive_and_ilike_is_not(store, runs):
    assert set(names(store, filter="params.model LIKE 'mlp%'")) == {"mlp", "nan-run"}
    assert names(store, filter="params.model LIKE 'mlp\\_%'") == []  # '_' is a wildcard here...
    assert names(store, filter="params.model LIKE 'mlp_v_'") == ["nan-run"]
    assert names(store, filter="tags.team LIKE 'V%'") == ["xgb-small"]
    assert set(names(store, filter="tags.team ILIKE 'v%'")) == {"xgb-small", "xgb-big"}
    assert set(names(store, filter="params.model NOT LIKE 'x%'")) == {"mlp", "nan-run"}
    assert names(store, filter="attributes.name like 'xgb-s%'") == ["xgb-small"]
    assert names(store, filter="params.model LIKE '[m]*'") == []  # GLOB syntax is literal text
    with pytest.raises(InvalidFilter, match="LIKE"):
        store.search_runs(filter="metrics.acc LIKE '0.9%'")


def test_attributes(store, runs):
    assert names(store, filter="attributes.status = 'FAILED'") == ["mlp"]
    assert names(store, filter="attributes.status = 'failed'") == ["mlp"]
    assert set(names(store, filter="attributes.status != 'FAILED'")) == {"xgb-small", "xgb-big", "nan-run"}
    assert names(store, filter="attributes.name = 'xgb-big'") == ["xgb-big"]
    start = store.get_run(runs["mlp"]).start_time
    assert set(names(store, filter=f"attributes.start_time >= {start}")) >= {"mlp", "nan-run"}
    assert "xgb-small" not in names(store, filter=f"attributes.start_time > {start}")
    assert names(store, filter=f"attributes.id = '{runs['mlp']}'") == ["mlp"]
    assert set(names(store, filter="attributes.experiment = 'nets'")) == {"mlp", "nan-run"}
    assert set(names(store, filter="tags.team = 'vision' and attributes.status = 'FINISHED'")) == {"xgb-big"}


def test_keywords_case_insensitive_and_backquoted_keys(store):
    with al.start_run(**QUIET, name="odd") as run:
        al.log_metric("val loss", 0.5, step=0)
        al.log_metric("validation_0-logloss", 0.2, step=0)
        al.log_param("lr-Adam/pg1", 0.3)
    assert names(store, filter="metrics.`val loss` < 1 AND metrics.validation_0-logloss < 0.3") == ["odd"]
    assert names(store, filter="params.lr-Adam/pg1 = 0.3") == ["odd"]
    assert names(store, filter="metric.`val loss` < 1 aNd param.`lr-Adam/pg1` > 0") == ["odd"]
    assert run.id


def test_experiment_selection_and_max_results(store, runs):
    assert set(names(store, experiment="trees")) == {"xgb-small", "xgb-big"}
    assert len(names(store, experiment=["trees", "nets"])) == 4
    assert len(names(store, max_results=2)) == 2
    assert names(store, max_results=0) == []
    with pytest.raises(ValueError, match="max_results"):
        store.search_runs(max_results=-1)
    with pytest.raises(ValueError, match="lifecycle"):
        store.search_runs(lifecycle="gone")


def test_order_by(store, runs):
    assert names(store, filter="metrics.val_loss > -1", order_by=["metrics.val_loss"]) == ["mlp", "xgb-small", "xgb-big"]
    # runs lacking the value (or with NaN) sort last, in both directions
    assert names(store, order_by="metrics.val_loss DESC") == ["xgb-big", "xgb-small", "mlp", "nan-run"]
    assert names(store, order_by=["params.depth DESC"]) == ["xgb-big", "xgb-small", "mlp", "nan-run"]
    assert names(store, order_by=["params.depth"]) == ["mlp", "xgb-small", "xgb-big", "nan-run"]
    assert names(store, order_by=["attributes.name"]) == ["mlp", "nan-run", "xgb-big", "xgb-small"]
    assert names(store, order_by=["name DESC"]) == ["xgb-small", "xgb-big", "nan-run", "mlp"]
    assert names(store, order_by=["tags.team"]) == ["xgb-small", "mlp", "xgb-big", "nan-run"]  # binary text order
    assert names(store)[0] == "nan-run"  # default: newest first
    assert names(store, order_by=["attributes.start_time ASC"])[0] == "xgb-small"
    with pytest.raises(InvalidFilter):
        store.search_runs(order_by=["metrics.val_loss SIDEWAYS"])
    with pytest.raises(InvalidFilter):
        store.search_runs(order_by=["attributes.nope"])


@pytest.mark.parametrize(
    "flt",
    [
        "params.model = 'x'' OR 1=1 --'",
        "params.model = 'xgb'; DROP TABLE runs; --'",
        "tags.`team' OR '1'='1` = 'a'",
        "params.`x\") OR 1=1 --` = 1",
        "attributes.name LIKE '%' ",
        "params.model = \"'); DELETE FROM params; --\"",
    ],
)
def test_injection_attempts_are_harmless(store, runs, flt):
    before = sqlite3.connect(store.db_path).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    try:
        found = names(store, filter=flt)
    except InvalidFilter:
        found = None
    if found is not None and "LIKE" not in flt:
        assert found == []  # the quote is part of the compared text, never SQL
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == before == 4
    assert conn.execute("SELECT COUNT(*) FROM params").fetchone()[0] == 11
    conn.close()


def test_quotes_inside_values_match_literally(store):
    with al.start_run(**QUIET, name="quoted"):
        al.log_param("note", "it's \"fine\"; DROP TABLE runs")
    assert names(store, filter="params.note = 'it''s \"fine\"; DROP TABLE runs'") == ["quoted"]
    assert names(store, filter="params.note = \"it's \\\"fine\\\"; DROP TABLE runs\"") == ["quoted"]


def test_compiled_sql_binds_every_value():
    sql, binds = compile_filter("params.`a' OR 1=1` = 'b; DROP' and metrics.x < 3")
    assert "DROP" not in sql and "OR 1=1" not in sql
    assert "a' OR 1=1" in binds and "b; DROP" in binds and 3.0 in binds
    order, order_binds = compile_order_by(["params.`k'; --` DESC"])
    assert "--" not in order and "k'; --" in order_binds


def test_error_points_at_the_token():
    with pytest.raises(InvalidFilter) as info:
        compile_filter("metrics.loss < 0.3 and params.model ~ 'x'")
    text = str(info.value)
    assert "position 36" in text
    source_line, caret_line = text.splitlines()[-2:]
    assert source_line[caret_line.index("^")] == "~"


def test_empty_filter_means_everything(store, runs):
    assert len(names(store, filter="")) == len(names(store, filter="   ")) == len(names(store, filter=None)) == 4


def test_metric_history_full_and_in_step_order(store):
    with al.start_run(**QUIET, name="h") as run:
        for step in [3, 1, 2, 1, 0]:
            al.log_metric("loss", float(step), step=step)
    hist = store.metric_history(run.id, "loss")
    assert [p.step for p in hist] == [0, 1, 1, 2, 3]
    assert all(isinstance(p, al.MetricPoint) for p in hist)


filter_parts = st.sampled_from([
    "metrics.loss", "params.model", "tags.`a b`", "attributes.status", "attributes.start_time", "attr.name", "bogus.x",
    "=", "!=", "<", ">=", "LIKE", "not like", "ILIKE", "and", "or", "'x'", "'%'", '"q"', "'it''s'", "1", "-2.5e3", "inf",
    "nan", "(", ")", ";", "--", "`", "'", "\\",
])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.lists(filter_parts, max_size=8).map(" ".join), st.text(max_size=40)))
def test_fuzzed_filters_either_match_or_raise_invalid_filter(store, runs, flt):
    try:
        found = store.search_runs(filter=flt)
    except InvalidFilter as exc:
        assert "position" in str(exc) or "must be" in str(exc)
    else:
        assert len(found) <= 4
    assert len(store.search_runs()) == 4


def test_readme_states_the_like_semantics():
    import os
    import re

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"), encoding="utf-8") as fh:
        text = " ".join(fh.read().split())
    assert "`LIKE` and `NOT LIKE` are case-sensitive and `ILIKE` is not" in text
    assert not re.search(r"`LIKE` follows SQLite \(case-insensitive", text)
