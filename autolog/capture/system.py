"""System metrics and the hardware description of a run.

A daemon thread per run samples CPU, memory and — with ``nvidia-ml-py`` installed — the GPUs
this process uses, and logs them as ``system/...`` metrics every ``interval()`` seconds
(10 by default). One sample costs well under a millisecond of the sampler's own time, so the
training loop does not notice it. The sampler stops in the run's end hook, taking a last
sample so that short runs get one too.

Metrics: ``system/cpu_percent`` (whole machine), ``system/process_cpu_percent`` (this
process, all threads; may pass 100), ``system/process_rss_mb``, ``system/memory_used_mb``,
``system/memory_percent``, and per GPU ``system/gpu/<index>/utilization_percent``,
``.../memory_used_mb``, ``.../memory_percent``, ``.../power_w``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from autolog import env, process
from autolog.errors import InvalidName, InvalidType

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

DEFAULT_INTERVAL = 10.0
INTERVAL: float | None = None  # module-level setting; None: $AUTOLOG_SYSTEM_METRICS_INTERVAL or 10 s
MB = 2**20

_samplers: dict[str, Sampler] = {}


def set_interval(seconds: float | None) -> None:
    """Set the seconds between samples for runs started from now on (None: back to the default).

    Raises:
        TypeError/ValueError: ``seconds`` is not a positive number.
    """
    global INTERVAL
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise InvalidType(f"system_metrics_interval must be a number of seconds, got {type(seconds).__name__} {seconds!r}")
        if not seconds > 0:
            raise InvalidName(f"system_metrics_interval must be positive, got {seconds!r}")
        seconds = float(seconds)
    INTERVAL = seconds


def interval() -> float:
    """Seconds between samples: the module setting, else ``$AUTOLOG_SYSTEM_METRICS_INTERVAL``, else 10."""
    if INTERVAL is not None:
        return INTERVAL
    value = env.number(env.AUTOLOG_SYSTEM_METRICS_INTERVAL, DEFAULT_INTERVAL)
    return value if value > 0 else DEFAULT_INTERVAL


def is_sampling(run_id: str | None) -> bool:
    """Whether run ``run_id`` has a sampler in this process."""
    return run_id is not None and run_id in _samplers


def start(run: ActiveRun, every: float | None = None) -> Sampler:
    """Start sampling into ``run``; the sampler stops in the run's end hook."""
    sampler = Sampler(run, every if every is not None else interval())
    run.add_end_hook(sampler.stop)
    sampler.start()
    return sampler


class Sampler:
    """Logs one sample of ``system/...`` metrics into a run every ``every`` seconds."""

    def __init__(self, run: ActiveRun, every: float) -> None:
        self.run = run
        self.every = every
        self.step = 0
        self.error: BaseException | None = None
        self._ready = False
        self._gpus: Nvml | None = None
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._pid = os.getpid()  # a forked child has no sampler thread and never stops this one
        self._thread = threading.Thread(target=self._loop, name=f"autolog-sysmetrics-{run.id[:8]}", daemon=True)

    def start(self) -> None:
        _samplers[self.run.id] = self
        self._thread.start()

    def _setup(self) -> None:
        # On the sampler's thread: importing psutil and opening NVML stay off run start.
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        # cpu_percent measures since its previous call: prime both so the first sample is real.
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)
        self._gpus = Nvml.open() if _nvml_may_answer() else None
        self._ready = True

    def _loop(self) -> None:
        # A run over within a second (a small fit) never pays for psutil's set-up.
        if self._stop.wait(min(self.every, 1.0)):
            return
        try:
            self._setup()  # psutil is a hard dependency: a failure here is a real error
        except Exception as exc:  # raised at the run's end in strict mode, else one warning
            self.error = exc
            return
        while not self._stop.wait(self.every):
            self.log_sample()

    def sample(self) -> dict[str, float]:
        """One reading of every metric, keyed by metric name."""
        psutil = self._psutil
        memory = psutil.virtual_memory()
        values = {
            "system/cpu_percent": psutil.cpu_percent(None),
            "system/process_cpu_percent": self._process.cpu_percent(None),
            "system/process_rss_mb": self._process.memory_info().rss / MB,
            "system/memory_used_mb": (memory.total - memory.available) / MB,
            "system/memory_percent": memory.percent,
        }
        if self._gpus is not None:
            values.update(self._gpus.sample(self._process))
        return values

    def log_sample(self) -> None:
        """Take a sample and log it at the next step; errors stop sampling, never the run."""
        with self._lock:
            if self.error is not None or not self._ready:
                return
            try:
                values = self.sample()
                for key, value in values.items():
                    self.run.log_metric(key, float(value), self.step)
            except Exception as exc:  # raised at the run's end in strict mode, else one warning
                self.error = exc
                self._stop.set()
                return
            self.step += 1
            self._last = time.monotonic()

    def stop(self, run: ActiveRun | None = None, status: str | None = None) -> None:
        """End hook: stop the thread, take a last sample when the previous one is over a second old."""
        if self._pid != os.getpid():
            return
        self._stop.set()
        # A sampler still importing psutil has nothing to record yet: a short fit must not
        # wait for that; the thread sees the stop flag and ends by itself.
        if self._ready and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if time.monotonic() - self._last >= 1.0:
            self.log_sample()
        if self._gpus is not None:
            self._gpus.close()
        _samplers.pop(self.run.id, None)
        if self.error is not None:
            from autolog.reporting import report

            report("system metrics", self.error)


def _nvml_may_answer() -> bool:
    # The environment's hardware description (read once per environment, and already read in
    # this process by the run's capture) says whether NVML answered there. When it did not,
    # importing pynvml to fail again costs ~12 ms CPU per process on every GPU-less machine.
    from autolog.capture import installed

    if "pynvml" in sys.modules:
        return True  # already imported: asking costs nothing
    info = installed.peek("hardware")
    if not isinstance(info, dict) or info.get("gpu_error"):
        return True  # not read yet, or a failure that may have been passing: ask NVML
    return info.get("gpu_source") == "nvidia-ml-py"


class Nvml:
    """GPU readings through ``nvidia-ml-py`` (module ``pynvml``), only for GPUs this process uses."""

    def __init__(self, nvml: Any) -> None:
        self.nv = nvml
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]

    @classmethod
    def open(cls) -> Nvml | None:
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            return cls(pynvml)
        except Exception:  # no driver, no GPU: simply no GPU metrics
            return None

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except Exception:
            pass

    def used(self, process: Any) -> list[int]:
        """Indices of the GPUs running this process (or its children)."""
        pids = {process.pid} | {c.pid for c in _children(process)}
        used = []
        for index, handle in enumerate(self.handles):
            try:
                procs = self.nv.nvmlDeviceGetComputeRunningProcesses(handle)
            except Exception:  # not supported on this board: the fallback below decides
                continue
            if any(p.pid in pids for p in procs):
                used.append(index)
        if not used and _gpu_framework_active():
            # In a container NVML reports host pids; fall back to the devices CUDA lets us see.
            used = visible_gpus(len(self.handles))
        return used

    def sample(self, process: Any) -> dict[str, float]:
        nv, out = self.nv, {}
        for index in self.used(process):
            handle = self.handles[index]
            prefix = f"system/gpu/{index}/"
            memory = nv.nvmlDeviceGetMemoryInfo(handle)
            out[prefix + "memory_used_mb"] = memory.used / MB
            out[prefix + "memory_percent"] = 100.0 * memory.used / memory.total if memory.total else 0.0
            try:
                out[prefix + "utilization_percent"] = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
                out[prefix + "power_w"] = nv.nvmlDeviceGetPowerUsage(handle) / 1000.0
            except Exception:  # not supported on every board
                pass
        return out


def _children(process: Any) -> list:
    try:
        return process.children(recursive=True)
    except Exception:
        return []


def _gpu_framework_active() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


def visible_gpus(count: int) -> list[int]:
    """Indices named by ``CUDA_VISIBLE_DEVICES`` (all ``count`` devices when it is unset)."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit():
            break  # CUDA stops at the first invalid entry; UUIDs are not mapped here
        if int(part) < count:
            out.append(int(part))
    return out


def _reset_in_child() -> None:
    # The samplers' threads are the parent's: a child started from a sampled run samples nothing.
    _samplers.clear()


process.on_fork_child("system metrics", _reset_in_child)


# -- hardware --------------------------------------------------------------------------
def hardware() -> dict[str, Any]:
    """CPU model and cores, RAM, and GPUs (name, memory, driver) as a JSON-ready dict."""
    import platform

    import psutil

    info: dict[str, Any] = {
        "cpu": {
            "model": _cpu_model(),
            "architecture": platform.machine(),
            "logical_cores": os.cpu_count(),
            "physical_cores": psutil.cpu_count(logical=False),
        },
        "memory_total_bytes": psutil.virtual_memory().total,
        "gpus": [],
        "gpu_source": None,
    }
    try:
        info["gpus"], info["gpu_source"] = _gpu_inventory()
    except Exception as exc:  # a broken driver is worth a failure tag, not a failed capture
        info["gpu_error"] = f"{type(exc).__name__}: {exc}"
    return info


def _cpu_model() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        from autolog.capture.vcs import CaptureError, run_command

        try:
            return run_command(["sysctl", "-n", "machdep.cpu.brand_string"], "/", timeout=2.0).decode().strip()
        except CaptureError:
            pass
    return platform.processor() or "unknown"


def _gpu_inventory() -> tuple[list[dict[str, Any]], str | None]:
    import shutil

    gpus = Nvml.open()
    if gpus is not None:
        try:
            nv = gpus.nv
            driver = nv.nvmlSystemGetDriverVersion()
            out = []
            for index, handle in enumerate(gpus.handles):
                name = nv.nvmlDeviceGetName(handle)
                out.append({
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_total_bytes": nv.nvmlDeviceGetMemoryInfo(handle).total,
                    "driver": driver.decode() if isinstance(driver, bytes) else driver,
                })
            return out, "nvidia-ml-py"
        finally:
            gpus.close()
    if _gpu_framework_active():
        # Only when CUDA is already initialised: initialising it here would cost the user memory.
        cuda = sys.modules["torch"].cuda
        props = [cuda.get_device_properties(i) for i in range(cuda.device_count())]
        return [{"index": i, "name": p.name, "memory_total_bytes": p.total_memory, "driver": None} for i, p in enumerate(props)], "torch.cuda"
    if shutil.which("nvidia-smi"):
        from autolog.capture.vcs import run_command

        query = ["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"]
        out = []
        for line in run_command(query, "/", timeout=5.0).decode().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 4 and parts[0].isdigit():
                memory = int(parts[2]) * MB if parts[2].isdigit() else None
                out.append({"index": int(parts[0]), "name": parts[1], "memory_total_bytes": memory, "driver": parts[3]})
        return out, "nvidia-smi"
    return [], None
