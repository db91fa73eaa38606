"""System metrics: the background sampler, its interval, its stop with the run, and its cost."""

from __future__ import annotations

import os
import sys
import threading
import time
import types

import pytest

import autolog as al
from autolog.capture import seeding as repro
from autolog.capture import system as sysmetrics


@pytest.fixture(autouse=True)
def restore_interval():
    saved = sysmetrics.INTERVAL
    yield
    sysmetrics.INTERVAL = saved


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("autolog-sysmetrics")]


def test_samples_every_interval_and_stops_with_the_run(store):
    repro.configure(system_metrics_interval=0.1)
    with al.start_run(capture_env=False) as run:
        time.sleep(0.75)
    assert not sampler_threads()
    keys = store.metric_keys(run.id)
    for key in ("system/cpu_percent", "system/process_cpu_percent", "system/process_rss_mb", "system/memory_used_mb", "system/memory_percent"):
        assert key in keys
    history = store.metric_history(run.id, "system/process_rss_mb")
    assert len(history) >= 3
    assert [p.step for p in history] == list(range(len(history)))
    assert all(p.value > 1 for p in history)
    assert 0 < store.metric_history(run.id, "system/memory_percent")[-1].value <= 100
    time.sleep(0.3)
    assert len(store.metric_history(run.id, "system/process_rss_mb")) == len(history)  # nothing after the end


def test_off_with_the_run_option(store):
    repro.configure(system_metrics_interval=0.05)
    with al.start_run(capture_env=False, log_system_metrics=False) as run:
        time.sleep(0.2)
    assert not [k for k in store.metric_keys(run.id) if k.startswith("system/")]


def test_a_short_run_gets_one_sample_at_its_end(store):
    with al.start_run(capture_env=False) as run:  # default interval: 10 s
        time.sleep(1.05)
    assert len(store.metric_history(run.id, "system/cpu_percent")) == 1


def test_nested_runs_share_the_parent_sampler(store):
    repro.configure(system_metrics_interval=0.05)
    with al.start_run(capture_env=False) as parent:
        with al.start_run(nested=True, capture_env=False) as child:
            assert sysmetrics.is_sampling(parent.id) and not sysmetrics.is_sampling(child.id)
        time.sleep(0.2)
    assert not [k for k in store.metric_keys(child.id) if k.startswith("system/")]
    assert "system/cpu_percent" in store.metric_keys(parent.id)


def test_interval_setting_and_environment(monkeypatch):
    sysmetrics.set_interval(None)
    assert sysmetrics.interval() == 10.0
    monkeypatch.setenv("AUTOLOG_SYSTEM_METRICS_INTERVAL", "2")
    assert sysmetrics.interval() == 2.0
    sysmetrics.set_interval(0.5)
    assert sysmetrics.interval() == 0.5
    for bad in (0, -1, "5", True):
        with pytest.raises((TypeError, ValueError)):
            sysmetrics.set_interval(bad)


def test_one_sample_reads_this_process_and_the_machine_without_walking_processes(store, monkeypatch):
    # What keeps a sample cheap, checked as an outcome: no subprocess, no walk over the machine's processes.
    import subprocess

    import psutil

    calls = []
    real_popen = subprocess.Popen.__init__
    real_iter = psutil.process_iter

    def popen(self, *args, **kwargs):
        calls.append("subprocess")
        return real_popen(self, *args, **kwargs)

    def process_iter(*args, **kwargs):
        calls.append("process_iter")
        return real_iter(*args, **kwargs)

    with al.start_run(capture_env=False, log_system_metrics=False) as run:
        sampler = sysmetrics.Sampler(run, 3600)
        sampler._setup()
        monkeypatch.setattr(subprocess.Popen, "__init__", popen)
        monkeypatch.setattr(psutil, "process_iter", process_iter)
        samples = [sampler.sample() for _ in range(50)]
    assert calls == []
    assert all(s["system/process_rss_mb"] > 1 and 0 <= s["system/memory_percent"] <= 100 for s in samples)
    assert {"system/cpu_percent", "system/process_cpu_percent", "system/memory_used_mb"} <= set(samples[-1])


def test_hardware_description():
    info = sysmetrics.hardware()
    assert info["cpu"]["logical_cores"] == os.cpu_count()
    assert info["cpu"]["model"] and info["memory_total_bytes"] > 2**20
    assert isinstance(info["gpus"], list)


def test_visible_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert sysmetrics.visible_gpus(2) == [0, 1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert sysmetrics.visible_gpus(2) == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert sysmetrics.visible_gpus(2) == []


def fake_nvml(pids_per_gpu: list[list[int]]) -> types.ModuleType:
    """A stand-in for the ``pynvml`` module of nvidia-ml-py on a machine with no GPU."""
    nv = types.ModuleType("pynvml")
    nv.nvmlInit = nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: len(pids_per_gpu)
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=p) for p in pids_per_gpu[h]]
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=512 * 2**20, total=2048 * 2**20)
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=37)
    nv.nvmlDeviceGetPowerUsage = lambda h: 70500
    nv.nvmlDeviceGetName = lambda h: b"Fake GPU"
    nv.nvmlSystemGetDriverVersion = lambda: "555.1"
    return nv


def test_gpu_metrics_only_for_the_gpus_this_process_uses(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([[12345], [os.getpid()]]))
    repro.configure(system_metrics_interval=0.05)
    with al.start_run(capture_env=False) as run:
        time.sleep(0.25)
    gpu_keys = sorted(k for k in store.metric_keys(run.id) if k.startswith("system/gpu/"))
    assert gpu_keys == ["system/gpu/1/memory_percent", "system/gpu/1/memory_used_mb", "system/gpu/1/power_w", "system/gpu/1/utilization_percent"]
    assert store.metric_history(run.id, "system/gpu/1/memory_percent")[0].value == 25.0
    assert store.metric_history(run.id, "system/gpu/1/power_w")[0].value == 70.5
    info = sysmetrics.hardware()
    assert info["gpu_source"] == "nvidia-ml-py"
    assert info["gpus"][1] == {"index": 1, "name": "Fake GPU", "memory_total_bytes": 2048 * 2**20, "driver": "555.1"}


def test_nvml_is_not_imported_again_where_the_hardware_description_says_it_does_not_answer(tmp_path):
    # Which modules a fresh process loads (an outcome, not a timing): pynvml's import costs ~12 ms.
    import json
    import subprocess

    code = (
        "import json, sys\n"
        "import autolog as al\n"
        "from autolog.capture import installed, system\n"
        "installed._cache['hardware'] = {'gpus': [], 'gpu_source': SOURCE}\n"
        "run = al.start_run(capture_env=False, log_system_metrics=False)\n"
        "sampler = system.Sampler(run, 10.0)\n"
        "sampler._setup()\n"
        "print(json.dumps({'pynvml': 'pynvml' in sys.modules, 'ready': sampler._ready}))\n"
        "sampler.stop(); run.end()\n"
    )
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store")}
    found = {}
    for source in ("None", "'nvidia-ml-py'"):
        done = subprocess.run([sys.executable, "-c", code.replace("SOURCE", source)], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120, check=True)
        found[source] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["None"] == {"pynvml": False, "ready": True}
    try:
        import pynvml  # noqa: F401
    except ImportError:
        return  # not installed: nothing to ask either way
    assert found["'nvidia-ml-py'"] == {"pynvml": True, "ready": True}  # NVML answered there: asked again
