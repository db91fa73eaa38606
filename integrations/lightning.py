"""PyTorch Lightning integration: ``AutologCallback`` and ``Trainer.fit``/``validate``/``test``/``predict`` patching.

Works with both import names, ``lightning`` (``lightning.pytorch``) and ``pytorch_lightning``.
Their ``Callback`` base classes differ and a Trainer of one package rejects callbacks of the
other, so ``AutologCallback`` is built lazily, once per package: ``from
autolog.integrations.lightning import AutologCallback`` gives the class of the package already
imported (``lightning`` first), and ``callback_class("pytorch_lightning")`` a given one.
``autolog()`` adds the right one to every ``Trainer.fit``/``validate``/``test``/``predict`` whose
trainer has none, and takes it out again when the call returns (``predict`` records nothing; being
patched keeps the TensorBoard capture out of what the Trainer's logger writes). Importing this
module imports neither package.

What one fit records (rank 0 only; see ``_lightning_callback`` and ``_lightning_params``):

- params: Trainer settings (``max_epochs``, ``max_steps``, ``accumulate_grad_batches``,
  ``gradient_clip_val``, ``precision``, ``devices``, ``strategy``...), the module's and datamodule's
  ``save_hyperparameters`` values (not LightningCLI's ``_instantiator``), every optimizer (``optimizer.<i>.class``, ``optimizer.<i>.lr``,
  other param groups as ``optimizer.<i>.group.<g>.lr``), every LR scheduler
  (``lr_scheduler.<j>.class``, ``.interval``, its settings) and ``model.*_params`` counts;
- metrics: what the module logs with ``self.log`` — per-step values on the step axis (step =
  the batch counter of Lightning's own loggers), epoch values (train and validation) with
  step = epoch; ``lr`` (``lr.pg<g>``, ``lr.opt<i>``) per logged step; validate/test results;
  the EarlyStopping outcome (``early_stopping.stopped``, ``.stopped_epoch``, ``.best_score``);
  the direction of every EarlyStopping/ModelCheckpoint ``monitor`` (its ``mode``) as the metric goal;
- artifacts: when the fit ends, every file the user's ModelCheckpoint keeps, under its own name
  (``checkpoints/epoch=3-val_loss=0.12.ckpt``) and as ``checkpoints/best.ckpt``/``last.ckpt``,
  once each (``checkpoint=False``: none; ``"best"``/``"last"``: only that one); with
  ``checkpoint="best"|"last"|"all"`` and no configured ModelCheckpoint, our own saves; TensorBoardLogger event files under ``tensorboard/`` (changed files, each epoch and at
  the end); with ``log_models`` the final weights as ``model/model.ckpt`` (``load_model``);
- the run opens when training starts: a fit that trains nothing (``max_epochs`` already reached)
  creates no run;
- a fit resumed with ``ckpt_path=`` continues the step axis in a new run tagged
  ``autolog.resumed_from`` (and ``autolog.resumed_from_run`` when that file is a run's artifact).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

from autolog.integrations._lightning_callback import NAME, CallbackLogic
from autolog.patching.engine import REGISTRY, Call, safe_wrapper
from autolog.patching.models import model_file, resolve_store, save_model_files, versions_of
from autolog.patching.plugins import Integration, integration_autolog, when_imported

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

PACKAGES = {"lightning": "lightning.pytorch", "pytorch_lightning": "pytorch_lightning"}
DISTRIBUTIONS = {"lightning": "lightning", "pytorch_lightning": "pytorch-lightning"}
PATCHED_METHODS = ("fit", "validate", "test", "predict")
_CLASSES: dict[str, type] = {}


def callback_class(package: str | None = None) -> type:
    """The ``AutologCallback`` class subclassing ``package``'s ``Callback`` (default: the imported one).

    Raises:
        ImportError: neither Lightning package is installed (names the pip extra).
    """
    package = package or _default_package()
    cls = _CLASSES.get(package)
    if cls is None:
        base = importlib.import_module(PACKAGES[package]).Callback
        cls = type("AutologCallback", (CallbackLogic, base), {
            "__module__": __name__,
            "__qualname__": "AutologCallback",
            "__doc__": _CALLBACK_DOC,
            "package": package,
        })
        _CLASSES[package] = cls
    return cls


_CALLBACK_DOC = """Record a Lightning fit (and validate/test) into an autolog run.

    ``Trainer(callbacks=[AutologCallback()])``. Options left None follow ``autolog(...)``'s.

    Args:
        log_every_n_steps: record step values every n optimizer steps (the last of each epoch always).
        log_models: save the final weights as ``model/model.ckpt`` at the end of the fit.
        checkpoint: "best", "last" or "all": save checkpoints ourselves when no ModelCheckpoint is configured.
        checkpoint_monitor: the metric "best" follows (default val_loss, else loss).
        log_tensorboard: upload a TensorBoardLogger's event files under ``tensorboard/``.
    """


def _default_package() -> str:
    for package, module in PACKAGES.items():
        if module in sys.modules:
            return package
    for package in PACKAGES:
        if importlib.util.find_spec(package) is not None:
            return package
    raise ImportError(f"neither lightning nor pytorch_lightning is installed: {INTEGRATION.install_hint}")


def package_of(obj: Any) -> str:
    """``"lightning"`` or ``"pytorch_lightning"``: the package a Trainer (or module) comes from."""
    return "pytorch_lightning" if type(obj).__module__.split(".")[0] == "pytorch_lightning" else "lightning"


def rebuild_callback(package: str, state: dict) -> Any:
    """Unpickle an ``AutologCallback`` as the class of its own package (``ddp_spawn`` pickles callbacks)."""
    # Pickling by reference would resolve "AutologCallback" to the default package's class.
    cls = callback_class(package)
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def __getattr__(name: str) -> Any:
    if name == "AutologCallback":
        return callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- patching ---------------------------------------------------------------------------
def _before(call: Call) -> bool:
    # Returning True also marks the call "inside autolog": the TensorBoard capture stays out of
    # what a Trainer's own logger writes (predict's hp_metric=-1 would otherwise open a stray run).
    trainer = call.instance
    if trainer is None:
        return False
    if any(isinstance(cb, CallbackLogic) for cb in trainer.callbacks):
        call.state["callback"] = None  # the user's own AutologCallback records this call
        return True
    callback = callback_class(package_of(trainer))()
    # A new list: the user's list object is never changed.
    trainer.callbacks = [*trainer.callbacks, callback]
    call.state["callback"] = callback
    return True


def _detach(call: Call, status: str) -> None:
    trainer, callback = call.instance, call.state["callback"]
    if callback is None:
        return
    try:
        trainer.callbacks = [cb for cb in trainer.callbacks if cb is not callback]
    finally:
        callback.end_runs(status)  # normally done in on_fit_end / on_exception already


def _after(call: Call, result: Any) -> None:
    _detach(call, "FINISHED")


def _on_error(call: Call, exc: BaseException) -> None:
    _detach(call, "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED")


_WRAPPER = safe_wrapper(NAME, _before, _after, _on_error, enabled=lambda: INTEGRATION.enabled)


def _patch_package(package: Any) -> None:
    for method in PATCHED_METHODS:
        REGISTRY.apply(NAME, package.Trainer, method, _WRAPPER)


def _patch(module: Any) -> None:
    if module.__name__ == "pytorch_lightning":
        _patch_package(module)
    else:
        when_imported(INTEGRATION, "lightning.pytorch", _patch_package)


# -- models -----------------------------------------------------------------------------
def save_model(run: ActiveRun, pl_module: Any, trainer: Any = None, package: str | None = None, artifact_dir: str = "model") -> str:
    """Save the module's weights and hparams as a Lightning checkpoint ``<artifact_dir>/model.ckpt``.

    A weights-only checkpoint built from ``state_dict()`` (no optimizer state, no user hooks
    called, no collective calls), loadable with ``Module.load_from_checkpoint`` or ``load_model``.
    Returns the artifact path of the file.
    """
    import torch

    package = package or package_of(pl_module)
    checkpoint: dict[str, Any] = {
        "state_dict": pl_module.state_dict(),
        "pytorch-lightning_version": importlib.import_module(PACKAGES[package]).__version__,
        "epoch": getattr(trainer, "current_epoch", 0),
        "global_step": getattr(trainer, "global_step", 0),
    }
    hparams = getattr(pl_module, "_hparams", None)
    if hparams:
        checkpoint["hyper_parameters"] = dict(hparams)
        if getattr(pl_module, "_hparams_name", None):
            checkpoint["hparams_name"] = pl_module._hparams_name

    def write(folder: str) -> str:
        torch.save(checkpoint, os.path.join(folder, "model.ckpt"))
        return "model.ckpt"

    cls = type(pl_module)
    return save_model_files(run, write, "lightning", artifact_dir, versions_of("torch", DISTRIBUTIONS[package]),
                            {"class": f"{cls.__module__}.{cls.__qualname__}", "package": package, "format": "lightning-checkpoint"})


def load_model(run_id: str, module_class: type | None = None, store: Any = None, artifact_dir: str = "model", **kwargs: Any) -> Any:
    """Load the module a run saved (``model/``) with ``load_from_checkpoint`` on the CPU.

    ``module_class`` defaults to the saved class, imported by name (a class defined in a
    script's ``__main__`` must be passed). Extra keyword arguments go to ``load_from_checkpoint``.
    """
    store = resolve_store(store)
    with model_file(store, run_id, artifact_dir, flavor="lightning") as (meta, path):
        cls = module_class or import_class(meta["class"])
        return cls.load_from_checkpoint(path, map_location="cpu", **kwargs)


def load_checkpoint(run_id: str, module_class: type, path: str = "checkpoints/best.ckpt", store: Any = None, **kwargs: Any) -> Any:
    """Load a checkpoint artifact of a run (default the best one) into ``module_class``."""
    store = resolve_store(store)
    return module_class.load_from_checkpoint(store.artifact_file(run_id, path), map_location="cpu", **kwargs)


def import_class(qualified: str) -> type:
    """The class named ``module.Qualified.Name`` (a LightningModule recorded with a checkpoint), imported."""
    module_name, _, qualname = qualified.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


INTEGRATION = Integration(
    name=NAME,
    module="lightning",
    distribution="lightning",
    supported=">=2.1,<2.7",
    extra="lightning",
    patch=_patch,
    also_modules=("pytorch_lightning",),
)
autolog = integration_autolog(NAME)
