"""Plot training runs from their per-iteration logs (progress.jsonl).

One PNG per question a researcher asks of a run, with several runs overlaid
(one colour per run) when several run directories are given:

* learning_curve.png: the three curves that say whether a run learned, over the
  game steps: apples per episode, the principal's objective W_eta and its tax
  rates (what scripts/train.py writes at the end of every run);
* objective.png: the voted objective W_eta per episode and the voted eta;
* returns.png: each player's return and the principal's return per episode;
* tax_rates.png: the principal's mean effective rate per bracket, and the cap;
* equality_productivity.png: equality (1 - Gini) against apples per episode,
  the trade-off the tax moves along, drawn as a trajectory over training;
* throughput.png: game steps sampled per second and seconds per iteration.

Everything is read from the log the trainer writes; nothing is recomputed.
Matplotlib's Agg canvas is used directly, so no display is needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sed_meltingpot.runs import runlog

PROGRESS_FILE = runlog.PROGRESS_FILE
X_KEY, X_LABEL = "game_steps", "game steps sampled"


def load_progress(run_dir: str) -> list[dict[str, Any]]:
    """The iteration records of a run (a run directory or the file itself);
    lines a crash left truncated, or `null`, are skipped with a warning."""
    path = runlog.progress_path(run_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {PROGRESS_FILE} in {run_dir!r}")
    records = runlog.read_progress(path)
    if not records:
        raise ValueError(f"{path!r} holds no iterations yet")
    return records


def run_labels(run_dirs: Sequence[str]) -> list[str]:
    """Short names for the legend: the folder name, with its parent where
    two runs share one."""
    names = [os.path.basename(os.path.normpath(d)) or d for d in run_dirs]
    if len(set(names)) == len(names):
        return names
    return [os.path.join(*os.path.normpath(os.path.abspath(d)).split(os.sep)[-2:])
            for d in run_dirs]


def series(records: Sequence[dict[str, Any]], key: str, x_key: str = X_KEY
           ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of `key` over iterations, skipping missing and null values."""
    xs, ys = [], []
    for r in records:
        x, y = r.get(x_key), r.get(key)
        if isinstance(y, (int, float)) and isinstance(x, (int, float)) and math.isfinite(y):
            xs.append(float(x))
            ys.append(float(y))
    return np.asarray(xs), np.asarray(ys)


def new_figure(width: int, height: int, dpi: int, rows: int, cols: int = 1
               ) -> tuple[Figure, np.ndarray]:
    """A figure of rows x cols panels (flat array of axes) on Matplotlib's Agg canvas."""
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    return fig, axes


def _line(ax: Any, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> bool:
    if not len(x):
        return False
    kwargs.setdefault("marker", "o" if len(x) <= 30 else None)
    kwargs.setdefault("markersize", 3)
    ax.plot(x, y, **kwargs)
    return True


def finish(fig: Figure, axes: np.ndarray, path: str, drawn: Sequence[bool]) -> str:
    """Legends and grids, "not in the log" on panels with nothing drawn; saves to path."""
    for ax, ok in zip(axes, drawn, strict=True):
        if not ok:
            ax.text(0.5, 0.5, "not in the log", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=fig.dpi)
    return path


def plot_objective(runs: Sequence[tuple[str, list[dict]]], path: str, **size: int) -> str:
    fig, axes = new_figure(rows=2, **size)
    drawn = [False, False]
    for c, (label, records) in enumerate(runs):
        colour = f"C{c % 10}"
        drawn[0] |= _line(axes[0], *series(records, "objective"), color=colour, label=label)
        drawn[1] |= _line(axes[1], *series(records, "eta"), color=colour, label=label)
    axes[0].set(title="Voted objective", ylabel="W_eta per episode (apples)")
    axes[1].set(title="Voted eta (0 egalitarian, 1 utilitarian)", ylabel="eta",
                xlabel=X_LABEL, ylim=(-0.03, 1.03))
    return finish(fig, axes, path, drawn)


def plot_returns(runs: Sequence[tuple[str, list[dict]]], path: str, **size: int) -> str:
    fig, axes = new_figure(rows=2, **size)
    drawn = [False, False]
    for c, (label, records) in enumerate(runs):
        colour = f"C{c % 10}"
        num_players = max((len(r.get("player_returns") or []) for r in records), default=0)
        for i in range(num_players):
            xs, ys = [], []
            for r in records:
                values = r.get("player_returns") or []
                if i < len(values) and values[i] is not None and r.get(X_KEY) is not None:
                    xs.append(r[X_KEY])
                    ys.append(values[i])
            drawn[0] |= _line(axes[0], np.asarray(xs), np.asarray(ys), color=colour,
                              alpha=0.35, linewidth=0.8, markersize=2)
        drawn[0] |= _line(axes[0], *series(records, "player_return_mean"), color=colour,
                          linewidth=2, label=f"{label}: mean (thin: each player)")
        drawn[1] |= _line(axes[1], *series(records, "principal_return"), color=colour,
                          label=label)
    axes[0].set(title="Players' returns (Eq. 8 rewards)", ylabel="return per episode")
    axes[1].set(title="Principal's return (change of W_eta)", ylabel="return per episode",
                xlabel=X_LABEL)
    return finish(fig, axes, path, drawn)


def plot_tax_rates(runs: Sequence[tuple[str, list[dict]]], path: str, **size: int) -> str:
    num_brackets = max(sum(1 for k in r if k.startswith("rate_b")) for _, rs in runs for r in rs)
    num_brackets = max(num_brackets, 1)
    fig, axes = new_figure(rows=num_brackets, **size)
    drawn = [False] * num_brackets
    for c, (label, records) in enumerate(runs):
        colour = f"C{c % 10}"
        for b in range(num_brackets):
            drawn[b] |= _line(axes[b], *series(records, f"rate_b{b}"), color=colour,
                              label=label)
            _line(axes[b], *series(records, "tax_cap"), color=colour, linestyle=":",
                  marker=None, label=f"{label}: cap" if b == 0 else None)
    for b, ax in enumerate(axes):
        ax.set(title=f"Bracket {b}", ylabel="effective rate (0-1)", ylim=(-0.03, 1.03))
    axes[-1].set(xlabel=X_LABEL)
    return finish(fig, axes, path, drawn)


def plot_equality_productivity(runs: Sequence[tuple[str, list[dict]]], path: str,
                               **size: int) -> str:
    fig, axes = new_figure(rows=1, **size)
    ax = axes[0]
    drawn = False
    for c, (label, records) in enumerate(runs):
        colour = f"C{c % 10}"
        points = [(r["productivity"], r["equality"]) for r in records
                  if isinstance(r.get("productivity"), (int, float))
                  and isinstance(r.get("equality"), (int, float))]
        if not points:
            continue
        x, y = np.asarray(points, dtype=float).T
        ax.plot(x, y, color=colour, alpha=0.6, linewidth=1.0)
        shade = np.linspace(0.25, 1.0, len(x))
        ax.scatter(x, y, color=colour, alpha=shade, s=24, label=f"{label} (darker = later)")
        ax.scatter(x[-1:], y[-1:], color=colour, marker="*", s=200, edgecolor="black")
        drawn = True
    ax.set(title="Equality against productivity over training (star: last iteration)",
           xlabel="productivity (apples per episode)", ylabel="equality (1 - Gini)")
    return finish(fig, axes, path, [drawn])


def plot_throughput(runs: Sequence[tuple[str, list[dict]]], path: str, **size: int) -> str:
    fig, axes = new_figure(rows=2, **size)
    drawn = [False, False]
    for c, (label, records) in enumerate(runs):
        colour = f"C{c % 10}"
        drawn[0] |= _line(axes[0], *series(records, "game_steps_per_s", "iteration"),
                          color=colour, label=label)
        drawn[1] |= _line(axes[1], *series(records, "time_this_iter_s", "iteration"),
                          color=colour, label=label)
    axes[0].set(title="Sampling throughput", ylabel="game steps per second")
    axes[1].set(title="Time per iteration", ylabel="seconds", xlabel="training iteration")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return finish(fig, axes, path, drawn)


def plot_learning_curve(runs: Sequence[tuple[str, list[dict]]], path: str, *,
                        width: int = 1000, height: int = 900, dpi: int = 100) -> str:
    """Writes `learning_curve_figure` to `path` (PNG); returns the path."""
    fig, axes, drawn = learning_curve_figure(runs, width=width, height=height, dpi=dpi)
    return finish(fig, axes, path, drawn)


def learning_curve_figure(runs: Sequence[tuple[str, list[dict]]], *, width: int = 1000,
                          height: int = 900, dpi: int = 100
                          ) -> tuple[Figure, np.ndarray, list[bool]]:
    """The learning curve's figure, its three axes and which of them drew a curve:
    apples per episode (productivity), the principal's objective W_eta per
    episode (paper Section 4) and its mean rate per bracket (one colour per bracket
    for one run; for several, the run's colour and a line style per bracket; dotted:
    the cap), over game steps. Only iterations in which episodes ended are
    drawn (a stale record repeats older episodes). A dotted vertical line marks where
    a jax run's principal joined (`principal_active`; before it the players train
    alone, untaxed)."""
    fig, axes = new_figure(width, height, dpi, rows=3)
    drawn = [False, False, False]
    styles = ("-", "--", "-.", (0, (5, 1, 1, 1)))
    for c, (label, records) in enumerate(runs):
        colour = f"C{c % 10}"
        fresh = [r for r in records if not r.get("metrics_stale")]
        drawn[0] |= _line(axes[0], *series(fresh, "productivity"), color=colour, label=label)
        drawn[1] |= _line(axes[1], *series(fresh, "objective"), color=colour, label=label)
        num_brackets = max((runlog.num_brackets_of(r) for r in fresh), default=0)
        for b in range(num_brackets):
            one = len(runs) == 1
            drawn[2] |= _line(axes[2], *series(fresh, f"rate_b{b}"),
                              color=f"C{b % 10}" if one else colour,
                              linestyle="-" if one else styles[b % len(styles)],
                              label=f"{label}: bracket {b}")
        _line(axes[2], *series(fresh, "tax_cap"), color="grey" if len(runs) == 1 else colour,
              linestyle=":", marker=None, label=f"{label}: cap")
        joined = next((r.get(X_KEY) for r in records if r.get("principal_active")), None)
        if joined is not None and any(not r.get("principal_active") for r in records):
            for ax in axes:
                ax.axvline(joined, color=colour, linestyle=":", alpha=0.6,
                           label=f"{label}: principal joins" if ax is axes[0] else None)
    axes[0].set(title="Apples per episode (productivity)",
                ylabel="apples per episode")
    axes[1].set(title="The principal's objective W_eta per episode", ylabel="W_eta (apples)")
    axes[2].set(title="The principal's tax rates (mean per bracket)",
                ylabel="effective rate (0-1)", ylim=(-0.03, 1.03), xlabel=X_LABEL)
    return fig, axes, drawn


PLOTS: dict[str, Callable[..., str]] = {
    "learning_curve": plot_learning_curve,
    "objective": plot_objective,
    "returns": plot_returns,
    "tax_rates": plot_tax_rates,
    "equality_productivity": plot_equality_productivity,
    "throughput": plot_throughput,
}


def plot_runs(run_dirs: Sequence[str], output_dir: str, *, width: int = 1000,
              height: int = 700, dpi: int = 100) -> list[str]:
    """Writes every plot in PLOTS for the runs (overlaid) as
    `output_dir/<name>.png` of width x height pixels; returns the paths."""
    if not run_dirs:
        raise ValueError("give at least one run directory")
    if width < 100 or height < 100 or dpi < 10:
        raise ValueError(f"image {width}x{height} at dpi {dpi} is too small "
                         "(>= 100x100 pixels, dpi >= 10)")
    runs = list(zip(run_labels(run_dirs), [load_progress(d) for d in run_dirs], strict=True))
    os.makedirs(output_dir, exist_ok=True)
    return [fn(runs, os.path.join(output_dir, f"{name}.png"), width=width, height=height,
               dpi=dpi) for name, fn in PLOTS.items()]
