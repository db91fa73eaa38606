"""Plain-text tables, sparklines and value formatting for the ``autolog`` command."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A one-line chart of ``values`` (downsampled to ``width`` buckets; NaN/inf shown as ' ')."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [values[min(len(values) - 1, int(i * size))] for i in range(width)]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(_BARS[min(7, int((v - low) / span * 7.999))] if math.isfinite(v) else " " for v in values)


def _visible(code: int) -> str:
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


# Control characters (C0, DEL, C1 such as CSI) and the Unicode controls that reorder or
# break lines: printed as they are, a stored value could move the cursor, recolour or
# clear the terminal, or make text read differently from what it is.
_INVISIBLE = {c: _visible(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, 0x2028, 0x2029,
                                       *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def printable(value: object) -> str:
    """``str(value)`` safe for a terminal: control characters shown as escapes (ESC -> ``\\x1b``, newline -> ``\\n``)."""
    text = value if isinstance(value, str) else str(value)
    return text.translate(_INVISIBLE) if not text.isprintable() else text


def fmt_value(value: object) -> str:
    """Numbers with 6 significant digits; everything else as printable str (control characters escaped)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return "" if value is None else printable(value)


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS``."""
    if not ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def fmt_duration(ms: int | None) -> str:
    """A duration in ms as ``1h02m``, ``3m05s`` or ``4.2s``."""
    if ms is None:
        return ""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 40) -> str:
    """Left-aligned columns separated by two spaces; cells cut at ``max_width``; control characters escaped."""
    headers = [printable(h) for h in headers]
    cells = [[_cut(printable(c), max_width) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` in the middle, keeping the distinguishing tail (``XGBRegr…-0512-3``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = max(1, (width - 1) // 3)
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def wrap_key(key: str, width: int) -> list[str]:
    """A long key broken into lines of at most ``width`` at ``.``, ``/``, ``_`` or ``-``, never inside a word."""
    if len(key) <= width:
        return [key]
    parts, word = [], ""
    for ch in key:
        word += ch
        if ch in "./_-":
            parts.append(word)
            word = ""
    if word:
        parts.append(word)
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    return lines


def grid(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Like :func:`table`, but a cell may be a list of lines (wrapped keys); nothing is cut."""
    headers = [printable(h) for h in headers]
    cells = [[[printable(line) for line in c] if isinstance(c, list) else [printable(c)] for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    for row in cells:
        for n in range(max(len(c) for c in row)):
            lines.append("  ".join((c[n] if n < len(c) else "").ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


MIN_CELL = 24  # columns are narrowed to this before any is left out


def fit_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None, priority: Sequence[int] | None = None,
              max_cell: int = 40) -> tuple[str, list[str]]:
    """A table no wider than ``width`` characters; return ``(text, headers of the columns left out)``.

    Long cells and headers are cut in the middle so their tails stay. Columns that still
    do not fit are dropped, the highest ``priority`` number (then the rightmost) first,
    and named in the result so the caller can say so; the first column always stays.
    """
    n = len(headers)
    priority = list(priority) if priority is not None else list(range(n))
    cells = [[shorten(printable(c), max_cell) for c in row] for row in rows]
    heads = [shorten(printable(h), max_cell) for h in headers]
    widths = [max([len(heads[i]), *(len(row[i]) for row in cells)]) for i in range(n)]
    keep = list(range(n))
    cut: list[str] = []

    def total() -> int:
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    # Narrow the widest columns (long run names, long values) before leaving any out.
    while width is not None and total() > width:
        widest = max(keep, key=lambda i: (widths[i], -i))
        if widths[widest] <= MIN_CELL:
            break
        widths[widest] = max(MIN_CELL, widths[widest] - (total() - width))
        for row in cells:
            row[widest] = shorten(row[widest], widths[widest])
        heads[widest] = shorten(heads[widest], widths[widest])
    while width is not None and len(keep) > 1 and total() > width:
        drop = max(keep[1:], key=lambda i: (priority[i], i))
        keep.remove(drop)
        cut.append(headers[drop])
    text = table([heads[i] for i in keep], [[row[i] for i in keep] for row in cells], max_width=max_cell)
    return text, cut
