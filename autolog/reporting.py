"""How autolog's own failures surface: one warning per integration, or raised when strict.

Training must never stop because of autolog. Our errors become a single warning per
integration and process (never one per epoch); ``AUTOLOG_STRICT=1`` re-raises them so
the test suite sees our bugs.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from autolog import env

if TYPE_CHECKING:
    from types import FrameType

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
    warn_at_user_line(message, AutologWarning)


def warn_at_user_line(message: str, category: type[Warning] = AutologWarning) -> None:
    """Warn at the first frame of the user's code: outside autolog, wrapt, the frameworks and the stdlib.

    A warning that points at autolog's own file says nothing about where it came from;
    the user's ``model.fit(...)`` line does. Frames are walked by hand (``skip_file_prefixes``
    needs Python 3.12); from a thread with no user frame it points at autolog's caller.
    """
    skip = _library_prefixes()
    caller = sys._getframe(1)
    first = caller.f_back if caller.f_back is not None else caller
    frame: FrameType | None = caller
    while frame is not None and (frame.f_code.co_filename.startswith(skip) or frame.f_code.co_filename.startswith("<frozen ")):
        frame = frame.f_back
    frame = frame or first
    module_globals = frame.f_globals
    warnings.warn_explicit(
        message, category, frame.f_code.co_filename, frame.f_lineno, module=module_globals.get("__name__", "autolog"),
        registry=module_globals.setdefault("__warningregistry__", {}), module_globals=module_globals,
    )


@functools.lru_cache(maxsize=1)
def _library_prefixes() -> tuple[str, ...]:
    import sysconfig

    import wrapt

    import autolog
    import autolog.integrations  # installed from its own folder

    folders = {os.path.dirname(os.path.abspath(m.__file__)) for m in (autolog, autolog.integrations, wrapt) if m.__file__}
    folders |= {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(os.path.join(f, "") for f in folders if f)


def report(integration: str, exc: BaseException) -> None:
    """Handle an exception raised by autolog code: raise under strict mode, else warn once."""
    if env.strict():
        raise exc
    warn_once(
        f"error:{integration}",
        f"autolog: the {integration} integration hit an error and stopped logging part of this run; "
        f"training is not affected ({type(exc).__name__}: {_first_line(exc)})",
    )
    _debug(f"autolog {integration} error", exc)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    # Framework errors carry native stack traces in their message (XGBoostError: 20 lines of
    # "[bt] (0) libxgboost.so..."): the warning keeps the first line; the "autolog" logger at DEBUG level has it all.
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def guarded(integration: str) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """Decorate a framework callback hook so our error in it is :func:`report`-ed and training goes on.

    The hook returns None either way (framework hooks return nothing); under
    ``AUTOLOG_STRICT=1`` the error is raised, as ``report`` does.
    """
    def decorate(method: Callable[..., Any]) -> Callable[..., None]:
        @functools.wraps(method)
        def hook(*args: Any, **kwargs: Any) -> None:
            try:
                method(*args, **kwargs)
            except Exception as exc:
                report(integration, exc)

        return hook

    return decorate


def _debug(message: str, exc: BaseException | None = None) -> None:
    import logging  # only on this rare path: logging costs milliseconds at import

    logging.getLogger("autolog").debug("%s", message, exc_info=exc)


def reset_warnings() -> None:
    """Forget which topics already warned (tests use it)."""
    with _lock:
        _warned.clear()
