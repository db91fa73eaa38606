"""``autolog sync``: mirror local runs into an MLflow tracking server, incrementally.

The local store stays the source of truth; an MLflow server (its UI, access control and
scaled storage) gets a faithful copy: experiments, runs with their names, status, times
and parent links, params, tags (git and user tags mapped to MLflow's ``mlflow.*`` ones),
every metric point with its step and timestamp, and artifacts in their folders. Per-run
bookmarks in the local store make a second sync send only what is new and let a killed
sync resume without duplicates. Credentials come from MLflow's own environment variables
(``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``) and are never
written anywhere. mlflow (the client) is imported only when a sync runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from autolog.sinks import mlflow_reconcile
from autolog.sinks.mlflow_batches import TAG_MAP
from autolog.sinks.mlflow_errors import AuthFailed, RejectedValue, ServerUnreachable, SyncError, SyncReport, classify, scrub
from autolog.sinks.mlflow_push import Pusher, parent_chain

__all__ = [
    "TAG_MAP", "AuthFailed", "RejectedValue", "ServerUnreachable", "SyncError", "SyncReport",
    "add_arguments", "run", "sync_to_mlflow", "watch",
]

INSTALL_HINT = "autolog sync needs the MLflow client: pip install 'autolog[mlflow]' (mlflow-skinny is enough)"
CHECK_TIMEOUT_S = 10  # the first request: an unreachable server fails fast instead of retrying for minutes

# MLflow's HTTP settings for the sync (a user's own values win): a few quick retries
# rather than MLflow's default of 7 with a backoff up to two minutes, and no
# "View run at ..." line printed to stdout for every finished run.
_SYNC_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def _import_mlflow():
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise SyncError(f"{INSTALL_HINT} ({exc})") from None
    return MlflowClient


_env_lock = threading.Lock()


@contextmanager
def _mlflow_env(values: dict[str, str], force: bool = False) -> Iterator[None]:
    # MLflow reads these at every request; set them for the sync only and put them back.
    with _env_lock:
        saved = {k: os.environ.get(k) for k in values}
        for key, value in values.items():
            if force or key not in os.environ:
                os.environ[key] = value
    try:
        yield
    finally:
        with _env_lock:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def target_name(tracking_uri: str) -> str:
    """The tracking URI as shown and used as the bookmark key: no credentials, no trailing slash."""
    return scrub(re.sub(r"^(\w+://)[^/@\s]*@", r"\1", tracking_uri.strip())).rstrip("/")


def _check(client, target: str) -> None:
    """One quick request so a wrong address or bad credentials fail in seconds, not minutes."""
    with _mlflow_env({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(CHECK_TIMEOUT_S)}, force=True):
        try:
            client.search_experiments(max_results=1)
        except Exception as exc:
            raise classify(exc, target) from None


# Schemes MLflow's client talks to a tracking server or database with (a bare "host:port" is none of them).
_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc", "file", "sqlite", "postgresql", "mysql", "mssql")


def check_target(tracking_uri: str) -> None:
    """Raise ValueError (one line) for a target that is no tracking URI, e.g. ``127.0.0.1:5055``."""
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise ValueError(f"tracking_uri must be a non-empty str such as 'http://host:5000', got {tracking_uri!r}")
    uri = tracking_uri.strip()
    match = re.match(r"^([A-Za-z][\w.-]*)(\+[\w.-]+)?://", uri)
    if uri not in ("databricks", "databricks-uc") and (match is None or match.group(1).lower() not in _SCHEMES):
        raise ValueError(f"the MLflow server must be a URL with a scheme such as http://{uri.split('://')[-1]} (got {tracking_uri!r})")


def _select(store, experiment: str | None, run_ids: Sequence[str] | None) -> list:
    if run_ids:
        runs = [store.get_run(r) for r in run_ids]
        if experiment is not None:
            runs = [r for r in runs if r.experiment == experiment]
    else:
        runs = store.search_runs(experiment=experiment)
    # Deleted runs (and deleted ancestors) are never pushed: their twins are deleted instead.
    return [r for r in parent_chain(store, runs) if r.lifecycle == "active"]


def sync_to_mlflow(
    store,
    tracking_uri: str,
    experiment: str | None = None,
    run_ids: Sequence[str] | None = None,
    progress: bool = True,
    verify: bool = False,
) -> SyncReport:
    """Push runs of ``store`` to the MLflow tracking server at ``tracking_uri``; return what was sent.

    Only what the server has not seen is sent: per run, the local store keeps the remote
    run id, how many points of each metric history went through, and digests of the
    params, tags and artifacts pushed. Ancestors of the selected runs are pushed too, so
    parent links (``mlflow.parentRunId``) always resolve. Local deletions are passed on
    (``autolog rm`` deletes the twins, ``rm --restore`` restores them, see ``mlflow_reconcile``).

    Args:
        store: an open store (``autolog.open_store()``).
        tracking_uri: e.g. ``http://mlflow:5000``; credentials from MLflow's environment variables.
        experiment: push only runs of this local experiment (same name on the server).
        run_ids: push only these runs (ids or unique prefixes) and their ancestors.
        progress: draw a progress bar on stderr when it is a terminal.
        verify: check every synced run against the server and push again what it lacks
            (also done by itself when the server lost the most recent synced run).

    Raises:
        ServerUnreachable: the server did not answer.
        AuthFailed: the server refused the credentials.
        SyncError: any other failure; the message names the run. A value the server
            rejects does not raise: it is listed in ``report.errors`` and the rest is pushed.
        RunNotFound: an unknown run id or experiment.
    """
    check_target(tracking_uri)
    MlflowClient = _import_mlflow()
    target = target_name(tracking_uri)
    report = SyncReport(target)
    started = time.monotonic()
    runs = _select(store, experiment, run_ids)
    with _mlflow_env(_SYNC_DEFAULTS):
        client = MlflowClient(tracking_uri=tracking_uri)
        _check(client, target)
        pusher = Pusher(client, store, target, report)
        if not verify and not mlflow_reconcile.spot_check(pusher, runs):
            report.warnings.append(mlflow_reconcile.RESET_WARNING.format(target=target))
            verify = True
        if verify:
            mlflow_reconcile.verify(pusher, runs)
        mlflow_reconcile.restore(pusher, runs)
        total = sum(pusher.new_points(r) for r in runs)
        bar = _progress_bar(total, progress)
        pusher.bar = bar
        remote: dict[str, str] = {}
        try:
            for run in runs:
                if bar is not None:
                    bar.set_postfix_str(run.name[:30], refresh=False)
                parent = None
                if run.parent_run_id:  # a deleted parent is not pushed; its twin (if any) still links
                    parent = remote.get(run.parent_run_id) or getattr(pusher.marks.run(run.parent_run_id), "remote_id", None)
                try:
                    remote[run.id] = pusher.push(run, parent)
                except RejectedValue as exc:  # e.g. a run name the server refuses: the other runs still go
                    report.errors.append(str(exc))
            mlflow_reconcile.delete(pusher, experiment, {store.resolve_run_id(r) for r in run_ids} if run_ids else None)
        finally:
            if bar is not None:
                bar.close()
    report.seconds = time.monotonic() - started
    return report


def _progress_bar(total: int, enabled: bool):
    # Only worth drawing for long syncs, and only on a terminal (never into a log file).
    if not enabled or total < 2000 or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="pt", unit_scale=True, desc="autolog sync", file=sys.stderr, leave=False)


def watch(
    store,
    tracking_uri: str,
    interval: float,
    experiment: str | None = None,
    run_ids: Sequence[str] | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    max_cycles: int | None = None,
    on_report: Callable[[SyncReport], None] | None = None,
    on_error: Callable[[SyncError], None] | None = None,
) -> SyncReport | None:
    """Sync every ``interval`` seconds so live runs stay mirrored; return the last report.

    Runs until ``stop`` is set, ``max_cycles`` syncs are done, or KeyboardInterrupt. An
    unreachable server is reported through ``on_error`` and tried again next cycle (a
    training job outlives a server restart); refused credentials end the watch.
    """
    if not isinstance(interval, (int, float)) or interval <= 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    stop = stop or threading.Event()
    last = None
    cycles = 0
    while not stop.is_set():
        try:
            last = sync_to_mlflow(store, tracking_uri, experiment, run_ids, progress)
            if on_report is not None:
                on_report(last)
        except (ServerUnreachable, RejectedValue) as exc:
            if on_error is None:
                raise
            on_error(exc)
        cycles += 1
        if max_cycles is not None and cycles >= max_cycles:
            break
        stop.wait(interval)
    return last


# -- the command ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``autolog sync``."""
    parser.add_argument("--to", dest="to", default=None, metavar="URI",
                        help="MLflow tracking server, e.g. http://mlflow:5000 (default $MLFLOW_TRACKING_URI); "
                             "credentials from $MLFLOW_TRACKING_TOKEN or $MLFLOW_TRACKING_USERNAME/PASSWORD")
    parser.add_argument("--experiment", "-e", default=None, help="only runs of this experiment")
    parser.add_argument("--run", dest="runs", nargs="+", action="extend", default=None, metavar="ID",
                        help="only these runs (ids or prefixes) and their parents")
    parser.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                        help="keep syncing every SECONDS until Ctrl-C (mirror runs while they train)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary line")
    parser.add_argument("--verify", action="store_true",
                        help="check every synced run against the server and push again what it lacks (e.g. after a database reset)")


def run(args: argparse.Namespace, store) -> int:
    """Run ``autolog sync``; exit code 0, or 1 when the server failed or rejected a value."""
    uri = args.to or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        print("autolog sync: error: give the server with --to http://HOST:PORT (or set MLFLOW_TRACKING_URI)", file=sys.stderr)
        return 2
    try:
        check_target(uri)
    except ValueError as exc:
        print(f"autolog sync: error: {exc}", file=sys.stderr)
        return 2
    if args.watch is not None and args.watch <= 0:
        print(f"autolog sync: error: --watch needs a positive number of seconds, got {args.watch}", file=sys.stderr)
        return 2
    failed = False

    def show(report: SyncReport) -> None:
        nonlocal failed
        for line in report.warnings:
            print(f"autolog sync: warning: {line}", file=sys.stderr)
        for line in report.errors:
            print(f"autolog sync: error: {line}", file=sys.stderr)
        failed = failed or not report.ok
        if not args.quiet and (args.watch is None or report.runs or report.deleted or report.restored or report.repaired):
            print(report.summary(), flush=True)

    try:
        if args.watch is None:
            show(sync_to_mlflow(store, uri, args.experiment, args.runs, progress=not args.quiet, verify=args.verify))
        else:
            if not args.quiet:
                print(f"mirroring to {target_name(uri)} every {args.watch:g} s; Ctrl-C stops", flush=True)
            try:
                watch(store, uri, args.watch, args.experiment, args.runs, progress=not args.quiet, on_report=show,
                      on_error=lambda exc: print(f"autolog sync: error: {exc} (retrying)", file=sys.stderr, flush=True))
            except KeyboardInterrupt:
                pass
    except SyncError as exc:
        print(f"autolog sync: error: {exc}", file=sys.stderr)
        return 1
    return 1 if failed else 0
