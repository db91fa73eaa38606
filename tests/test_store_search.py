"""Searches answer the same whichever plan runs: top-N by one metric, top-N in general, large result sets."""

from __future__ import annotations

import math
import os

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


_ODD = ['"quoted"', "back\\slash", "".join(chr(i) for i in range(1, 32)) + "\x7f", "😀 中文 é\u0301", "\u2028\u2029",
        '{"a": 1}', "[1]", "null", "123", "true", "", " ", "\ufeffbom", "\U0010ffff", "x" * 5000]


def _odd_store(store):
    """Runs with odd texts, NaN/inf/-0.0/subnormal metrics, runs without params or metrics, a deleted one, a child."""
    ids = []
    for i, text in enumerate(_ODD):
        tags = {f"t.{i}/odd-key:\"'": text, "note": text[::-1]} if i % 3 else {}
        run = store.create_run("odd", name=f"r{i}", tags=tags)
        if i % 4:
            store.log_params(run.id, {"text": text, f"p{i}": i, "a.b/c-d": "v"})
        if i % 5:
            values = [float("nan"), float("inf"), float("-inf"), -0.0, 5e-324, 0.1 + 0.2, 1 / 3, 1.7976931348623157e308]
            store.write_series([(run.id, f"m{k}", [(0, 9.0, 1.0), (i + k, value, 2.5)]) for k, value in enumerate(values)])
        store.end_run(run.id)
        ids.append(run.id)
    child = store.create_run("odd", name="child", parent_run_id=ids[1], tags={"k": _ODD[2]})
    store.log_params(child.id, {"p": _ODD[0]})
    store.delete_run(ids[2])
    store.create_run("other", name="still running")  # RUNNING, owned by this live process
    return ids


def _row_by_row(store, found):
    """The runs of ``found`` read again the old way: one query per run and table, a Python tuple per row."""
    from autolog.store.base import Metric

    conn = store.connection()
    expected = []
    for run in found:
        params = dict(conn.execute("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run.id,)).fetchall())
        tags = dict(conn.execute("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run.id,)).fetchall())
        latest = {key: Metric(key, float("nan") if value is None else value, step, ts) for key, value, step, ts in conn.execute(
            "SELECT key, value, step, timestamp FROM latest_metrics WHERE run_id = ? ORDER BY key", (run.id,))}
        status = conn.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
        expected.append((run.id, status, params, tags, {k: m.value for k, m in latest.items()}, latest))
    return expected


def _observed(runs):
    # repr: NaN compares unequal to itself, and repr also shows key order and -0.0
    return [repr((r.id, r.status, r.params, r.tags, r.metrics, r.latest)) for r in runs]


@pytest.mark.parametrize("whole_tables", [True, False])
@pytest.mark.parametrize("lifecycle", ["active", "deleted", "all"])
def test_a_search_returns_what_the_tables_hold_row_by_row(store, monkeypatch, whole_tables, lifecycle):
    _odd_store(store)
    monkeypatch.setattr(reader, "_WHOLE_TABLES_FROM", 0 if whole_tables else 10**9)
    found = store.search_runs(lifecycle=lifecycle)
    assert len(found) == {"active": 16, "deleted": 1, "all": 17}[lifecycle]
    assert _observed(found) == [repr(row) for row in _row_by_row(store, found)]
    for run in found:
        assert all(type(v) is str for v in [*run.params.values(), *run.tags.values()])
        assert all(math.copysign(1, m.value) == math.copysign(1, run.metrics[k]) for k, m in run.latest.items())
    # each run has dicts of its own, also where nothing was logged
    assert len({id(d) for r in found for d in (r.params, r.tags, r.metrics, r.latest)}) == 4 * len(found)


def test_both_plans_and_get_run_agree_on_every_run(store, monkeypatch):
    _odd_store(store)
    monkeypatch.setattr(reader, "_WHOLE_TABLES_FROM", 0)
    whole = store.search_runs(lifecycle="all", order_by="attributes.name")
    monkeypatch.setattr(reader, "_WHOLE_TABLES_FROM", 10**9)
    one_by_one = store.search_runs(lifecycle="all", order_by="attributes.name")
    assert _observed(whole) == _observed(one_by_one) == _observed([store.get_run(r.id) for r in whole])
    assert [r.status for r in whole if r.name == "still running"] == ["RUNNING"]


def test_a_value_json_cannot_hold_is_read_row_by_row(store, monkeypatch):
    ids = _odd_store(store)
    with store.transaction() as tx:  # another tool wrote a BLOB where text belongs
        tx.execute("INSERT INTO params VALUES (?, 'blob', ?)", (ids[1], b"\x00\xff"))
    for threshold in (0, 10**9):
        monkeypatch.setattr(reader, "_WHOLE_TABLES_FROM", threshold)
        found = store.search_runs()
        assert next(r for r in found if r.id == ids[1]).params["blob"] == b"\x00\xff"
        assert _observed(found) == [repr(row) for row in _row_by_row(store, found)]


def test_a_search_leaves_the_garbage_collector_as_it_was(store, monkeypatch):
    import gc

    _fill(store, 10)
    assert gc.isenabled()
    assert len(store.search_runs()) == 10 and gc.isenabled()
    gc.disable()
    try:
        store.search_runs()
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()

    def broken(*args):
        raise RuntimeError("read failed")

    monkeypatch.setattr(reader, "_add_latest_metrics", broken)
    with pytest.raises(RuntimeError, match="read failed"):
        store.search_runs()
    assert gc.isenabled()


def test_searches_in_several_threads_leave_the_collector_on(store):
    import gc
    import threading

    _fill(store, 10)
    inside, release = threading.Event(), threading.Event()

    def held():
        with reader._gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=held)
    thread.start()
    try:
        assert inside.wait(10)
        assert len(store.search_runs()) == 10  # begins and ends inside the other pause
        assert not gc.isenabled()
    finally:
        release.set()
        thread.join(10)
    assert gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_during_another_threads_search_has_the_collector_on(store):
    import gc
    import threading

    inside, release = threading.Event(), threading.Event()

    def held():
        with reader._gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=held)
    thread.start()
    try:
        assert inside.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: no search of its own is under way
            os._exit(0 if gc.isenabled() and len(store.search_runs()) == 0 and gc.isenabled() else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        thread.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gc.isenabled()
