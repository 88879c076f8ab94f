"""The results experiment (issue 10): does a learned principal beat the baselines?

Pure parts of `scripts/experiment.py` (no training, no Ray, no JAX here):

* the grids (`GRIDS`: smoke, small, paper): game, training budget per run,
  evaluation episodes and the grid search's size;
* the objectives (`OBJECTIVES`): eta fixed at 0 (egalitarian), 0.5 and 1
  (utilitarian) through the `fixed:<eta>` voting rule, and the voted eta (the
  paper's mean vote, Section 4) of the players' sampled types;
* the principals (`PRINCIPALS`): learned (co-trained), none, three fixed
  schedules, random, and the best fixed schedule found by grid search against
  the players trained with the learned principal;
* the plan (`plan_training`, `plan_evaluation`): the players' rewards (paper
  Eq. 8) do not depend on eta, so a run whose principal is not learned is the
  same training for every objective; it is trained once per (principal, seed)
  and evaluated under each objective. A learned principal observes eta and is
  rewarded by W_eta, so it is trained once per (objective, seed);
* the statistics: mean and 95% Student-t interval per cell over seeds
  (`evaluation.mean_ci`), Welch's t-test (scipy.stats) of the learned principal
  against each baseline and Holm's step-down correction (`holm`);
* the outputs: `results.csv` (one row per objective, principal, seed and
  substrate), `results.md`, learning curves and an equality-productivity
  scatter (PNG).

The unit of replication is the training seed: each row is the mean over the
evaluation episodes of one trained run, played on held-out seeds
(`EVAL_SEED`, far from every training seed) that are the same for every
principal, so all principals are judged in the same worlds.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sed_meltingpot import voting
from sed_meltingpot.config import GameConfig
from sed_meltingpot.evaluation import METRIC_LABELS, METRICS, SEARCH_SEED_OFFSET, Stat, mean_ci

# ----------------------------------------------------------------- the grid
#: Objectives: a label and the voting rule that sets eta (paper Section 4).
OBJECTIVES: dict[str, str] = {
    "eta=0": "fixed:0",
    "eta=0.5": "fixed:0.5",
    "eta=1": "fixed:1",
    "voted": "mean",
}
#: Fixed schedules, rates per bracket (brackets of GameConfig.thresholds:
#: 1-10, 11-20, 21+ apples per period). Flat taxes every apple at 30%;
#: progressive and regressive raise or lower the rate by 20 points per
#: bracket around the same middle rate.
SCHEDULES: dict[str, tuple[float, ...]] = {
    "flat": (0.3, 0.3, 0.3),
    "progressive": (0.1, 0.3, 0.5),
    "regressive": (0.5, 0.3, 0.1),
}
LEARNED = "learned"
BEST_FIXED = "best_fixed"
#: Principals in table order; each baseline except best_fixed trains its own players.
PRINCIPALS = (LEARNED, "none", *SCHEDULES, "random", BEST_FIXED)
BASELINES = tuple(p for p in PRINCIPALS if p != LEARNED)
#: Principals whose players are trained under them (best_fixed reuses the learned run's).
TRAINED_PRINCIPALS = tuple(p for p in PRINCIPALS if p != BEST_FIXED)
#: The voting rule of runs whose principal is scripted; it changes nothing in
#: their training (players' rewards, Eq. 8, ignore eta) and is replaced at evaluation.
SCRIPTED_TRAINING_RULE = "mean"
#: First evaluation seed. Training seeds are < MAX_TRAIN_SEED and the RLlib env
#: derives env seeds seed + 10_007 * worker + 101 * vector from them, all far below.
EVAL_SEED = 50_000_000
MAX_TRAIN_SEED = 1_000_000
SUBSTRATE_TWIN, SUBSTRATE_LUA = "twin", "lua"


def principal_spec(name: str) -> str:
    """The training/evaluation spelling of a principal (`principals.parse_principal`)."""
    if name == LEARNED:
        return "learned"
    if name in ("none", "random"):
        return name
    if name in SCHEDULES:
        return "fixed:" + ",".join(f"{r:g}" for r in SCHEDULES[name])
    raise ValueError(f"principal {name!r} is trained with the learned principal's players; "
                     f"those with their own runs: {TRAINED_PRINCIPALS}")


@dataclasses.dataclass(frozen=True)
class Grid:
    """One experiment size. The budget is the same for every principal:
    `num_iterations` iterations of `train_batch_size` env steps (RLlib) or of
    `num_envs` x `rollout_length` game steps (JAX twin)."""

    name: str
    game: GameConfig
    num_seeds: int
    # Training, RLlib engine (TrainConfig fields; the rest are the fast preset's).
    num_iterations: int
    train_batch_size: int
    rollout_fragment_length: int
    frame_stack: int
    minibatch_size: int
    principal_minibatch_size: int
    # Training, JAX engine.
    twin_iterations: int
    num_envs: int
    rollout_length: int
    # Evaluation.
    eval_episodes: int
    search_resolution: int  # rates per bracket in the best_fixed grid search
    search_episodes: int
    preset: str = "fast"
    description: str = ""

    def budget(self, engine: str) -> int:
        """Env steps per training run (game steps plus a learned principal's turns)."""
        if engine == "jax":
            return self.twin_iterations * self.num_envs * self.rollout_length
        return self.num_iterations * self.train_batch_size


GRIDS: dict[str, Grid] = {
    "smoke": Grid(
        name="smoke", game=GameConfig(num_players=3, episode_length=50, tax_period=25),
        num_seeds=2, num_iterations=1, train_batch_size=100, rollout_fragment_length=100,
        frame_stack=1, minibatch_size=64, principal_minibatch_size=2,
        twin_iterations=1, num_envs=2, rollout_length=50,
        eval_episodes=1, search_resolution=2, search_episodes=1,
        description="wiring only: 3 players, 50-step episodes, one tiny iteration per run"),
    "small": Grid(
        name="small", game=GameConfig(num_players=4, episode_length=200, tax_period=50),
        num_seeds=5, num_iterations=40, train_batch_size=1000, rollout_fragment_length=200,
        frame_stack=1, minibatch_size=256, principal_minibatch_size=16,
        twin_iterations=150, num_envs=8, rollout_length=100,
        eval_episodes=4, search_resolution=2, search_episodes=2,
        description="4 players on the default map, 200-step episodes of 4 tax periods, "
                    "fast preset (1 pixel per tile, small networks), 1 frame"),
    "paper": Grid(
        name="paper", game=GameConfig(), num_seeds=5, num_iterations=10_000,
        train_batch_size=1000, rollout_fragment_length=200, frame_stack=4,
        minibatch_size=128, principal_minibatch_size=32,
        twin_iterations=1563, num_envs=32, rollout_length=200,
        eval_episodes=10, search_resolution=3, search_episodes=4, preset="paper",
        description="the paper's game (7 players, 1000-step episodes, tax period 50, "
                    "88x88 RGB, 4 frames), about 10M env steps per run; for a GPU machine"),
}


@dataclasses.dataclass(frozen=True)
class TrainTask:
    """Players (and, if learned, a principal) trained from scratch for one seed.

    `objective` is the objective label for a learned principal and None for a
    scripted one (its training serves every objective)."""

    principal: str
    objective: str | None
    seed: int

    @property
    def voting_rule(self) -> str:
        return OBJECTIVES[self.objective] if self.objective else SCRIPTED_TRAINING_RULE

    @property
    def key(self) -> str:
        """Folder name of the run, unique in the grid."""
        who = f"{self.principal}__{_slug(self.objective)}" if self.objective else self.principal
        return f"{who}__seed{self.seed}"


def _slug(label: str) -> str:
    return label.replace("=", "").replace(".", "p")


def plan_training(objectives: Sequence[str], principals: Sequence[str], seeds: Sequence[int]
                  ) -> list[TrainTask]:
    """Training runs: one per (objective, seed) for the learned principal, one
    per (principal, seed) for each scripted one (see the module docstring)."""
    tasks: list[TrainTask] = []
    for seed in seeds:
        for p in principals:
            if p == BEST_FIXED:
                continue
            if p == LEARNED:
                tasks += [TrainTask(LEARNED, o, seed) for o in objectives]
            else:
                tasks.append(TrainTask(p, None, seed))
    return tasks


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """One table cell for one seed: `principal` judged under `objective`,
    acting with the players of the run `task`."""

    objective: str
    principal: str
    task: TrainTask


def plan_evaluation(tasks: Sequence[TrainTask], objectives: Sequence[str],
                    principals: Sequence[str]) -> list[EvalItem]:
    """Every (objective, principal, seed) cell and the run whose players it uses:
    best_fixed uses the learned run of the same objective and seed."""
    items: list[EvalItem] = []
    for t in tasks:
        if t.principal == LEARNED:
            items.append(EvalItem(t.objective, LEARNED, t))
            if BEST_FIXED in principals:
                items.append(EvalItem(t.objective, BEST_FIXED, t))
        else:
            items += [EvalItem(o, t.principal, t) for o in objectives]
    return items


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Training seeds: distinct integers in [0, MAX_TRAIN_SEED)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    bad = [s for s in seeds if not 0 <= s < MAX_TRAIN_SEED]
    if bad:
        raise ValueError(f"--seeds: {bad} outside [0, {MAX_TRAIN_SEED - 1}] (evaluation uses "
                         f"held-out seeds from {EVAL_SEED})")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: {seeds} repeats a seed")
    return seeds


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' (inclusive) -> a list of seeds."""
    text = text.strip()
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(x) for x in text.split("-"))
            if hi < lo:
                raise ValueError
            return list(range(lo, hi + 1))
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--seeds={text!r} must be a comma list (0,1,2) or a range (0-4) "
                         "of integers") from None


# ------------------------------------------------------------------- rows
#: CSV columns besides the metrics ("objective" is the objective's label).
ID_COLUMNS = ("objective", "principal", "seed", "substrate", "players_from", "rates",
              "episodes")
#: The evaluation's metric "objective" (the value of W_eta) is the column W_eta
#: here, since "objective" names the cell's objective.
RENAME = {"objective": "W_eta"}


def metric_columns(num_brackets: int) -> list[str]:
    return [RENAME.get(m, m) for m in METRICS] + [f"rate_b{b}" for b in range(num_brackets)]


def episodes_row(episodes: Sequence[Mapping[str, float]], **ids: Any) -> dict[str, Any]:
    """One CSV row: the mean over the evaluation episodes of each scalar
    (NaN episodes skipped, as `evaluation.mean_ci` does), plus the ids."""
    if not episodes:
        raise ValueError("a row needs at least one evaluated episode")
    row: dict[str, Any] = dict(ids)
    row["episodes"] = len(episodes)
    for key in episodes[0]:
        row[RENAME.get(key, key)] = mean_ci(e[key] for e in episodes).mean
    return row


def write_csv(rows: Sequence[Mapping[str, Any]], path: str, num_brackets: int) -> str:
    columns = list(ID_COLUMNS) + metric_columns(num_brackets)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def read_csv(path: str) -> list[dict[str, Any]]:
    """Rows of `write_csv`, numbers as floats (seed and episodes as ints)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key in ("seed", "episodes"):
                row[key] = int(value)
            elif key not in ID_COLUMNS:
                row[key] = float(value) if value != "" else math.nan
    return rows


# ------------------------------------------------------------- statistics
def welch_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Welch's two-sample t-test (unequal variances) of mean(a) - mean(b),
    two-sided, by scipy.stats.ttest_ind(equal_var=False). NaN where a
    sample has fewer than two values or neither varies."""
    from scipy import stats

    x = np.asarray([v for v in a if math.isfinite(v)], dtype=float)
    y = np.asarray([v for v in b if math.isfinite(v)], dtype=float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    out = {"diff": diff, "t": math.nan, "df": math.nan, "p": math.nan,
           "n_a": len(x), "n_b": len(y)}
    if len(x) < 2 or len(y) < 2:
        return out
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if vx + vy == 0:
        return out
    res = stats.ttest_ind(x, y, equal_var=False)
    out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    out["df"] = float((vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)))
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control): the
    k-th smallest p (k from 0) is multiplied by (m - k), made monotone by a
    running maximum and capped at 1. NaN p-values are left out of the family
    and stay NaN."""
    idx = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    m = len(idx)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for k, i in enumerate(sorted(idx, key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        adjusted[i] = running
    return adjusted


def cell_values(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
                metric: str, substrate: str) -> list[float]:
    return [float(r[metric]) for r in rows if r["objective"] == objective
            and r["principal"] == principal and r["substrate"] == substrate]


def comparisons(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                principals: Sequence[str], substrate: str, metric: str = "W_eta"
                ) -> list[dict[str, Any]]:
    """The learned principal against each baseline, per objective, by Welch's
    t-test on the per-seed `metric`; Holm's correction over all the
    comparisons of the table (one family)."""
    tests = []
    for o in objectives:
        learned = cell_values(rows, o, LEARNED, metric, substrate)
        for p in principals:
            if p == LEARNED:
                continue
            tests.append({"objective": o, "baseline": p,
                          **welch_test(learned, cell_values(rows, o, p, metric, substrate))})
    for test, adj in zip(tests, holm([t["p"] for t in tests]), strict=True):
        test["p_holm"] = adj
    return tests


# ------------------------------------------------------------- results.md
TABLE_METRICS = ("W_eta", "utilitarian", "egalitarian", "nash_welfare", "equality",
                 "income_equality", "sustainability", "peace", "tax_revenue")


def format_stat(s: Stat, digits: int = 3) -> str:
    if not math.isfinite(s.mean):
        return "n/a"
    if not math.isfinite(s.half_width):
        return f"{s.mean:.{digits}g}"
    return f"{s.mean:.{digits}g} ± {s.half_width:.2g}"


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def _fmt_num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def cell_label(principal: str, substrate: str, engine_substrate: str) -> str:
    return principal if substrate == engine_substrate else f"{principal} ({substrate})"


def results_markdown(rows: Sequence[Mapping[str, Any]], *, objectives: Sequence[str],
                     principals: Sequence[str], substrate: str, meta: Mapping[str, Any],
                     num_brackets: int, figures: Sequence[str] = (),
                     learned_rates: Mapping[str, Sequence[Sequence[float]]] | None = None,
                     curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping]]]]
                     | None = None) -> str:
    """results.md: settings, one table per objective (mean ± 95% CI half-width
    over seeds), the Welch/Holm comparisons, the transfer gap if the learned
    principal was also played on the Lua substrate, whether the learning curves
    flattened (`budget_quarters` of `curves`), and the figures."""
    lines = [f"# Results: grid `{meta.get('grid')}`, engine `{meta.get('engine')}`", ""]
    for key in ("command", "seeds", "budget", "game", "evaluation", "wall_time"):
        if key in meta:
            lines.append(f"* {key.replace('_', ' ')}: {meta[key]}")
    lines += [
        "",
        "Each cell: mean ± half-width of the 95% Student-t interval over training seeds "
        "(n in brackets); a seed's value is the mean over its evaluation episodes, played "
        f"on held-out seeds (from {EVAL_SEED}) that are the same for every principal and "
        "training seed (common random numbers: worlds and the policies' sampling draws "
        "match, so differences come from the trained networks and the principal). "
        "W_eta = eta * sum_i a_i + (1 - eta) * min_i a_i over the episode's apples "
        "(paper Section 4). Players are trained from scratch under each principal with "
        "the same budget; best_fixed is the best fixed schedule found by grid search "
        "(on other held-out seeds) against the players trained with the learned "
        "principal, and is played with those players. The players' rewards (paper Eq. 8) "
        "do not depend on eta, so the runs of a scripted principal are trained once per "
        "seed and evaluated under every objective; the learned principal is trained once "
        "per objective and seed.",
        ""]
    substrates = sorted({r["substrate"] for r in rows}, key=lambda s: s != substrate)
    rate_keys = [f"rate_b{b}" for b in range(num_brackets)]
    for o in objectives:
        lines += [f"## Objective {o} (voting rule `{OBJECTIVES[o]}`)", ""]
        header = ["principal"] + [METRIC_LABELS.get(k, k) for k in TABLE_METRICS] + [
            "rates/bracket", "n"]
        body = []
        for p in principals:
            for sub in substrates:
                cell = [r for r in rows if r["objective"] == o and r["principal"] == p
                        and r["substrate"] == sub]
                if not cell:
                    continue
                stats = {k: mean_ci(float(r[k]) for r in cell) for k in TABLE_METRICS}
                rates = "/".join(f"{mean_ci(float(r[k]) for r in cell).mean:.2f}"
                                 for k in rate_keys)
                eta = mean_ci(float(r["eta"]) for r in cell).mean
                label = cell_label(p, sub, substrate)
                if o == "voted":
                    label += f" (eta {eta:.2f})"
                body.append([label] + [format_stat(stats[k]) for k in TABLE_METRICS]
                            + [rates, str(len(cell))])
        lines += _md_table(header, body) + [""]
    tests = comparisons(rows, objectives, principals, substrate)
    lines += ["## Learned principal against each baseline (W_eta)", "",
              "Welch's two-sample t-test over seeds (scipy.stats.ttest_ind, "
              "equal_var=False), two-sided; Holm's correction over all the comparisons "
              "below as one family. diff = learned - baseline; n/a where a cell has fewer "
              "than two seeds or no spread at all.", ""]
    body = [[t["objective"], t["baseline"], _fmt_num(t["diff"]), _fmt_num(t["t"]),
             _fmt_num(t["df"]), _fmt_p(t["p"]), _fmt_p(t["p_holm"]),
             "yes" if math.isfinite(t["p_holm"]) and t["p_holm"] < 0.05 else "no"]
            for t in tests]
    lines += _md_table(["objective", "baseline", "diff", "t", "df", "p", "p (Holm)",
                        "significant at 0.05"], body) + [""]
    gaps = transfer_gaps(rows, objectives, substrate)
    if gaps:
        lines += ["## Transfer gap: learned players and principal on the Lua substrate", "",
                  "The same trained networks played on the twin and on the Lua substrate "
                  "(same held-out seeds); gap = Lua - twin.", ""]
        body = [[g["objective"], format_stat(g["twin"]), format_stat(g["lua"]),
                 f"{g['gap']:.3g}"] for g in gaps]
        lines += _md_table(["objective", "W_eta on the twin", "W_eta on Lua", "gap"],
                           body) + [""]
    if learned_rates:
        lines += ["## What the learned principal sets", "",
                  "Rates per bracket in each tax period of the last training episode "
                  "(the runs' progress.jsonl), mean over seeds.", ""]
        for o, periods in learned_rates.items():
            text = "; ".join(f"period {k}: " + "/".join(f"{r:.2f}" for r in rates)
                             for k, rates in enumerate(periods))
            lines.append(f"* {o}: {text or 'n/a'}")
        lines.append("")
    quarters = budget_quarters(curves) if curves else []
    if quarters:
        lines += ["## Is the budget enough? The learning curves by quarter", "",
                  "W_eta of the training episodes (learning_curves.csv), each seed's curve "
                  "averaged over each quarter of its iterations, then mean ± 95% half-width "
                  "over seeds; the last column is the last quarter minus the third per seed: "
                  "near 0 where the curves flattened, positive where they still rise.", ""]
        body = [[q["objective"], q["principal"]] + [format_stat(s) for s in q["quarters"]]
                + [format_stat(q["change"]), str(q["seeds"])] for q in quarters]
        lines += _md_table(["objective", "principal", "Q1", "Q2", "Q3", "Q4", "Q4 - Q3",
                            "n"], body) + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})"
                                       for f in figures] + [""]
    return "\n".join(lines)


def last_period_rates(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[float]]:
    """Mean over runs of the rates per period of each run's last logged
    episode (`last_episode_period_rates` of its last record that has them)."""
    tables = []
    for records in runs:
        found = [r["last_episode_period_rates"] for r in records
                 if r.get("last_episode_period_rates")]
        if found:
            tables.append(np.asarray(found[-1], dtype=float))
    if not tables:
        return []
    periods = min(t.shape[0] for t in tables)
    return np.mean([t[:periods] for t in tables], axis=0).tolist()


def budget_quarters(curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping]]]]
                    ) -> list[dict[str, Any]]:
    """Is the budget enough? Per objective and principal: each seed's learning
    curve (W_eta per logged iteration, `objective_curve`) cut into quarters of
    its iterations; per quarter the mean over the seeds of the curve's mean in
    it, and the last quarter minus the third with its 95% t-interval over seeds.
    A curve that has flattened has a change near zero; one still rising, a
    positive change. Runs with fewer than 4 logged points are left out."""
    out = []
    for o, per_principal in curves.items():
        for p, runs in per_principal.items():
            quarters = []  # per seed: the curve's mean in each quarter
            for records in runs:
                _, y = objective_curve(records, eta_of(o))
                if len(y) >= 4:
                    quarters.append([float(np.mean(q)) for q in np.array_split(y, 4)])
            if not quarters:
                continue
            q = np.asarray(quarters)
            out.append({"objective": o, "principal": p, "seeds": len(q),
                        "quarters": [mean_ci(q[:, k]) for k in range(4)],
                        "change": mean_ci(q[:, 3] - q[:, 2])})
    return out


def write_learning_curves(curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping]]]],
                          seeds: Mapping[str, Mapping[str, Sequence[int]]], path: str) -> str:
    """learning_curves.csv, the data of learning_curves.png: one row per
    objective, principal, training seed (seeds[o][p][k] of curves[o][p][k])
    and logged iteration."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["objective", "principal", "seed", "game_steps", "W_eta"])
        for o, per_principal in curves.items():
            for p, runs in per_principal.items():
                for seed, records in zip(seeds[o][p], runs, strict=True):
                    for x, y in zip(*objective_curve(records, eta_of(o)), strict=True):
                        writer.writerow([o, p, seed, int(x), f"{y:.6g}"])
    return path


def transfer_gaps(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                  substrate: str) -> list[dict[str, Any]]:
    """Per objective: the learned principal's W_eta on the engine's substrate
    and on Lua, where both exist."""
    if substrate == SUBSTRATE_LUA:
        return []
    out = []
    for o in objectives:
        twin = cell_values(rows, o, LEARNED, "W_eta", substrate)
        lua = cell_values(rows, o, LEARNED, "W_eta", SUBSTRATE_LUA)
        if twin and lua:
            t, s = mean_ci(twin), mean_ci(lua)
            out.append({"objective": o, "twin": t, "lua": s, "gap": s.mean - t.mean})
    return out


# ---------------------------------------------------------------- figures
def objective_curve(records: Sequence[Mapping[str, Any]], eta: float | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(game steps, W_eta) over a run's log. W_eta of the logged episodes is
    eta * utilitarian + (1 - eta) * egalitarian, exact for the mean over
    episodes since W_eta is linear in (sum, min) (one round per episode).
    eta None: each record's own voted eta."""
    xs, ys = [], []
    for r in records:
        x, u, e = r.get("game_steps"), r.get("utilitarian"), r.get("egalitarian")
        w = eta if eta is not None else r.get("eta")
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, u, e, w)):
            xs.append(float(x))
            ys.append(w * u + (1.0 - w) * e)
    return np.asarray(xs), np.asarray(ys)


def band(curves: Sequence[tuple[np.ndarray, np.ndarray]]
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeds' curves on their common iterations (cut to the shortest): x (the
    mean over seeds), mean, and the 95% t-interval bounds (NaN for one seed)."""
    length = min((len(x) for x, _ in curves), default=0)
    if length == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    xs = np.mean([x[:length] for x, _ in curves], axis=0)
    stats = [mean_ci(y[i] for _, y in curves) for i in range(length)]
    return (xs, np.array([s.mean for s in stats]), np.array([s.ci_low for s in stats]),
            np.array([s.ci_high for s in stats]))


def eta_of(objective: str) -> float | None:
    return voting.fixed_eta(OBJECTIVES[objective])


def plot_learning_curves(curves: Mapping[str, Mapping[str, Sequence[Sequence[Mapping]]]],
                         path: str, *, width: int = 1200, height: int = 800, dpi: int = 100
                         ) -> str:
    """curves[objective][principal] = the progress records of each seed's run.
    One panel per objective, one line per principal (mean over seeds, band =
    95% t-interval)."""
    from sed_meltingpot.plotting import _finish, _new_figure

    objectives = list(curves)
    cols = 2 if len(objectives) > 1 else 1
    rows = math.ceil(len(objectives) / cols)
    fig, axes = _new_figure(width, height, dpi, rows, cols)
    drawn = [False] * len(axes)
    for i, o in enumerate(objectives):
        ax = axes[i]
        for c, (p, runs) in enumerate(curves[o].items()):
            x, mean, lo, hi = band([objective_curve(r, eta_of(o)) for r in runs])
            if not len(x):
                continue
            colour = f"C{PRINCIPALS.index(p) % 10 if p in PRINCIPALS else c % 10}"
            ax.plot(x, mean, color=colour, label=f"{p} ({len(runs)} seeds)",
                    marker="o" if len(x) <= 30 else None, markersize=3)
            if np.isfinite(lo).any():
                ax.fill_between(x, lo, hi, color=colour, alpha=0.2)
            drawn[i] = True
        ax.set(title=f"objective {o}", xlabel="game steps", ylabel="W_eta per episode")
    for j in range(len(objectives), len(axes)):
        axes[j].set_visible(False)
        drawn[j] = True
    return _finish(fig, axes, path, drawn)


def plot_equality_productivity(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                               principals: Sequence[str], substrate: str, path: str, *,
                               width: int = 1200, height: int = 800, dpi: int = 100) -> str:
    """Per objective: equality (1 - Gini of apples) against productivity,
    one small point per seed and a large one for the mean, per principal."""
    from sed_meltingpot.plotting import _finish, _new_figure

    cols = 2 if len(objectives) > 1 else 1
    nrows = math.ceil(len(objectives) / cols)
    fig, axes = _new_figure(width, height, dpi, nrows, cols)
    drawn = [False] * len(axes)
    for i, o in enumerate(objectives):
        ax = axes[i]
        for p in principals:
            cell = [r for r in rows if r["objective"] == o and r["principal"] == p
                    and r["substrate"] == substrate]
            pts = np.array([(r["productivity"], r["equality"]) for r in cell], dtype=float)
            pts = pts[np.isfinite(pts).all(axis=1)] if len(pts) else pts
            if not len(pts):
                continue
            colour = f"C{PRINCIPALS.index(p) % 10}"
            ax.scatter(pts[:, 0], pts[:, 1], color=colour, alpha=0.4, s=18)
            ax.scatter(*pts.mean(axis=0), color=colour, s=120, edgecolor="black", label=p)
            drawn[i] = True
        ax.set(title=f"objective {o}", xlabel="productivity (apples per episode)",
               ylabel="equality (1 - Gini)")
    for j in range(len(objectives), len(axes)):
        axes[j].set_visible(False)
        drawn[j] = True
    return _finish(fig, axes, path, drawn)


def non_finite(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Names of the (row, key) pairs whose value is not a finite number."""
    bad = []
    for r in rows:
        for k in keys:
            v = r.get(k)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                bad.append(f"{r.get('objective')}/{r.get('principal')}/seed {r.get('seed')}/"
                           f"{r.get('substrate')}: {k}={v!r}")
    return bad


ProgressFn = Callable[[str], None]
__all__ = ["BASELINES", "BEST_FIXED", "EVAL_SEED", "GRIDS", "LEARNED", "OBJECTIVES",
           "PRINCIPALS", "SCHEDULES", "SEARCH_SEED_OFFSET", "EvalItem", "Grid", "TrainTask",
           "budget_quarters", "comparisons", "episodes_row", "holm", "plan_evaluation",
           "plan_training", "results_markdown", "welch_test", "write_learning_curves"]
