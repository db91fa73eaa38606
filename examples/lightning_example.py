"""PyTorch Lightning with autolog(): two fits of a small MLP (two learning rates), then a test.

Each fit is a run with the Trainer settings, the module's hyper-parameters, the optimizer
and LR scheduler params, per-step ``loss`` and ``lr``, per-epoch ``val_loss``/``val_mae``,
the best and last checkpoints of a ModelCheckpoint and the test results, in the default
store (./autolog-runs or $AUTOLOG_URI). Compare them with ``autolog compare``.

Run: python examples/lightning_example.py
"""

from __future__ import annotations

import tempfile

import autolog

autolog.autolog(log_models=False)

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402


class Regressor(pl.LightningModule):
    """y = sin(x0) + x1² from 8 noisy features."""

    def __init__(self, lr: float = 0.01, hidden: int = 32):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        pred = self.net(x)
        self.log_dict({"val_loss": torch.nn.functional.mse_loss(pred, y), "val_mae": (pred - y).abs().mean()})

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)}


def data(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (torch.sin(x[:, 0]) + x[:, 1] ** 2 + 0.1 * torch.randn(n, generator=g)).unsqueeze(1)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=seed == 0)


def main() -> None:
    autolog.set_experiment("lightning-demo")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        for lr in (0.01, 0.003):
            checkpoint = ModelCheckpoint(dirpath=folder + f"/lr{lr}", monitor="val_loss", save_last=True)
            trainer = pl.Trainer(max_epochs=5, callbacks=[checkpoint], logger=False, enable_progress_bar=False,
                                 enable_model_summary=False, default_root_dir=folder)
            model = Regressor(lr=lr)
            trainer.fit(model, data(512, 0), data(256, 1))
            result = trainer.test(model, data(256, 2), verbose=False)[0]
            run = autolog.last_run()
            print(f"lr={lr}: test_loss {result['test_loss']:.4f}, best val_loss {float(checkpoint.best_model_score):.4f}, "
                  f"run {run.id[:8]} ({run.name})")


if __name__ == "__main__":
    main()
