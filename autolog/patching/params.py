"""Turning framework objects' hyper-parameters into flat ``str -> str`` params.

Nested dicts are flattened with ``.``; values longer than the param limit are cut and
the run gets a tag listing the cut keys; keys that look like secrets (password,
token, secret, api_key, ...) are logged as ``***`` so credentials never reach the store.
"""

from __future__ import annotations

import re
from typing import Any

from autolog.validation import MAX_KEY_LENGTH

MAX_VALUE_LENGTH = 6000
REDACTED = "***"
_SECRET = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|credential|auth)", re.IGNORECASE)
_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\\]")


def is_secret_key(key: str) -> bool:
    """Whether a key names something that must never be logged in clear."""
    return bool(_SECRET.search(key))


def stringify(value: Any) -> str:
    """A readable, stable string for a param value (classes and callables by name)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bool, int)) or value is None:
        return str(value)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if callable(value) and hasattr(value, "__qualname__"):
        return getattr(value, "__module__", "") + "." + value.__qualname__
    text = repr(value)
    # Default reprs carry memory addresses that differ on every run; drop them.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def flatten(params: dict[str, Any], prefix: str = "", max_depth: int = 5) -> tuple[dict[str, str], list[str]]:
    """Flatten nested dicts into ``{"a.b": "1"}``; return ``(params, truncated_keys)``."""
    flat: dict[str, str] = {}
    truncated: list[str] = []

    def walk(obj: dict, path: str, depth: int) -> None:
        for key, value in obj.items():
            name = _clean_key(f"{path}{key}")
            if not name:
                continue
            if isinstance(value, dict) and value and depth < max_depth:
                walk(value, name + ".", depth + 1)
                continue
            text = REDACTED if is_secret_key(str(key)) else stringify(value)
            if len(text) > MAX_VALUE_LENGTH:
                text = text[: MAX_VALUE_LENGTH - 3] + "..."
                truncated.append(name)
            flat[name] = text

    walk(params, prefix, 0)
    return flat, truncated


def _clean_key(key: str) -> str:
    key = _BAD_KEY_CHARS.sub("_", key).replace("..", ".").lstrip("/")
    return key[:MAX_KEY_LENGTH]


def log_flat_params(fit_run, params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten, redact and log ``params`` through a FitRun; tag keys that were truncated."""
    flat, truncated = flatten(params, prefix)
    fit_run.log_params(flat)
    if truncated:
        fit_run.run.set_tag("autolog.truncated_params", ",".join(truncated)[:1000])
    return flat
