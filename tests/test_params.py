"""Flattening, redaction and truncation of hyper-parameters into params."""

from autolog.patching.params import MAX_VALUE_LENGTH, REDACTED, flatten, is_secret_key, stringify


def test_nested_dicts_flatten_with_dots():
    flat, truncated = flatten({"opt": {"lr": 0.1, "betas": (0.9, 0.99)}, "epochs": 3})
    assert flat == {"opt.lr": "0.1", "opt.betas": "(0.9, 0.99)", "epochs": "3"}
    assert truncated == []


def test_secrets_are_redacted():
    flat, _ = flatten({"api_key": "sk-123", "db": {"password": "hunter2"}, "tokenizer_name": "bert"})
    assert flat["api_key"] == REDACTED and flat["db.password"] == REDACTED
    assert is_secret_key("MLFLOW_TRACKING_TOKEN") and not is_secret_key("learning_rate")


def test_long_values_are_cut_and_reported():
    flat, truncated = flatten({"long": "x" * (MAX_VALUE_LENGTH + 10)})
    assert len(flat["long"]) == MAX_VALUE_LENGTH and truncated == ["long"]


def test_stringify_drops_memory_addresses_and_names_classes():
    class Thing:
        pass

    assert " at 0x" not in stringify(Thing())
    assert stringify(Thing).endswith("Thing")
    assert stringify(1e-3) == "0.001"
