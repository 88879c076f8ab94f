"""The scaling figures of issue 32 in one command: env and training steps per second
against players, training against the minibatch plan and the population size, and
memory per game; a table, a CSV and JSON of every row, and a plot.

Sections (`--sections`, all by default, in this order):
  env         the twin's env steps, `--games` games under jax.vmap, random actions, for
              each of `--players` (7: the paper's map; others: `--map=generated`);
              `--locality=both` adds the all-pairs form beside the cell grid
  train       one training iteration (fast preset, no tax; `train.py --engine=jax`'s
              program) of `--train_games` games x `--rollout` steps, for each of
              `--train_players` (default: `--players`)
  plan        the same at `--plan_players`, for each players' minibatch plan of `--plans`
              (`size`: the preset's 256-row minibatches; k: `--num_minibatches=k`)
  population  `--population_runs` runs (seeds) of `--population_players` trained in one
              program (`training/jax/population.py`): total game steps/s
  memory      bytes of one game's state and observations, and of a players' rollout row

Every row: a warm-up call (it compiles), a pilot call that fixes how many calls fill
`--seconds`, then that many calls each timed alone; the median call is reported. The
machine (CPUs, jax backend and device, load average) is printed beside the numbers.
Rows with the same settings are measured once (the plan's `size` row and the population
of one run are train rows when their player count is among `--train_players`).

Usage: python scripts/benchmark_scale.py [--output_dir outputs/scaling] [--seconds 5]
       python scripts/benchmark_scale.py --quick --output_dir=/tmp/scaling_quick  # tiny
       python scripts/benchmark_scale.py --dry_run    # the plan, nothing compiled

Writes scaling.csv, scaling.json, scaling.md and scaling.png (cost per game step against
players on log-log axes with each series' fitted exponent; throughput against population
size) in `--output_dir`. The rows are measured by `sed_meltingpot.perf.scale_benchmark`
and `scale_memory`, reported by `scale_report`; this script parses the flags and runs
the plan.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from sed_meltingpot.core.validators import finite_float, int_at_least
from sed_meltingpot.game.config import GENERATED_MAX_PLAYERS, GameConfig

LOCALITY_CHOICES = {"auto": (None,), "pairwise": ("pairwise",), "grid": ("grid",),
                    "both": ("pairwise", "grid")}
SECTIONS = ("env", "train", "plan", "population", "memory")
MAX_RUNS = 4096
#: Defaults of the flags left out, and with --quick (tiny sizes: a CPU test's run; one
#: training size, as each training program compiles for tens of seconds on 2 cores).
FULL = {"players": "7,32,128,512,1024", "train_players": None, "games": 64,
        "steps_per_call": 20, "train_games": 4, "rollout": 200, "plan_players": 128,
        "plans": "size,4,16", "population_players": 7, "population_runs": "1,2,4,8,16",
        "seconds": 5.0, "min_calls": 3}
QUICK = {"players": "2,3", "train_players": "2", "games": 2, "steps_per_call": 5,
         "train_games": 1, "rollout": 50, "plan_players": 2, "plans": "size,2",
         "population_players": 2, "population_runs": "1,2", "seconds": 0.05,
         "min_calls": 2}


def _int_list(parser: argparse.ArgumentParser, name: str, text: str, low: int, high: int
              ) -> list[int]:
    try:
        values = [int(x) for x in str(text).split(",")]
    except ValueError:
        parser.error(f"--{name}={text!r} must be comma-separated integers in [{low}, {high}]")
    bad = [v for v in values if not low <= v <= high]
    if bad:
        parser.error(f"--{name}={text!r}: {bad} outside [{low}, {high}]")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, filled from FULL or (--quick) QUICK where not given, and checked:
    a bad one exits with a one-line usage error naming the flag, value and range."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a CPU test's run)")
    p.add_argument("--dry_run", action="store_true",
                   help="check the settings and print the plan, then stop (nothing compiled)")
    p.add_argument("--output_dir", default="outputs/scaling",
                   help="folder of scaling.csv, .json, .md and .png")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated, of {', '.join(SECTIONS)}")
    p.add_argument("--players", help=f"player counts of the env and memory rows, each in "
                   f"[1, {GENERATED_MAX_PLAYERS}] ({FULL['players']})")
    p.add_argument("--train_players", help="player counts of the train rows (--players)")
    p.add_argument("--games", type=int_at_least(1), help="games of an env row (64)")
    p.add_argument("--steps-per-call", "--steps_per_call", dest="steps_per_call",
                   type=int_at_least(1), help="steps of each env call, a lax.scan (20)")
    p.add_argument("--train_games", type=int_at_least(1),
                   help="games per run of a training row (4)")
    p.add_argument("--rollout", type=int_at_least(1),
                   help="steps per game per training iteration, a multiple of the tax "
                        "period (200)")
    p.add_argument("--plan_players", type=int_at_least(1), help="players of the plan rows (128)")
    p.add_argument("--plans", help="players' minibatch plans: size (the preset's 256 rows) "
                   "or a --num_minibatches count, comma-separated (size,4,16)")
    p.add_argument("--population_players", type=int_at_least(1),
                   help="players of the population rows (7)")
    p.add_argument("--population_runs", help="runs in one program, comma-separated "
                   "(1,2,4,8,16)")
    p.add_argument("--seconds", type=finite_float,
                   help="timed seconds per row, which fix its number of calls (5)")
    p.add_argument("--min_calls", type=int_at_least(1), help="timed calls per row at least (3)")
    p.add_argument("--locality", default="auto", choices=tuple(LOCALITY_CHOICES),
                   help="env rows' who-sees-whom: auto, pairwise, grid or both")
    p.add_argument("--observe", default="none", choices=("none", "tiles"),
                   help="env rows also render every player's 11x11 view each step")
    p.add_argument("--no_plot", action="store_true", help="write no scaling.png")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sections = [s for s in args.sections.split(",") if s]
    if not args.sections or set(args.sections) - set(SECTIONS):
        p.error(f"--sections={','.join(args.sections)!r}: comma-separated, each one of "
                f"{', '.join(SECTIONS)}")
    args.players = _int_list(p, "players", args.players, 1, GENERATED_MAX_PLAYERS)
    args.train_players = (args.players if args.train_players is None else
                          _int_list(p, "train_players", args.train_players, 1,
                                    GENERATED_MAX_PLAYERS))
    args.population_runs = _int_list(p, "population_runs", args.population_runs, 1, MAX_RUNS)
    for name in ("plan_players", "population_players"):
        if getattr(args, name) > GENERATED_MAX_PLAYERS:
            p.error(f"--{name}={getattr(args, name)} is outside [1, {GENERATED_MAX_PLAYERS}]")
    plans = []
    for item in str(args.plans).split(","):
        if item == "size":
            plans.append(0)
        elif item.isdigit() and int(item) >= 1:
            plans.append(int(item))
        else:
            p.error(f"--plans={args.plans!r}: each is 'size' or a minibatch count >= 1")
    args.plans = plans
    if not 0 < args.seconds <= 3600:
        p.error(f"--seconds={args.seconds} must be in (0, 3600]")
    period = GameConfig().tax_period  # the training rows keep the game's
    if args.rollout % period:
        p.error(f"--rollout={args.rollout}: must be a positive multiple of the tax period "
                f"({period})")
    return args


@dataclasses.dataclass(frozen=True)
class Planned:
    """A training row to measure: its section, players, runs and plan (0: by size)."""

    section: str
    players: int
    runs: int
    num_minibatches: int

    @property
    def key(self) -> tuple[int, int, int]:
        return self.players, self.runs, self.num_minibatches


def plan(args: argparse.Namespace) -> list[Planned]:
    """The training rows of the sections asked for, each config checked (ValueError
    naming the setting, e.g. a count above the players' rows)."""
    from sed_meltingpot.perf.scale_benchmark import training_config

    rows = []
    if "train" in args.sections:
        rows += [Planned("train", n, 1, 0) for n in args.train_players]
    if "plan" in args.sections:
        rows += [Planned("plan", args.plan_players, 1, k) for k in args.plans]
    if "population" in args.sections:
        rows += [Planned("population", args.population_players, r, 0)
                 for r in args.population_runs]
    for row in rows:
        training_config(row.players, args.train_games, args.rollout, row.num_minibatches,
                        args.seed)
    return rows


def describe(args: argparse.Namespace, planned: list[Planned]) -> list[str]:
    """The plan, one line per section."""
    from sed_meltingpot.perf.scale_benchmark import map_for, plan_label, training_config

    lines = []
    if "env" in args.sections:
        lines.append(f"env: players {args.players}, {args.games} games x "
                     f"{args.steps_per_call} steps per call, locality {args.locality}, "
                     f"observe {args.observe}")
    for p in planned:
        config = training_config(p.players, args.train_games, args.rollout,
                                 p.num_minibatches, args.seed)
        size, count = config.players_minibatch_plan
        lines.append(f"{p.section}: {p.players} players ({map_for(p.players)} map), "
                     f"{p.runs} run(s) x {args.train_games} games x {args.rollout} steps, "
                     f"{plan_label(p.num_minibatches)}: {count} x {size} rows per epoch")
    if "memory" in args.sections:
        lines.append(f"memory: players {args.players}")
    lines.append(f"each row: warm-up, pilot, then calls filling {args.seconds} s (at least "
                 f"{args.min_calls}), the median reported; files in {args.output_dir}")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        planned = plan(args)
    except ValueError as e:
        sys.exit(f"benchmark_scale.py: error: {e}")
    print("\n".join(describe(args, planned)), flush=True)
    if args.dry_run:
        print("dry run: settings valid; nothing compiled")
        return
    from sed_meltingpot.cli import check_writable

    try:
        check_writable("output_dir", args.output_dir)
    except ValueError as e:
        sys.exit(f"benchmark_scale.py: error: {e}")
    from sed_meltingpot.perf import scale_benchmark, scale_memory, scale_report

    info = scale_report.machine()
    print(scale_report.machine_line(info), flush=True)
    start = time.perf_counter()
    rows, memory = [], []

    def show(row: scale_benchmark.Row) -> None:
        rows.append(row)
        print(scale_report.timing_table([row])[-1], flush=True)

    if "env" in args.sections:
        for players in args.players:
            for locality in LOCALITY_CHOICES[args.locality]:
                series = "env" if args.locality == "auto" else f"env ({locality})"
                show(scale_benchmark.env_row(
                    players, args.games, args.steps_per_call, args.seconds, locality,
                    args.observe, args.seed, series, args.min_calls))
    measured: dict[tuple[int, int, int], scale_benchmark.Row] = {}
    for p in planned:
        if p.key in measured:  # the same settings: the same measurement, not a second
            first = measured[p.key]
            show(dataclasses.replace(first, section=p.section,
                                     note=f"the {first.section} row"))
            continue
        measured[p.key] = scale_benchmark.training_row(
            p.section, p.players, args.train_games, args.rollout, args.seconds, p.runs,
            p.num_minibatches, args.seed, args.min_calls)
        show(measured[p.key])
    if "memory" in args.sections:
        memory = [scale_memory.memory_row(n) for n in args.players]
    info["load_average_end"] = scale_report.machine()["load_average"]
    info["wall_s"] = round(time.perf_counter() - start, 1)
    print()
    print(scale_report.report(info, rows, memory))
    for path in scale_report.write(args.output_dir, info, rows, memory,
                                   plot=not args.no_plot):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
