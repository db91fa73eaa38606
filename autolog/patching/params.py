"""Turning framework objects' hyper-parameters into flat ``str -> str`` params.

Nested dicts are flattened with ``.``; values longer than the param limit are cut and
the run gets a tag listing the cut keys. Values are written as MLflow writes them:
``str()`` of Python scalars, with NumPy scalars and 0-d arrays shown by their value
(``np.float64(1.69)`` -> ``1.69``), functions by their qualified name, scipy frozen
distributions as ``uniform(loc=0, scale=1)``. Credentials are redacted by the store's
write path (``autolog.secrets``), whoever logs them.
"""

from __future__ import annotations

import re
from typing import Any

from autolog.validation import MAX_KEY_LENGTH

MAX_VALUE_LENGTH = 6000
_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\\]")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_NESTING = 6


def stringify(value: Any) -> str:
    """The param text of ``value``: ``str()`` of scalars (NumPy ones by value), names of classes and functions.

    Lists, tuples and dicts are written like Python writes them, with each item shown by
    these rules (``[0.1, 1.0]``, ``[my_metric]``); other objects by their repr, without
    the memory address a default repr carries.
    """
    if isinstance(value, str):
        return value
    return _text(value, 0)


def _text(value: Any, depth: int) -> str:
    if isinstance(value, str):
        return repr(str(value)) if depth else str(value)  # str(): a NumPy str_ reprs as np.str_('a')
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)  # also NumPy float64, a float subclass
    if type(value).__module__.partition(".")[0] == "numpy" and not isinstance(value, type) and not callable(value):
        return str(value)  # NumPy's str() is the plain value: 1.69, 3, True, [1 2 3]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if depth < _MAX_NESTING:
        if isinstance(value, (list, tuple)):
            items = [_text(v, depth + 1) for v in value]
            if isinstance(value, list):
                return "[" + ", ".join(items) + "]"
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{_text(k, depth + 1)}: {_text(v, depth + 1)}" for k, v in value.items()) + "}"
        if _is_frozen_distribution(value):
            args = [_text(a, depth + 1) for a in value.args] + [f"{k}={_text(v, depth + 1)}" for k, v in value.kwds.items()]
            return f"{value.dist.name}({', '.join(args)})"
    if callable(value):
        name = _callable_name(value)
        if name:
            return name
    return _ADDRESS.sub("", repr(value))


def _is_frozen_distribution(value: Any) -> bool:
    # scipy.stats frozen distributions (uniform(0, 1), loguniform(1e-3, 1)), without importing scipy.
    dist = getattr(value, "dist", None)
    return (isinstance(getattr(dist, "name", None), str) and isinstance(getattr(value, "args", None), tuple)
            and isinstance(getattr(value, "kwds", None), dict))


def _callable_name(value: Any) -> str | None:
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if isinstance(name, str):
        return name
    # Wrappers around the user's function (functools.partial, LightGBM's _EvalFunctionWrapper).
    inner = getattr(value, "func", None) or getattr(value, "__wrapped__", None)
    if inner is not None and inner is not value and callable(inner):
        inner_name = getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None)
        return inner_name if isinstance(inner_name, str) else None
    return None


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
            text = stringify(value)
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
    """Flatten and log ``params`` through a FitRun (the store redacts secrets); tag keys that were truncated."""
    flat, truncated = flatten(params, prefix)
    fit_run.log_params(flat)
    if truncated:
        fit_run.run.set_tag("autolog.truncated_params", ",".join(truncated)[:1000])
    return flat
