"""The results summary (issue 29): does a learned principal beat the best baseline?

One row per (grid, welfare definition, objective) over every committed experiment call
(`docs/results/<call>/results.csv` and its `experiment.json`): the learned principal,
the best baseline (the highest mean W_eta over seeds, on the engine's substrate), their
difference paired by training seed with its 95% Student-t interval, the Holm-adjusted
p of that comparison and a verdict (`verdict`). The statistics are the experiment's own
(`stats.comparisons`: scipy's paired t-test by seed, Holm's step-down correction;
`evaluation.mean_ci`: the t-interval); this module chooses the rows and lays them out.

The Holm family of a row is the comparisons of `learned` with every baseline that has
rows in that (grid, definition, objective), pooled over the grid's calls; the sampled
principal is left out (it is another learner, and results.md's tables, whose family
includes it, stay as they are).

Calls of one grid (`experiment.json`'s grid name) are merged (`merge_calls`): they ran
the same game, budget and evaluation (`SAME_GRID_FIELDS`), on the same training and
evaluation seeds, so a (definition, objective, principal, seed, substrate) that two
calls hold must hold the same W_eta (the runs reproduce bit for bit); a difference is
an error, never averaged. Calls that do not count are listed in `NOT_COUNTED` with the
reason (superseded tables are on the archive page).

Pure functions of rows and files; matplotlib is imported where the forest plot is drawn.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sed_meltingpot.evaluation.stats import Stat, mean_ci
from sed_meltingpot.experiment.grid import (
    LEARNED,
    LEARNERS,
    OBJECTIVES,
    PRINCIPALS,
    SUBSTRATE_LUA,
    SUBSTRATE_TWIN,
)
from sed_meltingpot.experiment.rows import definition_of, read_csv, read_experiment_json
from sed_meltingpot.experiment.stats import cell_values, comparisons, seed_values

#: Committed calls left out of the summary, with the reason the results page gives.
NOT_COUNTED: dict[str, str] = {
    "small": "superseded (archive): the learned principal before its recipe, 4 evaluation "
             "episodes per run, Welch tests",
    "budget": "a check of the training budget (4x iterations, learned and none only, the "
              "principal before its recipe), not a comparison of the grid",
    "small_ucb_detrended": "ucb with --ucb_detrend=1, another principal under the ucb "
                           "name, compared with the plain ucb on its own page",
    "paper_fast_late": "the learned principal joining at 40% of a run, another principal "
                       "under the learned name, compared with the recipe on its own page",
    "paper_fast_ucb_detrended": "ucb with --ucb_detrend=2, another principal under the ucb "
                                "name, compared with the plain ucb on its own page",
    "paper_fast_search_replication": "the search, none and flat100 on fresh seeds 8-19 "
                                     "without the learned principal, a replication on its "
                                     "own page",
    "small_search_least_tax": "the search with 16 search seeds and the least-tax rule, "
                              "another principal under the search name, on its own page",
    "small_search_no_cut": "the search with no cut, 16 fresh search seeds and the least-tax "
                           "rule, another principal under the search name, on its own page",
}
#: The page of a call whose results another call's page presents (default: <call>.md).
PAGE_OF = {"paper_fast_s3": "paper_fast", "paper_fast_pooled": "paper_fast",
           "paper_fast_s67": "paper_fast_designers", "paper_fast_ucb": "paper_fast_designers",
           "paper_fast_search_s05": "paper_fast_designers"}
#: Calls superseded by later ones: the archive page keeps their tables.
SUPERSEDED = ("small",)
#: experiment.json grid fields that calls merged into one grid must share (the sampled
#: principal's recipe fields, the seeds and the definitions run may differ).
SAME_GRID_FIELDS = ("name", "game", "num_iterations", "twin_iterations", "num_envs",
                    "rollout_length", "frame_stack", "preset", "eval_episodes",
                    "tax_cap_fraction", "recipe")
#: Holm-adjusted p below which a difference is called (two-sided).
ALPHA = 0.05
#: Markers around the generated table in docs/results/index.md.
START, END = "<!-- summary:start -->", "<!-- summary:end -->"
DEFINITION_NAMES = {"apples": "apples eaten", "taxed": "post-tax income"}


@dataclasses.dataclass(frozen=True)
class Call:
    """One committed experiment call: its folder name, grid name, engine and rows."""

    name: str
    grid: str
    engine: str
    grid_fields: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """The learned principal against the best baseline in one (grid, definition,
    objective); `diff` is the mean of the per-seed differences learned - best and
    `diff_ci` its 95% t-interval; `p_holm` is over `family_size` comparisons."""

    grid: str
    welfare_on: str
    objective: str
    calls: tuple[str, ...]
    n: int
    learned: Stat
    best: str
    best_stat: Stat
    diff: Stat
    p: float
    p_holm: float
    family_size: int
    verdict: str


def verdict(diff: float, p_holm: float, alpha: float = ALPHA) -> str:
    """"wins" (difference > 0 and Holm p < alpha), "loses" (< 0 and Holm p < alpha),
    else "ties": a difference the family-wise test cannot tell from noise is a tie,
    whatever its sign or its unadjusted interval."""
    if math.isfinite(p_holm) and p_holm < alpha:
        if diff > 0:
            return "wins"
        if diff < 0:
            return "loses"
    return "ties"


def read_call(folder: str) -> Call:
    """The call in `folder` (results.csv and experiment.json); ValueError naming the
    file when one is damaged."""
    info = read_experiment_json(os.path.join(folder, "experiment.json"))
    return Call(name=os.path.basename(os.path.normpath(folder)), grid=info["grid"]["name"],
                engine=info["meta"]["engine"], grid_fields=info["grid"],
                rows=read_csv(os.path.join(folder, "results.csv")))


def counted_folders(results_dir: str) -> list[str]:
    """The call folders under `results_dir` with a results.csv, but `NOT_COUNTED`, sorted."""
    return sorted(os.path.join(results_dir, name) for name in os.listdir(results_dir)
                  if os.path.isfile(os.path.join(results_dir, name, "results.csv"))
                  and name not in NOT_COUNTED)


def _key(row: Mapping[str, Any]) -> tuple:
    return (definition_of(row), row["objective"], row["principal"], int(row["seed"]),
            row["substrate"])


def merge_calls(calls: Sequence[Call]) -> dict[str, list[dict]]:
    """{grid: the rows of learned and every baseline over the grid's calls}, grids in the
    order they first appear; each row's `calls` holds the names of the calls that hold it.
    ValueError where calls of one grid differ in a `SAME_GRID_FIELDS` field or engine,
    or hold one row key with different W_eta."""
    merged: dict[str, list[dict]] = {}
    first: dict[str, Call] = {}
    seen: dict[tuple, tuple[str, float, dict]] = {}
    for call in calls:
        ref = first.setdefault(call.grid, call)
        differ = [k for k in SAME_GRID_FIELDS
                  if call.grid_fields.get(k) != ref.grid_fields.get(k)]
        if call.engine != ref.engine:
            differ.append("engine")
        if differ:
            raise ValueError(f"{call.name} and {ref.name} both ran grid {call.grid} but "
                             f"differ in {', '.join(differ)}: not one grid")
        rows = merged.setdefault(call.grid, [])
        for row in call.rows:
            if row["principal"] in LEARNERS and row["principal"] != LEARNED:
                continue
            key = (call.grid, *_key(row))
            if key in seen:
                other, value, kept = seen[key]
                if value != float(row["W_eta"]):
                    raise ValueError(f"{call.name} and {other} hold {key} with W_eta "
                                     f"{row['W_eta']!r} and {value!r}: not the same run")
                kept["calls"] += (call.name,)
                continue
            kept = {**row, "calls": (call.name,)}
            seen[key] = (call.name, float(row["W_eta"]), kept)
            rows.append(kept)
    return merged


def _objective_order(label: str) -> tuple[int, str]:
    known = list(OBJECTIVES)
    return (known.index(label) if label in known else len(known), label)


def summarise_grid(grid: str, rows: Sequence[Mapping[str, Any]],
                   substrate: str = SUBSTRATE_TWIN) -> list[SummaryRow]:
    """One `SummaryRow` per (definition, objective) where `learned` has rows on
    `substrate` and at least one baseline does too; the best baseline is the one with
    the highest mean W_eta, compared by `stats.comparisons` (paired t by seed, Holm
    over learned against each of the baselines there)."""
    out = []
    cells = {(definition_of(r), r["objective"]) for r in rows
             if r["principal"] == LEARNED and r["substrate"] == substrate}
    for w, o in sorted(cells, key=lambda c: (c[0], _objective_order(c[1]))):
        baselines = [p for p in PRINCIPALS if p not in LEARNERS
                     and cell_values(rows, o, p, "W_eta", substrate, w)]
        if not baselines:
            continue
        tests = {t["baseline"]: t for t in comparisons(
            rows, [o], [LEARNED, *baselines], substrate, [w])}
        means = {p: mean_ci(cell_values(rows, o, p, "W_eta", substrate, w))
                 for p in baselines}
        best = max(baselines, key=lambda p: means[p].mean)
        ours = seed_values(rows, o, LEARNED, "W_eta", substrate, w)
        theirs = seed_values(rows, o, best, "W_eta", substrate, w)
        diffs = mean_ci(ours[s] - theirs[s] for s in sorted(ours) if s in theirs)
        test = tests[best]
        calls = sorted({c for r in rows if definition_of(r) == w and r["objective"] == o
                        for c in r.get("calls", ())})
        out.append(SummaryRow(
            grid=grid, welfare_on=w, objective=o, calls=tuple(calls), n=test["n"],
            learned=mean_ci(ours.values()), best=best, best_stat=means[best], diff=diffs,
            p=test["p"], p_holm=test["p_holm"], family_size=len(tests),
            verdict=verdict(diffs.mean, test["p_holm"])))
    return out


def summarise(calls: Sequence[Call]) -> list[SummaryRow]:
    """Every grid's rows (`merge_calls`, then `summarise_grid` on each engine's
    substrate: the twin for jax, Lua for rllib)."""
    engines = {c.grid: c.engine for c in calls}
    out = []
    for grid, rows in merge_calls(calls).items():
        substrate = SUBSTRATE_TWIN if engines[grid] == "jax" else SUBSTRATE_LUA
        out += summarise_grid(grid, rows, substrate)
    return out


def summarise_folder(results_dir: str, order: Sequence[str] = ("small", "paper_fast")
                     ) -> list[SummaryRow]:
    """`summarise` over `counted_folders(results_dir)`, grids in `order` first."""
    rows = summarise([read_call(f) for f in counted_folders(results_dir)])
    rank = {g: k for k, g in enumerate(order)}
    return sorted(rows, key=lambda r: rank.get(r.grid, len(rank)))  # stable within a grid


def _num(x: float, signed: bool = False) -> str:
    return "n/a" if not math.isfinite(x) else (f"{x:+.1f}" if signed else f"{x:.1f}")


def _stat(s: Stat) -> str:
    return f"{_num(s.mean)} ± {_num(s.half_width)}"


def _p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else f"{p:.3f}"


def objective_label(objective: str) -> str:
    """"eta=0.5" -> "eta = 0.5"; "voted" stays."""
    return objective.replace("=", " = ")


def summary_table(rows: Iterable[SummaryRow]) -> str:
    """The Markdown table of the results page (links to each call's page)."""
    lines = ["| grid | W on | objective | seeds | learned | best baseline "
             "| learned - best (95% CI) | p | Holm p (family) | verdict | pages |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"{_num(r.diff.mean, True)} ({_num(r.diff.ci_low, True)}, " \
             f"{_num(r.diff.ci_high, True)})"
        mark = "**" if r.verdict != "ties" else ""
        pages = dict.fromkeys(PAGE_OF.get(c, c) for c in r.calls)
        calls = ", ".join(f"[{c}]({c}.md)" for c in pages)
        lines.append(
            f"| {r.grid} | {DEFINITION_NAMES.get(r.welfare_on, r.welfare_on)} "
            f"| {objective_label(r.objective)} | {r.n} | {_stat(r.learned)} "
            f"| {r.best} {_stat(r.best_stat)} | {ci} | {_p(r.p)} "
            f"| {_p(r.p_holm)} ({r.family_size}) | {mark}{r.verdict}{mark} | {calls} |")
    return "\n".join(lines)


def replace_between_markers(text: str, body: str, start: str = START, end: str = END) -> str:
    """`text` with what lies between the `start` and `end` lines replaced by `body`
    (ValueError unless each marker occurs once, start first), so the page's prose stays."""
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"the page needs one {start} line before one {end} line")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def between_markers(text: str, start: str = START, end: str = END) -> str:
    """What `replace_between_markers` put between the markers (stripped)."""
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, flags=re.S)
    if not match:
        raise ValueError(f"no {start} ... {end} block")
    return match.group(1).strip()


def plot_forest(rows: Sequence[SummaryRow], path: str, *, dpi: int = 100) -> str:
    """A forest plot: one line per row (grid, definition, objective), the paired difference
    learned - best baseline with its 95% t-interval, one panel per grid (W_eta scales
    differ by game), coloured by verdict."""
    from sed_meltingpot.analysis.plotting import new_figure

    grids = list(dict.fromkeys(r.grid for r in rows))
    sizes = [sum(r.grid == g for r in rows) for g in grids]
    fig, axes = new_figure(1000, int(dpi * (1.6 + 0.32 * sum(sizes) + 0.6 * len(grids))), dpi,
                           len(grids), 1)
    colours = {"wins": "tab:green", "ties": "tab:grey", "loses": "tab:red"}
    for ax, grid in zip(axes, grids, strict=True):
        mine = [r for r in rows if r.grid == grid]
        y = np.arange(len(mine))[::-1]
        for yy, r in zip(y, mine, strict=True):
            ax.plot([r.diff.ci_low, r.diff.ci_high], [yy, yy], color=colours[r.verdict], lw=2)
            ax.plot([r.diff.mean], [yy], "o", color=colours[r.verdict])
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(y, [f"{DEFINITION_NAMES.get(r.welfare_on, r.welfare_on)}, "
                          f"{objective_label(r.objective)}, {r.n} seeds: vs {r.best}, "
                          f"Holm p {_p(r.p_holm)}" for r in mine])
        ax.set_ylim(-0.7, len(mine) - 0.3)
        ax.set_title(f"grid {grid}", fontsize="medium")
        ax.grid(alpha=0.3, axis="x")
    for verdict_name, colour in colours.items():
        axes[0].plot([], [], "o-", color=colour, label=verdict_name)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3,
               fontsize="small", title="learned - best baseline, W_eta, 95% t-interval over "
               "training seeds; verdict by Holm p < 0.05", title_fontsize="small")
    axes[-1].set_xlabel("learned - best baseline (> 0: the learned principal is ahead)")
    fig.savefig(path, dpi=dpi)
    return path
