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
  the twin's jitted PPO (`training/jax/ppo.py`, as `scripts/train.py --engine=jax`) with the
  same preset's network and PPO settings, fast and paper presets, with ratios.

Usage: python scripts/benchmark_twin.py [--steps 2000] [--games 1,64,512] [--no-lua]
       python scripts/benchmark_twin.py --rows=train [--train-presets=fast]

The rows are measured by `sed_meltingpot.perf.twin_benchmark`; this script parses the
flags and calls it.
"""

from __future__ import annotations

import argparse

from sed_meltingpot.core.validators import int_at_least
from sed_meltingpot.perf import twin_benchmark


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked (argparse exits with a one-line usage error on a bad one)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--substrate", default="apple_picking",
                        choices=("apple_picking", "apple_picking__large"))
    parser.add_argument("--steps", type=int_at_least(1), default=4000,
                        help="game steps per twin row (times games/8 for big batches)")
    parser.add_argument("--lua-steps", type=int_at_least(1), default=1000,
                        help="steps of the Lua row")
    parser.add_argument("--games", default="1,64,512",
                        help="comma-separated batch sizes of the twin rows")
    parser.add_argument("--no-lua", action="store_true", help="skip the Lua row")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--rows", default="env",
                        help="row groups, comma-separated: env, train (default env)")
    parser.add_argument("--train-presets", default="fast,paper",
                        help="presets of the training rows")
    parser.add_argument("--rllib-runners", type=int_at_least(0), default=2)
    parser.add_argument("--rllib-iterations", type=int_at_least(1), default=2)
    parser.add_argument("--rllib-batch", type=int_at_least(1), default=1000,
                        help="env steps per RLlib iteration (whole fragments)")
    parser.add_argument("--train-iterations", type=int_at_least(1), default=3,
                        help="timed iterations of each twin training row")
    parser.add_argument("--fast-games", type=int_at_least(1), default=16)
    parser.add_argument("--fast-rollout", type=int_at_least(1), default=200)
    parser.add_argument("--paper-games", type=int_at_least(1), default=4)
    parser.add_argument("--paper-rollout", type=int_at_least(1), default=100)
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
    twin_benchmark.report(parse_args())


if __name__ == "__main__":
    main()
