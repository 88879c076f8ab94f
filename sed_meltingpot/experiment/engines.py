"""The results experiment's training engines and where they play episodes.

An engine trains a run into a folder and evaluates a run's players under a principal:

    engine.train(grid, tasks, run_dirs, log)          # one or several seeds
    engine.evaluate(grid, run_dir, voting_rule, principal, seed, num_episodes, stream)
        -> per-episode scalars (evaluation.episode_scalars keys, plus W_apples and
           W_taxed: rows.episode_welfare)

`stream` is the training seed of the run: the random principal's draws depend on it
and on the episode (so they are independent across seeds and episodes), while the
worlds and the players' sampling draws depend only on the evaluation seed (common
random numbers across principals and seeds).

`RllibEngine` trains with RLlib (sed_meltingpot.training.rllib.trainer) and plays on
the Lua substrate; `JaxEngine` trains on the JAX twin (seeds vmapped in one
process, the learned principal with the grid's `PrincipalRecipe`) and plays on the
twin (`twin_episodes`), and its learned players and principal are also played on the
Lua substrate for the transfer gap (`Grid.lua_episodes`). Lua evaluation
(`lua_episodes`) goes through sed_meltingpot.evaluation (load_run,
evaluate_principal), so the numbers are the game's own `episode_metrics()`.
JAX, RLlib and torch are imported inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sed_meltingpot import evaluation
from sed_meltingpot.design.two_timescale import TwoTimescale
from sed_meltingpot.experiment.grid import (
    JAX_ONLY,
    LEARNED,
    SAMPLED,
    SUBSTRATE_LUA,
    SUBSTRATE_TWIN,
    TWO_TIMESCALE,
    Grid,
    eta_of,
)
from sed_meltingpot.experiment.plan import TrainTask
from sed_meltingpot.experiment.rows import check_objective, episode_welfare
from sed_meltingpot.game.principals import FixedRates, RandomPrincipal

Log = Callable[[str], None]
# How the grid names a principal: "learned" | spec ("none", "fixed:..", "random") | rates
PrincipalSpec = str | tuple[float, ...]


class Engine(Protocol):
    name: str
    substrate: str  # where `evaluate` plays: "lua" or "twin"
    batch_seeds: bool  # True: train() takes several seeds of one (principal, objective) at once

    def train(self, grid: Grid, tasks: Sequence[TrainTask], run_dirs: Sequence[str],
              log: Log) -> None: ...

    def evaluate(self, grid: Grid, run_dir: str, voting_rule: str, principal: PrincipalSpec,
                 seed: int, num_episodes: int, stream: int) -> list[dict[str, float]]: ...


# ------------------------------------------------------------------- Lua
class StreamRandomPrincipal(RandomPrincipal):
    """The random principal whose draws depend on the episode's seed and on `stream`
    (the training seed), so that runs of different seeds do not replay the same rates."""

    def __init__(self, rate_levels: Sequence[float], num_brackets: int, stream: int) -> None:
        super().__init__(rate_levels, num_brackets)
        self.stream = int(stream)

    def reset(self, seed: int) -> None:
        import numpy as np

        self._rng = np.random.default_rng([int(seed), self.stream])


def lua_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """An episode's scalars with W_eta under both definitions (`episode_welfare`)."""
    return {**evaluation.episode_scalars(metrics), **episode_welfare(metrics)}


class LuaEvaluator:
    """Plays a trained run's players on the Lua substrate through
    sed_meltingpot.evaluation; loads the run's modules once."""

    def __init__(self, run_dir: str) -> None:
        from sed_meltingpot.core.optional import extra_import

        with extra_import("rllib", "the experiment's Lua evaluation"):
            import torch

        # One thread: these networks are tiny, and on a busy machine torch's
        # thread pool waits for cores far longer than it computes (measured
        # 10x slower episodes on 2 shared cores).
        torch.set_num_threads(1)
        self.run = evaluation.load_run(run_dir)

    def episodes(self, voting_rule: str, principal: PrincipalSpec, seed: int, num_episodes: int,
                 stream: int = 0) -> list[dict[str, float]]:
        setup = evaluation.build_setup(self.run, {"voting_rule": voting_rule}, seed=seed)
        players = evaluation.make_players("checkpoint", self.run)
        game = setup.game
        if isinstance(principal, tuple):
            acting: Any = FixedRates(principal)
        elif principal == "random":
            acting = StreamRandomPrincipal(game.rate_levels, game.num_brackets, stream)
        else:
            acting = evaluation.make_principal(
                "trained" if principal == LEARNED else principal, setup, self.run)
        episodes = evaluation.evaluate_principal(setup, players, acting,
                                                 num_episodes=num_episodes, seed=seed,
                                                 scalars_fn=lua_scalars)
        check_objective(episodes, game.welfare_on)
        return episodes


_LUA_CACHE: dict[str, LuaEvaluator] = {}


def lua_episodes(run_dir: str, voting_rule: str, principal: PrincipalSpec, seed: int,
                 num_episodes: int, stream: int = 0) -> list[dict[str, float]]:
    if run_dir not in _LUA_CACHE:
        _LUA_CACHE.clear()  # one run at a time: modules are small but envs are not
        _LUA_CACHE[run_dir] = LuaEvaluator(run_dir)
    return _LUA_CACHE[run_dir].episodes(voting_rule, principal, seed, num_episodes, stream)


def _train_config(grid: Grid, task: TrainTask, *, num_iterations: int,
                  rollout_fragment_length: int, train_batch_size: int) -> Any:
    """The grid's TrainConfig for one run; the engines differ only in how an
    iteration is sized (RLlib: batch of fragments; jax: games x rollout)."""
    from sed_meltingpot.runs.train_config import TrainConfig, preset

    overrides = {**preset(grid.preset), "minibatch_size": grid.minibatch_size}
    return TrainConfig(
        num_iterations=num_iterations, seed=task.seed, principal=task.spec,
        rollout_fragment_length=rollout_fragment_length,
        train_batch_size=train_batch_size, num_env_runners=0,
        frame_stack=grid.frame_stack, tax_cap_fraction=grid.tax_cap_fraction,
        principal_minibatch_size=grid.principal_minibatch_size, **overrides).validate()


def train_game(grid: Grid, task: TrainTask) -> Any:
    return dataclasses.replace(grid.game, voting_rule=task.voting_rule,
                               welfare_on=task.game_welfare_on).validate()


# ----------------------------------------------------------------- RLlib
class RllibEngine:
    """RLlib multi-agent PPO (sampling in the driver: one core per run),
    evaluated on the Lua substrate."""

    name = "rllib"
    substrate = SUBSTRATE_LUA
    batch_seeds = False

    def train_config(self, grid: Grid, task: TrainTask) -> Any:
        return _train_config(grid, task, num_iterations=grid.num_iterations,
                             rollout_fragment_length=grid.rollout_fragment_length,
                             train_batch_size=grid.train_batch_size)

    def train(self, grid: Grid, tasks: Sequence[TrainTask], run_dirs: Sequence[str],
              log: Log) -> None:
        from sed_meltingpot.training.rllib.trainer import train

        for task, run_dir in zip(tasks, run_dirs, strict=True):
            if task.principal in JAX_ONLY:
                raise ValueError(f"principal {task.principal!r} trains only with --engine=jax")
            os.makedirs(run_dir, exist_ok=True)
            with open(os.path.join(run_dir, "train.log"), "a") as f:
                # overwrite: a run without summary.json was cut short; start it again.
                train(train_game(grid, task), self.train_config(grid, task), run_dir,
                      checkpoint_every=0, overwrite=True,
                      print_fn=lambda s, f=f: print(s, file=f, flush=True))

    def evaluate(self, grid: Grid, run_dir: str, voting_rule: str, principal: PrincipalSpec,
                 seed: int, num_episodes: int, stream: int) -> list[dict[str, float]]:
        return lua_episodes(run_dir, voting_rule, principal, seed, num_episodes, stream)


# ------------------------------------------------------------------- JAX
def twin_episodes(run_dir: str, voting_rule: str, principal: PrincipalSpec, seed: int,
                  num_episodes: int, stream: int = 0) -> list[dict[str, float]]:
    """Plays a jax run's players (and learned principal) on the twin under the run's
    welfare definition (`training.jax.play.play_run`: episode k from PRNGKey(seed + k); policies
    sample as in training; the random principal draws from
    `random_principal_keys(seed, stream)`). Scalars come from SEDTwin.episode_metrics
    (the game's metrics on device), plus W_eta under both definitions from its
    per-player totals (`episode_welfare`)."""
    from sed_meltingpot.training.jax.play import play_run

    game, metrics = play_run(run_dir, voting_rule, principal, seed, num_episodes, stream)
    episodes = []
    for e in range(num_episodes):
        one = {k: v[e] for k, v in metrics.items()}
        episodes.append({**evaluation.episode_scalars(one), **episode_welfare(one)})
    check_objective(episodes, game.welfare_on)
    return episodes


def task_recipe(grid: Grid, task: TrainTask) -> Any:
    """The PrincipalRecipe a jax run trains with: the grid's (None: the defaults), with
    the grid's eta sampling (and, as `Grid.eta_normalised` and `Grid.eta_heads` say, the
    per-eta reward scale and advantage baseline, the eta heads) for the sampled
    principal."""
    from sed_meltingpot.training.jax.recipe import PrincipalRecipe

    recipe = grid.recipe or PrincipalRecipe()
    if task.principal == SAMPLED:
        recipe = dataclasses.replace(recipe, eta_sampling=grid.eta_sampling)
        if grid.eta_normalised:
            recipe = dataclasses.replace(recipe, principal_reward_scale="per_player",
                                         principal_eta_baseline=True)
        if grid.eta_heads:
            recipe = dataclasses.replace(recipe, principal_eta_heads=True)
    return recipe.validate()


class JaxEngine:
    """The JAX twin (issue 9): the seeds of one (principal, objective) trained
    in one process, vmapped; evaluated on the twin (and the learned players
    and principal also on the Lua substrate)."""

    name = "jax"
    substrate = SUBSTRATE_TWIN
    batch_seeds = True

    def train_config(self, grid: Grid, task: TrainTask) -> Any:
        return _train_config(grid, task, num_iterations=grid.twin_iterations,
                             rollout_fragment_length=grid.rollout_length,
                             train_batch_size=grid.num_envs * grid.rollout_length)

    def train(self, grid: Grid, tasks: Sequence[TrainTask], run_dirs: Sequence[str],
              log: Log) -> None:
        from sed_meltingpot.training.jax import trainer as twin_trainer

        seeds = [t.seed for t in tasks]
        if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
            raise ValueError(f"the jax engine trains consecutive seeds together, got {seeds}")
        group = run_dirs[0] if len(seeds) == 1 else os.path.dirname(run_dirs[0])
        if list(run_dirs) != twin_trainer.run_dirs(group, seeds):
            raise ValueError(f"run folders {run_dirs} are not the jax trainer's for {group}")
        twin_trainer.enable_compilation_cache()  # a rerun or resume skips the compiles
        os.makedirs(group, exist_ok=True)
        game = train_game(grid, tasks[0])
        designer = None
        if tasks[0].principal in TWO_TIMESCALE:  # its bandit sets the fixed rates
            designer = TwoTimescale(tasks[0].principal, grid.designer, seeds,
                                    game.num_brackets, eta_of(tasks[0].objective))
        with open(os.path.join(group, "train.log"), "a") as f:
            twin_trainer.train(game, self.train_config(grid, tasks[0]),
                               group, num_envs=grid.num_envs,
                               rollout_length=grid.rollout_length, num_seeds=len(seeds),
                               checkpoint_every=0, overwrite=True,
                               recipe=task_recipe(grid, tasks[0]), designer=designer,
                               print_fn=lambda s, f=f: print(s, file=f, flush=True))

    def evaluate(self, grid: Grid, run_dir: str, voting_rule: str, principal: PrincipalSpec,
                 seed: int, num_episodes: int, stream: int) -> list[dict[str, float]]:
        return twin_episodes(run_dir, voting_rule, principal, seed, num_episodes, stream)


ENGINES: dict[str, Callable[[], Engine]] = {"rllib": RllibEngine, "jax": JaxEngine}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise ValueError(f"--engine={name!r} must be one of {sorted(ENGINES)}") from None


#: The modules a call imports only when a later stage reaches them (they pull in JAX or
#: SciPy, which `import sed_meltingpot.experiment` must not), per engine.
LATER_STAGES: dict[str, tuple[str, ...]] = {
    "jax": ("sed_meltingpot.training.jax.trainer", "sed_meltingpot.training.jax.play",
            "sed_meltingpot.training.jax.recipe", "sed_meltingpot.design.search"),
    "rllib": (),
}
COMMON_LATER_STAGES = ("scipy.stats", "sed_meltingpot.analysis.plotting",
                       "sed_meltingpot.core.optional", "sed_meltingpot.runs.train_config")


def load_later_stages(engine_name: str) -> list[str]:
    """Imports now every module a later stage of the call imports lazily; returns them.

    Why: a call of hours loads the code it runs at its start. Without this, a module
    edited while a call trains is read only when its stage comes, and an edit in progress
    there ends the call (issue 30's replication stopped at its search stage with an
    ImportError after 78 minutes of training)."""
    import importlib

    if engine_name not in LATER_STAGES:
        raise ValueError(f"--engine={engine_name!r} must be one of {sorted(LATER_STAGES)}")
    names = [*COMMON_LATER_STAGES, *LATER_STAGES[engine_name]]
    for name in names:
        importlib.import_module(name)
    return names
