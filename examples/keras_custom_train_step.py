"""A Keras model with its own ``train_step``, recorded by autolog like any other fit.

Adapted from keras.io's guide "Customizing what happens in `fit()` with PyTorch"
(https://keras.io/guides/custom_train_step_in_torch/): the model overrides
``train_step`` (forward pass, ``compute_loss``, ``backward``, ``optimizer.apply``,
metric updates) and ``test_step``, and is then trained with a plain ``fit`` on tiny
synthetic data. autolog needs nothing from the model: the epoch and batch values the
steps return, the optimizer, the loss and the model file are logged as for a
``Sequential``.

    python examples/keras_custom_train_step.py
    autolog show <run id printed below>
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # the guide's train_step is written for the torch backend

import autolog

autolog.autolog(log_every_n_steps=2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


class CustomModel(keras.Model):
    """``fit`` calls these steps; everything else (callbacks, progress, validation) is Keras's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")

    @property
    def metrics(self):
        # Listed here so Keras resets them at the start of each epoch.
        return [self.loss_tracker, self.mae_metric]

    def train_step(self, data):
        x, y = data
        self.zero_grad()  # torch accumulates gradients: clear last step's
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable = list(self.trainable_weights)
        gradients = [v.value.grad for v in trainable]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        self.loss_tracker.update_state(self.compute_loss(y=y, y_pred=y_pred))
        self.mae_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def main() -> None:
    keras.utils.set_random_seed(0)
    x = np.random.random((512, 16)).astype("float32")
    y = (x @ np.linspace(-1, 1, 16, dtype="float32"))[:, None]
    inputs = keras.Input(shape=(16,))
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    model = CustomModel(inputs, keras.layers.Dense(1)(hidden), name="custom_train_step")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    history = model.fit(x, y, epochs=4, batch_size=32, validation_split=0.25, verbose=0)

    run = autolog.last_run()
    store = autolog.open_store()
    recorded = store.get_run(run.id)
    print(f"run {run.id[:8]} ({recorded.name}): loss {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f}")
    print("  params:", {k: recorded.params[k] for k in ("optimizer", "optimizer.learning_rate", "batch_size", "epochs")})
    print("  metrics:", sorted(k for k in recorded.metrics if not k.startswith("system/")))
    print("  artifacts:", sorted(a.path for a in store.list_artifacts(run.id) if not a.path.startswith("environment/")))


if __name__ == "__main__":
    main()
