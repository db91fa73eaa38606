"""seed_everything(): bit-identical torch and Keras training, the logged seed, deferred seeding,
and the run-start options that turn capture and system metrics on and off."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

import autolog as al
from autolog.capture import seeding as repro
from autolog.capture import system as sysmetrics
from autolog.tracking import api


@pytest.fixture(autouse=True)
def restore_global_state(monkeypatch):
    """seed_everything changes process-wide state: put every piece of it back."""
    for var in ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS", "AUTOLOG_SEED"):
        monkeypatch.delenv(var, raising=False)
    defaults = dict(repro._defaults)
    interval = sysmetrics.INTERVAL
    yield
    repro._defaults.update(defaults)
    sysmetrics.INTERVAL = interval
    repro._pending_tags.clear()
    repro._import_seeder.remove()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = False


def torch_losses(seed: int | None) -> list[float]:
    import torch

    if seed is not None:
        al.seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    losses = []
    for _ in range(15):
        batch = torch.randperm(64)[:16]
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_torch_loop_is_bit_identical_with_the_seed():
    first, second = torch_losses(1234), torch_losses(1234)
    assert first == second
    assert torch_losses(None) != torch_losses(None)
    assert torch_losses(1) != first


def keras_losses(seed: int | None) -> list[float]:
    import keras
    import numpy as np

    if seed is not None:
        al.seed_everything(seed)
    x = np.random.rand(64, 4).astype("float32")
    y = (x.sum(axis=1, keepdims=True) > 2).astype("float32")
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.25), keras.layers.Dense(1),
    ])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=16, shuffle=True, verbose=0)
    return history.history["loss"]


def test_keras_fit_is_bit_identical_with_the_seed():
    assert os.environ["KERAS_BACKEND"] == "torch"
    first, second = keras_losses(7), keras_losses(7)
    assert first == second
    assert keras_losses(None) != keras_losses(None)


def test_seed_is_logged_into_the_active_run(store):
    with al.start_run() as run:
        assert al.seed_everything(42) == 42
        al.seed_everything(42)  # the same seed again is fine
    assert store.get_run(run.id).params == {"seed": "42"}
    assert os.environ["PYTHONHASHSEED"] == "42"


def test_seed_goes_into_the_next_run_when_none_is_active(store):
    seed = al.seed_everything()
    assert isinstance(seed, int) and 0 <= seed < 2**32
    with al.start_run() as run:
        pass
    assert store.get_run(run.id).params["seed"] == str(seed)


def test_another_seed_in_the_same_run_warns_and_keeps_the_first(store, monkeypatch):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    from autolog import reporting as safety

    safety.reset_warnings()
    with al.start_run() as run:
        al.seed_everything(1)
        with pytest.warns(safety.AutologWarning, match="keeps its first seed"):
            al.seed_everything(2)
    assert store.get_run(run.id).params["seed"] == "1"


def test_seed_from_environment(monkeypatch):
    monkeypatch.setenv("AUTOLOG_SEED", "99")
    assert al.seed_everything() == 99
    assert al.seed_everything(5) == 5  # an explicit seed wins
    api._pending_params.clear()


@pytest.mark.parametrize("bad", ["1", 1.5, True, -1, 2**32])
def test_bad_seeds(bad):
    with pytest.raises((TypeError, ValueError), match="seed"):
        al.seed_everything(bad)


def test_deterministic_mode_is_switched_on_and_tagged(store):
    import torch

    with al.start_run() as run:
        al.seed_everything(3, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    tag = store.get_run(run.id).tags["seed.deterministic"]
    for switch in ("torch.use_deterministic_algorithms", "torch.backends.cudnn.deterministic", "CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS"):
        assert switch in tag
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_deterministic_tag_waits_for_the_next_run(store):
    al.seed_everything(3, deterministic=True)
    with al.start_run() as run:
        pass
    assert "torch.use_deterministic_algorithms" in store.get_run(run.id).tags["seed.deterministic"]


DEFERRED = textwrap.dedent("""
    import json, sys
    import autolog
    autolog.seed_everything(11)
    imported_by_us = [m for m in ("torch", "numpy", "keras") if m in sys.modules]
    import numpy, torch
    print(json.dumps({
        "imported_by_us": imported_by_us,
        "numpy": numpy.random.rand(3).tolist(),
        "torch": torch.rand(3).tolist(),
        "waiting": [sorted(f.waiting) for f in sys.meta_path if type(f).__name__ == "_ImportSeeder"],
        "loader": type(torch.__loader__).__name__,
    }))
""")


def test_frameworks_imported_later_are_seeded_at_import_and_never_imported_by_us(tmp_path):
    import numpy
    import torch

    env = dict(os.environ, AUTOLOG_URI=str(tmp_path / "store"))
    out = subprocess.run([sys.executable, "-c", DEFERRED], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["imported_by_us"] == []
    numpy.random.seed(11)
    torch.manual_seed(11)
    assert got["numpy"] == numpy.random.rand(3).tolist()
    assert got["torch"] == torch.rand(3).tolist()
    assert got["waiting"] == [["keras", "tensorflow"]]  # still waiting only for what was never imported
    assert got["loader"] != "_SeedingLoader"


def test_keras_seeded_at_import_keeps_the_streams_already_drawn_from():
    import random

    import keras
    import numpy
    import torch

    al.seed_everything(5)
    drawn = (random.random(), numpy.random.rand(), torch.rand(1).item())
    expected = (random.random(), numpy.random.rand(), torch.rand(1).item())
    al.seed_everything(5)
    assert drawn == (random.random(), numpy.random.rand(), torch.rand(1).item())
    # What the import hook does when Keras is imported after seed_everything:
    repro._import_seeder.wait_for(["keras"], 5, False)
    repro._import_seeder.imported(keras)
    assert (random.random(), numpy.random.rand(), torch.rand(1).item()) == expected
    assert repro._import_seeder not in sys.meta_path
    api._pending_params.clear()


def test_run_options_turn_capture_and_sampling_off(store):
    with al.start_run(capture_env=False, log_system_metrics=False) as run:
        assert not sysmetrics.is_sampling(run.id)
    rec = store.get_run(run.id)
    assert "python.version" not in rec.tags and not store.list_artifacts(run.id)


def test_configure_sets_the_process_defaults(store):
    repro.configure(capture_env=False, log_system_metrics=False, system_metrics_interval=2.5)
    assert sysmetrics.interval() == 2.5
    with al.start_run() as run:
        assert not sysmetrics.is_sampling(run.id)
    assert "python.version" not in store.get_run(run.id).tags
    with al.start_run(capture_env=True, log_system_metrics=True) as run:  # a run's own option wins
        assert sysmetrics.is_sampling(run.id)
    assert "python.version" in store.get_run(run.id).tags
    repro.configure(capture_env=True)
    with al.start_run() as run:
        pass
    assert "python.version" in store.get_run(run.id).tags


@pytest.mark.parametrize("kwargs", [{"capture_env": "yes"}, {"log_system_metrics": 1}, {"system_metrics_interval": 0}, {"system_metrics_interval": "10"}])
def test_configure_rejects_bad_values(kwargs):
    with pytest.raises((TypeError, ValueError)):
        repro.configure(**kwargs)


def test_hook_is_registered_once_even_after_reload():
    importlib.reload(repro)
    names = [h for h in api.run_start_hooks if getattr(h, "__qualname__", "") == "_on_run_start"]
    assert len(names) == 1
