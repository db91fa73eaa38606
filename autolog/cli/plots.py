"""Metric histories of several runs drawn overlaid into one image, without a server.

``autolog compare RUN RUN --plot curves.png --metric loss`` calls :func:`plot_histories`.
matplotlib is an optional extra (``autolog[plot]``) and is imported only here, with the
non-interactive Agg canvas, so plotting works on headless machines and never touches a
user's pyplot state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from autolog.errors import InvalidName, InvalidPath, MissingDependency

PLOT_EXTRA = "pip install 'autolog[plot]'"
# Without --metric, the shared metrics are drawn; more panels than this become unreadable.
DEFAULT_MAX_PANELS = 6


def _matplotlib() -> tuple[Any, Any, Any]:
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise MissingDependency(f"plotting needs matplotlib, which is not installed: {PLOT_EXTRA}") from exc
    return matplotlib, Figure, MaxNLocator


def _choose_metrics(runs: Sequence[Any], metrics: Sequence[str] | None) -> list[str]:
    available = {k for r in runs for k in r.metrics}
    if metrics:
        missing = [m for m in metrics if m not in available]
        if missing:
            raise InvalidName(f"metric {missing[0]!r} was not logged by any of the runs; they have: {', '.join(sorted(available)) or 'no metrics'}")
        return list(dict.fromkeys(metrics))
    user_keys = [set(k for k in r.metrics if not k.startswith("system/")) for r in runs]
    shared = set.intersection(*user_keys) if user_keys else set()
    chosen = sorted(shared or set().union(*user_keys))[:DEFAULT_MAX_PANELS]
    if not chosen:
        raise InvalidName("the runs have no metrics to plot")
    return chosen


def _colours(matplotlib: Any, n: int) -> list[Any]:
    # Qualitative maps keep neighbouring runs distinguishable; beyond 20 runs fall back to a ramp.
    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    ramp = matplotlib.colormaps["turbo"]
    return [ramp(i / (n - 1)) for i in range(n)]


def figure_histories(store: Any, runs: Sequence[Any], metrics: Sequence[str] | None = None) -> Any:
    """Build (without saving) the matplotlib Figure that :func:`plot_histories` writes.

    Args:
        store: the run store the histories are read from.
        runs: ``Run`` objects or run ids (prefixes work), in legend order.
        metrics: metric keys, one panel each; default: the metrics every run logged
            (``system/`` ones left out), at most six.

    Returns:
        A ``matplotlib.figure.Figure`` with one axes per metric and one line per run that
        logged it, each run in its own colour across every panel.

    Raises:
        MissingDependency: matplotlib is not installed (names the ``plot`` extra).
        InvalidName: a requested metric was logged by none of the runs.
    """
    matplotlib, Figure, MaxNLocator = _matplotlib()
    runs = [store.get_run(r) if isinstance(r, str) else r for r in runs]
    if not runs:
        raise InvalidName("no runs to plot")
    keys = _choose_metrics(runs, metrics)
    ncols = 1 if len(keys) == 1 else 2
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(7.0 * ncols, 3.6 * nrows), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colours = _colours(matplotlib, len(runs))
    for ax, key in zip(axes, keys):
        for run, colour in zip(runs, colours):
            if key not in run.metrics:
                continue
            points = store.metric_history(run.id, key)
            steps = [p.step for p in points]
            # inf would stretch the axis to nothing; matplotlib leaves a gap at NaN instead.
            values = [p.value if math.isfinite(p.value) else math.nan for p in points]
            ax.plot(steps, values, color=colour, label=f"{run.name} ({run.id[:8]})",
                    marker="o" if len(points) <= 30 else None, markersize=3, linewidth=1.5)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    return fig


def plot_histories(store: Any, runs: Sequence[Any], path: str | os.PathLike[str], metrics: Sequence[str] | None = None) -> str:
    """Draw the metric histories of ``runs`` overlaid into the image file ``path``.

    One panel per metric, step on the x axis, each run in a distinct colour with its
    name and short id in the legend. The format follows the file extension (PNG when
    there is none); missing parent folders are created.

    Args:
        store: the run store the histories are read from.
        runs: ``Run`` objects or run ids (prefixes work).
        path: where the image is written.
        metrics: metric keys to draw (default: the ones every run logged).

    Returns:
        The path written, as a str.

    Raises:
        MissingDependency: matplotlib is not installed (``pip install 'autolog[plot]'``).
        InvalidName: a requested metric was logged by none of the runs.
        InvalidPath: the extension of ``path`` is not an image format matplotlib writes.
    """
    path = os.fspath(path)
    fig = figure_histories(store, runs, metrics)
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext and ext not in fig.canvas.get_supported_filetypes():
        raise InvalidPath(f"cannot write a plot as {ext!r} ({path!r}); use one of: {', '.join(sorted(fig.canvas.get_supported_filetypes()))}")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format=ext or "png")
    return path
