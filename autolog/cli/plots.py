"""Metric histories of several runs drawn overlaid into one image, without a server.

``autolog compare RUN RUN --plot curves.png --metric loss`` calls :func:`plot_histories`.
matplotlib is an optional extra (``autolog[plot]``) and is imported only here, with the
non-interactive Agg canvas, so plotting works on headless machines and never touches a
user's pyplot state.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autolog.errors import InvalidName, InvalidPath, MissingDependency
from autolog.store import selection

if TYPE_CHECKING:
    from autolog.store.base import Run
    from autolog.store.sqlite import SQLiteStore

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


def _choose_metrics(store: SQLiteStore, runs: Sequence[Run], metrics: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The metrics to draw and, for the report, what was left out and why."""
    available = {k for r in runs for k in r.metrics}
    if metrics:
        missing = [m for m in metrics if m not in available]
        if missing:
            near = difflib.get_close_matches(missing[0], sorted(available), n=3)
            hint = f"closest: {', '.join(near)}" if near else f"they have: {', '.join(sorted(available)) or 'no metrics'}"
            raise InvalidName(f"metric {missing[0]!r} was not logged by any of the runs; {hint}")
        return list(dict.fromkeys(metrics)), []
    left_out: list[str] = []
    hidden = sorted(k for k in available if k.startswith(selection.NEVER_DEFAULT_PREFIXES))
    if hidden:
        left_out.append(f"{len(hidden)} system/batch metrics ({_few(hidden)})")
    candidates = [k for k in available if k not in hidden]
    counts = {k: sum(1 for r in runs if k in r.metrics) for k in candidates}
    # One point per run is a bar, not a curve: those are read in `autolog compare`, not drawn.
    history = {k for k in candidates if any(len(store.metric_history(r.id, k)) > 1 for r in runs if k in r.metrics)}
    single = sorted(set(candidates) - history)
    if single:
        left_out.append(f"{len(single)} single-point metrics ({_few(single)})")
    headline = {k: i for i, k in enumerate(selection.headline_metrics(runs, None))}
    ranked = sorted(history, key=lambda k: (-counts[k], headline.get(k, len(headline)), selection.is_counter(k),
                                            selection.stage(k), k))
    chosen, rest = ranked[:DEFAULT_MAX_PANELS], ranked[DEFAULT_MAX_PANELS:]
    if rest:
        left_out.append(f"{len(rest)} more histories beyond {DEFAULT_MAX_PANELS} panels ({_few(rest)})")
    if not chosen:
        raise InvalidName("the runs have no metric histories to plot" + (f"; left out: {'; '.join(left_out)} (ask with -m KEY)" if left_out else ""))
    return chosen, left_out


def _few(keys: Sequence[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def x_label(runs: Sequence[Run], key: str) -> str:
    """The x axis of ``key``'s panel: the metric's real axis (epoch, round, step...), joined when runs differ."""
    axes = list(dict.fromkeys(selection.metric_axis(r, key) for r in runs if key in r.metrics))
    return " / ".join(axes) or "step"


def _colours(matplotlib: Any, n: int) -> list[Any]:
    # Qualitative maps keep neighbouring runs distinguishable; beyond 20 runs fall back to a ramp.
    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    ramp = matplotlib.colormaps["turbo"]
    return [ramp(i / (n - 1)) for i in range(n)]


def figure_histories(store: SQLiteStore, runs: Sequence[Run], metrics: Sequence[str] | None = None) -> Any:
    """Build (without saving) the matplotlib Figure that :func:`plot_histories` writes.

    Args:
        store: the run store the histories are read from.
        runs: ``Run`` objects or run ids (prefixes work), in legend order.
        metrics: metric keys, one panel each; default: the histories most runs share,
            headline metrics first, at most six (``system/``, ``batch/`` and single-point
            metrics only when asked for).

    Returns:
        A ``matplotlib.figure.Figure`` with one axes per metric and one line per run that
        logged it, each run in its own colour across every panel.

    Raises:
        MissingDependency: matplotlib is not installed (names the ``plot`` extra).
        InvalidName: a requested metric was logged by none of the runs.
    """
    return _figure(store, runs, metrics)[0]


def _figure(store: SQLiteStore, runs: Sequence[Run], metrics: Sequence[str] | None) -> tuple[Any, list[str], list[str]]:
    matplotlib, Figure, MaxNLocator = _matplotlib()
    runs = [store.get_run(r) if isinstance(r, str) else r for r in runs]
    if not runs:
        raise InvalidName("no runs to plot")
    keys, left_out = _choose_metrics(store, runs, metrics)
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
        ax.set_xlabel(x_label(runs, key))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    return fig, keys, left_out


def plot_histories(store: SQLiteStore, runs: Sequence[Run], path: str | os.PathLike[str], metrics: Sequence[str] | None = None) -> str:
    """Draw the metric histories of ``runs`` overlaid into the image file ``path``.

    One panel per metric, its real axis (epoch, boosting round, step) on the x axis,
    each run in a distinct colour with its name and short id in the legend. The format
    follows the file extension (PNG when there is none).

    Args:
        store: the run store the histories are read from.
        runs: ``Run`` objects or run ids (prefixes work).
        path: where the image is written; its folder must exist.
        metrics: metric keys to draw (default: the shared histories, headline metrics first).

    Returns:
        The path written, as a str.

    Raises:
        MissingDependency: matplotlib is not installed (``pip install 'autolog[plot]'``).
        InvalidName: a requested metric was logged by none of the runs.
        InvalidPath: the folder of ``path`` does not exist, or its extension is not an
            image format matplotlib writes.
    """
    return plot_histories_report(store, runs, path, metrics)["path"]


def plot_histories_report(store: SQLiteStore, runs: Sequence[Run], path: str | os.PathLike[str],
                          metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """:func:`plot_histories`, returning ``{"path", "drawn": [keys], "left_out": [reasons]}`` for the command to print."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InvalidPath(f"cannot write the plot {path!r}: the folder {parent!r} does not exist")
    fig, keys, left_out = _figure(store, runs, metrics)
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext and ext not in fig.canvas.get_supported_filetypes():
        raise InvalidPath(f"cannot write a plot as {ext!r} ({path!r}); use one of: {', '.join(sorted(fig.canvas.get_supported_filetypes()))}")
    fig.savefig(path, format=ext or "png")
    return {"path": path, "drawn": keys, "left_out": left_out}
