"""Train the players and the principal with RLlib multi-agent PPO, or with the
jitted PPO on the JAX twin (--engine=jax; sed_meltingpot/twin/trainer.py).

Examples:
  python scripts/train.py --preset=fast --num_iterations=5 --output_dir=outputs/quick
  python scripts/train.py --engine=jax --preset=fast --num_iterations=50 --output_dir=outputs/jax
  python scripts/train.py --num_iterations=2000 --num_env_runners=8 --num_gpus=1
  python scripts/train.py --restore=outputs/quick --num_iterations=10 --output_dir=outputs/quick
  python scripts/train.py --flagfile=my_run.flags

Every default is the paper's (sed_meltingpot.config.GameConfig and
sed_meltingpot.training.config.TrainConfig); flags only override them.
"""

from __future__ import annotations

import dataclasses
import sys

from absl import app, flags, logging

from sed_meltingpot import cli, voting, welfare
from sed_meltingpot.config import GameConfig
from sed_meltingpot.training.config import PRESETS, TrainConfig, preset, whole_fragment_batch

GAME = GameConfig()
TRAIN = TrainConfig()

flags.DEFINE_string("output_dir", "outputs/run", "Where logs and checkpoints go.")
flags.DEFINE_enum("preset", "paper", PRESETS,
                  "paper: the paper's settings; fast: 1 pixel per tile, small networks.")
flags.DEFINE_integer("num_iterations", TRAIN.num_iterations, "Training iterations.",
                     lower_bound=1)
flags.DEFINE_integer("seed", TRAIN.seed, "Run seed (types, envs, networks).", lower_bound=0)
flags.DEFINE_integer("num_players", GAME.num_players, "Number of players.", lower_bound=1)
flags.DEFINE_integer("episode_length", GAME.episode_length, "Steps per episode.", lower_bound=1)
flags.DEFINE_integer("tax_period", GAME.tax_period, "Steps per tax period.", lower_bound=1)
flags.DEFINE_integer("rounds_per_episode", GAME.rounds_per_episode,
                     "Voting rounds per episode; >1 plays continual rounds without resetting "
                     "the world between them.", lower_bound=1)
flags.DEFINE_bool("continual", False,
                  "Continual (online) rounds: play several voting rounds per episode without "
                  "resetting the world (2 rounds unless --rounds_per_episode says more).")
flags.DEFINE_string("map", None, "Substrate map: default or large.")
flags.DEFINE_integer("rollout_fragment_length", TRAIN.rollout_fragment_length,
                     "Env steps per sampled fragment.", lower_bound=1)
flags.DEFINE_integer("train_batch_size", TRAIN.train_batch_size,
                     "Env steps per training iteration.", lower_bound=1)
flags.DEFINE_integer("minibatch_size", None, "Players' PPO minibatch (default 128).",
                     lower_bound=1)
flags.DEFINE_integer("principal_minibatch_size", TRAIN.principal_minibatch_size,
                     "Principal's PPO minibatch (its samples are used num_epochs times).",
                     lower_bound=1)
flags.DEFINE_integer("num_epochs", None, "PPO epochs per iteration (default 4).", lower_bound=1)
flags.DEFINE_float("lr", TRAIN.lr, "Learning rate (annealed linearly to 0).", lower_bound=0.0)
flags.DEFINE_integer("frame_stack", TRAIN.frame_stack, "Frames stacked per player.",
                     lower_bound=1)
flags.DEFINE_integer("pixels_per_tile", None, "1, 2, 4 or 8 (default: preset's).")
flags.DEFINE_integer("num_env_runners", TRAIN.num_env_runners,
                     "Ray actors that sample (0 = sample in the driver).", lower_bound=0)
flags.DEFINE_integer("num_envs_per_env_runner", TRAIN.num_envs_per_env_runner,
                     "Games per env runner.", lower_bound=1)
flags.DEFINE_integer("num_gpus", TRAIN.num_gpus, "GPUs for the learner (0 or 1).",
                     lower_bound=0, upper_bound=1)
flags.DEFINE_integer("checkpoint_every", 10, "Checkpoint every N iterations (0 = only at the end).",
                     lower_bound=0)
flags.DEFINE_string("restore", None, "Resume from a checkpoint or a run directory (its log "
                    "continues from the checkpoint's iteration).")
flags.DEFINE_bool("overwrite", False,
                  "Replace the run already in --output_dir (its log, checkpoints, summary); "
                  "without it a fresh run refuses a folder that holds one.")
flags.DEFINE_string("ray_address", None,
                    "Address of an existing Ray cluster (e.g. 127.0.0.1:6379); default starts "
                    "a local one.")
flags.DEFINE_string("voting_rule", GAME.voting_rule,
                    f"Social choice rule: one of {sorted(voting.VOTING_RULES)}, or "
                    "fixed:<eta> (eta in [0, 1], the players' types unchanged).")
flags.DEFINE_string("welfare", GAME.welfare,
                    f"Principal's objective family: one of {sorted(welfare.WELFARE_FUNCTIONS)}.")
flags.DEFINE_string("principal", TRAIN.principal,
                    "learned | none (no tax) | fixed:r0,r1,r2 | random")
flags.DEFINE_bool("dry_run", False,
                  "Check every flag, the output folder and --restore, print the settings, and "
                  "exit without starting Ray or training.")
flags.DEFINE_bool("tax_cap_anneal", TRAIN.tax_cap_anneal,
                  "Anneal the tax cap from 0.1 to 1 over the first 2% of training.")

flags.DEFINE_enum("engine", "rllib", ["rllib", "jax"],
                  "rllib: RLlib PPO on the Lua substrate; jax: jitted PPO on the JAX twin "
                  "(needs only JAX, flax, optax; runs on a GPU if JAX has one).")
flags.DEFINE_integer("num_envs", None, "jax engine: games played in parallel (default 16); "
                     "an iteration is --num_envs x --rollout_fragment_length game steps.",
                     lower_bound=1)
flags.DEFINE_integer("num_seeds", None, "jax engine: seeds --seed, --seed+1, ... trained "
                     "together under jax.vmap, each in <output_dir>/seed_<seed> (default 1).",
                     lower_bound=1)
flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"],
                  "jax engine: the networks' compute dtype (default float32; bfloat16 for GPUs).")

FLAGS = flags.FLAGS
# Flags that mean something to one engine only; setting them for the other is an error.
RLLIB_ONLY_FLAGS = ("num_env_runners", "num_envs_per_env_runner", "num_gpus", "ray_address",
                    "train_batch_size")
JAX_ONLY_FLAGS = ("num_envs", "num_seeds", "dtype")

cli.register_voting_rule_validator("voting_rule")
flags.register_validator("welfare", lambda v: v in welfare.WELFARE_FUNCTIONS,
                         message=f"--welfare must be one of {sorted(welfare.WELFARE_FUNCTIONS)}")
flags.register_validator("pixels_per_tile", lambda v: v is None or v in (1, 2, 4, 8),
                         message="--pixels_per_tile must be 1, 2, 4 or 8")
flags.register_validator("map", lambda v: v in (None, "default", "large"),
                         message="--map must be 'default' or 'large'")


cli.register_principal_validator("principal", agent_word="learned")


@flags.multi_flags_validator(["episode_length", "tax_period", "rounds_per_episode", "continual"],
                             message="--episode_length / --rounds_per_episode must be a "
                             "multiple of --tax_period")
def _check_periods(values: dict) -> bool:
    rounds = values["rounds_per_episode"]
    if values["continual"] and rounds == 1:
        rounds = 2
    if values["episode_length"] % rounds:
        return False
    return (values["episode_length"] // rounds) % values["tax_period"] == 0


def main(argv: list[str]) -> None:
    del argv
    from sed_meltingpot.training.runlog import exit_code

    wrong = [name for name in (RLLIB_ONLY_FLAGS if FLAGS.engine == "jax" else JAX_ONLY_FLAGS)
             if FLAGS[name].present]
    if wrong:
        raise app.UsageError(
            f"--{', --'.join(wrong)} mean(s) nothing with --engine={FLAGS.engine}; "
            + ("the jax engine plays --num_envs games on one device (an iteration is "
               "--num_envs x --rollout_fragment_length game steps)" if FLAGS.engine == "jax"
               else "--num_envs/--num_seeds/--dtype are for --engine=jax"))

    rounds = FLAGS.rounds_per_episode
    if FLAGS.continual and rounds == 1:
        rounds = 2
    game = dataclasses.replace(
        GAME, num_players=FLAGS.num_players, episode_length=FLAGS.episode_length,
        tax_period=FLAGS.tax_period, rounds_per_episode=rounds, voting_rule=FLAGS.voting_rule,
        welfare=FLAGS.welfare, map=FLAGS.map)
    overrides = dict(preset(FLAGS.preset))
    for name in ("minibatch_size", "num_epochs", "pixels_per_tile"):
        if getattr(FLAGS, name) is not None:
            overrides[name] = getattr(FLAGS, name)
    train_config = dataclasses.replace(
        TRAIN, num_iterations=FLAGS.num_iterations, seed=FLAGS.seed, principal=FLAGS.principal,
        rollout_fragment_length=FLAGS.rollout_fragment_length,
        train_batch_size=FLAGS.train_batch_size,
        principal_minibatch_size=FLAGS.principal_minibatch_size, lr=FLAGS.lr,
        frame_stack=FLAGS.frame_stack, num_env_runners=FLAGS.num_env_runners,
        num_envs_per_env_runner=FLAGS.num_envs_per_env_runner, num_gpus=FLAGS.num_gpus,
        tax_cap_anneal=FLAGS.tax_cap_anneal, **overrides)
    if FLAGS.engine == "jax":
        sys.exit(_main_jax(game, train_config, exit_code))
    from sed_meltingpot.game import substrate_config  # imports Melting Pot
    from sed_meltingpot.training.trainer import plan_run, train

    try:
        game.validate()
        substrate_config(game)  # e.g. more players than the map holds, before Ray starts
        train_config.validate()
        train_config, batch_note = whole_fragment_batch(train_config)
        if batch_note:
            logging.warning(batch_note)
        if train_config.minibatch_size > train_config.train_batch_size:
            raise ValueError(f"--minibatch_size={train_config.minibatch_size} must be <= "
                             f"--train_batch_size={train_config.train_batch_size}")
        # The output folder and --restore, before Ray starts (RunSetupError).
        plan_run(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                 overwrite=FLAGS.overwrite)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.dry_run:
        print(f"dry run: settings valid; would train into {FLAGS.output_dir!r}\n"
              f"game: {game}\ntrain: {train_config}")
        return
    summary = train(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                    ray_address=FLAGS.ray_address, checkpoint_every=FLAGS.checkpoint_every,
                    overwrite=FLAGS.overwrite)
    # Stopped by SIGTERM/SIGINT after saving a checkpoint: 128 + signal (143/130).
    sys.exit(exit_code(summary.get("stopped_by_signal")))


def _main_jax(game: GameConfig, train_config: TrainConfig, exit_code) -> int:
    """--engine=jax: imports only JAX/flax/optax (no Ray, Melting Pot, TensorFlow)."""
    from sed_meltingpot.twin import trainer as twin_trainer

    twin_trainer.enable_compilation_cache()
    kwargs = {"num_envs": FLAGS.num_envs or 16, "num_seeds": FLAGS.num_seeds or 1,
              "dtype": FLAGS.dtype or "float32"}
    try:
        plan = twin_trainer.plan_runs(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                                      overwrite=FLAGS.overwrite, **kwargs)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.dry_run:
        print(f"dry run: settings valid; would train into {plan.dirs}\ngame: {game}\n"
              f"train: {plan.recorded[0]}\ntwin: {kwargs}, "
              f"{plan.config.game_steps_per_iteration} game steps per iteration")
        return 0
    summaries = twin_trainer.train(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                                   checkpoint_every=FLAGS.checkpoint_every,
                                   overwrite=FLAGS.overwrite, **kwargs)
    first = summaries if isinstance(summaries, dict) else summaries[0]
    return exit_code(first.get("stopped_by_signal"))


if __name__ == "__main__":
    app.run(main)
