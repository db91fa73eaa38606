"""Reproducibility: ``seed_everything()`` and the run-start hook that records the environment.

``seed_everything`` seeds every random number generator a training script draws from and
logs the seed as the param ``seed``. A framework is never imported on the user's behalf
(importing torch costs seconds): the ones already imported are seeded at once, the others
right after their first import, by a one-shot import hook. Importing this module also
registers the hook that starts the environment capture (``envcapture``) and the system
metrics sampler (``sysmetrics``) of every new run.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from autolog import env
from autolog import reporting as safety
from autolog.capture import environment as envcapture
from autolog.capture import system as sysmetrics
from autolog.errors import InvalidName, InvalidType, ParamConflict
from autolog.tracking import api

# random loads in the functions that seed (with _random, _sha512, bisect: ~1 ms): `import autolog`
# must not pay for it.

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

SEED_MAX = 2**32 - 1  # NumPy's legacy global state takes seeds in [0, 2**32)
# Seeded in this order, so that Keras (which re-seeds the others) comes last.
FRAMEWORKS = ("numpy", "torch", "tensorflow", "keras")

_defaults: dict[str, bool] = {"capture_env": True, "log_system_metrics": True}
_pending_tags: dict[str, str] = {}
_lock = threading.Lock()


def configure(
    capture_env: bool | None = None,
    log_system_metrics: bool | None = None,
    system_metrics_interval: float | None = None,
) -> None:
    """Set the process-wide defaults that ``autolog(...)`` options control; None leaves one unchanged.

    Args:
        capture_env: capture git, command line, packages and hardware on every run start.
        log_system_metrics: sample CPU, memory and GPU usage as ``system/...`` metrics.
        system_metrics_interval: seconds between samples (default ``$AUTOLOG_SYSTEM_METRICS_INTERVAL`` or 10).

    Raises:
        TypeError/ValueError: a flag that is not a bool, or an interval that is not a positive number.
    """
    for name, value in (("capture_env", capture_env), ("log_system_metrics", log_system_metrics)):
        if value is not None and not isinstance(value, bool):
            raise InvalidType(f"{name} must be True, False or None, got {type(value).__name__} {value!r}")
    if system_metrics_interval is not None:
        sysmetrics.set_interval(system_metrics_interval)
    if capture_env is not None:
        _defaults["capture_env"] = capture_env
    if log_system_metrics is not None:
        _defaults["log_system_metrics"] = log_system_metrics


# -- seeding ---------------------------------------------------------------------------
def seed_everything(seed: int | None = None, deterministic: bool = False) -> int:
    """Seed Python, NumPy, PyTorch (CPU and every CUDA device), TensorFlow and Keras; return the seed.

    Frameworks already imported are seeded now; installed ones imported later are seeded right
    after their import, so ``seed_everything`` may come before or after the imports. Sets
    ``PYTHONHASHSEED`` for child processes. Without ``seed``, uses ``$AUTOLOG_SEED`` (set by
    ``autolog reproduce``) or draws a fresh seed. The seed is logged as param ``seed`` into the
    active run, or into the next run started when none is active.

    Args:
        seed: an int in [0, 2**32); None draws one.
        deterministic: also turn on deterministic algorithms (``torch.use_deterministic_algorithms``,
            cuDNN flags, ``CUBLAS_WORKSPACE_CONFIG``, ``TF_DETERMINISTIC_OPS``); the tag
            ``seed.deterministic`` lists what was set.

    Raises:
        TypeError/ValueError: ``seed`` is not an int in range.
    """
    seed = _resolve_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import random

    random.seed(seed)
    switched: list[str] = []
    if deterministic:
        switched += _deterministic_env()
    later = []
    for name in FRAMEWORKS:
        module = sys.modules.get(name)
        if module is None:
            later.append(name)
        else:
            switched += _seed_framework(name, module, seed, deterministic)
    _import_seeder.wait_for(later, seed, deterministic)
    if deterministic:
        switched += [f"{name} (on import)" for name in later if name in ("torch", "tensorflow")]
    _log_seed(seed, switched if deterministic else None)
    return seed


def _resolve_seed(seed: Any) -> int:
    if seed is None:
        raw = os.environ.get(env.AUTOLOG_SEED, "").strip()
        if raw:
            try:
                seed = int(raw)
            except ValueError:
                raise InvalidName(f"${env.AUTOLOG_SEED} must be an integer seed, got {raw!r}") from None
        else:
            import random

            return random.SystemRandom().randint(0, SEED_MAX)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidType(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed <= SEED_MAX:
        raise InvalidName(f"seed must be in [0, 2**32), got {seed!r}")
    return seed


def _deterministic_env() -> list[str]:
    # Read when CUDA / TensorFlow initialise, so set them before either does.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    return ["CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS"]


def _seed_framework(name: str, module: Any, seed: int, deterministic: bool) -> list[str]:
    """Seed one imported framework; return the deterministic switches it turned on."""
    switched: list[str] = []
    if name == "numpy":
        module.random.seed(seed)
    elif name == "torch":
        module.manual_seed(seed)
        module.cuda.manual_seed_all(seed)  # lazy: queued until CUDA initialises
        if deterministic:
            module.use_deterministic_algorithms(True)
            module.backends.cudnn.deterministic = True
            module.backends.cudnn.benchmark = False
            switched += ["torch.use_deterministic_algorithms", "torch.backends.cudnn.deterministic", "torch.backends.cudnn.benchmark=False"]
    elif name == "tensorflow":
        module.random.set_seed(seed)
        if deterministic and hasattr(module.config, "experimental"):
            module.config.experimental.enable_op_determinism()
            switched.append("tf.config.experimental.enable_op_determinism")
    elif name == "keras":
        utils = getattr(module, "utils", None)
        if utils is not None and hasattr(utils, "set_random_seed"):
            # Also resets Keras' global SeedGenerator used by layers created without a seed.
            utils.set_random_seed(seed)
    return switched


def _log_seed(seed: int, switched: list[str] | None) -> None:
    tags = {"seed.deterministic": ", ".join(switched) or "none"} if switched is not None else {}
    run = api.active_run()
    try:
        api.pending_param("seed", seed)
    except ParamConflict as exc:
        # Re-seeding inside one run with another seed: the first seed stays the logged one.
        safety.warn_once("seed-conflict", f"autolog: {exc}; the run keeps its first seed")
    if tags:
        if run is not None:
            run.set_tags(tags)
        else:
            with _lock:
                _pending_tags.update(tags)


class _ImportSeeder:
    """Seeds frameworks imported after ``seed_everything``, right after their module runs.

    A meta path finder (duck-typed: ``importlib.abc`` costs 10 ms to import) that answers only
    for the few top-level names it waits for, delegates finding them to the other finders, and
    removes itself from ``sys.meta_path`` once nothing is left to wait for.
    """

    def __init__(self) -> None:
        self.waiting: set[str] = set()
        self.seed = 0
        self.deterministic = False
        self._busy = threading.local()

    def wait_for(self, names: list[str], seed: int, deterministic: bool) -> None:
        self.waiting = set(names)
        self.seed, self.deterministic = seed, deterministic
        if self.waiting and self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        elif not self.waiting:
            self.remove()

    def remove(self) -> None:
        self.waiting = set()
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname not in self.waiting or getattr(self._busy, "on", False):
            return None
        from autolog.patching.hooks import spec_from_other_finders

        self._busy.on = True
        try:
            spec = spec_from_other_finders(self, fullname, path, target)
        finally:
            self._busy.on = False
        if spec is None:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _SeedingLoader(spec.loader, self)  # a Loader by duck typing
        return spec

    def imported(self, module: Any) -> None:
        name = module.__name__
        if name not in self.waiting:
            return
        self.waiting.discard(name)
        if not self.waiting:
            self.remove()
        try:
            if name == "keras":
                # set_random_seed re-seeds random/NumPy/torch: keep the streams the user already drew from.
                states = _rng_states()
                _seed_framework(name, module, self.seed, self.deterministic)
                _restore_rng_states(states)
            else:
                _seed_framework(name, module, self.seed, self.deterministic)
        except Exception as exc:  # a framework's import must never fail on our account
            safety.report("seed_everything", exc)


class _SeedingLoader:
    """Runs the real loader, then seeds the module, then hands the real loader back to it."""

    def __init__(self, loader: Any, seeder: _ImportSeeder) -> None:
        self._loader = loader
        self._seeder = seeder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        # Put the real loader back first: importlib.resources and inspect look at it.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._seeder.imported(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _rng_states() -> list:
    import random

    states: list = [(random.setstate, random.getstate())]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        states.append((numpy.random.set_state, numpy.random.get_state()))
    torch = sys.modules.get("torch")
    if torch is not None:
        states.append((torch.set_rng_state, torch.get_rng_state()))
    return states


def _restore_rng_states(states: list) -> None:
    for setter, state in states:
        setter(state)


_import_seeder = _ImportSeeder()


# -- run start -------------------------------------------------------------------------
def _on_run_start(run: ActiveRun, options: dict) -> None:
    """Run-start hook: pending seed tags, environment capture and system metrics."""
    try:
        with _lock:
            tags = dict(_pending_tags)
            _pending_tags.clear()
        reproduces = os.environ.get(env.AUTOLOG_REPRODUCES)
        if reproduces:
            tags["reproduce.of"] = reproduces
        if tags:
            run.set_tags(tags)
        sample = options.get("log_system_metrics")
        if sample is None:
            # A child run started in this process shares the parent's sampler.
            sample = _defaults["log_system_metrics"] and not sysmetrics.is_sampling(run.parent_run_id)
        if sample:
            sysmetrics.start(run)
        capture = options.get("capture_env")
        # Started last: its thread is busy at once, and Thread.start() of another thread
        # after it would wait for the GIL (up to 5 ms) on the training thread.
        if capture if capture is not None else _defaults["capture_env"]:
            envcapture.start(run)
    except Exception as exc:  # the run goes on without its environment record
        safety.report("environment capture", exc)


def _register() -> None:
    hooks = api.run_start_hooks
    # Replace an earlier registration (importlib.reload) instead of running twice.
    hooks[:] = [h for h in hooks if getattr(h, "__qualname__", None) != "_on_run_start" or h.__module__ != __name__]
    hooks.append(_on_run_start)


_register()
