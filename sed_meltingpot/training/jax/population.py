"""Many independent runs of scripted-rates training in one compiled program (issue 30).

Why: the Stackelberg search (`design/search.py`) trains players from scratch under each
candidate schedule, for several seeds. A scripted principal's rates and the fixed eta
are inputs of the compiled update (`ppo_config.RunInputs`), so runs that differ only in
their seed and their rates share one program: `jax.jit(jax.vmap(update))` trains them
all at once, each run with its own `RunnerState` (its own `inputs.rates`), as Pax
vmaps its candidates' learners. Successive halving keeps the best runs (`select`); the
program is compiled again only when the number of runs changes (once per rung).

PureJaxRL style: `Population.create` builds the functions and the runs' initial state,
`advance` trains them for some iterations and returns the objectives of the episodes
that ended, `select` keeps some runs, `save` / `load` write and read the state (one
.npz of the pytree's leaves, written whole). Run k uses `jax.random.PRNGKey(seeds[k])`,
as the trainer's run of that seed does, so candidates with the same seed start from the
same players and games (common random numbers: their differences are the schedules').
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.runs.run_plan import fresh_types
from sed_meltingpot.training.jax import ppo
from sed_meltingpot.training.jax.ppo_config import RunInputs, TwinTrainConfig, parse_scripted


class Objectives(NamedTuple):
    """What `advance` returns, per run and iteration (runs, iterations, periods, games):
    which games ended an episode at a period's end, and that episode's objective W_eta
    (the game's metrics' "objective"; meaningless where `done` is False)."""

    done: np.ndarray  # bool
    value: np.ndarray  # f32


@functools.lru_cache(maxsize=8)
def _compiled(config: TwinTrainConfig, game: Any) -> tuple[ppo.TrainFunctions, Any, Any, Any]:
    """The run's functions and the three jitted programs, made once per (config, game)
    in a process, so that a second population (a resumed search) reuses the compiled
    code (jit caches per function object)."""
    fns = ppo.make_functions(config, game)

    def step(state: ppo.RunnerState) -> tuple[ppo.RunnerState, tuple[jax.Array, jax.Array]]:
        state, metrics = fns.update(state)
        episodes = metrics["episodes"]  # only what the caller scores leaves the device
        return state, (episodes["done"], episodes["metrics"]["objective"])

    return (fns, jax.jit(jax.vmap(fns.init_networks)), jax.jit(jax.vmap(fns.init_games)),
            jax.jit(jax.vmap(step)))


@dataclasses.dataclass(frozen=True)
class Population:
    """Runs of one config under `jax.vmap`: run k has seed `seeds[k]`, rates `rates[k]`."""

    config: TwinTrainConfig
    game: Any  # the TrainableGame (None: the SEDTwin of the config)

    @property
    def functions(self) -> ppo.TrainFunctions:
        return _compiled(self.config, self.game)[0]

    @classmethod
    def create(cls, config: TwinTrainConfig, seeds: Sequence[int], rates: Any,
               game_impl: Any = None) -> tuple[Population, ppo.RunnerState]:
        """The population and its runs' initial state. `seeds` (R,) and `rates` (R, B)
        are aligned: run k trains seed k's players under the fixed rates k. The config's
        principal must be scripted rates ('none' or 'fixed:...'): its rates are replaced
        per run; its fixed eta (a `fixed:<eta>` voting rule) is every run's."""
        config.validate()
        kind, _ = parse_scripted(config.train.principal, config.game)
        if kind != "rates":
            raise ValueError(f"principal={config.train.principal!r}: a population trains "
                             "scripted rates, give 'none' or 'fixed:...'")
        seeds = [int(s) for s in seeds]
        rates = np.asarray(rates, np.float32)
        b = config.game.num_brackets
        if not seeds or rates.shape != (len(seeds), b):
            raise ValueError(f"rates must have shape (len(seeds), num_brackets) = "
                             f"({len(seeds)}, {b}), got {rates.shape}")
        if not ((rates >= 0) & (rates <= 1)).all():
            raise ValueError(f"rates must be in [0, 1], got {rates.min()}..{rates.max()}")
        population = cls(config, game_impl)
        return population, population.initial_state(seeds, rates)

    def _types(self, seeds: Sequence[int]) -> np.ndarray:
        """Each run's players' types, as the trainer picks them for a fresh run
        (`run_plan.fresh_types`)."""
        return np.asarray([fresh_types(self.config.game, s) for s in seeds], np.float32)

    def initial_state(self, seeds: Sequence[int], rates: np.ndarray) -> ppo.RunnerState:
        """Fresh runs, in two programs (networks, then games) each finished before the
        next starts: `ppo.init_vmapped`'s reasoning (one program stalled XLA's CPU
        runtime), with per-run inputs where it broadcasts one."""
        _, init_networks, init_games, _ = _compiled(self.config, self.game)
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        fixed = ppo.run_inputs(self.config.game, self.config.train.principal).fixed_eta
        inputs = RunInputs(jnp.full(len(seeds), fixed, jnp.float32), jnp.asarray(rates))
        nets = jax.block_until_ready(init_networks(keys))
        return jax.block_until_ready(init_games(nets, jnp.asarray(self._types(seeds)), inputs))

    def advance(self, state: ppo.RunnerState, num_iterations: int,
                progress: Callable[[int, int], None] | None = None
                ) -> tuple[ppo.RunnerState, Objectives]:
        """Every run trains `num_iterations` more iterations; the episodes that ended.
        `progress(done, num_iterations)` is called after each iteration has finished (a
        rung of the paper's game is half an hour on 2 cores: long work says where it is)."""
        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) \
                or num_iterations < 1:
            raise ValueError(f"num_iterations must be an integer >= 1, got {num_iterations!r}")
        step = _compiled(self.config, self.game)[3]
        done, value = [], []
        for k in range(num_iterations):
            state, (d, v) = step(state)
            done.append(d)
            value.append(v)
            if progress is not None:
                jax.block_until_ready(d)  # finished, not only dispatched
                progress(k + 1, num_iterations)
        done, value = jax.device_get((done, value))
        return state, Objectives(np.stack(done, axis=1), np.stack(value, axis=1))

    @staticmethod
    def select(state: ppo.RunnerState, indices: Sequence[int]) -> ppo.RunnerState:
        """The runs `indices` (in that order) of a batched state."""
        index = jnp.asarray(list(indices), jnp.int32)
        return jax.tree_util.tree_map(lambda x: x[index], state)

    @staticmethod
    def save(state: ppo.RunnerState, path: str) -> None:
        """The state's leaves in one .npz, written whole: to a temporary sibling, then
        renamed over `path` (a kill mid-write leaves the old file or none)."""
        leaves = jax.device_get(jax.tree_util.tree_leaves(state))
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez(tmp, *leaves)
        os.replace(tmp, path)

    def load(self, path: str, num_runs: int) -> ppo.RunnerState:
        """A state of `num_runs` runs saved by `save`; ValueError naming the file if its
        leaves do not fit this population's state (shapes from `jax.eval_shape` of the
        init: nothing is computed)."""
        _, init_networks, init_games, _ = _compiled(self.config, self.game)
        g = self.config.game
        keys = jnp.stack([jax.random.PRNGKey(0)] * num_runs)
        inputs = RunInputs(jnp.zeros(num_runs, jnp.float32),
                           jnp.zeros((num_runs, g.num_brackets), jnp.float32))
        template = jax.eval_shape(lambda: init_games(
            init_networks(keys), jnp.zeros((num_runs, g.num_players), jnp.float32), inputs))
        expected = jax.tree_util.tree_leaves(template)
        with np.load(path) as data:
            leaves = [data[f"arr_{i}"] for i in range(len(data.files))]
        if len(leaves) != len(expected) or any(
                a.shape != e.shape or a.dtype != e.dtype
                for a, e in zip(leaves, expected, strict=False)):
            raise ValueError(f"{path}: the saved state does not fit {num_runs} runs of this "
                             "config (another config or game?)")
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template),
                                            [jnp.asarray(a) for a in leaves])
