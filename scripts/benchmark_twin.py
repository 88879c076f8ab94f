"""Game steps per second: the Lua substrate against the JAX twin, side by side.

One run prints one table; every row is measured in this run on this machine.
A "game step" is one step of one game (all its players acting), so a batch of
64 games stepped once counts 64 game steps.

Row groups (one function each, so that more can be added to the same table):
* `env_rows`: the Lua substrate (`sed_meltingpot.game.substrate`, one game) and the
  twin's `step` alone (`jax.jit(jax.vmap(env.step))` under `lax.scan`, random
  actions drawn on device, episodes reset on device) for 1, 64 and 512 games.
  Rendering is not included (see `sed_meltingpot.twin.render`).

Ratios are against the first row (the Lua substrate). The Lua rows need
Melting Pot (imported only when they run); `--no-lua` measures the twin alone,
e.g. on a GPU machine that has only JAX.

* `training_rows`: RLlib PPO (Lua substrate, `--rllib-runners` env runners) against
  the twin's jitted PPO (`twin/ppo.py`, as `scripts/train.py --engine=jax`) with the
  same preset's network and PPO settings, fast and paper presets, with ratios.

Usage: python scripts/benchmark_twin.py [--steps 2000] [--games 1,64,512] [--no-lua]
       python scripts/benchmark_twin.py --rows=train [--train-presets=fast]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.twin import TwinEnv, render


@dataclasses.dataclass
class Row:
    name: str
    game_steps_per_s: float
    note: str = ""


def lua_env_row(substrate_name: str, steps: int, seed: int) -> Row:
    """The Lua substrate, one game, uniformly random actions, resets included."""
    from sed_meltingpot.game import substrate

    env = substrate.build(substrate_name, seed=seed)
    try:
        n = len(env.action_spec())
        actions = np.random.default_rng(seed).integers(0, 8, size=(steps, n)).tolist()
        env.reset()
        start = time.perf_counter()
        timestep = env.reset()
        for row in actions:
            if timestep.last():
                timestep = env.reset()
            timestep = env.step(row)
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    return Row(f"Lua substrate ({substrate_name}), 1 game", steps / elapsed)


OBSERVATIONS = ("none", "tiles", "pixels")  # what an env row renders each step


def make_twin_rollout(env: TwinEnv, num_games: int, steps_per_call: int, tiles: bool = False,
                      observe: str | None = None):
    """A jitted function running `steps_per_call` steps of `num_games` games; `observe`
    ("none", "tiles" or "pixels"; `tiles=True` is "tiles") also renders every player's
    view each step: 11x11 `tiles` (what the fast preset's players observe) or 88x88 RGB
    `pixels` (the paper preset's), so the row costs what a training rollout's env part
    does."""
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
        start = time.perf_counter()
        self.run = self.lowered.compile()
        self.compile_s = time.perf_counter() - start
        try:
            self.memory = self.run.memory_analysis()
        except Exception:  # noqa: BLE001 - an optional figure some backends lack
            self.memory = None
        return self


def _lower(fn: Any, *args: Any) -> Program:
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    return Program(lowered, args, time.perf_counter() - start)


def twin_rollout_program(env: TwinEnv, num_games: int, steps_per_call: int, seed: int,
                         observe: str = "none") -> Program:
    """`make_twin_rollout` lowered for `num_games` fresh games: run(state, key) ->
    (state, key, checksum)."""
    rollout = make_twin_rollout(env, num_games, steps_per_call, observe=observe)
    key = jax.random.PRNGKey(seed)
    state = jax.vmap(env.reset)(jax.random.split(key, num_games))
    return _lower(rollout, state, key)


def twin_env_row(substrate_name: str, num_games: int, steps: int, seed: int,
                 tiles: bool = False) -> Row:
    env = TwinEnv.create(substrate_name)
    steps_per_call = max(1, min(1000, steps // num_games)) if num_games > 1 else min(1000, steps)
    program = twin_rollout_program(env, num_games, steps_per_call, seed,
                                   "tiles" if tiles else "none").compile()
    state, key, eaten = program.run(*program.args)  # warm-up
    jax.block_until_ready(eaten)
    calls = max(1, steps // (steps_per_call * num_games))
    start = time.perf_counter()
    for _ in range(calls):
        state, key, eaten = program.run(state, key)
    jax.block_until_ready(eaten)
    elapsed = time.perf_counter() - start
    game_steps = calls * steps_per_call * num_games
    label = "twin step + tiles" if tiles else "twin step"
    return Row(f"{label} ({substrate_name}), {num_games} games", game_steps / elapsed,
               f"{steps_per_call} steps per jitted call")


def env_rows(args) -> list[Row]:
    """The env-only row group: Lua (1 game) vs twin (1, 64, 512 games)."""
    rows = []
    if not args.no_lua:
        rows.append(lua_env_row(args.substrate, args.lua_steps, args.seed))
    for tiles in (False, True):
        for games in args.games:
            rows.append(twin_env_row(args.substrate, games, args.steps * max(1, games // 8),
                                     args.seed, tiles=tiles))
    return rows


# ------------------------------------------------------------ training rows
def rllib_training_row(preset_name: str, runners: int, iterations: int, batch: int,
                       seed: int) -> Row:
    """RLlib PPO on the Lua substrate (scripts/train.py's default engine), timed after a
    warm-up iteration; game steps = player_0's agent steps (one per game step)."""
    from sed_meltingpot.core.optional import extra_import

    with extra_import("rllib", "benchmark_twin.py's RLlib rows"):
        import ray
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME

    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig, preset
    from sed_meltingpot.training.rllib_config import build_ppo_config

    per_round = TrainConfig.rollout_fragment_length * max(1, runners)
    batch = per_round * max(1, round(batch / per_round))  # whole fragments of every runner
    train = TrainConfig(num_iterations=iterations + 1, num_env_runners=runners,
                        train_batch_size=batch, seed=seed, **preset(preset_name))
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, runners + 1),
                 include_dashboard=False, log_to_driver=False)
    algo = build_ppo_config(GameConfig(), train, selfishness=(0.5,) * 7).build_algo()

    def game_steps() -> int:
        steps = algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME),
                                  default={})
        return int(steps.get("player_0", 0))

    try:
        algo.train()  # warm-up
        steps0, start = game_steps(), time.perf_counter()
        for _ in range(iterations):
            algo.train()
        elapsed, steps = time.perf_counter() - start, game_steps() - steps0
    finally:
        algo.stop()
    return Row(f"RLlib training, {preset_name} preset, {runners} env runners",
               steps / elapsed, f"{iterations} iterations of {batch} env steps")


def twin_training_program(preset_name: str, num_envs: int, rollout_length: int, seed: int,
                          dtype: str = "float32", principal: str = "learned"
                          ) -> tuple[Any, Program]:
    """(TwinTrainConfig, lowered update) of `scripts/train.py --engine=jax` with the
    preset's network and PPO settings: update(state) -> (state, metrics), one iteration
    (twin/ppo.py: rollout, GAE, PPO epochs in one jitted call)."""
    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig, preset
    from sed_meltingpot.twin import ppo

    config = ppo.TwinTrainConfig(
        game=GameConfig(),
        train=TrainConfig(num_iterations=100, seed=seed, principal=principal,
                          **preset(preset_name)),
        num_envs=num_envs, rollout_length=rollout_length, dtype=dtype)
    fns = ppo.make_functions(config)
    state = jax.jit(fns.init)(jax.random.PRNGKey(seed),
                              jnp.full(config.game.num_players, 0.5, jnp.float32))
    return config, _lower(fns.update, state)


def twin_training_row(preset_name: str, num_envs: int, rollout_length: int, iterations: int,
                      seed: int, dtype: str = "float32") -> Row:
    """The twin's training iteration, timed after compilation and a warm-up iteration."""
    from sed_meltingpot.twin.trainer import enable_compilation_cache

    enable_compilation_cache()  # a rerun skips the compile (not part of the timing)
    config, program = twin_training_program(preset_name, num_envs, rollout_length, seed, dtype)
    program.compile()
    state, metrics = program.run(*program.args)  # warm-up
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(iterations):
        state, metrics = program.run(state)
        jax.block_until_ready(metrics)  # like the trainer, which logs every iteration
    elapsed = time.perf_counter() - start
    steps = iterations * config.game_steps_per_iteration
    return Row(f"twin training, {preset_name} preset ({config.obs_mode})", steps / elapsed,
               f"{num_envs} games x {rollout_length} steps, {iterations} iterations; "
               f"compile {program.lower_s + program.compile_s:.0f}s")


def training_rows(args) -> list[Row]:
    """The twin's training (measured first) and RLlib (`--rllib-runners` env runners) with
    the same preset, fast then paper; in the table each twin row follows its RLlib row and
    the ratio column divides it by that row."""
    rows = []
    for name in args.train_presets:
        games, length = (args.fast_games, args.fast_rollout) if name == "fast" else (
            args.paper_games, args.paper_rollout)
        twin = twin_training_row(name, games, length, args.train_iterations, args.seed,
                                 args.dtype)
        print(f"{twin.name}: {twin.game_steps_per_s:.1f} game steps/s ({twin.note})",
              flush=True)
        if not args.no_lua:
            try:
                rllib = rllib_training_row(name, args.rllib_runners, args.rllib_iterations,
                                           args.rllib_batch, args.seed)
            except Exception as e:  # e.g. Ray failing to start on an overloaded machine
                rllib = Row(f"RLlib training, {name} preset, {args.rllib_runners} env runners",
                            float("nan"), f"failed: {type(e).__name__}: {str(e)[:80]}")
            print(f"{rllib.name}: {rllib.game_steps_per_s:.1f} game steps/s", flush=True)
            rows.append(rllib)
        rows.append(twin)
    return rows


def print_pairs(rows: list[Row]) -> None:
    """Training rows: each twin row against the RLlib row before it (same preset)."""
    print(f"{'row':<52} {'game steps/s':>14} {'x RLlib':>8}  note")
    base = None
    for row in rows:
        if row.name.startswith("RLlib"):
            base = row.game_steps_per_s
        ratio = f"{row.game_steps_per_s / base:8.1f}" if base and base == base else f"{'':>8}"
        print(f"{row.name:<52} {row.game_steps_per_s:>14,.1f} {ratio}  {row.note}")


def print_table(rows: list[Row]) -> None:
    base = rows[0].game_steps_per_s if rows else 1.0
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"jax {jax.__version__}")
    print(f"{'row':<52} {'game steps/s':>14} {'x first row':>12}  note")
    for row in rows:
        print(f"{row.name:<52} {row.game_steps_per_s:>14,.0f} "
              f"{row.game_steps_per_s / base:>12.1f}  {row.note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked (argparse exits with a one-line usage error on a bad one)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--substrate", default="apple_picking",
                        choices=("apple_picking", "apple_picking__large"))
    parser.add_argument("--steps", type=int, default=4000,
                        help="game steps per twin row (times games/8 for big batches)")
    parser.add_argument("--lua-steps", type=int, default=1000, help="steps of the Lua row")
    parser.add_argument("--games", default="1,64,512",
                        help="comma-separated batch sizes of the twin rows")
    parser.add_argument("--no-lua", action="store_true", help="skip the Lua row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default="env",
                        help="row groups, comma-separated: env, train (default env)")
    parser.add_argument("--train-presets", default="fast,paper",
                        help="presets of the training rows")
    parser.add_argument("--rllib-runners", type=int, default=2)
    parser.add_argument("--rllib-iterations", type=int, default=2)
    parser.add_argument("--rllib-batch", type=int, default=1000,
                        help="env steps per RLlib iteration (whole fragments)")
    parser.add_argument("--train-iterations", type=int, default=3,
                        help="timed iterations of each twin training row")
    parser.add_argument("--fast-games", type=int, default=16)
    parser.add_argument("--fast-rollout", type=int, default=200)
    parser.add_argument("--paper-games", type=int, default=4)
    parser.add_argument("--paper-rollout", type=int, default=100)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args(argv)
    args.groups = args.rows.split(",")
    if set(args.groups) - {"env", "train"}:
        parser.error(f"--rows={args.rows!r}: groups are env and train")
    args.train_presets = args.train_presets.split(",")
    if set(args.train_presets) - {"fast", "paper"}:
        parser.error(f"--train-presets={args.train_presets}: presets are fast and paper")
    try:
        args.games = [int(g) for g in args.games.split(",")]
    except ValueError:
        parser.error(f"--games={args.games!r} must be comma-separated positive integers")
    if any(g < 1 for g in args.games):
        parser.error(f"--games={args.games} must all be >= 1")
    return args


def main() -> None:
    args = parse_args()
    groups = args.groups
    if "env" in groups:
        print_table(env_rows(args))
    if "train" in groups:
        rows = training_rows(args)
        print(f"\ndevice: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
              f"{os.cpu_count()} CPU cores")
        print_pairs(rows)


if __name__ == "__main__":
    main()
