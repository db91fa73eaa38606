"""``python_function`` loader for Lightning models autolog saved (``MLmodel`` names this module).

MLflow has no Lightning flavor and its pytorch flavor needs a whole pickled module, so a
Lightning checkpoint becomes an MLflow Model through this loader: ``mlflow.pyfunc.load_model``
calls ``_load_pyfunc(<folder>/model.ckpt)``, which rebuilds the module with
``load_from_checkpoint`` (the class named in ``meta.json``, importable where it loads) and
predicts with ``module(tensor)`` in eval mode on the CPU.
"""

from __future__ import annotations

import json
import os
from typing import Any


class LightningPyfunc:
    """What ``mlflow.pyfunc`` wraps: ``predict`` runs the module's forward pass without gradients."""

    def __init__(self, module: Any) -> None:
        self.module = module.eval()

    def get_raw_model(self) -> Any:
        """The LightningModule itself."""
        return self.module

    def predict(self, model_input: Any, params: dict | None = None) -> Any:
        """Forward ``model_input`` (array, DataFrame or tensor) and return a NumPy array."""
        import numpy as np
        import torch

        if hasattr(model_input, "to_numpy"):
            model_input = model_input.to_numpy()
        tensor = model_input if isinstance(model_input, torch.Tensor) else torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.no_grad():
            out = self.module(tensor)
        return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def _load_pyfunc(path: str) -> LightningPyfunc:
    from autolog.integrations.lightning import import_class

    folder = os.path.dirname(path) if os.path.isfile(path) else path
    with open(os.path.join(folder, "meta.json"), encoding="utf-8") as fh:
        meta = json.load(fh)
    checkpoint = path if os.path.isfile(path) else os.path.join(folder, meta["file"])
    cls = import_class(meta["class"])
    return LightningPyfunc(cls.load_from_checkpoint(checkpoint, map_location="cpu"))
