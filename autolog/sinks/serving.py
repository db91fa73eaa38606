"""Local servers autolog starts for viewing (MLflow's, TensorBoard): wait until they answer."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable

LOG_TAIL = 3000  # characters of the server's log quoted when it does not start


def wait_until_serving(proc: subprocess.Popen, url: str, timeout: float, log_path: str, what: str,
                       stop: Callable[[subprocess.Popen], None]) -> subprocess.Popen:
    """Return ``proc`` once ``url`` answers 200; if it exits or stays silent for ``timeout`` s, stop it and raise.

    Raises:
        RuntimeError: naming ``what`` and quoting the end of its log at ``log_path``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    with open(log_path, "rb") as log:
        tail = log.read()[-LOG_TAIL:].decode("utf-8", "replace")
    raise RuntimeError(f"{what} did not start; its log ({log_path}) ends with:\n{tail}")
