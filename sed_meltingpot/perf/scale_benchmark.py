"""Rows of the scaling benchmark (`scripts/benchmark_scale.py`): the twin's env steps and
one jax-engine training iteration, timed against the number of players, the players'
minibatch plan and the number of runs trained together.

Every row is timed the same way (`time_calls`): one warm-up call (it compiles where the
program is not compiled yet), one pilot call that sizes the count, then that fixed count
of calls, each waited for (`jax.block_until_ready`) and timed alone; the row's figure is
the median call. The median, not the mean, so that a call slowed by another process on a
shared machine moves the figure less; the count is fixed before the timed calls start so
that the budget (`seconds`) chooses how many calls, never which ones count.

* env rows: the paper's map for 7 players (what every other run plays; a generated map
  for 7 is the same layout), a generated map (`twin/generated_map.py`) for the others,
  `num_games` games under `jax.vmap`, random actions, `perf.programs.twin_rollout_program`
  (the program `scripts/benchmark_twin.py` times), compiled before the warm-up.
* training rows: one iteration of `train.py --engine=jax` with the fast preset and no
  tax, through `training/jax/population.Population`: `jax.jit(jax.vmap(update))` over
  the runs, the program train.py itself runs over its seeds (one run: one seed). Rows
  against players (one run), against the players' minibatch plan (by size, or by count
  as `--num_minibatches`) and against the number of runs (seeds 0..R-1, all no tax).

A game step is one step of one game (all its players acting); an agent step is one
player's step, so agent steps = game steps x players. A training row's game steps per
call are runs x games x rollout steps.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from sed_meltingpot.perf.programs import twin_rollout_program
from sed_meltingpot.perf.timing import MIN_CALLS, time_calls

#: Sections of the benchmark: the row kinds (`Row.section`), in the order they run.
SECTIONS = ("env", "train", "plan", "population")


def map_for(players: int) -> str:
    """The map of a row of `players`: the paper's for 7, a generated one otherwise."""
    return "default" if players == 7 else "generated"


@dataclasses.dataclass(frozen=True)
class Row:
    """One timed row. `steps` is steps per call of each game (env: the scan's length;
    training: the rollout's); `setup_s` what was kept out of the rate (env: lower and
    compile; training: the runs' init and the warm-up call, compile included); `plan`
    the players' (minibatch size, minibatches per epoch) of a training row."""

    section: str
    series: str  # the rows one exponent is fitted to (`scale_report.fits`)
    players: int
    map_name: str
    height: int
    width: int
    locality: str
    runs: int
    games: int
    steps: int
    median_s: float
    calls: int
    setup_s: float
    minibatch_size: int = 0
    num_minibatches: int = 0
    plan: str = ""
    note: str = ""

    @property
    def game_steps_per_call(self) -> int:
        return self.runs * self.games * self.steps

    @property
    def game_steps_per_s(self) -> float:
        return self.game_steps_per_call / self.median_s

    @property
    def agent_steps_per_s(self) -> float:
        return self.game_steps_per_s * self.players

    @property
    def seconds_per_game_step(self) -> float:
        return self.median_s / self.game_steps_per_call

    def record(self) -> dict[str, Any]:
        """The row with its rates, for the CSV and JSON."""
        return {**dataclasses.asdict(self), "game_steps_per_call": self.game_steps_per_call,
                "game_steps_per_s": self.game_steps_per_s,
                "agent_steps_per_s": self.agent_steps_per_s,
                "seconds_per_game_step": self.seconds_per_game_step}


def env_row(players: int, num_games: int, steps_per_call: int, seconds: float,
            locality: str | None = None, observe: str = "none", seed: int = 0,
            series: str = "env", min_calls: int = MIN_CALLS) -> Row:
    """The twin's env steps for `players` (`time_calls` after the compile)."""
    from sed_meltingpot.twin import TwinEnv

    map_name = map_for(players)
    env = TwinEnv.create(num_players=players, map=map_name, locality=locality)
    program = twin_rollout_program(env, num_games, steps_per_call, seed, observe).compile()
    # carry: run's (state, key, checksum); the next call takes (state, key)
    _, timing = time_calls(lambda c: program.run(*c[:2]), (*program.args, None), seconds,
                           done=lambda c: c[2], min_calls=min_calls)
    return Row("env", series, players, map_name, env.height, env.width, env.locality, 1,
               num_games, steps_per_call, timing.median_s, timing.calls,
               program.lower_s + program.compile_s, plan=f"observe {observe}")


def training_config(players: int, num_games: int, rollout: int, num_minibatches: int = 0,
                    seed: int = 0) -> Any:
    """The TwinTrainConfig of a training row: the fast preset, no tax, `players` on
    `map_for(players)`, `num_games` games x `rollout` steps per iteration, the players'
    minibatches by the preset's size (`num_minibatches=0`) or by that count; checked
    (`validate`: ValueError naming the setting)."""
    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig, preset
    from sed_meltingpot.training.jax.ppo_config import TwinTrainConfig

    game = GameConfig(num_players=players, map=map_for(players))
    train = TrainConfig(**preset("fast"), principal="none", seed=seed,
                        num_minibatches=num_minibatches)
    return TwinTrainConfig(game, train, num_envs=num_games, rollout_length=rollout).validate()


def plan_label(num_minibatches: int) -> str:
    """How a row's plan was asked for: 'size' (the preset's minibatch size) or 'count k'."""
    return f"count {num_minibatches}" if num_minibatches else "size"


def training_row(section: str, players: int, num_games: int, rollout: int, seconds: float,
                 runs: int = 1, num_minibatches: int = 0, seed: int = 0,
                 min_calls: int = MIN_CALLS) -> Row:
    """`runs` runs (seeds seed..seed+runs-1, no tax) of `training_config` in one
    `Population`, one iteration per call (`time_calls`; the warm-up call compiles)."""
    import numpy as np

    from sed_meltingpot.training.jax.population import Population

    config = training_config(players, num_games, rollout, num_minibatches, seed)
    start = time.perf_counter()
    seeds = [seed + k for k in range(runs)]
    population, state = Population.create(
        config, seeds, np.zeros((runs, config.game.num_brackets), np.float32))
    init_s = time.perf_counter() - start
    _, timing = time_calls(lambda s: population.advance(s, 1)[0], state, seconds,
                           min_calls=min_calls)
    env = population.functions.game.env
    size, count = config.players_minibatch_plan
    return Row(section, "train", players, config.game.map, env.height, env.width,
               env.locality, runs, num_games, rollout, timing.median_s, timing.calls,
               init_s + timing.warmup_s, size, count,
               f"{plan_label(num_minibatches)}: {count} x {size} rows")
