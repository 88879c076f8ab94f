"""Where one jax-engine training iteration spends its time, as one table.

Examples:
  python scripts/profile_iteration.py                      # fast preset, the paper's map
  python scripts/profile_iteration.py --num_minibatches=4  # the players' plan by count
  python scripts/profile_iteration.py --num_envs=2 --rollout_fragment_length=50  # quick

Compiles each stage of the update (`ppo.IterationStages`: rollout = env steps and policy
forwards, GAE and batches, the players' PPO epochs, the learned principal's) as a
program of its own, times each (median of --repeats calls after a warm-up) on the
inputs the update gives it, and prints ms and share per stage, the players' update per
epoch and per minibatch step, and the whole update as one program for comparison. The
compile is outside every row. The compiled programs are cached on disk as train.py's are
(a rerun skips the compile). The logic is in sed_meltingpot/perf/iteration_profile.py.
"""

from __future__ import annotations

import dataclasses

from absl import app, flags

from sed_meltingpot import cli
from sed_meltingpot.game.config import MAPS, GameConfig
from sed_meltingpot.runs.train_config import PRESETS, TrainConfig, preset, preset_game

flags.DEFINE_enum("preset", "fast", PRESETS, "The training preset (train.py's --preset).")
flags.DEFINE_enum("map", "default", list(MAPS), "The map; default: the paper's.")
flags.DEFINE_string("principal", "learned", "learned, none, random or fixed:r0,r1,r2.")
flags.DEFINE_integer("num_envs", 16, "Games played in parallel (train.py's).", lower_bound=1)
flags.DEFINE_integer("rollout_fragment_length", 200, "Game steps per game per iteration, "
                     "a multiple of the tax period.", lower_bound=1)
flags.DEFINE_integer("minibatch_size", None, "The players' minibatch (default: the "
                     "preset's).", lower_bound=1)
flags.DEFINE_integer("num_minibatches", 0, "The players' minibatches per epoch by count "
                     "(0: by --minibatch_size).", lower_bound=0)
flags.DEFINE_integer("repeats", 3, "Timed calls per stage (the median is shown).",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the networks and games.", lower_bound=0)
flags.DEFINE_bool("dry_run", False, "Check the settings and print the plan, then exit "
                  "without compiling.")
cli.require_finite_floats()

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv
    cli.quiet_start(FLAGS, lua=False)
    from sed_meltingpot.training.jax.ppo import TwinTrainConfig

    overrides = {k: v for k, v in (("minibatch_size", FLAGS.minibatch_size),
                                   ("num_minibatches", FLAGS.num_minibatches)) if v is not None}
    game = dataclasses.replace(GameConfig(**preset_game(FLAGS.preset)), map=FLAGS.map)
    train = TrainConfig(**{**preset(FLAGS.preset), **overrides}, principal=FLAGS.principal)
    try:
        config = TwinTrainConfig(game, train, num_envs=FLAGS.num_envs,
                                 rollout_length=FLAGS.rollout_fragment_length).validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    size, count = config.players_minibatch_plan
    print(f"{FLAGS.preset} preset, map {FLAGS.map}, principal {FLAGS.principal}: "
          f"{config.num_envs} games x {config.rollout_length} steps x {game.num_players} "
          f"players = {config.players_rows:,} players' rows per iteration; "
          f"{train.num_epochs} epochs of {count} minibatches of {size} rows")
    if FLAGS.dry_run:
        print("dry run: settings valid; nothing compiled")
        return
    import jax

    from sed_meltingpot.perf.iteration_profile import profile_iteration, table
    from sed_meltingpot.training.jax.trainer import enable_compilation_cache

    enable_compilation_cache()  # train.py's: a rerun loads the programs instead
    result = profile_iteration(config, repeats=FLAGS.repeats, seed=FLAGS.seed)
    print(f"on {jax.devices()[0].platform} ({jax.device_count()} device(s)); compiled (or "
          f"loaded from the cache) in {result.compile_s:.1f} s, outside the table; median "
          f"of {FLAGS.repeats} call(s):")
    print("\n".join(table(result)))


if __name__ == "__main__":
    app.run(main)
