"""Artifacts this process is still writing in the background, so reads can wait for them.

scikit-learn models are saved off the training thread (see the sklearn integration), so
right after a fit, or after the user's ``with start_run():`` block, the model is not in the
store yet. MLflow users list a run's artifacts at that moment and expect the model there:
``list_artifacts`` and ``artifact_file`` first wait for the run's background writes made in
this process. Integrations register one waiter each; the store never imports them.
"""

from __future__ import annotations

from collections.abc import Callable

# waiter(run_id) blocks until that run's background artifacts from this process are stored
# (bounded by the waiter itself) and returns at once on the thread that writes them.
_WAITERS: list[Callable[[str], object]] = []


def add_waiter(waiter: Callable[[str], object]) -> None:
    """Register ``waiter(run_id)``; registering the same function twice keeps one."""
    if waiter not in _WAITERS:
        _WAITERS.append(waiter)


def wait_for(run_id: str) -> None:
    """Let every registered waiter finish the background artifact writes of ``run_id``."""
    for waiter in list(_WAITERS):
        waiter(run_id)
