"""Content-addressed artifact blobs: one file per distinct content, named by its sha256.

Two runs that log the same checkpoint share one blob; the database maps each run's
artifact path to its blob. Paths inside a run are validated here so that nothing a
user passes can point outside the run.
"""

from __future__ import annotations

import os
import posixpath
import time

from autolog.errors import CorruptArtifact, InvalidPath, ReadOnlyStore

_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
INCOMING = ".incoming-"
INCOMING_MAX_AGE = 3600.0  # seconds after which gc treats a half-written upload as abandoned


class ArtifactPath(str):
    """A path inside a run that ``safe_artifact_path`` already normalised: later layers use it as it is."""

    __slots__ = ()


def safe_artifact_path(path: str, argument: str = "artifact_path") -> ArtifactPath:
    """Normalise a path inside a run to ``a/b/c``, once; raise for paths that escape the run."""
    if isinstance(path, ArtifactPath):
        return path
    if not isinstance(path, str):
        raise InvalidPath(f"{argument} must be a str, got {type(path).__name__} {path!r}")
    raw = path.replace("\\", "/")
    if not raw or raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise InvalidPath(f"{argument} must be a relative path inside the run, got {path!r}")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise InvalidPath(f"{argument} must stay inside the run (no '..'), got {path!r}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise InvalidPath(f"{argument} must not contain control characters, got {path!r}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath(f"{argument} must be valid UTF-8 text (no lone surrogates), got {path!r}") from None
    return ArtifactPath(posixpath.join(*parts))


def is_digest(text: object) -> bool:
    """Whether ``text`` is a sha256 digest as the store writes it: 64 lowercase hex characters."""
    return isinstance(text, str) and len(text) == 64 and _HEX.issuperset(text)


def check_stored(run_id: str, path: object, sha256: object) -> None:
    """Refuse an artifact record read from the store that could reach outside it.

    A store may be shared or edited by someone else: its path must be a normalised
    relative path and its digest a sha256, or no file is touched for it.
    """
    label = f"artifact {path!r} of run {run_id}"
    try:
        ok = isinstance(path, str) and safe_artifact_path(path) == path
    except InvalidPath:
        ok = False
    if not ok:
        raise CorruptArtifact(f"{label} has an unsafe stored path (absolute, '..', or control characters); refusing to use it")
    if not is_digest(sha256):
        raise CorruptArtifact(f"{label} has a malformed stored digest {str(sha256)[:80]!r} (expected 64 hex characters); refusing to use it")


class BlobRepository:
    """A folder of immutable blobs ``<root>/<sha[:2]>/<sha>``.

    Writers first put a blob, then record it in the database inside a write transaction
    that checks the blob still exists (see ``SQLiteStore.gc`` for why that is enough).
    """

    def __init__(self, root: str, read_only: bool = False) -> None:
        self.root = root
        self.read_only = read_only

    def blob_path(self, sha256: str) -> str:
        """Return where the blob with this digest lives (it may not exist); refuse a malformed digest."""
        if not is_digest(sha256):
            raise CorruptArtifact(f"malformed blob digest {str(sha256)[:80]!r} (expected 64 hex characters)")
        return os.path.join(self.root, sha256[:2], sha256)

    def _incoming(self) -> tuple[int, str]:
        import tempfile

        if self.read_only:
            raise ReadOnlyStore(f"artifact folder {self.root} is read-only; this store can be read but not written")
        os.makedirs(self.root, exist_ok=True)
        return tempfile.mkstemp(dir=self.root, prefix=INCOMING)

    def _publish(self, tmp: str, sha: str) -> None:
        target = self.blob_path(sha)
        if os.path.exists(target):
            os.unlink(tmp)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)

    def put_file(self, local_path: str) -> tuple[str, int]:
        """Copy ``local_path`` in (once per content) and return ``(sha256, size)``."""
        import hashlib

        digest = hashlib.sha256()
        size = 0
        fd, tmp = self._incoming()
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
            self._publish(tmp, sha)
            return sha, size
        except BaseException:
            _discard(tmp)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` as a blob and return ``(sha256, size)``."""
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        if not os.path.exists(self.blob_path(sha)):
            fd, tmp = self._incoming()
            try:  # a write error (disk full, file-size limit) must not leave the temp file behind
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                self._publish(tmp, sha)
            except BaseException:
                _discard(tmp)
                raise
        return sha, len(data)

    def copy_out(self, sha256: str, destination: str) -> str:
        """Copy a blob to ``destination`` (a file path) and return it."""
        import shutil

        source = self.blob_path(sha256)
        os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
        shutil.copyfile(source, destination)
        return destination

    def list_blobs(self) -> list[tuple[str, int]]:
        """Every well-formed blob as ``(sha256, size)``; other files are never touched."""
        found = []
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                if is_digest(name) and os.path.basename(folder) == name[:2]:
                    try:
                        found.append((name, os.path.getsize(os.path.join(folder, name))))
                    except OSError:
                        pass
        return found

    def stale_incoming(self, max_age: float = INCOMING_MAX_AGE) -> list[tuple[str, int]]:
        """Half-written uploads older than ``max_age`` seconds (their writer died), as ``(path, size)``."""
        cutoff = time.time() - max_age
        found: list[tuple[str, int]] = []
        try:
            names = os.listdir(self.root)
        except OSError:
            return found
        for name in names:
            if name.startswith(INCOMING):
                full = os.path.join(self.root, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                if st.st_mtime < cutoff:
                    found.append((full, st.st_size))
        return found

    def remove(self, sha256: str) -> int | None:
        """Delete one blob; return the bytes freed, None when it was already gone."""
        path = self.blob_path(sha256)
        try:
            size = os.path.getsize(path)
            os.unlink(path)
            return size
        except OSError:
            return None


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
