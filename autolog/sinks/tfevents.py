"""TensorBoard event files written without TensorFlow: records, framing, atomic files.

Only the ``tensorboard`` package is used (its protobufs and crc table), imported by
:func:`load` on first use. Files are named ``events.out.tfevents.<seq>.autolog``: the
suffix tells ours from files a user dropped in, and the zero-padded sequence number keeps
them in write order (TensorBoard reads a folder's files sorted by name).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import struct
import time
from typing import Any

from autolog.errors import MissingDependency

TENSORBOARD_EXTRA = "pip install 'autolog[tensorboard]'"
EVENT_RE = re.compile(r"^events\.out\.tfevents\.(\d{10})\.autolog$")
END_STATUS = {"FINISHED": 1, "FAILED": 2, "KILLED": 2}  # hparams api.Status: SUCCESS, FAILURE


def load() -> Any:
    """The TensorBoard modules the writer needs, as one namespace; names the extra when missing."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import CRC_TABLE, masked_crc32c
        from tensorboard.plugins.hparams import api_pb2 as hp_api
        from tensorboard.plugins.hparams import metadata as hp_metadata
        from tensorboard.plugins.hparams import plugin_data_pb2, summary_v2
        from tensorboard.plugins.scalar import metadata as scalar_metadata
    except ImportError as exc:
        raise MissingDependency(f"the TensorBoard export needs the tensorboard package: {TENSORBOARD_EXTRA}") from exc
    return argparse.Namespace(event_pb2=event_pb2, summary_pb2=summary_pb2, tensor_pb2=tensor_pb2,
                              tensor_shape_pb2=tensor_shape_pb2, types_pb2=types_pb2, hp_metadata=hp_metadata, hp_api=hp_api,
                              plugin_data_pb2=plugin_data_pb2, summary_v2=summary_v2,
                              scalar_metadata=scalar_metadata, crc_table=CRC_TABLE, masked_crc32c=masked_crc32c)


def our_event_files(folder: str) -> dict[int, str]:
    """The event files this module wrote into ``folder``, by sequence number."""
    if not os.path.isdir(folder):
        return {}
    found = {}
    for entry in os.listdir(folder):
        match = EVENT_RE.match(entry)
        if match:
            found[int(match.group(1))] = os.path.join(folder, entry)
    return found


def _float32(value: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:  # finite but beyond float32: what a float32 cast gives
        return math.copysign(math.inf, value)


def _varint_bytes(steps: Any, width: int) -> Any:
    """Columns of the protobuf varint encoding of int64 ``steps`` that all take ``width`` bytes."""
    import numpy as np

    raw = steps.astype(np.int64).view(np.uint64)  # negative int64 steps take ten bytes, as protobuf writes them
    cols = [((raw >> np.uint64(7 * i)) & np.uint64(0x7F)).astype(np.uint8) | (0x80 if i < width - 1 else 0) for i in range(width)]
    return np.stack(cols, axis=1)


def _varint_widths(steps: Any) -> Any:
    """How many bytes the protobuf varint of each int64 step takes (1..10)."""
    import numpy as np

    raw = steps.astype(np.int64).view(np.uint64)
    return 1 + sum((raw >= np.uint64(1 << (7 * k))).astype(np.int64) for k in range(1, 10))


def scalar_records(tb: Any, key: str, points: list[Any], first: bool) -> list[Any]:
    """Event records of one scalar series, values as float32, as blocks for :func:`frame`.

    float32 like every TensorBoard writer: TensorBoard's fast loader drops float64
    scalars. When ``first``, the first value carries the scalar plugin's metadata
    (TensorBoard keeps the first metadata it sees per tag) and is built with protobuf.
    The others differ only in wall time, step and value, so they are laid out with numpy
    as rows of equal length, one block per stretch of steps with the same varint width:
    ``Event{1: wall_time, 2: step, 5: Summary{1: Value{1: tag, 8: Tensor{1: DT_FLOAT,
    2: shape {}, 5: [value]}}}}``. Rows keep the order of ``points``.
    """
    import numpy as np

    blocks: list[Any] = []
    if first and points:
        metadata = tb.scalar_metadata.create_summary_metadata(display_name=key, description="")
        metadata.data_class = tb.summary_pb2.DATA_CLASS_SCALAR
        point = points[0]
        tensor = tb.tensor_pb2.TensorProto(dtype=tb.types_pb2.DT_FLOAT, tensor_shape=tb.tensor_shape_pb2.TensorShapeProto(),
                                           float_val=[_float32(point.value)])
        value = tb.summary_pb2.Summary.Value(tag=key, tensor=tensor, metadata=metadata)
        summary = tb.summary_pb2.Summary(value=[value])
        blocks.append(tb.event_pb2.Event(wall_time=point.timestamp / 1000.0, step=point.step, summary=summary).SerializeToString())
        points = points[1:]
    if not points:
        return blocks
    tag = key.encode("utf-8")
    tensor_head = b"\x08\x01\x12\x00\x2a\x04"  # dtype DT_FLOAT, empty shape, 4 bytes of packed float_val
    value_bytes = b"\x0a" + _varint(len(tag)) + tag + b"\x42" + _varint(len(tensor_head) + 4) + tensor_head
    summary_bytes = b"\x0a" + _varint(len(value_bytes) + 4) + value_bytes
    summary_head = np.frombuffer(b"\x2a" + _varint(len(summary_bytes) + 4) + summary_bytes, dtype=np.uint8)
    steps = np.array([p.step for p in points], dtype=np.int64)
    times = (np.array([p.timestamp for p in points], dtype=np.float64) / 1000.0).astype("<f8").view(np.uint8).reshape(-1, 8)
    with np.errstate(over="ignore"):  # finite values beyond float32 become inf, as a float32 cast gives
        values = np.array([p.value for p in points], dtype=np.float64).astype("<f4").view(np.uint8).reshape(-1, 4)
    widths = _varint_widths(steps)
    bounds = [0, *(np.flatnonzero(np.diff(widths)) + 1).tolist(), len(points)]
    for start, end in zip(bounds, bounds[1:]):
        n = end - start
        blocks.append(np.concatenate([
            np.full((n, 1), 0x09, np.uint8), times[start:end], np.full((n, 1), 0x10, np.uint8),
            _varint_bytes(steps[start:end], int(widths[start])), np.broadcast_to(summary_head, (n, len(summary_head))),
            values[start:end]], axis=1))
    return blocks


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def session_start_record(tb: Any, hparams: dict[str, Any], trial: str, start_s: float) -> bytes:
    """The hparams plugin's session-start record: the run's params under group name ``trial``."""
    summary = tb.summary_v2.hparams_pb(hparams, trial_id=trial, start_time_secs=start_s)
    return tb.event_pb2.Event(wall_time=start_s, step=0, summary=summary).SerializeToString()


def session_end_record(tb: Any, status: str, end_s: float) -> bytes:
    """The hparams plugin's session-end record for a run that ended with ``status``."""
    info = tb.plugin_data_pb2.SessionEndInfo(status=END_STATUS[status], end_time_secs=end_s)
    data = tb.plugin_data_pb2.HParamsPluginData(session_end_info=info)
    value = tb.summary_pb2.Summary.Value(tag=tb.hp_metadata.SESSION_END_INFO_TAG, tensor=tb.hp_metadata.NULL_TENSOR,
                                         metadata=tb.hp_metadata.create_summary_metadata(data))
    return tb.event_pb2.Event(wall_time=end_s, step=0, summary=tb.summary_pb2.Summary(value=[value])).SerializeToString()


def frame(tb: Any, blocks: list[Any]) -> bytes:
    """Records in TFRecord framing: ``length, masked crc32c(length), data, masked crc32c(data)``.

    ``blocks`` are single records (bytes) or numpy arrays of equal-length records, one per
    row. The checksums of a block's rows are computed together, a byte column at a time;
    TensorBoard's pure-Python crc32c takes ~50 µs per record, which made large exports crawl.
    """
    import numpy as np

    table = np.array(tb.crc_table, dtype=np.uint32)
    out = []
    for block in blocks:
        rows = np.frombuffer(block, dtype=np.uint8).reshape(1, -1) if isinstance(block, bytes) else block
        n, length = rows.shape
        crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
        for column in range(length):
            crc = table[(crc ^ rows[:, column]) & 0xFF] ^ (crc >> 8)
        crc ^= np.uint32(0xFFFFFFFF)
        masked = ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)  # uint32 arithmetic wraps, as the mask wants
        header = struct.pack("<Q", length)
        header += struct.pack("<I", tb.masked_crc32c(header))
        out.append(np.concatenate([np.broadcast_to(np.frombuffer(header, dtype=np.uint8), (n, 12)), rows,
                                   masked.astype("<u4").view(np.uint8).reshape(n, 4)], axis=1).tobytes())
    return b"".join(out)


def write_event_file(tb: Any, folder: str, seq: int, records: list[Any]) -> str:
    """Write ``records`` (blocks as :func:`frame` takes them) as event file number ``seq``; return its path.

    The file appears under its final name only once complete: TensorBoard reads names
    containing ``tfevents``, never the temporary one, so it cannot see half a file.
    """
    os.makedirs(folder, exist_ok=True)
    version = tb.event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
    tmp = os.path.join(folder, f".writing-{seq:010d}-{os.getpid()}")
    with open(tmp, "wb") as out:
        out.write(frame(tb, [version, *records]))
    final = os.path.join(folder, f"events.out.tfevents.{seq:010d}.autolog")
    os.replace(tmp, final)
    return final
