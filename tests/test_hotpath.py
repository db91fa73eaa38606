"""The hot path past the early-wake threshold: one wake-up per write, not one lock per point."""

from __future__ import annotations

import threading

import autolog as al
from autolog.store.writer import PRESSURE


class CountingEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


def test_a_long_queue_wakes_the_writer_once_per_write(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_FLUSH_INTERVAL", "3600")  # only a long queue wakes the writer
    n = PRESSURE * 3
    with al.start_run(capture_env=False, log_system_metrics=False) as run:
        writer = run.writer
        al.log_metric("loss", 0.0, step=0)  # the writer thread is up, waiting on its event
        original = writer._wake
        event = writer._wake = CountingEvent()
        original.set()  # its next wait is on the counting event
        for i in range(1, n):
            al.log_metric("loss", float(i), step=i)
        sets = event.sets
    # Every point past the threshold used to set the event (tens of thousands of lock round trips).
    assert 1 <= sets <= 50, sets
    assert store.count_points(run.id) == n
