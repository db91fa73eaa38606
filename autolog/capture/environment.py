"""Environment capture: the code version, command line, packages, hardware and data of a run.

``start(run)`` takes a cheap snapshot of what can change later (working directory, command
line, allow-listed environment variables) on the caller's thread, then does everything slow
(git, ``importlib.metadata``, hardware, DVC files) in a daemon thread, so run start stays
fast. The run's end waits a bounded time (``$AUTOLOG_CAPTURE_TIMEOUT``, 5 s) for it. Every
piece is optional: what could not be captured is named in the tag ``capture.failed`` and the
run goes on. Nothing captured carries credentials: environment variables are read from an
allowlist only, and the one policy of ``autolog.secrets`` hides URL passwords, token-shaped
text and ``key=value`` secrets in the command line and the added lines of the diff (tags
are redacted by the store's write path like every other tag).

Written per run — tags: ``git.commit``, ``git.branch`` (or ``git.detached``), ``git.remote``,
``git.dirty``, ``git.untracked``, ``source.entry_point``, ``source.command``, ``source.cwd``,
``user``, ``host``, ``python.version``, ``python.executable``, ``platform``, ``version.<framework>``,
``env.<VAR>``, ``dvc.<path>``, ``capture.failed``; artifacts: ``environment/requirements.txt``,
``environment/git.diff``, ``environment/hardware.json``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from autolog import env, process
from autolog import reporting as safety
from autolog.capture import installed
from autolog.secrets import redact_argv, scrub, scrub_diff

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

# json, platform, subprocess, importlib.metadata... are imported inside the capture thread:
# importing them here would put their cost on `import autolog` or on the first run start.

ARTIFACT_DIR = "environment"
# Environment variables are never captured wholesale: only these, which change results.
ENV_ALLOWLIST = (
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG",
    "TF_DETERMINISTIC_OPS", "KERAS_BACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "WORLD_SIZE", "RANK", "LOCAL_RANK",
)
MAX_TAG = 8000
# Failures we expect from the environment (vcs.CaptureError is a RuntimeError); anything
# else is our bug, raised at the run's end in strict mode.
EXPECTED = (RuntimeError, OSError, ValueError, UnicodeError, ImportError, LookupError)

# Credentials: one policy for params, tags, command lines and diffs lives in autolog.secrets.


_captures: dict[str, Capture] = {}


def capture_timeout() -> float:
    """Seconds a run's end waits for its environment capture (``$AUTOLOG_CAPTURE_TIMEOUT``, default 5)."""
    return env.number(env.AUTOLOG_CAPTURE_TIMEOUT, 5.0)


def start(run: ActiveRun) -> Capture:
    """Snapshot the process now and capture the rest in a background thread; return the capture."""
    capture = Capture(run, snapshot())
    run.add_end_hook(capture.wait)
    capture.thread.start()
    return capture


def entry_from_argv(argv: list[str]) -> str:
    """What an interpreter command line runs: a script's absolute path, ``-m module`` or ``interactive``."""
    args = argv[1:]
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-m", "-c", "-"):
        i += 2 if args[i] in ("-W", "-X") else 1  # interpreter options, some with a value
    if i >= len(args) or args[i] in ("-c", "-"):
        return "interactive"
    if args[i] == "-m":
        return f"-m {args[i + 1]}" if i + 1 < len(args) else "interactive"
    return os.path.abspath(args[i]) if os.path.exists(args[i]) else "interactive"


def snapshot() -> dict[str, Any]:
    """What may change during the run, taken on the calling thread (microseconds)."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    from autolog.capture.notebook import in_notebook

    if in_notebook() or "google.colab" in sys.modules:
        entry = "notebook"
    elif spec is not None and getattr(spec, "name", None) and spec.name != "__main__":
        entry = f"-m {spec.name.removesuffix('.__main__')}"
    elif main_file:
        entry = os.path.abspath(main_file)
    else:
        # Before __main__ is set up (a run started from sitecustomize by `autolog run`),
        # the interpreter's own command line still says what is about to run.
        entry = entry_from_argv(argv)
        main_file = entry if os.path.isabs(entry) else None
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was deleted
        cwd = None
    return {
        "argv": argv,
        "entry": entry,
        "main_file": os.path.abspath(main_file) if main_file else None,
        "cwd": cwd,
        "env": {k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ},
    }


def search_dir(snap: dict[str, Any]) -> str | None:
    """Where to look for the repository: the script's folder, else the working directory."""
    main_file = snap.get("main_file")
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if main_file and not any(os.path.realpath(main_file).startswith(p + os.sep) for p in prefixes):
        # `python -m pytest` and console scripts live inside the environment, not the project.
        return os.path.dirname(main_file)
    return snap.get("cwd")


class Capture:
    """One run's environment capture: gathered in a thread, written to the run once."""

    def __init__(self, run: ActiveRun, snap: dict[str, Any]) -> None:
        self.run = run
        self.snap = snap
        self.tags: dict[str, str] = {}
        self.artifacts: dict[str, bytes] = {}
        self.failed: list[str] = []
        self.error: BaseException | None = None
        self.repo_root: str | None = None
        self.step = ""
        self._written = False
        self._pid = os.getpid()  # a forked child has no capture thread: it never waits for one
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._work, name=f"autolog-capture-{run.id[:8]}", daemon=True)
        _captures[run.id] = self

    # -- the thread ------------------------------------------------------------------
    def _work(self) -> None:
        # Hand the GIL straight back: start_run is waiting in Thread.start() for this thread.
        time.sleep(0)
        try:
            for name, step in (
                ("source", self._source), ("system", self._system), ("versions", self._versions),
                ("git", self._git), ("dvc", self._dvc), ("requirements", self._requirements),
                ("hardware", self._hardware),
            ):
                if self._written:
                    return
                self.step = name
                try:
                    step()
                except EXPECTED as exc:
                    self.failed.append(f"{name}: {_reason(exc)}")
                except Exception as exc:  # our bug: recorded, and raised at the run's end in strict mode
                    self.failed.append(f"{name}: {_reason(exc)}")
                    self.error = exc
            self.write()
        except Exception as exc:  # a store that refuses (locked, full): one warning, never a thread traceback
            safety.warn_once("capture-write", f"autolog: could not record the environment of run {self.run.id[:8]}: {type(exc).__name__}: {exc}")
        finally:
            self.done.set()
            if not self.run.wait_for_capture:
                _captures.pop(self.run.id, None)

    def _source(self) -> None:
        import shlex

        snap = self.snap
        self.tags["source.command"] = _clip(shlex.join(redact_argv(snap["argv"])))
        self.tags["source.entry_point"] = snap["entry"]  # made relative to the repository by _git
        if snap["entry"] == "notebook":
            from autolog.capture import notebook

            tags, artifacts = notebook.capture()
            self.tags.update(tags)
            self.artifacts.update(artifacts)
        if snap["cwd"]:
            self.tags["source.cwd"] = snap["cwd"]
        for key, value in snap["env"].items():
            self.tags[f"env.{key}"] = value

    def _system(self) -> None:
        # Constant for the process (platform.platform() alone reads the interpreter binary).
        self.tags.update(installed.cached("system", lambda: installed.env_cached("system", installed.system_tags)))
        self.tags["user"] = installed.user()  # from the environment: not cached with the machine's tags

    def _versions(self) -> None:
        self.tags.update(installed.cached("versions", lambda: installed.env_cached("versions", installed.framework_versions)))

    def _git(self) -> None:
        from autolog.capture.vcs import CaptureError, git_state

        snap = self.snap
        base = search_dir(snap)
        entry = snap["entry"]
        if base is None:
            raise CaptureError("the working directory no longer exists")
        store_root = getattr(self.run.store, "root", None)
        # The script or notebook that runs is always kept in the diff when git does not track it.
        entry_file = snap.get("main_file") or self.tags.get("source.notebook")

        def query():
            return git_state(base, exclude=[store_root] if store_root else [], entry=entry_file)

        # A script runs the code read at its start: one git query per folder and process.
        # Notebooks and shells change code between runs, so they ask git every time.
        live = entry in ("notebook", "interactive")
        state = query() if live else installed.cached(f"git:{base}:{store_root}", query)
        self.repo_root = state.root
        self.failed += state.failed
        self.tags.update(state.tags)
        if state.diff is not None:
            self.artifacts[f"{ARTIFACT_DIR}/git.diff"] = scrub_diff(state.diff)
        # Paths relative to the repository, so they mean the same thing in any clone.
        if os.path.isabs(entry):
            self.tags["source.entry_point"] = _relative(entry, state.root)
        if snap["cwd"]:
            self.tags["source.cwd"] = _relative(snap["cwd"], state.root)

    def _dvc(self) -> None:
        root = self.repo_root or search_dir(self.snap)
        if root:
            from autolog.capture.vcs import dvc_hashes

            hashes, failed = installed.cached(f"dvc:{root}", lambda: dvc_hashes(root, use_git=self.repo_root is not None))
            self.failed += failed
            self.tags.update({f"dvc.{path}": value for path, value in hashes.items()})

    def _requirements(self) -> None:
        text = installed.cached("requirements", lambda: installed.env_cached("requirements", installed.requirements))
        self.artifacts[f"{ARTIFACT_DIR}/requirements.txt"] = text.encode("utf-8")

    def _hardware(self) -> None:
        import json

        from autolog.capture.system import hardware

        info = installed.cached("hardware", lambda: installed.env_cached("hardware", hardware))
        self.artifacts[f"{ARTIFACT_DIR}/hardware.json"] = json.dumps(info, indent=2, sort_keys=True).encode("utf-8")
        if info.get("gpu_error"):
            self.failed.append(f"hardware.gpus: {info['gpu_error']}")

    # -- writing -----------------------------------------------------------------------
    def write(self) -> None:
        """Write what was gathered into the run (once: from the thread, or from the run's end)."""
        with self._lock:
            if self._written:
                return
            self._written = True
        # Copies (atomic in C): the thread may still be adding when the run's end writes.
        # Secret keys and credential-shaped values are redacted by the store's write path.
        tags = {k: _clip(str(v)) for k, v in dict(self.tags).items()}
        for path, data in dict(self.artifacts).items():
            try:
                self.run.log_bytes(data, path)
            except EXPECTED as exc:
                self.failed.append(f"{path}: {_reason(exc)}")
        if self.failed:
            tags["capture.failed"] = _clip(scrub("; ".join(list(self.failed))))
        try:
            self.run.set_tags(tags)
        except EXPECTED as exc:
            safety.warn_once("capture-tags", f"autolog: could not record the environment of run {self.run.id[:8]}: {exc}")

    def wait(self, run: ActiveRun | None = None, status: str | None = None) -> None:
        """End hook: wait (bounded) for the capture, then write whatever it has.

        Runs that autolog made for a fit (``run.wait_for_capture`` False) do not wait:
        a 10 ms fit must not pay for reading every installed package; the capture
        thread writes into the ended run when it is done, and exit waits for it.
        """
        if self._pid != os.getpid() or (not self.run.wait_for_capture and not self.done.is_set()):
            return
        timeout = capture_timeout()
        exit_deadline = process.exit_deadline()
        if exit_deadline is not None:  # at exit: leave half of what is left for the run's own end
            timeout = min(timeout, max(0.0, (exit_deadline - time.monotonic()) / 2))
        if not self.done.wait(timeout):
            self.failed.append(f"{self.step}: not finished {timeout:g} s after the run ended")
            self.write()
            from autolog.capture.vcs import kill_running

            kill_running(self.thread.ident)  # a hung git must not outlive the run
        _captures.pop(self.run.id, None)
        if self.error is not None and env.strict():
            error, self.error = self.error, None
            raise error


def _relative(path: str, root: str | None) -> str:
    if root:
        try:
            rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
        except ValueError:  # another drive on Windows
            return path
        if rel != ".." and not rel.startswith(".." + os.sep):
            return rel.replace(os.sep, "/")
    return path


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TAG else text[: MAX_TAG - 15] + "... [truncated]"


def capture_of(run_id: str) -> Capture | None:
    """The capture still running for ``run_id`` (tests and run end use it)."""
    return _captures.get(run_id)


def _finish_at_exit() -> None:
    # Captures of fit runs that were not waited for: give them what is left of the budget.
    deadline = min(time.monotonic() + capture_timeout(), process.exit_deadline() or float("inf"))
    for capture in list(_captures.values()):
        if not capture.done.wait(max(0.0, deadline - time.monotonic())):
            capture.failed.append(f"{capture.step}: not finished when the process exited")
            capture.write()


def _reset_in_child() -> None:
    # The parent's capture threads do not exist in a forked child; their runs are the parent's.
    _captures.clear()


process.on_exit("finish environment captures", _finish_at_exit, process.FINISH_CAPTURES)
process.on_fork_child("environment capture", _reset_in_child)
