"""A tiny GAN in Lightning with two optimizers (manual optimization), under autolog().

Adapted from Lightning's official basic GAN example
(https://github.com/Lightning-AI/pytorch-lightning, examples/pytorch/domain_templates/generative_adversarial_net.py):
the same generator/discriminator training step and the same two Adam optimizers
(lr=0.0002, betas=(0.5, 0.999)), shrunk to 8x8 synthetic "images" so that it runs in a few
seconds on a CPU without downloading MNIST.

One run records both optimizers (``optimizer.0.*`` for the generator, ``optimizer.1.*`` for
the discriminator), ``g_loss``/``d_loss`` per batch, ``lr`` and ``lr.opt1``, and the
module's hyper-parameters, in the default store (./autolog-runs or $AUTOLOG_URI).

Run: python examples/lightning_gan.py
"""

from __future__ import annotations

import autolog

autolog.autolog(log_models=False)

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

IMG_SHAPE = (1, 8, 8)
PIXELS = 64


class Generator(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, PIXELS), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.size(0), *IMG_SHAPE)


class Discriminator(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(PIXELS, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.model(img.view(img.size(0), -1))


class GAN(pl.LightningModule):
    """The generator learns to fool the discriminator; each batch steps both optimizers once."""

    def __init__(self, lr: float = 0.0002, b1: float = 0.5, b2: float = 0.999, latent_dim: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False  # two optimizers, stepped by hand
        self.generator = Generator(latent_dim)
        self.discriminator = Discriminator()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch, batch_idx):
        imgs, _ = batch
        opt_g, opt_d = self.optimizers()
        z = torch.randn(imgs.size(0), self.hparams.latent_dim).type_as(imgs)
        real = torch.ones(imgs.size(0), 1).type_as(imgs)
        fake = torch.zeros(imgs.size(0), 1).type_as(imgs)

        self.toggle_optimizer(opt_g)
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(self(z)), real)
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        self.toggle_optimizer(opt_d)
        real_loss = F.binary_cross_entropy_with_logits(self.discriminator(imgs), real)
        fake_loss = F.binary_cross_entropy_with_logits(self.discriminator(self(z).detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.log_dict({"d_loss": d_loss, "g_loss": g_loss}, prog_bar=True)

    def configure_optimizers(self):
        betas = (self.hparams.b1, self.hparams.b2)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas)
        return opt_g, opt_d


def blobs(n: int = 256, seed: int = 0) -> DataLoader:
    """Synthetic 8x8 images: one bright Gaussian blob at a random place, scaled to [-1, 1] like MNIST after Normalize."""
    gen = torch.Generator().manual_seed(seed)
    grid = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij"))
    centres = torch.rand(n, 2, 1, 1, generator=gen) * 7
    imgs = torch.exp(-((grid - centres) ** 2).sum(1) / 2.0).unsqueeze(1) * 2 - 1
    return DataLoader(TensorDataset(imgs, torch.zeros(n)), batch_size=32, shuffle=True, generator=gen)


def main() -> None:
    autolog.set_experiment("lightning-gan")
    torch.manual_seed(0)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(GAN(), blobs())
    run = autolog.last_run()
    print(f"GAN: g_loss {float(trainer.logged_metrics['g_loss']):.3f}, d_loss {float(trainer.logged_metrics['d_loss']):.3f}, "
          f"run {run.id[:8]} ({run.name})")


if __name__ == "__main__":
    main()
