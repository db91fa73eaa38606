"""Whether the process that owns a RUNNING run is still alive.

A run records the host, pid and process start time of its writer. On the same
host a dead pid (or a recycled one with another start time) means the process
died without ending the run: readers then see the run as KILLED.
"""

from __future__ import annotations

import os
import time

HOST = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "localhost")


def process_start_time(pid: int | None = None) -> float:
    """Return the start time (epoch seconds) of ``pid`` (default: this process), 0 if unknown."""
    pid = os.getpid() if pid is None else pid
    found = _linux_start_time(pid)
    if found is not None:
        return found
    import psutil  # a hard dependency, imported on first use: it costs tens of milliseconds

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):  # gone, or not ours to inspect
        return 0.0


_boot_time: float | None = None


def _linux_start_time(pid: int) -> float | None:
    """psutil's own computation on Linux (boot time + start ticks / clock rate), without importing psutil."""
    global _boot_time
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
        if _boot_time is None:
            with open("/proc/stat", "rb") as fh:
                _boot_time = float(next(line.split()[1] for line in fh if line.startswith(b"btime")))
        return _boot_time + ticks / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        return 0.0 if os.path.isdir("/proc/self") else None  # gone, or no /proc on this system
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return None


_cache: dict[tuple[int, float], tuple[bool, float]] = {}


def is_alive(host: str, pid: int, started: float) -> bool:
    """Return False only when the owner process is known to be gone."""
    if host != HOST or not pid:
        return True  # another machine: we cannot tell, so trust the recorded status
    if pid == os.getpid():
        return True
    now = time.monotonic()
    hit = _cache.get((pid, started))
    if hit is not None and now - hit[1] < 1.0:
        return hit[0]
    alive = _probe(pid, started)
    _cache[(pid, started)] = (alive, now)
    return alive


def _probe(pid: int, started: float) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    if started:
        actual = process_start_time(pid)
        if actual and abs(actual - started) > 1.0:
            return False  # the pid was reused by another process
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[0] != b"Z"
    except OSError:
        return True


def effective_status(status: str, host: str, pid: int, started: float) -> str:
    """The status readers see: RUNNING runs of dead processes read as KILLED."""
    if status == "RUNNING" and not is_alive(host, pid, started):
        return "KILLED"
    return status
