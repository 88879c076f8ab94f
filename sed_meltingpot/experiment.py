"""The results experiment (issues 10, 16): does a learned principal beat the baselines?

Pure parts of `scripts/experiment.py` (no training, no Ray, no JAX here):

* the grids (`GRIDS`: smoke, small, paper): game, training budget per run, the learned
  principal's recipe on the jax engine (`Grid.recipe`, twin/recipe.py) and tax-cap
  ramp, evaluation episodes (twin and Lua) and the grid search's size;
* the welfare definitions (`config.WELFARE_ON`): W_eta on apples eaten (the paper's
  Section 4 formula, the default) or on post-tax income (`GameConfig.welfare_on`);
* the objectives (`OBJECTIVES`): eta fixed at 0 (egalitarian), 0.5 and 1
  (utilitarian) through the `fixed:<eta>` voting rule, and the voted eta (the
  paper's mean vote, Section 4) of the players' sampled types;
* the principals (`PRINCIPALS`): learned (co-trained, one per objective and
  definition), sampled (co-trained once per definition with eta drawn per episode,
  so it learns rates as a function of the eta it observes; jax engine), none, four
  fixed schedules (flat100 taxes everything), random, and best_fixed: the fixed
  schedule a grid search picks against the players trained with the learned
  principal, played with fresh players trained under it;
* the plan (`plan_training`, `plan_evaluation`, `plan_best_fixed`): the players'
  rewards (paper Eq. 8) depend neither on eta nor on the definition (and the
  players do not observe eta), so a scripted run is trained once per (principal,
  seed) and evaluated under every objective and definition. A learned principal
  observes eta and is rewarded by W_eta, so it is trained once per (definition,
  objective, seed), except that one run serves both definitions at eta = 1: the tax
  is budget-balanced (the sum of post-tax incomes is the sum of apples), so the
  utilitarian objective is the same on both;
* the statistics: mean and 95% Student-t interval per cell over seeds
  (`evaluation.mean_ci`), the paired t-test by seed (scipy.stats.ttest_rel) of each
  learned principal against each baseline with the signed-rank test
  (scipy.stats.wilcoxon) as a check, and Holm's step-down correction (`holm`) within
  each (definition, objective);
* the outputs: `results.csv` (one row per definition, objective, principal, seed and
  substrate), `results.md`, learning curves, an equality-productivity scatter and the
  sampled principal's rates against eta (PNG).

The unit of replication is the training seed: each row is the mean over the
evaluation episodes of one trained run, played on held-out seeds
(`EVAL_SEED`, far from every training seed) that are the same for every
principal, so all principals are judged in the same worlds. Every row carries W_eta
under both definitions (`W_apples`, `W_taxed`, from the episode's per-player totals);
`W_eta` is the one of the row's `welfare_on`.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sed_meltingpot import voting, welfare
from sed_meltingpot.config import WELFARE_ON, GameConfig
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
#: bracket around the same middle rate; flat100 taxes every apple (full
#: redistribution: everyone gets the mean).
SCHEDULES: dict[str, tuple[float, ...]] = {
    "flat": (0.3, 0.3, 0.3),
    "progressive": (0.1, 0.3, 0.5),
    "regressive": (0.5, 0.3, 0.1),
    "flat100": (1.0, 1.0, 1.0),
}
LEARNED = "learned"
SAMPLED = "sampled"
BEST_FIXED = "best_fixed"
#: Principals in table order.
PRINCIPALS = (LEARNED, SAMPLED, "none", *SCHEDULES, "random", BEST_FIXED)
#: Co-trained principals (each compared with every baseline).
LEARNERS = (LEARNED, SAMPLED)
BASELINES = tuple(p for p in PRINCIPALS if p not in LEARNERS)
#: Principals that only the jax engine trains (eta sampling is a twin recipe).
JAX_ONLY = (SAMPLED,)
#: Scripted principals whose players are trained under them from the start of the plan.
SCRIPTED = tuple(p for p in BASELINES if p != BEST_FIXED)
#: The voting rule of runs whose principal is scripted (and of the sampled principal,
#: whose eta is drawn per episode): it changes nothing in their training (players'
#: rewards, Eq. 8, ignore eta) and is replaced at evaluation.
SCRIPTED_TRAINING_RULE = "mean"
#: The definition of a run whose training does not depend on it (scripted principals,
#: the learned one at eta = 1): GameConfig's default, the paper's.
DEFAULT_WELFARE_ON = GameConfig().welfare_on
#: Fixed etas at which the sampled principal is also evaluated, for its rates-vs-eta figure.
RATE_ETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: First evaluation seed. Training seeds are < MAX_TRAIN_SEED and the RLlib env
#: derives env seeds seed + 10_007 * worker + 101 * vector from them, all far below.
EVAL_SEED = 50_000_000
MAX_TRAIN_SEED = 1_000_000
SUBSTRATE_TWIN, SUBSTRATE_LUA = "twin", "lua"


def eta_label(eta: float) -> str:
    """The objective label of a fixed eta ("eta=0.25")."""
    return f"eta={eta:g}"


def rule_of(label: str) -> str:
    """The voting rule of an objective label: OBJECTIVES, or `eta=<x>` for any fixed x."""
    if label in OBJECTIVES:
        return OBJECTIVES[label]
    if label.startswith("eta="):
        rule = "fixed:" + label[len("eta="):]
        voting.get_voting_rule(rule)  # ValueError names the rule and [0, 1]
        return rule
    raise ValueError(f"objective {label!r} must be one of {list(OBJECTIVES)} or eta=<x> "
                     "with x in [0, 1]")


def eta_of(objective: str) -> float | None:
    """The fixed eta of an objective label; None for the voted one."""
    return voting.fixed_eta(rule_of(objective))


def format_rates(rates: Sequence[float]) -> str:
    return ",".join(f"{r:g}" for r in rates)


def principal_spec(name: str, rates: Sequence[float] | None = None) -> str:
    """The training/evaluation spelling of a principal (`principals.parse_principal`);
    best_fixed needs the schedule the search chose."""
    if name in LEARNERS:
        return "learned"
    if name in ("none", "random"):
        return name
    if name in SCHEDULES:
        return "fixed:" + format_rates(SCHEDULES[name])
    if name == BEST_FIXED and rates is not None:
        return "fixed:" + format_rates(rates)
    raise ValueError(f"principal {name!r} must be one of {list(PRINCIPALS)} (best_fixed "
                     "with the rates its search chose)")


@dataclasses.dataclass(frozen=True)
class Grid:
    """One experiment size. The budget is the same for every principal:
    `num_iterations` iterations of `train_batch_size` env steps (RLlib) or of
    `num_envs` x `rollout_length` game steps (JAX twin).

    `recipe`: the learned principal's PrincipalRecipe on the jax engine (None: its
    defaults, twin/recipe.py); the sampled principal trains with it and
    `eta_sampling`. `tax_cap_fraction`: TrainConfig.tax_cap_fraction (jax engine: the
    share of phase 2 over which the cap ramps; RLlib: of the run).
    `eval_episodes` per run and principal where episodes are played (twin or Lua,
    by engine); `lua_episodes` for the jax engine's learned runs replayed on the Lua
    substrate (the transfer gap; slow). `welfare_on`: the definitions run."""

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
    lua_episodes: int = 4
    welfare_on: tuple[str, ...] = (DEFAULT_WELFARE_ON,)
    tax_cap_fraction: float = 0.25
    recipe: Any = None  # twin.recipe.PrincipalRecipe | None (that module imports JAX)
    eta_sampling: str = "uniform"
    rate_etas: tuple[float, ...] = RATE_ETAS
    preset: str = "fast"
    description: str = ""

    def budget(self, engine: str) -> int:
        """Env steps per training run (game steps plus a learned principal's turns)."""
        if engine == "jax":
            return self.twin_iterations * self.num_envs * self.rollout_length
        return self.num_iterations * self.train_batch_size

    def validate(self) -> Grid:
        """Raises ValueError naming the field (or flag), the value and what is allowed."""
        check_welfare_on(self.welfare_on)
        if self.game.rounds_per_episode != 1:
            raise ValueError(f"grid {self.name}: rounds_per_episode="
                             f"{self.game.rounds_per_episode} must be 1 (W under both "
                             "definitions is computed from an episode's totals)")
        for name in ("eval_episodes", "lua_episodes", "search_episodes", "num_seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"grid {self.name}: {name}={value!r} must be a positive "
                                 "integer")
        if not 0.0 <= self.tax_cap_fraction <= 1.0:
            raise ValueError(f"grid {self.name}: tax_cap_fraction={self.tax_cap_fraction!r} "
                             "is outside [0, 1]")
        bad = [e for e in self.rate_etas if not 0.0 <= e <= 1.0]
        if bad or not self.rate_etas:
            raise ValueError(f"grid {self.name}: rate_etas={self.rate_etas!r} must be etas "
                             "in [0, 1], at least one")
        return self


def check_welfare_on(values: Sequence[str]) -> tuple[str, ...]:
    """Definitions to run: distinct, each in config.WELFARE_ON."""
    values = tuple(values)
    bad = [v for v in values if v not in WELFARE_ON]
    if bad or not values or len(set(values)) != len(values):
        raise ValueError(f"--welfare_on={','.join(values)}: each must be one of "
                         f"{list(WELFARE_ON)}, no repeats, at least one")
    return values


GRIDS: dict[str, Grid] = {
    "smoke": Grid(
        name="smoke", game=GameConfig(num_players=3, episode_length=50, tax_period=25),
        num_seeds=2, num_iterations=1, train_batch_size=100, rollout_fragment_length=100,
        frame_stack=1, minibatch_size=64, principal_minibatch_size=2,
        twin_iterations=1, num_envs=2, rollout_length=50,
        eval_episodes=2, search_resolution=2, search_episodes=1, lua_episodes=1,
        welfare_on=WELFARE_ON, rate_etas=(0.0, 0.25, 1.0),
        description="wiring only: 3 players, 50-step episodes, one tiny iteration per run"),
    "small": Grid(
        name="small", game=GameConfig(num_players=4, episode_length=200, tax_period=50),
        num_seeds=5, num_iterations=40, train_batch_size=1000, rollout_fragment_length=200,
        frame_stack=1, minibatch_size=256, principal_minibatch_size=16,
        twin_iterations=150, num_envs=8, rollout_length=100,
        eval_episodes=64, search_resolution=2, search_episodes=16, lua_episodes=4,
        welfare_on=WELFARE_ON,
        description="4 players on the default map, 200-step episodes of 4 tax periods, "
                    "fast preset (1 pixel per tile, small networks), 1 frame"),
    "paper_fast": Grid(
        name="paper_fast", game=GameConfig(), num_seeds=3, num_iterations=400,
        train_batch_size=1000, rollout_fragment_length=200, frame_stack=1,
        minibatch_size=256, principal_minibatch_size=32,
        twin_iterations=125, num_envs=16, rollout_length=200,
        eval_episodes=32, search_resolution=2, search_episodes=8, lua_episodes=1,
        welfare_on=WELFARE_ON,
        description="the paper's game (7 players, 1000-step episodes, tax period 50) with "
                    "the fast preset (1 pixel per tile, small networks), 1 frame, 400k "
                    "game steps per run; sized for 2 cores with the jax engine"),
    "paper": Grid(
        name="paper", game=GameConfig(), num_seeds=5, num_iterations=10_000,
        train_batch_size=1000, rollout_fragment_length=200, frame_stack=4,
        minibatch_size=128, principal_minibatch_size=32,
        twin_iterations=1563, num_envs=32, rollout_length=200,
        eval_episodes=64, search_resolution=3, search_episodes=16, lua_episodes=4,
        welfare_on=WELFARE_ON, preset="paper",
        description="the paper's game (7 players, 1000-step episodes, tax period 50, "
                    "88x88 RGB, 4 frames), about 10M env steps per run; for a GPU machine"),
}


@dataclasses.dataclass(frozen=True)
class TrainTask:
    """Players (and, if learned, a principal) trained from scratch for one seed.

    `objective` is the objective label of a learned principal and None otherwise (a
    scripted run serves every objective; the sampled principal draws eta);
    `welfare_on` the definition a learned or sampled principal is rewarded by (None for
    a scripted run, whose training does not depend on it); `rates` the schedule of a
    best_fixed run (fresh players under the schedule its search chose)."""

    principal: str
    objective: str | None
    seed: int
    welfare_on: str | None = None
    rates: tuple[float, ...] | None = None

    @property
    def voting_rule(self) -> str:
        return rule_of(self.objective) if self.objective else SCRIPTED_TRAINING_RULE

    @property
    def game_welfare_on(self) -> str:
        """The GameConfig.welfare_on it trains (and its episodes are played) with."""
        return self.welfare_on or DEFAULT_WELFARE_ON

    @property
    def spec(self) -> str:
        return principal_spec(self.principal, self.rates)

    @property
    def group(self) -> str:
        """The key without the seed: runs of one group differ only in their seed."""
        if self.principal == LEARNED:
            suffix = "" if self.welfare_on == DEFAULT_WELFARE_ON else f"__{self.welfare_on}"
            return f"{LEARNED}__{_slug(self.objective or '')}{suffix}"
        if self.principal == SAMPLED:
            return f"{SAMPLED}__{self.welfare_on}"
        if self.principal == BEST_FIXED:
            return "fixed_" + "-".join(_slug(f"{r:g}") for r in self.rates or ())
        return self.principal

    @property
    def key(self) -> str:
        """Folder name of the run, unique in the grid."""
        return f"{self.group}__seed{self.seed}"


def _slug(label: str) -> str:
    return label.replace("=", "").replace(".", "p")


def learned_welfare_on(objective: str, welfare_on: str) -> str:
    """The definition of the learned run that serves (objective, welfare_on): at eta = 1
    both definitions are the same objective (budget-balanced tax), so they share the
    default's run."""
    return DEFAULT_WELFARE_ON if eta_of(objective) == 1.0 else welfare_on


def plan_training(objectives: Sequence[str], principals: Sequence[str], seeds: Sequence[int],
                  welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,)) -> list[TrainTask]:
    """Training runs of the first stage (best_fixed's fresh players come after its
    search, `plan_best_fixed`): one per (definition, objective, seed) for the learned
    principal, shared between definitions at eta = 1; one per (definition, seed) for
    the sampled one; one per (principal, seed) for each scripted one (module docstring)."""
    tasks: list[TrainTask] = []
    for seed in seeds:
        for p in principals:
            if p == BEST_FIXED:
                continue
            if p == LEARNED:
                for o in objectives:
                    for w in dict.fromkeys(learned_welfare_on(o, w) for w in welfare_on):
                        tasks.append(TrainTask(LEARNED, o, seed, w))
            elif p == SAMPLED:
                tasks += [TrainTask(SAMPLED, None, seed, w) for w in welfare_on]
            else:
                tasks.append(TrainTask(p, None, seed))
    return tasks


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """Cells of one seed: `principal` played under `objective` with the players of
    the run `task`, reported under each definition in `welfare_on` (one play, W under
    each definition from the same episodes). A best_fixed item whose task is a learned
    run is its grid search (against those players); one whose task is a fixed-rates
    run is the evaluation of the fresh players trained under the chosen schedule."""

    objective: str
    principal: str
    task: TrainTask
    welfare_on: tuple[str, ...]
    rates: tuple[float, ...] | None = None  # best_fixed's chosen schedule (second stage)

    @property
    def is_search(self) -> bool:
        return self.principal == BEST_FIXED and self.task.principal == LEARNED


def sampled_objectives(objectives: Sequence[str], rate_etas: Sequence[float]) -> list[str]:
    """Where the sampled principal is evaluated: the objectives, then the figure's etas."""
    labels = list(objectives)
    return labels + [e for e in (eta_label(x) for x in rate_etas) if e not in labels]


def plan_evaluation(tasks: Sequence[TrainTask], objectives: Sequence[str],
                    principals: Sequence[str], welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,),
                    rate_etas: Sequence[float] = ()) -> list[EvalItem]:
    """Every first-stage (definition, objective, principal, seed) cell and the run whose
    players it uses, plus best_fixed's searches against the learned runs' players."""
    items: list[EvalItem] = []
    for t in tasks:
        if t.principal == LEARNED:
            defs = tuple(w for w in welfare_on if learned_welfare_on(t.objective, w)
                         == t.welfare_on)
            items.append(EvalItem(t.objective, LEARNED, t, defs))
            if BEST_FIXED in principals:
                items.append(EvalItem(t.objective, BEST_FIXED, t, defs))
        elif t.principal == SAMPLED:
            items += [EvalItem(o, SAMPLED, t, (t.welfare_on,))
                      for o in sampled_objectives(objectives, rate_etas)]
        else:
            items += [EvalItem(o, t.principal, t, tuple(welfare_on)) for o in objectives]
    return items


@dataclasses.dataclass(frozen=True)
class Search:
    """What best_fixed's grid search chose against a learned run's players."""

    objective: str
    welfare_on: tuple[str, ...]
    seed: int
    rates: tuple[float, ...]
    value: float  # the chosen schedule's mean W_eta on the search seeds


def plan_best_fixed(searches: Sequence[Search], tasks: Sequence[TrainTask]
                    ) -> tuple[list[TrainTask], list[EvalItem]]:
    """best_fixed's second stage: per (seed, chosen schedule) the run of fresh players
    trained under it, which is the first-stage scripted run of that seed where one has
    the same schedule (none is (0, ..., 0), flat100 (1, ..., 1)), and its cells.
    Returns (the runs still to train, each once; the cells)."""
    def schedule(t: TrainTask, num_brackets: int) -> tuple[float, ...] | None:
        return (0.0,) * num_brackets if t.principal == "none" else SCHEDULES.get(t.principal)

    fresh: dict[tuple[tuple[float, ...], int], TrainTask] = {}
    items: list[EvalItem] = []
    for s in searches:
        rates = tuple(float(r) for r in s.rates)
        same = [t for t in tasks if t.seed == s.seed and schedule(t, len(rates)) == rates]
        task = same[0] if same else fresh.setdefault(
            (rates, s.seed), TrainTask(BEST_FIXED, None, s.seed, rates=rates))
        items.append(EvalItem(s.objective, BEST_FIXED, task, tuple(s.welfare_on), rates))
    return list(fresh.values()), items


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
#: CSV columns besides the metrics ("objective" is the objective's label, "welfare_on"
#: the definition W_eta is on).
ID_COLUMNS = ("welfare_on", "objective", "principal", "seed", "substrate", "players_from",
              "rates", "episodes")
#: The evaluation's metric "objective" (the game's W_eta) is the column W_eta here,
#: since "objective" names the cell's objective; it is then set to the row's definition.
RENAME = {"objective": "W_eta"}
#: The column of W_eta under each definition (config.WELFARE_ON).
DEFINITION_COLUMNS = {"apples": "W_apples", "taxed": "W_taxed"}
DEFINITION_LABELS = {"apples": "W on apples eaten (paper Section 4)",
                     "taxed": "W on post-tax income"}


def metric_columns(num_brackets: int) -> list[str]:
    return ([RENAME.get(m, m) for m in METRICS] + list(DEFINITION_COLUMNS.values())
            + [f"rate_b{b}" for b in range(num_brackets)])


def episode_welfare(metrics: Mapping[str, Any]) -> dict[str, float]:
    """W_eta of one episode under each definition: `welfare.interpolated` of its
    apples_per_player and of its income_per_player (post-tax) at its eta. Exact with one
    round per episode (the grids'; `Grid.validate`), where the game's objective is W_eta
    of the round's totals."""
    eta = float(metrics["eta"])
    return {"W_apples": float(welfare.interpolated(metrics["apples_per_player"], eta)),
            "W_taxed": float(welfare.interpolated(metrics["income_per_player"], eta))}


def check_objective(episodes: Sequence[Mapping[str, float]], welfare_on: str,
                    tolerance: float = 1e-4) -> None:
    """The game's own objective of episodes played with `welfare_on` must be the
    `episode_welfare` column of that definition (float32 accumulators: relative
    `tolerance`); ValueError otherwise, so no row silently mixes definitions."""
    column = DEFINITION_COLUMNS[welfare_on]
    for k, e in enumerate(episodes):
        game, ours = float(e["objective"]), float(e[column])
        if math.isfinite(game) and abs(game - ours) > tolerance * max(1.0, abs(ours)):
            raise ValueError(f"episode {k}: the game's objective {game!r} (welfare_on="
                             f"{welfare_on}) is not {column}={ours!r} from its totals")


def episodes_row(episodes: Sequence[Mapping[str, float]], welfare_on: str | None = None,
                 **ids: Any) -> dict[str, Any]:
    """One CSV row: the mean over the evaluation episodes of each scalar
    (NaN episodes skipped, as `evaluation.mean_ci` does), plus the ids. With
    `welfare_on` the row is under that definition: W_eta is its column of
    `episode_welfare`."""
    if not episodes:
        raise ValueError("a row needs at least one evaluated episode")
    row: dict[str, Any] = dict(ids)
    row["episodes"] = len(episodes)
    for key in episodes[0]:
        row[RENAME.get(key, key)] = mean_ci(e[key] for e in episodes).mean
    if welfare_on is not None:
        row["welfare_on"] = welfare_on
        row["W_eta"] = row[DEFINITION_COLUMNS[welfare_on]]
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
    """Rows of `write_csv`, numbers as floats (seed and episodes as ints). Files
    written before the welfare_on column (all on apples) read as welfare_on=apples."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key in ("seed", "episodes"):
                row[key] = int(value)
            elif key not in ID_COLUMNS:
                row[key] = float(value) if value != "" else math.nan
        row.setdefault("welfare_on", DEFAULT_WELFARE_ON)
    return rows


def definition_of(row: Mapping[str, Any]) -> str:
    return row.get("welfare_on") or DEFAULT_WELFARE_ON


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


def paired_test(a: Mapping[int, float], b: Mapping[int, float]) -> dict[str, Any]:
    """a - b paired by training seed (the seeds with a finite value in both): the paired
    t-test (scipy.stats.ttest_rel, two-sided; t = mean(d) / (sd(d) / sqrt(n)), n - 1 df)
    and, as a check, the signed-rank test of the differences (scipy.stats.wilcoxon,
    two-sided; with 5 seeds its smallest p is 2 / 2^5 = 0.0625, so it cannot reach
    0.05). NaN where fewer than two pairs or the differences do not vary beyond float32
    resolution (relative 1e-6 of the values: the twin's metrics are float32, so two
    principals that played the same episodes differ by rounding only)."""
    from scipy import stats

    seeds = sorted(s for s in a if s in b and math.isfinite(a[s]) and math.isfinite(b[s]))
    d = np.asarray([a[s] - b[s] for s in seeds], dtype=float)
    out: dict[str, Any] = {"diff": float(d.mean()) if len(d) else math.nan, "t": math.nan,
                           "df": math.nan, "p": math.nan, "n": len(d),
                           "p_signed_rank": math.nan}
    scale = max([1.0] + [abs(v) for s in seeds for v in (a[s], b[s])])
    if len(d) < 2 or np.ptp(d) <= 1e-6 * scale:
        return out
    res = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
    out.update(t=float(res.statistic), p=float(res.pvalue), df=float(len(d) - 1))
    if np.any(d != 0):
        out["p_signed_rank"] = float(stats.wilcoxon(d).pvalue)
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


def _cell(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
          substrate: str, welfare_on: str) -> list[Mapping[str, Any]]:
    return [r for r in rows if r["objective"] == objective and r["principal"] == principal
            and r["substrate"] == substrate and definition_of(r) == welfare_on]


def cell_values(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
                metric: str, substrate: str, welfare_on: str = DEFAULT_WELFARE_ON
                ) -> list[float]:
    return [float(r[metric]) for r in _cell(rows, objective, principal, substrate, welfare_on)]


def seed_values(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
                metric: str, substrate: str, welfare_on: str = DEFAULT_WELFARE_ON
                ) -> dict[int, float]:
    """{training seed: value} of one cell (a seed twice is an error: pairs need one)."""
    out: dict[int, float] = {}
    for r in _cell(rows, objective, principal, substrate, welfare_on):
        if int(r["seed"]) in out:
            raise ValueError(f"cell {welfare_on}/{objective}/{principal}/{substrate} has seed "
                             f"{r['seed']} twice")
        out[int(r["seed"])] = float(r[metric])
    return out


def comparisons(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                principals: Sequence[str], substrate: str,
                welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,), metric: str = "W_eta"
                ) -> list[dict[str, Any]]:
    """Each learned principal (LEARNERS) against each baseline with rows, per definition
    and objective, by `paired_test` on the per-seed `metric`; Holm's correction within
    each (definition, objective): one family per table of results.md."""
    tests = []
    for w in welfare_on:
        for o in objectives:
            family = []
            for learner in (p for p in principals if p in LEARNERS):
                ours = seed_values(rows, o, learner, metric, substrate, w)
                for p in principals:
                    theirs = seed_values(rows, o, p, metric, substrate, w)
                    if p in LEARNERS or not ours or not theirs:
                        continue
                    family.append({"welfare_on": w, "objective": o, "learner": learner,
                                   "baseline": p, **paired_test(ours, theirs)})
            for test, adj in zip(family, holm([t["p"] for t in family]), strict=True):
                test["p_holm"] = adj
            tests += family
    return tests


# ------------------------------------------------------------- results.md
TABLE_METRICS = ("W_eta", "utilitarian", "egalitarian", "egalitarian_income",
                 "nash_welfare", "equality", "income_equality", "sustainability", "peace",
                 "tax_revenue")


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


def definition_heading(welfare_on: str) -> str:
    return f"{DEFINITION_LABELS.get(welfare_on, welfare_on)}, welfare_on={welfare_on}"


Panels = Mapping[tuple[str, str], Mapping[str, Sequence[Sequence[Mapping]]]]


def results_markdown(rows: Sequence[Mapping[str, Any]], *, objectives: Sequence[str],
                     principals: Sequence[str], substrate: str, meta: Mapping[str, Any],
                     num_brackets: int, welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,),
                     figures: Sequence[str] = (),
                     learned_rates: Mapping[tuple[str, str], Sequence[Sequence[float]]]
                     | None = None, curves: Panels | None = None) -> str:
    """results.md: settings, one table per (definition, objective) (mean ± 95% CI
    half-width over seeds), the paired comparisons with Holm's correction per table,
    the transfer gap if the learned principal was also played on the Lua substrate,
    the sampled principal's rates against eta, whether the learning curves flattened
    (`budget_quarters` of `curves`), and the figures."""
    lines = [f"# Results: grid `{meta.get('grid')}`, engine `{meta.get('engine')}`", ""]
    for key in ("command", "seeds", "budget", "game", "recipe", "evaluation", "wall_time"):
        if key in meta:
            lines.append(f"* {key.replace('_', ' ')}: {meta[key]}")
    lines += [
        "",
        "Each cell: mean ± half-width of the 95% Student-t interval over training seeds "
        "(n in brackets); a seed's value is the mean over its evaluation episodes (the "
        "`episodes` column of results.csv: per run and principal, fewer on the Lua "
        f"substrate), played on held-out seeds (from {EVAL_SEED}) that are the same for "
        "every principal and training seed (common random numbers: worlds and the "
        "players' sampling draws match, so differences come from the trained networks "
        "and the principal; the random principal's own draws differ by training seed "
        "and episode). W_eta = eta * sum_i u_i + (1 - eta) * min_i u_i (paper Section "
        "4) with u the episode's apples eaten (welfare_on=apples, the paper's) or its "
        "post-tax incomes (welfare_on=taxed); every row of results.csv carries both "
        "(W_apples, W_taxed) and W_eta is the one of its welfare_on. Players are "
        "trained from scratch under each principal with the same budget. The players' "
        "rewards (paper Eq. 8) depend neither on eta nor on the definition, so the runs "
        "of a scripted principal are trained once per seed and evaluated under every "
        "objective and definition; the learned principal is trained once per "
        "definition, objective and seed (one run serves both definitions at eta = 1: "
        "the tax is budget-balanced, so the sums agree); the sampled principal once per "
        "definition and seed, with eta drawn per episode, and is evaluated at fixed "
        "etas. best_fixed: the best fixed schedule of a grid search (on other held-out "
        "seeds) against the players trained with the learned principal, played with "
        "fresh players trained under it (the scripted run of that schedule where one "
        "exists).",
        ""]
    substrates = sorted({r["substrate"] for r in rows}, key=lambda s: s != substrate)
    rate_keys = [f"rate_b{b}" for b in range(num_brackets)]
    for w in welfare_on:
        for o in objectives:
            lines += [f"## {definition_heading(w)}: objective {o} (voting rule "
                      f"`{rule_of(o)}`)", ""]
            header = ["principal"] + [METRIC_LABELS.get(k, k) for k in TABLE_METRICS] + [
                "rates/bracket", "n"]
            body = []
            for p in principals:
                for sub in substrates:
                    cell = _cell(rows, o, p, sub, w)
                    if not cell:
                        continue
                    stats = {k: mean_ci(float(r.get(k, math.nan)) for r in cell)
                             for k in TABLE_METRICS}
                    rates = "/".join(f"{mean_ci(float(r[k]) for r in cell).mean:.2f}"
                                     for k in rate_keys)
                    eta = mean_ci(float(r["eta"]) for r in cell).mean
                    label = cell_label(p, sub, substrate)
                    if eta_of(o) is None:
                        label += f" (eta {eta:.2f})"
                    body.append([label] + [format_stat(stats[k]) for k in TABLE_METRICS]
                                + [rates, str(len(cell))])
            lines += _md_table(header, body) + [""]
    tests = comparisons(rows, objectives, principals, substrate, welfare_on)
    for w in welfare_on:
        family = [t for t in tests if t["welfare_on"] == w]
        if not family:
            continue
        lines += [f"## Learned principals against each baseline: {definition_heading(w)}",
                  "",
                  "Paired by training seed (each seed's players are trained from the same "
                  "seed under every principal and evaluated in the same worlds): the "
                  "paired t-test of the per-seed W_eta differences (scipy.stats.ttest_rel, "
                  "two-sided, n - 1 df) is the test; Holm's correction within each "
                  "objective (one family per table above: every learner-baseline pair of "
                  "that definition and objective); the signed-rank test (scipy.stats."
                  "wilcoxon, two-sided) is a check only: with 5 seeds its smallest p is "
                  "0.0625. diff = mean over seeds of learner - baseline; n = pairs; n/a "
                  "where fewer than two pairs or the differences do not vary.", ""]
        body = [[t["objective"], t["learner"], t["baseline"], str(t["n"]),
                 _fmt_num(t["diff"]), _fmt_num(t["t"]), _fmt_num(t["df"]), _fmt_p(t["p"]),
                 _fmt_p(t["p_holm"]),
                 "yes" if math.isfinite(t["p_holm"]) and t["p_holm"] < 0.05 else "no",
                 _fmt_p(t["p_signed_rank"])] for t in family]
        lines += _md_table(["objective", "learner", "baseline", "n", "diff", "t", "df", "p",
                            "p (Holm)", "significant at 0.05", "signed-rank p (check)"],
                           body) + [""]
    for w in welfare_on:
        gaps = transfer_gaps(rows, objectives, substrate, w)
        if gaps:
            lines += [f"## Transfer gap: learned players and principal on the Lua substrate, "
                      f"{definition_heading(w)}", "",
                      "The same trained networks played on the twin and on the Lua substrate "
                      "(the first of the same held-out seeds); gap = Lua - twin.", ""]
            body = [[g["objective"], format_stat(g["twin"]), format_stat(g["lua"]),
                     f"{g['gap']:.3g}"] for g in gaps]
            lines += _md_table(["objective", "W_eta on the twin", "W_eta on Lua", "gap"],
                               body) + [""]
    for w in welfare_on:
        table = rates_by_eta(rows, substrate, num_brackets, w)
        if table:
            lines += [f"## The sampled principal's rates against eta, {definition_heading(w)}",
                      "", "Trained once per seed with eta drawn per episode (it observes "
                      "eta), evaluated at fixed etas: mean effective rate per bracket over "
                      "the evaluation episodes, mean ± 95% half-width over seeds "
                      "(rates_vs_eta.png).", ""]
            body = [[f"{eta:g}"] + [format_stat(s, 2) for s in stats] + [str(n)]
                    for eta, stats, n in table]
            lines += _md_table(["eta"] + [f"bracket {b}" for b in range(num_brackets)]
                               + ["n"], body) + [""]
    if learned_rates:
        lines += ["## What the learned principal sets", "",
                  "Rates per bracket in each tax period of the last training episode "
                  "(the runs' progress.jsonl), mean over seeds.", ""]
        for (w, o), periods in learned_rates.items():
            text = "; ".join(f"period {k}: " + "/".join(f"{r:.2f}" for r in rates)
                             for k, rates in enumerate(periods))
            lines.append(f"* {o}, welfare_on={w}: {text or 'n/a'}")
        lines.append("")
    quarters = budget_quarters(curves) if curves else []
    if quarters:
        lines += ["## Is the budget enough? The learning curves by quarter", "",
                  "W_eta of the training episodes under the panel's definition "
                  "(learning_curves.csv), each seed's curve averaged over each quarter of "
                  "its iterations, then mean ± 95% half-width over seeds; the last column "
                  "is the last quarter minus the third per seed: near 0 where the curves "
                  "flattened, positive where they still rise.", ""]
        body = [[q["welfare_on"], q["objective"], q["principal"]]
                + [format_stat(s) for s in q["quarters"]]
                + [format_stat(q["change"]), str(q["seeds"])] for q in quarters]
        lines += _md_table(["welfare_on", "objective", "principal", "Q1", "Q2", "Q3", "Q4",
                            "Q4 - Q3", "n"], body) + [""]
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


def budget_quarters(curves: Panels) -> list[dict[str, Any]]:
    """Is the budget enough? Per (definition, objective) panel and principal: each
    seed's learning curve (`panel_curve`) cut into quarters of its iterations; per
    quarter the mean over the seeds of the curve's mean in it, and the last quarter
    minus the third with its 95% t-interval over seeds. A curve that has flattened has
    a change near zero; one still rising, a positive change. Runs with fewer than 4
    logged points are left out."""
    out = []
    for (w, o), per_principal in curves.items():
        for p, runs in per_principal.items():
            quarters = []  # per seed: the curve's mean in each quarter
            for records in runs:
                _, y = panel_curve(records, o, w)
                if len(y) >= 4:
                    quarters.append([float(np.mean(q)) for q in np.array_split(y, 4)])
            if not quarters:
                continue
            q = np.asarray(quarters)
            out.append({"welfare_on": w, "objective": o, "principal": p, "seeds": len(q),
                        "quarters": [mean_ci(q[:, k]) for k in range(4)],
                        "change": mean_ci(q[:, 3] - q[:, 2])})
    return out


def write_learning_curves(curves: Panels, seeds: Mapping[tuple[str, str],
                                                         Mapping[str, Sequence[int]]],
                          path: str) -> str:
    """learning_curves.csv, the data of learning_curves.png: one row per definition,
    objective, principal, training seed (seeds[panel][p][k] of curves[panel][p][k])
    and logged iteration."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["welfare_on", "objective", "principal", "seed", "game_steps",
                         "W_eta"])
        for (w, o), per_principal in curves.items():
            for p, runs in per_principal.items():
                for seed, records in zip(seeds[(w, o)][p], runs, strict=True):
                    for x, y in zip(*panel_curve(records, o, w), strict=True):
                        writer.writerow([w, o, p, seed, int(x), f"{y:.6g}"])
    return path


def transfer_gaps(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                  substrate: str, welfare_on: str = DEFAULT_WELFARE_ON
                  ) -> list[dict[str, Any]]:
    """Per objective: the learned principal's W_eta on the engine's substrate
    and on Lua, where both exist."""
    if substrate == SUBSTRATE_LUA:
        return []
    out = []
    for o in objectives:
        twin = cell_values(rows, o, LEARNED, "W_eta", substrate, welfare_on)
        lua = cell_values(rows, o, LEARNED, "W_eta", SUBSTRATE_LUA, welfare_on)
        if twin and lua:
            t, s = mean_ci(twin), mean_ci(lua)
            out.append({"objective": o, "twin": t, "lua": s, "gap": s.mean - t.mean})
    return out


def rates_by_eta(rows: Sequence[Mapping[str, Any]], substrate: str, num_brackets: int,
                 welfare_on: str = DEFAULT_WELFARE_ON
                 ) -> list[tuple[float, list[Stat], int]]:
    """The sampled principal's rates against eta: per fixed eta it was evaluated at
    (ascending), the mean over seeds of each seed's mean effective rate per bracket
    (95% t-interval over seeds), and the number of seeds."""
    by_eta: dict[float, list[Mapping[str, Any]]] = {}
    for r in rows:
        if (r["principal"] == SAMPLED and r["substrate"] == substrate
                and definition_of(r) == welfare_on and eta_of(r["objective"]) is not None):
            by_eta.setdefault(float(eta_of(r["objective"])), []).append(r)
    return [(eta, [mean_ci(float(r[f"rate_b{b}"]) for r in cell)
                   for b in range(num_brackets)], len(cell))
            for eta, cell in sorted(by_eta.items())]


# ---------------------------------------------------------------- figures
#: The progress.jsonl key of min_i post-tax income (the trainers' episode figures).
EGALITARIAN_KEYS = {"apples": "egalitarian", "taxed": "egalitarian_income"}


def objective_curve(records: Sequence[Mapping[str, Any]], eta: float | None,
                    welfare_on: str = DEFAULT_WELFARE_ON) -> tuple[np.ndarray, np.ndarray]:
    """(game steps, W_eta) over a run's log, on `welfare_on`. W_eta of the logged
    episodes is eta * utilitarian + (1 - eta) * egalitarian (on apples) or
    egalitarian_income (min_i post-tax income; the sum is the same, the tax being
    budget-balanced), exact for the mean over episodes since W_eta is linear in
    (sum, min) (one round per episode). eta None: each record's own voted eta.
    Records without the figure (logs from before egalitarian_income) are skipped."""
    low = EGALITARIAN_KEYS[welfare_on]
    xs, ys = [], []
    for r in records:
        x, u, e = r.get("game_steps"), r.get("utilitarian"), r.get(low)
        w = eta if eta is not None else r.get("eta")
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, u, e, w)):
            xs.append(float(x))
            ys.append(w * u + (1.0 - w) * e)
    return np.asarray(xs), np.asarray(ys)


def panel_curve(records: Sequence[Mapping[str, Any]], objective: str, welfare_on: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """A run's learning curve in the (welfare_on, objective) panel: `objective_curve`;
    for the sampled principal's panel (objective "sampled") the game's own objective
    per logged episode (W at each episode's drawn eta, on the run's definition)."""
    if objective == SAMPLED:
        from sed_meltingpot.plotting import series

        return series(records, "objective")
    return objective_curve(records, eta_of(objective), welfare_on)


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


def _colour(principal: str, fallback: int) -> str:
    return f"C{PRINCIPALS.index(principal) % 10 if principal in PRINCIPALS else fallback % 10}"


def _panels(count: int, width: int, height: int, dpi: int) -> tuple[Any, Any, int]:
    """A figure of `count` panels, 2 per row (1 if only one); rows beyond 2 add height."""
    from sed_meltingpot.plotting import new_figure

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
    """curves[(welfare_on, objective)][principal] = the progress records of each seed's
    run. One panel per definition and objective, one line per principal (mean over
    seeds, band = 95% t-interval)."""
    from sed_meltingpot.plotting import finish

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
    from sed_meltingpot.plotting import finish

    panels = [(w, o) for w in welfare_on for o in objectives]
    fig, axes, _ = _panels(len(panels), width, height, dpi)
    drawn = [False] * len(axes)
    for i, (w, o) in enumerate(panels):
        ax = axes[i]
        for c, p in enumerate(principals):
            cell = _cell(rows, o, p, substrate, w)
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
    from sed_meltingpot.plotting import finish

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


def non_finite(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Names of the (row, key) pairs whose value is not a finite number."""
    bad = []
    for r in rows:
        for k in keys:
            v = r.get(k)
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                bad.append(f"{r.get('welfare_on')}/{r.get('objective')}/{r.get('principal')}/"
                           f"seed {r.get('seed')}/{r.get('substrate')}: {k}={v!r}")
    return bad


ProgressFn = Callable[[str], None]
__all__ = ["BASELINES", "BEST_FIXED", "EVAL_SEED", "GRIDS", "LEARNED", "LEARNERS",
           "OBJECTIVES", "PRINCIPALS", "SAMPLED", "SCHEDULES", "SEARCH_SEED_OFFSET",
           "EvalItem", "Grid", "Search", "TrainTask", "budget_quarters", "comparisons",
           "episode_welfare", "episodes_row", "holm", "paired_test", "plan_best_fixed",
           "plan_evaluation", "plan_training", "results_markdown", "welch_test",
           "write_learning_curves"]
