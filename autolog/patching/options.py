"""autolog() options: global values plus per-integration overrides, read at call time.

Patched functions look options up when they run, so changing them needs no
re-patching; a value given to ``autolog.integrations.<name>.autolog(...)`` wins over
the global ``autolog(...)`` whatever the order of the two calls.
"""

from __future__ import annotations

import threading
from typing import Any

from autolog.errors import InvalidName, InvalidType

DEFAULTS: dict[str, Any] = {
    "exclusive": False,
    "silent": False,
    "log_models": True,
    "log_datasets": True,
    "log_every_n_steps": 1,
    "extra_tags": None,
    "max_tuning_runs": 5,
    "checkpoint": None,
    "checkpoint_monitor": None,
    "log_post_training_metrics": True,
    "log_preprocessing": False,
    "disable_for_unsupported_versions": False,
    "capture_env": True,
    "log_system_metrics": True,
    "log_importance_plot": False,
    "redact": True,
}
CHECKPOINT_POLICIES = (None, False, "best", "last", "all")

_lock = threading.Lock()
_global: dict[str, Any] = dict(DEFAULTS)
_per_integration: dict[str, dict[str, Any]] = {}


def validate(options: dict[str, Any]) -> dict[str, Any]:
    """Check option types and values; raise a TypeError/ValueError naming the option."""
    for key, value in options.items():
        if key not in DEFAULTS:
            raise InvalidType(f"unknown autolog option {key!r}; known: {', '.join(sorted(DEFAULTS))}")
        if key in ("exclusive", "silent", "log_models", "log_datasets", "log_post_training_metrics", "log_preprocessing",
                   "redact", "disable_for_unsupported_versions", "capture_env", "log_system_metrics",
                   "log_importance_plot"):
            if not isinstance(value, bool):
                raise InvalidType(f"autolog option {key} must be True or False, got {value!r}")
        elif key == "max_tuning_runs" and value is None:
            continue  # MLflow's meaning: a child run for every candidate
        elif key in ("log_every_n_steps", "max_tuning_runs"):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "log_every_n_steps" else 0):
                least = "a positive" if key == "log_every_n_steps" else "a non-negative"
                raise InvalidName(f"autolog option {key} must be {least} int, got {value!r}")
        elif key == "extra_tags":
            if value is not None and (not isinstance(value, dict) or not all(isinstance(k, str) for k in value)):
                raise InvalidType(f"autolog option extra_tags must be a dict of str -> value, got {value!r}")
        elif key == "checkpoint":
            # 0 == False: an int would pass the membership test, so check the type too.
            if value not in CHECKPOINT_POLICIES or not isinstance(value, (str, bool, type(None))):
                raise InvalidName(f"autolog option checkpoint must be one of 'best', 'last', 'all' or False, got {value!r}")
        elif key == "checkpoint_monitor":
            if value is not None and not isinstance(value, str):
                raise InvalidType(f"autolog option checkpoint_monitor must be a metric name (str), got {value!r}")
    return options


def set_global(options: dict[str, Any]) -> None:
    """Replace the global options (a later ``autolog()`` call updates them all)."""
    validate(options)
    with _lock:
        _global.clear()
        _global.update(DEFAULTS)
        _global.update(options)


def reset() -> None:
    """Back to the defaults: global options and every per-integration override (``autolog(disable=True)``)."""
    with _lock:
        _global.clear()
        _global.update(DEFAULTS)
        _per_integration.clear()


def set_for(integration: str, options: dict[str, Any]) -> None:
    """Set options that apply to one integration only and win over the global ones."""
    validate(options)
    with _lock:
        _per_integration[integration] = dict(options)


def clear_for(integration: str | None = None) -> None:
    """Forget per-integration overrides (all when ``integration`` is None)."""
    with _lock:
        if integration is None:
            _per_integration.clear()
        else:
            _per_integration.pop(integration, None)


def get(integration: str, key: str) -> Any:
    """The value of option ``key`` for ``integration`` now."""
    own = _per_integration.get(integration)
    if own is not None and key in own:
        return own[key]
    return _global.get(key, DEFAULTS.get(key))
