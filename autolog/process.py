"""Process lifetime: the one exit hook, the one fork handler and the lock-wait budget.

Every module that keeps per-process state (the API's open runs, the batched writers,
environment capture, system metrics, the plot worker) registers here instead of with
``atexit`` or ``os.register_at_fork`` directly, so that exit and fork happen in one
known order:

- ``on_exit(name, fn, order)``: ``fn()`` runs once when this process leaves, lowest
  ``order`` first (runs end at 10, captures finish at 20, writers flush at 30). It runs
  from ``atexit`` for a normal exit, from ``multiprocessing``'s finalizers for a forked
  ``multiprocessing`` child (which leaves through ``os._exit`` and skips ``atexit``), and
  from a SIGTERM handler in a ``multiprocessing`` child that has logged (``Pool.terminate``).
  The whole sequence is bounded by ``AUTOLOG_EXIT_TIMEOUT`` (``exit_deadline()``).
- ``on_fork_child(name, fn)``: ``fn()`` runs in a forked child before anything else, to drop
  what belongs to the parent. A child starts no thread until it logs, and never ends the
  parent's runs: only the process that started a run ends it (``ActiveRun.owner_pid``).

Lock waits: ``busy_timeout_ms()`` is what a store transaction may wait for another
process's write lock. On the training thread (any thread not marked with
``mark_background()``) it is ``AUTOLOG_LOCK_TIMEOUT`` (default 5 s); the writer thread may
wait ``BACKGROUND_LOCK_TIMEOUT``; during exit never past the exit deadline.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable

from autolog import env

DEFAULT_LOCK_TIMEOUT = 5.0  # seconds; AUTOLOG_LOCK_TIMEOUT overrides
DEFAULT_EXIT_TIMEOUT = 5.0  # seconds; AUTOLOG_EXIT_TIMEOUT overrides
BACKGROUND_LOCK_TIMEOUT = 60.0  # seconds the writer thread's transactions wait for a lock

# The order exit steps run in (lowest first).
END_RUNS = 10
FINISH_CAPTURES = 20
FLUSH_WRITERS = 30

_exit_steps: list[tuple[int, str, Callable[[], None]]] = []
_fork_steps: list[tuple[str, Callable[[], None]]] = []
_pid = os.getpid()
_exit_deadline: float | None = None
_exited_pid: int | None = None  # the process whose exit steps already ran
_finalizer_pid: int | None = None
_running = False  # the exit steps are under way in this process
_sigterm_pending = False  # SIGTERM arrived while they ran: re-raised once they are done
_background = threading.local()


def on_exit(name: str, fn: Callable[[], None], order: int) -> None:
    """Run ``fn()`` when this process exits, after every step with a lower ``order``; replaces ``name``."""
    _exit_steps[:] = [s for s in _exit_steps if s[1] != name]
    _exit_steps.append((order, name, fn))
    _exit_steps.sort(key=lambda s: s[0])


def on_fork_child(name: str, fn: Callable[[], None]) -> None:
    """Run ``fn()`` in a forked child right after the fork (drop the parent's state); replaces ``name``."""
    _fork_steps[:] = [s for s in _fork_steps if s[0] != name]
    _fork_steps.append((name, fn))


def owner_pid() -> int:
    """The id of this process (updated in a forked child before any fork step runs)."""
    return _pid


def is_forked_child() -> bool:
    """Whether this process is a ``multiprocessing`` child or a fork of the process that imported autolog."""
    return _pid != _first_pid


def lock_timeout() -> float:
    """Seconds a call on the training thread waits for another process's lock (``AUTOLOG_LOCK_TIMEOUT``)."""
    value = env.number(env.AUTOLOG_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT)
    return value if value >= 0 else DEFAULT_LOCK_TIMEOUT


def exit_timeout() -> float:
    """Seconds exit may spend flushing and ending runs (``AUTOLOG_EXIT_TIMEOUT``)."""
    value = env.number(env.AUTOLOG_EXIT_TIMEOUT, DEFAULT_EXIT_TIMEOUT)
    return value if value >= 0 else DEFAULT_EXIT_TIMEOUT


def exit_deadline() -> float | None:
    """``time.monotonic()`` by which exit must be done, or None while the process is not exiting."""
    return _exit_deadline


def mark_background() -> None:
    """Mark the calling thread as autolog's own background thread: its lock waits may be long."""
    _background.flag = True


def block_signals_in_this_thread() -> None:
    """Keep SIGTERM off the calling (background) thread, so the kernel hands it to the main thread.

    A signal delivered to a background thread does not interrupt the main thread's blocking
    call; Python then runs the SIGTERM handler only when that call returns, which for a Pool
    worker waiting on its task queue is never.
    """
    # The C module the interpreter loaded at start: ``signal`` would build its enums first (~0.5 ms).
    import _signal

    if hasattr(_signal, "pthread_sigmask"):
        _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTERM})


def busy_timeout_ms() -> int:
    """Milliseconds a store transaction started on this thread may wait for the write lock."""
    if getattr(_background, "flag", False):
        budget = BACKGROUND_LOCK_TIMEOUT
    else:
        budget = lock_timeout()
    if _exit_deadline is not None:
        budget = min(budget, _exit_deadline - time.monotonic())
    return max(1, int(budget * 1000))


def run_exit_steps(timeout: float | None = None) -> None:
    """Run every exit step once for this process, within ``timeout`` (default ``exit_timeout()``).

    Tests call it to leave nothing behind; the interpreter's exit, a multiprocessing child's
    finalizer and its SIGTERM handler call it too. A step that raises is reported on stderr
    and the next one still runs.
    """
    global _exit_deadline, _exited_pid, _running
    if _exited_pid == _pid:
        return
    _running = True  # first: a SIGTERM arriving from here on waits for the steps
    _exited_pid = _pid
    try:
        _exit_deadline = time.monotonic() + (exit_timeout() if timeout is None else timeout)
        for _order, name, fn in list(_exit_steps):
            try:
                fn()
            except Exception as exc:  # exit must never crash on our account
                import sys

                print(f"autolog: {name} failed at exit: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        _running = False
    if _sigterm_pending:
        _die_by_sigterm()


def shutdown(timeout: float | None = None) -> None:
    """Run the exit steps now and then let this process log again (tests; embedding applications)."""
    global _exit_deadline, _exited_pid
    try:
        run_exit_steps(timeout)
    finally:
        _exit_deadline = None
        _exited_pid = None


def _at_exit() -> None:
    run_exit_steps()


def _after_fork_in_child() -> None:
    global _pid, _exit_deadline, _exited_pid, _background, _running, _sigterm_pending
    _pid = os.getpid()
    _exit_deadline = None
    _exited_pid = None
    _running = _sigterm_pending = False
    _background = threading.local()
    for name, fn in list(_fork_steps):
        try:
            fn()
        except Exception as exc:  # a child must start even if our reset failed
            import sys

            print(f"autolog: {name} failed after fork: {type(exc).__name__}: {exc}", file=sys.stderr)
    _watch_multiprocessing_child()


class _Token:
    """A weak-referenceable key for multiprocessing's after-fork registry."""


_TOKEN = _Token()


def _watch_multiprocessing_child() -> None:
    # A multiprocessing child clears the finalizers it inherited and then runs its
    # after-fork hooks: register ours there, so the Finalize lands in the child's registry.
    import sys

    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(_TOKEN, _register_finalizer)


def _register_finalizer(_token: object = None) -> None:
    global _finalizer_pid
    if _finalizer_pid == _pid:
        return
    _finalizer_pid = _pid
    from multiprocessing import util

    # Before multiprocessing's own finalizers (queues' feeder threads have priority 10).
    util.Finalize(None, run_exit_steps, exitpriority=100)


def install_sigterm_flush() -> None:
    """In a multiprocessing child's main thread: make SIGTERM (``Pool.terminate``) run the exit steps first.

    Installed only once such a child has logged, and only over the default handler, so a
    child that never logs keeps the default behaviour.
    """
    import signal

    if _finalizer_pid != _pid or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        return


def _on_sigterm(signum: int, _frame: object) -> None:
    global _sigterm_pending
    if _running:
        # The exit steps are under way (a worker leaving normally got SIGTERM from
        # Pool.terminate meanwhile): let them finish, bounded by the exit deadline, then die.
        _sigterm_pending = True
        return
    try:
        run_exit_steps()
    finally:
        _die_by_sigterm()


def _die_by_sigterm() -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _imported_in_a_multiprocessing_child() -> bool:
    # autolog first imported inside a spawn or forkserver child (its target's module imports it):
    # a forkserver child leaves through os._exit too, so it needs the finalizer as well.
    import sys

    mp_process = sys.modules.get("multiprocessing.process")
    return mp_process is not None and mp_process.parent_process() is not None


_first_pid = _pid
atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
if _imported_in_a_multiprocessing_child():
    _register_finalizer()
