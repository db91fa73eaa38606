"""Safe patching: one wrapper shape for every framework entry point, and a registry to undo it.

Built on ``wrapt``, imported when the first patch is applied (wrapt imports ``inspect``,
which a process that patches nothing must not pay for; the post-import hooks that wait for a
framework live in ``hooks``): a patched attribute is a ``FunctionWrapper`` around the original
descriptor (function, classmethod, sklearn's ``available_if``), so ``__name__``,
``__doc__``, ``inspect.signature`` and attribute availability stay the original's.
Every patch is recorded as (parent, attribute, original, was-own-attribute) and
reverted in reverse order, restoring the very same object or deleting what was only
inherited.

The safety rules of DESIGN.md are enforced here, not by each integration: the user's
call runs exactly once and its result or exception passes through untouched; our code
before and after it is wrapped so that an error becomes one warning per integration
(raised under ``AUTOLOG_STRICT=1``); only the outermost patched call logs, tracked per
thread and asyncio task with a context variable, which a framework's own worker threads
receive through ``carry_inside``.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from typing import Any

from autolog.reporting import report, warn_once

# True while a patched call is running in this thread/task: nested patched calls
# (Pipeline.fit -> step.fit, XGBClassifier.fit -> xgboost.train) call straight through.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("autolog_inside_patched_call", default=False)


def inside_patched_call() -> bool:
    """Whether the current thread/task is already inside an autologged call."""
    return _inside.get()


def is_rank_zero() -> bool:
    """Whether this process may log: only global rank 0 does under distributed training.

    Read from the environment variables launchers set (torchrun, Lightning, SLURM, MPI),
    without importing torch.distributed. This reads the environment on every call;
    patched calls use a per-process cache of the answer instead.
    """
    for name in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(name)
        if value not in (None, ""):
            if name == "SLURM_PROCID" and "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_NTASKS") == "1":
                continue
            try:
                return int(value) == 0
            except ValueError:
                continue
    return True


# (pid, answer): launchers set the rank before a process starts, so it is read once per
# process, and again after a fork or whenever patches are applied (``autolog()``).
_rank_cache: tuple[int, bool] = (0, True)


def _rank_zero_cached() -> bool:
    global _rank_cache
    pid, answer = _rank_cache
    if pid != os.getpid():
        answer = is_rank_zero()
        _rank_cache = (os.getpid(), answer)
    return answer


def _forget_rank() -> None:
    global _rank_cache
    _rank_cache = (0, True)


def carry_inside(function: Callable, inside: bool | None = None) -> Callable:
    """``function`` to run on a worker thread, marked "inside" when the caller is.

    The mark is a context variable, which new threads do not inherit: a parameter search
    that fits its clones on a thread pool (joblib's threading backend) hands each task
    through this, so the clones' fits are recognized as nested. Without the mark the
    function is returned unchanged, so a user's own thread pool still logs each fit.
    ``inside`` is the caller's mark read earlier (tasks may be wrapped lazily on another
    thread); None reads it now.
    """
    if not (_inside.get() if inside is None else inside):
        return function
    return _CarriedInside(function)


class _CarriedInside:
    """A callable that runs its function with the "inside a patched call" mark set."""

    __slots__ = ("function",)

    def __init__(self, function: Callable) -> None:
        self.function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = _inside.set(True)
        try:
            return self.function(*args, **kwargs)
        finally:
            _inside.reset(token)


class Call:
    """What a ``before`` hook returns: the arguments to call with and state for ``after``.

    ``args``/``kwargs`` start as the user's; a hook may add to them (our callback in a
    ``callbacks=`` list) but never removes or changes what the user passed.
    """

    __slots__ = ("instance", "args", "kwargs", "state")

    def __init__(self, instance: Any, args: tuple, kwargs: dict) -> None:
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        self.state: dict[str, Any] = {}

    def argument(self, position: int | None, name: str, default: Any = None) -> Any:
        """The value of a parameter passed positionally at ``position`` or by ``name``, else ``default``."""
        if position is not None and len(self.args) > position:
            return self.args[position]
        return self.kwargs.get(name, default)


# A ``before`` hook's answer meaning "do not log this call, nor any patched call inside
# it" (standalone preprocessing: the estimator a SelectFromModel fits must stay quiet too).
QUIET = "quiet"

Before = Callable[[Call], "bool | str"]
After = Callable[[Call, Any], None]
OnError = Callable[[Call, BaseException], None]


def safe_wrapper(
    integration: str,
    before: Before,
    after: After | None = None,
    on_error: OnError | None = None,
    enabled: Callable[[], bool] = lambda: True,
) -> Callable:
    """Build the one wrapper shape used for every patch.

    Args:
        integration: name used in warnings (one per integration and process).
        before: ``before(call) -> bool``; False means "do not log this call" (the calls
            inside it may log), ``QUIET`` means "log neither it nor the calls inside it". It may
            extend ``call.args``/``call.kwargs`` and keep state in ``call.state``.
        after: ``after(call, result)`` once the user's call returned.
        on_error: ``on_error(call, exc)`` when the user's call raised (the exception is
            re-raised untouched afterwards).
        enabled: checked at each call so that disabling needs no re-patching.
    """

    def wrapper(wrapped, instance, args, kwargs):
        if _inside.get() or not enabled() or not _rank_zero_cached():
            return wrapped(*args, **kwargs)
        token = _inside.set(True)
        marked = True
        try:
            call = Call(instance, args, kwargs)
            try:
                logging = before(call)
            except Exception as exc:
                report(integration, exc)
                logging = False
            if logging == QUIET:
                return wrapped(*args, **kwargs)
            if not logging:
                # A call we do not log must not silence the calls inside it: the sklearn
                # wrapper passing XGBClassifier.fit on lets xgboost's own patch log it.
                _inside.reset(token)
                marked = False
                return wrapped(*args, **kwargs)
            try:
                result = wrapped(*call.args, **call.kwargs)
            except BaseException as exc:
                if on_error is not None:
                    try:
                        on_error(call, exc)
                    except Exception as ours:
                        report(integration, ours)
                raise
            if after is not None:
                try:
                    after(call, result)
                except Exception as exc:
                    report(integration, exc)
            return result
        finally:
            if marked:
                _inside.reset(token)

    return wrapper


def passthrough_guard(wrapped, instance, args, kwargs):
    """A wrapper that only marks "inside a patched call": nested fits log nothing.

    Used for helpers that fit many clones (``cross_val_score``) and must create no runs.
    """
    if _inside.get():
        return wrapped(*args, **kwargs)
    token = _inside.set(True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _inside.reset(token)


class Patch:
    """One applied patch, enough to undo it exactly.

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect`` (~5 ms).
    """

    def __init__(self, integration: str, parent: Any, attribute: str, original: Any, own: bool, replacement: Any) -> None:
        self.integration = integration
        self.parent = parent
        self.attribute = attribute
        self.original = original
        self.own = own
        self.replacement = replacement

    def __repr__(self) -> str:
        return (f"Patch(integration={self.integration!r}, parent={self.parent!r}, attribute={self.attribute!r}, "
                f"original={self.original!r}, own={self.own!r}, replacement={self.replacement!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Patch) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def _fields(self) -> tuple:
        return (self.integration, self.parent, self.attribute, self.original, self.own, self.replacement)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value: unhashable, as the dataclass was


_MISSING = object()


class PatchRegistry:
    """Every patch applied, per integration, reverted in reverse order."""

    def __init__(self) -> None:
        self._patches: list[Patch] = []
        self._lock = threading.RLock()

    def apply(self, integration: str, parent: Any, attribute: str, wrapper: Callable) -> Any | None:
        """Wrap ``parent.attribute`` with ``wrapper`` (wrapt signature); return the new object.

        The original is read without triggering descriptors, so classmethods, staticmethods
        and ``available_if`` properties are wrapped as what they are. Patching the same
        attribute twice for one integration is a no-op.
        """
        _forget_rank()
        import inspect

        import wrapt

        with self._lock:
            for p in self._patches:
                if p.parent is parent and p.attribute == attribute and p.integration == integration:
                    return None
            own = attribute in getattr(parent, "__dict__", {})
            original = parent.__dict__[attribute] if own else inspect.getattr_static(parent, attribute)
            if isinstance(original, staticmethod):
                replacement = staticmethod(wrapt.FunctionWrapper(original.__func__, wrapper))
            else:
                replacement = wrapt.FunctionWrapper(original, wrapper)
            setattr(parent, attribute, replacement)
            self._patches.append(Patch(integration, parent, attribute, original, own, replacement))
            return replacement

    def set_attribute(self, integration: str, parent: Any, attribute: str, value: Any) -> None:
        """Set ``parent.attribute = value`` (not a wrapper) and record how to undo it."""
        with self._lock:
            own = attribute in getattr(parent, "__dict__", {})
            original = parent.__dict__[attribute] if own else None
            setattr(parent, attribute, value)
            self._patches.append(Patch(integration, parent, attribute, original, own, value))

    def revert(self, integration: str | None = None) -> int:
        """Undo the patches of one integration (or all), newest first; return how many.

        An attribute is restored only while our replacement is still the installed one:
        whoever patched on top of us keeps their patch (one warning names the attribute),
        and our wrapper inside theirs calls straight through once its integration is off.
        """
        with self._lock:
            keep: list[Patch] = []
            undo: list[Patch] = []
            for p in self._patches:
                (undo if integration is None or p.integration == integration else keep).append(p)
            ours = {id(p.replacement) for p in self._patches}
            for p in reversed(undo):
                current = getattr(p.parent, "__dict__", {}).get(p.attribute, _MISSING)
                if current is not p.replacement:
                    if id(current) not in ours:  # another library's patch, or the user's own assignment
                        owner = getattr(p.parent, "__qualname__", None) or getattr(p.parent, "__name__", repr(p.parent))
                        warn_once(f"revert:{id(p.parent)}:{p.attribute}",
                                  f"autolog: {owner}.{p.attribute} was replaced after autolog patched it; "
                                  "left as it is, so that replacement stays installed")
                    continue
                if p.own:
                    setattr(p.parent, p.attribute, p.original)
                else:
                    try:
                        delattr(p.parent, p.attribute)
                    except AttributeError:
                        pass
            self._patches = keep
            return len(undo)

    def patched(self, integration: str | None = None) -> list[Patch]:
        """The patches currently applied (for one integration or all)."""
        with self._lock:
            return [p for p in self._patches if integration is None or p.integration == integration]


REGISTRY = PatchRegistry()

