"""The contract every integration keeps: enable → fit → logged; disable → originals restored.

Each case names the integration, a tiny real fit, and an attribute whose original
object must come back (``is``) after ``autolog(disable=True)``. Cases skip cleanly
when their framework is not installed.
"""

from __future__ import annotations

import importlib
import operator

import pytest

import autolog as al


def _sklearn_fit():
    from sklearn.linear_model import LogisticRegression

    LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _xgboost_fit():
    import numpy as np
    import xgboost

    X = np.arange(40, dtype=float).reshape(20, 2)
    xgboost.train({"objective": "reg:squarederror"}, xgboost.DMatrix(X, label=X[:, 0]), 3)


def _lightgbm_fit():
    import lightgbm
    import numpy as np

    X = np.arange(400, dtype=float).reshape(200, 2)
    lightgbm.train({"objective": "regression", "verbose": -1}, lightgbm.Dataset(X, label=X[:, 0]), 3)


# name -> (framework module, fit function, "module:attribute.path" that gets patched)
def _lightning_fit():
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x = torch.arange(16, dtype=torch.float32).reshape(8, 2)
    pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(Tiny(), DataLoader(TensorDataset(x, x[:, :1]), batch_size=4))


def _tensorboard_fit():
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter("tb-contract") as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)


def _keras_fit():
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.arange(16, dtype="float32").reshape(8, 2)
    model.fit(x, x[:, :1], epochs=1, batch_size=4, verbose=0)


CASES = {
    "sklearn": ("sklearn", _sklearn_fit, "sklearn.linear_model._logistic:LogisticRegression.fit"),
    "xgboost": ("xgboost", _xgboost_fit, "xgboost:train"),
    "lightgbm": ("lightgbm", _lightgbm_fit, "lightgbm:train"),
    "lightning": ("lightning", _lightning_fit, "lightning.pytorch:Trainer.fit"),
    "keras": ("keras", _keras_fit, "keras:Model.fit"),
    "tensorboard": ("tensorboard", _tensorboard_fit, "torch.utils.tensorboard.writer:SummaryWriter.add_scalar"),
}


def _resolve(spec: str):
    module_name, _, path = spec.partition(":")
    parent_path, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    parent = operator.attrgetter(parent_path)(module) if parent_path else module
    return parent, attr


@pytest.mark.parametrize("name", sorted(CASES))
def test_enable_fit_logged_disable_restored(name, store):
    framework, fit, spec = CASES[name]
    pytest.importorskip(framework, reason=f"pip install 'autolog[{name}]'")
    parent, attr = _resolve(spec)
    original = parent.__dict__.get(attr, getattr(parent, attr))
    enabled = al.autolog(only=[name], log_models=False)
    assert name in enabled
    assert parent.__dict__.get(attr, getattr(parent, attr)) is not original
    fit()
    runs = store.search_runs()
    assert len(runs) >= 1
    assert runs[0].tags.get("autolog.integration") == name
    al.autolog(only=[name], disable=True)
    assert parent.__dict__.get(attr, getattr(parent, attr)) is original
