"""Steps per second of apple_picking against Melting Pot's commons_harvest__open.

apple_picking adds per-player observations computed in Lua every step
(NEARBY, APPLES_EATEN, ZAPPED) and a global apple count to Commons Harvest,
so this measures what they cost. Both substrates run 7 players with the same
pre-generated uniformly random actions and play whole episodes; each reset
and each step is timed on its own, which gives two figures from one run:

* within an episode: steps / time spent in `step` (resets left out), the
  cost of the game itself;
* whole episodes: steps / (time in `step` + time in `reset`), what training
  sees. Melting Pot rebuilds the Lua world on every reset, and Commons
  Harvest's episodes have a random length (at least 1000 steps, then a 15%
  chance of ending every 100), against apple_picking's fixed 1000, so the
  two figures differ.

Rounds alternate between the substrates in the order A B, B A, A B, ... so
that drifts in machine load hit both alike; ratios are taken per round.

Usage: python scripts/benchmark_substrate.py [--rounds 5] [--episodes 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

NUM_PLAYERS = 7
NUM_ACTIONS = 8
# Commons Harvest's episodes end by frame 5000 (`maxEpisodeLengthFrames`).
MAX_EPISODE_STEPS = 5000
SUBSTRATES = ("apple_picking", "commons_harvest__open")


@dataclasses.dataclass(frozen=True)
class Timing:
    """Steps played and seconds spent in `step` and in `reset` by one substrate in one round."""

    steps: int
    step_s: float
    reset_s: float

    @property
    def within_episode(self) -> float:
        """Steps per second inside episodes (resets left out)."""
        return self.steps / self.step_s

    @property
    def whole_episodes(self) -> float:
        """Steps per second over whole episodes, resets included."""
        return self.steps / (self.step_s + self.reset_s)


def _builders(seed: int) -> dict[str, Callable[[], object]]:
    # Imported here so that the helpers above load without Melting Pot (tests).
    from meltingpot import substrate as mp_substrate

    from sed_meltingpot import substrate

    return {
        "apple_picking": lambda: substrate.build("apple_picking", seed=seed),
        "commons_harvest__open": lambda: mp_substrate.build(
            "commons_harvest__open", roles=("default",) * NUM_PLAYERS),
    }


def play_episodes(env, actions: Sequence[Sequence[int]], episodes: int) -> Timing:
    """Plays `episodes` whole episodes, episode k with the rows of `actions[k]`."""
    steps, step_s, reset_s = 0, 0.0, 0.0
    for k in range(episodes):
        start = time.perf_counter()
        timestep = env.reset()
        reset_s += time.perf_counter() - start
        for row in actions[k]:
            start = time.perf_counter()
            timestep = env.step(row)
            step_s += time.perf_counter() - start
            steps += 1
            if timestep.last():
                break
        else:
            raise RuntimeError(f"an episode outlasted {len(actions[k])} steps")
    return Timing(steps=steps, step_s=step_s, reset_s=reset_s)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer (>= 1)")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give an integer >= 0")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; bad values fail with a message naming the flag."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=positive_int, default=5, help="rounds per substrate")
    parser.add_argument("--episodes", type=positive_int, default=1,
                        help="whole episodes per substrate and round")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the actions and of apple_picking")
    return parser.parse_args(argv)


def _summary(label: str, values: dict[str, list[float]]) -> None:
    for name in SUBSTRATES:
        v = values[name]
        print(f"  {name:<22} median {statistics.median(v):8.1f} steps/s "
              f"(min {min(v):.1f}, max {max(v):.1f})")
    ratios = [a / b for a, b in zip(values[SUBSTRATES[0]], values[SUBSTRATES[1]], strict=True)]
    print(f"  ratio {label}: median {statistics.median(ratios):.3f} "
          f"(per round: {', '.join(f'{x:.3f}' for x in ratios)})")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    # One action list per round and episode, shared by both substrates; plain
    # ints so that both run the same Python-side conversion.
    actions = [[rng.integers(0, NUM_ACTIONS, size=(MAX_EPISODE_STEPS, NUM_PLAYERS)).tolist()
                for _ in range(args.episodes)] for _ in range(args.rounds)]
    envs = {name: build() for name, build in _builders(args.seed).items()}
    timings: dict[str, list[Timing]] = {name: [] for name in SUBSTRATES}
    try:
        for env in envs.values():  # Warm-up: first reset and a few steps.
            env.reset()
            for row in actions[0][0][:50]:
                env.step(row)
        print(f"{'round':>5}  {'substrate':<22}  {'steps':>6}  {'reset s':>7}  "
              f"{'within-episode steps/s':>22}  {'whole-episode steps/s':>21}")
        for r in range(args.rounds):
            order = SUBSTRATES if r % 2 == 0 else SUBSTRATES[::-1]
            for name in order:
                t = play_episodes(envs[name], actions[r], args.episodes)
                timings[name].append(t)
                print(f"{r:>5}  {name:<22}  {t.steps:>6}  {t.reset_s:>7.2f}  "
                      f"{t.within_episode:>22.1f}  {t.whole_episodes:>21.1f}", flush=True)
    finally:
        for env in envs.values():
            env.close()

    print("\nwithin an episode (steps/s, resets left out):")
    _summary("apple_picking / commons_harvest__open within an episode (target >= 0.9)",
             {n: [t.within_episode for t in ts] for n, ts in timings.items()})
    print("whole episodes (steps/s, resets included):")
    _summary("apple_picking / commons_harvest__open over whole episodes",
             {n: [t.whole_episodes for t in ts] for n, ts in timings.items()})


if __name__ == "__main__":
    main()
