"""scikit-learn models: saved off the training thread, in skops when it is installed.

The first skops save of a process imports ``skops.io``, which loads a handler for much of
scikit-learn: about 1.5–2 s. A fit must not pay that, so when a fit ends the estimator is
only snapshotted with ``pickle.dumps`` on the training thread (well under a millisecond
for a linear model, a few for a 50-tree forest, in memory). One background thread turns
each snapshot back into an estimator and writes ``model/model.skops`` (``model.pkl``
without skops) plus ``meta.json`` into the fit's run. The snapshot is taken when the fit
returns, so a later fit or ``warm_start`` of the same object never leaks into the saved
model. ``load_model`` waits for a save still pending in this process, ``wait_for_models``
waits for all of them, and the process waits for them at exit, after the metric writers'
final flush, for what is left of ``AUTOLOG_EXIT_TIMEOUT``; snapshots not reached by then
are stored as they are (``model.pkl``, milliseconds), so exit stays bounded and no model is lost.
The snapshot is only ever unpickled in the process that made it.
"""

from __future__ import annotations

import collections
import pickle
import sys
import threading
import time
from typing import Any

from autolog import process
from autolog.patching.models import save_model_files, versions_of
from autolog.reporting import report
from autolog.store import pending

NAME = "sklearn"
MAX_PENDING = 8  # snapshots waiting at most; a faster producer waits (memory stays bounded)
EXIT_ORDER = 35  # after runs end (10) and the writers' final flush (30): metrics are durable first
EXIT_WAIT = 5.0  # seconds, when the process gave no exit deadline
READ_WAIT = 30.0  # seconds a store read of a run waits for that run's model (a first skops import takes seconds)

_cond = threading.Condition()
_queue: collections.deque[tuple[Any, bytes, str]] = collections.deque()
_pending: dict[str, int] = {}  # run id -> saves queued or being written
_worker: threading.Thread | None = None


def save_model(run: Any, est: Any, artifact_dir: str = "model") -> str:
    """Save a fitted estimator now (skops when installed, else pickle) with its versions; return its artifact path."""
    sio = _import_skops()

    def write(folder: str) -> str:
        if sio is not None:
            sio.dump(est, f"{folder}/model.skops")
            return "model.skops"
        with open(f"{folder}/model.pkl", "wb") as fh:
            pickle.dump(est, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return "model.pkl"

    versions = versions_of("scikit-learn", "numpy", "scipy", "skops")
    cls = type(est)
    return save_model_files(run, write, NAME, artifact_dir, versions,
                            {"format": "skops" if sio is not None else "pickle", "class": f"{cls.__module__}.{cls.__qualname__}"})


def _import_skops() -> Any:
    """``skops.io``, or None when skops is not installed; imported without the array-API torch shim.

    skops lists its trusted types with sklearn's ``all_estimators()``, which imports every
    scikit-learn package, ``sklearn.externals.array_api_compat.torch`` among them: that
    imports torch (seconds) for nothing, and fails when it happens during interpreter
    exit. While this thread imports skops, those shims of frameworks not yet imported
    are skipped (``all_estimators`` ignores packages that fail to import).
    """
    sio = sys.modules.get("skops.io")
    if sio is not None:
        return sio
    skip = _SkipArrayShims(threading.get_ident())
    sys.meta_path.insert(0, skip)
    try:
        import skops.io as sio
    except ImportError:
        return None
    finally:
        sys.meta_path.remove(skip)
    return sio


class _SkipArrayShims:
    """A meta-path finder that refuses sklearn's array-API shims on one thread only."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        prefix = "sklearn.externals.array_api_compat."
        if name.startswith(prefix) and threading.get_ident() == self.thread_id:
            framework = name[len(prefix):].partition(".")[0]
            if framework in ("torch", "cupy", "dask", "jax") and framework not in sys.modules:
                raise ImportError(f"{name} is not needed to save a model")
        return None


def save_model_later(run: Any, est: Any, artifact_dir: str = "model") -> None:
    """Snapshot ``est`` now and save it into ``run`` from the background thread."""
    global _worker
    try:
        snapshot = pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        save_model(run, est, artifact_dir)  # not picklable: skops may still manage, here
        return
    with _cond:
        while len(_queue) >= MAX_PENDING and _worker is not None and _worker.is_alive():
            _cond.wait(1.0)
        _queue.append((run, snapshot, artifact_dir))
        _pending[run.id] = _pending.get(run.id, 0) + 1
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="autolog-sklearn-models", daemon=True)
            _worker.start()


def _work() -> None:
    global _worker
    process.mark_background()
    while True:
        with _cond:
            if not _queue:
                _worker = None
                _cond.notify_all()
                return
            run, snapshot, artifact_dir = _queue.popleft()
            _cond.notify_all()
        try:
            save_model(run, pickle.loads(snapshot), artifact_dir)  # our own bytes, made in this process
        except Exception as exc:
            try:
                report(NAME, exc)
            except Exception as strict:  # AUTOLOG_STRICT: nobody to raise to on this thread
                import traceback

                traceback.print_exception(strict)
        finally:
            with _cond:
                left = _pending.get(run.id, 1) - 1
                if left > 0:
                    _pending[run.id] = left
                else:
                    _pending.pop(run.id, None)
                _cond.notify_all()


def wait_for_models(run_id: str | None = None, timeout: float | None = None) -> bool:
    """Block until the models queued for ``run_id`` (None: every run) are stored; False on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _cond:
        while _pending.get(run_id) if run_id is not None else _pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            _cond.wait(remaining)
    return True


def _at_exit() -> None:
    # Exit stays bounded by AUTOLOG_EXIT_TIMEOUT. Snapshots the thread has not reached by
    # then are written as they are (pickle, milliseconds) rather than lost.
    deadline = process.exit_deadline()
    budget = EXIT_WAIT if deadline is None else max(0.0, deadline - time.monotonic())
    if not _pending or wait_for_models(timeout=budget):
        return
    with _cond:
        left = list(_queue)
        _queue.clear()
    for run, snapshot, artifact_dir in left:
        try:
            save_model_files(run, lambda folder, data=snapshot: _write_pickle(folder, data), NAME, artifact_dir,
                             versions_of("scikit-learn", "numpy", "scipy"), {"format": "pickle", "saved_at": "exit"})
        except Exception as exc:
            print(f"autolog: scikit-learn model of run {run.id[:8]} not saved at exit: {exc}", file=sys.stderr)
        finally:
            with _cond:
                _pending[run.id] = _pending.get(run.id, 1) - 1
                if _pending[run.id] <= 0:
                    _pending.pop(run.id, None)
    if _pending:
        print(f"autolog: {sum(_pending.values())} scikit-learn model(s) were still being saved at the exit timeout", file=sys.stderr)


def _write_pickle(folder: str, snapshot: bytes) -> str:
    with open(f"{folder}/model.pkl", "wb") as fh:
        fh.write(snapshot)
    return "model.pkl"


def _forget_parent_saves() -> None:
    # A forked child has the parent's queue but not its thread: those saves are the parent's.
    global _worker, _cond
    _cond = threading.Condition()  # a parent thread may have held it at the fork
    _queue.clear()
    _pending.clear()
    _worker = None


def _wait_for_run(run_id: str) -> None:
    # Store reads (list_artifacts, artifact_file) of a run wait for its model, except on the
    # thread that writes it; bounded, so a stuck save never hangs a read.
    if threading.current_thread() is not _worker:
        wait_for_models(run_id, timeout=READ_WAIT)


pending.add_waiter(_wait_for_run)
process.on_exit("sklearn-models", _at_exit, EXIT_ORDER)
process.on_fork_child("sklearn-models", _forget_parent_saves)
