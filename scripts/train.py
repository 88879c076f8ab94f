"""Train the players and the principal with RLlib multi-agent PPO, or with the
jitted PPO on the JAX twin (--engine=jax; sed_meltingpot/training/jax/trainer.py).

Examples:
  python scripts/train.py --engine=jax --preset=quickstart --output_dir=outputs/quickstart
  python scripts/train.py --preset=fast --num_iterations=5 --output_dir=outputs/quick
  python scripts/train.py --engine=jax --preset=fast --num_iterations=50 --output_dir=outputs/jax
  python scripts/train.py --num_iterations=2000 --num_env_runners=8 --num_gpus=1
  python scripts/train.py --restore=outputs/quick --num_iterations=10 --output_dir=outputs/quick
  python scripts/train.py --flagfile=my_run.flags

Every default is the paper's (sed_meltingpot.game.config.GameConfig and
sed_meltingpot.runs.train_config.TrainConfig), or the --preset's; flags only
override them. The run ends by writing <output_dir>/learning_curve.png (apples per
episode, the principal's objective and its tax rates over training; for --num_seeds
> 1 one per seed folder) and printing its path after the checkpoint's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator

from absl import app, flags, logging

from sed_meltingpot import cli
from sed_meltingpot.design import two_timescale
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs import quiet
from sed_meltingpot.runs.train_config import (
    PRESETS,
    TrainConfig,
    preset,
    preset_game,
    whole_fragment_batch,
)
from sed_meltingpot.training.jax.ppo import TwinTrainConfig
from sed_meltingpot.training.jax.recipe import PrincipalRecipe

GAME = GameConfig()
TRAIN = TrainConfig()
LEARNING_CURVE_FILE = "learning_curve.png"

flags.DEFINE_string("output_dir", "outputs/run", "Where logs and checkpoints go.")
flags.DEFINE_enum("preset", "paper", PRESETS,
                  "paper: the paper's settings; fast: 1 pixel per tile, small networks; "
                  "quickstart: fast with 1 frame on a small game (4 players, 200-step "
                  "episodes, tax period 50) in which the players learn within minutes on a "
                  "CPU with --engine=jax. Flags given override the preset's values.")
flags.DEFINE_enum("engine", "rllib", ["rllib", "jax"],
                  "rllib: RLlib PPO on the Lua substrate; jax: jitted PPO on the JAX twin "
                  "(needs only JAX, flax, optax; runs on a GPU if JAX has one).")
# The hyperparameters: one flag per `hyperparameter` field of the configs (help,
# bounds and defaults declared on the field; sed_meltingpot/core/hyperparameters.py).
GAME_FLAGS = cli.define_config_flags(GameConfig)
TRAIN_FLAGS = cli.define_config_flags(TrainConfig)
TWIN_FLAGS = cli.define_config_flags(TwinTrainConfig)
RECIPE_FLAGS = cli.define_config_flags(PrincipalRecipe)  # the jax engine's principal recipe
# The two-timescale principals' settings (--principal=ucb|thompson|egreedy, jax engine).
DESIGNER_FLAGS = cli.define_config_flags(two_timescale.TwoTimescaleConfig)
flags.DEFINE_bool("continual", False,
                  "Continual (online) rounds: play several voting rounds per episode without "
                  "resetting the world (2 rounds unless --rounds_per_episode says more).")
flags.DEFINE_integer("num_seeds", 1, "jax engine: seeds --seed, --seed+1, ... trained "
                     "together under jax.vmap, each in <output_dir>/seed_<seed>.",
                     lower_bound=1)
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
flags.DEFINE_bool("dry_run", False,
                  "Check every flag, the output folder and --restore, print the settings, and "
                  "exit without starting Ray or training.")

FLAGS = flags.FLAGS
# Flags that mean something to one engine only; setting them for the other is an error.
RLLIB_ONLY_FLAGS = ("num_env_runners", "num_envs_per_env_runner", "num_gpus", "ray_address",
                    "train_batch_size")
JAX_ONLY_FLAGS = ("num_envs", "num_seeds", "dtype", "num_minibatches", *RECIPE_FLAGS,
                  *DESIGNER_FLAGS)

cli.register_game_validators()
flags.register_validator("pixels_per_tile", lambda v: v is None or v in (1, 2, 4, 8),
                         message="--pixels_per_tile must be 1, 2, 4 or 8")
flags.register_validator("dtype", lambda v: v in ("float32", "bfloat16"),
                         message="--dtype must be float32 or bfloat16")


cli.register_principal_validator("principal", agent_word="learned",
                                 also=two_timescale.ALGORITHMS)
cli.require_finite_floats()  # --lr=inf and the like: one line, before any work


def _rounds_per_episode(rounds: int, continual: bool) -> int:
    """--continual alone plays 2 rounds; with --rounds_per_episode, that many."""
    return 2 if continual and rounds == 1 else rounds


@flags.multi_flags_validator(["episode_length", "tax_period", "rounds_per_episode", "continual"],
                             message="--episode_length / --rounds_per_episode must be a "
                             "multiple of --tax_period")
def _check_periods(values: dict) -> bool:
    rounds = _rounds_per_episode(values["rounds_per_episode"], values["continual"])
    if values["episode_length"] % rounds:
        return False
    return (values["episode_length"] // rounds) % values["tax_period"] == 0


def main(argv: list[str]) -> None:
    del argv
    # Python logging back to WARNING (unless --verbosity); Melting Pot is imported
    # quietly below, and only for --engine=rllib (the jax engine never loads it).
    cli.quiet_start(FLAGS, lua=False)
    from sed_meltingpot.runs.runlog import exit_code

    wrong = [name for name in (RLLIB_ONLY_FLAGS if FLAGS.engine == "jax" else JAX_ONLY_FLAGS)
             if FLAGS[name].present]
    if wrong:
        raise app.UsageError(
            f"--{', --'.join(wrong)} mean(s) nothing with --engine={FLAGS.engine}; "
            + ("the jax engine plays --num_envs games on one device (an iteration is "
               "--num_envs x --rollout_fragment_length game steps)" if FLAGS.engine == "jax"
               else "--num_envs/--num_seeds/--dtype/--num_minibatches and the principal "
               "recipe's flags (sed_meltingpot/training/jax/recipe.py) are for "
               "--engine=jax"))

    two_timescale_principal = FLAGS.principal in two_timescale.ALGORITHMS
    if two_timescale_principal and FLAGS.engine != "jax":
        raise app.UsageError(f"--principal={FLAGS.principal} trains only with --engine=jax "
                             "(a two-timescale principal sets the jax trainer's rates)")
    stray = [name for name in DESIGNER_FLAGS if FLAGS[name].present]
    if stray and not two_timescale_principal:
        raise app.UsageError(f"--{', --'.join(stray)} mean(s) nothing without a two-timescale "
                             f"principal (--principal={'|'.join(two_timescale.ALGORITHMS)})")

    # The preset's values, then the flags given (a flag left at its default keeps
    # the preset's value).
    game = cli.replace_from_typed_flags(
        dataclasses.replace(GAME, **preset_game(FLAGS.preset)), FLAGS, GAME_FLAGS)
    game = dataclasses.replace(game, rounds_per_episode=_rounds_per_episode(
        game.rounds_per_episode, FLAGS.continual))
    train_config = cli.replace_from_typed_flags(
        dataclasses.replace(TRAIN, **preset(FLAGS.preset)), FLAGS, TRAIN_FLAGS)
    if two_timescale_principal:  # the compiled principal plays the rates it is given
        train_config = dataclasses.replace(train_config, principal="none")
    if FLAGS.engine == "jax":
        sys.exit(_main_jax(game, train_config, exit_code))
    # Melting Pot loads TensorFlow, whose C++ start-up lines are left out (runs/quiet.py).
    quiet.import_quietly("meltingpot")
    from sed_meltingpot.game.sed_game import substrate_config
    from sed_meltingpot.training.rllib.trainer import plan_run, train

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
        plan = plan_run(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                        overwrite=FLAGS.overwrite)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.dry_run:
        for note in plan.notes:
            print(note)  # incomplete checkpoints skipped
        print(f"dry run: settings valid; would train into {FLAGS.output_dir!r}\n"
              f"game: {game}\ntrain: {train_config}")
        _print_in_use([FLAGS.output_dir])
        return
    with _one_line_setup_errors(), _one_line_save_errors(), _locked([FLAGS.output_dir]), \
            _exit_if_diverged():
        summary = train(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                        ray_address=FLAGS.ray_address,
                        checkpoint_every=FLAGS.checkpoint_every, overwrite=FLAGS.overwrite)
        _write_learning_curves([FLAGS.output_dir])
    # Stopped by SIGTERM/SIGINT after saving a checkpoint: 128 + signal (143/130).
    sys.exit(exit_code(summary.get("stopped_by_signal")))


def _main_jax(game: GameConfig, train_config: TrainConfig, exit_code) -> int:
    """--engine=jax: imports only JAX/flax/optax (no Ray, Melting Pot, TensorFlow)."""
    from sed_meltingpot.training.jax import trainer as twin_trainer

    twin_trainer.enable_compilation_cache()
    kwargs = {name: getattr(FLAGS, name) for name in (*TWIN_FLAGS, "num_seeds")}
    kwargs["recipe"] = cli.replace_from_flags(PrincipalRecipe(), FLAGS, RECIPE_FLAGS)
    try:
        plan = twin_trainer.plan_runs(game, train_config, FLAGS.output_dir, restore=FLAGS.restore,
                                      overwrite=FLAGS.overwrite, **kwargs)
        designer = _designer(game, plan.seeds)
        if designer is not None:
            twin_trainer.check_designer(plan.config, FLAGS.restore)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if FLAGS.dry_run:
        for note in dict.fromkeys(n for p in plan.plans for n in p.notes):
            print(note)  # incomplete checkpoints skipped
        print(f"dry run: settings valid; would train into {plan.dirs}\ngame: {game}\n"
              f"train: {plan.recorded[0]}\ntwin: {kwargs}, "
              f"{plan.config.game_steps_per_iteration} game steps per iteration"
              + (f"\ndesigner: {designer.describe()}" if designer is not None else ""))
        _print_in_use(plan.dirs)
        return 0
    with _one_line_setup_errors(), _one_line_save_errors(), _locked(plan.dirs), \
            _exit_if_diverged():
        summaries = twin_trainer.train(game, train_config, FLAGS.output_dir,
                                       restore=FLAGS.restore,
                                       checkpoint_every=FLAGS.checkpoint_every,
                                       overwrite=FLAGS.overwrite, designer=designer,
                                       **kwargs)
        _write_learning_curves(plan.dirs)
    first = summaries if isinstance(summaries, dict) else summaries[0]
    return exit_code(first.get("stopped_by_signal"))


def _designer(game: GameConfig, seeds: list[int]) -> two_timescale.TwoTimescale | None:
    """The two-timescale principal of --principal=ucb|thompson|egreedy (None otherwise);
    ValueError naming the flag for bad settings or a voted objective."""
    if FLAGS.principal not in two_timescale.ALGORITHMS:
        return None
    from sed_meltingpot.core import voting

    config = cli.replace_from_flags(two_timescale.TwoTimescaleConfig(), FLAGS, DESIGNER_FLAGS)
    return two_timescale.TwoTimescale(FLAGS.principal, config, seeds, game.num_brackets,
                                      voting.fixed_eta(game.voting_rule))


@contextlib.contextmanager
def _one_line_setup_errors() -> Iterator[None]:
    """The trainer's own checks, repeated once it holds the run folder's lock (another
    run may have taken or filled the folder since the plan above): a one-line usage
    error, not a traceback."""
    from sed_meltingpot.runs.run_lock import FolderInUseError
    from sed_meltingpot.runs.run_plan import RunSetupError

    try:
        yield
    except (FolderInUseError, RunSetupError) as e:
        raise app.UsageError(str(e)) from e


@contextlib.contextmanager
def _one_line_save_errors() -> Iterator[None]:
    """A checkpoint that cannot be saved (a full disk): the trainer's one line
    (runs/checkpoint_files.py names the newest complete checkpoint) and exit status 1,
    after training has started, so no usage text."""
    from sed_meltingpot.runs.checkpoint_files import CheckpointSaveError

    try:
        yield
    except CheckpointSaveError as e:
        raise SystemExit(f"error: {e}") from None


@contextlib.contextmanager
def _exit_if_diverged() -> Iterator[None]:
    """A run that diverged (runlog.TrainingDiverged: a NaN or infinite loss or
    parameter) prints its one line, which names the iteration and the last finite
    checkpoint, and exits with runlog.DIVERGED_EXIT_CODE: no learning curve, no summary."""
    from sed_meltingpot.runs.runlog import DIVERGED_EXIT_CODE, TrainingDiverged

    try:
        yield
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(DIVERGED_EXIT_CODE)


def _locked(run_dirs: list[str]) -> contextlib.AbstractContextManager:
    """The run folders' locks (runs/run_lock.py; the trainer takes them again, which
    within one process is a no-op) from before training until the learning curve is
    written: a second run into one of them is refused in one line."""
    from sed_meltingpot.runs import run_lock

    return run_lock.hold(run_dirs)


def _print_in_use(run_dirs: list[str]) -> None:
    """The dry run takes no lock (it writes nothing) but says if a run holds one now."""
    from sed_meltingpot.runs import run_lock

    run_lock.report_in_use(run_dirs)


def _write_learning_curves(run_dirs: list[str]) -> list[str]:
    """Writes <run>/learning_curve.png for each run folder (analysis/plotting.py)
    and prints each path, the run's last line (after the summary's checkpoint)."""
    from sed_meltingpot.analysis import plotting

    paths = []
    for run_dir in run_dirs:
        path = os.path.join(run_dir, LEARNING_CURVE_FILE)
        try:
            records = plotting.load_progress(run_dir)
        except (FileNotFoundError, ValueError) as e:  # stopped before an iteration ended
            print(f"learning curve: not written ({e})")
            continue
        label = os.path.basename(os.path.normpath(run_dir))
        paths.append(plotting.plot_learning_curve([(label, records)], path))
        print(f"learning curve: {path}")
    return paths


if __name__ == "__main__":
    app.run(main)
