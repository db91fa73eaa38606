"""The store exported to TensorBoard and served by a real TensorBoard (``autolog ui``).

Every server test starts TensorBoard itself on a free 127.0.0.1 port and reads what it
serves through its HTTP data API; one test drives headless Chromium over the DevTools
protocol to see the scalars dashboard list a run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("tensorboard", reason="pip install 'autolog[tensorboard]'")

from chromium_devtools import DevTools  # noqa: E402

import autolog as al  # noqa: E402
from autolog.cli import commands as cli  # noqa: E402
from autolog.sinks.tensorboard import (  # noqa: E402
    export_to_tensorboard,
    free_port,
    run_dir_name,
    start_tensorboard,
    stop_tensorboard,
)

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def _f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _make_runs(store) -> list:
    """Three finished runs with different params and histories, one of them failed."""
    al.set_experiment("tb")
    ids = []
    for i, lr in enumerate([0.1, 0.01, 0.001]):
        try:
            with al.start_run(name=f"mlp lr={lr}", log_system_metrics=False, capture_env=False) as run:
                al.log_params({"lr": lr, "optimizer": "sgd" if i == 0 else "adam", "layers": 2 + i, "shuffle": True})
                for step in range(0, 30, 3):
                    al.log_metrics({"loss": 1.0 / (step + 1) + lr, "val/acc": step / 30 * (1 - lr) + 1e-9}, step=step)
                ids.append(run.id)
                if i == 2:
                    raise RuntimeError("diverged")
        except RuntimeError:
            pass
    al.flush()
    return [store.get_run(r) for r in ids]


class TensorBoard:
    """A TensorBoard process over ``logdir`` and a small client for its JSON data API."""

    def __init__(self, logdir: str) -> None:
        self.port = free_port()
        self.proc = start_tensorboard(logdir, self.port, log_path=os.path.join(os.path.dirname(logdir), "tb.log"))
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **query):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: dict):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def wait_for(self, predicate, timeout: float = 30.0):
        """Poll until ``predicate()`` returns a truthy value (TensorBoard loads files in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.5)

    def session_groups(self) -> dict:
        body = {"experimentName": "", "allowedStatuses": STATUSES, "colParams": [], "startIndex": 0,
                "sliceSize": 100, "includeMetrics": True}
        return {g["name"]: g for g in self.post("/data/plugin/hparams/session_groups", body)["sessionGroups"]}

    def close(self) -> None:
        stop_tensorboard(self.proc)


@pytest.fixture
def tensorboard_on(tmp_path):
    started = []

    def start(logdir):
        tb = TensorBoard(str(logdir))
        started.append(tb)
        return tb

    yield start
    for tb in started:
        tb.close()
        assert tb.proc.poll() is not None


def _snapshot(logdir) -> dict[str, str]:
    """Digests of the run folders' event files (the root's hparams experiment record apart)."""
    out = {}
    for root, _, files in os.walk(logdir):
        if os.path.samefile(root, logdir):
            continue
        for name in files:
            if "tfevents" in name:
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, logdir)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _read_scalars(folder: str) -> dict[str, list[tuple[int, float]]]:
    """Scalar points of one run folder as TensorBoard's own event reader sees them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    points: dict[str, list[tuple[int, float]]] = {}
    for name in sorted(os.listdir(folder)):
        if "tfevents" not in name:
            continue
        for event in EventFileLoader(os.path.join(folder, name)).Load():
            for value in event.summary.value:
                if not value.tag.startswith("_hparams_"):
                    points.setdefault(value.tag, []).append((event.step, float(tensor_util.make_ndarray(value.tensor))))
    return points


def test_tensorboard_serves_exported_runs_scalars_and_hparams(store, tmp_path, tensorboard_on):
    runs = _make_runs(store)
    logdir = tmp_path / "tb"
    result = export_to_tensorboard(store, logdir)
    assert result["runs"] == 3 and result["new"] == 3 and result["points"] == 3 * 2 * 10
    names = {run.id: run_dir_name(run) for run in runs}
    assert names[runs[0].id] == f"mlp_lr=0.1-{runs[0].id[:8]}"

    tb = tensorboard_on(logdir)
    assert sorted(tb.get("/data/runs")) == sorted([".", *names.values()])  # ".": the hparams experiment record
    tags = tb.wait_for(lambda: (t := tb.get("/data/plugin/scalars/tags")) and len(t) == 3 and t)
    assert {run: sorted(t) for run, t in tags.items()} == {n: ["loss", "val/acc"] for n in names.values()}
    for run in runs:
        for key in ("loss", "val/acc"):
            served = tb.get("/data/plugin/scalars/scalars", run=names[run.id], tag=key)
            history = store.metric_history(run.id, key)
            assert [(s, v) for _, s, v in served] == [(p.step, _f32(p.value)) for p in history]
            assert [w for w, _, _ in served] == pytest.approx([p.timestamp / 1000 for p in history], abs=1e-3)

    groups = tb.wait_for(lambda: (g := tb.session_groups()) and all(g[n]["metricValues"] for n in g) and g)
    assert sorted(groups) == sorted(names.values())
    for run in runs:
        group = groups[names[run.id]]
        assert group["hparams"] == {"lr": float(run.params["lr"]), "optimizer": run.params["optimizer"],
                                    "layers": float(run.params["layers"]), "shuffle": True}
        finals = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert finals == {k: pytest.approx(_f32(run.metrics[k])) for k in ("loss", "val/acc")}
        status = group["sessions"][0]["status"]
        assert status == ("STATUS_FAILURE" if run.status == "FAILED" else "STATUS_SUCCESS")
    experiment = tb.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    # Columns: the params that vary (shuffle is the same everywhere); axes: the headline metrics.
    assert {h["name"] for h in experiment["hparamInfos"]} == {"lr", "optimizer", "layers"}
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["val/acc", "loss"]

    # Grow one run, add another: the re-export appends exactly the new points.
    before = _snapshot(logdir)
    with al.start_run(run_id=runs[0].id, log_system_metrics=False, capture_env=False):
        al.log_metric("loss", 0.05, step=40)
    with al.start_run(name="late run", log_system_metrics=False, capture_env=False) as late:
        al.log_params({"lr": 0.5, "optimizer": "adam", "layers": 2, "shuffle": True})  # same columns: old sessions stay
        al.log_metric("loss", 2.0, step=0)
    al.flush()
    again = export_to_tensorboard(store, logdir)
    assert (again["new"], again["written"], again["unchanged"], again["points"]) == (1, 2, 2, 2)
    after = _snapshot(logdir)
    assert {k: v for k, v in after.items() if k in before} == before  # old files untouched
    late_name = run_dir_name(store.get_run(late.id))
    assert tb.wait_for(lambda: late_name in tb.get("/data/runs"))
    served = tb.wait_for(lambda: (s := tb.get("/data/plugin/scalars/scalars", run=names[runs[0].id], tag="loss")) and len(s) == 11 and s)
    assert [s for _, s, _ in served] == [p.step for p in store.metric_history(runs[0].id, "loss")]

    # Nothing new: nothing written, and TensorBoard keeps serving the same counts.
    assert export_to_tensorboard(store, logdir)["written"] == 0
    assert _snapshot(logdir) == after
    time.sleep(6)  # longer than the --reload_interval TensorBoard was started with
    for run in runs:
        for key in ("loss", "val/acc"):
            served = tb.get("/data/plugin/scalars/scalars", run=names[run.id], tag=key)
            assert len(served) == len(store.metric_history(run.id, key))


def test_reexport_writes_only_changes(store, tmp_path):
    runs = _make_runs(store)
    logdir = str(tmp_path / "tb")
    export_to_tensorboard(store, logdir)
    first = _snapshot(logdir)
    assert len(first) == 3 and os.path.exists(os.path.join(logdir, ".autolog-export.db"))
    second = export_to_tensorboard(store, logdir)
    assert (second["written"], second["unchanged"], second["points"]) == (0, 3, 0)
    assert _snapshot(logdir) == first

    run = runs[1]
    folder = os.path.join(logdir, run_dir_name(run))
    with al.start_run(run_id=run.id, log_system_metrics=False, capture_env=False):
        al.log_metrics({"loss": 0.01, "grad_norm": 1.5}, step=27)  # same step as the last point: appendable
    al.flush()
    third = export_to_tensorboard(store, logdir)
    assert (third["written"], third["rewritten"], third["points"]) == (1, 0, 2)
    assert sorted(os.listdir(folder)) == ["events.out.tfevents.0000000001.autolog", "events.out.tfevents.0000000002.autolog"]
    for key in ("loss", "grad_norm"):
        assert _read_scalars(folder)[key] == [(p.step, _f32(p.value)) for p in store.metric_history(run.id, key)]

    # A point logged at an earlier step cannot be appended in step order: the run is rewritten.
    with al.start_run(run_id=run.id, log_system_metrics=False, capture_env=False):
        al.log_metric("loss", 9.0, step=1)
    al.flush()
    fourth = export_to_tensorboard(store, logdir)
    assert (fourth["rewritten"], fourth["points"]) == (1, 10 + 12 + 1)
    assert os.listdir(folder) == ["events.out.tfevents.0000000003.autolog"]
    assert _read_scalars(folder)["loss"] == [(p.step, _f32(p.value)) for p in store.metric_history(run.id, "loss")]

    # A file a crashed export left behind (never committed to the state) is removed.
    shutil.copy(os.path.join(folder, "events.out.tfevents.0000000003.autolog"),
                os.path.join(folder, "events.out.tfevents.0000000004.autolog"))
    assert export_to_tensorboard(store, logdir)["written"] == 0
    assert os.listdir(folder) == ["events.out.tfevents.0000000003.autolog"]

    # A renamed run moves to a folder with its new name.
    store.set_run_name(run.id, "renamed run")
    assert export_to_tensorboard(store, logdir)["rewritten"] == 1
    renamed = os.path.join(logdir, f"renamed_run-{run.id[:8]}")
    assert not os.path.exists(folder) and os.listdir(renamed) == ["events.out.tfevents.0000000004.autolog"]
    assert _read_scalars(renamed)["loss"] == [(p.step, _f32(p.value)) for p in store.metric_history(run.id, "loss")]

    store.delete_run(runs[0].id)
    assert export_to_tensorboard(store, logdir)["removed"] == 1
    assert not os.path.exists(os.path.join(logdir, run_dir_name(runs[0])))
    assert len(_snapshot(logdir)) == 2


def test_event_files_hold_exact_steps_and_float32_values_for_edge_cases(store, tmp_path):
    steps = [-3, 0, 1, 127, 128, 16_384, 300_000, 2**40]
    values = [math.nan, math.inf, -math.inf, 1e300, -0.0, 1.5, 3.4e38, 1e-45]
    with al.start_run(name="edges", log_system_metrics=False, capture_env=False) as run:
        for step, value in zip(steps, values):
            al.log_metric("loss", value, step=step)
            al.log_metric("ñ/λoss", float(step), step=step)
    al.flush()
    export_to_tensorboard(store, tmp_path / "tb")
    # TensorBoard's own reader checks every record's crc32c while reading.
    read = _read_scalars(str(tmp_path / "tb" / run_dir_name(store.get_run(run.id))))
    history = store.metric_history(run.id, "loss")
    assert [s for s, _ in read["loss"]] == [p.step for p in history] == sorted(steps)
    for (_, got), point in zip(read["loss"], history):
        want = _f32(point.value) if abs(point.value) < 3.5e38 or not math.isfinite(point.value) else math.copysign(math.inf, point.value)
        assert got == want or (math.isnan(got) and math.isnan(want))
    assert read["ñ/λoss"] == [(s, _f32(float(s))) for s in sorted(steps)]


def test_export_only_command_and_experiment_filter(store, tmp_path, capsys):
    _make_runs(store)
    with al.start_run(name="other", experiment="elsewhere", log_system_metrics=False, capture_env=False):
        al.log_metric("loss", 1.0, step=0)
    al.flush()
    out_dir = tmp_path / "only-tb"
    assert cli.main(["ui", "--export-only", str(out_dir), "--experiment", "tb"]) == 0
    assert "exported 3 runs" in capsys.readouterr().out
    assert len([d for d in os.listdir(out_dir) if (out_dir / d).is_dir()]) == 3
    assert cli.main(["ui", "--export-only", str(out_dir), "--experiment", "no-such-experiment"]) == 2
    assert "no-such-experiment" in capsys.readouterr().err


def test_ui_command_exports_and_serves_until_stopped(store, tmp_path):
    runs = _make_runs(store)
    port = free_port()
    logdir = tmp_path / "ui-tb"
    proc = subprocess.Popen([sys.executable, "-m", "autolog.cli", "--store", store.root, "ui", "--port", str(port),
                             "--logdir", str(logdir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "TensorBoard at" in line:
                break
        assert f"TensorBoard at http://127.0.0.1:{port}/" in "".join(lines), "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=30) as resp:
            assert sorted(json.loads(resp.read())) == sorted([".", *(run_dir_name(r) for r in runs)])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # TensorBoard went down with the command.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5)


# -- headless Chromium --------------------------------------------------------------------
# Text of the page including every shadow root: TensorBoard's scalars dashboard is a
# Polymer component, so --dump-dom (which skips shadow DOM) never shows its run list.
DEEP_TEXT = """(() => {
  const out = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
      else walk(child);
    }
  };
  walk(document);
  return out.join(' ');
})()"""


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (skipped when that is impossible)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed and cannot be (needs apt-get as root): apt-get install chromium")
    try:
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=300, check=False)
        done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not install chromium with apt-get: {exc}")
    found = shutil.which("chromium")
    if done.returncode != 0 or not found:
        pytest.skip(f"could not install chromium with apt-get: {done.stderr[-500:]}")
    return found


def test_scalars_dashboard_in_headless_chromium_shows_run_name(store, tmp_path, tensorboard_on, chromium):
    runs = _make_runs(store)
    logdir = tmp_path / "tb"
    export_to_tensorboard(store, logdir)
    tb = tensorboard_on(logdir)
    tb.wait_for(lambda: len(tb.get("/data/plugin/scalars/tags")) == 3)
    names = [run_dir_name(r) for r in runs]
    expected = [*names, "loss", "val/acc"]  # the run selector and the tag cards
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(chromium, profile)
        try:
            target = browser.call("Target.createTarget", url=f"{tb.url}/#scalars")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            deadline = time.monotonic() + 45
            text = ""
            while time.monotonic() < deadline and not all(n in text for n in expected):
                time.sleep(0.5)
                result = browser.call("Runtime.evaluate", session=session, expression=DEEP_TEXT, returnByValue=True)
                text = result["result"].get("value", "")
            shot = base64.b64decode(browser.call("Page.captureScreenshot", session=session)["data"])
        finally:
            browser.close()
    (tmp_path / "scalars.png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    for name in expected:
        assert name in text, f"{name} not on the scalars dashboard (screenshot: {tmp_path / 'scalars.png'})"


# -- the hparams experiment: every run a session group on every axis ---------------------------
def _five_runs(store) -> list:
    """Five runs of one experiment: two lack val_auc, one lacks the dropout param; noise metrics everywhere."""
    al.set_experiment("hp")
    ids = []
    for i in range(5):
        with al.start_run(name=f"trial {i}", log_system_metrics=False, capture_env=False) as run:
            params = {"depth": 2 + i, "seed": 0, "dataset.train.digest": f"d{i:04x}", "optimizer": "adam"}
            if i != 4:
                params["dropout"] = 0.1 * i
            al.log_params(params)
            for step in range(4):
                al.log_metrics({"loss": 1.0 / (step + 1 + i), "val_loss": 1.2 / (step + 1 + i), "batch/loss": 0.5,
                                "system/cpu_percent": 10.0 + step}, step=step)
            al.log_metric("best_iteration", 3.0)
            al.set_metric_goal("val_loss", "min")
            if i < 3:
                al.log_metric("val_auc", 0.7 + i / 20, goal="max")
            ids.append(run.id)
    al.flush()
    return [store.get_run(r) for r in ids]


def test_hparams_experiment_has_headline_axes_varying_columns_and_every_run(store, tmp_path, tensorboard_on):
    runs = _five_runs(store)
    logdir = tmp_path / "tb"
    result = export_to_tensorboard(store, logdir, experiment="hp")
    names = {run.id: run_dir_name(run) for run in runs}
    assert result["hparams"]["metrics"] == ["val_loss", "loss"]
    assert result["hparams"]["params"] == {"depth": "float", "dropout": "string"}
    assert {k: sorted(v) for k, v in result["hparams"]["lacking"].items()} == {"val_auc": sorted(names[r.id] for r in runs[3:])}

    tb = tensorboard_on(logdir)
    experiment = tb.wait_for(lambda: (e := tb.post("/data/plugin/hparams/experiment", {"experimentName": ""}))
                             and e.get("metricInfos") and e)
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["val_loss", "loss"]  # no system/, batch/, counters
    infos = {h["name"]: h for h in experiment["hparamInfos"]}
    assert set(infos) == {"depth", "dropout"}  # no constant params, no digests
    assert infos["depth"]["type"] == "DATA_TYPE_FLOAT64" and infos["dropout"]["type"] == "DATA_TYPE_STRING"
    groups = tb.wait_for(lambda: (g := tb.session_groups()) and len(g) == 5 and all(len(x["metricValues"]) == 2 for x in g.values()) and g)
    assert sorted(groups) == sorted(names.values())  # every run is a session group, named "<run name>-<short id>"
    for run in runs:
        group = groups[names[run.id]]
        finals = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert finals == {k: pytest.approx(_f32(run.metrics[k])) for k in ("val_loss", "loss")}
        assert group["hparams"]["depth"] == float(run.params["depth"])
        assert group["hparams"]["dropout"] == run.params.get("dropout", "-")


# Clicks the hparams dashboard's parallel-coordinates tab; then counts the lines it drew.
CLICK_PARALLEL = """(() => {
  const all = [];
  const walk = (node) => { if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) { all.push(child); walk(child); } };
  walk(document);
  const tab = all.find(e => e.tagName === 'PAPER-TAB' && /parallel coordinates/i.test(e.textContent));
  if (tab) tab.click();
  return Boolean(tab);
})()"""
COUNT_LINES = """(() => {
  const all = [];
  const walk = (node) => { if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) { all.push(child); walk(child); } };
  walk(document);
  const plot = all.find(e => e.tagName === 'TF-HPARAMS-PARALLEL-COORDS-PLOT');
  if (!plot) return -1;
  const root = plot.shadowRoot || plot;
  return root.querySelectorAll('.foreground path').length;
})()"""


def test_hparams_parallel_coordinates_in_headless_chromium_draws_every_run(store, tmp_path, tensorboard_on, chromium):
    runs = _five_runs(store)
    logdir = tmp_path / "tb"
    export_to_tensorboard(store, logdir, experiment="hp")
    tb = tensorboard_on(logdir)
    tb.wait_for(lambda: len(tb.session_groups()) == 5)
    shot_path = tmp_path / "hparams-parallel-coordinates.png"
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(chromium, profile)
        try:
            target = browser.call("Target.createTarget", url=f"{tb.url}/#hparams")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            browser.call("Emulation.setDeviceMetricsOverride", session=session, width=1400, height=1100,
                         deviceScaleFactor=1, mobile=False)
            deadline = time.monotonic() + 60
            clicked, lines = False, -1
            while time.monotonic() < deadline and lines < len(runs):
                time.sleep(0.5)
                if not clicked:
                    clicked = browser.call("Runtime.evaluate", session=session, expression=CLICK_PARALLEL,
                                           returnByValue=True)["result"].get("value", False)
                    continue
                lines = browser.call("Runtime.evaluate", session=session, expression=COUNT_LINES,
                                     returnByValue=True)["result"].get("value", -1)
            time.sleep(1.0)  # let the last transition finish before the picture
            shot = base64.b64decode(browser.call("Page.captureScreenshot", session=session)["data"])
        finally:
            browser.close()
    shot_path.write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert clicked, f"no parallel coordinates tab on the hparams dashboard (screenshot: {shot_path})"
    assert lines == len(runs), f"{lines} of {len(runs)} runs drawn (screenshot: {shot_path})"
    if os.environ.get("AUTOLOG_KEEP_SCREENSHOT"):
        shutil.copy(shot_path, os.environ["AUTOLOG_KEEP_SCREENSHOT"])
