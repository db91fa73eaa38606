"""The background batched writer behind ``log_metric``.

The training thread only appends one packed point, 24 bytes of step, value and time
(``series.POINT``), to the ``bytearray`` of its series: one C call, atomic under the GIL
even when threads log the same key, no Python object kept per point, and the writer takes
a whole batch with one ``memcpy`` instead of walking and freeing a tuple per point (so the
GIL time it takes from the training thread no longer grows with the number of points). A daemon thread wakes every ``interval`` seconds (at
once on ``flush()``), and commits everything queued in one transaction: counting points
to wake early would put work on every append. When the
queue reaches ``limit`` the caller waits for room instead of growing memory. A failed
write (disk full, database locked for minutes) keeps its points for the next attempt and
warns once until writing works again; points waiting for that retry count toward
``limit`` too.

Bounds: every wait on the caller's thread ends within ``AUTOLOG_LOCK_TIMEOUT``
(``autolog.process.lock_timeout()``). When the store still refuses after that wait and the
queue is full, the newest points of the full queue are dropped, counted, warned about once,
and reported at exit, so memory stays bounded. Run updates (params, tags, a run's end)
that could not be made on the caller's thread are queued here with ``defer`` and retried
in order by the writer thread: updates first, then points, then run ends.

The thread starts on first use, so a forked child that never logs starts none.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from autolog import env, process
from autolog.store import series

PRESSURE = 200_000  # queued points of one key (4.8 MB packed) at which the hot path wakes the writer
POINT_BYTES = series.POINT.size  # bytes per queued point: step, value, time_s as float64

# One chunk: (run_id, key, points): packed points from the queues, or a list of
# (step, value, time_s) tuples (series.encode takes both; see series.Points).
Chunk = tuple[str, str, Any]
WriteFn = Callable[[list[Chunk]], None]
# A deferred store call: (what it records, in words for warnings; the call).
Op = tuple[str, Callable[[], None]]
# Errors after which a store call is worth retrying later (locked, disk full, I/O).
RETRYABLE = (sqlite3.OperationalError, OSError)


class BatchWriter:
    """Moves queued metric points into a store from a daemon thread.

    Points are queued per series (one ``bytearray`` of packed points per run and key) so that the
    thread does no per-point grouping: it hands each series' points to ``write`` as one chunk.
    """

    def __init__(
        self,
        write: WriteFn,
        interval: float | None = None,
        limit: int | None = None,
        name: str = "autolog-writer",
        key: Any = None,
    ) -> None:
        self.write = write
        self.interval = interval if interval is not None else env.number(env.AUTOLOG_FLUSH_INTERVAL, 0.2)
        self.limit = int(limit if limit is not None else env.number(env.AUTOLOG_QUEUE_LIMIT, 1_000_000))  # sets pressure_len
        self.key = key
        self.points_written = 0
        self.points_dropped = 0
        self.dropped: dict[tuple[str, str], int] = {}  # (run_id, key) -> points dropped while the store refused
        self.failures = 0
        self.last_error: BaseException | None = None
        self._name = name
        self._series: dict[tuple[str, str], bytearray] = {}
        self._pending: list[Chunk] = []  # chunks of a failed write, retried first
        self._pending_n = 0  # points in _pending
        self._inflight = 0  # points taken from the queues whose write has not returned yet
        self._drains = 0  # finished write attempts (flush with a deadline waits on it)
        self._ops: list[Op] = []  # deferred run updates, retried before the points
        self._final_ops: list[Op] = []  # deferred run ends, retried after the points
        self._ops_lock = threading.Lock()
        self._refusing = False  # the store refused for a whole lock timeout: full queues drop
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def limit(self) -> int:
        """Points that may wait (queued, in flight or kept for a retry) before ``log_metric`` waits."""
        return self._limit

    @limit.setter
    def limit(self, points: int) -> None:
        self._limit = points
        # The queue length (in bytes) at which the hot path calls ``pressure``: every PRESSURE
        # points, and often enough that a small limit still bounds memory.
        self.pressure_len = max(1, min(PRESSURE, points // 2)) * POINT_BYTES

    def series(self, run_id: str, key: str) -> bytearray:
        """The ``bytearray`` that packed points of ``key`` in run ``run_id`` go to.

        A point is ``queue += series.POINT.pack(step, value, time)`` (steps are at most
        2**53, exact in a float64): one C call, atomic under the GIL. The writer takes a
        prefix with ``buf[:n]`` and ``del buf[:n]``, so points appended in between survive.
        """
        found = self._series.get((run_id, key))
        if found is None:
            found = self._series.setdefault((run_id, key), bytearray())
        self.ensure_thread()
        return found

    def forget_run(self, run_id: str) -> None:
        """Drop the (flushed, empty) queues of an ended run."""
        for ident in [i for i, q in self._series.items() if i[0] == run_id and not q]:
            self._series.pop(ident, None)

    # -- thread ------------------------------------------------------------------------
    def ensure_thread(self) -> None:
        """Start the writer thread unless it runs (first use, after ``close`` or in a forked child)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with _registry_lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
                if self.key is not None:
                    _writers.setdefault(self.key, self)
        process.install_sigterm_flush()

    def _loop(self) -> None:
        process.mark_background()
        process.block_signals_in_this_thread()
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
        if self._inflight >= self.limit:
            return chunks  # retry what failed first; the queues wait (and drop when full)
        for (run_id, key), buffer in list(self._series.items()):
            n = len(buffer)
            if n:
                # Copy, then delete only what was copied: appends racing in between survive.
                points = buffer[:n]
                self._inflight += n // POINT_BYTES
                del buffer[:n]
                chunks.append((run_id, key, points))
        return chunks

    def _drain(self, block: bool, deadline: float | None = None) -> bool:
        """Write everything queued now; return False when a write failed or timed out."""
        timeout = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._lock.acquire(timeout=timeout if block else 0):
            return False
        try:
            if self._ops and not self._run_ops(self._ops):
                return False
            chunks = self._collect()
            written = 0
            if chunks:
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
            if self._final_ops and not self._run_ops(self._final_ops):
                return False
            self._refusing = False
            if self.failures:
                self.failures = 0
                self.last_error = None
                _warn(f"autolog: writing to the store works again; {written} delayed points and the delayed run updates were written")
            return True
        finally:
            self._drains += 1
            self._lock.release()

    def _run_ops(self, ops: list[Op]) -> bool:
        """Make the deferred store calls in ``ops`` in order; False when the store still refuses."""
        while True:
            with self._ops_lock:
                if not ops:
                    return True
                what, call = ops[0]
            try:
                call()
            except RETRYABLE as exc:
                self._on_failure(exc)
                return False
            except Exception as exc:  # not retryable (a param conflict, a deleted run): say what is lost
                _warn(f"autolog: {what} could not be recorded and is dropped ({type(exc).__name__}: {exc})")
            with self._ops_lock:
                ops.pop(0)

    def _on_failure(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = exc
        if self.failures == 1:
            points = sum(series.count(c[2]) for c in self._pending)
            updates = len(self._ops) + len(self._final_ops)
            _warn(
                f"autolog: could not write {points} metric points and {updates} run updates to the store "
                f"({type(exc).__name__}: {exc}); they are kept and retried in the background, training goes on"
            )

    # -- deferred run updates ----------------------------------------------------------
    def defer(self, what: str, call: Callable[[], None], final: bool = False, error: BaseException | None = None) -> None:
        """Queue a store call that could not be made now; the writer thread retries it in order.

        ``final`` calls (a run's end) go after the points queued so far, the others before.
        ``error``: why the call failed on the caller's thread (warned about once, like a failed write).
        """
        with self._ops_lock:
            (self._final_ops if final else self._ops).append((what, call))
        if error is not None:
            self._on_failure(error)
        self.ensure_thread()
        self._wake.set()

    def has_deferred(self) -> bool:
        """Whether store calls are waiting for a retry (later calls must queue behind them)."""
        return bool(self._ops or self._final_ops)

    def deferred(self) -> list[str]:
        """What the waiting store calls record, in words, oldest first."""
        with self._ops_lock:
            return [what for what, _call in self._ops + self._final_ops]

    # -- caller side -------------------------------------------------------------------
    def pressure(self, queue: bytearray) -> None:
        """Called by the hot path when a queue is long: wake the writer, wait (bounded) while full.

        Points of failed writes and of the write in progress count toward ``limit``: a store
        that keeps failing must not let memory grow. After ``AUTOLOG_LOCK_TIMEOUT`` the newest
        points of the full queue are dropped, and later full queues drop at once until a write
        succeeds again.
        """
        if self._thread is None:  # is_alive() takes a lock: not on every call past the threshold
            self.ensure_thread()
        if not self._wake.is_set():  # Event.set takes a lock: once per wake-up, not on every call until the writer runs
            self._wake.set()
        if not self._full(queue):
            return
        if not self._refusing:
            deadline = time.monotonic() + process.lock_timeout()
            while self._full(queue) and time.monotonic() < deadline:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    self._drain(block=True, deadline=deadline)
                    break
                time.sleep(0.002)
            if not self._full(queue):
                return
            self._refusing = True
        self._drop(queue)

    def _full(self, queue: bytearray) -> bool:
        return len(queue) // POINT_BYTES + self._pending_n + self._inflight >= self.limit

    def _drop(self, queue: bytearray) -> None:
        size = len(queue)
        n = size // POINT_BYTES
        del queue[:size]
        ident = next((i for i, q in list(self._series.items()) if q is queue), ("?", "?"))
        self.dropped[ident] = self.dropped.get(ident, 0) + n
        self.points_dropped += n
        if self.points_dropped == n:
            _warn(
                f"autolog: the store has refused writes for over {process.lock_timeout():g} s with {self.limit} points waiting "
                f"(AUTOLOG_QUEUE_LIMIT); {n} newest points of metric {ident[1]!r} were dropped to keep memory bounded, "
                "and every further full queue is dropped until the store accepts writes (counts are reported at exit)"
            )

    def pending(self) -> int:
        """Points not yet durable."""
        return self._inflight + self._pending_n + sum(len(q) // POINT_BYTES for q in list(self._series.values()))

    def flush(self, timeout: float | None = None) -> int:
        """Write every point queued so far; return how many could not be written in time.

        With a ``timeout`` (and always while the interpreter exits) the writer thread does
        the writing and the caller only waits, so a store that blocks cannot hold it longer.
        """
        exit_deadline = process.exit_deadline()
        if timeout is None and exit_deadline is None:
            # On the caller's thread, bounded: waiting for the lock and each transaction's lock wait.
            # A store that refused already is not waited for again: the writer thread retries.
            if self.failures or self.has_deferred():
                self._wake.set()
            else:
                self._drain(block=True, deadline=time.monotonic() + process.lock_timeout())
            return self.pending()
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        if exit_deadline is not None:
            deadline = min(deadline, exit_deadline)
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            self._drain(block=True, deadline=deadline)
            return self.pending()
        # After two finished attempts the second one started after this call.
        target = self._drains + 2
        while (self.pending() or self.has_deferred()) and time.monotonic() < deadline:
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
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A thread stuck in a blocked write is a daemon: do not wait for it past the flush.
            thread.join(timeout=0.0 if left or self.has_deferred() else 1.0)
            if not thread.is_alive():
                self._thread = None  # a later use starts a fresh one
        return left

    def after_fork(self) -> None:
        """In a forked child: forget the parent's points and thread; start again on first use."""
        # The same lists stay registered (runs cache them), emptied: those points are the parent's.
        for queue in list(self._series.values()):
            del queue[:]
        self._pending = []
        self._pending_n = self._inflight = 0
        self._ops, self._final_ops = [], []
        self.failures, self.last_error, self._refusing = 0, None, False
        self.points_dropped, self.dropped = 0, {}
        self._lock = threading.Lock()
        self._ops_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None


_writers: dict[Any, BatchWriter] = {}
_registry_lock = threading.Lock()


def writer_for(key: Any, write: WriteFn) -> BatchWriter:
    """Return the process-wide writer for one store (``key``), creating it once."""
    found = _writers.get(key)
    if found is None:
        with _registry_lock:
            found = _writers.get(key)
            if found is None:
                found = _writers[key] = BatchWriter(write, key=key)
    return found


def existing_writer(key: Any) -> BatchWriter | None:
    """The writer of one store if this process has one (reads flush it first)."""
    return _writers.get(key)


def close_writer(key: Any, timeout: float | None = None) -> int:
    """Flush and stop the writer of one store (``Store.close``); return the points left unwritten."""
    with _registry_lock:
        found = _writers.pop(key, None)
    return found.close(timeout) if found is not None else 0


def flush_all(timeout: float | None = None) -> int:
    """Flush every writer of this process; return the points left unwritten."""
    return sum(w.flush(timeout) for w in list(_writers.values()))


def _warn(message: str) -> None:
    if not env.flag(env.AUTOLOG_SILENT):
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _flush_at_exit() -> None:
    # Exit steps run in order: the runs have ended (their ends queued here if the store refused).
    timeout = process.exit_timeout()
    deadline = process.exit_deadline() or time.monotonic() + timeout
    left, lost, dropped = 0, [], 0
    with _registry_lock:
        writers = list(_writers.values())
        _writers.clear()
    for w in writers:
        left += w.close(max(0.0, deadline - time.monotonic()))
        lost += w.deferred()
        dropped += w.points_dropped
    import sys

    if left:
        print(f"autolog: {left} metric points could not be written within {timeout:g} s at exit", file=sys.stderr)
    if lost:
        print(f"autolog: not recorded because the store refused writes: {'; '.join(lost)}", file=sys.stderr)
    if dropped:
        print(f"autolog: {dropped} metric points were dropped while the store refused writes (AUTOLOG_QUEUE_LIMIT)", file=sys.stderr)


def _reset_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()  # another thread may have held it at the fork
    for w in list(_writers.values()):
        w.after_fork()


process.on_exit("flush writers", _flush_at_exit, process.FLUSH_WRITERS)
process.on_fork_child("writers", _reset_in_child)
