"""Keras 3 + autolog: one call records params, epoch and batch curves, the best checkpoint, the model.

Run it, then look at what was recorded::

    python examples/keras_example.py
    autolog ls
    autolog show <run id printed below>

Runs on any Keras backend; torch is used when KERAS_BACKEND is not set.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import autolog

# Before or after importing Keras: model.fit is patched either way.
autolog.autolog(checkpoint="best", log_every_n_steps=5)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from autolog.integrations.keras import load_model  # noqa: E402


def train(x, y, learning_rate: float) -> None:
    """One fit = one run, named after the model class (``Sequential-HHMMSS``)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="keras_example_mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(
        x, y, epochs=8, batch_size=64, validation_split=0.2, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True),
                   keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1)],
    )

    run = autolog.last_run()
    store = autolog.open_store()
    recorded = store.get_run(run.id)
    print(f"run {run.id[:8]} ({recorded.name}): {recorded.status}, optimizer {recorded.params['optimizer']} "
          f"lr {recorded.params['optimizer.learning_rate']}, {recorded.params['total_params']} params")
    print(f"  val_accuracy {recorded.metrics['val_accuracy']:.3f}, "
          f"{len(store.metric_history(run.id, 'loss'))} epoch points, "
          f"{len(store.metric_history(run.id, 'batch/loss'))} batch points (batch/loss)")
    best = load_model(run.id, artifact_dir="checkpoints/best")
    print(f"  best checkpoint (epoch {recorded.tags['checkpoint.best_epoch']}) reloads: "
          f"val_loss {best.evaluate(x[-400:], y[-400:], verbose=0)[0]:.4f}")


def main() -> None:
    autolog.set_experiment("keras-demo")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2_000, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype("float32")
    for learning_rate in (3e-3, 3e-2):  # two runs to `autolog compare`
        train(x, y, learning_rate)


if __name__ == "__main__":
    main()
