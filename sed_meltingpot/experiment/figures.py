"""The results experiment's figures (PNG): learning curves, equality against
productivity, and the sampled principal's rates against eta.

One panel per (definition, objective) or per definition, one colour per principal
(or bracket), bands = 95% t-intervals over seeds. Drawn with sed_meltingpot.analysis.plotting's
figure helpers (`new_figure`, `finish`), imported where a figure is drawn so that
importing the experiment does not import matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sed_meltingpot.experiment.curves import Panels, band, panel_curve
from sed_meltingpot.experiment.grid import DEFAULT_WELFARE_ON, PRINCIPALS, SAMPLED
from sed_meltingpot.experiment.stats import cell_rows, rates_by_eta


def _colour(principal: str, fallback: int) -> str:
    return f"C{PRINCIPALS.index(principal) % 10 if principal in PRINCIPALS else fallback % 10}"


def _panels(count: int, width: int, height: int, dpi: int) -> tuple[Any, Any, int]:
    """A figure of `count` panels, 2 per row (1 if only one); rows beyond 2 add height."""
    from sed_meltingpot.analysis.plotting import new_figure

    cols = 2 if count > 1 else 1
    rows = max(1, math.ceil(count / cols))
    fig, axes = new_figure(width, int(height * max(1.0, rows / 2)), dpi, rows, cols)
    return fig, axes, cols


def _hide_unused(axes: Any, used: int, drawn: list[bool]) -> None:
    for j in range(used, len(axes)):
        axes[j].set_visible(False)
        drawn[j] = True


def plot_learning_curves(curves: Panels, path: str, *, width: int = 1200, height: int = 800,
                         dpi: int = 100) -> str:
    """``curves[(welfare_on, objective)][principal]`` = the progress records of each seed's
    run. One panel per definition and objective, one line per principal (mean over
    seeds, band = 95% t-interval)."""
    from sed_meltingpot.analysis.plotting import finish

    panels = list(curves)
    fig, axes, _ = _panels(len(panels), width, height, dpi)
    drawn = [False] * len(axes)
    for i, (w, o) in enumerate(panels):
        ax = axes[i]
        for c, (p, runs) in enumerate(curves[(w, o)].items()):
            x, mean, lo, hi = band([panel_curve(r, o, w) for r in runs])
            if not len(x):
                continue
            colour = _colour(p, c)
            ax.plot(x, mean, color=colour, label=f"{p} ({len(runs)} seeds)",
                    marker="o" if len(x) <= 30 else None, markersize=3)
            if np.isfinite(lo).any():
                ax.fill_between(x, lo, hi, color=colour, alpha=0.2)
            drawn[i] = True
        title = ("sampled eta (W at each episode's eta)" if o == SAMPLED
                 else f"objective {o}")
        ax.set(title=f"{title}, welfare_on={w}", xlabel="game steps",
               ylabel="W_eta per episode")
    _hide_unused(axes, len(panels), drawn)
    return finish(fig, axes, path, drawn)


def plot_equality_productivity(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                               principals: Sequence[str], substrate: str, path: str, *,
                               welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,),
                               width: int = 1200, height: int = 800, dpi: int = 100) -> str:
    """Per definition and objective: equality (1 - Gini of apples) against productivity,
    one small point per seed and a large one for the mean, per principal."""
    from sed_meltingpot.analysis.plotting import finish

    panels = [(w, o) for w in welfare_on for o in objectives]
    fig, axes, _ = _panels(len(panels), width, height, dpi)
    drawn = [False] * len(axes)
    for i, (w, o) in enumerate(panels):
        ax = axes[i]
        for c, p in enumerate(principals):
            cell = cell_rows(rows, o, p, substrate, w)
            pts = np.array([(r["productivity"], r["equality"]) for r in cell], dtype=float)
            pts = pts[np.isfinite(pts).all(axis=1)] if len(pts) else pts
            if not len(pts):
                continue
            colour = _colour(p, c)
            ax.scatter(pts[:, 0], pts[:, 1], color=colour, alpha=0.4, s=18)
            ax.scatter(*pts.mean(axis=0), color=colour, s=120, edgecolor="black", label=p)
            drawn[i] = True
        ax.set(title=f"objective {o}, welfare_on={w}",
               xlabel="productivity (apples per episode)", ylabel="equality (1 - Gini)")
    _hide_unused(axes, len(panels), drawn)
    return finish(fig, axes, path, drawn)


def plot_rates_vs_eta(rows: Sequence[Mapping[str, Any]], substrate: str, num_brackets: int,
                      path: str, *, welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,),
                      width: int = 1200, height: int = 500, dpi: int = 100) -> str:
    """The sampled principal's learned rates against eta (`rates_by_eta`): one panel per
    definition, one line per bracket (mean over seeds), band = 95% t-interval over
    seeds."""
    from sed_meltingpot.analysis.plotting import finish

    fig, axes, _ = _panels(len(welfare_on), width, height, dpi)
    drawn = [False] * len(axes)
    for i, w in enumerate(welfare_on):
        ax = axes[i]
        table = rates_by_eta(rows, substrate, num_brackets, w)
        etas = np.array([eta for eta, _, _ in table])
        for b in range(num_brackets):
            stats = [s[b] for _, s, _ in table]
            if not stats:
                continue
            mean = np.array([s.mean for s in stats])
            ax.plot(etas, mean, color=f"C{b}", marker="o", label=f"bracket {b}")
            lo, hi = np.array([s.ci_low for s in stats]), np.array([s.ci_high for s in stats])
            if np.isfinite(lo).any():
                ax.fill_between(etas, lo, hi, color=f"C{b}", alpha=0.2)
            drawn[i] = True
        seeds = max((n for _, _, n in table), default=0)
        ax.set(title=f"sampled principal, welfare_on={w} ({seeds} seeds)", xlabel="eta",
               ylabel="mean effective rate", ylim=(-0.05, 1.05))
    _hide_unused(axes, len(welfare_on), drawn)
    return finish(fig, axes, path, drawn)
