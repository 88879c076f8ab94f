"""What the results experiment runs: its grids, objectives, principals and seeds.

The vocabulary that the rest of `sed_meltingpot.experiment` (plan, rows, statistics,
outputs, engines, jobs) is written in; pure (no training, no Ray, no JAX):

* the grids (`GRIDS`: smoke, small, paper_fast, paper): game, training budget per run,
  the learned principal's recipe on the jax engine (`Grid.recipe`,
  training/jax/recipe.py) and tax-cap ramp, evaluation episodes (twin and Lua) and the
  grid search's size;
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
* the seeds: training seeds below `MAX_TRAIN_SEED` (`check_seeds`, `parse_seeds`);
  evaluation plays held-out seeds from `EVAL_SEED`, far from every training seed and
  the same for every principal, so all principals are judged in the same worlds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sed_meltingpot.core import voting
from sed_meltingpot.design.halving import CHOICES as STACKELBERG_CHOICES
from sed_meltingpot.design.two_timescale import ALGORITHMS as TWO_TIMESCALE
from sed_meltingpot.design.two_timescale import NAMED_ARMS, TwoTimescaleConfig
from sed_meltingpot.game.config import WELFARE_ON, GameConfig
from sed_meltingpot.game.principals import NAMED_SCHEDULES

#: Objectives: a label and the voting rule that sets eta (paper Section 4).
OBJECTIVES: dict[str, str] = {
    "eta=0": "fixed:0",
    "eta=0.5": "fixed:0.5",
    "eta=1": "fixed:1",
    "voted": "mean",
}
#: Fixed schedules (`principals.NAMED_SCHEDULES`: flat, progressive, regressive,
#: flat100), rates per bracket; also the two-timescale principals' default arms.
SCHEDULES: dict[str, tuple[float, ...]] = NAMED_SCHEDULES
LEARNED = "learned"
SAMPLED = "sampled"
BEST_FIXED = "best_fixed"
#: The Stackelberg search (design/search.py): the schedule whose freshly trained players
#: reach the highest W_eta on search seeds of its own, then trained on the reported seeds.
SEARCH = "search"
#: Principals in table order (TWO_TIMESCALE: ucb, thompson, egreedy, the bandit
#: principals of design/two_timescale.py, co-trained like learned, one per objective).
PRINCIPALS = (LEARNED, SAMPLED, *TWO_TIMESCALE, SEARCH, "none", *SCHEDULES, "random",
              BEST_FIXED)
#: The principal algorithms, each compared with every baseline: the co-trained ones and
#: the search.
LEARNERS = (LEARNED, SAMPLED, *TWO_TIMESCALE, SEARCH)
BASELINES = tuple(p for p in PRINCIPALS if p not in LEARNERS)
#: Principals that only the jax engine trains (eta sampling is a twin recipe; the
#: two-timescale principals set the twin trainer's rates).
JAX_ONLY = (SAMPLED, *TWO_TIMESCALE, SEARCH)
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
    """The training/evaluation spelling of a principal (`principals.PrincipalSpec`,
    checked and canonical); best_fixed needs the schedule the search chose. A
    two-timescale principal trains as fixed rates that its bandit sets (`none` until
    its first arm) and is evaluated with the schedule it committed to (`rates`)."""
    from sed_meltingpot.game.principals import PrincipalSpec

    if name in TWO_TIMESCALE or name == SEARCH:
        spec = "none" if rates is None else "fixed:" + format_rates(rates)
    elif name in LEARNERS:
        spec = "learned"
    elif name in ("none", "random"):
        spec = name
    elif name in SCHEDULES:
        spec = "fixed:" + format_rates(SCHEDULES[name])
    elif name == BEST_FIXED and rates is not None:
        spec = "fixed:" + format_rates(rates)
    else:
        raise ValueError(f"principal {name!r} must be one of {list(PRINCIPALS)} (best_fixed "
                         "with the rates its search chose)")
    return str(PrincipalSpec.parse(spec))


@dataclasses.dataclass(frozen=True)
class Grid:
    """One experiment size. The budget is the same for every principal:
    `num_iterations` iterations of `train_batch_size` env steps (RLlib) or of
    `num_envs` x `rollout_length` game steps (JAX twin).

    `recipe`: the learned principal's PrincipalRecipe on the jax engine (None: its
    defaults, training/jax/recipe.py); the sampled principal trains with it and
    `eta_sampling`, with `eta_normalised` its reward scaled per player and its
    advantages centred per eta (the recipe's principal_reward_scale=per_player and
    principal_eta_baseline), and with `eta_heads` its policy and value heads linear in
    eta (principal_eta_heads); without them it learned one schedule for every eta
    (README Results). `tax_cap_fraction`: TrainConfig.tax_cap_fraction (jax engine: the
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
    recipe: Any = None  # training.jax.recipe.PrincipalRecipe | None (that module imports JAX)
    designer: TwoTimescaleConfig = TwoTimescaleConfig()  # the two-timescale principals'
    # The search principal (experiment/searches.py): its candidates (a named arm set of
    # design/two_timescale.py), seeds, first cut (a share of twin_iterations: nothing is
    # cut before the lever shows; in the paper's game flat100's gain over no tax shows
    # 80k-160k game steps after it starts taxing, so half of the 400k budget) and scoring
    # window (the last share of a rung's iterations), and the rule that picks among the
    # last rung's candidates (design/halving.py's CHOICES). A protocol revised on earlier
    # search seeds names a fresh range (stackelberg_seed_start).
    stackelberg_candidates: str = "schedules"
    stackelberg_seeds: int = 2
    stackelberg_seed_start: int | None = None  # None: design.search.SEARCH_SEED_START
    stackelberg_first_cut: float = 0.5
    stackelberg_window: float = 0.5
    stackelberg_choice: str = "best"
    eta_sampling: str = "uniform"
    eta_normalised: bool = True
    eta_heads: bool = True
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
        if self.stackelberg_candidates not in NAMED_ARMS:
            raise ValueError(f"grid {self.name}: stackelberg_candidates="
                             f"{self.stackelberg_candidates!r} must be one of "
                             f"{list(NAMED_ARMS)}")
        if self.stackelberg_choice not in STACKELBERG_CHOICES:
            raise ValueError(f"grid {self.name}: stackelberg_choice="
                             f"{self.stackelberg_choice!r} must be one of "
                             f"{list(STACKELBERG_CHOICES)}")
        for name in ("stackelberg_first_cut", "stackelberg_window"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"grid {self.name}: {name}={getattr(self, name)!r} must be "
                                 "in (0, 1]")
        start = self.stackelberg_seed_start
        if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                                  or not 0 <= start <= MAX_TRAIN_SEED - self.stackelberg_seeds):
            raise ValueError(f"grid {self.name}: stackelberg_seed_start="
                             f"{self.stackelberg_seed_start!r} must be an integer in [0, "
                             f"{MAX_TRAIN_SEED - self.stackelberg_seeds}] (its "
                             f"{self.stackelberg_seeds} search seeds below {MAX_TRAIN_SEED})")
        for name in ("eval_episodes", "lua_episodes", "search_episodes", "num_seeds",
                     "stackelberg_seeds"):
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
        designer=TwoTimescaleConfig(designer_steps=1, designer_window=1.0),
        stackelberg_first_cut=1.0, stackelberg_window=1.0,
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
