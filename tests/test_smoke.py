"""A first end-to-end check of the fluent API and the store."""

import autolog as al


def test_logged_run_reads_back(store):
    with al.start_run(name="smoke") as run:
        al.log_param("lr", 0.1)
        for i in range(10):
            al.log_metric("loss", 1.0 / (i + 1), step=i)
    got = store.get_run(run.id)
    assert got.status == "FINISHED"
    assert got.params == {"lr": "0.1"}
    assert got.metrics["loss"] == 0.1
    assert [p.step for p in store.metric_history(run.id, "loss")] == list(range(10))
