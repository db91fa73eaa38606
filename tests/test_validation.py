"""Bad input through the manual API: a clear TypeError/ValueError naming the argument,
raised before anything is written, and the store still lists every other run."""

from __future__ import annotations

import math
import os
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autolog as al
from autolog import validation
from autolog.errors import AutologError, InvalidFilter, InvalidMetric, ParamConflict

# No environment capture or system sampler: their background writes are tested elsewhere
# and would blur "nothing was written" and exact metric sets here.
QUIET = {"capture_env": False, "log_system_metrics": False}

TABLES = ("experiments", "runs", "params", "tags", "metric_chunks", "latest_metrics", "artifacts")


def snapshot(store) -> dict:
    """Every row of every table plus the blob files: what 'nothing was written' compares."""
    al.flush()
    conn = sqlite3.connect(store.db_path)
    try:
        data = {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in TABLES}
    finally:
        conn.close()
    data["blobs"] = sorted(name for _d, _s, names in os.walk(store.blobs.root) for name in names)
    return data


@pytest.fixture
def other_runs(store):
    """Two finished runs in two experiments that bad input must never hide or damage."""
    ids = []
    for exp in ("alpha", "beta"):
        with al.start_run(**QUIET, name=f"keep-{exp}", experiment=exp, tags={"t": exp}) as run:
            al.log_param("lr", 0.1)
            for i in range(5):
                al.log_metric("loss", 1.0 / (i + 1), step=i)
            al.log_text("hello " + exp, "notes/readme.txt")
        ids.append(run.id)
    return ids


def assert_others_intact(store, ids) -> None:
    reopened = al.open_store(store.root)
    listed = {r.id for r in reopened.search_runs()}
    assert set(ids) <= listed
    for run_id in ids:
        run = reopened.get_run(run_id)
        assert run.status == "FINISHED"
        assert run.params == {"lr": "0.1"}
        assert run.metrics["loss"] == pytest.approx(0.2)
        assert [p.step for p in reopened.metric_history(run_id, "loss")] == list(range(5))
        assert [a.path for a in reopened.list_artifacts(run_id)] == ["notes/readme.txt"]
    fresh = sqlite3.connect(store.db_path)
    try:
        assert fresh.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        fresh.close()


def check_rejected(store, ids, call, exc_types, *words):
    """Run ``call``: it must raise one of ``exc_types`` whose message has ``words``; nothing written."""
    before = snapshot(store)
    with pytest.raises(exc_types) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert snapshot(store) == before
    assert_others_intact(store, ids)
    return info.value


# -- experiment names ---------------------------------------------------------------------
@pytest.mark.parametrize("name", [123, 1.5, None, b"bytes", ["x"]])
def test_set_experiment_non_str_is_type_error(store, other_runs, name):
    err = check_rejected(store, other_runs, lambda: al.set_experiment(name), TypeError, "experiment")
    assert isinstance(err, AutologError)
    assert repr(name) in str(err)


@pytest.mark.parametrize("name", ["", "   ", "x" * 501, "bad\nname", "nul\x00"])
def test_set_experiment_bad_str_is_value_error(store, other_runs, name):
    check_rejected(store, other_runs, lambda: al.set_experiment(name), ValueError, "experiment")


def test_start_run_with_int_experiment_writes_nothing(store, other_runs):
    check_rejected(store, other_runs, lambda: al.start_run(**QUIET, experiment=123), TypeError, "experiment")
    assert al.active_run() is None


# -- keys ---------------------------------------------------------------------------------
BAD_KEYS = [
    ("", ValueError, "empty"),
    ("   ", ValueError, "empty"),
    ("k" * 251, ValueError, "250"),
    ("a/../b", ValueError, ".."),
    ("..", ValueError, ".."),
    ("/abs", ValueError, "/"),
    ("tab\tkey", ValueError, "control"),
    ("nul\x00", ValueError, "control"),
    ("lone\ud800surrogate", ValueError, "UTF-8"),
    (5, TypeError, "str"),
    (None, TypeError, "str"),
    (("t", "u"), TypeError, "str"),
]


@pytest.mark.parametrize("key,exc,word", BAD_KEYS)
def test_bad_metric_key(store, other_runs, key, exc, word):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.log_metric(key, 1.0, step=0), exc, "key", word)
        check_rejected(store, other_runs, lambda: run.log_metric(key, 1.0), exc, "key", word)
        check_rejected(store, other_runs, lambda: al.log_metrics({"ok": 1.0, key: 2.0}, step=0), exc, "key", word)
    assert store.get_run(run.id).metrics == {}


@pytest.mark.parametrize("key", [["unhashable"], {"a": 1}])
def test_unhashable_metric_key_is_type_error_naming_key(store, other_runs, key):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: run.log_metric(key, 1.0), TypeError, "key")
        check_rejected(store, other_runs, lambda: al.log_metric(key, 1.0), TypeError, "key")


@pytest.mark.parametrize("key,exc,word", BAD_KEYS)
def test_bad_param_and_tag_key(store, other_runs, key, exc, word):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.log_param(key, 1), exc, "param key", word)
        check_rejected(store, other_runs, lambda: al.log_params({"fine": 1, key: 2}), exc, "param key", word)
        check_rejected(store, other_runs, lambda: al.set_tag(key, "v"), exc, "tag key", word)
        check_rejected(store, other_runs, lambda: al.set_tags({"fine": "v", key: "w"}), exc, "tag key", word)
    got = store.get_run(run.id)
    assert got.params == {}
    assert "fine" not in got.tags


def test_bad_tag_key_at_start_run_creates_no_run(store, other_runs):
    check_rejected(store, other_runs, lambda: al.start_run(**QUIET, name="x", tags={"../up": "v"}), ValueError, "tag key")
    assert al.active_run() is None


def test_bad_run_name(store, other_runs):
    check_rejected(store, other_runs, lambda: al.start_run(**QUIET, name=7), TypeError, "name")
    check_rejected(store, other_runs, lambda: al.start_run(**QUIET, name=""), ValueError, "name")


# -- metric values and steps -------------------------------------------------------------
@pytest.mark.parametrize("value", ["0.5", b"1", None, [1.0, 2.0], {"v": 1}, object(), 10**400, 1 + 2j])
def test_non_numeric_metric_value(store, other_runs, value):
    with al.start_run(**QUIET, name="victim") as run:
        err = check_rejected(store, other_runs, lambda: al.log_metric("loss", value, step=1), InvalidMetric, "loss")
        assert isinstance(err, TypeError) and isinstance(err, ValueError)
        check_rejected(store, other_runs, lambda: al.log_metrics({"acc": 0.5, "loss": value}, step=1), InvalidMetric, "loss")
        check_rejected(store, other_runs, lambda: run.log_metric("loss", value), InvalidMetric, "loss")
    assert store.get_run(run.id).metrics == {}


@pytest.mark.parametrize("step", ["1", 1.5, float("nan"), float("inf"), True, None.__class__, 2**60, -(2**60), [1]])
def test_bad_step(store, other_runs, step):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.log_metric("loss", 1.0, step=step), InvalidMetric, "step", "loss")
        check_rejected(store, other_runs, lambda: run.log_metric("loss", 1.0, step=step), InvalidMetric, "step")
        check_rejected(store, other_runs, lambda: al.log_metrics({"loss": 1.0}, step=step), InvalidMetric, "step")
    assert store.get_run(run.id).metrics == {}


def test_special_floats_and_numeric_types_are_kept(store):
    import fractions
    from decimal import Decimal

    with al.start_run(**QUIET, name="ok") as run:
        al.log_metric("nan", float("nan"), step=0)
        al.log_metric("inf", float("inf"), step=0)
        al.log_metric("ninf", float("-inf"), step=0)
        al.log_metric("dec", Decimal("0.25"), step=0)
        al.log_metric("frac", fractions.Fraction(1, 4), step=0)
        al.log_metric("int", 3, step=2.0)  # an integral float step is accepted
    got = store.get_run(run.id)
    assert math.isnan(got.metrics["nan"])
    assert got.metrics["inf"] == math.inf and got.metrics["ninf"] == -math.inf
    assert got.metrics["dec"] == got.metrics["frac"] == 0.25
    assert store.metric_history(run.id, "int")[0].step == 2


# -- params written once --------------------------------------------------------------------
def test_param_relogged_with_other_value(store, other_runs):
    with al.start_run(**QUIET, name="victim") as run:
        al.log_param("lr", 0.1)
        al.log_param("lr", 0.1)  # the same value again is fine
        err = check_rejected(store, other_runs, lambda: al.log_param("lr", 0.2), ParamConflict, "lr", "0.1", "0.2")
        assert isinstance(err, ValueError)
        # all or nothing: the new key of a conflicting batch is not written either
        check_rejected(store, other_runs, lambda: al.log_params({"new": 1, "lr": 0.3}), ValueError, "lr")
    assert store.get_run(run.id).params == {"lr": "0.1"}


def test_over_long_param_value(store, other_runs):
    with al.start_run(**QUIET, name="victim"):
        check_rejected(store, other_runs, lambda: al.log_param("big", "x" * 8001), ValueError, "big", "8000")


def test_non_dict_batches(store, other_runs):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.log_params([("a", 1)]), TypeError, "params")
        check_rejected(store, other_runs, lambda: al.set_tags("a=1"), TypeError, "tags")
        check_rejected(store, other_runs, lambda: al.log_metrics([("a", 1.0)]), TypeError, "metrics")
    assert store.get_run(run.id).params == {}


# -- artifacts --------------------------------------------------------------------------------
@pytest.mark.parametrize("artifact_path", ["../../etc", "a/../../b", "/etc", "..", "C:/Windows", "a/\x01b"])
def test_artifact_path_escaping_the_run(store, other_runs, tmp_path, artifact_path):
    src = tmp_path / "passwd"
    src.write_text("root:x:0:0")
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.log_artifact(src, artifact_path), ValueError, "artifact_path")
        check_rejected(store, other_runs, lambda: al.log_artifacts(tmp_path, artifact_path), ValueError, "artifact_path")
    assert store.list_artifacts(run.id) == []


@pytest.mark.parametrize("artifact_file", ["../../etc/passwd", "/etc/passwd", "", "dir/"])
def test_artifact_file_escaping_the_run(store, other_runs, artifact_file):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.log_text("x", artifact_file), ValueError, "artifact_file")
        check_rejected(store, other_runs, lambda: al.log_dict({"a": 1}, artifact_file), ValueError, "artifact_file")
        check_rejected(store, other_runs, lambda: run.log_bytes(b"x", artifact_file), ValueError, "artifact_file")
    assert store.list_artifacts(run.id) == []


def test_artifact_path_must_be_str(store, other_runs, tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("x")
    with al.start_run(**QUIET, name="victim"):
        check_rejected(store, other_runs, lambda: al.log_artifact(src, 5), TypeError, "artifact_path")
        check_rejected(store, other_runs, lambda: al.log_artifact(5), TypeError, "local_path")


def test_missing_artifact_file(store, other_runs, tmp_path):
    with al.start_run(**QUIET, name="victim") as run:
        err = check_rejected(store, other_runs, lambda: al.log_artifact(tmp_path / "nope.bin"), ValueError, "local_path", "nope.bin")
        assert isinstance(err, FileNotFoundError)
        check_rejected(store, other_runs, lambda: al.log_artifact(tmp_path), ValueError, "local_path")  # a folder
        check_rejected(store, other_runs, lambda: al.log_artifacts(tmp_path / "nodir"), ValueError, "local_dir", "nodir")
    assert store.list_artifacts(run.id) == []


# -- filters ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flt,pos",
    [
        ("metrics.loss <", 14),
        ("metrics.loss << 1", 14),
        ("bogus.loss < 1", 0),
        ("metrics.loss < 1 or params.a = 'b'", 17),
        ("params.model = 'xgb", 15),
        ("metrics.loss < 'abc'", 15),
        ("attributes.nope = 1", 0),
        ("metrics.loss < 1 and", 20),
        ("loss < 1", 0),
        ("metrics.loss ; DROP TABLE runs", 13),
    ],
)
def test_malformed_filter(store, other_runs, flt, pos):
    err = check_rejected(store, other_runs, lambda: store.search_runs(filter=flt), InvalidFilter, "filter", f"position {pos}")
    assert isinstance(err, ValueError)
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") - 2 == pos  # the caret sits under the bad token


def test_filter_of_wrong_type(store, other_runs):
    check_rejected(store, other_runs, lambda: store.search_runs(filter=123), InvalidFilter, "filter")
    check_rejected(store, other_runs, lambda: store.search_runs(order_by=[5]), InvalidFilter, "order_by")


# -- status -------------------------------------------------------------------------------
def test_bad_end_status(store, other_runs):
    with al.start_run(**QUIET, name="victim") as run:
        check_rejected(store, other_runs, lambda: al.end_run("DONE"), ValueError, "status")
        check_rejected(store, other_runs, lambda: run.end(3), ValueError, "status")
    assert store.get_run(run.id).status == "FINISHED"


def test_check_key_accepts_framework_names():
    for key in ("loss", "val_loss", "validation_0-logloss", "train/acc", "a.b", "épsilon", "lr-Adam/pg1"):
        assert validation.check_key(key) == key


# -- fuzz -------------------------------------------------------------------------------------
garbage = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()), max_size=20),
    st.integers(), st.floats(), st.none(), st.booleans(), st.binary(max_size=10),
    st.lists(st.integers(), max_size=3), st.just("../../etc/passwd"), st.just("/root"),
)
keys = st.one_of(st.sampled_from(["loss", "acc", "a/b", "x.y"]), garbage)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(10**30), max_value=10**30), garbage)
steps = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63), st.floats(), garbage)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("metric"), keys, values, steps),
        st.tuples(st.just("metrics"), st.dictionaries(keys.filter(lambda k: isinstance(k, str)), values, max_size=3), steps),
        st.tuples(st.just("param"), keys, garbage),
        st.tuples(st.just("tag"), keys, garbage),
        st.tuples(st.just("text"), garbage, keys),
        st.tuples(st.just("experiment"), garbage),
        st.tuples(st.just("run"), garbage, garbage),
    ),
    max_size=12,
)


def _apply(action) -> None:
    kind, *args = action
    if kind == "metric":
        al.log_metric(*args)
    elif kind == "metrics":
        al.log_metrics(*args)
    elif kind == "param":
        al.log_param(*args)
    elif kind == "tag":
        al.set_tag(*args)
    elif kind == "text":
        al.log_text(*args)
    elif kind == "experiment":
        al.set_experiment(*args)
    elif kind == "run":
        with al.start_run(**QUIET, name=args[0], experiment=args[1], nested=True):
            al.log_metric("inner", 1.0)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=actions)
def test_fuzz_manual_api_keeps_store_readable(store, other_runs, batch):
    with al.start_run(**QUIET, name="fuzz") as run:
        for action in batch:
            try:
                _apply(action)
            except (TypeError, ValueError) as exc:
                assert str(exc)  # a message, never a bare error
    assert al.flush() == 0  # nothing stuck in the writer: no bad point poisoned a batch
    assert_others_intact(store, other_runs)
    reopened = al.open_store(store.root)
    got = reopened.get_run(run.id)
    assert got.status == "FINISHED"
    for key in reopened.metric_keys(run.id):
        reopened.metric_history(run.id, key)
    for exp in reopened.list_experiments():
        reopened.search_runs(experiment=exp.name)
    for art in reopened.list_artifacts(run.id):
        assert os.path.isfile(reopened.artifact_file(run.id, art.path))


@pytest.mark.parametrize("active", [False, True], ids=["implicit run", "active run"])
def test_params_and_tags_are_checked_once_on_their_way_to_the_store(store, monkeypatch, active):
    # The API checks and normalizes them into a record; ActiveRun and the store trust it.
    calls = []
    real = validation.text_value

    def counting(value, argument, limit):
        calls.append(argument)
        return real(value, argument, limit)

    monkeypatch.setattr(validation, "text_value", counting)
    run = al.start_run(**QUIET) if active else None
    al.log_params({"lr": 0.1, "depth": 3})
    al.set_tag("team", "vision")
    al.log_param("seed", 7)
    al.end_run()
    ours = [c for c in calls if c.endswith(("'lr'", "'depth'", "'seed'", "'team'"))]  # not the run's own tags
    assert sorted(ours) == ["param 'depth'", "param 'lr'", "param 'seed'", "tag 'team'"]
    rec = store.get_run(run.id if run is not None else store.search_runs()[0].id)
    assert rec.params == {"lr": "0.1", "depth": "3", "seed": "7"} and rec.tags["team"] == "vision"


def test_an_artifact_path_is_normalised_once():
    # ActiveRun normalises the path; the store receives it normalised and does not parse it again.
    from autolog.store.artifacts import safe_artifact_path

    first = safe_artifact_path("models//best/./model.pkl")
    assert first == "models/best/model.pkl" and safe_artifact_path(first) is first
    with pytest.raises(ValueError, match=r"\.\."):
        safe_artifact_path("models/../../etc/passwd")
