"""The TensorBoard integration against torch's real SummaryWriter and TensorBoard's own reader."""

from __future__ import annotations

import gc
import os
import struct

import pytest

pytest.importorskip("tensorboard", reason="pip install 'autolog[tensorboard]'")
pytest.importorskip("torch", reason="pip install 'autolog[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.compat.proto.event_pb2 import Event  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from torch.utils.tensorboard.writer import SummaryWriter as WriterClass  # noqa: E402

import autolog as al  # noqa: E402
from autolog.integrations import tensorboard as al_tb  # noqa: E402


@pytest.fixture
def enabled():
    al.autolog(only=["tensorboard"], log_models=False, capture_env=False, log_system_metrics=False)
    yield


def _history(store, run_id, key):
    return [(p.step, p.value) for p in store.metric_history(run_id, key)]


def _paths(store, run_id, prefix=""):
    return [a.path for a in store.list_artifacts(run_id, prefix)]


def test_writer_inside_user_run_logs_into_it_and_leaves_it_open(enabled, store, tmp_path):
    with al.start_run(name="mine") as run:
        writer = SummaryWriter(str(tmp_path / "logs" / "exp"))
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_scalar("lr", 0.1)
        writer.add_scalar("lr", 0.05)
        assert al_tb.writer_run(writer) is run
        writer.close()
        assert not run.ended
        assert any(p.startswith("tensorboard/exp/events.out.tfevents.") for p in _paths(store, run.id))
    assert [r.id for r in store.search_runs()] == [run.id]
    assert store.get_run(run.id).status == "FINISHED"
    assert _history(store, run.id, "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert _history(store, run.id, "lr") == [(0, 0.1), (1, 0.05)]  # auto-increment per tag


def test_writer_without_a_run_gets_one_run_named_after_its_log_dir(enabled, store, tmp_path):
    first = SummaryWriter(str(tmp_path / "runs" / "alpha"))
    second = SummaryWriter(str(tmp_path / "runs" / "beta"))
    for step in range(50):
        first.add_scalar("loss", float(step), step)
        second.add_scalar("loss", float(-step), step)
    # The writers' runs are not the active run: the user's own runs still start.
    assert al.active_run() is None
    with al.start_run(name="beside") as user_run:
        first.add_scalar("extra", 1.0, 0)
    assert al_tb.writer_run(first) is not user_run
    runs = {r.name.rsplit("-", 1)[0]: r for r in store.search_runs()}
    assert set(runs) == {"alpha", "beta", "beside"}
    assert runs["alpha"].status == "RUNNING"
    first.close()
    second.close()
    alpha, beta = store.get_run(runs["alpha"].id), store.get_run(runs["beta"].id)
    assert alpha.status == beta.status == "FINISHED"
    assert alpha.tags["autolog.integration"] == "tensorboard"
    assert alpha.tags["tensorboard.log_dir"] == str(tmp_path / "runs" / "alpha")
    assert len(store.metric_history(alpha.id, "loss")) == 50
    assert _history(store, beta.id, "loss")[-1] == (49, -49.0)
    assert _history(store, alpha.id, "extra") == [(0, 1.0)]
    assert "extra" not in store.get_run(user_run.id).metrics
    assert al.last_run().id in (alpha.id, beta.id)


def test_add_scalars_hparams_and_text(enabled, store, tmp_path):
    with SummaryWriter(str(tmp_path / "exp")) as writer:
        writer.add_scalars("loss", {"train": 0.5, "val": 0.7}, 3)
        writer.add_scalars("loss", {"train": 0.4, "val": 0.6}, global_step=4)
        writer.add_hparams({"lr": 0.01, "opt": "adam", "api_token": "s3cret"}, {"hparam/acc": 0.9},
                           run_name="hp")
        writer.add_text("notes", "first note", 0)
        writer.add_text("notes", "second note", 1)
        writer.add_text("a/b", "nested tag")
        run = al_tb.writer_run(writer)
    data = store.get_run(run.id)
    assert data.status == "FINISHED"
    assert _history(store, run.id, "loss/train") == [(3, 0.5), (4, 0.4)]
    assert _history(store, run.id, "loss/val") == [(3, 0.7), (4, 0.6)]
    (trial,) = store.child_runs(run.id)  # add_hparams is a trial of its own, as TensorBoard shows it
    assert trial.name.startswith("exp-hp-")
    assert store.get_run(trial.id).params == {"lr": "0.01", "opt": "adam", "api_token": "***"}
    assert store.get_run(trial.id).metrics == {"hparam/acc": 0.9}
    assert data.params == {}
    with open(store.artifact_file(run.id, "tensorboard_text/notes.txt"), encoding="utf-8") as fh:
        notes = fh.read()
    assert notes.index("first note") < notes.index("second note") and "## step 1" in notes
    assert "tensorboard_text/a/b.txt" in _paths(store, run.id)
    # add_scalars and add_hparams write into sub-folders of the log_dir: uploaded too.
    folders = {p.rsplit("/", 1)[0] for p in _paths(store, run.id, "tensorboard")}
    assert folders == {"tensorboard/exp", "tensorboard/exp/loss_train", "tensorboard/exp/loss_val", "tensorboard/exp/hp"}


def test_event_files_are_readable_by_tensorboard(enabled, store, tmp_path):
    writer = SummaryWriter(str(tmp_path / "logs" / "reader"))
    for step in range(20):
        writer.add_scalar("train/loss", 10.0 - step, step)
    writer.close()
    run_id = store.search_runs()[0].id
    copy = store.download_artifacts(run_id, "tensorboard/reader", str(tmp_path / "copy"))
    acc = EventAccumulator(copy)
    acc.Reload()
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == list(range(20))
    assert [e.value for e in events] == [10.0 - s for s in range(20)]


def test_flush_uploads_only_new_event_data(enabled, store, tmp_path, monkeypatch):
    monkeypatch.setattr(al_tb, "SYNC_INTERVAL_S", 0.0)
    uploads = []
    original = type(store).log_artifact

    def counting(self, run_id, local_path, path=None):
        uploads.append(path)
        return original(self, run_id, local_path, path)

    monkeypatch.setattr(type(store), "log_artifact", counting)
    with al.start_run() as run:
        writer = SummaryWriter(str(tmp_path / "long"))
        writer.add_scalar("loss", 1.0, 0)
        writer.flush()
        # add_scalar may already have synced the file's header (the writer writes in a
        # thread of its own); after the flush the whole file is there.
        first = len(uploads)
        assert first >= 1
        size_1 = store.list_artifacts(run.id, "tensorboard")[0].size
        writer.flush()  # nothing new on disk: nothing uploaded again
        assert len(uploads) == first
        writer.add_scalar("loss", 0.5, 1)
        writer.flush()
        assert len(uploads) > first
        assert store.list_artifacts(run.id, "tensorboard")[0].size > size_1
        writer.close()
    assert len(store.list_artifacts(run.id, "tensorboard")) == 1


def test_files_of_an_earlier_job_in_a_reused_log_dir_are_not_uploaded(enabled, store, tmp_path):
    log_dir = str(tmp_path / "reused")
    with al.start_run() as first:
        with SummaryWriter(log_dir) as writer:
            writer.add_scalar("loss", 1.0, 0)
    with al.start_run() as second:
        with SummaryWriter(log_dir) as writer:
            writer.add_scalar("loss", 2.0, 0)
    old, new = _paths(store, first.id, "tensorboard"), _paths(store, second.id, "tensorboard")
    assert len(old) == len(new) == 1 and old != new
    assert len(os.listdir(log_dir)) == 2


def test_user_run_ending_uploads_an_open_writers_files(enabled, store, tmp_path):
    writer = SummaryWriter(str(tmp_path / "open"))
    with al.start_run() as run:
        writer.add_scalar("loss", 3.0, 0)
    assert _paths(store, run.id, "tensorboard")
    copy = store.download_artifacts(run.id, "tensorboard/open", str(tmp_path / "copy"))
    acc = EventAccumulator(copy)
    acc.Reload()
    assert [e.value for e in acc.Scalars("loss")] == [3.0]
    writer.close()
    assert len(store.search_runs()) == 1


def test_unclosed_writer_run_ends_when_the_writer_is_collected(enabled, store, tmp_path):
    writer = SummaryWriter(str(tmp_path / "dropped"))
    writer.add_scalar("loss", 1.0, 0)
    run_id = al_tb.writer_run(writer).id
    del writer
    gc.collect()
    assert store.get_run(run_id).status == "FINISHED"
    assert _paths(store, run_id, "tensorboard")


def test_exception_in_with_block_marks_the_writer_run_failed(enabled, store, tmp_path):
    with pytest.raises(RuntimeError):
        with SummaryWriter(str(tmp_path / "boom")) as writer:
            writer.add_scalar("loss", 1.0, 0)
            raise RuntimeError("boom")
    assert store.search_runs()[0].status == "FAILED"


def test_exclusive_logs_only_into_user_runs(store, tmp_path):
    al.autolog(only=["tensorboard"], exclusive=True)
    with SummaryWriter(str(tmp_path / "excl")) as writer:
        writer.add_scalar("loss", 1.0, 0)
    assert store.search_runs() == []
    with al.start_run() as run:
        with SummaryWriter(str(tmp_path / "excl2")) as writer:
            writer.add_scalar("loss", 1.0, 0)
    # (system/... samples may land in the user's run too on a slow machine)
    assert {k: v for k, v in store.get_run(run.id).metrics.items() if not k.startswith("system/")} == {"loss": 1.0}


def test_disable_restores_the_original_methods():
    originals = {name: WriterClass.__dict__[name] for name in ("__init__", "add_scalar", "add_scalars", "flush", "close")}
    al.autolog(only=["tensorboard"])
    assert WriterClass.__dict__["add_scalar"] is not originals["add_scalar"]
    al.autolog(only=["tensorboard"], disable=True)
    for name, original in originals.items():
        assert WriterClass.__dict__[name] is original
    assert SummaryWriter.add_scalar is originals["add_scalar"]


# -- the writer's own files do not change ------------------------------------------------
def _records(path):
    with open(path, "rb") as fh:
        data = fh.read()
    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        records.append(data[offset:offset + 12 + length + 4])
        offset += 12 + length + 4
    return records


def _write_everything(log_dir):
    writer = SummaryWriter(log_dir)
    for step in range(5):
        writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=1000.0 + step)
    writer.add_scalar("auto", 2.0, walltime=1010.0)
    writer.add_scalars("pair", {"a": 1.0, "b": 2.0}, 7, walltime=1020.0)
    writer.add_text("notes", "hello", 1, walltime=1030.0)
    writer.add_hparams({"lr": 0.1}, {"hparam/score": 0.5}, run_name="hp")
    writer.close()


def _event_files(log_dir):
    found = {}
    for folder, _dirs, names in os.walk(log_dir):
        for name in names:
            found.setdefault(os.path.relpath(folder, log_dir), []).append(os.path.join(folder, name))
    return found


def test_writer_files_are_identical_with_and_without_autolog(store, tmp_path):
    _write_everything(str(tmp_path / "plain"))
    al.autolog(only=["tensorboard"])
    with al.start_run() as run:
        _write_everything(str(tmp_path / "logged"))
    assert run.metrics["loss"] == 0.2
    plain, logged = _event_files(str(tmp_path / "plain")), _event_files(str(tmp_path / "logged"))
    assert sorted(plain) == sorted(logged) == [".", "hp", "pair_a", "pair_b"]
    for folder in plain:
        (a,), (b,) = plain[folder], logged[folder]
        ra, rb = _records(a), _records(b)
        assert len(ra) == len(rb)
        if folder == "hp":  # add_hparams takes no walltime: compare the events without it
            ea, eb = [Event.FromString(r[12:-4]) for r in ra], [Event.FromString(r[12:-4]) for r in rb]
            for event in ea + eb:
                event.wall_time = 0
            assert ea == eb
        else:
            # The first record (file version) carries the file's creation time; the rest are byte-identical.
            assert ra[1:] == rb[1:]
            assert Event.FromString(ra[0][12:-4]).file_version == Event.FromString(rb[0][12:-4]).file_version


# -- no double capture -------------------------------------------------------------------
def test_lightning_tensorboard_logger_inside_an_autologged_fit_is_not_captured_twice(store, tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="pip install 'autolog[lightning]'")
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
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
            return torch.optim.SGD(self.parameters(), lr=0.01)

    al.autolog(only=["lightning", "tensorboard"], log_models=False, capture_env=False, log_system_metrics=False)
    x = torch.arange(32, dtype=torch.float32).reshape(16, 2) / 32
    trainer = pl.Trainer(max_epochs=2, logger=TensorBoardLogger(str(tmp_path / "tb")), log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), DataLoader(TensorDataset(x, x[:, :1]), batch_size=4))
    runs = store.search_runs()
    assert [r.tags.get("autolog.integration") for r in runs] == ["lightning"]
    history = store.metric_history(runs[0].id, "loss")
    steps = [p.step for p in history]
    assert len(steps) == 8 and len(set(steps)) == len(steps)  # each scalar once
    assert os.listdir(str(tmp_path / "tb" / "lightning_logs" / "version_0"))  # the logger still wrote its files


# -- real scripts: hparams sweeps, writers closed and reused, projector files, Ctrl-C -------------
def test_each_add_hparams_call_is_its_own_trial_run(enabled, store, tmp_path):
    # torch's own add_hparams docstring example: five trials through one writer.
    with SummaryWriter(str(tmp_path / "sweep")) as w:
        for i in range(5):
            w.add_hparams({"lr": 0.1 * i, "bsize": i}, {"hparam/accuracy": 10 * i, "hparam/loss": 10 * i})
        parent = al_tb.writer_run(w)
    trials = store.child_runs(parent.id)
    assert len(trials) == 5
    by_bsize = {int(r.params["bsize"]): store.get_run(r.id) for r in trials}
    assert sorted(by_bsize) == [0, 1, 2, 3, 4]
    for i, run in by_bsize.items():
        assert run.params == {"lr": str(0.1 * i), "bsize": str(i)}
        assert run.metrics == {"hparam/accuracy": 10.0 * i, "hparam/loss": 10.0 * i}
        assert run.status == "FINISHED" and run.tags["autolog.integration"] == "tensorboard"
    assert store.get_run(parent.id).params == {}  # no trial's params on the writer's own run
    assert "hparam/accuracy" not in store.get_run(parent.id).metrics
    assert len(store.search_runs()) == 6


def test_a_closed_writer_written_again_continues_its_run(enabled, store, tmp_path):
    log_dir = str(tmp_path / "again")
    writer = SummaryWriter(log_dir)
    writer.add_scalar("loss", 1.0, 0)
    writer.close()
    run_id = store.search_runs()[0].id
    assert store.get_run(run_id).status == "FINISHED"
    writer.add_scalar("loss", 0.5, 1)  # torch opens a new event file after close()
    assert store.get_run(run_id).status == "RUNNING"
    writer.close()
    again = SummaryWriter(log_dir)  # the same log dir later in the process: still the same run
    again.add_scalar("loss", 0.25, 2)
    again.close()
    assert [r.id for r in store.search_runs()] == [run_id]
    assert store.get_run(run_id).status == "FINISHED"
    assert _history(store, run_id, "loss") == [(0, 1.0), (1, 0.5), (2, 0.25)]
    on_disk = sorted(os.path.basename(p) for p in os.listdir(log_dir))
    assert len(on_disk) == 3
    assert sorted(p.rsplit("/", 1)[1] for p in _paths(store, run_id, "tensorboard")) == on_disk


def test_pr_curves_written_after_close_are_stored(enabled, store, tmp_path):
    # PyTorch's TensorBoard tutorial: add_pr_curve then writer.close() inside the loop, per class.
    import torch

    writer = SummaryWriter(str(tmp_path / "fashion_mnist_experiment_1"))
    writer.add_scalar("training loss", 0.7, 0)
    probs, labels = torch.rand(40, 10, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 10
    for class_index in range(10):
        writer.add_pr_curve(str(class_index), labels == class_index, probs[:, class_index], global_step=0)
        writer.close()
    runs = store.search_runs()
    assert len(runs) == 1 and runs[0].status == "FINISHED"
    stored = {p.rsplit("/", 1)[1] for p in _paths(store, runs[0].id, "tensorboard")}
    on_disk = set(os.listdir(tmp_path / "fashion_mnist_experiment_1"))
    assert len(on_disk) == 10 and stored == on_disk


def test_projector_files_are_stored(enabled, store, tmp_path):
    import torch

    with al.start_run() as run:
        with SummaryWriter(str(tmp_path / "proj")) as writer:
            writer.add_scalar("loss", 1.0, 0)
            writer.add_embedding(torch.randn(6, 3), metadata=list("abcdef"), label_img=torch.rand(6, 3, 8, 8))
    paths = _paths(store, run.id, "tensorboard/proj")
    names = {p.rsplit("/", 1)[1] for p in paths}
    assert {"tensors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"} <= names
    local = str(tmp_path / "proj" / "projector_config.pbtxt")
    with open(local, "rb") as fh, open(store.artifact_file(run.id, "tensorboard/proj/projector_config.pbtxt"), "rb") as kept:
        assert kept.read() == fh.read()


CTRL_C_SCRIPT = """
import sys, time
import autolog
autolog.autolog(only=["tensorboard"], capture_env=False, log_system_metrics=False)
from torch.utils.tensorboard import SummaryWriter
writer = SummaryWriter(sys.argv[1])
step = 0
while True:
    writer.add_scalar("loss", 1.0 / (step + 1), step)
    if step == 3:
        print("READY", flush=True)
    step += 1
    time.sleep(0.01)
"""


def test_ctrl_c_during_a_writer_script_leaves_its_run_killed_or_failed(store, tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "loop.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "interrupted")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in err
    runs = store.search_runs()
    assert len(runs) == 1
    assert runs[0].status in ("KILLED", "FAILED")
    assert len(store.metric_history(runs[0].id, "loss")) >= 4
    assert _paths(store, runs[0].id, "tensorboard")


AFTER_CLOSE_SCRIPT = """
import sys
import autolog
autolog.autolog(only=["tensorboard"], capture_env=False, log_system_metrics=False)
import torch
from torch.utils.tensorboard import SummaryWriter
writer = SummaryWriter(sys.argv[1])
writer.add_scalar("loss", 1.0, 0)
writer.close()
writer.add_pr_curve("cat", torch.tensor([True, False, True]), torch.tensor([0.9, 0.2, 0.6]), 0)  # and no close()
"""


def test_files_written_after_the_last_close_are_stored_at_exit(store, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "after_close.py"
    script.write_text(AFTER_CLOSE_SCRIPT)
    subprocess.run([sys.executable, str(script), str(tmp_path / "curves")], cwd=tmp_path, check=True, timeout=120,
                   capture_output=True)
    (run,) = store.search_runs()
    assert run.status == "FINISHED"
    on_disk = sorted(os.listdir(tmp_path / "curves"))
    assert len(on_disk) == 2
    assert sorted(p.rsplit("/", 1)[1] for p in _paths(store, run.id, "tensorboard")) == on_disk
    copy = store.download_artifacts(run.id, "tensorboard/curves", str(tmp_path / "copy"))
    acc = EventAccumulator(copy)
    acc.Reload()
    assert "cat" in acc.Tags()["tensors"]  # the PR curve's data, not just the file's header


def test_two_writers_on_one_log_dir_share_its_run(enabled, store, tmp_path):
    first, second = SummaryWriter(str(tmp_path / "shared")), SummaryWriter(str(tmp_path / "shared"))
    first.add_scalar("a", 1.0, 0)
    second.add_scalar("b", 2.0, 0)
    assert al_tb.writer_run(first) is al_tb.writer_run(second)
    first.close()
    second.add_scalar("b", 3.0, 1)  # the run ended with the first close: continued, not duplicated
    second.close()
    (run,) = store.search_runs()
    assert run.status == "FINISHED"
    assert _history(store, run.id, "b") == [(0, 2.0), (1, 3.0)] and _history(store, run.id, "a") == [(0, 1.0)]
    assert len(_paths(store, run.id, "tensorboard")) == len(os.listdir(tmp_path / "shared")) == 2


def test_a_metric_logged_after_a_sweep_does_not_land_in_a_trial(enabled, store, tmp_path):
    w = SummaryWriter(str(tmp_path / "sweep2"))
    for i in range(2):
        w.add_hparams({"lr": 0.1 * i}, {"hparam/accuracy": 10 * i})
    al.log_metric("summary", 1.0)  # no active run, no fit ended: a run of its own
    (own,) = [r for r in store.search_runs() if "summary" in r.metrics]
    assert own.parent_run_id is None and own.tags.get("autolog.integration") is None
    al.end_run()
    w.close()
