"""Steps per second of apple_picking against Melting Pot's commons_harvest__open.

apple_picking adds per-player observations computed in Lua every step
(NEARBY, APPLES_EATEN, ZAPPED) and a global apple count to Commons Harvest,
so this measures what they cost. Both substrates run 7 players with the same
pre-generated uniformly random actions; rounds alternate between the two
(A, B, A, B, ...) so that drifts in machine load hit both alike. Episode
resets are part of the measured time, as in training.

Usage: python scripts/benchmark_substrate.py [--steps 2000] [--rounds 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from meltingpot import substrate as mp_substrate

from sed_meltingpot import substrate

NUM_PLAYERS = 7
NUM_ACTIONS = 8


def _builders(seed: int) -> dict[str, Callable[[], object]]:
    return {
        "apple_picking": lambda: substrate.build("apple_picking", seed=seed),
        "commons_harvest__open": lambda: mp_substrate.build(
            "commons_harvest__open", roles=("default",) * NUM_PLAYERS),
    }


def run_round(env, actions: np.ndarray) -> float:
    """Steps `env` through `actions` (resetting at episode ends); returns steps per second."""
    start = time.perf_counter()
    timestep = env.reset()
    for row in actions:
        if timestep.last():
            timestep = env.reset()
        timestep = env.step(row)
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per substrate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the actions and the env")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    # One action list per round, shared by both substrates; plain ints so
    # that both run the same Python-side conversion.
    actions = [rng.integers(0, NUM_ACTIONS, size=(args.steps, NUM_PLAYERS)).tolist()
               for _ in range(args.rounds)]
    envs = {name: build() for name, build in _builders(args.seed).items()}
    rates: dict[str, list[float]] = {name: [] for name in envs}
    try:
        for env in envs.values():  # Warm-up: first reset and a few steps.
            run_round(env, actions[0][:50])
        print(f"{'round':>5}  {'substrate':<22}  {'steps/s':>9}")
        for r in range(args.rounds):
            for name, env in envs.items():
                rates[name].append(run_round(env, actions[r]))
                print(f"{r:>5}  {name:<22}  {rates[name][-1]:>9.1f}", flush=True)
    finally:
        for env in envs.values():
            env.close()

    print()
    for name, values in rates.items():
        print(f"{name:<22} median {statistics.median(values):9.1f} steps/s "
              f"(min {min(values):.1f}, max {max(values):.1f})")
    ratios = [a / b for a, b in zip(rates["apple_picking"], rates["commons_harvest__open"],
                                    strict=True)]
    print(f"ratio apple_picking / commons_harvest__open: median {statistics.median(ratios):.3f} "
          f"(per round: {', '.join(f'{x:.3f}' for x in ratios)}; target >= 0.9)")


if __name__ == "__main__":
    main()
