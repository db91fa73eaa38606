"""``python -m benchmarks lightning``: what recording a Lightning fit costs the training loop.

The job (BENCHMARKS.md): a tiny MLP, 3 epochs of ≈333 batches (≈1,000 optimizer steps),
``self.log`` at every step, no logger, no checkpointing, no progress bar. Each row runs in a
fresh interpreter that alternates plain fits with fits under one logger (``a b``, ``b a``,
...), a fresh Trainer and module per fit, after an untimed warm-up pair; the overhead is the
median over pairs of (logged fit time / plain fit time). Model saving is a row of its own.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from benchmarks.common import (
    JOB_COLUMNS,
    JOB_NOTES,
    BenchError,
    Column,
    Row,
    Table,
    alternate_toggled,
    failed_row,
    installed,
    isolated,
    job_values,
    mode,
    pairs,
    pick,
    timed_job,
    version_of,
)

NAME = "lightning"
DESCRIPTION = "Lightning 3 epochs ≈1,000 steps, self.log every step: plain vs autolog vs mlflow.pytorch.autolog"
ORDER = 60


def _enable_disable(variant: str, folder: str) -> tuple[Any, Any]:
    if variant.startswith("autolog"):
        import autolog

        autolog.set_store(os.path.join(folder, "autolog-runs"))
        log_models = variant == "autolog-models"
        return (lambda: autolog.autolog(only=["lightning"], log_models=log_models), lambda: autolog.autolog(disable=True))
    if variant == "mlflow":
        import mlflow
        import mlflow.pytorch

        mlflow.set_tracking_uri("file:" + os.path.join(folder, "mlruns"))
        return (lambda: mlflow.pytorch.autolog(log_models=False, silent=True), lambda: mlflow.pytorch.autolog(disable=True))
    raise ValueError(f"unknown variant {variant!r}")


def measure(variant: str, pairs: int, batches: int, epochs: int = 3, warmup: int = 1) -> dict[str, Any]:
    """In a child: alternate plain fits with ``variant`` fits; return both lists of fit times (s)."""
    import warnings

    warnings.filterwarnings("ignore")
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)

    class MLP(pl.LightningModule):
        def __init__(self, lr: float = 0.01):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batches * 32, 32, generator=g)
    data = DataLoader(TensorDataset(x, x[:, :4].sum(1, keepdim=True)), batch_size=32)

    def settle() -> None:
        if variant.startswith("autolog"):
            import autolog

            autolog.flush()

    def fit() -> dict[str, float]:
        torch.manual_seed(0)
        trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", devices=1)
        model = MLP()
        return timed_job(lambda: trainer.fit(model, data), settle)

    with tempfile.TemporaryDirectory(prefix=f"bench-lightning-{variant}-") as folder:
        enable, disable = _enable_disable(variant, folder)
        times = alternate_toggled(fit, enable, disable, variant, pairs, warmup)
        points = _points(variant)
    return {"plain": times["plain"], "logged": times[variant], "points": points}


def _points(variant: str) -> int | None:
    if not variant.startswith("autolog"):
        return None
    import autolog

    run = autolog.last_run()
    store = autolog.get_store()
    return sum(len(store.metric_history(run.id, k)) for k in store.metric_keys(run.id) if not k.startswith("system/"))


def run(args: Any) -> list[Table]:
    """Measure each logger's cost on the Lightning job, pairwise against plain fits."""
    batches = pick(args, 60, 333, 333)
    n = pairs(args, 5)
    table = Table(NAME, f"Lightning fit, 3 epochs × {batches} batches (self.log each step)", [*JOB_COLUMNS, Column("points", "points/fit")])
    if not installed("lightning"):
        table.rows.append(Row("autolog", {}, "lightning not installed (pip install 'autolog[lightning]')"))
        return [table]
    rows = [("autolog", "autolog", "autolog(log_models=False): every step's loss + lr, params")]
    if mode(args) != "quick":
        rows.append(("autolog + model", "autolog-models", "log_models=True: adds saving the weights at fit end (one-time)"))
        if installed("mlflow"):
            rows.append(("mlflow.pytorch.autolog", "mlflow", f"mlflow {version_of('mlflow')}, log_models=False, file store"))
        else:
            table.rows.append(Row("mlflow.pytorch.autolog", {}, "not installed (pip install 'autolog[bench]')"))
    for label, variant, note in rows:
        try:
            result = isolated("benchmarks.lightning:measure", timeout=1800, variant=variant, pairs=n, batches=batches)
        except BenchError as exc:
            table.rows.append(failed_row(label, exc))
            continue
        table.rows.append(Row(f"{label}: plain", job_values(result["plain"], None), "the plain fits alternating with this row's"))
        values = job_values(result["logged"], result["plain"])
        values["points"] = result["points"]
        if variant == "autolog" and values.get("thread_cpu_x") is not None:
            note += "; target ≤ 2 % thread CPU " + ("met" if values["thread_cpu_x"] <= 1.02 else "NOT met")
        table.rows.append(Row(label, values, note))
    table.notes += [
        f"{n} alternating pair(s) per row after a warm-up pair, each row in a fresh interpreter (lightning {version_of('lightning')}, "
        f"torch {version_of('torch')}, 1 torch thread). Fit time includes autolog's run start and end.",
        *JOB_NOTES,
    ]
    return [table]
