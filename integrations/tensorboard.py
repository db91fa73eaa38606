"""TensorBoard integration: mirror ``SummaryWriter`` scalars, hparams and text into runs.

Patches ``torch.utils.tensorboard.SummaryWriter`` and, when installed,
``tensorboardX.SummaryWriter``. The writer's own calls run unchanged (its event files are
byte-identical with and without autolog); around them:

- ``add_scalar(tag, v, step)`` logs metric ``tag`` (step = ``global_step``, or the next step
  of that key when None); ``add_scalars(main, {sub: v})`` logs ``main/sub``;
  ``add_text(tag, s)`` appends to the artifact ``tensorboard_text/<tag>.txt``.
- ``add_hparams(h, m)`` is one trial, as TensorBoard shows it (one session per call): a child
  run of the writer's run named ``<log_dir name>-<run_name or trialN>``, with ``h`` as its
  params and ``m`` as its metrics, ended at once. A sweep of five calls is five child runs.
- Which run: the user's active run for the first writer of that run (left open); another
  writer in the same user run gets a nested child run; with no active run the writer's
  first event starts one run named after its log_dir. ``exclusive=True`` logs only into
  user runs. Writer runs are never made the active run, so ``start_run()`` still works beside them.
- A log dir is one run for the life of the process: ``close()`` ends the writer's own run
  FINISHED (a ``with`` block raising: FAILED, or KILLED for Ctrl-C), and writing again after
  it, with the same writer or a new one on the same log dir, continues that run (RUNNING
  until the next ``close()``). A writer garbage-collected unclosed ends its run; at exit the
  process ends it (FAILED after an uncaught exception or Ctrl-C).
- The writer's files (event files and the projector's ``projector_config.pbtxt``,
  ``tensors.tsv``, ``metadata.tsv``, ``sprite.png``, ``bookmarks.txt``) created or changed
  since it was opened are uploaded under ``tensorboard/<log_dir name>/`` at ``close()`` (also
  files written after an earlier close, e.g. by ``add_pr_curve``), when its run ends, and at
  most every ``SYNC_INTERVAL_S`` seconds at ``flush()`` or while scalars are being added;
  files whose size and mtime did not change are skipped.
- Inside an autologged ``Trainer.fit``/``Model.fit`` every patched method calls straight
  through (the engine's "inside a patched call" mark), so a framework's TensorBoard
  logger never duplicates what its own integration records.

The module stays one piece (a little over 400 lines, 30 of them this docstring): it is one
concern, a SummaryWriter's life mapped onto a run; scanning and naming its files already
lives in ``_tensorboard_files``.
"""

from __future__ import annotations

import contextvars
import inspect
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from autolog import process
from autolog.integrations._tensorboard_files import pending, safe_name, scan
from autolog.patching import options
from autolog.patching.engine import REGISTRY, Call, safe_wrapper
from autolog.patching.lifecycle import LIFECYCLE, FitRun
from autolog.patching.params import log_flat_params
from autolog.patching.plugins import Integration, integration_autolog
from autolog.reporting import report
from autolog.tracking import api

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

NAME = "tensorboard"
SYNC_INTERVAL_S = 60.0  # uploads between close()s are throttled: a growing event file is re-stored whole
TEXT_FOLDER = "tensorboard_text"
_monotonic = time.monotonic
_lock = threading.Lock()
# (store root, log dir) -> the run writers without a user run log into there: the log dir's run
# for the life of the process, shared by writers open at once, continued when a closed writer
# (or a new one) writes there again.
_DIR_RUNS: dict[tuple[str, str], FitRun] = {}


class _WriterState:
    """What autolog keeps per writer (never a strong reference to the writer itself)."""

    __slots__ = ("writer_ref", "log_dir", "name", "baseline", "uploaded", "fit_run", "last_run_id", "texts",
                 "dirty_texts", "next_sync", "hooked", "finalizer", "trials", "lock")

    def __init__(self, writer: Any, baseline: dict[str, tuple[int, int]] | None) -> None:
        self.writer_ref = weakref.ref(writer)
        self.log_dir = os.path.abspath(_log_dir_of(writer))
        self.name = os.path.basename(os.path.normpath(self.log_dir)) or "tensorboard"
        # Files that were there before this writer wrote: an earlier job's files in a reused log_dir.
        self.baseline = scan(self.log_dir) if baseline is None else baseline
        self.uploaded: dict[str, dict[str, tuple[int, int]]] = {}  # run id -> path -> (size, mtime)
        self.fit_run: FitRun | None = None
        self.last_run_id: str | None = None  # the run the writer logged into last, ended or not
        self.texts: dict[str, list[str]] = {}
        self.dirty_texts: set[str] = set()
        self.next_sync = _monotonic() + SYNC_INTERVAL_S
        self.hooked: weakref.WeakSet = weakref.WeakSet()  # ActiveRun objects carrying our end hook
        self.finalizer: weakref.finalize | None = None
        self.trials = 0
        self.lock = threading.RLock()


_STATES: weakref.WeakKeyDictionary[Any, _WriterState] = weakref.WeakKeyDictionary()


def _enabled() -> bool:
    return INTEGRATION.enabled


def _log_dir_of(writer: Any) -> str:
    getter = getattr(writer, "get_logdir", None)
    log_dir = getter() if getter is not None else getattr(writer, "log_dir", None) or getattr(writer, "logdir", None)
    return os.fspath(log_dir or ".")


# -- which run a writer logs into --------------------------------------------------------
def _state_of(writer: Any) -> _WriterState:
    state = _STATES.get(writer)
    if state is None:
        state = _STATES[writer] = _WriterState(writer, None)
    return state


def _detached(fn, *args: Any) -> Any:
    # A writer's run (own, continued or nested child) must not become the active run, or the
    # user's next start_run() would fail and their log_metric calls would land in it.
    return contextvars.copy_context().run(fn, *args)


def _bind(writer: Any) -> _WriterState | None:
    """The writer's state with a live run, opening (or continuing) one if needed; None when nothing may be logged."""
    user = api.active_run()
    if user is None and options.get(NAME, "exclusive"):
        return None
    with _lock:
        state = _state_of(writer)
        fit_run = state.fit_run
        if fit_run is not None and not fit_run.run.ended:
            return state
        fit_run = None
        key = (api.get_store().root, state.log_dir)
        previous = _DIR_RUNS.get(key) if user is None else None
        if previous is not None:
            fit_run = previous if not previous.run.ended else _detached(LIFECYCLE.resume, previous.run.id, NAME)
        if fit_run is None:
            fit_run = _detached(LIFECYCLE.open_fit, NAME, state.name, writer, {"tensorboard.log_dir": state.log_dir})
        if fit_run is None:
            return None
        if user is None:
            _DIR_RUNS[key] = fit_run
        state.fit_run = fit_run
        state.last_run_id = fit_run.run.id
        run = fit_run.run
        if run not in state.hooked:
            state.hooked.add(run)
            run.add_end_hook(lambda r, status, s=state: _on_run_end(s, r))
        if state.finalizer is None:
            state.finalizer = weakref.finalize(writer, _finalize, state)
            # At exit the process ends open runs with the right status (FAILED after Ctrl-C),
            # not this finalizer with FINISHED.
            state.finalizer.atexit = False
        return state


def _live_run(writer: Any) -> Any:
    state = _STATES.get(writer)
    fit_run = state.fit_run if state is not None else None
    if fit_run is None or fit_run.run.ended:
        return None
    return fit_run.run


_recent: _WriterState | None = None  # the last writer that logged: a WeakKeyDictionary lookup costs more


def _before_log(call: Call) -> bool:
    # The hot path (add_scalar per step): a weakref call and two attribute checks.
    global _recent
    state = _recent
    if state is None or state.writer_ref() is not call.instance:
        state = _STATES.get(call.instance)
    fit_run = state.fit_run if state is not None else None
    if fit_run is None or fit_run.run.ended:
        state = _bind(call.instance)
        if state is None:
            return False
        fit_run = state.fit_run
    _recent = state
    call.state["s"] = state
    call.state["run"] = fit_run.run
    return True


def _maybe_sync(call: Call) -> None:
    state = call.state["s"]
    if _monotonic() >= state.next_sync:
        _sync(state, call.state["run"])


# -- what each method logs ---------------------------------------------------------------
def _after_scalar(call: Call, result: Any) -> None:
    tag, value, step = call.argument(0, "tag"), call.argument(1, "scalar_value"), call.argument(2, "global_step")
    state = call.state
    state["run"].log_metric(tag, value, step)
    if _monotonic() >= state["s"].next_sync:
        _sync(state["s"], state["run"])


def _after_scalars(call: Call, result: Any) -> None:
    main_tag, values, step = call.argument(0, "main_tag"), call.argument(1, "tag_scalar_dict"), call.argument(2, "global_step")
    run = call.state["run"]
    for sub_tag, value in values.items():
        run.log_metric(f"{main_tag}/{sub_tag}", value, step)
    _maybe_sync(call)


def _bound_arguments(call: Call, method: str) -> dict[str, Any]:
    # add_hparams differs between torch and tensorboardX (run_name vs name): bind by signature.
    signature = inspect.signature(getattr(type(call.instance), method))
    return signature.bind(call.instance, *call.args, **call.kwargs).arguments


def _after_hparams(call: Call, result: Any) -> None:
    # One call is one trial (TensorBoard writes it as a session of its own, in a sub-folder):
    # a child run of the writer's run, so a sweep never mixes one trial's params with another's metrics.
    arguments = _bound_arguments(call, "add_hparams")
    state = call.state["s"]
    with state.lock:
        index, state.trials = state.trials, state.trials + 1
    label = arguments.get("run_name") or arguments.get("name")  # torch / tensorboardX
    trial = LIFECYCLE.open_child(call.state["run"], NAME, f"{state.name}-{label or f'trial{index}'}",
                                 {"tensorboard.log_dir": state.log_dir, "tensorboard.trial": index})
    status = "FAILED"
    try:
        log_flat_params(trial, dict(arguments.get("hparam_dict") or {}))
        step = arguments.get("global_step")
        for key, value in (arguments.get("metric_dict") or {}).items():
            trial.run.log_metric(key, value, step)
        status = "FINISHED"
    finally:
        _detached(trial.finish, status)  # a trial never becomes the run later implicit log_* calls go to


def _after_text(call: Call, result: Any) -> None:
    tag, text, step = str(call.argument(0, "tag")), call.argument(1, "text_string"), call.argument(2, "global_step")
    state = call.state["s"]
    with state.lock:
        header = f"## step {step}\n\n" if step is not None else ""
        state.texts.setdefault(tag, []).append(f"{header}{text}\n\n")
        state.dirty_texts.add(tag)
    _maybe_sync(call)


# -- init, flush, close ------------------------------------------------------------------
def _before_init(call: Call) -> bool:
    # Snapshot the log_dir before the writer creates its event file: files already there
    # belong to an earlier job and are never uploaded with this writer's run.
    kwargs = call.kwargs
    log_dir = call.args[0] if call.args else kwargs.get("log_dir") or kwargs.get("logdir")
    call.state["baseline"] = scan(os.fspath(log_dir)) if log_dir else {}
    return True


def _after_init(call: Call, result: Any) -> None:
    with _lock:
        if call.instance not in _STATES:
            _STATES[call.instance] = _WriterState(call.instance, call.state["baseline"])


def _before_sync_point(call: Call) -> bool:
    """flush: only writers whose run is live, or unbound writers inside a user's run."""
    state = _STATES.get(call.instance)
    if state is None:
        return False
    if _live_run(call.instance) is None:
        if state.fit_run is not None or api.active_run() is None:
            return False
        if _bind(call.instance) is None:  # an images-only writer in a user's run still uploads its files
            return False
    call.state["s"] = state
    call.state["run"] = state.fit_run.run
    return True


def _before_close(call: Call) -> bool:
    """close: writers whose run is live, and writers that left files no run has stored yet."""
    state = _STATES.get(call.instance)
    if state is None:
        return False
    if _live_run(call.instance) is None:
        # Closed before (add_pr_curve and close() in a loop) or never logged a scalar (images,
        # embeddings only): the log dir's run continues, or starts, to store those files.
        if not pending(state.log_dir, state.baseline, state.uploaded.get(state.last_run_id or "", {})) or _bind(call.instance) is None:
            return False
    call.state["s"] = state
    call.state["run"] = state.fit_run.run
    return True


def _after_flush(call: Call, result: Any) -> None:
    _maybe_sync(call)


def _close_wrapper(failed_if_exception: bool):
    def after(call: Call, result: Any) -> None:
        status = "FINISHED"
        if failed_if_exception and call.args and call.args[0] is not None:
            status = "KILLED" if issubclass(call.args[0], KeyboardInterrupt) else "FAILED"
        _close(call.state["s"], status)

    def on_error(call: Call, exc: BaseException) -> None:
        _close(call.state["s"], "FINISHED")

    return safe_wrapper(NAME, _before_close, after, on_error, enabled=_enabled)


def _close(state: _WriterState, status: str) -> None:
    # The lifecycle decides what a close means: the writer's own run ends, a user's run stays open.
    fit_run = state.fit_run
    if fit_run is None:
        return
    _sync(state, fit_run.run, force=True)
    fit_run.finish(status)
    if fit_run.run.ended:
        state.fit_run = None


def _flush_files(writer: Any) -> None:
    # Buffered events reach the file before it is uploaded; the original flush, so
    # that a run ending at exit never binds the writer to another run.
    if writer is not None:
        flush = getattr(type(writer), "flush", None)
        try:
            getattr(flush, "__wrapped__", flush)(writer)
        except Exception:
            pass


def _on_run_end(state: _WriterState, run: ActiveRun) -> None:
    _flush_files(state.writer_ref())
    _sync(state, run, force=True)
    if state.fit_run is not None and state.fit_run.run is run:
        state.fit_run = None


def _files_left_at_exit() -> None:
    # A closed writer that wrote again and was never closed (add_image after close()): its log
    # dir's run takes those files too. Runs still open are ended, and synced, by the process.
    if not _DIR_RUNS:
        return  # no writer logged without a user run (and no store is opened just to find that out)
    root = api.get_store().root
    for writer, state in list(_STATES.items()):
        dir_run = _DIR_RUNS.get((root, state.log_dir))
        if state.fit_run is None and dir_run is not None and dir_run.run.id == state.last_run_id:
            _flush_files(writer)
            if pending(state.log_dir, state.baseline, state.uploaded.get(state.last_run_id, {})) and _bind(writer) is not None:
                _close(state, "FINISHED")


def _finalize(state: _WriterState) -> None:
    # The writer was garbage-collected without close() (never called at exit: see _bind).
    fit_run = state.fit_run
    if fit_run is not None and not fit_run.run.ended:
        try:
            state.fit_run = None
            _sync(state, fit_run.run, force=True)
            fit_run.finish("FINISHED")
        except Exception as exc:
            report(NAME, exc)


def _sync(state: _WriterState, run: ActiveRun, force: bool = False) -> None:
    """Upload the writer's new or changed event files and pending text into ``run``."""
    now = _monotonic()
    if not force and now < state.next_sync:
        return
    state.next_sync = now + SYNC_INTERVAL_S
    with state.lock:
        for tag in sorted(state.dirty_texts):
            run.log_text("".join(state.texts[tag]), f"{TEXT_FOLDER}/{safe_name(tag)}.txt")
        state.dirty_texts.clear()
        done = state.uploaded.setdefault(run.id, {})
        for full, rel, mark in pending(state.log_dir, state.baseline, done):
            run.store.log_artifact(run.id, full, f"tensorboard/{state.name}/{rel}")
            done[full] = mark


# -- patching ----------------------------------------------------------------------------
def _wrappers() -> dict[str, Any]:
    return {
        "__init__": safe_wrapper(NAME, _before_init, _after_init, enabled=_enabled),
        "add_scalar": safe_wrapper(NAME, _before_log, _after_scalar, enabled=_enabled),
        "add_scalars": safe_wrapper(NAME, _before_log, _after_scalars, enabled=_enabled),
        "add_hparams": safe_wrapper(NAME, _before_log, _after_hparams, enabled=_enabled),
        "add_text": safe_wrapper(NAME, _before_log, _after_text, enabled=_enabled),
        "flush": safe_wrapper(NAME, _before_sync_point, _after_flush, enabled=_enabled),
        "close": _close_wrapper(False),
        "__exit__": _close_wrapper(True),
    }


def _patch(module: Any) -> None:
    """Wrap the SummaryWriter class of ``torch.utils.tensorboard`` or ``tensorboardX``."""
    cls = getattr(module, "SummaryWriter", None)
    if cls is None:
        return
    for method, wrapper in _wrappers().items():
        if callable(getattr(cls, method, None)):
            REGISTRY.apply(NAME, cls, method, wrapper)
    process.on_exit("tensorboard: files written after close", _files_left_at_exit, process.END_RUNS - 1)


def writer_run(writer: Any) -> Any:
    """The ActiveRun a SummaryWriter is logging into now, or None (for tests and users)."""
    return _live_run(writer)


INTEGRATION = Integration(
    name=NAME,
    module="torch.utils.tensorboard",
    distribution="tensorboard",
    supported=">=2.14,<3",
    extra="tensorboard",
    patch=_patch,
    also_modules=("tensorboardX",),
)
autolog = integration_autolog(NAME)
