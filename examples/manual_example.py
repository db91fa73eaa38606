"""The "fake box" of the seeds: a model whose AUC rises per epoch, tracked by hand.

Run: python examples/manual_example.py   (writes into ./autolog-runs or $AUTOLOG_URI)
"""

from __future__ import annotations

import random

import autolog as al


class FakeBox:
    """A stand-in model: its train AUC rises a little every epoch, test AUC trails it."""

    def __init__(self, n_estimators: int, n_neurons: int) -> None:
        self.n_estimators = n_estimators
        self.n_neurons = n_neurons

    def fit(self, n_epochs: int = 30) -> float:
        perf = 0.5
        for epoch in range(n_epochs):
            perf = round(min(1.0, perf + random.uniform(0, 1.0 / (n_epochs * perf))), 4)
            perf_test = round(perf - random.uniform(0, perf * 2 / 100), 4)
            al.log_metrics({"auc_train": perf, "auc_test": perf_test}, step=epoch)
        return perf_test


def main() -> None:
    al.set_experiment("fake-box")
    seed = al.seed_everything(9)
    for n_estimators, n_neurons in ((10, 32), (50, 64)):
        with al.start_run(name=f"fake-box-{n_estimators}x{n_neurons}"):
            al.log_params({"n_estimators": n_estimators, "n_neurons": n_neurons})
            final = FakeBox(n_estimators, n_neurons).fit()
            al.set_tag("note", "manual tracking demo")
            print(f"fake box {n_estimators}x{n_neurons} (seed {seed}): test AUC {final}")


if __name__ == "__main__":
    main()
