"""Cheap checks of what users pass to the tracking API, shared by the API and the store.

Every check raises before anything is written and names the offending argument
and value, so a bad call never leaves half a record behind.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from autolog.errors import InvalidMetric, InvalidName, InvalidType

MAX_KEY_LENGTH = 250
MAX_NAME_LENGTH = 500
MAX_PARAM_LENGTH = 8000
MAX_TAG_LENGTH = 8000
MAX_STEP = 2**53  # steps are exact in a float64 and fit SQLite's INTEGER
RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
END_STATUSES = ("FINISHED", "FAILED", "KILLED")

# Keys that already passed check_key; the hot path pays a set lookup, not a parse.
_checked_keys: set[str] = set()


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _check_utf8(text: str, argument: str) -> None:
    # SQLite stores UTF-8: a lone surrogate would fail later, inside the writer thread.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"{argument} must be valid UTF-8 text (no lone surrogates): {text!r:.80}") from None


GOAL_TAG_PREFIX = "autolog.goal."
GOALS = ("min", "max")


def check_goal(goal: Any, argument: str = "goal") -> str:
    """Validate a metric direction: ``"min"`` (lower is better) or ``"max"`` (higher is better)."""
    if goal not in GOALS:
        raise InvalidName(f"{argument} must be 'min' or 'max', got {goal!r:.80}")
    return goal


def check_key(key: Any, argument: str = "key") -> str:
    """Validate a metric/param/tag key: a non-empty str, no ``..``, no leading ``/``."""
    if not isinstance(key, str):
        raise InvalidType(f"{argument} must be a str, got {type(key).__name__} {key!r:.80}")
    if key in _checked_keys:
        return key
    if not key or not key.strip():
        raise InvalidName(f"{argument} must not be empty, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidName(f"{argument} is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}: {key[:40]!r}...")
    if key.startswith("/") or ".." in key or "\\" in key:
        raise InvalidName(f"{argument} must not start with '/' or contain '..' or '\\': {key!r}")
    if _has_control(key):
        raise InvalidName(f"{argument} must not contain control characters: {key!r}")
    _check_utf8(key, argument)
    if len(_checked_keys) < 100_000:
        _checked_keys.add(key)
    return key


def check_name(name: Any, argument: str = "name") -> str:
    """Validate an experiment or run name: a non-empty str without control characters."""
    if not isinstance(name, str):
        raise InvalidType(f"{argument} must be a str, got {type(name).__name__} {name!r}")
    if not name.strip():
        raise InvalidName(f"{argument} must not be empty, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{argument} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    if _has_control(name):
        raise InvalidName(f"{argument} must not contain control characters: {name!r}")
    _check_utf8(name, argument)
    return name


def metric_value(value: Any, key: str) -> float:
    """Return ``value`` as a float (NaN and ±inf allowed); raise for anything not a number."""
    if isinstance(value, (str, bytes, bytearray)) or not hasattr(type(value), "__float__"):
        raise InvalidMetric(f"value of metric {key!r} must be a number, got {type(value).__name__} {value!r:.80}")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise InvalidMetric(f"value of metric {key!r} must be a single number, got {value!r:.80}: {exc}") from None


def metric_step(step: Any, key: str) -> int:
    """Return ``step`` as an int; floats with an integral value are accepted."""
    if isinstance(step, bool) or isinstance(step, (str, bytes)):
        raise InvalidMetric(f"step of metric {key!r} must be an int, got {step!r}")
    try:
        as_int = int(step)
    except (TypeError, ValueError, OverflowError):
        raise InvalidMetric(f"step of metric {key!r} must be an int, got {type(step).__name__} {step!r}") from None
    if isinstance(step, float) and (math.isnan(step) or step != as_int):
        raise InvalidMetric(f"step of metric {key!r} must be an integer, got {step!r}")
    if not -MAX_STEP <= as_int <= MAX_STEP:
        raise InvalidMetric(f"step of metric {key!r} must be within ±2**53, got {step!r}")
    return as_int


def check_metric(key: Any, value: Any, step: Any = None) -> tuple[str, float, int | None]:
    """Validate one metric point; return ``(key, value as float, step as int or None)``."""
    check_key(key)
    value = value if type(value) is float else metric_value(value, key)
    return key, value, None if step is None else metric_step(step, key)


def check_metrics(metrics: Any, step: Any = None) -> tuple[list[tuple[str, float]], int | None]:
    """Validate a dict of metrics and its step before any is queued; return ``([(key, value)], step)``."""
    if not isinstance(metrics, dict):
        raise InvalidType(f"metrics must be a dict of name -> number, got {type(metrics).__name__}")
    # Ints too: 10**400 must fail here, before the other keys of the batch are queued.
    clean = [check_metric(key, value)[:2] for key, value in metrics.items()]
    return clean, None if step is None else metric_step(step, "metrics")


def text_value(value: Any, argument: str, limit: int) -> str:
    """Turn a param or tag value into its string form; reject values over ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidName(f"{argument} is {len(text)} characters long; the limit is {limit}")
    if "\x00" in text:
        raise InvalidName(f"{argument} must not contain NUL characters")
    _check_utf8(text, argument)
    return text


class CheckedParams(dict):
    """Params whose keys and values passed ``checked_params``: the run and the store write them as they are."""


class CheckedTags(dict):
    """Tags whose keys and values passed ``checked_tags``: the run and the store write them as they are."""


_Checked = TypeVar("_Checked", CheckedParams, CheckedTags)
_TEXTS: dict[type, tuple[str, str, int]] = {
    CheckedParams: ("params", "param", MAX_PARAM_LENGTH), CheckedTags: ("tags", "tag", MAX_TAG_LENGTH),
}


def checked_params(params: Any) -> CheckedParams:
    """Param keys checked and values turned into the text stored, once (see ``checked_texts``)."""
    return checked_texts(params, CheckedParams)


def checked_tags(tags: Any) -> CheckedTags:
    """Tag keys checked and values turned into the text stored, once (see ``checked_texts``)."""
    return checked_texts(tags, CheckedTags)


def checked_texts(data: Any, record: type[_Checked]) -> _Checked:
    """Check the keys of a params/tags dict and turn its values into text, into a ``record`` later layers trust.

    A ``record`` passes through as it is, so whoever receives it first (the API, ``ActiveRun``
    or the store) checks it and nobody checks it again.

    Raises:
        InvalidType: ``data`` is not a dict, or a key is not a str.
        InvalidName: a bad key, or a value over the length limit (named).
    """
    if isinstance(data, record):
        return data
    argument, noun, limit = _TEXTS[record]
    if not isinstance(data, dict):
        raise InvalidType(f"{argument} must be a dict, got {type(data).__name__}")
    return record({check_key(k, f"{noun} key"): text_value(v, f"{noun} {k!r}", limit) for k, v in data.items()})


def check_status(status: Any, allowed: tuple[str, ...] = END_STATUSES) -> str:
    """Validate a run status against ``allowed``."""
    if not isinstance(status, str) or status.upper() not in allowed:
        raise InvalidName(f"status must be one of {', '.join(allowed)}, got {status!r}")
    return status.upper()
