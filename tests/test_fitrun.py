"""Which run an autologged fit logs into (open_fit_run), and how FitRun ends it."""

from __future__ import annotations

import re

import pytest

import autolog as al
from autolog.patching import options
from autolog.patching.lifecycle import open_fit_run


class Model:
    """Stands for whatever object a framework fits."""


@pytest.fixture(autouse=True)
def reset_options():
    yield
    options.set_global({})
    options.clear_for("fake")


def test_no_active_run_gets_own_run(store):
    fit = open_fit_run("fake", "LinearThing", model=Model())
    assert fit is not None and fit.owned
    assert re.fullmatch(r"LinearThing-\d{6}", fit.run.name)
    fit.finish()
    run = store.get_run(fit.run.id)
    assert run.status == "FINISHED"
    assert run.tags["autolog.integration"] == "fake"
    assert run.tags["autolog.model"] == "LinearThing"
    assert al.last_run() is fit.run
    assert al.active_run() is None


def test_own_run_failed_status(store):
    fit = open_fit_run("fake", "Thing")
    fit.finish("FAILED")
    assert store.get_run(fit.run.id).status == "FAILED"
    assert al.last_run() is fit.run


def test_extra_tags_option_and_call_tags(store):
    options.set_for("fake", {"extra_tags": {"team": "a"}})
    fit = open_fit_run("fake", "Thing", tags={"autolog.flavor": "x"})
    fit.finish()
    tags = store.get_run(fit.run.id).tags
    assert tags["team"] == "a" and tags["autolog.flavor"] == "x"


def test_first_fit_in_user_run_uses_it_and_leaves_it_open(store):
    model = Model()
    with al.start_run("mine") as user:
        fit = open_fit_run("fake", "Thing", model=model)
        assert fit.run is user and not fit.owned
        fit.finish()
        assert not user.ended and al.active_run() is user
        assert al.last_run() is user
        assert store.get_run(user.id).tags["autolog.integration"] == "fake"
        assert store.get_run(user.id).status == "RUNNING"
    assert store.get_run(user.id).status == "FINISHED"


def test_same_model_again_continues_same_run_and_state(store):
    model = Model()
    with al.start_run("mine") as user:
        first = open_fit_run("fake", "Thing", model=model)
        first.model_state["step_offset"] = 10
        first.finish()
        second = open_fit_run("fake", "Thing", model=model)
        assert second.run is user and not second.owned
        assert second.model_state is first.model_state and second.model_state["step_offset"] == 10
        second.finish()
    assert store.child_runs(user.id) == []


def test_other_model_gets_nested_child_run(store):
    with al.start_run("mine") as user:
        open_fit_run("fake", "Thing", model=Model()).finish()
        child = open_fit_run("fake", "Other", model=Model())
        assert child.owned and child.run is not user
        assert child.run.parent_run_id == user.id
        assert child.model_state == {}
        child.finish()
        assert al.active_run() is user and not user.ended
        record = store.get_run(child.run.id)
        assert record.parent_run_id == user.id and record.status == "FINISHED"
        assert record.tags["autolog.model"] == "Other"
        assert re.fullmatch(r"Other-\d{6}", record.name)


def test_exclusive_without_user_run_gives_none(store):
    options.set_global({"exclusive": True})
    assert open_fit_run("fake", "Thing", model=Model()) is None
    assert store.search_runs() == []
    with al.start_run("mine") as user:
        fit = open_fit_run("fake", "Thing", model=Model())
        assert fit is not None and fit.run is user
        fit.finish()


def test_log_params_skips_keys_already_logged(store):
    with al.start_run("mine") as user:
        user.log_params({"alpha": 1})
        fit = open_fit_run("fake", "Thing", model=Model())
        fit.log_params({"alpha": 2, "beta": 3})
        fit.log_params({"beta": 4, "gamma": 5})
        fit.log_params({})
        fit.finish()
    params = store.get_run(user.id).params
    assert params == {"alpha": "1", "beta": "3", "gamma": "5"}
