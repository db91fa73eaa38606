"""Code and data versions for the environment capture: git state and DVC hashes.

Every git call has a timeout and runs in its own process group, so a hung git (a network
filesystem, a credential prompt, a huge repository) is killed with all its children and the
capture reports it instead of waiting. Git is asked not to take optional locks, so the
capture never competes with the user's own git commands.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from autolog import env

if TYPE_CHECKING:
    import subprocess  # imported when a command runs: outside a repository none does

DIFF_LIMIT = 5 * 2**20  # bytes; a larger diff is not stored (a cut patch cannot be applied)
UNTRACKED_FILE_LIMIT = 2**20  # bytes per untracked file included in the diff
UNTRACKED_MAX_FILES = 100
SOURCE_SUFFIXES = frozenset(
    ".py .pyi .pyx .ipynb .cfg .toml .ini .yaml .yml .json .txt .md .rst .sh .r .jl .c .cc .cpp .h .hpp .cu .sql .js .ts"
    " .proto .lock .env.example".split()
)
SOURCE_NAMES = frozenset({"Makefile", "Dockerfile", "requirements.txt", "setup.py", "pyproject.toml", "dvc.yaml", "params.yaml"})
DVC_MAX_FILES = 200
DVC_MAX_TAGS = 500
HASH_FIELDS = ("md5", "sha256", "etag", "checksum", "version_id")
# Folders where training writes its outputs: their files are results, not code, and would
# crowd the source files out of the diff's slots (any path component with one of these names).
OUTPUT_FOLDERS = frozenset({
    "autolog-runs", "mlruns", "mlartifacts", "lightning_logs", "checkpoints", "wandb", "dvclive", "runs",
    ".ipynb_checkpoints", "__pycache__", "outputs", "logs",
})


# thread id -> the command it waits for, so that an abandoned capture can kill it
_running: dict[int, subprocess.Popen] = {}


class CaptureError(RuntimeError):
    """A part of the environment could not be captured; the message says why."""


def git_timeout() -> float:
    """Seconds one git call may take (``$AUTOLOG_GIT_TIMEOUT``, default 5)."""
    return env.number(env.AUTOLOG_GIT_TIMEOUT, 5.0)


def run_command(args: list[str], cwd: str, timeout: float | None = None, ok_codes: tuple[int, ...] = (0,)) -> bytes:
    """Run ``args`` and return its stdout; kill its whole process group after ``timeout`` seconds.

    Raises:
        CaptureError: the command failed, timed out, or does not exist.
    """
    import subprocess

    timeout = git_timeout() if timeout is None else timeout
    environ = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=environ, start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise CaptureError(f"cannot run {args[0]}: {exc.strerror or exc}") from None
    me = threading.get_ident()
    _running[me] = proc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Kill the group: a child holding the pipe open would make communicate() hang again.
        _kill(proc)
        raise CaptureError(f"{' '.join(args[1:3])} timed out after {timeout:g} s") from None
    finally:
        _running.pop(me, None)
    if proc.returncode not in ok_codes:
        message = err.decode("utf-8", "replace").strip().splitlines()
        raise CaptureError(message[-1] if message else f"{args[0]} exited with {proc.returncode}")
    return out


def kill_running(thread_id: int | None) -> None:
    """Kill the command (and its children) that thread ``thread_id`` is waiting for, if any."""
    proc = _running.get(thread_id) if thread_id is not None else None
    if proc is not None:
        _kill(proc, wait=False)


def _kill(proc: subprocess.Popen, wait: bool = True) -> None:
    import signal
    import subprocess

    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    if not wait:
        return
    try:
        proc.communicate(timeout=1.0)
    except (subprocess.TimeoutExpired, OSError):
        pass


def which(name: str) -> str | None:
    """``shutil.which(name)`` for a bare command name; on POSIX without importing shutil
    (bz2, lzma and fnmatch with it: ~2 ms of the capture thread's CPU per process)."""
    if os.name != "posix":
        import shutil

        return shutil.which(name)
    path = os.environ.get("PATH")
    if path is None:
        try:
            path = os.confstr("CS_PATH")
        except (AttributeError, ValueError):
            path = os.defpath
    if not path:
        return None
    seen: set[str] = set()
    for folder in path.split(os.pathsep):
        if folder in seen:
            continue
        seen.add(folder)
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate) and os.access(candidate, os.F_OK | os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


class GitState:
    """What ``git_state`` found: tags to set, the diff (or None) and what failed.

    A plain class: ``dataclasses`` imports ``inspect`` (~7 ms of the capture thread's CPU).
    """

    def __init__(self, root: str | None = None, tags: dict[str, str] | None = None, diff: bytes | None = None,
                 failed: list[str] | None = None) -> None:
        self.root = root
        self.tags: dict[str, str] = {} if tags is None else tags
        self.diff = diff
        self.failed: list[str] = [] if failed is None else failed

    def __repr__(self) -> str:
        return f"GitState(root={self.root!r}, tags={self.tags!r}, diff={self.diff!r}, failed={self.failed!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.root, self.tags, self.diff, self.failed) == (other.root, other.tags, other.diff, other.failed)

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as the dataclass was


def git_state(base: str, exclude: list[str] | None = None, entry: str | None = None) -> GitState:
    """Commit, branch, remote, dirty flag and uncommitted diff of the repository containing ``base``.

    ``exclude`` lists folders (the run store) whose files never count as changes. ``entry``,
    the script or notebook that runs, is always put in the diff when git does not track it.

    Outside a repository the state holds only the tag ``git.repository=none``.

    Raises:
        CaptureError: git is missing, or git failed or timed out there.
    """
    git = which("git")
    if git is None:
        raise CaptureError("git executable not found")
    if not _may_be_in_repository(base):
        return GitState(root=None, tags={"git.repository": "none"})
    try:
        # One process for both: the top level, then HEAD's commit (exit 1 and no second line: no commits yet).
        found = run_command([git, "rev-parse", "--show-toplevel", "--verify", "-q", "HEAD"], base, ok_codes=(0, 1))
    except CaptureError as exc:
        if "not a git repository" not in str(exc):
            raise
        # Running outside git is a fact about the project, not a capture failure.
        return GitState(root=None, tags={"git.repository": "none"})
    lines = found.decode("utf-8", "surrogateescape").splitlines()
    if not lines or not lines[0].strip():
        raise CaptureError("git rev-parse --show-toplevel printed nothing")
    root = lines[0].strip()
    state = GitState(root=root)

    def call(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        return run_command([git, *args], root, ok_codes=ok).decode("utf-8", "surrogateescape")

    commit = lines[1].strip() if len(lines) > 1 else ""
    if not commit:
        state.failed.append("git.commit: the repository has no commits yet")
    if commit:
        state.tags["git.commit"] = commit
    for name, step in (("git.branch", _branch), ("git.remote", _remote)):
        try:
            step(call, state)
        except CaptureError as exc:
            state.failed.append(f"{name}: {exc}")
    pathspec = ["--", "."] + [f":(exclude){rel}" for rel in _inside(root, exclude or [])]
    try:
        status = run_command([git, "status", "--porcelain=v1", "-z", "--untracked-files=all", *pathspec], root)
    except CaptureError as exc:
        state.failed.append(f"git.dirty: {exc}")
        return state
    entries = [e for e in status.decode("utf-8", "surrogateescape").split("\0") if e]
    untracked = [e[3:] for e in entries if e.startswith("?? ")]
    state.tags["git.dirty"] = "true" if entries else "false"
    if untracked:
        state.tags["git.untracked"] = str(len(untracked))
    if entries and commit:
        try:
            state.diff = _diff(git, root, commit, untracked, pathspec, state, entry)
        except CaptureError as exc:
            state.failed.append(f"git.diff: {exc}")
    return state


def _may_be_in_repository(base: str) -> bool:
    """False only when git would find no repository from ``base``: no ``.git`` (nor a bare repository) up to ``/``.

    Saves the ``git rev-parse`` process (several ms per run start) outside any repository;
    with ``GIT_DIR``/``GIT_WORK_TREE`` set, or anything git-like on the way up, git decides.
    """
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return True
    folder = os.path.realpath(base)  # git walks up from the physical working directory
    if not os.path.isdir(folder):
        return True  # let git report the real error
    while True:
        if os.path.lexists(os.path.join(folder, ".git")) or (
                os.path.exists(os.path.join(folder, "HEAD")) and os.path.isdir(os.path.join(folder, "objects"))):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def _branch(call, state: GitState) -> None:
    branch = call("symbolic-ref", "-q", "--short", "HEAD", ok=(0, 1)).strip()
    if branch:
        state.tags["git.branch"] = branch
    else:
        state.tags["git.detached"] = "true"


def _remote(call, state: GitState) -> None:
    lines = call("config", "--get-regexp", r"^remote\..*\.url$", ok=(0, 1)).splitlines()
    urls = dict(line.split(" ", 1) for line in lines if " " in line)
    url = urls.get("remote.origin.url") or next(iter(urls.values()), "")
    if url:
        state.tags["git.remote"] = url  # credentials are scrubbed with every other tag


def _inside(root: str, folders: list[str]) -> list[str]:
    rels = []
    for folder in folders:
        rel = os.path.relpath(os.path.realpath(folder), os.path.realpath(root))
        if rel != "." and not rel.startswith(".."):
            rels.append(rel.replace(os.sep, "/"))
    return rels


def is_output_path(path: str) -> bool:
    """Whether ``path`` (relative, ``/``-separated) lies in a folder training writes results to."""
    return any(part in OUTPUT_FOLDERS for part in path.split("/")[:-1])


def _diff(git: str, root: str, commit: str, untracked: list[str], pathspec: list[str], state: GitState,
          entry: str | None = None) -> bytes:
    """Tracked changes against HEAD plus small untracked source files as new-file patches.

    The entry script or notebook comes first and is always included (within the size
    limit); files in output folders (``autolog-runs/``, ``lightning_logs/``, checkpoints...)
    never take a slot. Files left out on purpose are counted in the tag
    ``git.untracked_skipped``, not reported as a capture failure.
    """
    parts = [run_command([git, "diff", "--binary", "--no-color", "--no-ext-diff", commit, *pathspec], root)]
    size = len(parts[0])
    if size > DIFF_LIMIT:
        raise CaptureError(f"{size} bytes, over the {DIFF_LIMIT // 2**20} MiB limit; not stored")
    entry_rel = None
    if entry and os.path.isabs(entry):
        entry_rel = os.path.relpath(os.path.realpath(entry), os.path.realpath(root)).replace(os.sep, "/")
    outputs = [p for p in untracked if is_output_path(p) and p != entry_rel]
    candidates = sorted((p for p in untracked if p not in outputs), key=lambda p: p != entry_rel)
    included: list[str] = []
    skipped: list[str] = []
    for path in candidates:
        full = os.path.join(root, path)
        try:
            file_size = os.path.getsize(full)
        except OSError:
            continue
        source = os.path.splitext(path)[1].lower() in SOURCE_SUFFIXES or os.path.basename(path) in SOURCE_NAMES
        if path == entry_rel:
            source, room = True, size + file_size <= DIFF_LIMIT
        else:
            room = file_size <= UNTRACKED_FILE_LIMIT and len(included) < UNTRACKED_MAX_FILES and size + file_size <= DIFF_LIMIT
        if not source or not room:
            skipped.append(f"{path} ({file_size} bytes)")
            continue
        patch = run_command([git, "diff", "--no-index", "--binary", "--no-color", "--", os.devnull, path], root, ok_codes=(0, 1))
        parts.append(patch)
        size += len(patch)
        included.append(path)
    if skipped or outputs:
        state.tags["git.untracked_skipped"] = str(len(skipped) + len(outputs))
    header = [f"# autolog: uncommitted changes against {commit}; apply with `git apply` in a checkout of it"]
    header += [f"# untracked file, included below: {p}" for p in included]
    header += [f"# untracked file, NOT included: {p}" for p in skipped]
    if outputs:
        header.append(f"# {len(outputs)} untracked files in output folders (runs, logs, checkpoints) not included")
    # git apply skips text before the first "diff --git" line, so the header is harmless.
    return ("\n".join(header) + "\n").encode("utf-8", "surrogateescape") + b"".join(parts)


# -- DVC -------------------------------------------------------------------------------
def dvc_hashes(root: str, use_git: bool = True) -> tuple[dict[str, str], list[str]]:
    """``{path: hash}`` of every output and dependency in ``dvc.lock`` and ``*.dvc`` files under ``root``."""
    files, failed = _dvc_files(root, use_git)
    hashes: dict[str, str] = {}
    for rel in files:
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as fh:
                entries = _dvc_entries(fh.read())
        except (OSError, UnicodeError, ValueError) as exc:
            failed.append(f"dvc: {rel}: {exc}")
            continue
        folder = os.path.dirname(rel)
        for path, value in entries:
            key = os.path.normpath(os.path.join(folder, path)).replace(os.sep, "/")
            if key.startswith(("..", "/")) or len(hashes) >= DVC_MAX_TAGS:
                continue
            hashes[key] = value
    return hashes, failed


def _dvc_files(root: str, use_git: bool) -> tuple[list[str], list[str]]:
    if use_git and which("git"):
        try:
            out = run_command(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.dvc", "dvc.lock", "*/dvc.lock"], root)
            return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p][:DVC_MAX_FILES], []
        except CaptureError as exc:
            return [], [f"dvc: {exc}"]
    found: list[str] = []
    seen = 0
    for folder, dirs, names in os.walk(root):
        # Never crawl a whole disk or an environment: hidden folders and venvs are skipped.
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "venv", "__pycache__", "site-packages")]
        seen += len(names)
        found += [os.path.relpath(os.path.join(folder, n), root) for n in names if n == "dvc.lock" or n.endswith(".dvc")]
        if seen > 20_000 or len(found) >= DVC_MAX_FILES:
            break
    return sorted(found)[:DVC_MAX_FILES], []


def _dvc_entries(text: str) -> list[tuple[str, str]]:
    """(path, hash) of every list item with a ``path`` and a hash field in a DVC YAML file."""
    try:
        import yaml  # DVC's own files are YAML; PyYAML is usually installed, else the reader below

        data = yaml.safe_load(text)
    except ImportError:
        return _scan_items(text)
    except Exception as exc:  # yaml.YAMLError without importing yaml's error types
        raise ValueError(f"not valid YAML ({type(exc).__name__})") from None
    out: list[tuple[str, str]] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            value = next((node[f] for f in HASH_FIELDS if isinstance(node.get(f), (str, int))), None)
            if isinstance(node.get("path"), str) and value is not None:
                out.append((node["path"], str(value)))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(data)
    return out


def _scan_items(text: str) -> list[tuple[str, str]]:
    # Enough YAML for DVC files: "- key: value" list items with plain scalar values.
    out: list[tuple[str, str]] = []
    item: dict[str, str] = {}
    for raw in text.splitlines() + ["- end"]:
        line = raw.strip()
        if line.startswith("- "):
            if "path" in item and any(f in item for f in HASH_FIELDS):
                out.append((item["path"], next(item[f] for f in HASH_FIELDS if f in item)))
            item = {}
            line = line[2:]
        key, sep, value = line.partition(":")
        if sep and value.strip():
            item[key.strip()] = value.strip().strip("'\"")
    return out
