"""autolog() options: validation naming the option, global vs per-integration precedence."""

from __future__ import annotations

import pytest

from autolog.patching import options


@pytest.fixture(autouse=True)
def reset_options():
    yield
    options.set_global({})
    options.clear_for()


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("log_models", "yes", TypeError),
        ("exclusive", 1, TypeError),
        ("log_every_n_steps", 0, ValueError),
        ("log_every_n_steps", True, ValueError),
        ("log_every_n_steps", 1.5, ValueError),
        ("max_tuning_runs", -1, ValueError),
        ("extra_tags", [1], TypeError),
        ("extra_tags", {1: "a"}, TypeError),
        ("checkpoint", "sometimes", ValueError),
        ("checkpoint", True, ValueError),
        ("checkpoint", 0, ValueError),
        ("checkpoint_monitor", 3, TypeError),
        ("no_such_option", 1, TypeError),
    ],
)
def test_validate_errors_name_the_option(key, value, error):
    with pytest.raises(error, match=key):
        options.validate({key: value})


@pytest.mark.parametrize(
    "good",
    [{}, dict(options.DEFAULTS), {"checkpoint": "best"}, {"checkpoint": False}, {"checkpoint": None},
     {"extra_tags": {"a": 1}}, {"max_tuning_runs": 0}, {"log_every_n_steps": 7}, {"checkpoint_monitor": "val_loss"}],
)
def test_validate_accepts_good_values(good):
    assert options.validate(good) is good


def test_defaults_when_nothing_set():
    assert options.get("any", "log_models") is True
    assert options.get("any", "log_every_n_steps") == 1
    assert options.get("any", "checkpoint") is None


def test_set_global_replaces_all():
    options.set_global({"log_models": False, "log_every_n_steps": 5})
    assert options.get("x", "log_models") is False and options.get("x", "log_every_n_steps") == 5
    options.set_global({"log_every_n_steps": 2})
    assert options.get("x", "log_models") is True  # back to its default
    assert options.get("x", "log_every_n_steps") == 2


def test_set_for_wins_over_global_whatever_the_order():
    options.set_for("a", {"log_models": False})
    options.set_global({"log_models": True, "log_every_n_steps": 3})
    assert options.get("a", "log_models") is False
    assert options.get("a", "log_every_n_steps") == 3  # not overridden: the global value
    assert options.get("b", "log_models") is True
    options.set_global({"log_models": True})
    options.set_for("b", {"log_models": False})
    assert options.get("b", "log_models") is False


def test_set_for_replaces_previous_overrides():
    options.set_for("a", {"log_models": False, "exclusive": True})
    options.set_for("a", {"exclusive": False})
    assert options.get("a", "log_models") is True and options.get("a", "exclusive") is False


def test_invalid_values_change_nothing():
    options.set_global({"log_models": False})
    with pytest.raises(ValueError, match="log_every_n_steps"):
        options.set_global({"log_models": True, "log_every_n_steps": 0})
    with pytest.raises(ValueError, match="checkpoint"):
        options.set_for("a", {"checkpoint": "sometimes"})
    assert options.get("a", "log_models") is False and options.get("a", "checkpoint") is None


def test_clear_for_one_and_all():
    options.set_global({"log_models": True})
    options.set_for("a", {"log_models": False})
    options.set_for("b", {"log_models": False})
    options.clear_for("a")
    assert options.get("a", "log_models") is True and options.get("b", "log_models") is False
    options.clear_for("never-set")  # no error
    options.clear_for()
    assert options.get("b", "log_models") is True


def test_disable_resets_every_option():
    import autolog as al
    from autolog import reporting, secrets

    al.autolog(only=["sklearn"], log_models=False, log_every_n_steps=4, silent=True, redact=False)
    options.set_for("sklearn", {"checkpoint": "best"})
    assert options.get("sklearn", "log_models") is False and not secrets.enabled()
    al.autolog(disable=True)
    assert options.get("sklearn", "log_models") is True and options.get("x", "log_every_n_steps") == 1
    assert options.get("sklearn", "checkpoint") is None
    assert secrets.enabled()
    reporting.reset_warnings()
    with pytest.warns(reporting.AutologWarning):  # silent=True is undone too
        reporting.warn_once("after-disable", "autolog: test")


def test_log_input_examples_is_gone_and_redact_is_a_flag():
    import autolog as al

    with pytest.raises(TypeError, match="log_input_examples"):
        al.autolog(log_input_examples=True)
    with pytest.raises(TypeError, match="unknown autolog option 'log_input_examples'"):
        options.validate({"log_input_examples": True})
    with pytest.raises(TypeError, match="redact"):
        options.validate({"redact": "no"})
