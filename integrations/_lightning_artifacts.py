"""Artifacts of a Lightning fit: ModelCheckpoint files, our own checkpoints, TensorBoard files, the model.

The user's ModelCheckpoint files are uploaded once each, when the fit ends (or fails):
the files the callback still keeps then, under their own names and as ``best.ckpt``/
``last.ckpt``. TensorBoard files are uploaded when they changed since the last upload
(path, mtime, size), at each epoch boundary and at the end. Uploads run on the training
thread: a checkpoint may be rewritten (``last.ckpt``) or deleted (``save_top_k``) by the
next save, so reading it later in the background could store a torn file. The store is
content-addressed, so the same bytes under two names are stored once.
"""

from __future__ import annotations

import os
from typing import Any

from autolog.reporting import warn_once

_MAX_WORDS = ("acc", "auc", "f1", "precision", "recall", "score", "iou", "map", "dice")


class ArtifactLogic:
    """Checkpoint, TensorBoard and model uploads of AutologCallback (uses ``self._fit`` and ``self._opt``)."""

    def _upload(self, src: str, path: str) -> bool:
        st = os.stat(src)
        key = (src, st.st_mtime_ns, st.st_size)
        if self._uploaded.get(path) == key:
            return False
        run = self._fit.run
        run.store.log_artifact(run.id, src, path)
        self._uploaded[path] = key
        return True

    def _checkpoint_policy(self, trainer: Any) -> str | None:
        policy = self._opt("checkpoint")
        if policy not in ("best", "last", "all"):
            return None
        # Our policy replaces only Lightning's default ModelCheckpoint (no monitor, no save_last, no dirpath).
        for cb in trainer.checkpoint_callbacks:
            if getattr(cb, "monitor", None) is not None or getattr(cb, "save_last", None) or getattr(cb, "dirpath", None):
                return None
        if trainer.world_size > 1:
            warn_once("lightning:own-checkpoint", "autolog: checkpoint= is not applied under distributed training; add a ModelCheckpoint")
            return None
        return policy

    def _sync_checkpoints(self, trainer: Any) -> None:
        """Store the files the user's ModelCheckpoint callbacks kept, once each, when the fit ends.

        Under their own names (``checkpoints/<file>``, ``checkpoints/<i>/<file>`` for the i-th
        callback) plus the aliases ``best.ckpt``/``last.ckpt``. ``checkpoint=False`` stores none,
        ``"best"``/``"last"`` only that one, None/``"all"`` every file the callback still keeps.
        """
        policy = self._opt("checkpoint")
        if self._own_policy or policy is False:
            return
        for i, cb in enumerate(trainer.checkpoint_callbacks):
            folder = "checkpoints" if i == 0 else f"checkpoints/{i}"
            best, last = getattr(cb, "best_model_path", "") or "", getattr(cb, "last_model_path", "") or ""
            kept = [p for p in getattr(cb, "best_k_models", {}) or {} if isinstance(p, str)]
            if policy == "last" and not last and kept:
                last = max((p for p in kept if os.path.isfile(p)), key=os.path.getmtime, default="")
            wanted = {"best": [best], "last": [last]}.get(policy, [best, last, *kept])
            for src in dict.fromkeys(p for p in wanted if p and os.path.isfile(p)):
                self._upload(src, f"{folder}/{_name_in(src, getattr(cb, 'dirpath', None))}")
            if best in wanted and best and os.path.isfile(best) and self._upload(best, f"{folder}/best.ckpt"):
                self._fit.run.set_tag(f"{folder.replace('/', '.')}.best_model_path", best)
                score = getattr(cb, "best_model_score", None)
                if score is not None:
                    self._fit.run.log_metric(f"{folder.replace('/', '.')}.best_model_score", float(score), step=trainer.current_epoch)
            if last in wanted and last and os.path.isfile(last):
                self._upload(last, f"{folder}/last.ckpt")

    def _own_checkpoint(self, trainer: Any) -> None:
        epoch = trainer.current_epoch
        names = [f"epoch={epoch}.ckpt", "last.ckpt"] if self._own_policy == "all" else ["last.ckpt"]
        if self._own_policy == "best":
            monitor, value = self._monitored(trainer)
            if value is None:
                return
            better = self._best is None or (value > self._best if any(w in monitor.lower() for w in _MAX_WORDS) else value < self._best)
            if not better:
                return
            self._best = value
            names = ["best.ckpt"]
            self._fit.run.set_tags({"checkpoint.monitor": monitor, "checkpoint.best_epoch": epoch})
            self._fit.run.log_metric("checkpoint.best_model_score", value, step=epoch)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="autolog-ckpt-") as tmp:
            local = os.path.join(tmp, "model.ckpt")
            trainer.save_checkpoint(local)
            for name in names:
                self._fit.run.store.log_artifact(self._fit.run.id, local, f"checkpoints/{name}")

    def _monitored(self, trainer: Any) -> tuple[str, float | None]:
        metrics = trainer.callback_metrics
        given = self._opt("checkpoint_monitor")
        for name in ([given] if given else ["val_loss", "val/loss", "loss_epoch", "loss", "train_loss"]):
            if name in metrics:
                return name, float(metrics[name])
        warn_once("lightning:monitor", f"autolog: checkpoint='best' found no {given or 'val_loss/loss'} metric; no checkpoint saved")
        return given or "val_loss", None

    def _sync_tensorboard(self, trainer: Any) -> None:
        if not self._log_tensorboard:
            return
        loggers = [lg for lg in trainer.loggers if any(c.__name__ == "TensorBoardLogger" for c in type(lg).__mro__)]
        for i, logger in enumerate(loggers):
            writer = getattr(logger, "_experiment", None)
            if writer is not None and hasattr(writer, "flush"):
                writer.flush()
            root = logger.log_dir
            if not root or not os.path.isdir(root):
                continue
            base = "tensorboard" if i == 0 else f"tensorboard/{i}"
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d != "checkpoints"]
                for name in files:
                    if not name.endswith(".ckpt"):
                        full = os.path.join(folder, name)
                        rel = os.path.relpath(full, root).replace(os.sep, "/")
                        self._upload(full, f"{base}/{rel}")

    def _save_model(self, trainer: Any, pl_module: Any) -> None:
        from autolog.integrations.lightning import save_model

        if trainer.world_size > 1 and "DDP" not in type(trainer.strategy).__name__:
            warn_once("lightning:model", "autolog: the model is not saved under sharded strategies; use a ModelCheckpoint")
            return
        save_model(self._fit.run, pl_module, trainer, package=self.package)


def _name_in(path: str, folder: Any) -> str:
    """``path`` relative to the callback's ``dirpath`` (sub-folders kept), else its file name."""
    if folder:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(os.fspath(folder)))
        if not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    return os.path.basename(path)
