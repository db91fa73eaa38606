"""How autolog's own failures surface: one warning per integration, or raised when strict.

Training must never stop because of autolog. Our errors become a single warning per
integration and process (never one per epoch); ``AUTOLOG_STRICT=1`` re-raises them so
the test suite sees our bugs.
"""

from __future__ import annotations

import threading
import warnings

from autolog import env

_warned: set[str] = set()
_lock = threading.Lock()
_silent = False


class AutologWarning(UserWarning):
    """A problem inside autolog that did not stop training."""


def set_silent(value: bool) -> None:
    """Turn autolog's own warnings off (``autolog(silent=True)``)."""
    global _silent
    _silent = bool(value)


def warn_once(topic: str, message: str) -> None:
    """Emit ``message`` as an AutologWarning the first time ``topic`` is seen in this process."""
    with _lock:
        if topic in _warned:
            _debug(message)
            return
        _warned.add(topic)
    if _silent or env.flag(env.AUTOLOG_SILENT):
        _debug(message)
        return
    warnings.warn(message, AutologWarning, stacklevel=3)


def report(integration: str, exc: BaseException) -> None:
    """Handle an exception raised by autolog code: raise under strict mode, else warn once."""
    if env.strict():
        raise exc
    warn_once(
        f"error:{integration}",
        f"autolog: the {integration} integration hit an error and stopped logging part of this run; "
        f"training is not affected ({type(exc).__name__}: {exc})",
    )
    _debug(f"autolog {integration} error", exc)


def _debug(message: str, exc: BaseException | None = None) -> None:
    import logging  # only on this rare path: logging costs milliseconds at import

    logging.getLogger("autolog").debug("%s", message, exc_info=exc)


def reset_warnings() -> None:
    """Forget which topics already warned (tests use it)."""
    with _lock:
        _warned.clear()
