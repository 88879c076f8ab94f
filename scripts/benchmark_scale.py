"""The JAX twin's env steps per second against the number of players, one table.

Rows: 7 players on the paper's map, then generated maps (tiled Commons Harvest
patches, `--map=generated`) for the other sizes; `--games` games under jax.vmap,
uniformly random actions, compile time kept out of the rate. `--locality=both`
adds the direct all-pairs form beside the cell grid for each size (slow past a
few hundred players: it is the O(n^2) the grid removes).

Usage: python scripts/benchmark_scale.py [--players 7,32,128,512,1024] [--games 64]
       [--seconds 5] [--locality auto|pairwise|grid|both] [--observe none|tiles]

The rows are measured by `sed_meltingpot.perf.scale_benchmark`; this script parses the
flags and prints the table.
"""

from __future__ import annotations

import argparse

from sed_meltingpot.core.validators import finite_float, int_at_least
from sed_meltingpot.game.config import GENERATED_MAX_PLAYERS
from sed_meltingpot.perf import scale_benchmark

LOCALITY_CHOICES = {"auto": (None,), "pairwise": ("pairwise",), "grid": ("grid",),
                    "both": ("pairwise", "grid")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked (argparse exits with a one-line usage error on a bad one)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", default="7,32,128,512,1024",
                        help=f"comma-separated player counts, each in [1, "
                             f"{GENERATED_MAX_PLAYERS}]")
    parser.add_argument("--games", type=int_at_least(1), default=64,
                        help="games stepped together under jax.vmap")
    parser.add_argument("--steps-per-call", type=int_at_least(1), default=20,
                        help="steps of each jitted call (a lax.scan)")
    parser.add_argument("--seconds", type=finite_float, default=5.0,
                        help="timed seconds per row (at least one call)")
    parser.add_argument("--locality", default="auto", choices=tuple(LOCALITY_CHOICES))
    parser.add_argument("--observe", default="none", choices=("none", "tiles"),
                        help="also render every player's 11x11 view each step")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    args = parser.parse_args(argv)
    try:
        args.players = [int(p) for p in args.players.split(",")]
    except ValueError:
        parser.error(f"--players={args.players!r} must be comma-separated integers")
    bad = [p for p in args.players if not 1 <= p <= GENERATED_MAX_PLAYERS]
    if bad:
        parser.error(f"--players={bad} are outside [1, {GENERATED_MAX_PLAYERS}]")
    if not args.seconds > 0:
        parser.error(f"--seconds={args.seconds} must be > 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    for players in args.players:
        for locality in LOCALITY_CHOICES[args.locality]:
            rows.append(scale_benchmark.scale_row(
                players, args.games, args.steps_per_call, args.seconds, locality,
                args.observe, args.seed))
            print(scale_benchmark.table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(scale_benchmark.table(rows))


if __name__ == "__main__":
    main()
