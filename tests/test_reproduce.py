"""`autolog reproduce`: the printed steps rebuild a run, end to end, in a fresh clone."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap

import pytest

import autolog as al
from autolog.cli.commands import main

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the steps are a bash script")

TRAIN = textwrap.dedent("""
    import random
    import sys

    import numpy as np

    import autolog as al
    from helper import make_data  # an untracked file: only the captured diff brings it along

    epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
    seed = al.seed_everything()  # drawn at random: reproduce must hand the same one back
    with al.start_run(name="tiny") as run:
        lr = 0.1
        al.log_params({"lr": lr, "epochs": epochs})
        x, y = make_data(64)
        w = np.random.randn(3)
        for epoch in range(epochs):
            batch = np.random.permutation(len(x))[:16]
            err = x[batch] @ w - y[batch]
            w -= lr * x[batch].T @ err / len(batch)
            al.log_metric("loss", float((err ** 2).mean()), step=epoch)
            al.log_metric("jitter", random.random(), step=epoch)
    print("RUN_ID", run.id)
""")

HELPER = textwrap.dedent("""
    import numpy as np


    def make_data(n):
        x = np.random.randn(n, 3)
        return x, x @ np.array([1.0, -2.0, 0.5]) + 0.1 * np.random.randn(n)
""")


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A git repository with a committed script, an uncommitted change and an untracked helper."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.com")
    repo = tmp_path / "proj"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "train.py").write_text(TRAIN)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "train script")
    (repo / "src" / "train.py").write_text(TRAIN.replace("lr = 0.1", "lr = 0.05"))
    (repo / "src" / "helper.py").write_text(HELPER)
    return repo


def train(repo) -> str:
    out = subprocess.run(
        [sys.executable, "train.py", "--epochs", "6"], cwd=repo / "src", capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split("RUN_ID")[-1].strip()


def test_steps_rebuild_the_run_bit_for_bit(store, project, tmp_path, capsys):
    original = train(project)
    script = tmp_path / "steps.sh"
    assert main(["reproduce", original[:10], "--reuse-env", "--script", str(script)]) == 0
    printed = capsys.readouterr().out
    assert printed == script.read_text()
    assert "git apply" in printed and "AUTOLOG_SEED=" in printed and "cd src" in printed
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    done = subprocess.run(["bash", str(script)], cwd=clone, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    runs = {r.id: r for r in store.search_runs()}
    assert len(runs) == 2
    first = runs.pop(original)
    (second,) = runs.values()
    assert second.tags["reproduce.of"] == original
    assert second.params == first.params and first.params["lr"] == "0.05"
    for key in ("git.commit", "git.dirty", "source.entry_point", "source.cwd"):
        assert second.tags[key] == first.tags[key]
    for key in ("loss", "jitter"):
        a = [(p.step, p.value.hex()) for p in store.metric_history(first.id, key)]
        b = [(p.step, p.value.hex()) for p in store.metric_history(second.id, key)]
        assert a == b and len(a) == 6
    with open(store.artifact_file(first.id, "environment/git.diff"), "rb") as fh1, open(store.artifact_file(second.id, "environment/git.diff"), "rb") as fh2:
        assert fh1.read() == fh2.read()  # the clone ended up with exactly the same working tree


def test_steps_without_reuse_env_build_an_environment(store, project, capsys):
    original = train(project)
    assert main(["reproduce", original]) == 0
    printed = capsys.readouterr().out
    requirements = store.artifact_file(original, "environment/requirements.txt")
    assert "python3 -m venv .autolog-env" in printed
    assert f".autolog-env/bin/python -m pip install -r {requirements}" in printed
    assert ".autolog-env/bin/python train.py --epochs 6" in printed


def test_a_run_without_git_cannot_be_fully_reproduced(store, tmp_path, monkeypatch, capsys):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    with al.start_run() as run:
        al.seed_everything(5)
    assert main(["reproduce", run.id, "--reuse-env"]) == 1
    captured = capsys.readouterr()
    assert "cannot restore the code" in captured.err
    assert "# WARNING: cannot restore the code" in captured.out


def test_unknown_run(store, capsys):
    assert main(["reproduce", "does-not-exist"]) == 2
    assert "does-not-exist" in capsys.readouterr().err


def test_script_quotes_every_recorded_value(store, tmp_path, capsys):
    # A shared store can hold anything in a tag: nothing in it may become a command of the script.
    with al.start_run(name="evil", capture_env=False, log_system_metrics=False) as run:
        al.set_tags({
            "host": "h\ntouch pwned1", "git.remote": "https://u:***@x.example/r.git\ntouch pwned2",
            "python.version": "3.11\rtouch pwned3\n", "python.executable": "/py\n\ntouch pwned4",
            "env.FOO": "a\ntouch pwned5", "env.X;touch pwned6": "1", "source.entry_point": "train.py\ntouch pwned7",
            "source.cwd": "sub\ntouch pwned8", "source.command": shlex.join(["python", "train.py", "--note", "x\ntouch pwned9", "\x1b[2J"]),
        })
    script = tmp_path / "steps.sh"
    main(["reproduce", run.id, "--reuse-env", "--script", str(script)])
    text = script.read_text()
    assert capsys.readouterr().out == text
    assert not [ch for ch in text if not ch.isprintable() and ch != "\n"]  # no raw ESC/CR for the terminal
    for line in text.splitlines():
        assert not line.startswith("touch"), line
    assert "# WARNING: left out the recorded environment variable 'X;touch pwned6'" in text
    assert "#   git clone $'https://x.example/r.git\\ntouch pwned2' repro" in text  # a redacted password is dropped
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["bash", str(script)], cwd=work, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert not [p for p in work.rglob("*pwned*")] and not list(tmp_path.glob("pwned*"))


@pytest.mark.parametrize("value", ["plain", "it's", "a b", "x\ntouch y", "\x1b[2J\x07\r\t", "back\\slash'\n", "é\u202e日"])
def test_quote_round_trips_through_bash(value):
    from autolog.cli.reproduce import quote

    out = subprocess.run(["bash", "-c", f"printf %s {quote(value)}"], capture_output=True, timeout=30,
                         env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert out.stdout.decode("utf-8") == value
