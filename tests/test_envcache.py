"""The environment is read once per environment: a small cache file keyed by what would change it."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

import autolog as al
from autolog.capture import installed
from autolog.store import liveness


def test_a_cached_value_is_computed_once_until_site_packages_change(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    assert installed.env_cached("probe", compute) == {"n": 1}
    assert installed.env_cached("probe", compute) == {"n": 1}  # read back from the file
    assert len(calls) == 1 and list((tmp_path / "cache" / "autolog").glob("probe-*.json"))
    (site / "newpkg-1.0.dist-info").mkdir()  # an install changes the folder's mtime
    os.utime(site, ns=(os.stat(site).st_atime_ns, os.stat(site).st_mtime_ns + 10**9))
    assert installed.env_cached("probe", compute) == {"n": 2}


def test_an_unreadable_cache_file_only_costs_the_computation(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert installed.env_cached("probe2", lambda: "x") == "x"
    for path in (tmp_path / "cache" / "autolog").glob("probe2-*.json"):
        path.write_text("{not json")
    assert installed.env_cached("probe2", lambda: "y") == "y"


def test_two_processes_store_one_requirements_blob(tmp_path, store):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), AUTOLOG_URI=store.root)
    code = "import autolog as al\nwith al.start_run() as run: pass\nprint(run.id)"
    ids = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True).stdout.split()[-1]
           for _ in range(2)]
    shas = {a.sha256 for run_id in ids for a in store.list_artifacts(run_id) if a.path.endswith("requirements.txt")}
    assert len(shas) == 1  # the same bytes: stored once for both runs
    assert {p.name.split("-")[0] for p in (tmp_path / "cache" / "autolog").glob("*.json")} >= {"requirements", "hardware", "versions", "system"}
    tags = store.get_run(ids[1]).tags
    assert tags["python.version"] and tags["user"] and tags["platform"]


def test_process_start_time_matches_psutil():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        for pid in (os.getpid(), child.pid):
            assert abs(liveness.process_start_time(pid) - psutil.Process(pid).create_time()) < 0.05
    finally:
        child.kill()
        child.wait()
    assert liveness.process_start_time(2**22 + 12345) == 0.0
    # ...without importing psutil, whose import costs a fresh process tens of milliseconds.
    code = "import sys\nfrom autolog.store import liveness\nassert liveness.process_start_time() > 0\nprint('psutil' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
    assert al


def test_a_version_range_answer_is_kept_per_environment(tmp_path):
    # Checking an integration's tested range needs `packaging` (~4 ms to import) only once per environment.
    import json

    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    code = ("import json, sys\nfrom autolog.capture import installed\n"
            "answers = [installed.version_inside(v, '>=1.3,<1.11') for v in ('1.5.2', '1.11.0', '1.11.0rc1', 'not-a-version')]\n"
            "print(json.dumps([answers, 'packaging' in sys.modules]))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                                      check=True).stdout.splitlines()[-1]) for _ in range(2)]
    assert runs[0] == [[True, False, False, True], True]  # packaging's answers (an unparsable version counts as inside)
    assert runs[1] == [[True, False, False, True], False]  # the same answers, read back without importing packaging
