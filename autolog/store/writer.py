"""The background batched writer behind ``log_metric``.

The training thread only appends a ``(step, value, time)`` tuple to the list of its
series (atomic under the GIL). A daemon thread wakes every ``interval`` seconds, or
early when a queue passes ``batch_size`` points, and commits everything queued in one
transaction. When the
queue reaches ``limit`` the caller waits for room instead of growing memory or
dropping points. A failed write (disk full, database locked for minutes) keeps
its points for the next attempt and warns once until writing works again.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from autolog import env

PRESSURE = 50_000  # queued points of one key at which the hot path wakes the writer

# One chunk: (run_id, key, [(step, value, time_s), ...]).
Chunk = tuple[str, str, Sequence[tuple[int, float, float]]]
WriteFn = Callable[[list[Chunk]], None]


class BatchWriter:
    """Moves queued metric points into a store from a daemon thread.

    Points are queued per series (one deque per run and key) so that the thread does
    no per-point grouping: it hands each series' points to ``write`` as one chunk.
    """

    def __init__(
        self,
        write: WriteFn,
        interval: float | None = None,
        batch_size: int = 50_000,
        limit: int | None = None,
        name: str = "autolog-writer",
    ) -> None:
        self.write = write
        self.interval = interval if interval is not None else env.number(env.AUTOLOG_FLUSH_INTERVAL, 0.2)
        self.batch_size = batch_size
        self.limit = int(limit if limit is not None else env.number(env.AUTOLOG_QUEUE_LIMIT, 1_000_000))
        self.points_written = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._name = name
        self._series: dict[tuple[str, str], list] = {}
        self._pending: list[Chunk] = []  # chunks of a failed write, retried first
        self._pending_n = 0  # points in _pending
        self._inflight = 0  # points taken from the queues whose write has not returned yet
        self._drains = 0  # finished write attempts (flush with a deadline waits on it)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_thread()

    def series(self, run_id: str, key: str) -> list:
        """The list that ``(step, value, time)`` points of ``key`` in run ``run_id`` go to.

        ``list.append`` is one C call, atomic under the GIL; the writer takes a prefix
        with ``buf[:n]`` and ``del buf[:n]``, so points appended in between survive.
        """
        found = self._series.get((run_id, key))
        if found is None:
            found = self._series.setdefault((run_id, key), [])
        return found

    def forget_run(self, run_id: str) -> None:
        """Drop the (flushed, empty) queues of an ended run."""
        for ident in [i for i, q in self._series.items() if i[0] == run_id and not q]:
            self._series.pop(ident, None)

    # -- thread ------------------------------------------------------------------------
    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain(block=True)

    def _collect(self) -> list[Chunk]:
        # Counters move before the points do: pending() may over-count for an instant,
        # never read 0 while a point is still on its way to the store.
        chunks = self._pending
        self._inflight = self._pending_n
        self._pending = []
        self._pending_n = 0
        for (run_id, key), buffer in list(self._series.items()):
            n = len(buffer)
            if n:
                # Copy, then delete only what was copied: appends racing in between survive.
                points = buffer[:n]
                self._inflight += n
                del buffer[:n]
                chunks.append((run_id, key, points))
        return chunks

    def _drain(self, block: bool, deadline: float | None = None) -> bool:
        """Write everything queued now; return False when a write failed or timed out."""
        timeout = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._lock.acquire(timeout=timeout if block else 0):
            return False
        try:
            chunks = self._collect()
            if not chunks:
                return True
            try:
                self.write(chunks)
            except Exception as exc:  # keep the points; warn once until writing recovers
                self._pending = chunks
                self._pending_n = self._inflight
                self._inflight = 0
                self._on_failure(exc)
                return False
            written = self._inflight
            self.points_written += written
            self._inflight = 0
            if self.failures:
                self.failures = 0
                self.last_error = None
                _warn(f"autolog: writing metrics works again; {written} delayed points were written")
            return True
        finally:
            self._drains += 1
            self._lock.release()

    def _on_failure(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = exc
        if self.failures == 1:
            points = sum(len(c[2]) for c in self._pending)
            _warn(f"autolog: could not write {points} metric points ({type(exc).__name__}: {exc}); they are kept and retried, training goes on")

    # -- caller side -------------------------------------------------------------------
    def pressure(self, queue: list) -> None:
        """Called by the hot path when a queue is long: wake the writer, wait while full."""
        self._wake.set()
        waited = 0.0
        # Points of failed writes count too: a store that keeps failing must not let memory grow.
        while (len(queue) >= self.limit or self._pending_n >= self.limit) and waited < 60.0:
            if self._thread is None or not self._thread.is_alive():
                self._drain(block=True)
                break
            time.sleep(0.002)
            waited += 0.002

    def pending(self) -> int:
        """Points not yet durable."""
        return self._inflight + self._pending_n + sum(len(q) for q in list(self._series.values()))

    def flush(self, timeout: float | None = None) -> int:
        """Write every point queued so far; return how many could not be written in time.

        With a ``timeout`` (and always while the interpreter exits) the writer thread does
        the writing and the caller only waits, so a store that blocks cannot hold it longer.
        """
        if timeout is None and _exit_deadline is None:
            self._drain(block=True)
            return self.pending()
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        if _exit_deadline is not None:
            deadline = min(deadline, _exit_deadline)
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            self._drain(block=True, deadline=deadline)
            return self.pending()
        # After two finished attempts the second one started after this call.
        target = self._drains + 2
        while self.pending() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.002)
            if self._drains >= target and self.failures:
                break  # the store refuses: report what is left instead of waiting out the deadline
        return self.pending()

    def close(self, timeout: float | None = None) -> int:
        """Flush and stop the thread; return the number of points left unwritten."""
        left = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # A thread stuck in a blocked write is a daemon: do not wait for it past the flush.
            self._thread.join(timeout=0.0 if left else 1.0)
        return left

    def _after_fork(self) -> None:
        # The child inherited the parent's queues; those points are the parent's to write.
        self._series = {}
        self._pending = []
        self._pending_n = self._inflight = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._start_thread()


_writers: dict[Any, BatchWriter] = {}
_registry_lock = threading.Lock()
# Set when the interpreter starts exiting: every flush from then on ends by this time.
_exit_deadline: float | None = None


def writer_for(key: Any, write: WriteFn) -> BatchWriter:
    """Return the process-wide writer for one store (``key``), creating it once."""
    found = _writers.get(key)
    if found is None:
        with _registry_lock:
            found = _writers.get(key)
            if found is None:
                if not _writers:
                    # Registered now, after the API's own exit hook that ends open runs, so
                    # that (atexit runs last-in first-out) the deadline is set before it.
                    atexit.register(_begin_exit)
                found = _writers[key] = BatchWriter(write)
    return found


def _begin_exit() -> None:
    global _exit_deadline
    if _exit_deadline is None:
        _exit_deadline = time.monotonic() + env.number(env.AUTOLOG_EXIT_TIMEOUT, 5.0)


def flush_all(timeout: float | None = None) -> int:
    """Flush every writer of this process; return the points left unwritten."""
    return sum(w.flush(timeout) for w in list(_writers.values()))


def _warn(message: str) -> None:
    if not env.flag(env.AUTOLOG_SILENT):
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _flush_at_exit() -> None:
    timeout = env.number(env.AUTOLOG_EXIT_TIMEOUT, 5.0)
    _begin_exit()
    left = 0
    for w in list(_writers.values()):
        left += w.close(max(0.0, (_exit_deadline or 0.0) - time.monotonic()))
    if left:
        import sys

        print(f"autolog: {left} metric points could not be written within {timeout:g} s at exit", file=sys.stderr)


def _reset_in_child() -> None:
    for w in _writers.values():
        w._after_fork()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
