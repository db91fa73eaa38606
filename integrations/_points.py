"""Metric points noted during training and queued later, in bursts, each with its own time.

Code run once per boosting round runs with cold caches: the framework's own work in
between evicts ours, so logging a point right there costs several times what the same
``log_metric`` costs in a loop. The boosting engine therefore only notes what a round
produced (and when), and turns the notes into points in bursts: same keys, steps, values
and timestamps as logging them at once, at a fraction of the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from autolog.store.series import POINT

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

# Notes become points at most this many seconds apart (the writer's own interval), so a
# live view lags by about one more writer interval.
BURST_S = 0.2


def queue_points(run: ActiveRun, queues: dict[str, bytearray], points: Iterable[tuple[str, int, float, float]]) -> None:
    """Append ``(key, step, value, time)`` points to the run's writer queues, as ``log_metric`` does but with each point's own time.

    ``queues`` caches each key's queue (the key is checked once, by ``run.series``); a long
    queue wakes the writer, and waits (bounded) while it is full, as ``log_metric`` does.
    """
    pack, touched = POINT.pack, set()
    for key, step, value, when in points:
        queue = queues.get(key)
        if queue is None:
            queue = queues[key] = run.series(key)
        queue += pack(step, value, when)  # the writer's packed point (store/writer.py)
        touched.add(key)
    writer = run.writer
    for key in touched:
        if len(queues[key]) >= writer.pressure_len:
            writer.pressure(queues[key])
