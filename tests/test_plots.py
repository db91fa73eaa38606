"""``autolog compare RUN RUN --plot curves.png``: metric histories drawn with matplotlib."""

from __future__ import annotations

import math
import sys

import pytest

pytest.importorskip("matplotlib", reason="pip install 'autolog[plot]'")

import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

import autolog as al  # noqa: E402
from autolog.cli import commands as cli  # noqa: E402
from autolog.cli.plots import figure_histories, plot_histories  # noqa: E402
from autolog.errors import InvalidName, InvalidPath, MissingDependency  # noqa: E402


def _runs(store, n: int = 3) -> list:
    ids = []
    for i in range(n):
        with al.start_run(name=f"net-{i}", log_system_metrics=False, capture_env=False) as run:
            for step in range(0, 10 + 5 * i):
                al.log_metrics({"loss": 1.0 / (step + 1) + 0.1 * i, "val_loss": 1.2 / (step + 1) + 0.1 * i}, step=step)
            al.log_metric("only_first" if i == 0 else "lr", 0.1, step=0)
            ids.append(run.id)
    al.flush()
    return [store.get_run(r) for r in ids]


def _pixels_near(image: np.ndarray, colour, tol: float = 0.08) -> int:
    rgb = np.array(mcolors.to_rgb(colour))
    return int((np.abs(image[..., :3] - rgb).max(axis=-1) < tol).sum())


def test_compare_plot_writes_png_with_one_line_per_run(store, tmp_path, capsys):
    runs = _runs(store)
    out = tmp_path / "plots" / "curves.png"
    out.parent.mkdir()
    assert cli.main(["compare", *[r.id[:8] for r in runs], "--plot", str(out), "--metric", "loss", "--metric", "val_loss"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.stat().st_size > 10_000
    image = imread(str(out))
    assert image.shape[:2] == (360, 1400)  # two panels side by side: 14 x 3.6 inches at 100 dpi
    # Every run's colour is on the picture, in both panels (left and right half).
    for colour in ("tab:blue", "tab:orange", "tab:green"):
        assert _pixels_near(image[:, :700], colour) > 200
        assert _pixels_near(image[:, 700:], colour) > 200

    fig = figure_histories(store, runs, ["loss", "val_loss"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "val_loss"]
    for ax in axes:
        lines = [a for a in ax.get_children() if isinstance(a, Line2D) and a.get_label().startswith("net-")]
        assert len(lines) == len(runs)
        assert [line.get_label() for line in lines] == [f"{r.name} ({r.id[:8]})" for r in runs]
        assert len({mcolors.to_hex(line.get_color()) for line in lines}) == len(runs)
        for line, run in zip(lines, runs):
            history = store.metric_history(run.id, ax.get_title())
            assert list(line.get_xdata()) == [p.step for p in history]
            assert list(line.get_ydata()) == [p.value for p in history]
        assert ax.get_xlabel() == "step"


def test_default_metrics_are_the_shared_ones(store, tmp_path):
    runs = _runs(store, 2)
    with al.start_run(run_id=runs[0].id, log_system_metrics=False, capture_env=False):
        al.log_metric("system/cpu_percent", 50.0, step=0)
        al.log_metric("loss", math.inf, step=99)  # drawn as a gap, not an axis to infinity
        al.log_metric("val_loss", math.nan, step=99)
    al.flush()
    fig = figure_histories(store, [r.id for r in runs])
    # Held-out metrics first; system/ and single-point metrics (lr, only_first) left out.
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["val_loss", "loss"]
    path = plot_histories(store, runs, tmp_path / "default")
    assert path.endswith("default") and imread(path, format="png").shape[2] in (3, 4)


def test_bad_requests_are_clear_errors(store, tmp_path, capsys):
    runs = _runs(store, 2)
    with pytest.raises(InvalidName, match="'accuracy' was not logged"):
        plot_histories(store, runs, tmp_path / "x.png", ["accuracy"])
    with pytest.raises(InvalidPath, match="'txt'"):
        plot_histories(store, runs, tmp_path / "x.txt")
    assert cli.main(["compare", runs[0].id, runs[1].id, "--plot", str(tmp_path / "y.png"), "--metric", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err
    assert not (tmp_path / "y.png").exists()


def test_missing_matplotlib_names_the_extra(store, tmp_path, monkeypatch, capsys):
    runs = _runs(store, 2)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an uninstalled package looks like to import
    with pytest.raises(MissingDependency, match=r"pip install 'autolog\[plot\]'"):
        plot_histories(store, runs, tmp_path / "z.png")
    assert isinstance(MissingDependency("x"), ImportError)
    assert cli.main(["compare", runs[0].id, runs[1].id, "--plot", str(tmp_path / "z.png")]) == 2
    assert "autolog[plot]" in capsys.readouterr().err


def test_default_panels_by_relevance_with_the_real_axis_and_what_was_left_out(store, tmp_path, capsys):
    xgb = pytest.importorskip("xgboost", reason="pip install 'autolog[xgboost]'")
    rng = np.random.RandomState(0)
    X = rng.rand(120, 3)
    y = X @ np.array([1.0, 2.0, -1.0])
    al.autolog(only=["xgboost"], log_models=False)
    ids = []
    for depth in (1, 3):
        xgb.XGBRegressor(n_estimators=8, max_depth=depth, eval_metric="mae", early_stopping_rounds=3).fit(
            X[:90], y[:90], eval_set=[(X[90:], y[90:])], verbose=False)
        ids.append(al.last_run().id)
    al.autolog(disable=True)
    with al.start_run(run_id=ids[0], log_system_metrics=False, capture_env=False):
        al.log_metric("system/cpu_percent", 10.0, step=0)
        al.log_metric("system/cpu_percent", 12.0, step=1)
    out = tmp_path / "rounds.png"
    assert cli.main(["compare", *ids, "--plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: validation_0-mae" in printed
    assert "left out:" in printed and "system/cpu_percent" in printed and "single-point metrics" in printed
    assert "best_iteration" in printed  # a single value per run: read in compare, not drawn
    fig = figure_histories(store, ids)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["validation_0-mae"]
    assert axes[0].get_xlabel() == "round"  # boosting rounds, not an anonymous "step"
    with pytest.raises(InvalidName, match="best_itration.*closest: best_iteration"):
        figure_histories(store, ids, ["best_itration"])


def test_plot_into_a_missing_folder_is_a_clear_error(store, tmp_path, capsys):
    runs = _runs(store, 2)
    target = tmp_path / "no-such-folder" / "curves.png"
    with pytest.raises(InvalidPath, match="does not exist"):
        plot_histories(store, runs, target)
    assert cli.main(["compare", runs[0].id, runs[1].id, "--plot", str(target)]) == 2
    err = capsys.readouterr().err
    assert "no-such-folder" in err and "does not exist" in err and "Traceback" not in err
    assert not target.parent.exists()
