"""Keras 3 integration, on real Keras (torch backend, set by conftest) with a tiny MLP."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

keras = pytest.importorskip("keras", reason="pip install 'autolog[keras]'")
np = pytest.importorskip("numpy", reason="pip install 'autolog[keras]'")

import autolog  # noqa: E402
from autolog.integrations import keras as ik  # noqa: E402

N_TRAIN, N_VAL, BATCH = 200, 64, 32
STEPS = math.ceil(N_TRAIN / BATCH)  # 7 batches per epoch


@pytest.fixture(autouse=True)
def _quiet_torch():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machines are small and shared: no thread spinning
    yield
    torch.set_num_threads(threads)


def data(n: int = N_TRAIN, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32"))[:, None] + 0.1
    return x, y


def model(optimizer=None, metrics=("mae",)):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=list(metrics))
    return m


def enable(**opts):
    opts.setdefault("log_models", False)
    opts.setdefault("capture_env", False)
    opts.setdefault("log_system_metrics", False)
    autolog.autolog(only=["keras"], **opts)


def history(store, run_id, key):
    return [(p.step, p.value) for p in store.metric_history(run_id, key)]


class Recorder(keras.callbacks.Callback):
    """Counts every training event the user's callback receives."""

    def __init__(self):
        super().__init__()
        self.events: dict[str, int] = {}

    def _count(self, name):
        self.events[name] = self.events.get(name, 0) + 1

    def on_train_begin(self, logs=None):
        self._count("train_begin")

    def on_train_end(self, logs=None):
        self._count("train_end")

    def on_epoch_begin(self, epoch, logs=None):
        self._count("epoch_begin")

    def on_epoch_end(self, epoch, logs=None):
        self._count("epoch_end")

    def on_train_batch_begin(self, batch, logs=None):
        self._count("batch_begin")

    def on_train_batch_end(self, batch, logs=None):
        self._count("batch_end")

    def on_test_begin(self, logs=None):
        self._count("test_begin")


# -- histories ----------------------------------------------------------------------------
def test_epoch_history_one_point_per_epoch_and_batch_history_every_n(store):
    enable(log_every_n_steps=4)
    x, y = data()
    m = model()
    fitted = m.fit(x, y, epochs=3, batch_size=BATCH, validation_data=data(N_VAL, seed=1), verbose=0)
    run = autolog.last_run()
    assert store.get_run(run.id).status == "FINISHED"
    for key in ("loss", "val_loss", "mae", "val_mae"):
        points = history(store, run.id, key)
        assert [s for s, _ in points] == [0, 1, 2]
        assert [v for _, v in points] == pytest.approx(fitted.history[key], rel=1e-6)
    # 21 batches, n = 4: counts 4, 8, 12, 16, 20 and the last batch, 21 -> ceil(21 / 4) points.
    batch_steps = [s for s, _ in history(store, run.id, "batch/loss")]
    assert batch_steps == [4, 8, 12, 16, 20, 21]
    assert len(batch_steps) == math.ceil(3 * STEPS / 4)
    # Keras's batch logs are running epoch means: the last batch of an epoch equals the epoch's loss.
    assert dict(history(store, run.id, "batch/loss"))[21] == pytest.approx(fitted.history["loss"][-1], rel=1e-6)
    assert [s for s, _ in history(store, run.id, "learning_rate")] == [0, 1, 2]
    assert history(store, run.id, "lr") == []  # one learning-rate key: Keras's own name


@pytest.mark.parametrize("n", [1, 3, 7])
def test_batch_points_are_ceil_steps_over_n(store, n):
    enable(log_every_n_steps=n)
    x, y = data()
    model().fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    steps = [s for s, _ in history(store, autolog.last_run().id, "batch/mae")]
    total = 2 * STEPS
    assert len(steps) == math.ceil(total / n)
    assert steps == sorted(set([c for c in range(n, total + 1, n)] + [total]))


def test_fit_again_on_same_model_in_user_run_continues_step_axes(store):
    enable(log_every_n_steps=1)
    x, y = data()
    m = model()
    with autolog.start_run(name="finetune") as run:
        m.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
        m.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    assert [s for s, _ in history(store, run.id, "loss")] == [0, 1, 2, 3]
    assert [s for s, _ in history(store, run.id, "batch/loss")] == list(range(1, 4 * STEPS + 1))
    assert len(store.search_runs()) == 1


# -- params -----------------------------------------------------------------------------
def test_params_optimizer_fit_and_model(store):
    enable()
    x, y = data()
    m = model(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9))
    m.fit(x, y, epochs=2, batch_size=BATCH, validation_split=0.25, verbose=0)
    params = store.get_run(autolog.last_run().id).params
    assert params["optimizer"] == "SGD"
    assert params["optimizer.learning_rate"] == "0.05"
    assert params["optimizer.momentum"] == "0.9"
    assert params["epochs"] == "2" and params["batch_size"] == str(BATCH)
    assert params["steps_per_epoch"] == str(math.ceil(N_TRAIN * 0.75 / BATCH))
    assert params["validation_split"] == "0.25" and params["validation_data"] == "True"
    assert params["initial_epoch"] == "0" and params["class_weight"] == "False"
    assert params["loss"] == "mse" and params["metrics"] == "mae"
    assert params["trainable_params"] == str(m.count_params()) and params["non_trainable_params"] == "0"


def test_learning_rate_schedule_logged_by_class_and_config(store):
    enable()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.5, staircase=True)
    x, y = data()
    model(optimizer=keras.optimizers.Adam(learning_rate=schedule)).fit(x, y, epochs=3, batch_size=BATCH, verbose=0)
    run_id = autolog.last_run().id
    params = store.get_run(run_id).params
    assert params["optimizer"] == "Adam"
    assert params["optimizer.learning_rate"] == "ExponentialDecay"
    assert params["optimizer.learning_rate.decay_steps"] == "7"
    assert params["optimizer.learning_rate.staircase"] == "True"
    # 7 steps per epoch, staircase halving every 7 steps: the rate at each epoch's start.
    assert [v for _, v in history(store, run_id, "learning_rate")] == pytest.approx([0.1, 0.05, 0.025])


def test_reduce_lr_on_plateau_settings_and_lr_actually_used(store):
    enable()
    x, y = data()
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9)
    model().fit(x, y, epochs=3, batch_size=BATCH, callbacks=[plateau], verbose=0)
    run_id = autolog.last_run().id
    params = store.get_run(run_id).params
    assert params["reduce_lr_on_plateau.factor"] == "0.5" and params["reduce_lr_on_plateau.monitor"] == "loss"
    assert params["callbacks"] == "ReduceLROnPlateau"
    # Never an improvement of 1e9: halved after epochs 1 and 2 (the first epoch sets the best).
    # Keras puts learning_rate into the logs itself here: it is logged once, not also as lr.
    assert [v for _, v in history(store, run_id, "learning_rate")] == pytest.approx([0.01, 0.01, 0.005])
    assert history(store, run_id, "lr") == []


def test_early_stopping_logs_stopped_and_restored_epoch(store):
    enable()
    x, y = data()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, restore_best_weights=True)
    model().fit(x, y, epochs=10, batch_size=BATCH, callbacks=[stop], verbose=0)
    run = store.get_run(autolog.last_run().id)
    assert stop.stopped_epoch == 1
    assert run.metrics["stopped_epoch"] == 1.0
    assert run.metrics["restored_epoch"] == float(stop.best_epoch)
    assert run.params["early_stopping.patience"] == "1" and run.params["early_stopping.restore_best_weights"] == "True"
    assert [s for s, _ in history(store, run.id, "loss")] == [0, 1]


# -- artifacts --------------------------------------------------------------------------
def test_checkpoint_best_keeps_one_loadable_model_with_the_best_val_loss(store):
    enable(checkpoint="best")
    x, y = data()
    xv, yv = data(N_VAL, seed=1)
    m = model(optimizer=keras.optimizers.Adam(learning_rate=0.2))  # big steps: val_loss goes up and down
    m.fit(x, y, epochs=6, batch_size=BATCH, validation_data=(xv, yv), verbose=0)
    run_id = autolog.last_run().id
    val = history(store, run_id, "val_loss")
    best_step, best_value = min(val, key=lambda p: p[1])
    paths = sorted(a.path for a in store.list_artifacts(run_id, "checkpoints/"))
    assert {p.rpartition("/")[0] for p in paths} == {"checkpoints/best"}  # one checkpoint folder
    assert {"checkpoints/best/meta.json", "checkpoints/best/model.keras"} <= set(paths)
    best = ik.load_model(run_id, store, artifact_dir="checkpoints/best")
    assert best.evaluate(xv, yv, batch_size=BATCH, verbose=0, return_dict=True)["loss"] == pytest.approx(best_value, rel=1e-5)
    assert store.get_run(run_id).tags["checkpoint.best_epoch"] == str(best_step)


def test_checkpoint_all_and_last(store):
    enable(checkpoint="all")
    x, y = data()
    model().fit(x, y, epochs=3, batch_size=BATCH, verbose=0)
    folders = {a.path.split("/")[1] for a in store.list_artifacts(autolog.last_run().id, "checkpoints/")}
    assert folders == {"epoch-0000", "epoch-0001", "epoch-0002"}
    autolog.autolog(disable=True)
    enable(checkpoint="last")
    model().fit(x, y, epochs=3, batch_size=BATCH, verbose=0)
    paths = sorted(a.path for a in store.list_artifacts(autolog.last_run().id, "checkpoints/"))
    assert {p.rpartition("/")[0] for p in paths} == {"checkpoints/last"}
    assert {"checkpoints/last/meta.json", "checkpoints/last/model.keras"} <= set(paths)


def test_saved_models_are_content_addressed(store):
    x, y = data()
    m = model()
    m.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    with autolog.start_run() as run:
        ik.save_model(run, m, "first")
        time.sleep(1.1)  # Keras stamps the save time to the second
        ik.save_model(run, m, "second")
    shas = {a.path: a.sha256 for a in store.list_artifacts(run.id)}
    assert shas["first/model.keras"] == shas["second/model.keras"]


def test_final_model_and_summary(store):
    enable(log_models=True)
    x, y = data()
    m = model()
    m.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    run_id = autolog.last_run().id
    loaded = ik.load_model(run_id, store)
    np.testing.assert_allclose(loaded.predict(x[:5], verbose=0), m.predict(x[:5], verbose=0), rtol=1e-6)
    with open(store.artifact_file(run_id, "model_summary.txt"), encoding="utf-8") as fh:
        summary = fh.read()
    assert "Total params" in summary and "Dense" in summary


class TorchWriterTensorBoard(keras.callbacks.TensorBoard):
    """keras.callbacks.TensorBoard writing with torch's SummaryWriter.

    Keras's own writer needs TensorFlow, which this test environment does not have.
    """

    def set_model(self, model):
        keras.callbacks.Callback.set_model(self, model)

    def on_train_begin(self, logs=None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(os.path.join(self.log_dir, "train"))

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.writer.add_scalar(f"epoch_{key}", value, epoch)

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_train_end(self, logs=None):
        self.writer.close()


def _tensorboard_files(store, run_id):
    return {a.path: a.size for a in store.list_artifacts(run_id, "tensorboard/")}


def test_tensorboard_callback_log_dir_is_uploaded(store, tmp_path):
    pytest.importorskip("tensorboard", reason="pip install tensorboard")
    enable()
    x, y = data()
    m = model()
    board = TorchWriterTensorBoard(log_dir=str(tmp_path / "tb"))
    with autolog.start_run() as run:
        m.fit(x, y, epochs=2, batch_size=BATCH, callbacks=[board], verbose=0)
        first = _tensorboard_files(store, run.id)
        m.fit(x, y, epochs=1, batch_size=BATCH, callbacks=[board], verbose=0)
        second = _tensorboard_files(store, run.id)
    on_disk = {}
    for folder, _dirs, names in os.walk(tmp_path / "tb"):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), tmp_path / "tb").replace(os.sep, "/")
            on_disk[f"tensorboard/{rel}"] = os.path.getsize(os.path.join(folder, name))
    assert len(first) == 1 and all(p.startswith("tensorboard/train/events.out.tfevents") for p in first)
    assert second == on_disk and len(second) == 2  # the second fit's event file was added


def test_real_keras_tensorboard_callback_is_uploaded(store, tmp_path):
    pytest.importorskip("tensorflow", reason="keras.callbacks.TensorBoard writes through tensorflow.summary, "
                                             "which is not installed (the torch-writer test above covers the upload)")
    enable()
    x, y = data()
    model().fit(x, y, epochs=2, batch_size=BATCH, verbose=0,
                callbacks=[keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))])
    assert any("events.out.tfevents" in p for p in _tensorboard_files(store, autolog.last_run().id))


# -- safety -----------------------------------------------------------------------------
def test_user_callbacks_receive_every_event_and_their_list_is_untouched(store):
    x, y = data()
    plain = Recorder()
    model().fit(x, y, epochs=2, batch_size=BATCH, validation_split=0.25, callbacks=[plain], verbose=0)
    enable(log_every_n_steps=1, checkpoint="last")
    logged = Recorder()
    callbacks = [logged]
    model().fit(x, y, epochs=2, batch_size=BATCH, validation_split=0.25, callbacks=callbacks, verbose=0)
    assert logged.events == plain.events
    assert logged.events["batch_end"] == 2 * math.ceil(N_TRAIN * 0.75 / BATCH)
    assert callbacks == [logged]


def test_fit_raising_in_user_callback_ends_run_failed_and_reraises_same_exception(store):
    enable()
    error = RuntimeError("user callback broke")

    class Broken(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise error

    x, y = data()
    with pytest.raises(RuntimeError) as caught:
        model().fit(x, y, epochs=3, batch_size=BATCH, callbacks=[Broken()], verbose=0)
    assert caught.value is error
    run = store.get_run(autolog.last_run().id)
    assert run.status == "FAILED"
    assert [s for s, _ in history(store, run.id, "loss")] == [0]  # epoch 1 raised before autolog's hook


def test_hand_added_callback_without_autolog_opens_and_ends_its_own_run(store):
    x, y = data()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=3)
    callback = ik.AutologCallback(log_every_n_steps=2, log_models=False)
    model().fit(x, y, epochs=2, batch_size=BATCH, callbacks=[stop, callback], verbose=0)
    runs = store.search_runs()
    assert len(runs) == 1 and runs[0].status == "FINISHED" and runs[0].name.startswith("Sequential-")
    assert [s for s, _ in history(store, runs[0].id, "loss")] == [0, 1]
    assert len(history(store, runs[0].id, "batch/loss")) == math.ceil(2 * STEPS / 2)
    params = runs[0].params
    assert params["batch_size"] == str(BATCH) and params["early_stopping.patience"] == "3"


def test_hand_added_callback_with_autolog_is_not_added_twice(store):
    enable(log_every_n_steps=1)
    x, y = data()
    callback = ik.AutologCallback()
    model().fit(x, y, epochs=1, batch_size=BATCH, callbacks=[callback], verbose=0)
    runs = store.search_runs()
    assert len(runs) == 1
    assert [s for s, _ in history(store, runs[0].id, "batch/loss")] == list(range(1, STEPS + 1))


def test_disable_restores_fit_and_keras_is_not_imported_by_the_module(store):
    original = keras.Model.__dict__.get("fit")
    enable()
    assert keras.Model.__dict__.get("fit") is not original
    autolog.autolog(disable=True)
    assert keras.Model.__dict__.get("fit") is original
    x, y = data()
    model().fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    assert store.search_runs() == []
    code = "import sys, autolog.integrations.keras as k; assert 'keras' not in sys.modules, 'keras imported'; print(k.NAME)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# -- what a user of MLflow's autolog would expect ------------------------------------------
class Batches(keras.utils.PyDataset):
    """A PyDataset of 16-row batches with no batch_size attribute: the size is only in the batches."""

    def __init__(self, x, y, rows=16):
        super().__init__()
        self.x, self.y, self.rows = x, y, rows

    def __len__(self):
        return math.ceil(len(self.x) / self.rows)

    def __getitem__(self, i):
        return self.x[i * self.rows:(i + 1) * self.rows], self.y[i * self.rows:(i + 1) * self.rows]


def test_batch_size_is_read_from_the_first_batch_of_a_pydataset_and_a_generator(store):
    enable()
    x, y = data()
    model().fit(Batches(x, y), epochs=1, verbose=0)
    assert store.get_run(autolog.last_run().id).params["batch_size"] == "16"

    def batches():
        while True:
            for i in range(0, N_TRAIN, 25):
                yield x[i:i + 25], y[i:i + 25]

    m = model()
    m.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0)
    run = store.get_run(autolog.last_run().id)
    assert run.params["batch_size"] == "25" and run.params["steps_per_epoch"] == "4"
    assert [s for s, _ in history(store, run.id, "batch/loss")] == list(range(1, 9))  # no batch was lost to the peek


class GAN(keras.Model):
    """keras.io's GAN pattern: compile() takes two optimizers and keeps them as attributes."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator, self.generator, self.latent_dim = discriminator, generator, latent_dim

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def call(self, x):
        return self.discriminator(x)

    def train_step(self, real):
        import torch

        noise = keras.random.normal((keras.ops.shape(real)[0], self.latent_dim))
        fake = self.generator(noise)
        self.zero_grad()
        d_loss = self.loss_fn(keras.ops.ones((keras.ops.shape(real)[0], 1)), self.discriminator(real)) + self.loss_fn(
            keras.ops.zeros((keras.ops.shape(fake)[0], 1)), self.discriminator(fake))
        d_loss.backward()
        weights = self.discriminator.trainable_weights
        with torch.no_grad():
            self.d_optimizer.apply([v.value.grad for v in weights], weights)
        self.zero_grad()
        g_loss = self.loss_fn(keras.ops.ones((keras.ops.shape(real)[0], 1)), self.discriminator(self.generator(noise)))
        g_loss.backward()
        weights = self.generator.trainable_weights
        with torch.no_grad():
            self.g_optimizer.apply([v.value.grad for v in weights], weights)
        return {"d_loss": d_loss, "g_loss": g_loss}


def _gan():
    keras.utils.set_random_seed(0)
    disc = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    gen = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])
    gan = GAN(disc, gen, latent_dim=2)
    gan.compile(keras.optimizers.Adam(3e-4), keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy())
    return gan


def test_custom_compile_logs_every_optimizer_and_saves_weights_when_there_is_no_config(store):
    import warnings

    enable(log_models=True)
    x, _ = data()
    gan = _gan()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gan.fit(x, epochs=2, batch_size=BATCH, verbose=0)
    run = store.get_run(autolog.last_run().id)
    assert run.status == "FINISHED"
    params = run.params
    assert params["optimizer.0.class"] == "Adam" and params["optimizer.0.attribute"] == "d_optimizer"
    assert params["optimizer.0.learning_rate"] == "0.0003"
    assert params["optimizer.1.class"] == "Adam" and params["optimizer.1.attribute"] == "g_optimizer"
    assert params["optimizer.1.learning_rate"] == "0.001"
    assert "RMSprop" not in params.values() and "optimizer" not in params  # Keras's unused default is left out
    assert [v for _, v in history(store, run.id, "learning_rate.opt1")] == pytest.approx([0.001, 0.001])
    # The model has no get_config: its weights are saved, with one short warning.
    ours = [str(w.message) for w in caught if "get_config" in str(w.message)]
    assert len(ours) == 1 and "\n" not in ours[0]
    assert "model/model.weights.h5" in {a.path for a in store.list_artifacts(run.id)}
    fresh = _gan()
    fresh(x[:1])  # built, as the user builds the architecture in code
    loaded = ik.load_model(run.id, store, model=fresh)
    np.testing.assert_allclose(loaded.discriminator.predict(x[:3], verbose=0), gan.discriminator.predict(x[:3], verbose=0), rtol=1e-6)
    with pytest.raises(ValueError, match="model="):
        ik.load_model(run.id, store)


def test_users_model_checkpoint_files_are_stored_once_each(store, tmp_path):
    enable()
    x, y = data()
    xv, yv = data(N_VAL, seed=1)
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best_model.keras"), monitor="val_loss", save_best_only=True)
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}.weights.h5"), save_weights_only=True)
    m = model()
    with autolog.start_run() as run:
        m.fit(x, y, epochs=2, batch_size=BATCH, validation_data=(xv, yv), callbacks=[best, every], verbose=0)
        m.fit(x, y, epochs=1, batch_size=BATCH, validation_data=(xv, yv), callbacks=[best], verbose=0)
    stored = {a.path: a for a in store.list_artifacts(run.id, "checkpoints/")}
    assert set(stored) == {"checkpoints/best_model.keras", "checkpoints/1/w-01.weights.h5", "checkpoints/1/w-02.weights.h5"}
    assert stored["checkpoints/best_model.keras"].size == os.path.getsize(tmp_path / "best_model.keras")
    assert store.get_run(run.id).tags["autolog.goal.val_loss"] == "min"

    enable(checkpoint=False)
    model().fit(x, y, epochs=1, batch_size=BATCH, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"))], verbose=0)
    assert store.list_artifacts(autolog.last_run().id, "checkpoints/") == []


def test_metric_directions_from_monitor_mode_and_keras_names(store):
    enable()
    x, y = data()
    stop = keras.callbacks.EarlyStopping(monitor="mae", mode="max", patience=5)  # the user's word wins over the name
    model(metrics=("mae", "mse")).fit(x, y, epochs=1, batch_size=BATCH, validation_split=0.25, callbacks=[stop], verbose=0)
    tags = store.get_run(autolog.last_run().id).tags
    assert tags["autolog.goal.loss"] == "min" and tags["autolog.goal.val_loss"] == "min"
    assert tags["autolog.goal.batch/loss"] == "min" and tags["autolog.goal.val_mse"] == "min"
    assert tags["autolog.goal.mae"] == "max"
