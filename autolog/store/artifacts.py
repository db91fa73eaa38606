"""Content-addressed artifact blobs: one file per distinct content, named by its sha256.

Two runs that log the same checkpoint share one blob; the database maps each run's
artifact path to its blob. Paths inside a run are validated here so that nothing a
user passes can point outside the run.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from autolog.errors import InvalidPath

_CHUNK = 1 << 20


def safe_artifact_path(path: str, argument: str = "artifact_path") -> str:
    """Normalise a path inside a run to ``a/b/c``; raise for paths that escape the run."""
    if not isinstance(path, str):
        raise InvalidPath(f"{argument} must be a str, got {type(path).__name__} {path!r}")
    raw = path.replace("\\", "/")
    if not raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise InvalidPath(f"{argument} must be a relative path inside the run, got {path!r}")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise InvalidPath(f"{argument} must stay inside the run (no '..'), got {path!r}")
    if any(ord(ch) < 32 for ch in raw):
        raise InvalidPath(f"{argument} must not contain control characters, got {path!r}")
    return posixpath.join(*parts)


class BlobRepository:
    """A folder of immutable blobs ``<root>/<sha[:2]>/<sha>``."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def blob_path(self, sha256: str) -> str:
        """Return where the blob with this digest lives (it may not exist)."""
        return os.path.join(self.root, sha256[:2], sha256)

    def put_file(self, local_path: str) -> tuple[str, int]:
        """Copy ``local_path`` in (once per content) and return ``(sha256, size)``."""
        import hashlib
        import tempfile

        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, open(local_path, "rb") as src:
                while True:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            target = self.blob_path(sha)
            if os.path.exists(target):
                os.unlink(tmp)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)
            return sha, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` as a blob and return ``(sha256, size)``."""
        import hashlib
        import tempfile

        sha = hashlib.sha256(data).hexdigest()
        target = self.blob_path(sha)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        return sha, len(data)

    def copy_out(self, sha256: str, destination: str) -> str:
        """Copy a blob to ``destination`` (a file path) and return it."""
        import shutil

        os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
        shutil.copyfile(self.blob_path(sha256), destination)
        return destination

    def gc(self, referenced: Iterable[str]) -> tuple[int, int]:
        """Delete blobs not in ``referenced``; return ``(files, bytes)`` removed."""
        keep = set(referenced)
        files = freed = 0
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                if name in keep:
                    continue
                full = os.path.join(folder, name)
                # A half-written upload of a live process is young; leave it alone.
                if name.startswith(".incoming-"):
                    continue
                try:
                    freed += os.path.getsize(full)
                    os.unlink(full)
                    files += 1
                except OSError:
                    pass
        return files, freed
