"""Game steps per second of the Lua substrate against the JAX twin, one table
(`scripts/benchmark_twin.py`, whose docstring lists the rows).

Env rows: the Lua substrate (one game) and the twin's `step` alone at several batch
sizes. Training rows: RLlib PPO on the Lua substrate against the jax engine's jitted
PPO with the same preset's network and PPO settings. Every row is measured in the
same run on the same machine, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import numpy as np

from sed_meltingpot.perf.programs import twin_rollout_program, twin_training_program
from sed_meltingpot.twin import TwinEnv


@dataclasses.dataclass
class Row:
    """One table row: what was timed, its rate and how it was run."""

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


def twin_env_row(substrate_name: str, num_games: int, steps: int, seed: int,
                 tiles: bool = False) -> Row:
    """The twin's `step` alone (`perf.programs.make_twin_rollout`), `num_games` games,
    about `steps` game steps after a warm-up call; `tiles` also renders every view."""
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


def env_rows(args: argparse.Namespace) -> list[Row]:
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
    from sed_meltingpot.training.rllib.rllib_config import build_ppo_config

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


def twin_training_row(preset_name: str, num_envs: int, rollout_length: int, iterations: int,
                      seed: int, dtype: str = "float32") -> Row:
    """The twin's training iteration, timed after compilation and a warm-up iteration."""
    from sed_meltingpot.training.jax.trainer import enable_compilation_cache

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


def training_rows(args: argparse.Namespace) -> list[Row]:
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
    """Env rows: each against the first row (the Lua substrate unless --no-lua)."""
    base = rows[0].game_steps_per_s if rows else 1.0
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"jax {jax.__version__}")
    print(f"{'row':<52} {'game steps/s':>14} {'x first row':>12}  note")
    for row in rows:
        print(f"{row.name:<52} {row.game_steps_per_s:>14,.0f} "
              f"{row.game_steps_per_s / base:>12.1f}  {row.note}")


def report(args: argparse.Namespace) -> None:
    """The row groups of `args.groups` (env, train), measured and printed in turn
    (`scripts/benchmark_twin.py`'s flags)."""
    groups = args.groups
    if "env" in groups:
        print_table(env_rows(args))
    if "train" in groups:
        rows = training_rows(args)
        print(f"\ndevice: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
              f"{os.cpu_count()} CPU cores")
        print_pairs(rows)
