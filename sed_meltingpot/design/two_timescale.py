"""Two-timescale bandit principals (`ucb`, `thompson`, `egreedy`) driving the jax trainer.

Why two timescales: in the paper's game a tax acts only through the players' learning
(issue 30: flat100's gain shows 80k+ game steps after it starts taxing), which a
principal updated every iteration on frozen players cannot see. Here the principal
commits to one arm (a schedule) for `steps` player iterations (one principal step), is
scored on the welfare W_eta of the episodes that end in the step's last `window`
fraction (the players have had the first part to respond), updates its bandit and picks
again; the players keep learning throughout. This is the principal loop of Large
Legislative Models (Gasztowtt et al. 2024), approximating the leader of the paper's
Eq. 7 (max over phi of W(phi, pi(phi))) over a finite set of arms.

`TwoTimescale` is what `training.jax.trainer.train(..., designer=...)` calls: before
each iteration `rates_for(iteration)` gives every seed's rates (the compiled program's
`RunInputs.rates`, so nothing is recompiled), after it `observe(iteration, k,
objectives)` hands over seed k's finished episodes' W_eta. One bandit per seed: each
seed is an independent run of the principal algorithm. A run's eta is one number, fixed
(`fixed:<eta>`) or voted from the run's fixed types (paper Section 4), so each seed's
one arm table is the table of its eta: `design.bandits.PerEtaBucket` (a table per eta
bucket) is for a trainer whose eta changes between episodes (eta sampling), where the
compiled scripted-rates program, one schedule per run, cannot follow it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sed_meltingpot.core.hyperparameters import hyperparameter
from sed_meltingpot.design.bandits import UCB, EpsilonGreedy, Thompson
from sed_meltingpot.design.protocol import Designer, Schedule, arm_grid, check_arms
from sed_meltingpot.game.principals import NAMED_SCHEDULES
from sed_meltingpot.runs import runlog

ALGORITHMS = ("ucb", "thompson", "egreedy")
#: Named arm sets: the experiment's scripted schedules (none, flat 30%, progressive,
#: regressive, flat100) or the {0, 0.5, 1}^3 grid.
NAMED_ARMS: dict[str, tuple[Schedule, ...]] = {
    "schedules": ((0.0, 0.0, 0.0), *NAMED_SCHEDULES.values()),
    "grid": arm_grid(),
}
HISTORY_FILE = "designer.json"
SHUFFLE_STREAM = 2_147_483_647  # the arm order's stream, apart from the steps' [seed, step]


@dataclasses.dataclass(frozen=True)
class TwoTimescaleConfig:
    """A two-timescale principal's settings (flags of `scripts/train.py --engine=jax`).

    Defaults, sized for the paper game's fast preset (16 games x 200 steps an iteration,
    1000-step episodes: every game ends an episode each 5 iterations): a principal step
    of 10 iterations (32k game steps) scored on its last half (5 iterations: 16
    episodes), 12 steps in the paper_fast grid's 125 iterations, over the 5 named
    schedules (each tried once, then 7 choices). `ucb_c` and the Thompson noise are in
    welfare units (apples: the seeds' spread of W in the paper game is 15-19).
    """

    designer_steps: int = hyperparameter(
        10, "Two-timescale principal: player iterations per principal step (one arm held).",
        lower_bound=1)
    designer_window: float = hyperparameter(
        0.5, "Two-timescale principal: the last fraction of a step whose finished "
        "episodes score its arm (in (0, 1]).", lower_bound=0.0, upper_bound=1.0)
    designer_arms: str = hyperparameter(
        "schedules", "Two-timescale principal: 'schedules' (none, flat, progressive, "
        "regressive, flat100), 'grid' ({0,0.5,1}^3) or schedules 'r0,r1,r2;r0,r1,r2;...'.")
    ucb_c: float = hyperparameter(10.0, "ucb: exploration scale, in welfare units.",
                                  lower_bound=0.0)
    ucb_detrend: int = hyperparameter(
        0, "ucb: 0 scores an arm by the mean of its scores; 1 or 2 by its effect net of a "
        "common linear or quadratic trend over the principal steps (the players' learning "
        "moves every arm's score; design/bandits.py).", lower_bound=0, upper_bound=2)
    thompson_noise_sd: float = hyperparameter(
        15.0, "thompson: the scores' noise sd, in welfare units.", lower_bound=0.0)
    thompson_prior_sd: float = hyperparameter(
        1000.0, "thompson: the prior sd of an arm's mean (prior mean 0).", lower_bound=0.0)
    epsilon: float = hyperparameter(0.1, "egreedy: the chance of a random arm.",
                                    lower_bound=0.0, upper_bound=1.0)
    designer_shuffle: bool = hyperparameter(
        True, "Two-timescale principal: each seed's bandit gets the arms in its own random "
        "order, so that the players' drift while they learn (their welfare changes from "
        "step to step whatever the arm) favours no arm across seeds; bandits try unpulled "
        "arms in order.")

    def arms(self, num_brackets: int) -> tuple[Schedule, ...]:
        """The arm set (a one-line ValueError naming --designer_arms otherwise)."""
        text = self.designer_arms
        try:
            if text in NAMED_ARMS:
                arms = NAMED_ARMS[text]
            else:
                arms = tuple(tuple(float(r) for r in arm.split(","))
                             for arm in text.split(";") if arm.strip())
            arms = check_arms(arms)
        except ValueError as e:
            raise ValueError(f"--designer_arms={text!r}: {e} (named sets: "
                             f"{', '.join(NAMED_ARMS)})") from None
        if len(arms[0]) != num_brackets:
            raise ValueError(f"--designer_arms={text!r}: each arm needs {num_brackets} rates "
                             f"(one per bracket), got {len(arms[0])}")
        return arms

    def validate(self, num_brackets: int) -> TwoTimescaleConfig:
        if isinstance(self.designer_steps, bool) or not isinstance(self.designer_steps, int) \
                or self.designer_steps < 1:
            raise ValueError(f"--designer_steps={self.designer_steps!r} must be an integer >= 1")
        if not 0.0 < self.designer_window <= 1.0:
            raise ValueError(f"--designer_window={self.designer_window!r} must be in (0, 1]")
        for name in ("ucb_c", "thompson_noise_sd", "thompson_prior_sd", "epsilon"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"--{name}={value!r} must be a finite number >= 0")
        if self.thompson_noise_sd == 0 or self.thompson_prior_sd == 0:
            raise ValueError("--thompson_noise_sd and --thompson_prior_sd must be > 0")
        if self.epsilon > 1:
            raise ValueError(f"--epsilon={self.epsilon!r} must be in [0, 1]")
        if isinstance(self.ucb_detrend, bool) or self.ucb_detrend not in (0, 1, 2):
            raise ValueError(f"--ucb_detrend={self.ucb_detrend!r} must be 0, 1 or 2")
        self.arms(num_brackets)
        return self

    def window_start(self) -> int:
        """The first scored iteration of a step, counted from the step's start (0-based):
        the last ceil(window x steps) iterations are scored."""
        return self.designer_steps - max(1, math.ceil(self.designer_window
                                                      * self.designer_steps - 1e-9))


def seed_arms(config: TwoTimescaleConfig, num_brackets: int, seed: int
              ) -> tuple[Schedule, ...]:
    """A seed's arms: the config's, in an order drawn from the seed when
    `designer_shuffle` (np.random.default_rng([seed, SHUFFLE_STREAM]).permutation)."""
    arms = config.arms(num_brackets)
    if not config.designer_shuffle:
        return arms
    order = np.random.default_rng([seed, SHUFFLE_STREAM]).permutation(len(arms))
    return tuple(arms[i] for i in order)


def make_bandit(algorithm: str, config: TwoTimescaleConfig,
                arms: Sequence[Schedule]) -> Designer:
    """A fresh bandit of `algorithm` over `arms`."""
    if algorithm == "ucb":
        return UCB(arms, c=config.ucb_c, detrend=config.ucb_detrend)
    if algorithm == "thompson":
        return Thompson(arms, noise_sd=config.thompson_noise_sd, prior_mean=0.0,
                        prior_sd=config.thompson_prior_sd)
    if algorithm == "egreedy":
        return EpsilonGreedy(arms, epsilon=config.epsilon)
    raise ValueError(f"--principal={algorithm!r}: a two-timescale principal is one of "
                     f"{', '.join(ALGORITHMS)}")


class TwoTimescale:
    """One bandit per seed, stepped by the trainer (module docstring).

    The step index of an iteration is iteration // steps; a step's arm is proposed at
    its first iteration with `np.random.default_rng([seed, step])` (so a run is a
    function of its seeds), and observed once its last iteration has run, with the
    mean W_eta of the episodes that ended in iterations window_start.. of the step (no
    observation where none ended: a step cut short by the run's end)."""

    def __init__(self, algorithm: str, config: TwoTimescaleConfig, seeds: Sequence[int],
                 num_brackets: int, fixed_eta: float | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"--principal={algorithm!r}: a two-timescale principal is one "
                             f"of {', '.join(ALGORITHMS)}")
        self.algorithm = algorithm
        self.config = config.validate(num_brackets)
        self.seeds = list(seeds)
        self.eta = None if fixed_eta is None else float(fixed_eta)  # None: voted
        self.bandits = [make_bandit(algorithm, config, seed_arms(config, num_brackets, seed))
                        for seed in self.seeds]
        self.current: list[Schedule | None] = [None] * len(self.seeds)
        self.window: list[list[float]] = [[] for _ in self.seeds]
        self.history: list[list[dict[str, Any]]] = [[] for _ in self.seeds]

    def describe(self) -> dict[str, Any]:
        """What run_config.json records about the principal."""
        return {"algorithm": self.algorithm, **dataclasses.asdict(self.config),
                "arms": [list(a) for a in self.config.arms(len(self.bandits[0].arms[0]))],
                "window_start": self.config.window_start(), "eta": self.eta}

    def rates_for(self, iteration: int) -> np.ndarray:
        """Every seed's rates for the iteration about to run (seeds x brackets)."""
        step = iteration // self.config.designer_steps
        for k, seed in enumerate(self.seeds):
            if self.current[k] is None or iteration % self.config.designer_steps == 0:
                rng = np.random.default_rng([seed, step])
                self.current[k] = self.bandits[k].propose(rng)
                self.window[k] = []
        return np.asarray(self.current, dtype=np.float32)

    def observe(self, iteration: int, k: int, objectives: Sequence[float]) -> None:
        """Seed k's finished episodes' W_eta in the iteration just run (0-based
        `iteration`); scores the arm when the iteration ends a principal step."""
        position = iteration % self.config.designer_steps
        if position >= self.config.window_start():
            self.window[k].extend(float(v) for v in objectives if math.isfinite(float(v)))
        if position == self.config.designer_steps - 1 and self.window[k]:
            score = float(np.mean(self.window[k]))
            arm = self.current[k]
            self.bandits[k].observe(arm, score)
            self.history[k].append({"step": iteration // self.config.designer_steps,
                                    "last_iteration": iteration + 1, "arm": list(arm),
                                    "score": score, "episodes": len(self.window[k])})

    def summary(self, k: int) -> dict[str, Any]:
        """Seed k's record: the arm it would commit to now, each arm's pulls and mean, and
        every scored step."""
        bandit = self.bandits[k]
        scored = bandit.total > 0  # none before the first step is scored
        return {"principal": self.algorithm, "seed": self.seeds[k], "eta": self.eta,
                "best_rates": list(bandit.best()) if scored else None,
                "arms": [list(a) for a in bandit.arms],
                "counts": [int(c) for c in bandit.counts],
                "means": [None if not math.isfinite(m) else float(m) for m in bandit.means],
                "estimates": [None if not math.isfinite(m) else float(m)
                              for m in bandit.estimates()],
                "steps": self.history[k], "config": dataclasses.asdict(self.config)}

    def write(self, k: int, folder: str) -> str:
        """Writes seed k's summary to `folder`/designer.json (whole: tmp then rename)."""
        path = os.path.join(folder, HISTORY_FILE)
        runlog.write_json(path, self.summary(k))
        return path


def best_rates(run_dir: str) -> tuple[float, ...]:
    """The schedule a two-timescale run's principal committed to (its designer.json)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    try:
        with open(path) as f:
            rates = json.load(f)["best_rates"]
        if rates is None:
            raise ValueError("no principal step was scored: the run is shorter than one "
                             "step (--designer_steps)")
        return tuple(float(r) for r in rates)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: no two-timescale principal's record ({e})") from None
