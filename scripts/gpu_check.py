"""One device check of the JAX twin (issue 19): speed, memory and bfloat16, one table.

Runs from the repository root as it is, without installing anything: it needs only
jax, flax, optax and numpy (what a GPU machine with JAX has), and it makes Ray,
Melting Pot, dmlab2d, TensorFlow and tensorboardX unimportable before it starts, so
a run on a CPU machine that has them proves the device run needs none of them.

    python3 scripts/gpu_check.py                 # the device run: about 5 minutes
    python3 scripts/gpu_check.py --quick         # tiny sizes (the CPU test's run)
    python3 scripts/gpu_check.py --dry_run       # the plan, without running it

What it measures, in this order (a "game step" is one step of one game, all 7
players acting, so 1,024 games stepped once count 1,024 game steps):
1. bf16 vs f32: each trained preset's players network on one fixed batch of real
   observations, the same parameters computing in float32 and in bfloat16: the max
   abs difference of the logits, values, PPO loss and loss gradient, each against a
   stated tolerance (atol + rtol x max |f32 value|). The one check that can fail.
2. env rows: `vmap(step)` under `lax.scan` (perf/programs.make_twin_rollout, random
   actions drawn on device), without observations, with every player's 11x11 tiles
   and with its 88x88 RGB pixels, at each of --sizes games.
3. training rows: one `training/jax/ppo.py` iteration (rollout, GAE, PPO epochs in one
   jitted call, as `train.py --engine=jax`), fast and paper presets, float32 and
   bfloat16, at --fast_envs / --paper_envs games x --rollout steps; each preset has a
   fixed wall-clock slot (warm-up and timed iterations) shared by its dtypes.
All rows' programs are lowered first, then compiled in parallel threads (XLA compiles
outside the GIL: on a 16-core host the 13 compiles overlap), then run one by one.
Compile time (the row's lowering + XLA compile) is reported apart and never enters a
rate; a warm-up call after it is untimed. Memory: `prog MiB` is XLA's
memory_analysis() of the row's program (arguments + outputs + temporaries), `peak
MiB` the device's
peak_bytes_in_use so far in this process (jax memory_stats; 'n/a' where the backend
has none, e.g. CPU). A row that would start after --budget_seconds is skipped, a row
that raises is reported as failed; the table is printed either way. Speed targets
are reported, never enforced; exit status 1 means a bf16 check or a row failed.

The check is `sed_meltingpot.perf` (gpu_check, device_rows, bf16, timing, programs);
this script parses and checks the flags and calls `perf.gpu_check.run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # no install: the package from the checkout itself
    sys.path.insert(0, ROOT)

from sed_meltingpot.core.validators import finite_float  # noqa: E402
from sed_meltingpot.perf import gpu_check  # noqa: E402
from sed_meltingpot.perf.bf16 import BF16_ATOL, BF16_GRAD_RTOL, BF16_RTOL  # noqa: E402
from sed_meltingpot.perf.gpu_check import DTYPES, FULL, MAX_GAMES, PRESETS, QUICK  # noqa: E402
from sed_meltingpot.perf.programs import OBSERVATIONS  # noqa: E402


# ------------------------------------------------------------ flags
def _in_range(parser: argparse.ArgumentParser, name: str, value: float, low: float,
              high: float) -> None:
    if not low <= value <= high:
        parser.error(f"--{name}={value}: must be in [{low}, {high}]")


def _choices(parser: argparse.ArgumentParser, name: str, value: str,
             allowed: Sequence[str]) -> list[str]:
    items = [x for x in value.split(",") if x]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        parser.error(f"--{name}={value!r}: comma-separated, each one of {', '.join(allowed)}")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, filled from FULL or (--quick) QUICK where not given, and checked:
    a bad one exits with a one-line usage error naming the flag, value and range."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and no time slots (a CPU test in about a minute)")
    p.add_argument("--dry_run", action="store_true", help="print the plan and stop")
    p.add_argument("--sizes", help=f"games of the env rows, comma-separated ({FULL['sizes']})")
    p.add_argument("--obs", help=f"env rows' observations: {', '.join(OBSERVATIONS)}")
    p.add_argument("--env_steps", type=int, help="steps per jitted env call (100)")
    p.add_argument("--env_seconds", type=finite_float,
                   help="timed seconds per env row, at least one call (1)")
    p.add_argument("--presets", help="training presets: fast, paper")
    p.add_argument("--dtypes", help="training dtypes: float32, bfloat16")
    p.add_argument("--fast_envs", type=int, help="games of the fast preset's rows (512)")
    p.add_argument("--paper_envs", type=int, help="games of the paper preset's rows (64)")
    p.add_argument("--rollout", type=int,
                   help="steps per game per training iteration, a multiple of the tax "
                        "period (200)")
    p.add_argument("--fast_seconds", type=finite_float,
                   help="wall-clock slot of the fast preset's rows, after compiling (40)")
    p.add_argument("--paper_seconds", type=finite_float,
                   help="wall-clock slot of the paper preset's rows, after compiling (120)")
    p.add_argument("--min_iterations", type=int,
                   help="timed training iterations per row at least, slot or not (2)")
    p.add_argument("--budget_seconds", type=finite_float,
                   help="no row starts after this many seconds of the run (330)")
    p.add_argument("--compile_threads", type=int, default=0,
                   help="programs compiled at once (0: one per row, at most the CPU count)")
    p.add_argument("--bf16_games", type=int, help="games of the bf16 check's batch (4)")
    p.add_argument("--principal", choices=("learned", "none"),
                   help="the training rows' principal (learned; --quick: none, a shorter "
                        "compile)")
    p.add_argument("--bf16_rtol", type=finite_float, default=BF16_RTOL,
                   help="bf16 tolerance of logits, values and loss, relative to max |f32|")
    p.add_argument("--bf16_grad_rtol", type=finite_float, default=BF16_GRAD_RTOL,
                   help="bf16 tolerance of the loss gradient, relative to max |f32|")
    p.add_argument("--bf16_atol", type=finite_float, default=BF16_ATOL,
                   help="bf16 absolute tolerance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.sizes = [int(x) for x in str(args.sizes).split(",")]
    except ValueError:
        p.error(f"--sizes={args.sizes!r}: comma-separated integers in [1, {MAX_GAMES}]")
    for games in args.sizes:
        _in_range(p, "sizes", games, 1, MAX_GAMES)
    args.obs = _choices(p, "obs", args.obs, OBSERVATIONS)
    args.presets = _choices(p, "presets", args.presets, PRESETS)
    args.dtypes = _choices(p, "dtypes", args.dtypes, DTYPES)
    for name, low, high in (("env_steps", 1, 100_000), ("fast_envs", 1, MAX_GAMES),
                            ("paper_envs", 1, MAX_GAMES), ("min_iterations", 1, 1000),
                            ("bf16_games", 1, 1024), ("env_seconds", 0, 600),
                            ("compile_threads", 0, 256),
                            ("fast_seconds", 0, 3600), ("paper_seconds", 0, 3600),
                            ("budget_seconds", 0, 3600), ("bf16_rtol", 0, 1),
                            ("bf16_grad_rtol", 0, 1),
                            ("bf16_atol", 0, 1)):
        _in_range(p, name, getattr(args, name), low, high)
    from sed_meltingpot.game.config import GameConfig  # pure Python

    period = GameConfig().tax_period
    if args.rollout < period or args.rollout % period:
        p.error(f"--rollout={args.rollout}: must be a positive multiple of the tax period "
                f"({period})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.json and not args.dry_run:  # written after minutes of device time
        from sed_meltingpot.cli import check_writable

        try:
            check_writable("json", args.json, is_file=True)
        except ValueError as e:
            sys.exit(f"gpu_check.py: error: {e}")
    return gpu_check.run(args)


if __name__ == "__main__":
    sys.exit(main())
