"""Evaluate principals against baselines with frozen players.

Examples:
  python scripts/evaluate.py --checkpoint=outputs/run --num_episodes=10 --output_dir=outputs/eval
  python scripts/evaluate.py --checkpoint=outputs/run --principals=trained,none \
      --fixed=0.1,0.2,0.3 --fixed=0.5,0.5,0.5
  python scripts/evaluate.py --players=random --episode_length=200 --tax_period=50 \
      --principals=none,random,best_fixed --grid_resolution=2

Writes summary.csv, episodes.csv and results.json to --output_dir and prints
a table of each metric's mean and 95% confidence interval over episodes.
Plays on the Lua substrate: needs the 'lua' extra, and the 'rllib' extra to
play checkpoints (pip install 'sed-meltingpot[lua,rllib]'; scripts/setup_env.sh
installs everything).
The logic is in sed_meltingpot.evaluation.
"""

from __future__ import annotations

import dataclasses
import os

from absl import app, flags

from sed_meltingpot import cli, evaluation
from sed_meltingpot.core import tax
from sed_meltingpot.design.two_timescale import HISTORY_FILE, best_rates
from sed_meltingpot.game.principals import parse_rates
from sed_meltingpot.runs import run_lock

cli.define_game_flags()
flags.DEFINE_integer("num_episodes", 5, "Episodes per principal.", lower_bound=1)
flags.DEFINE_string("output_dir", "outputs/eval", "Where the CSV and JSON files go.")
flags.DEFINE_list("principals", None,
                  f"Comma list from {list(evaluation.PRINCIPAL_CHOICES)}; 'fixed' runs every "
                  "--fixed schedule. Default: all that apply (trained only with a checkpoint "
                  "that has a learned principal; fixed only if --fixed is given).")
flags.DEFINE_multi_string("fixed", [], "A fixed schedule r0,r1,r2 (repeat the flag for more).")
flags.DEFINE_integer("grid_resolution", 3,
                     "Rates per bracket in the best_fixed search grid (2: {0,1}, 3: "
                     "{0,0.5,1}, 11: every level); resolution^brackets schedules.",
                     lower_bound=2)
flags.DEFINE_integer("search_episodes", None,
                     "Episodes per schedule in the search (default --num_episodes); run on "
                     "seeds separate from the final evaluation's.", lower_bound=1)
flags.DEFINE_enum("objective", "objective", list(evaluation.METRICS),
                  "Metric the best_fixed search maximises (objective = the voted W_eta).")

FLAGS = flags.FLAGS

flags.register_validator(
    "principals",
    lambda v: v is None or (bool(v) and all(p in evaluation.PRINCIPAL_CHOICES for p in v)),
    message=f"--principals must be a comma list from {list(evaluation.PRINCIPAL_CHOICES)}")


def _check_fixed(values: list[str]) -> bool:
    for text in values:
        try:
            rates = parse_rates(text)
        except ValueError as e:
            raise flags.ValidationError(f"--fixed: {e}") from e
        try:
            tax.validate_rates(rates, name=f"--fixed={text}: rates")
        except ValueError as e:
            raise flags.ValidationError(str(e)) from e
    return True


flags.register_validator("fixed", _check_fixed)
cli.require_finite_floats()


def _two_timescale_choice(run: evaluation.LoadedRun | None) -> list[float] | None:
    """The schedule a two-timescale run's principal (ucb, thompson, egreedy) committed
    to, read from its designer.json; None for any other run. Such a run has no learned
    principal to restore: its principal is the arm it chose, played as fixed rates."""
    if run is None:
        return None
    run_dir = os.path.dirname(evaluation.find_run_config(run.checkpoint))
    if not os.path.exists(os.path.join(run_dir, HISTORY_FILE)):
        return None
    try:
        return list(best_rates(run_dir))
    except ValueError as e:
        raise app.UsageError(f"--checkpoint={FLAGS.checkpoint}: {e}") from e


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    cli.quiet_start(FLAGS)
    try:
        cli.check_writable("output_dir", FLAGS.output_dir)
        run = evaluation.load_run(FLAGS.checkpoint) if FLAGS.checkpoint else None
    except evaluation.CheckpointError as e:
        raise app.UsageError(f"--checkpoint={FLAGS.checkpoint}: {e}") from e
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    has_trained = run is not None and run.principal is not None
    designer_rates = _two_timescale_choice(run)
    principals = FLAGS.principals or [
        p for p in evaluation.PRINCIPAL_CHOICES
        if (p != "trained" or has_trained)
        and (p != "fixed" or FLAGS.fixed or designer_rates is not None)]
    if "trained" in principals and not has_trained:
        raise app.UsageError("--principals=trained needs --checkpoint of a run that learned a "
                             "principal")
    try:
        setup = evaluation.build_setup(run, cli.game_overrides(FLAGS), seed=FLAGS.seed)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    try:
        trained = (evaluation.trained_principal(run, setup, greedy=FLAGS.greedy)
                   if "trained" in principals else None)
    except ValueError as e:
        raise app.UsageError(f"{e} (choose other --principals)") from e
    if "best_fixed" in principals:  # the search's size, before anything is played
        try:
            evaluation.grid_size(FLAGS.grid_resolution, setup.game.num_brackets,
                                 name="--grid_resolution")
        except ValueError as e:
            raise app.UsageError(str(e)) from e
    fixed = [parse_rates(t) for t in FLAGS.fixed]
    if "fixed" in principals and designer_rates is not None and designer_rates not in fixed:
        fixed.append(designer_rates)  # what the run's two-timescale principal chose
        print(f"two-timescale run: its principal committed to "
              f"{','.join(f'{r:g}' for r in designer_rates)} ({HISTORY_FILE}); "
              "evaluated as a fixed schedule")
    if "fixed" in principals and not fixed:
        raise app.UsageError("--principals=fixed needs at least one --fixed=r0,r1,r2")
    bad = [f for f in fixed if len(f) != setup.game.num_brackets]
    if bad:
        raise app.UsageError(f"--fixed needs {setup.game.num_brackets} rates per schedule, got "
                             f"{bad}")
    players = evaluation.make_players(cli.players_kind(FLAGS), run, greedy=FLAGS.greedy,
                                      setup=setup)
    if FLAGS.dry_run:
        print(f"dry run: settings valid; game: {setup.game}")
        run_lock.report_in_use([FLAGS.output_dir])  # the dry run takes no lock
        return
    try:  # one writer per folder, from before the work until the process ends
        run_lock.hold_until_exit(FLAGS.output_dir)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    results, search = evaluation.evaluate(
        setup, players, principals=principals, num_episodes=FLAGS.num_episodes,
        seed=FLAGS.seed, trained=trained, fixed=fixed, grid_resolution=FLAGS.grid_resolution,
        search_episodes=FLAGS.search_episodes, objective=FLAGS.objective)
    meta = {"checkpoint": run.checkpoint if run else None,
            "players": cli.players_kind(FLAGS), "greedy": FLAGS.greedy, "seed": FLAGS.seed,
            "num_episodes": FLAGS.num_episodes, "welfare_on": setup.game.welfare_on,
            "game": dataclasses.asdict(setup.game),
            "frame_stack": setup.frame_stack, "pixels_per_tile": setup.pixels_per_tile}
    paths = evaluation.write_results(results, FLAGS.output_dir, search=search, meta=meta)
    print(evaluation.format_table(results))
    print("wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
    app.run(main)
