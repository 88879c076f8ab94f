"""The scaling benchmark's outputs (`scripts/benchmark_scale.py`): the machine, the
growth exponents, the Markdown tables, the CSV and JSON of every row, and the plot.

Pure functions of the rows (`scale_benchmark.Row`, `scale_memory.MemoryRow`), apart
from `machine` (what ran them) and the writers, so that the fit and the tables can be
checked on hand-made rows without timing anything.

The exponent: cost per game step grows as c x players^k; k is the slope of the least-
squares line of log(seconds per game step) on log(players), over a series' rows (one
per player count; at least two counts, else no fit). k = 1 is the cost of a game step
growing as its players (a constant cost per agent step); k < 1 is batching gained with
players, k > 1 something that grows faster than the players (who-sees-whom, all pairs).
"""

from __future__ import annotations

import csv
import json
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

from sed_meltingpot.perf.scale_benchmark import Row
from sed_meltingpot.perf.scale_memory import MemoryRow

#: The files `write` makes in the output folder.
CSV_NAME, JSON_NAME, TABLE_NAME, PLOT_NAME = ("scaling.csv", "scaling.json", "scaling.md",
                                              "scaling.png")


def machine() -> dict[str, Any]:
    """What ran the rows: the CPUs, jax's backend and device, the load when asked."""
    import jax

    device = jax.devices()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {"cpus": os.cpu_count(), "usable_cpus": usable, "machine": platform.machine(),
            "jax": jax.__version__, "backend": jax.default_backend(),
            "device_kind": device.device_kind, "device_count": jax.device_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def machine_line(info: dict[str, Any]) -> str:
    return (f"machine: {info['usable_cpus']} usable of {info['cpus']} CPU(s) "
            f"({info['machine']}), jax {info['jax']} on {info['backend']} "
            f"({info['device_count']} x {info['device_kind']}), load average "
            f"{' / '.join(str(x) for x in info['load_average'])} (1/5/15 min)")


def fit_exponent(players: Sequence[float], seconds_per_game_step: Sequence[float]
                 ) -> tuple[float, float]:
    """(k, c) of seconds = c x players^k, least squares on the logs. ValueError for
    fewer than two player counts or a value <= 0."""
    x, y = np.asarray(players, np.float64), np.asarray(seconds_per_game_step, np.float64)
    if x.shape != y.shape or len(np.unique(x)) < 2:
        raise ValueError(f"an exponent needs two or more player counts, got {list(x)}")
    if (x <= 0).any() or (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("players and seconds must be positive and finite")
    k, log_c = np.polyfit(np.log(x), np.log(y), 1)
    return float(k), float(np.exp(log_c))


def fits(rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """{series: {"exponent", "coefficient", "points"}} of the env and training rows against
    players (the plan and population rows vary something else); a series with one
    player count has no fit."""
    out = {}
    by_series: dict[str, list[Row]] = {}
    for r in rows:
        if r.section in ("env", "train"):
            by_series.setdefault(r.series, []).append(r)
    for series, group in by_series.items():
        if len({r.players for r in group}) < 2:
            continue
        k, c = fit_exponent([r.players for r in group],
                            [r.seconds_per_game_step for r in group])
        out[series] = {"exponent": k, "coefficient": c, "points": len(group)}
    return out


def timing_table(rows: Sequence[Row]) -> list[str]:
    lines = ["| section | players | map | locality | plan | runs | games x steps | median s "
             "| calls | game steps/s | agent steps/s | us per game step | setup s |",
             "|---|---:|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.section}{note} | {r.players} | {r.map_name} {r.height}x{r.width} | "
            f"{r.locality} | {r.plan} | {r.runs} | {r.games} x {r.steps} | "
            f"{r.median_s:.4g} | {r.calls} | {r.game_steps_per_s:,.0f} | "
            f"{r.agent_steps_per_s:,.0f} | {1e6 * r.seconds_per_game_step:,.2f} | "
            f"{r.setup_s:.1f} |")
    return lines


def memory_table(rows: Sequence[MemoryRow]) -> list[str]:
    lines = ["| players | map | state bytes | observation bytes | game bytes "
             "| players' rollout row bytes | rollout bytes per game step |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {m.players} | {m.map_name} | {m.state_bytes:,} | {m.obs_bytes:,} | "
              f"{m.game_bytes:,} | {m.rollout_row_bytes:,.2f} | "
              f"{m.rollout_bytes_per_game_step:,.0f} |" for m in rows]
    return lines


def report(info: dict[str, Any], rows: Sequence[Row], memory: Sequence[MemoryRow]) -> str:
    """The whole report as Markdown: the machine, the timed rows, the fits, the memory."""
    lines = [machine_line(info), ""]
    if rows:
        lines += timing_table(rows) + [""]
        for series, f in fits(rows).items():
            lines.append(f"* {series}: seconds per game step ~ {f['coefficient']:.3g} x "
                         f"players^{f['exponent']:.2f} ({f['points']} rows)")
        lines.append("")
    if memory:
        lines += memory_table(memory) + [""]
    return "\n".join(lines)


def write(folder: str, info: dict[str, Any], rows: Sequence[Row],
          memory: Sequence[MemoryRow], plot: bool = True) -> list[str]:
    """scaling.csv (every row, memory rows included, the union of their columns),
    scaling.json (the machine, the rows, the fits), scaling.md (`report`) and
    scaling.png (`plot`); returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    records = [r.record() for r in rows] + [m.record() for m in memory]
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    paths = [os.path.join(folder, name) for name in (CSV_NAME, JSON_NAME, TABLE_NAME)]
    with open(paths[0], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(records)
    with open(paths[1], "w") as f:
        json.dump({"machine": info, "rows": records, "fits": fits(rows)}, f, indent=1)
    with open(paths[2], "w") as f:
        f.write(report(info, rows, memory))
    if plot:
        paths.append(os.path.join(folder, PLOT_NAME))
        save_plot(paths[-1], rows, info)
    return paths


def save_plot(path: str, rows: Sequence[Row], info: dict[str, Any]) -> None:
    """Two panels: cost per game step against players (log-log, each series with its
    fitted line and exponent in the legend), and the population's total game steps/s
    against its runs."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    found = fits(rows)
    by_series: dict[str, list[Row]] = {}
    for r in rows:
        if r.section in ("env", "train"):
            by_series.setdefault(r.series, []).append(r)
    for series, group in by_series.items():
        group = sorted(group, key=lambda r: r.players)
        x = np.array([r.players for r in group], np.float64)
        y = np.array([r.seconds_per_game_step for r in group])
        f = found.get(series)
        label = (f"{series}: exponent {f['exponent']:.2f}" if f
                 else f"{series}: exponent n/a (one size)")
        points = left.loglog(x, y, "o", label=label)[0]
        if f:
            line = np.geomspace(x.min(), x.max(), 50)
            left.loglog(line, f["coefficient"] * line ** f["exponent"], "-",
                        color=points.get_color(), alpha=0.6)
    left.set_xlabel("players")
    left.set_ylabel("seconds per game step (median call)")
    left.set_title("cost per game step against players")
    if by_series:
        left.legend(fontsize=8)
    population = sorted((r for r in rows if r.section == "population"), key=lambda r: r.runs)
    if population:
        right.plot([r.runs for r in population], [r.game_steps_per_s for r in population],
                   "o-", label=f"{population[0].players} players, "
                   f"{population[0].games} games x {population[0].steps} steps per run")
        right.set_xscale("log", base=2)
        right.set_xticks([r.runs for r in population], [str(r.runs) for r in population])
        right.set_ylim(bottom=0)
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no population rows", ha="center", va="center",
                   transform=right.transAxes)
    right.set_xlabel("runs in one program (population size)")
    right.set_ylabel("game steps/s, all runs")
    right.set_title("training throughput against population size")
    fig.suptitle(machine_line(info), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
