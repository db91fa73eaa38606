"""What a sync reports: its errors (secret-free, naming server, run and key) and its summary."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autolog import secrets

_SECRET_VARS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")


class SyncError(RuntimeError):
    """A sync could not go on; the message names the server, and the run and key when known."""


class ServerUnreachable(SyncError, ConnectionError):
    """The tracking server did not answer."""


class AuthFailed(SyncError, PermissionError):
    """The tracking server refused the credentials from the MLflow environment variables."""


class RejectedValue(SyncError, ValueError):
    """The tracking server refused a name or value of one run."""


@dataclass
class SyncReport:
    """What one sync pushed; ``summary()`` is the line the command prints."""

    target: str
    checked: int = 0
    runs: int = 0
    created: int = 0
    points: int = 0
    params: int = 0
    tags: int = 0
    artifacts: int = 0
    bytes: int = 0
    requests: int = 0
    resumed: int = 0  # points of a killed sync's last batch found on the server
    deleted: int = 0  # remote twins deleted because the local run was deleted or collected
    restored: int = 0  # remote twins restored because the local run was restored
    repaired: int = 0  # runs the server lacked something of (found by a check), pushed again
    seconds: float = 0.0
    remote_ids: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every value was accepted."""
        return not self.errors

    def summary(self) -> str:
        """One line: runs, points, params, tags, artifacts and bytes sent."""
        lifecycle = "".join(f", {n} {word}" for n, word in ((self.deleted, "deleted"), (self.restored, "restored"),
                                                              (self.repaired, "repaired")) if n)
        if not self.runs:
            if lifecycle:
                return f"synced to {self.target}: {lifecycle[2:]}; {_n(self.checked, 'run')} up to date"
            return f"nothing new to sync to {self.target} ({_n(self.checked, 'run')} up to date)"
        return (f"synced {_n(self.runs, 'run')} ({self.created} new) to {self.target}: {_n(self.points, 'point')}, "
                f"{_n(self.params, 'param')}, {_n(self.tags, 'tag')}, {_n(self.artifacts, 'artifact')}{lifecycle}; "
                f"{_fmt_bytes(self.bytes)} in {self.seconds:.1f} s")


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def scrub(text: str) -> str:
    """Remove credentials from ``text`` by the one policy of ``autolog.secrets``, and the server's own token and password."""
    return secrets.scrub_known(str(text), _SECRET_VARS)


def classify(exc: BaseException, target: str, where: str = "") -> SyncError:
    """Turn an exception from mlflow or requests into a SyncError with a clear, secret-free message."""
    if isinstance(exc, SyncError):
        return exc
    message = scrub(str(exc))
    code = str(getattr(exc, "error_code", "") or "")
    short = message if len(message) < 400 else message[:400] + "..."
    at = f" ({where})" if where else ""
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED", "CUSTOMER_UNAUTHORIZED") or re.search(r"error code 40[13]\b", message):
        return AuthFailed(f"the MLflow server {target} refused the credentials{at}; set MLFLOW_TRACKING_TOKEN or "
                          f"MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (server said: {short})")
    unreachable = ("Max retries exceeded", "Connection refused", "Failed to establish", "timed out",
                   "Name or service not known", "Connection aborted", "RemoteDisconnected")
    if isinstance(exc, (ConnectionError, TimeoutError)) or any(s in message for s in unreachable) or "ConnectionError" in type(exc).__name__:
        return ServerUnreachable(f"cannot reach the MLflow server {target}{at}: {short}")
    if code == "INVALID_PARAMETER_VALUE":
        return RejectedValue(f"the MLflow server {target} rejected a value{at}: {short}")
    return SyncError(f"MLflow server {target} failed{at}: {short}")
