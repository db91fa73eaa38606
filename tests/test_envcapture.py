"""Environment capture: git states, DVC hashes, fail-soft behaviour, timeouts and secrets.

Every repository is a real one made in the test with the real ``git``; a hanging git is a
shell script named ``git`` placed first on PATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

import autolog as al
from autolog.capture import environment as envcapture
from autolog.capture import installed, vcs

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses POSIX shell scripts and process groups")


@pytest.fixture(autouse=True)
def git_identity(monkeypatch, tmp_path):
    """Commits need an author; a user's global git config must not leak into the test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(var, "Test")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(var, "test@example.com")


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path, remote: str | None = None):
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("lr = 0.1\nprint(lr)\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "first")
    if remote:
        git(path, "remote", "add", "origin", remote)
    return path


def run_and_read(store, **kwargs):
    with al.start_run(**kwargs) as run:
        pass
    rec = store.get_run(run.id)
    return rec, {a.path for a in store.list_artifacts(run.id)}


def read_artifact(store, run_id, path) -> bytes:
    with open(store.artifact_file(run_id, path), "rb") as fh:
        return fh.read()


def test_clean_repo(store, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "proj", remote="https://github.com/org/proj.git")
    monkeypatch.chdir(repo)
    rec, artifacts = run_and_read(store)
    tags = rec.tags
    assert tags["git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["git.branch"] == "main"
    assert tags["git.remote"] == "https://github.com/org/proj.git"
    assert tags["git.dirty"] == "false"
    assert tags["source.cwd"] == "."
    assert "capture.failed" not in tags
    assert tags["python.version"].count(".") == 2 and tags["host"] and tags["user"] and tags["platform"]
    assert tags["version.torch"].startswith("2.") and tags["version.sklearn"] and tags["version.autolog"]
    assert artifacts == {"environment/requirements.txt", "environment/hardware.json"}
    requirements = read_artifact(store, rec.id, "environment/requirements.txt").decode()
    assert "\npytest==" in requirements and "\nnumpy==" in requirements
    assert re.search(r"^(# )?autolog==0\.1\.0", requirements, re.M)
    hardware = json.loads(read_artifact(store, rec.id, "environment/hardware.json"))
    assert hardware["cpu"]["logical_cores"] == os.cpu_count()
    assert hardware["memory_total_bytes"] > 0 and isinstance(hardware["gpus"], list)


class FakeDist:
    """The two methods of importlib.metadata.Distribution that requirement lines read."""

    def __init__(self, direct_url):
        self.version = "1.2.3"
        self.direct_url = direct_url

    def read_text(self, name):
        return json.dumps(self.direct_url) if name == "direct_url.json" and self.direct_url else None


def test_requirement_lines():
    line = installed.requirement_line
    assert line(FakeDist(None), "pkg") == "pkg==1.2.3"
    editable = FakeDist({"url": "file:///home/me/pkg", "dir_info": {"editable": True}})
    assert line(editable, "pkg") == "# pkg==1.2.3  (editable install from file:///home/me/pkg)"
    vcs_dist = FakeDist({"url": "https://me:tok@github.com/o/pkg.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}})
    assert line(vcs_dist, "pkg") == "pkg @ git+https://github.com/o/pkg.git@abc"


def test_dirty_repo_diff_applies_in_a_clone(store, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "proj")
    (repo / "train.py").write_text("lr = 0.05\nprint(lr)\n")
    (repo / "helper.py").write_text("def f():\n    return 1")  # untracked, no final newline
    (repo / "data.bin").write_bytes(b"\x00\x01" * 10)  # untracked, not source
    monkeypatch.chdir(repo)
    rec, artifacts = run_and_read(store)
    assert rec.tags["git.dirty"] == "true"
    assert rec.tags["git.untracked"] == "2"
    assert rec.tags["git.untracked_skipped"] == "1"  # skipped on purpose: not a capture failure
    assert "git.diff" not in rec.tags.get("capture.failed", "")
    diff = read_artifact(store, rec.id, "environment/git.diff").decode()
    assert "# untracked file, included below: helper.py" in diff
    assert "# untracked file, NOT included: data.bin (20 bytes)" in diff
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "apply", store.artifact_file(rec.id, "environment/git.diff"))
    assert (clone / "train.py").read_text() == "lr = 0.05\nprint(lr)\n"
    assert (clone / "helper.py").read_text() == "def f():\n    return 1"


def test_store_inside_the_repo_does_not_make_it_dirty(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "proj")
    monkeypatch.chdir(repo)
    store = al.set_store(str(repo / "autolog-runs"))
    run_and_read(store)  # the first run creates files in the store
    rec, _ = run_and_read(store)
    assert rec.tags["git.dirty"] == "false"


def test_detached_head(store, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "proj")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "more.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "second")
    git(repo, "checkout", "-q", "--detach", first)
    monkeypatch.chdir(repo)
    rec, _ = run_and_read(store)
    assert rec.tags["git.commit"] == first
    assert rec.tags["git.detached"] == "true"
    assert "git.branch" not in rec.tags


def test_repo_without_commits(store, tmp_path, monkeypatch):
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    monkeypatch.chdir(repo)
    rec, _ = run_and_read(store)
    assert "git.commit" not in rec.tags
    assert "no commits yet" in rec.tags["capture.failed"]


def test_no_repository(store, tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    rec, artifacts = run_and_read(store)
    assert rec.status == "FINISHED"
    assert rec.tags["git.repository"] == "none"  # a fact about the project, not a capture failure
    assert "git" not in rec.tags.get("capture.failed", "")
    assert not any(k.startswith("git.") for k in rec.tags if k != "git.repository")
    assert rec.tags["python.version"] and "environment/requirements.txt" in artifacts


def test_git_not_installed(store, tmp_path, monkeypatch):
    make_repo(tmp_path / "proj")
    monkeypatch.chdir(tmp_path / "proj")
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    rec, _ = run_and_read(store)
    assert rec.status == "FINISHED"
    assert "git: git executable not found" in rec.tags["capture.failed"]


def fake_git(tmp_path, monkeypatch, seconds: int) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(f"#!/bin/sh\nsleep {seconds}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def sleepers() -> list:
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if p.name() == "sleep"]


def test_hanging_git_times_out_without_blocking_the_run(store, tmp_path, monkeypatch):
    make_repo(tmp_path / "proj")
    monkeypatch.chdir(tmp_path / "proj")
    fake_git(tmp_path, monkeypatch, 30)
    monkeypatch.setenv("AUTOLOG_GIT_TIMEOUT", "0.5")
    began = time.perf_counter()
    run = al.start_run()
    # start_run returned while git still hangs: the capture thread has not given up on it yet.
    capture = envcapture.capture_of(run.id)
    assert capture.thread is not threading.current_thread() and capture.thread.is_alive()
    assert "capture.failed" not in store.get_run(run.id).tags
    al.log_metric("loss", 1.0)
    run.end()
    assert time.perf_counter() - began < 25.0  # no hang: the 30 s git was not waited for
    rec = store.get_run(run.id)
    assert rec.status == "FINISHED" and rec.metrics["loss"] == 1.0
    assert "timed out after 0.5 s" in rec.tags["capture.failed"]
    assert rec.tags["python.version"]
    assert not sleepers()  # the whole process group was killed, not just the shell


def test_run_end_waits_a_bounded_time_and_kills_the_hung_git(store, tmp_path, monkeypatch):
    make_repo(tmp_path / "proj")
    monkeypatch.chdir(tmp_path / "proj")
    fake_git(tmp_path, monkeypatch, 30)
    monkeypatch.setenv("AUTOLOG_GIT_TIMEOUT", "60")
    monkeypatch.setenv("AUTOLOG_CAPTURE_TIMEOUT", "0.5")
    began = time.perf_counter()
    with al.start_run() as run:
        capture = envcapture.capture_of(run.id)
    assert time.perf_counter() - began < 20.0  # no hang: the run's end did not wait for the 30 s git
    capture.thread.join(5.0)
    assert not capture.thread.is_alive()
    assert not sleepers()
    tags = store.get_run(run.id).tags
    assert "git: not finished 0.5 s after the run ended" in tags["capture.failed"]
    assert tags["source.command"] and tags["python.version"]


def test_dvc_hashes_become_tags(store, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "proj")
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n    deps:\n"
        "    - path: data/train.csv\n      md5: 1b2c3d4e5f60718293a4b5c6d7e8f901\n      size: 1200\n"
        "    outs:\n    - path: model.pkl\n      hash: md5\n      md5: aaaabbbbccccddddeeeeffff00001111\n      size: 10\n"
    )
    (repo / "raw").mkdir()
    (repo / "raw" / "images.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  size: 5000\n  nfiles: 3\n  hash: md5\n  path: images\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "data")
    monkeypatch.chdir(repo)
    rec, _ = run_and_read(store)
    assert rec.tags["dvc.data/train.csv"] == "1b2c3d4e5f60718293a4b5c6d7e8f901"
    assert rec.tags["dvc.model.pkl"] == "aaaabbbbccccddddeeeeffff00001111"
    assert rec.tags["dvc.raw/images"] == "0123456789abcdef0123456789abcdef.dir"
    # The same files without PyYAML, through the small fallback reader.
    text = (repo / "dvc.lock").read_text()
    assert sorted(vcs._scan_items(text)) == sorted(vcs._dvc_entries(text))


def test_dvc_without_git(store, tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.dvc").write_text("outs:\n- md5: feedfeedfeedfeedfeedfeedfeedfeed\n  path: data.csv\n")
    monkeypatch.chdir(plain)
    rec, _ = run_and_read(store)
    assert rec.tags["dvc.data.csv"] == "feedfeedfeedfeedfeedfeedfeedfeed"


PLANTED = "Zq8planted7SECRET5value"


def test_no_byte_of_a_secret_reaches_the_store(store, isolated_store, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "proj", remote=f"https://deploy:{PLANTED}@git.example.com/org/proj.git")
    git(repo, "remote", "add", "mirror", f"https://{PLANTED}@mirror.example.com/proj.git")
    (repo / "settings.py").write_text(f'API_TOKEN = "{PLANTED}"\ntokenizer = "bert-base"\n')
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MY_SERVICE_TOKEN", PLANTED)
    monkeypatch.setenv("DATABASE_URL", f"postgres://u:{PLANTED}@db/x")
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "train.py", "--api-key", PLANTED, f"--password={PLANTED}", "--tokenizer", "bert"])
    rec, artifacts = run_and_read(store)
    al.flush()
    assert rec.tags["git.remote"] == "https://deploy:***@git.example.com/org/proj.git"  # the policy of autolog.secrets
    assert rec.tags["source.command"].endswith("train.py --api-key '***' '--password=***' --tokenizer bert")
    diff = read_artifact(store, rec.id, "environment/git.diff").decode()
    assert 'API_TOKEN = "***"' in diff and 'tokenizer = "bert-base"' in diff
    needle = PLANTED.encode()
    scanned = 0
    for folder, _dirs, names in os.walk(isolated_store):
        for name in names:
            with open(os.path.join(folder, name), "rb") as fh:
                assert needle not in fh.read(), f"secret found in {name}"
            scanned += 1
    assert scanned >= 4  # runs.db (+ -wal) and the artifact blobs


# What counts as a secret, and how it is hidden, is tested in test_secrets.py.


def test_allowlisted_environment_variables_and_reproduce_tag(store, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    monkeypatch.setenv("AUTOLOG_REPRODUCES", "abc123")
    rec, _ = run_and_read(store)
    assert rec.tags["env.CUDA_VISIBLE_DEVICES"] == "1,0"
    assert rec.tags["reproduce.of"] == "abc123"
    assert not any(k.startswith("env.") and k.endswith(("TOKEN", "PATH", "HOME")) for k in rec.tags)


def test_deleted_working_directory(store, tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    rec, _ = run_and_read(store)
    assert rec.status == "FINISHED"
    assert "working directory no longer exists" in rec.tags["capture.failed"]


def test_our_own_bug_fails_soft_outside_strict_mode(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr(envcapture.Capture, "_versions", lambda self: 1 / 0)
    rec, _ = run_and_read(store)
    assert rec.status == "FINISHED"
    assert "versions: division by zero" in rec.tags["capture.failed"]
    assert rec.tags["python.version"]


def test_capture_off(store):
    rec, artifacts = run_and_read(store, capture_env=False)
    assert not artifacts and "python.version" not in rec.tags


def test_run_start_leaves_git_and_requirements_to_the_capture_thread(store, tmp_path, monkeypatch):
    # Why run start is cheap, as an outcome: no subprocess and no package scan on the caller's thread.
    from importlib import metadata

    repo = make_repo(tmp_path / "proj")
    monkeypatch.chdir(repo)
    threads = []
    real_popen = subprocess.Popen.__init__
    real_distributions = metadata.distributions

    def popen(self, *args, **kwargs):
        threads.append(("git or another program", threading.current_thread()))
        return real_popen(self, *args, **kwargs)

    def distributions(*args, **kwargs):
        threads.append(("package scan", threading.current_thread()))
        return real_distributions(*args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    monkeypatch.setattr(metadata, "distributions", distributions)
    for _ in range(3):
        run = al.start_run()
        on_caller = [what for what, thread in threads if thread is threading.current_thread()]
        capture = envcapture.capture_of(run.id)
        capture.thread.join(60)
        run.end()
        assert on_caller == []
    assert threads  # the capture did run git, on its own thread
    assert store.get_run(run.id).tags.get("git.commit")


def test_snapshot_entry_points(monkeypatch):
    main = sys.modules["__main__"]
    monkeypatch.delattr(main, "__file__", raising=False)
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    monkeypatch.setattr(sys, "orig_argv", [sys.executable])  # a REPL
    assert envcapture.snapshot()["entry"] == "interactive"
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-c", "pass"])
    assert envcapture.snapshot()["entry"] == "interactive"
    # Before __main__ is set up (autolog run's bootstrap), the command line says what runs.
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-X", "dev", "-m", "pkg.train", "--lr", "1"])
    assert envcapture.snapshot()["entry"] == "-m pkg.train"
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-u", __file__, "--x"])
    assert envcapture.snapshot()["entry"] == os.path.abspath(__file__)
    monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
    assert envcapture.snapshot()["entry"] != "notebook"  # imported is not running in a kernel
    from autolog.capture import notebook

    monkeypatch.setattr(notebook, "in_notebook", lambda: True)
    assert envcapture.snapshot()["entry"] == "notebook"
