"""The jitted programs the benchmarks time: the twin's env steps (random actions, with
or without every player's view) and one jax-engine training iteration.

`scripts/benchmark_twin.py` and `scripts/gpu_check.py` time the same programs, so their
rows agree. Lowering and compiling are apart (`Program`) so that a caller can compile
several programs in threads and keep the compile out of every rate. JAX and the twin
are imported inside the functions: importing this module imports no JAX, so a check
can parse its flags and report a missing package in one line first.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sed_meltingpot.twin import TwinEnv

OBSERVATIONS = ("none", "tiles", "pixels")  # what an env row renders each step


def make_twin_rollout(env: TwinEnv, num_games: int, steps_per_call: int, tiles: bool = False,
                      observe: str | None = None) -> Callable[[Any, Any], tuple[Any, Any, Any]]:
    """A jitted function running `steps_per_call` steps of `num_games` games; `observe`
    ("none", "tiles" or "pixels"; `tiles=True` is "tiles") also renders every player's
    view each step: 11x11 `tiles` (what the fast preset's players observe) or 88x88 RGB
    `pixels` (the paper preset's), so the row costs what a training rollout's env part
    does."""
    import jax
    import jax.numpy as jnp

    from sed_meltingpot.twin import render

    observe = observe or ("tiles" if tiles else "none")
    if observe not in OBSERVATIONS:
        raise ValueError(f"observe={observe!r} must be one of {OBSERVATIONS}")
    view = {"tiles": render.tiles, "pixels": render.pixels}.get(observe)

    def one_step(carry, _):
        state, key = carry
        key, k_act, k_step, k_reset = jax.random.split(key, 4)
        actions = jax.random.randint(k_act, (num_games, env.num_players), 0, env.num_actions)
        state, out = jax.vmap(env.step)(state, actions,
                                        jax.random.split(k_step, num_games))

        def reset_done(state):
            fresh = jax.vmap(env.reset)(jax.random.split(k_reset, num_games))
            return jax.tree.map(
                lambda new, old: jnp.where(
                    out.done.reshape((-1,) + (1,) * (old.ndim - 1)), new, old), fresh, state)

        # Games run in lockstep, so resets are rare: pay for them only when due.
        state = jax.lax.cond(out.done.any(), reset_done, lambda s: s, state)
        eaten = out.apples_eaten.sum()
        if view is not None:  # the views feed the returned checksum: XLA cannot drop them
            views = jax.vmap(lambda s: view(env, s))(state)
            eaten = eaten + views.astype(jnp.float32).mean()
        return (state, key), eaten

    @jax.jit
    def rollout(state, key):
        (state, key), eaten = jax.lax.scan(one_step, (state, key), None, length=steps_per_call)
        return state, key, eaten.sum()

    return rollout


@dataclasses.dataclass
class Program:
    """A lowered program with its first inputs, compiled by `compile()` (lowering and
    compiling are apart so that a caller can compile several programs in threads):
    then `run(*args)` is one call; `lower_s` + `compile_s` the time they took (kept
    out of every rate); `memory` XLA's `memory_analysis()` (None where the backend
    gives none)."""

    lowered: Any
    args: tuple
    lower_s: float
    run: Any = None
    compile_s: float = float("nan")
    memory: Any = None

    def compile(self) -> Program:
        """Compiles the lowered program (XLA runs outside the GIL), timed; returns self."""
        start = time.perf_counter()
        self.run = self.lowered.compile()
        self.compile_s = time.perf_counter() - start
        try:
            self.memory = self.run.memory_analysis()
        except Exception:  # noqa: BLE001 - an optional figure some backends lack
            self.memory = None
        return self


def lower(fn: Any, *args: Any) -> Program:
    """`fn` jitted and lowered for `args` (not compiled yet), timed."""
    import jax

    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    return Program(lowered, args, time.perf_counter() - start)


def twin_rollout_program(env: TwinEnv, num_games: int, steps_per_call: int, seed: int,
                         observe: str = "none") -> Program:
    """`make_twin_rollout` lowered for `num_games` fresh games: run(state, key) ->
    (state, key, checksum)."""
    import jax

    rollout = make_twin_rollout(env, num_games, steps_per_call, observe=observe)
    key = jax.random.PRNGKey(seed)
    state = jax.vmap(env.reset)(jax.random.split(key, num_games))
    return lower(rollout, state, key)


def twin_training_program(preset_name: str, num_envs: int, rollout_length: int, seed: int,
                          dtype: str = "float32", principal: str = "learned"
                          ) -> tuple[Any, Program]:
    """(TwinTrainConfig, lowered update) of `scripts/train.py --engine=jax` with the
    preset's network and PPO settings: update(state) -> (state, metrics), one iteration
    (training/jax/ppo.py: rollout, GAE, PPO epochs in one jitted call)."""
    import jax
    import jax.numpy as jnp

    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig, preset
    from sed_meltingpot.training.jax import ppo

    config = ppo.TwinTrainConfig(
        game=GameConfig(),
        train=TrainConfig(num_iterations=100, seed=seed, principal=principal,
                          **preset(preset_name)),
        num_envs=num_envs, rollout_length=rollout_length, dtype=dtype)
    fns = ppo.make_functions(config)
    state = jax.jit(fns.init)(jax.random.PRNGKey(seed),
                              jnp.full(config.game.num_players, 0.5, jnp.float32))
    return config, lower(fns.update, state)

