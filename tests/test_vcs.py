"""Git state for the environment capture: which untracked files the stored diff holds."""

from __future__ import annotations

import os
import shutil
import subprocess

from autolog.capture.vcs import UNTRACKED_MAX_FILES, git_state, is_output_path


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path):
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("project\n")
    git(path, "add", ".")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return path


def test_output_folders_never_take_the_diffs_slots_and_the_entry_script_always_does(tmp_path):
    repo = make_repo(tmp_path / "proj")
    for folder in ("lightning_logs/version_0", "autolog-runs", "mlruns/0", "checkpoints"):
        (repo / folder).mkdir(parents=True)
        for i in range(5):
            (repo / folder / f"out{i}.yaml").write_text("x: 1\n")
    for i in range(UNTRACKED_MAX_FILES + 20):  # more source files than there are slots
        (repo / f"mod_{i:03d}.py").write_text(f"X = {i}\n")
    entry = repo / "zz_train.py"  # sorts last: would lose its slot without the entry rule
    entry.write_text("print('train')\n")
    state = git_state(str(repo), entry=str(entry))
    diff = state.diff.decode()
    assert "# untracked file, included below: zz_train.py" in diff
    assert "diff --git a/zz_train.py b/zz_train.py" in diff
    assert "lightning_logs" not in diff.split("# 20 untracked files in output folders")[0]
    assert "# 20 untracked files in output folders (runs, logs, checkpoints) not included" in diff
    assert diff.count("# untracked file, included below:") == UNTRACKED_MAX_FILES
    assert state.tags["git.untracked_skipped"] == str(20 + 20 + 1)  # outputs, sources over the slots
    assert not any("untracked" in f for f in state.failed)  # skipped on purpose is not a failure


def test_output_path_rule_is_about_folders_not_names():
    assert is_output_path("lightning_logs/version_0/hparams.yaml")
    assert is_output_path("exp/checkpoints/best.ckpt")
    assert not is_output_path("checkpoints.py")
    assert not is_output_path("src/runs_utils.py")


def test_outside_any_repository_git_is_not_even_started(tmp_path, monkeypatch):
    # A `git` on PATH that notes each call before running the real one: the outcome, not a mock.
    import os
    import shutil

    real = shutil.which("git")
    calls = tmp_path / "calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{real}" "$@"\n')
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("GIT_DIR", raising=False)
    outside = tmp_path / "plain"
    outside.mkdir()
    if git_state(str(tmp_path)).root is not None:  # tmp_path itself lies in a checkout here: nothing to show
        return
    calls.unlink(missing_ok=True)
    state = git_state(str(outside))
    assert state.tags == {"git.repository": "none"} and state.root is None and not state.failed
    assert not calls.exists()  # no git process outside a repository
    repo = make_repo(tmp_path / "repo")
    inside = git_state(str(repo))
    assert inside.root == str(repo.resolve()) and inside.tags["git.branch"] == "main"
    assert calls.read_text().count("rev-parse") >= 1
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))  # git finds this repository from anywhere: ask git
    assert git_state(str(outside)).root is not None


def test_which_finds_what_shutil_which_finds(tmp_path, monkeypatch):
    from autolog.capture.vcs import which

    tool = tmp_path / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    (tmp_path / "plain" / "tool").mkdir(parents=True)  # a folder of that name is no command
    (tmp_path / "noexec").mkdir()
    (tmp_path / "noexec" / "tool").write_text("")
    for path in (f"{tmp_path / 'plain'}{os.pathsep}{tmp_path / 'noexec'}{os.pathsep}{tool.parent}", str(tmp_path / "noexec"), ""):
        monkeypatch.setenv("PATH", path)
        assert which("tool") == shutil.which("tool")
        tool.chmod(0o755)
        assert which("tool") == shutil.which("tool") and which("git-nowhere") is None
        tool.chmod(0o644)
