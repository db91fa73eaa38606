"""The files a TensorBoard ``SummaryWriter`` leaves in its log dir, and artifact names for its text.

A writer's files are its event files (``events.out.tfevents.*``, also in the sub-folders that
``add_scalars`` and ``add_hparams`` write to) and the projector's files from ``add_embedding``
(``projector_config.pbtxt`` at the top, ``tensors.tsv``/``metadata.tsv``/``sprite.png`` per
embedding). Anything else a user keeps in the folder (checkpoints, notes) is not uploaded.
"""

from __future__ import annotations

import os

EVENT_MARK = ".tfevents."
PROJECTOR_FILES = frozenset({"projector_config.pbtxt", "tensors.tsv", "metadata.tsv", "sprite.png", "bookmarks.txt"})


def scan(log_dir: str) -> dict[str, tuple[int, int]]:
    """``{path: (size, mtime_ns)}`` of the writer files under ``log_dir`` now."""
    found = {}
    for full, _rel in writer_files(log_dir):
        try:
            st = os.stat(full)
        except OSError:
            continue
        found[full] = (st.st_size, st.st_mtime_ns)
    return found


def writer_files(log_dir: str) -> list[tuple[str, str]]:
    """``(path, path relative to log_dir)`` of every event or projector file under ``log_dir``."""
    out = []
    for folder, _dirs, names in os.walk(log_dir):
        for name in sorted(names):
            if EVENT_MARK in name or name in PROJECTOR_FILES:
                full = os.path.join(folder, name)
                out.append((full, os.path.relpath(full, log_dir).replace(os.sep, "/")))
    return out


def pending(log_dir: str, baseline: dict[str, tuple[int, int]], done: dict[str, tuple[int, int]]) -> list[tuple[str, str, tuple[int, int]]]:
    """``(path, relative path, (size, mtime_ns))`` of writer files that differ from both ``baseline`` and ``done``."""
    out = []
    for full, rel in writer_files(log_dir):
        try:
            st = os.stat(full)
        except OSError:
            continue
        mark = (st.st_size, st.st_mtime_ns)
        if baseline.get(full) != mark and done.get(full) != mark:
            out.append((full, rel, mark))
    return out


def safe_name(tag: str) -> str:
    """A text tag as an artifact path: no empty, ``.`` or ``..`` parts, no control characters."""
    parts = [p for p in tag.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    cleaned = "/".join("".join(ch if ch.isprintable() else "_" for ch in p) for p in parts)
    return cleaned or "text"
