"""Compact encoding of metric history chunks.

A chunk is the points of one (run, key) written in one batch: a list of ``(step, value,
time_s)`` tuples, or (what the hot path queues) the bytes of points packed with
:data:`POINT` (three native float64s each), read by numpy without a Python object per point. The first byte names the format, so stores written by any earlier version
stay readable:

- ``0x01`` (small chunks, and wherever numpy is missing): the point list serialised with
  ``marshal`` (C speed, exact floats including NaN/inf) and compressed with zlib.
- ``0x02`` (chunks of :data:`COLUMNS_FROM` points or more, numpy installed): columns.
  After the format byte, a little-endian header ``<BI I``: flags, the number of points
  ``n`` and the byte length ``m`` of block A. Block A (``m`` bytes) is zlib of the steps
  and then the timestamps' float64 bit patterns, each as ``n`` int64 first differences
  (wrapping; consecutive steps and close timestamps become runs of small numbers).
  Block B is the ``n`` float64 values: raw, or zlib when flag bit 0 is set (chosen when a
  sample compresses: repeated values do, random ones do not, so no time is spent
  compressing noise). Every number round-trips bit for bit.

Encoding a packed chunk of a million points is a few array operations over one buffer
(a list of tuples takes one ``numpy.fromiter`` pass first); zlib releases the GIL while it
works. Random values cost ~8.5 bytes per point.
"""

from __future__ import annotations

import importlib.util
import marshal
import struct
import sys
import zlib
from collections.abc import Sequence
from itertools import accumulate, chain
from operator import itemgetter
from typing import Any

FORMAT_MARSHAL_ZLIB = b"\x01"
FORMAT_COLUMNS = b"\x02"
COLUMNS_FROM = 512  # smaller chunks stay marshal: numpy's per-call overhead would dominate
_HEADER = struct.Struct("<BII")
_VALUES_ZLIB = 1
_SAMPLE = 8192  # values compressed on trial before deciding for the whole column
POINT = struct.Struct("ddd")  # a packed point: step (|step| <= 2**53, exact), value, time_s
_by_step = itemgetter(0)
_numpy: Any = None

Point = tuple[int, float, float]
Points = Sequence[Point] | bytes | bytearray  # point tuples, or points packed with POINT


def count(points: Points) -> int:
    """The number of points in a chunk."""
    return len(points) // POINT.size if isinstance(points, (bytes, bytearray)) else len(points)


def as_tuples(points: Points) -> Sequence[Point]:
    """The chunk as ``(step, value, time_s)`` tuples (steps as ints)."""
    if isinstance(points, (bytes, bytearray)):
        return [(int(step), value, t) for step, value, t in POINT.iter_unpack(points)]
    return points


def _np() -> Any:
    """numpy if it is installed (imported on first use, on the writer thread), else None."""
    global _numpy
    if _numpy is None:
        found = sys.modules.get("numpy")
        if found is None and importlib.util.find_spec("numpy") is not None:
            import numpy as found
        _numpy = found if found is not None else False
    return _numpy or None


def encode(points: Points) -> bytes:
    """Serialise a chunk of ``(step, value, time_s)`` points."""
    return encode_with_latest(points)[0]


def encode_with_latest(points: Points) -> tuple[bytes, Point]:
    """Serialise ``points`` and return the blob with their :func:`latest` point (one pass for both)."""
    if count(points) >= COLUMNS_FROM:
        np = _np()
        if np is not None:
            try:
                return _encode_columns(np, points)
            except (TypeError, ValueError, OverflowError):  # an unexpected point type: the generic format
                pass
    tuples = as_tuples(points)
    return FORMAT_MARSHAL_ZLIB + zlib.compress(marshal.dumps(list(tuples), 4), 1), latest(tuples)


def _encode_columns(np: Any, points: Points) -> tuple[bytes, Point]:
    n = count(points)
    packed = isinstance(points, (bytes, bytearray))
    if isinstance(points, (bytes, bytearray)):
        table = np.frombuffer(points, dtype=np.float64, count=3 * n).reshape(n, 3)
    else:
        table = np.fromiter(chain.from_iterable(points), dtype=np.float64, count=3 * n).reshape(n, 3)
    steps = table[:, 0].astype(np.int64)
    # Packed points come from log_metric, whose steps are checked ints within ±2**53 (exact).
    if not packed and not np.array_equal(steps, table[:, 0]):
        raise ValueError("a step is not an integer")
    # Block A: both difference columns written straight into one buffer (no copies to join),
    # the timestamps read as their int64 bit patterns in place.
    diffs = np.empty(2 * n, dtype="<i8")
    _diff_into(np, steps, diffs[:n])
    _diff_into(np, table[:, 2].view(np.int64), diffs[n:])
    block_a = zlib.compress(diffs, 1)
    values = np.ascontiguousarray(table[:, 1], dtype="<f8")
    raw: Any = memoryview(values).cast("B")
    flags = 0
    sample = raw[: 8 * _SAMPLE]
    if len(zlib.compress(sample, 1)) < 0.8 * len(sample):
        raw, flags = zlib.compress(raw, 1), _VALUES_ZLIB
    # The latest point: the highest step, the last logged among equal steps.
    last = n - 1 - int(np.argmax(steps[::-1]))
    point = (int(steps[last]), float(values[last]), float(table[last, 2]))
    return b"".join((FORMAT_COLUMNS, _HEADER.pack(flags, n, len(block_a)), block_a, raw)), point


def _diff_into(np: Any, column: Any, out: Any) -> None:
    out[:1] = column[:1]
    np.subtract(column[1:], column[:-1], out=out[1:])  # int64: wraps, and the running sum undoes it exactly


def decode(blob: bytes) -> list[Point]:
    """Inverse of :func:`encode`."""
    kind = blob[:1]
    if kind == FORMAT_MARSHAL_ZLIB:
        return marshal.loads(zlib.decompress(blob[1:]))
    if kind == FORMAT_COLUMNS:
        return _decode_columns(blob)
    raise ValueError(f"unknown metric chunk format {kind!r}; this store was written by a newer autolog")


def _decode_columns(blob: bytes) -> list[Point]:
    flags, n, size = _HEADER.unpack_from(blob, 1)
    start = 1 + _HEADER.size
    block_a = zlib.decompress(blob[start : start + size])
    raw = blob[start + size :]
    if flags & _VALUES_ZLIB:
        raw = zlib.decompress(raw)
    np = _np()
    if np is not None:
        diffs = np.frombuffer(block_a, dtype="<i8")
        steps = np.cumsum(diffs[:n], dtype=np.int64)
        times = np.cumsum(diffs[n:], dtype=np.int64).view(np.float64)
        values = np.frombuffer(raw, dtype="<f8")
        return list(zip(steps.tolist(), values.tolist(), times.tolist()))
    # Without numpy: the same arithmetic on Python ints, wrapped to int64.
    ints = struct.unpack(f"<{2 * n}q", block_a)
    steps_list = [_wrap(s) for s in accumulate(ints[:n])]
    time_bits = struct.pack(f"<{n}q", *(_wrap(t) for t in accumulate(ints[n:])))
    return list(zip(steps_list, struct.unpack(f"<{n}d", raw), struct.unpack(f"<{n}d", time_bits)))


def _wrap(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def latest(points: Points) -> Point:
    """The point at the highest step; among equal steps the one logged last."""
    return max(reversed(as_tuples(points)), key=_by_step)
