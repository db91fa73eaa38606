"""``autolog run``: real programs run unedited with autolog enabled, through the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SKLEARN_SCRIPT = """
import sys
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

C = float(sys.argv[sys.argv.index("--C") + 1])
X, y = make_classification(n_samples=200, random_state=0)
model = LogisticRegression(C=C).fit(X, y)
print("accuracy", model.score(X, y))
if "--crash" in sys.argv:
    raise RuntimeError("boom after training")
if "--exit" in sys.argv:
    sys.exit(int(sys.argv[sys.argv.index("--exit") + 1]))
"""


def autolog_run(store, *args: str, cwd, timeout: float = 180, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", **(env_extra or {}))
    env.pop("AUTOLOG_URI", None)  # --store alone must pick the store
    cmd = [sys.executable, "-m", "autolog", "--store", store.root, "run", "--no-models", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def only_run(store):
    runs = store.search_runs()
    assert len(runs) == 1, [(r.name, r.status) for r in runs]
    return store.get_run(runs[0].id)


def test_a_script_runs_unedited_into_one_run_with_its_output_and_command(store, tmp_path):
    (tmp_path / "train.py").write_text(SKLEARN_SCRIPT)
    done = autolog_run(store, "--experiment", "zero-code", "--tags", "team=vision", "--", "python", "train.py", "--C", "0.5",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("accuracy 0.9")  # the program's own output passes through
    run = only_run(store)
    assert run.status == "FINISHED" and run.experiment == "zero-code"
    assert run.name.startswith("train-")
    assert run.params["C"] == "0.5" and "training_accuracy_score" in run.metrics
    assert run.tags["team"] == "vision"
    assert run.tags["autolog.run_command"].endswith("-- " + sys.executable + " train.py --C 0.5")
    assert run.tags["source.entry_point"] == "train.py" or run.tags["source.entry_point"].endswith("train.py")


def test_script_given_directly_and_python_dash_m_autolog(store, tmp_path):
    (tmp_path / "train.py").write_text(SKLEARN_SCRIPT)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("AUTOLOG_URI", None)
    done = subprocess.run([sys.executable, "-m", "autolog", "--store", store.root, "train.py", "--C", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert only_run(store).params["C"] == "2.0"


def test_python_dash_m_module(store, tmp_path):
    pkg = tmp_path / "proj"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(SKLEARN_SCRIPT)
    done = autolog_run(store, "--run-name", "by-module", "--", "python", "-m", "proj.train", "--C", "0.25", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = only_run(store)
    assert run.name == "by-module" and run.params["C"] == "0.25"
    assert run.tags["source.entry_point"] == "-m proj.train"


@pytest.mark.parametrize(("flag", "code"), [("--crash", 1), ("--exit", 3)])
def test_a_failing_program_marks_its_run_failed_and_keeps_its_exit_code(store, tmp_path, flag, code):
    (tmp_path / "train.py").write_text(SKLEARN_SCRIPT)
    args = ["--", "python", "train.py", "--C", "1", flag] + (["3"] if flag == "--exit" else [])
    done = autolog_run(store, *args, cwd=tmp_path)
    assert done.returncode == code, done.stderr[-3000:]
    if flag == "--crash":
        assert "RuntimeError: boom after training" in done.stderr
    assert only_run(store).status == "FAILED"


def test_ctrl_c_passes_through_and_leaves_the_run_killed(store, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time, autolog\nautolog.log_metric('x', 1.0)\nprint('ready', flush=True)\ntime.sleep(120)\n")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("AUTOLOG_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "autolog", "--store", store.root, "run", "--", "python", str(script)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)  # exec: the program itself gets it, as under a terminal
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert only_run(store).status == "KILLED"


def test_sigterm_is_the_programs_and_its_run_reads_killed(store, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time, autolog\nautolog.log_metric('x', 1.0)\nprint('ready', flush=True)\ntime.sleep(120)\n")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("AUTOLOG_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "autolog", "--store", store.root, "run", "--", "python", str(script)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert only_run(store).status == "KILLED"


def test_the_scripts_own_runs_nest_under_the_program_run(store, tmp_path):
    script = tmp_path / "manual.py"
    script.write_text(textwrap.dedent("""
        import autolog as al
        with al.start_run(name="mine") as run:
            al.log_metric("loss", 0.5)
    """))
    done = autolog_run(store, "--run-name", "program", "--", "python", str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = {r.name: r for r in store.search_runs()}
    assert set(runs) == {"program", "mine"}
    assert runs["mine"].parent_run_id == runs["program"].id
    assert runs["mine"].metrics["loss"] == 0.5


def test_seed_is_applied_before_the_program_starts(store, tmp_path):
    script = tmp_path / "draw.py"
    script.write_text("import random\nprint(random.random())\n")
    first = autolog_run(store, "--seed", "7", "--", "python", str(script), cwd=tmp_path)
    second = autolog_run(store, "--seed", "7", "--", "python", str(script), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout == second.stdout
    assert {r.params.get("seed") for r in store.search_runs()} == {"7"}


def test_reproduce_runs_it_again_through_autolog_run(store, tmp_path):
    (tmp_path / "train.py").write_text(SKLEARN_SCRIPT)
    assert autolog_run(store, "--seed", "3", "--", "python", "train.py", "--C", "0.5", cwd=tmp_path).returncode == 0
    from autolog.cli.reproduce import plan

    text, _problems = plan(store, only_run(store).id, reuse_env=True)
    command = [line for line in text.splitlines() if "autolog run" in line or "-m autolog" in line]
    assert command and "-m autolog run --seed 3 --no-models -- " in command[0] and command[0].endswith("train.py --C 0.5")


def test_a_missing_program_is_a_clear_error(store, tmp_path):
    done = autolog_run(store, "--", "no-such-program-xyz", cwd=tmp_path)
    assert done.returncode == 2 and "no-such-program-xyz" in done.stderr
    done = autolog_run(store, cwd=tmp_path)
    assert done.returncode == 2 and "needs a program" in done.stderr


def test_bootstrap_chains_to_an_existing_sitecustomize(store, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['SITE_WAS_HERE'] = '1'\n")
    script = tmp_path / "check.py"
    script.write_text("import os\nprint(os.environ.get('SITE_WAS_HERE'))\n")
    done = autolog_run(store, "--", "python", str(script), cwd=tmp_path, env_extra={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "1"



CLI_APP = """#!{python}
import torch, lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from torch.utils.data import DataLoader, TensorDataset


class Net(pl.LightningModule):
    def __init__(self, hidden: int = 4, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self):
        x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
        return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


if __name__ == "__main__":
    LightningCLI(Net, save_config_kwargs={{"overwrite": True}})
"""


def test_a_lightning_cli_console_script_with_fit(store, tmp_path):
    pytest.importorskip("lightning", reason="pip install 'autolog[lightning]'")
    pytest.importorskip("jsonargparse", reason="LightningCLI needs jsonargparse")
    app = tmp_path / "bin" / "trainer-cli"
    app.parent.mkdir()
    app.write_text(CLI_APP.format(python=sys.executable))
    app.chmod(0o755)
    env = {"PATH": f"{app.parent}{os.pathsep}{os.environ['PATH']}"}
    done = autolog_run(store, "--", "trainer-cli", "fit", "--model.hidden", "6", "--trainer.max_epochs", "2",
                       "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
                       "--trainer.enable_progress_bar", "false", cwd=tmp_path, env_extra=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = only_run(store)
    assert run.status == "FINISHED" and run.name.startswith("trainer-cli-")
    assert run.params["hidden"] == "6" and run.params["max_epochs"] == "2"
    assert "loss" in run.metrics


DDP_SCRIPT = """
import torch, lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset

class MLP(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("loss", loss)
        return loss
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

if __name__ == "__main__":
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    trainer = pl.Trainer(strategy="ddp", devices=2, accelerator="cpu", max_epochs=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(MLP(), data)
    print("RANK", trainer.global_rank, "DONE", flush=True)
"""


def test_a_two_process_ddp_job_is_one_run(store, tmp_path):
    pytest.importorskip("lightning", reason="pip install 'autolog[lightning]'")
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    done = autolog_run(store, "--", "python", str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    run = only_run(store)
    assert run.status == "FINISHED" and run.params["world_size"] == "2"
    assert "loss" in run.metrics


PROBE = """
import json, os, sys
print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "file": globals().get("__file__"), "name": __name__,
                  "spec": getattr(__spec__, "name", None), "orig": sys.orig_argv[1:], "main": sorted(vars(sys.modules["__main__"])),
                  "in_process": "autolog.cli.run" in sys.modules}))
if "--crash" in sys.argv:
    raise ValueError("probe crashed")
"""


@pytest.mark.parametrize("form", ["script", "module", "code"])
def test_a_plain_python_program_sees_what_python_would_show_it(store, tmp_path, form):
    # Run in the autolog process itself (no second interpreter start), set up as `python` sets it up.
    import json

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "probe.py").write_text(PROBE)
    args = {"script": ["pkg/probe.py", "a", "--b"], "module": ["-m", "pkg.probe", "a"], "code": ["-c", PROBE, "a"]}[form]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("AUTOLOG_URI", None)
    plain = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    ours = autolog_run(store, "--", "python", *args, cwd=tmp_path)
    assert plain.returncode == 0 and ours.returncode == 0, ours.stderr[-3000:]
    expected, got = json.loads(plain.stdout), json.loads(ours.stdout)
    assert got.pop("in_process") is True and expected.pop("in_process") is False
    assert got == expected
    run = only_run(store)
    assert run.status == "FINISHED"
    assert run.tags["source.entry_point"].endswith({"script": "pkg/probe.py", "module": "-m pkg.probe", "code": "interactive"}[form])


def test_a_crash_prints_the_programs_own_traceback(store, tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    done = autolog_run(store, "--", "python", "probe.py", "--crash", cwd=tmp_path)
    assert done.returncode == 1
    tb = done.stderr[done.stderr.index("Traceback"):]
    assert 'probe.py", line 7, in <module>' in tb and "ValueError: probe crashed" in tb
    assert "autolog" not in tb.split("\n")[1]  # the first frame is the program's, as under python
    assert only_run(store).status == "FAILED"


def test_interpreter_options_still_run_through_exec(store, tmp_path):
    import json

    (tmp_path / "probe.py").write_text(PROBE)
    done = autolog_run(store, "--", "python", "-X", "utf8", "probe.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert got["in_process"] is False and got["orig"] == ["-X", "utf8", "probe.py"]
    # Options of the interpreter running autolog itself are not the program's: `python -O -m autolog run ...`.
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("AUTOLOG_URI", None)
    done = subprocess.run([sys.executable, "-O", "-m", "autolog", "--store", store.root, "run", "--", "python", "probe.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["in_process"] is False
    assert {r.status for r in store.search_runs()} == {"FINISHED"}


@pytest.mark.parametrize("argv", [
    ["run", "--", "python", "-c", "pass"], ["run", "train.py", "--lr", "0.1", "--store", "X"], ["run", "python", "--", "x.py"],
    ["--store", "S", "run", "--", "python", "x.py"], ["--store=S", "run", "x.py", "-h"], ["run", "--", "-h"],
    ["run", "--", "a", "--", "b"], ["run", "--seed", "3", "--", "python", "x.py"], ["run", "-e", "exp", "x.py"],
    ["run", "--run-name=n", "--tags", "a=b", "--", "x.py"], ["--store", "S", "run", "--only", "sklearn", "x.py"],
])
def test_plain_run_arguments_are_those_argparse_makes(argv):
    import argparse

    from autolog.cli import run as run_command

    parser = argparse.ArgumentParser(prog="autolog run")
    parser.add_argument("--store", default=None)
    run_command.add_arguments(parser)
    i = argv.index("run")
    expected = vars(parser.parse_args(argv[:i] + argv[i + 1:]))
    plain = run_command.plain_args(argv[:i], argv[i + 1:])
    # Without options of `run` the program's line is taken as it is; with them argparse parses it.
    assert plain is None if any(a.startswith("-") and a != "--" for a in argv[i + 1:i + 2]) else vars(plain) == expected


def test_autolog_run_of_a_plain_program_loads_no_argparse(tmp_path):
    # Which modules load (not a timing): argparse with gettext and locale costs ~4 ms of the program's start.
    code = "import sys; print(sorted(m for m in ('argparse', 'gettext', 'inspect', 'dataclasses', 'wrapt') if m in sys.modules))"
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store")}
    cli = os.path.join(os.path.dirname(sys.executable), "autolog")
    out = subprocess.run([cli, "run", "--", "python", "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
