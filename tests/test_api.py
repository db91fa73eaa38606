"""The fluent API: the active-run stack per thread, start_run/end_run, log_* and last_run."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import autolog as al
from autolog.errors import InvalidState

# No environment capture or system sampler: their background writes are tested elsewhere
# and would blur "nothing was written" and exact metric sets here.
QUIET = {"capture_env": False, "log_system_metrics": False}


class Boom(Exception):
    pass


def test_start_run_ends_finished(store):
    with al.start_run(**QUIET, name="ok", tags={"a": 1}) as run:
        assert al.active_run() is run
        al.log_param("lr", 0.1)
        al.log_params({"bs": 32, "opt": "adam"})
        al.set_tag("stage", "dev")
        al.set_tags({"x": "y"})
        al.log_metric("loss", 0.5)
        al.log_metric("loss", 0.4)
        al.log_metrics({"acc": 0.8, "f1": 0.7}, step=3)
    assert al.active_run() is None
    got = store.get_run(run.id)
    assert got.status == "FINISHED" and got.end_time is not None
    assert got.params == {"lr": "0.1", "bs": "32", "opt": "adam"}
    assert got.tags == {"a": "1", "stage": "dev", "x": "y"}
    assert got.metrics == {"loss": 0.4, "acc": 0.8, "f1": 0.7}
    assert [p.step for p in store.metric_history(run.id, "loss")] == [0, 1]  # auto steps from 0
    assert got.experiment == "Default"


def test_exception_passes_through_unchanged_and_run_fails(store):
    err = Boom("original")
    with pytest.raises(Boom) as info:
        with al.start_run(**QUIET, name="bad") as run:
            al.log_metric("loss", 1.0)
            raise err
    assert info.value is err
    assert store.get_run(run.id).status == "FAILED"
    assert store.get_run(run.id).metrics == {"loss": 1.0}
    assert al.active_run() is None


def test_keyboard_interrupt_reads_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with al.start_run(**QUIET, name="ctrl-c") as run:
            raise KeyboardInterrupt
    assert store.get_run(run.id).status == "KILLED"


def test_second_run_needs_nested(store):
    with al.start_run(**QUIET, name="outer"):
        with pytest.raises(InvalidState, match="already active"):
            al.start_run(**QUIET, name="inner")


def test_nested_runs_record_parent(store):
    al.set_experiment("exp")
    with al.start_run(**QUIET, name="outer") as outer:
        with al.start_run(**QUIET, name="inner", nested=True) as inner:
            assert al.active_run() is inner
            al.log_metric("x", 1.0)
            with al.start_run(**QUIET, name="deepest", nested=True) as deepest:
                pass
        assert al.active_run() is outer
        al.log_metric("y", 2.0)
    assert store.get_run(inner.id).parent_run_id == outer.id
    assert store.get_run(deepest.id).parent_run_id == inner.id
    assert store.get_run(inner.id).experiment == "exp"
    assert store.get_run(outer.id).metrics == {"y": 2.0}
    assert store.get_run(inner.id).metrics == {"x": 1.0}
    assert [r.id for r in store.child_runs(outer.id)] == [inner.id]
    assert al.last_run() is outer


def test_explicit_parent_run_id(store):
    with al.start_run(**QUIET, name="p") as parent:
        pass
    with al.start_run(**QUIET, name="c", parent_run_id=parent.id[:8]) as child:
        assert child.parent_run_id == parent.id
    assert store.get_run(child.id).parent_run_id == parent.id


def test_end_run_and_status(store):
    run = al.start_run(**QUIET, name="manual")
    al.end_run("FAILED")
    assert al.active_run() is None and store.get_run(run.id).status == "FAILED"
    al.end_run()  # no active run: a no-op
    run.end("FINISHED")  # ending twice keeps the first status
    assert store.get_run(run.id).status == "FAILED"


def test_active_run_is_per_thread(store):
    seen = {}

    def worker(i):
        seen[i, "before"] = al.active_run()
        with al.start_run(**QUIET, name=f"thread-{i}") as run:
            for step in range(50):
                al.log_metric("loss", float(i), step=step)
            seen[i] = run
            barrier.wait()
            seen[i, "inside"] = al.active_run()

    barrier = threading.Barrier(3)
    with al.start_run(**QUIET, name="main") as main:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert al.active_run() is main
        al.log_metric("main_only", 1.0)
    for i in range(3):
        assert seen[i, "before"] is None  # a new thread does not inherit the main thread's run
        assert seen[i, "inside"] is seen[i]
        got = store.get_run(seen[i].id)
        assert got.parent_run_id is None and got.metrics == {"loss": float(i)}
        assert store.count_points(seen[i].id) == 50
    assert store.get_run(main.id).metrics == {"main_only": 1.0}


def test_active_run_is_per_asyncio_task(store):
    async def task(i):
        with al.start_run(**QUIET, name=f"task-{i}", nested=True) as run:
            await asyncio.sleep(0.01)
            assert al.active_run() is run
            al.log_metric("i", float(i))
            await asyncio.sleep(0.01)
        return run

    async def main():
        return await asyncio.gather(*(task(i) for i in range(3)))

    runs = asyncio.run(main())
    for i, run in enumerate(runs):
        assert store.get_run(run.id).metrics == {"i": float(i)}
    assert al.active_run() is None


def test_copied_context_sees_the_run(store):
    with al.start_run(**QUIET, name="ctx") as run:
        ctx = contextvars.copy_context()
    assert ctx.run(al.active_run) is run


def test_log_metric_with_no_active_run_starts_one(store):
    assert al.active_run() is None
    al.log_metric("implicit", 3.0)
    run = al.active_run()
    assert run is not None
    al.flush()
    metrics = store.get_run(run.id).metrics
    assert {k: v for k, v in metrics.items() if not k.startswith("system/")} == {"implicit": 3.0}
    assert store.get_run(run.id).status == "RUNNING"
    al.end_run()
    assert store.get_run(run.id).status == "FINISHED"


def test_bad_metric_with_no_active_run_creates_no_run(store):
    for args in [(5, 1.0), ("k", "nope"), ("k", 1.0, "step"), ("../k", 1.0)]:
        with pytest.raises((TypeError, ValueError)):
            al.log_metric(*args)
    assert al.active_run() is None
    assert store.search_runs() == [] and store.list_experiments() == []


def test_last_run(store):
    with al.start_run(**QUIET, name="first") as first:
        pass
    assert al.last_run() is first
    with al.start_run(**QUIET, name="second") as second:
        assert al.last_run() is first  # last_run is the last ended one
    assert al.last_run() is second


def test_set_experiment_and_store(store, tmp_path):
    exp = al.set_experiment("vision")
    assert exp.name == "vision"
    with al.start_run(**QUIET, name="v") as run:
        pass
    assert store.get_run(run.id).experiment == "vision"
    with al.start_run(**QUIET, name="e", experiment="other") as other:
        pass
    assert store.get_run(other.id).experiment == "other"
    second = al.set_store(tmp_path / "second-store")
    try:
        assert al.get_store() is second
        with al.start_run(**QUIET, name="elsewhere") as moved:
            al.log_metric("m", 1.0)
        assert second.get_run(moved.id).metrics == {"m": 1.0}
        with pytest.raises(LookupError):
            store.get_run(moved.id)
    finally:
        al.set_store(store.root)


def test_artifacts_through_the_api(store, tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "d" / "sub" / "b.txt").write_text("b")
    with al.start_run(**QUIET, name="arts") as run:
        al.log_artifact(tmp_path / "d" / "a.txt")
        al.log_artifact(str(tmp_path / "d" / "a.txt"), artifact_path="copies/x")
        al.log_artifacts(tmp_path / "d", artifact_path="tree")
        al.log_text("hi", "notes/hi.txt")
        al.log_dict({"b": [1, 2]}, "cfg.json")
        run.log_bytes(b"\x00\x01", "raw.bin")
    paths = [a.path for a in store.list_artifacts(run.id)]
    assert paths == ["a.txt", "cfg.json", "copies/x/a.txt", "notes/hi.txt", "raw.bin", "tree/a.txt", "tree/sub/b.txt"]
    with open(store.artifact_file(run.id, "cfg.json")) as fh:
        assert '"b"' in fh.read()


def test_active_run_properties_read_back(store):
    with al.start_run(**QUIET, name="props") as run:
        run.log_param("p", 1)
        run.set_tag("t", "v")
        run.log_metric("m", 2.0)
        assert run.params == {"p": "1"}
        assert run.tags == {"t": "v"}
        assert run.metrics == {"m": 2.0}  # reading flushes first
        assert run.info.status == "RUNNING"


def test_end_hooks_run_before_end(store):
    calls = []
    with al.start_run(**QUIET, name="hooks") as run:
        run.add_end_hook(lambda r, status: calls.append((r.id, status, store.get_run(r.id).status)))
    assert calls == [(run.id, "FINISHED", "RUNNING")]


def test_bad_input_without_active_run_creates_no_run(store):
    import pytest as _pytest

    for call in (
        lambda: al.log_param("../x", 1),
        lambda: al.log_params(["not", "a", "dict"]),
        lambda: al.set_tag("", "v"),
        lambda: al.set_tags({"/abs": 1}),
        lambda: al.log_artifact("does-not-exist.txt"),
        lambda: al.log_artifacts("no-such-folder"),
        lambda: al.log_text(b"bytes", "a.txt"),
        lambda: al.log_dict({}, "../escape.json"),
        lambda: al.log_metrics({"ok": 1.0, "bad": "x"}),
    ):
        with _pytest.raises((TypeError, ValueError)):
            call()
    assert al.active_run() is None
    assert store.search_runs() == []


def test_metric_goal_is_recorded_once_as_a_tag():
    with al.start_run() as run:
        al.log_metric("val_mae", 3.2, step=1, goal="min")
        al.log_metric("val_mae", 3.0, step=2, goal="min")
        al.set_metric_goal("auc", "max")
        run.set_metric_goal("loss", "min")
    tags = al.open_store().get_run(run.id).tags
    assert tags["autolog.goal.val_mae"] == "min"
    assert tags["autolog.goal.auc"] == "max"
    assert tags["autolog.goal.loss"] == "min"


def test_metric_goal_must_be_min_or_max():
    with al.start_run():
        with pytest.raises(ValueError, match="'best'"):
            al.log_metric("x", 1.0, goal="best")
        with pytest.raises(ValueError, match="goal"):
            al.set_metric_goal("x", "up")


def test_timed_points_keep_their_own_steps_values_and_times(store):
    with al.start_run(capture_env=False, log_system_metrics=False) as run:
        run.log_metric("loss", 9.0, step=0)
        run.log_timed_points([("loss", 1, 0.5, 1000.25), ("acc", 1, 0.75, 1000.5), ("loss", 2, float("nan"), 1001.0)])
        with pytest.raises(ValueError, match="must not start with '/' or contain '..'"):
            run.log_timed_points([("../bad", 3, 1.0, 1002.0)])
    loss = store.metric_history(run.id, "loss")
    assert [(m.step, m.timestamp) for m in loss[1:]] == [(1, 1_000_250), (2, 1_001_000)]
    assert loss[1].value == 0.5 and loss[2].value != loss[2].value
    assert [(m.step, m.value, m.timestamp) for m in store.metric_history(run.id, "acc")] == [(1, 0.75, 1_000_500)]
