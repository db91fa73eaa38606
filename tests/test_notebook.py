"""Notebooks as first-class sources: a real notebook executed by nbclient in a real kernel."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install 'autolog[dev]' (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="pip install 'autolog[dev]' (nbclient, ipykernel)")
if importlib.util.find_spec("ipykernel") is None:  # the kernel imports it, not this process
    pytest.skip("pip install 'autolog[dev]' (nbclient, ipykernel)", allow_module_level=True)

CELLS = [
    "import os\nos.environ['KERAS_BACKEND'] = 'torch'\nimport autolog\n_ = autolog.autolog(log_models=False)",
    "from sklearn.datasets import make_classification\nfrom sklearn.linear_model import LogisticRegression\n"
    "X, y = make_classification(n_samples=100, random_state=0)\nclf = LogisticRegression().fit(X, y)",
    "import numpy as np, keras\nmodel = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
    "model.compile(optimizer='adam', loss='mse')\nhistory = model.fit(np.zeros((32, 4)), np.zeros(32), epochs=2, verbose=0)",
    "with autolog.start_run() as run:\n    autolog.log_metric('score', 0.5)\nprint('done')",
]


def execute(path, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment, as under Jupyter
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def write_notebook(path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, str(path))


def test_a_notebook_names_its_runs_and_is_saved_without_outputs(store, tmp_path):
    path = tmp_path / "churn model.ipynb"
    write_notebook(path)
    nb = execute(path, {"AUTOLOG_URI": store.root, "JPY_SESSION_NAME": str(path), "PYTHONWARNINGS": "ignore"})
    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    # Only the notebook's own print: no autolog warnings, no empty rich <pre> from Keras summaries.
    assert [out.get("text") for out in outputs] == ["done\n"], json.dumps(outputs)[:2000]
    runs = {r.name: r for r in store.search_runs()}
    assert len(runs) == 3, list(runs)
    assert all(name.startswith("churn model-") for name in runs)
    assert any("LogisticRegression" in name for name in runs) and any("Sequential" in name for name in runs)
    user = next(r for name, r in runs.items() if r.metrics.get("score") == 0.5)
    rec = store.get_run(user.id)
    assert rec.tags["source.entry_point"] == "notebook"
    assert rec.tags["source.notebook"] == str(path) and rec.tags["source.notebook_name"] == "churn model"
    artifacts = {a.path for a in store.list_artifacts(rec.id)}
    assert "source/churn model.ipynb" in artifacts
    with open(store.artifact_file(rec.id, "source/churn model.ipynb"), encoding="utf-8") as fh:
        saved = json.load(fh)
    assert ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in saved["cells"]] == CELLS
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in saved["cells"])


def test_an_unknown_notebook_falls_back_to_the_kernel_id_and_the_executed_cells(store, tmp_path):
    path = tmp_path / "anonymous.ipynb"
    write_notebook(path)
    env = {"AUTOLOG_URI": store.root, "PYTHONWARNINGS": "ignore"}
    saved_name = os.environ.pop("JPY_SESSION_NAME", None)
    try:
        execute(path, env)
    finally:
        if saved_name is not None:
            os.environ["JPY_SESSION_NAME"] = saved_name
    user = next(r for r in store.search_runs() if r.metrics.get("score") == 0.5)
    rec = store.get_run(user.id)
    assert rec.name.startswith("notebook-") and rec.tags["source.notebook_found_by"] == "kernel-id"
    scripts = [a.path for a in store.list_artifacts(rec.id) if a.path.startswith("source/")]
    assert len(scripts) == 1 and scripts[0].endswith(".py")
    with open(store.artifact_file(rec.id, scripts[0]), encoding="utf-8") as fh:
        text = fh.read()
    assert "# In[1]:" in text and "LogisticRegression().fit(X, y)" in text


def test_reproduce_re_executes_the_saved_notebook(store, tmp_path):
    path = tmp_path / "exp.ipynb"
    write_notebook(path)
    execute(path, {"AUTOLOG_URI": store.root, "JPY_SESSION_NAME": str(path), "PYTHONWARNINGS": "ignore"})
    from autolog.cli.reproduce import plan

    user = next(r for r in store.search_runs() if r.metrics.get("score") == 0.5)
    text, problems = plan(store, user.id, reuse_env=True)
    command = next(line for line in text.splitlines() if "-m jupyter nbconvert" in line)
    assert "--execute" in command and "exp-reproduced" in command
    assert f"JPY_SESSION_NAME={path}" in command
    assert not any("re-run the command" in p for p in problems)
