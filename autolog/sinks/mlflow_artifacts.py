"""MLflow artifact repository over an autolog store: run artifacts by their logical paths.

Registered under the entry-point group ``mlflow.artifact_repository`` for the scheme
``autolog-artifacts``. The artifact URI of a run read through the ``autolog:`` tracking
store is ``autolog-artifacts:/<absolute store folder>/<run id>``; MLflow appends artifact
paths to it (``.../<run id>/model/MLmodel``). The store folder is the longest prefix of the
path that holds a ``runs.db``, so folders with any name work. Files are served from the
content-addressed blobs; nothing is copied until MLflow downloads one. The repository is
read-only: logging artifacts goes through autolog. Imported only by MLflow (it imports mlflow).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import urllib.parse

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from autolog.errors import AutologError

SCHEME = "autolog-artifacts"
NOT_SUPPORTED = "not supported by the autolog store"


def artifact_uri(root: str, run_id: str) -> str:
    """The artifact URI of run ``run_id`` of the store in folder ``root``."""
    return f"{SCHEME}:{os.path.abspath(root)}/{run_id}"


def parse_artifact_uri(uri: str) -> tuple[str, str, str]:
    """Split ``autolog-artifacts:/store/<run_id>/a/b`` into ``(store root, run id, "a/b")``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != SCHEME:
        raise MlflowException(f"not an autolog artifact URI: {uri!r}", INVALID_PARAMETER_VALUE)
    path = urllib.parse.unquote(parsed.path if not parsed.netloc else f"/{parsed.netloc}{parsed.path}")
    parts = [p for p in path.split("/") if p]
    # The store is the longest leading folder with a runs.db; the next part is the run.
    for end in range(len(parts) - 1, 0, -1):
        root = "/" + "/".join(parts[:end])
        if os.path.isfile(os.path.join(root, "runs.db")):
            return root, parts[end], "/".join(parts[end + 1:])
    raise MlflowException(f"no autolog store (a folder with runs.db) in artifact URI {uri!r}", RESOURCE_DOES_NOT_EXIST)


class AutologArtifactRepository(ArtifactRepository):
    """Lists and downloads the artifacts of one run of an autolog store (read-only)."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        try:
            super().__init__(artifact_uri, tracking_uri, registry_uri)
        except TypeError:  # mlflow < 2.20 takes the artifact URI only
            super().__init__(artifact_uri)
        root, self.run_id, self.base = parse_artifact_uri(artifact_uri)
        from autolog.tracking.api import open_store

        self.store = open_store(root)

    def _full(self, path: str | None) -> str:
        path = (path or "").strip("/")
        return posixpath.join(self.base, path).strip("/") if self.base else path

    def _files(self) -> list:
        try:
            return self.store.list_artifacts(self.run_id)
        except AutologError as exc:
            raise MlflowException(str(exc), RESOURCE_DOES_NOT_EXIST) from None

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Files and folders directly under ``path`` (paths relative to this repository's root)."""
        folder = self._full(path)
        prefix = folder + "/" if folder else ""
        entries: dict[str, FileInfo] = {}
        for art in self._files():
            if not art.path.startswith(prefix):
                continue
            rest = art.path[len(prefix):]
            head, sep, _ = rest.partition("/")
            full = prefix + head
            shown = full[len(self.base) + 1:] if self.base else full
            if sep:
                entries.setdefault(shown, FileInfo(shown, True, None))
            else:
                entries[shown] = FileInfo(shown, False, art.size)
        return [entries[k] for k in sorted(entries)]

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        path = self._full(remote_file_path)
        try:
            blob = self.store.artifact_file(self.run_id, path)
        except AutologError as exc:
            raise MlflowException(str(exc), RESOURCE_DOES_NOT_EXIST) from None
        os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
        shutil.copyfile(blob, local_path)

    def log_artifact(self, local_file, artifact_path=None):
        raise MlflowException(f"logging artifacts through MLflow is {NOT_SUPPORTED}; log them with autolog (run.log_artifact)",
                              INVALID_PARAMETER_VALUE)

    def log_artifacts(self, local_dir, artifact_path=None):
        self.log_artifact(local_dir, artifact_path)

    def delete_artifacts(self, artifact_path=None):
        raise MlflowException(f"deleting artifacts through MLflow is {NOT_SUPPORTED}", INVALID_PARAMETER_VALUE)
