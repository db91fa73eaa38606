"""Searches answer the same whichever plan runs: top-N by one metric, top-N in general, large result sets."""

from __future__ import annotations

import math

import pytest

from autolog.store import reader


def _fill(store, n=40):
    ids = []
    for i in range(n):
        run = store.create_run("search", name=f"r{i}")
        store.log_params(run.id, {"group": f"g{i % 3}"})
        value = float("nan") if i % 7 == 0 else (i % 5) / 10  # ties, and NaN (stored as no value)
        points = [(0, value, 1.0)]
        if i % 4 == 0:
            points = []  # some runs never log the metric
        if points:
            store.write_series([(run.id, "score", points)])
        store.write_series([(run.id, "other", [(0, float(i), 1.0)])])
        store.end_run(run.id)
        ids.append(run.id)
    return ids


@pytest.mark.parametrize("order,n,flt", [
    ("metrics.score", 5, None), ("metrics.score DESC", 5, None), ("metrics.score asc", 30, None),
    ("metrics.score", 40, None), ("metrics.score DESC", 7, "params.group = 'g1'"), ("metrics.missing", 3, None),
    ("metrics.other DESC", 10, "metrics.score >= 0.2"),
])
def test_top_n_by_one_metric_matches_the_general_plan(store, monkeypatch, order, n, flt):
    _fill(store)
    fast = store.search_runs(filter=flt, order_by=order, max_results=n)
    monkeypatch.setattr(reader, "_by_one_metric", lambda order_by: None)
    general = store.search_runs(filter=flt, order_by=order, max_results=n)
    assert [r.id for r in fast] == [r.id for r in general]
    assert len(fast) == min(n, len(store.search_runs(filter=flt)))
    scores = [r.metrics.get("score") for r in fast]
    present = [s for s in scores if s is not None and not math.isnan(s)]
    assert present == sorted(present, reverse="DESC" in order.upper()) or "score" not in order


def test_the_index_plan_is_used_for_a_top_n_by_one_metric(store):
    _fill(store, 10)
    conn = store.connection()
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT m.run_id FROM latest_metrics m WHERE m.key = ? AND m.value IS NOT NULL"
                        " ORDER BY m.value, m.run_id LIMIT 3", ["score"]).fetchall()
    assert any("latest_by_key_value" in str(row) for row in plan)
    assert reader._by_one_metric("metrics.score DESC") == ("score", "DESC")
    assert reader._by_one_metric(["metrics.a", "metrics.b"]) is None and reader._by_one_metric("params.lr") is None


def test_a_large_result_reads_whole_tables_and_keeps_only_the_runs_found(store, monkeypatch):
    ids = _fill(store, 30)
    monkeypatch.setattr(reader, "_WHOLE_TABLES_FROM", 5)
    runs = {r.id: r for r in store.search_runs(filter="params.group != 'g0'")}
    assert len(runs) == 20 and set(runs) <= set(ids)
    monkeypatch.setattr(reader, "_WHOLE_TABLES_FROM", 10**9)
    again = {r.id: r for r in store.search_runs(filter="params.group != 'g0'")}
    # repr: NaN values compare unequal to themselves
    assert {k: repr((r.params, r.tags, r.latest)) for k, r in runs.items()} == {k: repr((r.params, r.tags, r.latest)) for k, r in again.items()}
