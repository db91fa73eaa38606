"""Metric chunk encodings: every point round-trips bit for bit, old chunks stay readable, sizes stay small."""

from __future__ import annotations

import marshal
import random
import struct
import zlib

import pytest

import autolog as al
from autolog.store import series


def _bits(points):
    return [struct.pack("<qdd", *p) for p in points]


def _points(n, seed=0):
    rng = random.Random(seed)
    t = 1_764_000_000.123456
    out = []
    for i in range(n):
        t += rng.random() * 1e-6
        out.append((i, rng.random(), t))
    return out


def test_large_chunks_use_the_column_format_and_round_trip_exactly():
    points = _points(5_000)
    points[10] = (10, float("nan"), points[10][2])
    points[11] = (-7, float("-inf"), points[11][2])
    points[12] = (2**53, -0.0, 5e-324)
    points[13] = (-(2**53), 1e308, points[13][2])
    blob, latest = series.encode_with_latest(points)
    assert blob[:1] == series.FORMAT_COLUMNS
    assert _bits(series.decode(blob)) == _bits(points)
    assert latest == series.latest(points) == (2**53, -0.0, 5e-324)


def test_random_values_cost_at_most_13_bytes_a_point_and_repeated_values_far_less():
    assert len(series.encode(_points(100_000))) / 100_000 <= 13
    steady = [(i, 0.25, 1_764_000_000 + i * 0.01) for i in range(10_000)]
    assert len(series.encode(steady)) / 10_000 < 2


def _packed(points):
    return bytearray(b"".join(series.POINT.pack(*p) for p in points))


@pytest.mark.parametrize("n", [10, 5_000])  # the first format and the column format
def test_packed_chunks_encode_like_tuple_lists(n):
    points = _points(n, seed=2)
    points[3] = (2**53, float("nan"), points[3][2])
    points[4] = (-(2**53), -0.0, 5e-324)
    flat = _packed(points)
    assert series.count(flat) == n and _bits(series.as_tuples(flat)) == _bits(points)
    blob, latest = series.encode_with_latest(flat)
    assert _bits(series.decode(blob)) == _bits(points)
    assert _bits([latest]) == _bits([series.latest(points)]) == _bits([points[3]])


def test_latest_is_the_last_logged_of_the_highest_step():
    points = [(1, 1.0, 1.0), (3, 2.0, 2.0), (3, 3.0, 3.0), (2, 4.0, 4.0)] * 300
    blob, latest = series.encode_with_latest(points)
    assert blob[:1] == series.FORMAT_COLUMNS and latest == (3, 3.0, 3.0)


def test_chunks_of_the_first_format_stay_readable():
    points = _points(2_000)
    old = series.FORMAT_MARSHAL_ZLIB + zlib.compress(marshal.dumps(points, 4), 1)
    assert _bits(series.decode(old)) == _bits(points)
    assert series.encode(points[:10])[:1] == series.FORMAT_MARSHAL_ZLIB  # small chunks keep it


def test_column_chunks_decode_without_numpy(monkeypatch):
    points = _points(3_000, seed=1)
    blob = series.encode(points)
    monkeypatch.setattr(series, "_numpy", False)
    assert _bits(series.decode(blob)) == _bits(points)
    assert series.encode(points)[:1] == series.FORMAT_MARSHAL_ZLIB  # and encode falls back to the first format


def test_unknown_format_names_the_byte():
    with pytest.raises(ValueError, match="unknown metric chunk format"):
        series.decode(b"\x09abc")


def test_a_long_run_reads_back_every_point_through_the_store(store):
    with al.start_run(capture_env=False, log_system_metrics=False) as run:
        for i in range(20_000):
            al.log_metric("loss", 1.0 / (i + 1), step=i)
        al.log_metric("loss", 7.0, step=5)  # an out-of-order step stays where it was logged
    history = store.metric_history(run.id, "loss")
    assert len(history) == 20_001
    assert [p.step for p in history[:7]] == [0, 1, 2, 3, 4, 5, 5]
    assert history[-1].value == 1.0 / 20_000
    assert store.get_run(run.id).metrics["loss"] == 1.0 / 20_000
