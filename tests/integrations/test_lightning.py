"""The Lightning integration against real Lightning on the CPU: a tiny MLP, a few dozen steps."""

from __future__ import annotations

import csv
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("lightning", reason="pip install 'autolog[lightning]'")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import autolog as al  # noqa: E402
from autolog import autolog  # noqa: E402
from autolog.integrations import lightning as al_lightning  # noqa: E402

STEPS_PER_EPOCH = 8  # 64 samples, batch 8


class MLP(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8, scheduler: bool = False, fail_at: int = -1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("boom")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("loss", loss)
        self.log("mae", (self.net(x) - y).abs().mean(), on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def predict_step(self, batch, batch_idx):
        return self.net(batch[0])

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        if not self.hparams.scheduler:
            return opt
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}


class GAN(pl.LightningModule):
    """Manual optimization with two optimizers, the first with two param groups."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.gen = torch.nn.Linear(4, 4)
        self.gen_head = torch.nn.Linear(4, 4)
        self.disc = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        g_opt, d_opt = self.optimizers()
        x, _ = batch
        g_loss = self.disc(self.gen_head(self.gen(x))).mean()
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        d_loss = (self.disc(x) - self.disc(self.gen_head(self.gen(x)).detach())).pow(2).mean()
        d_opt.zero_grad()
        self.manual_backward(d_loss)
        d_opt.step()
        self.log_dict({"g_loss": g_loss, "d_loss": d_loss})

    def configure_optimizers(self):
        g_opt = torch.optim.Adam([{"params": self.gen.parameters()}, {"params": self.gen_head.parameters(), "lr": 0.01}], lr=0.002)
        return g_opt, torch.optim.SGD(self.disc.parameters(), lr=0.1, momentum=0.9)


def loader(n: int = 64, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    settings = dict(max_epochs=3, enable_progress_bar=False, enable_model_summary=False, logger=False,
                    enable_checkpointing=False, default_root_dir=str(tmp_path))
    settings.update(kwargs)
    return pl.Trainer(**settings)


def history(store, run_id, key):
    return [(p.step, p.value) for p in store.metric_history(run_id, key)]


def content(store, run_id):
    """Params and metric keys with their history lengths, without environment/system entries."""
    run = store.get_run(run_id)
    keys = {k: len(store.metric_history(run_id, k)) for k in store.metric_keys(run_id) if not k.startswith("system/")}
    return run.params, keys


def test_fit_records_params_step_and_epoch_metrics(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    trainer(tmp_path).fit(MLP(), loader(), loader(seed=1))
    run = store.get_run(al.last_run().id)
    assert run.status == "FINISHED" and run.name.startswith("MLP-")
    assert run.tags["autolog.integration"] == "lightning"
    p = run.params
    assert p["max_epochs"] == "3" and p["accumulate_grad_batches"] == "1" and p["precision"] == "32-true"
    assert p["devices"] == "1" and p["strategy"] == "SingleDeviceStrategy"
    assert p["lr"] == "0.05" and p["hidden"] == "8"  # save_hyperparameters
    assert p["optimizer.0.class"] == "Adam" and p["optimizer.0.lr"] == "0.05" and p["optimizer.0.betas"] == "(0.9, 0.999)"
    assert p["model.total_params"] == str(4 * 8 + 8 + 8 + 1)
    total = 3 * STEPS_PER_EPOCH
    # Step axis: every optimizer step, step = Lightning's logger step.
    assert [s for s, _ in history(store, run.id, "loss")] == list(range(total))
    assert [s for s, _ in history(store, run.id, "mae_step")] == list(range(total))
    assert [s for s, _ in history(store, run.id, "lr")] == list(range(total))
    # Epoch axis: one point per epoch, step = epoch; nothing from the sanity check.
    assert [s for s, _ in history(store, run.id, "mae_epoch")] == [0, 1, 2]
    assert [s for s, _ in history(store, run.id, "val_loss")] == [0, 1, 2]
    assert "mae" not in store.metric_keys(run.id)


def test_log_every_n_steps_keeps_the_last_step_of_each_epoch(store, tmp_path):
    autolog(only=["lightning"], log_models=False, log_every_n_steps=5)
    trainer(tmp_path, limit_val_batches=0).fit(MLP(), loader())
    steps = [s for s, _ in history(store, al.last_run().id, "loss")]
    assert steps == [4, 7, 9, 14, 15, 19, 23]


def test_lr_and_optimizer_are_params_and_lr_follows_the_scheduler(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    trainer(tmp_path, limit_val_batches=0).fit(MLP(scheduler=True), loader())
    run = store.get_run(al.last_run().id)
    assert run.params["optimizer.0.class"] == "Adam" and run.params["optimizer.0.lr"] == "0.05"
    assert run.params["lr_scheduler.0.class"] == "StepLR" and run.params["lr_scheduler.0.gamma"] == "0.5"
    assert run.params["lr_scheduler.0.interval"] == "epoch"
    lrs = history(store, run.id, "lr")
    per_epoch = [sorted({v for s, v in lrs if e * STEPS_PER_EPOCH <= s < (e + 1) * STEPS_PER_EPOCH}) for e in range(3)]
    assert per_epoch == [[0.05], [0.025], [0.0125]]


def test_several_optimizers_use_the_loggers_step_axis(store, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    autolog(only=["lightning"], log_models=False)
    csv_logger = CSVLogger(str(tmp_path / "csv"), name="gan")
    t = trainer(tmp_path, max_epochs=2, logger=csv_logger, log_every_n_steps=1)
    t.fit(GAN(), loader())
    run = store.get_run(al.last_run().id)
    assert t.global_step == 2 * 2 * STEPS_PER_EPOCH  # one count per optimizer step...
    ours = [s for s, _ in history(store, run.id, "g_loss")]
    assert ours == list(range(2 * STEPS_PER_EPOCH))  # ...but one point per batch
    with open(os.path.join(csv_logger.log_dir, "metrics.csv")) as fh:
        theirs = [int(row["step"]) for row in csv.DictReader(fh) if row.get("g_loss")]
    assert ours == theirs  # the step axis Lightning's own loggers use
    p = run.params
    assert p["optimizer.0.class"] == "Adam" and p["optimizer.1.class"] == "SGD"
    assert p["optimizer.0.lr"] == "0.002" and p["optimizer.0.group.1.lr"] == "0.01" and p["optimizer.1.momentum"] == "0.9"
    assert {"lr", "lr.pg1", "lr.opt1"} <= set(store.metric_keys(run.id))
    assert history(store, run.id, "lr.pg1")[0][1] == 0.01


def test_explicit_callback_and_autolog_record_the_same(store, tmp_path):
    from autolog.integrations.lightning import AutologCallback

    torch.manual_seed(0)
    trainer(tmp_path, callbacks=[AutologCallback(log_models=False)]).fit(MLP(scheduler=True), loader(), loader(seed=1))
    explicit = al.last_run().id
    autolog(only=["lightning"], log_models=False)
    torch.manual_seed(0)
    trainer(tmp_path).fit(MLP(scheduler=True), loader(), loader(seed=1))
    patched = al.last_run().id
    assert explicit != patched
    assert content(store, explicit) == content(store, patched)
    assert len(store.search_runs()) == 2
    assert store.get_run(explicit).tags["autolog.integration"] == "lightning"


def test_best_and_last_checkpoints_are_logged_and_load_back(store, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    autolog(only=["lightning"], log_models=False)
    mc = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), monitor="val_loss", save_last=True)
    trainer(tmp_path, enable_checkpointing=True, callbacks=[mc]).fit(MLP(), loader(), loader(seed=1))
    run = store.get_run(al.last_run().id)
    arts = {a.path: a for a in store.list_artifacts(run.id)}
    assert {"checkpoints/best.ckpt", "checkpoints/last.ckpt"} <= set(arts)
    assert run.tags["checkpoints.best_model_path"] == mc.best_model_path
    assert run.metrics["checkpoints.best_model_score"] == pytest.approx(float(mc.best_model_score))
    loaded = al_lightning.load_checkpoint(run.id, MLP)
    expected = MLP.load_from_checkpoint(mc.best_model_path)
    for key, value in expected.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_own_checkpoint_policy_without_a_model_checkpoint(store, tmp_path):
    autolog(only=["lightning"], log_models=False, checkpoint="best", checkpoint_monitor="val_loss")
    trainer(tmp_path).fit(MLP(), loader(), loader(seed=1))
    run = store.get_run(al.last_run().id)
    assert "checkpoints/best.ckpt" in [a.path for a in store.list_artifacts(run.id)]
    vals = [v for _, v in history(store, run.id, "val_loss")]
    assert run.metrics["checkpoint.best_model_score"] == pytest.approx(min(vals))
    assert isinstance(al_lightning.load_checkpoint(run.id, MLP), MLP)


def test_model_is_saved_and_loads(store, tmp_path):
    autolog(only=["lightning"])
    model = MLP(hidden=6)
    trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(model, loader())
    loaded = al_lightning.load_model(al.last_run().id)
    assert loaded.hparams.hidden == 6
    x = torch.randn(3, 4)
    assert torch.allclose(loaded.net(x), model.net(x))


def test_resume_continues_the_step_axis_in_a_new_run(store, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    autolog(only=["lightning"], log_models=False)
    mc = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[mc], limit_val_batches=0).fit(MLP(), loader())
    first = al.last_run().id
    trainer(tmp_path, max_epochs=3, limit_val_batches=0).fit(MLP(), loader(), ckpt_path=mc.last_model_path)
    second = al.last_run().id
    assert second != first
    assert [s for s, _ in history(store, second, "loss")] == list(range(2 * STEPS_PER_EPOCH, 3 * STEPS_PER_EPOCH))
    assert [s for s, _ in history(store, second, "mae_epoch")] == [2]
    tags = store.get_run(second).tags
    assert tags["autolog.resumed_from"] == mc.last_model_path
    assert tags["autolog.resumed_from_run"] == first


def test_users_loggers_and_callbacks_are_untouched(store, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    class Counter(pl.Callback):
        batches = 0

        def on_train_batch_end(self, *args):
            self.batches += 1

    autolog(only=["lightning"], log_models=False)
    counter = Counter()
    csv_logger = CSVLogger(str(tmp_path / "csv"), name="mlp")
    t = trainer(tmp_path, logger=csv_logger, callbacks=[counter], log_every_n_steps=1)
    before = list(t.callbacks)
    t.fit(MLP(), loader(), loader(seed=1))
    assert counter.batches == 3 * STEPS_PER_EPOCH
    assert t.callbacks == before  # our callback was added for the fit only
    with open(os.path.join(csv_logger.log_dir, "metrics.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len([r for r in rows if r.get("loss")]) == 3 * STEPS_PER_EPOCH
    assert len(history(store, al.last_run().id, "loss")) == 3 * STEPS_PER_EPOCH


def test_tensorboard_event_files_are_uploaded(store, tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    autolog(only=["lightning"], log_models=False)
    tb = TensorBoardLogger(str(tmp_path / "tb"), name="mlp")
    trainer(tmp_path, logger=tb, log_every_n_steps=2).fit(MLP(), loader(), loader(seed=1))
    run_id = al.last_run().id
    arts = {a.path: a for a in store.list_artifacts(run_id) if a.path.startswith("tensorboard/")}
    events = [p for p in arts if "tfevents" in p]
    assert events and "tensorboard/hparams.yaml" in arts
    local = os.path.join(tb.log_dir, events[0].split("/", 1)[1])
    with open(local, "rb") as fh, open(store.artifact_file(run_id, events[0]), "rb") as stored:
        assert stored.read() == fh.read()  # the final version, after the last epoch


def test_failed_fit_marks_the_run_failed(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    with pytest.raises(RuntimeError, match="boom"):
        trainer(tmp_path, limit_val_batches=0).fit(MLP(fail_at=5), loader())
    run = store.search_runs()[0]
    assert run.status == "FAILED"
    assert [s for s, _ in history(store, run.id, "loss")] == list(range(5))


def test_early_stopping_outcome_is_recorded(store, tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping

    autolog(only=["lightning"], log_models=False)
    es = EarlyStopping(monitor="val_loss", patience=1, min_delta=100.0)
    trainer(tmp_path, max_epochs=10, callbacks=[es]).fit(MLP(), loader(), loader(seed=1))
    run = store.get_run(al.last_run().id)
    assert run.metrics["early_stopping.stopped"] == 1.0
    assert run.metrics["early_stopping.stopped_epoch"] == es.stopped_epoch > 0
    assert run.params["early_stopping.monitor"] == "val_loss" and run.params["early_stopping.patience"] == "1"
    assert len(history(store, run.id, "val_loss")) == es.stopped_epoch + 1


def test_validate_and_test_results_go_into_the_fits_run(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    t = trainer(tmp_path, max_epochs=2)
    model = MLP()
    t.fit(model, loader(), loader(seed=1))
    fit_run = al.last_run().id
    results = t.test(model, loader(seed=2), verbose=False)
    t.validate(model, loader(seed=1), verbose=False)
    assert len(store.search_runs()) == 1
    run = store.get_run(fit_run)
    assert run.status == "FINISHED"
    assert history(store, fit_run, "test_loss") == [(2, pytest.approx(results[0]["test_loss"]))]
    assert [s for s, _ in history(store, fit_run, "val_loss")] == [0, 1, 2]
    # A trainer that never fitted gets a run of its own.
    trainer(tmp_path).test(model, loader(seed=2), verbose=False)
    assert len(store.search_runs()) == 2


def test_fit_inside_a_user_run_logs_there_and_leaves_it_open(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    with al.start_run(name="mine") as run:
        trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(MLP(), loader())
        assert al.active_run() is run and not run.ended
        assert len(store.metric_history(run.id, "loss")) == STEPS_PER_EPOCH
    assert len(store.search_runs()) == 1


def test_fitting_the_same_module_again_in_a_user_run_continues_the_axes(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    model = MLP()
    with al.start_run(name="finetune") as run:
        trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(model, loader())
        trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(model, loader(seed=3))
    assert [s for s, _ in history(store, run.id, "loss")] == list(range(2 * STEPS_PER_EPOCH))
    assert [s for s, _ in history(store, run.id, "mae_epoch")] == [0, 1]


def test_values_on_an_accelerator_are_converted_in_batches(store, tmp_path, monkeypatch):
    # No GPU here: pretend CPU tensors live on a device to exercise the batched conversion.
    from autolog.integrations import _lightning_callback as cbmod

    original = cbmod.CallbackLogic._put

    def put(self, key, value, step):
        if not isinstance(value, float) and hasattr(value, "device"):
            self._pending.append((key, step, value))
            if len(self._pending) >= cbmod.DEVICE_BATCH:
                self._drain()
            return
        original(self, key, value, step)

    monkeypatch.setattr(cbmod.CallbackLogic, "_put", put)
    autolog(only=["lightning"], log_models=False)
    trainer(tmp_path).fit(MLP(), loader(), loader(seed=1))
    run_id = al.last_run().id
    assert len(history(store, run_id, "loss")) == 3 * STEPS_PER_EPOCH
    assert len(history(store, run_id, "val_loss")) == 3


def test_callback_pickles_as_its_own_package_class():
    from autolog.integrations.lightning import AutologCallback, callback_class

    cb = AutologCallback(log_every_n_steps=3)
    clone = pickle.loads(pickle.dumps(cb))
    assert type(clone) is callback_class("lightning") and clone._opt("log_every_n_steps") == 3
    with pytest.raises(ValueError):
        AutologCallback(checkpoint="sometimes")


def test_pytorch_lightning_package(store, tmp_path):
    ptl = pytest.importorskip("pytorch_lightning", reason="pip install pytorch-lightning")
    from autolog.integrations.lightning import callback_class

    class Small(ptl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    settings = dict(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
                    enable_checkpointing=False, default_root_dir=str(tmp_path))
    ptl.Trainer(callbacks=[callback_class("pytorch_lightning")(log_models=False)], **settings).fit(Small(), loader())
    explicit = al.last_run().id
    autolog(only=["lightning"], log_models=False)
    ptl.Trainer(**settings).fit(Small(), loader())
    patched = al.last_run().id
    assert explicit != patched
    for run_id in (explicit, patched):
        assert len(store.metric_history(run_id, "loss")) == STEPS_PER_EPOCH
        assert store.get_run(run_id).tags["lightning.package"] == "pytorch_lightning"


def test_importing_the_integration_imports_no_framework():
    code = ("import sys, autolog, autolog.integrations.lightning as m; autolog.autolog(only=['lightning']); "
            "assert not [x for x in ('torch', 'lightning', 'pytorch_lightning') if x in sys.modules], sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


DDP_SCRIPT = """
import torch, lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset
import autolog

class MLP(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("loss", loss)
        self.log("loss_avg", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

if __name__ == "__main__":
    autolog.autolog(only=["lightning"], log_models=False, capture_env=False, log_system_metrics=False)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    trainer = pl.Trainer(strategy="ddp", devices=2, accelerator="cpu", max_epochs=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(MLP(), data)
    print("RANK", trainer.global_rank, "DONE", flush=True)
"""


def test_ddp_two_processes_log_one_run(store, tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    runs = store.search_runs()
    assert len(runs) == 1
    run = store.get_run(runs[0].id)
    assert run.status == "FINISHED" and run.params["world_size"] == "2" and run.params["strategy"] == "DDPStrategy"
    steps = 2 * (64 // 2 // 8)  # each rank sees half the data
    assert [s for s, _ in history(store, run.id, "loss")] == list(range(steps))
    assert [s for s, _ in history(store, run.id, "loss_avg")] == [0, 1]


# -- real scripts: predict, a second fit, LightningCLI, the user's checkpoints, metric goals ------
def test_predict_after_a_fit_creates_no_run(store, tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    # With the TensorBoard capture on, Lightning's logger writes hp_metric=-1 at predict's start.
    autolog(only=["lightning", "tensorboard"], log_models=False, capture_env=False, log_system_metrics=False)
    t = trainer(tmp_path, max_epochs=1, logger=TensorBoardLogger(str(tmp_path / "tb")), limit_val_batches=0)
    model = MLP()
    t.fit(model, loader())
    predictions = t.predict(model, loader(seed=2))
    assert len(predictions) == 8
    runs = store.search_runs()
    assert [r.tags.get("autolog.integration") for r in runs] == ["lightning"]
    assert "hp_metric" not in runs[0].metrics


def test_a_second_fit_that_trains_nothing_creates_no_run(store, tmp_path):
    autolog(only=["lightning"], log_models=False)
    t = trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    model = MLP()
    t.fit(model, loader())
    first = al.last_run().id
    t.fit(model, loader())  # the official tutorial's second call: max_epochs already reached
    assert [r.id for r in store.search_runs()] == [first]
    assert len(history(store, first, "loss")) == STEPS_PER_EPOCH
    assert store.get_run(first).status == "FINISHED"


class TinyData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 8):
        super().__init__()
        self.save_hyperparameters()

    def train_dataloader(self):
        return loader()


def test_lightning_cli_instantiator_is_not_a_param(store, tmp_path):
    pytest.importorskip("jsonargparse", reason="pip install 'jsonargparse[signatures]'")
    from lightning.pytorch.cli import LightningCLI

    autolog(only=["lightning"], log_models=False)
    LightningCLI(MLP, TinyData, save_config_callback=None, args=[
        "fit", "--model.hidden=6", "--trainer.max_epochs=1", "--trainer.logger=false", "--trainer.limit_val_batches=0",
        "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}"])
    params = store.get_run(al.last_run().id).params
    assert params["hidden"] == "6" and params["batch_size"] == "8"
    assert not [k for k in params if "instantiator" in k]


def test_users_checkpoint_files_are_uploaded_once_each_at_fit_end(store, tmp_path, monkeypatch):
    from lightning.pytorch.callbacks import ModelCheckpoint

    uploads = []
    original = type(store).log_artifact

    def counting(self, run_id, local_path, path=None):
        uploads.append(path)
        return original(self, run_id, local_path, path)

    monkeypatch.setattr(type(store), "log_artifact", counting)
    autolog(only=["lightning"], log_models=False)
    folder = tmp_path / "mine"
    mc = ModelCheckpoint(dirpath=str(folder), filename="{epoch}-{val_loss:.3f}", monitor="val_loss", save_top_k=2, save_last=True)
    trainer(tmp_path, max_epochs=4, enable_checkpointing=True, callbacks=[mc]).fit(MLP(), loader(), loader(seed=1))
    run_id = al.last_run().id
    on_disk = sorted(os.listdir(folder))
    assert len(on_disk) == 3  # the top 2 and last.ckpt
    stored = {a.path: a for a in store.list_artifacts(run_id, "checkpoints")}
    for name in on_disk:
        with open(folder / name, "rb") as fh:
            assert stored[f"checkpoints/{name}"].sha256 == __import__("hashlib").sha256(fh.read()).hexdigest()
        assert uploads.count(f"checkpoints/{name}") == 1
    assert "checkpoints/best.ckpt" in stored  # load_checkpoint's default still works
    assert os.path.basename(mc.best_model_path) in on_disk


def test_checkpoint_option_decides_which_user_checkpoints_are_stored(store, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    def fit(policy, folder):
        autolog(only=["lightning"], log_models=False, checkpoint=policy)
        mc = ModelCheckpoint(dirpath=str(tmp_path / folder), monitor="val_loss", save_top_k=2, save_last=True)
        trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[mc]).fit(MLP(), loader(), loader(seed=1))
        return mc, {a.path for a in store.list_artifacts(al.last_run().id, "checkpoints")}

    _, none = fit(False, "off")
    assert none == set()
    mc, best = fit("best", "best")
    assert best == {"checkpoints/best.ckpt", f"checkpoints/{os.path.basename(mc.best_model_path)}"}
    _, last = fit("last", "last")
    assert last == {"checkpoints/last.ckpt"}


def test_monitored_metrics_record_their_goal(store, tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    autolog(only=["lightning"], log_models=False)
    callbacks = [EarlyStopping(monitor="val_loss", mode="min", patience=5),
                 ModelCheckpoint(dirpath=str(tmp_path / "ck"), monitor="mae_epoch", mode="max")]
    trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=callbacks).fit(MLP(), loader(), loader(seed=1))
    tags = store.get_run(al.last_run().id).tags
    assert tags["autolog.goal.val_loss"] == "min"
    assert tags["autolog.goal.mae_epoch"] == "max"


def test_gan_example_logs_both_optimizers(store, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, os.path.join(root, "examples", "lightning_gan.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    (run,) = store.search_runs(experiment="lightning-gan")
    params = store.get_run(run.id).params
    assert params["optimizer.0.class"] == params["optimizer.1.class"] == "Adam"
    assert params["optimizer.0.lr"] == params["optimizer.1.lr"] == "0.0002"
    assert params["optimizer.0.betas"] == "(0.5, 0.999)"
    assert {"g_loss", "d_loss", "lr", "lr.opt1"} <= set(store.metric_keys(run.id))
