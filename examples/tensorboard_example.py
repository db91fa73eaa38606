"""A plain PyTorch loop that logs with TensorBoard's ``SummaryWriter``, under autolog().

Nothing autolog-specific is in the loop: each writer's scalars (``add_scalar``,
``add_scalars``) and ``add_text`` are mirrored into one run per writer, named after its
log_dir, and when the writer closes its event files are stored with the run under
``tensorboard/<log_dir name>/`` in the default store (./autolog-runs or $AUTOLOG_URI).
Each ``add_hparams`` call is a trial, as in TensorBoard's HParams tab: a child run
(``lr_0.05-hparams-...``) holding that call's params and metrics. Two learning rates give
two runs (and two trials) that ``autolog compare`` lines up.

Run: python examples/tensorboard_example.py
"""

from __future__ import annotations

import os
import tempfile

import autolog

autolog.autolog()

import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

LOG_ROOT = os.path.join(tempfile.gettempdir(), "autolog-tensorboard-example")


def data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy linear target, y = x·w + 0.1·noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    y = x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.1 * torch.randn(n, 1, generator=gen)
    return x, y


def train(lr: float, epochs: int = 40) -> float:
    """Train a small MLP with full-batch SGD and log every epoch to a SummaryWriter; return the final val loss."""
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a tiny model: threads only add overhead
    x, y = data()
    x_train, y_train, x_val, y_val = x[:192], y[:192], x[192:], y[192:]
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss()
    with SummaryWriter(os.path.join(LOG_ROOT, f"lr_{lr}")) as writer:
        writer.add_text("setup", f"MLP 8-16-1, SGD lr={lr}, {epochs} epochs")
        for epoch in range(epochs):
            model.train()
            opt.zero_grad()
            loss = loss_fn(model(x_train), y_train)  # full batch: the data set is tiny
            loss.backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                val_loss = loss_fn(model(x_val), y_val).item()
            writer.add_scalar("grad_norm", sum(p.grad.norm() ** 2 for p in model.parameters()) ** 0.5, epoch)
            writer.add_scalars("loss", {"train": loss.item(), "val": val_loss}, epoch)
        writer.add_hparams({"lr": lr, "epochs": epochs}, {"hparam/val_loss": val_loss}, run_name="hparams")
    return val_loss


def main() -> None:
    autolog.set_experiment("tensorboard-demo")
    for lr in (0.05, 0.2):
        val_loss = train(lr)
        print(f"SummaryWriter lr={lr}: val loss {val_loss:.4f}, run {autolog.last_run().id[:8]}")


if __name__ == "__main__":
    main()
