"""``autolog ui``: MLflow's own UI and server, reading the store live through the ``autolog:`` plugin.

``mlflow server --backend-store-uri autolog:<store> --registry-store-uri
sqlite:///<store>/registry.db`` runs as a child process in its own process group on
127.0.0.1; runs logged while it is open appear on the next refresh (nothing is exported).
``autolog ui --tensorboard`` (or any TensorBoard option such as ``--export-only``) keeps
the TensorBoard export of ``autolog.sinks.tensorboard``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from autolog.sinks import tensorboard
from autolog.sinks.serving import wait_until_serving

if TYPE_CHECKING:
    from autolog.store.sqlite import SQLiteStore

DEFAULT_PORT = 5000
START_TIMEOUT_S = 180  # MLflow's server imports a lot; a cold start on a busy machine takes a while
INSTALL_HINT = "autolog ui needs MLflow: pip install 'autolog[ui]' (or use autolog ui --tensorboard)"
LOG_NAME = "mlflow-ui.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``autolog ui`` (the TensorBoard ones imply ``--tensorboard``)."""
    tensorboard.add_arguments(parser)
    for action in parser._actions:
        if "--port" in action.option_strings:
            action.help = (f"port on 127.0.0.1 (default {DEFAULT_PORT}, or {tensorboard.DEFAULT_PORT} with --tensorboard;"
                           " a free one when taken)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="export to TensorBoard and serve that instead of MLflow's UI")


def _wants_tensorboard(args: argparse.Namespace) -> bool:
    return bool(args.tensorboard or args.export_only or args.logdir)


def run(args: argparse.Namespace, store: SQLiteStore) -> int:
    """Run ``autolog ui``: MLflow's UI on the store until Ctrl-C (or TensorBoard with ``--tensorboard``)."""
    if _wants_tensorboard(args):
        return tensorboard.run(args, store)
    if importlib.util.find_spec("mlflow") is None:
        print(f"autolog ui: error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    page = ui_page(store, args.experiment)  # an unknown --experiment fails here, before anything starts
    port = args.port or DEFAULT_PORT
    if not port_free(port):
        chosen = tensorboard.free_port()
        print(f"autolog ui: port {port} is taken; using {chosen}", flush=True)
        port = chosen
    try:
        proc = start_server(store.root, port)
    except RuntimeError as exc:
        print(f"autolog ui: error: {exc}", file=sys.stderr)
        return 1
    print(f"MLflow UI at http://127.0.0.1:{port}/{page} on {store.root} (live; Ctrl-C to stop)", flush=True)
    previous = None
    if _main_thread():
        # A plain `kill` must not leave the server running without us: unwind through finally.
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"autolog ui: the MLflow server exited with code {proc.returncode}; its log: {os.path.join(store.root, LOG_NAME)}",
          file=sys.stderr)
    return 1


def ui_page(store: SQLiteStore, experiment: str | None = None) -> str:
    """The page to open: the runs table of ``experiment`` (default: the one with the newest run), in MLflow's model-training view."""
    from autolog import env

    if experiment is not None:
        exp = store.get_experiment(experiment)
        name, exp_id = exp.name, exp.id
    else:
        latest = store.search_runs(max_results=1)
        if not latest:
            return ""
        name, exp_id = latest[0].experiment, latest[0].experiment_id
    shown = "0" if name == env.DEFAULT_EXPERIMENT else str(exp_id)  # the id the autolog: store gives it
    return f"#/experiments/{shown}/runs?workflowType=machine_learning"


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (closed connections in TIME_WAIT do not count)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def server_command(root: str, port: int) -> list[str]:
    """The ``mlflow server`` command line serving the store in ``root`` on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"autolog:{root}",
            "--registry-store-uri", f"sqlite:///{os.path.join(root, 'registry.db')}",
            "--artifacts-destination", os.path.join(root, "mlflow-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def start_server(root: str, port: int, timeout: float = START_TIMEOUT_S) -> subprocess.Popen:
    """Start MLflow's server on the store in ``root`` and wait until it answers ``/health``.

    It runs in a new process group (its workers too), so :func:`stop_server` stops all of
    them. Its output goes to ``<store>/mlflow-ui.log``.

    Raises:
        RuntimeError: the server exited or did not answer in ``timeout`` seconds; the
            message holds the end of its log.
    """
    log_path = os.path.join(root, LOG_NAME)
    env = {**os.environ, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(server_command(root, port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=root)
    return wait_until_serving(proc, f"http://127.0.0.1:{port}/health", timeout, log_path,
                              f"the MLflow server on 127.0.0.1:{port}", stop_server)


def stop_server(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop the server started by :func:`start_server` and every process of its group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout)
            # Workers may outlive the parent for a moment: make sure the group is gone.
            os.killpg(proc.pid, 0)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
    if proc.poll() is None:
        proc.wait(timeout)
