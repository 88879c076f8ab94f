"""End-to-end training throughput against the raw substrate rate, side by side.

For each (preset, number of env runners) it builds the PPO algorithm, runs
warm-up iterations, then times `--iterations` iterations: game steps per
second including learning (one game step = all n players acting once), and
the share of wall time spent in the learner update (timed here by wrapping
`learner_group.update`; the rest is sampling and RLlib overhead). Right
before each configuration, the raw random-action stepping rate of the
`apple_picking` substrate is measured in the same process, and the ratio
of the two is reported: machines are noisy, ratios measured side by side
are what this script compares against the targets.

  python scripts/benchmark_training.py                   # paper + fast, 1 and 2 runners
  python scripts/benchmark_training.py --presets=fast --runners=1,2,4
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags

from sed_meltingpot import cli
from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.game import substrate
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.train_config import PRESETS, TrainConfig, preset
from sed_meltingpot.training.rllib.rllib_config import build_ppo_config

flags.DEFINE_list("presets", ["paper", "fast"], f"Presets to measure ({', '.join(PRESETS)}).")
flags.DEFINE_list("runners", ["1", "2"], "Numbers of env runners to measure.")
flags.DEFINE_integer("iterations", 2, "Timed iterations per configuration.", lower_bound=1)
flags.DEFINE_integer("warmup", 1, "Untimed iterations first.", lower_bound=0)
flags.DEFINE_integer("train_batch_size", 1000,
                     "Env steps per iteration (rounded to whole fragments of every runner).",
                     lower_bound=1)
flags.DEFINE_integer("raw_steps", 2000, "Random-action steps for the raw rate.", lower_bound=1)
flags.DEFINE_integer("num_gpus", 0, "GPUs for the learner.", lower_bound=0, upper_bound=1)
flags.DEFINE_string("output", None, "Optional JSON file for the table.")
FLAGS = flags.FLAGS
flags.register_validator("presets", lambda v: bool(v) and all(p in PRESETS for p in v),
                         message=f"--presets must be a comma list from {list(PRESETS)}")
flags.register_validator("runners", lambda v: bool(v) and all(r.isdigit() for r in v),
                         message="--runners must be a comma list of integers >= 0")
cli.require_finite_floats()

TARGETS = {"paper": 0.015, "fast": 0.10}  # fraction of the raw rate (issue 4)


def raw_rate(steps: int, seed: int = 0) -> float:
    """Random-action game steps per second of the bare substrate (7 players)."""
    env = substrate.build("apple_picking", seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 8, size=(steps, 7))
    env.reset()
    start = time.perf_counter()
    for a in actions:
        if env.step(a).last():
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def measure(preset_name: str, runners: int) -> dict:
    # RLlib needs the batch to be whole fragments from every runner.
    fragment = TrainConfig.rollout_fragment_length
    per_round = fragment * max(1, runners)
    batch = per_round * max(1, round(FLAGS.train_batch_size / per_round))
    train = TrainConfig(num_iterations=FLAGS.warmup + FLAGS.iterations, num_env_runners=runners,
                        train_batch_size=batch, num_gpus=FLAGS.num_gpus,
                        **preset(preset_name))
    algo = build_ppo_config(GameConfig(), train, selfishness=(0.5,) * 7).build_algo()
    learner_group = algo.learner_group
    update = learner_group.update
    learn = {"s": 0.0}

    def timed_update(*args, **kwargs):
        start = time.perf_counter()
        try:
            return update(*args, **kwargs)
        finally:
            learn["s"] += time.perf_counter() - start

    learner_group.update = timed_update
    try:
        for _ in range(FLAGS.warmup):
            algo.train()
        learn["s"] = 0.0
        steps0 = _game_steps(algo)
        start = time.perf_counter()
        for _ in range(FLAGS.iterations):
            algo.train()
        wall = time.perf_counter() - start
        steps = _game_steps(algo) - steps0
    finally:
        algo.stop()
    return {"preset": preset_name, "runners": runners, "game_steps": steps, "wall_s": wall,
            "game_steps_per_s": steps / wall, "learn_share": learn["s"] / wall,
            "sample_share": 1.0 - learn["s"] / wall}


def _game_steps(algo) -> int:
    with extra_import("rllib", "scripts/benchmark_training.py"):
        from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME

    steps = algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={})
    return int(steps.get("player_0", 0))  # every player acts once per game step


def main(argv: list[str]) -> None:
    del argv
    with extra_import("rllib", "scripts/benchmark_training.py"):
        import ray

    if FLAGS.output:  # written after the measurements
        try:
            cli.check_writable("output", FLAGS.output, is_file=True)
        except ValueError as e:
            raise app.UsageError(str(e)) from e
    runner_counts = [int(r) for r in FLAGS.runners]
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, max(runner_counts) + 1),
             num_gpus=FLAGS.num_gpus, include_dashboard=False, log_to_driver=False)
    rows = []
    for name in FLAGS.presets:
        for runners in runner_counts:
            raw = raw_rate(FLAGS.raw_steps)
            row = measure(name, runners)
            row["raw_steps_per_s"] = raw
            row["fraction_of_raw"] = row["game_steps_per_s"] / raw
            rows.append(row)
            print(f"[{name}, {runners} runner(s)] {row['game_steps_per_s']:.1f} game steps/s, "
                  f"raw {raw:.0f}/s", flush=True)
    print(f"\nmachine: {os.cpu_count()} CPU cores, {FLAGS.num_gpus} GPU")
    print(f"{'preset':7} {'runners':>7} {'game st/s':>10} {'raw st/s':>9} {'% of raw':>9} "
          f"{'target':>7} {'learn':>6} {'sample':>7}")
    for r in rows:
        target = TARGETS.get(r["preset"], float("nan"))
        print(f"{r['preset']:7} {r['runners']:7d} {r['game_steps_per_s']:10.1f} "
              f"{r['raw_steps_per_s']:9.0f} {100 * r['fraction_of_raw']:8.2f}% "
              f"{100 * target:6.1f}% {100 * r['learn_share']:5.0f}% "
              f"{100 * r['sample_share']:6.0f}%")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(rows, f, indent=2)
    ray.shutdown()


if __name__ == "__main__":
    app.run(main)
