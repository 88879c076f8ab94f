"""Lever analysis (issue 16): can a tax move the objective against these players?

Examples:
  python scripts/lever_analysis.py --players=random --num_players=4 --episode_length=200 \
      --tax_period=50 --welfare_on=taxed --output_dir=outputs/lever_random
  python scripts/lever_analysis.py --run_dir=outputs/jax_fast --etas=0,1

Plays --num_episodes episodes per eta on the JAX twin with frozen players (a jax-engine
run's trained players, or uniform random actions) while the principal draws independent
uniform random rate levels per bracket each tax period (tax cap 1). Per eta and
bracket it reports the OLS slope of the period's objective change on the period's rate,
with a 95% interval from episode-clustered (CR1) standard errors, and how often the
bracket binds (share of player-periods with apples above its lower threshold); per eta,
the objective per episode and a joint test of all slopes = 0. Writes lever.csv,
lever.json and lever.md to --output_dir. The logic is in sed_meltingpot.analysis.lever and
sed_meltingpot.analysis.lever_play.
"""

from __future__ import annotations

import dataclasses
import math

from absl import app, flags

from sed_meltingpot import cli
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs import run_lock

PLAYERS = ("run", "random")

flags.DEFINE_string("run_dir", None, "A jax-engine training run (its run_config.json and "
                    "newest checkpoint; one seed_<k> folder of a multi-seed run): its "
                    "trained players and game. Game flags override its settings.")
flags.DEFINE_enum("players", None, list(PLAYERS),
                  "run: the --run_dir's trained players (sampling their policy); random: "
                  "uniform random actions (a run-free check). Default: run with --run_dir, "
                  "else random.")
flags.DEFINE_list("etas", ["0", "0.5", "1"], "Objectives W_eta to measure under (each in "
                  "[0, 1]), as fixed:<eta>; the same worlds and rate draws at each.")
flags.DEFINE_integer("num_episodes", 1024, "Episodes per eta (a multiple of --num_games).",
                     lower_bound=2)
flags.DEFINE_integer("num_games", 128, "Games played at once (vmapped); at most "
                     "--num_episodes.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Episode k's world comes from seed + k.", lower_bound=0)
flags.DEFINE_string("output_dir", "outputs/lever", "Where lever.csv, lever.json and "
                    "lever.md go.")
flags.DEFINE_bool("dry_run", False, "Check every flag and load the run, then exit without "
                  "playing.")
GAME_FLAGS = cli.define_config_flags(GameConfig, defaults="none")
cli.register_game_validators()

FLAGS = flags.FLAGS


def _check_etas(values: list[str]) -> bool:
    if not values:
        raise flags.ValidationError("--etas needs at least one eta in [0, 1]")
    for text in values:
        try:
            eta = float(text)
        except ValueError:
            raise flags.ValidationError(f"--etas={','.join(values)}: {text!r} is not a "
                                        "number (each eta must be in [0, 1])") from None
        if not (math.isfinite(eta) and 0.0 <= eta <= 1.0):
            raise flags.ValidationError(f"--etas={','.join(values)}: {text} is outside "
                                        "[0, 1]")
    if len({float(t) for t in values}) < len(values):
        raise flags.ValidationError(f"--etas={','.join(values)}: an eta is repeated")
    return True


flags.register_validator("etas", _check_etas)
flags.register_validator("voting_rule", lambda v: v is None,
                         message="--voting_rule has no effect here: --etas fixes eta")
flags.register_multi_flags_validator(
    ["players", "run_dir"], lambda v: v["players"] != "run" or v["run_dir"],
    message="--players=run needs --run_dir")
cli.require_finite_floats()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from sed_meltingpot.analysis import lever, lever_play
    from sed_meltingpot.twin.sed import SEDTwin

    try:
        cli.check_writable("output_dir", FLAGS.output_dir)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    num_games = min(FLAGS.num_games, FLAGS.num_episodes)
    if FLAGS.num_episodes % num_games:
        raise app.UsageError(f"--num_episodes={FLAGS.num_episodes} must be a multiple of "
                             f"--num_games={num_games}")
    kind = FLAGS.players or ("run" if FLAGS.run_dir else "random")
    players = lever_play.Players()
    game = GameConfig()
    if FLAGS.run_dir:
        try:
            game, trained = lever_play.load_run_players(FLAGS.run_dir)
        except (OSError, ValueError) as e:
            raise app.UsageError(f"--run_dir={FLAGS.run_dir}: {e}") from e
        players = trained if kind == "run" else dataclasses.replace(
            lever_play.Players(), obs_mode=trained.obs_mode, frame_stack=trained.frame_stack)
    if FLAGS.run_dir and FLAGS.num_players is not None and FLAGS.num_players != game.num_players:
        # Its players' types (and network) are the run's: checked before a shape error.
        raise app.UsageError(f"--num_players={FLAGS.num_players}: the run --run_dir="
                             f"{FLAGS.run_dir} was trained with {game.num_players} players "
                             "(leave --num_players out)")
    try:
        game = cli.replace_from_flags(game, FLAGS, GAME_FLAGS).validate()
        sed = SEDTwin(lever_play.lever_game(game), obs_mode=players.obs_mode,
                      frame_stack=players.frame_stack)  # a game the twin cannot play fails here
        lever_play.check_players_fit(sed, players)
    except ValueError as e:
        raise app.UsageError(f"game settings: {e}") from e
    etas = [float(t) for t in FLAGS.etas]
    meta = {"players": players.source if kind == "run" else lever_play.RANDOM,
            "game": (f"{game.num_players} players, {game.episode_length}-step episodes, tax "
                     f"period {game.tax_period}, thresholds {game.thresholds}, "
                     f"{game.num_rate_levels} rate levels, welfare {game.welfare} on "
                     f"{game.welfare_on}"),
            "etas": etas, "num_episodes": FLAGS.num_episodes, "num_games": num_games,
            "seed": FLAGS.seed}
    if FLAGS.dry_run:
        print(f"dry run: settings valid; game: {game}")
        run_lock.report_in_use([FLAGS.output_dir])  # the dry run takes no lock
        return
    try:  # one writer per folder, from before the work until the process ends
        run_lock.hold_until_exit(FLAGS.output_dir)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    print(f"lever analysis: players {meta['players']}; {meta['game']}; "
          f"{FLAGS.num_episodes} episodes per eta (the first call compiles: 10-60 s)",
          flush=True)
    records = lever_play.play_lever(
        game, players, etas, num_episodes=FLAGS.num_episodes, num_games=num_games,
        seed=FLAGS.seed, log=lambda s: print(s, flush=True))
    rows, summaries = lever.analyse(records, game.thresholds)
    paths = lever.write_results(rows, summaries, FLAGS.output_dir, meta)
    print(lever.format_markdown(rows, summaries))
    print("wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
    app.run(main)
