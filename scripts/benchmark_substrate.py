"""Steps per second of apple_picking against Melting Pot's commons_harvest__open.

apple_picking adds per-player observations computed in Lua every step
(NEARBY, APPLES_EATEN, ZAPPED) and a global apple count to Commons Harvest,
so this measures what they cost. Both substrates run 7 players with the same
pre-generated uniformly random actions. Each reset and each step is timed on
its own, which gives two figures from one run:

* within an episode: steps / time spent in `step` (resets left out), the
  cost of the game itself;
* whole episodes: over the episodes played to their end, steps / (time in
  `step` + time in `reset`), what training sees. Melting Pot rebuilds the Lua
  world on every reset, and Commons Harvest's episodes have a random length
  (1099, 1199, ... steps: after step 999 a 15% chance of ending every 100)
  against apple_picking's fixed 1000, so the two figures differ.

The substrates take turns in chunks of `--chunk` steps (order A B, B A, A B,
... so that drifts in machine load hit both alike); an episode that ends
inside a chunk is reset and play goes on. The within-episode ratio is the
median over chunks of the ratio of the two chunks' rates.

Usage: python scripts/benchmark_substrate.py [--steps 6000] [--chunk 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from sed_meltingpot.substrates import apple_picking_data

from sed_meltingpot.core.validators import int_at_least

NUM_PLAYERS = apple_picking_data.NUM_PLAYERS
NUM_ACTIONS = apple_picking_data.NUM_ACTIONS
SUBSTRATES = ("apple_picking", "commons_harvest__open")


@dataclasses.dataclass
class Clock:
    """Step and reset time of one substrate, and of its episodes played to their end."""

    steps: int = 0
    step_s: float = 0.0
    resets: int = 0
    reset_s: float = 0.0
    episodes: int = 0
    episode_steps: int = 0
    episode_s: float = 0.0  # Steps and reset of the finished episodes.
    # The episode in progress: its steps and its time so far (reset included).
    current_steps: int = 0
    current_s: float = 0.0

    def add_reset(self, seconds: float) -> None:
        """Starts an episode with a reset of `seconds`."""
        self.resets += 1
        self.reset_s += seconds
        self.current_steps, self.current_s = 0, seconds

    def end_episode(self) -> None:
        """Counts the episode in progress as finished."""
        self.episodes += 1
        self.episode_steps += self.current_steps
        self.episode_s += self.current_s
        self.current_steps, self.current_s = 0, 0.0

    def add_step(self, seconds: float) -> None:
        self.steps += 1
        self.step_s += seconds
        self.current_steps += 1
        self.current_s += seconds

    @property
    def within_episode(self) -> float:
        """Steps per second inside episodes (resets left out)."""
        return self.steps / self.step_s

    @property
    def whole_episodes(self) -> float:
        """Steps per second over the finished episodes, their resets included."""
        if not self.episodes:
            raise ValueError("no episode finished: raise --steps")
        return self.episode_steps / self.episode_s


def play_chunk(env, timestep, actions: Sequence[Sequence[int]], clock: Clock):
    """Steps `env` through `actions`, resetting it (timed) when an episode ends.

    Returns the last timestep and the seconds spent in `step` alone.
    """
    step_s = 0.0
    for row in actions:
        if timestep is None or timestep.last():
            start = time.perf_counter()
            timestep = env.reset()
            clock.add_reset(time.perf_counter() - start)
        start = time.perf_counter()
        timestep = env.step(row)
        elapsed = time.perf_counter() - start
        clock.add_step(elapsed)
        step_s += elapsed
        if timestep.last():
            clock.end_episode()
    return timestep, step_s


def _builders(seed: int) -> dict[str, Callable[[], object]]:
    # Imported here so that the helpers above load without Melting Pot (tests).
    from sed_meltingpot.core.optional import extra_import

    with extra_import("lua", "scripts/benchmark_substrate.py"):
        from meltingpot import substrate as mp_substrate

    from sed_meltingpot.game import substrate

    return {
        "apple_picking": lambda: substrate.build("apple_picking", seed=seed),
        "commons_harvest__open": lambda: mp_substrate.build(
            "commons_harvest__open", roles=("default",) * NUM_PLAYERS),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; bad values fail with a message naming the flag."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int_at_least(1), default=6000,
                        help="steps per substrate (>= 1; a few episodes' worth)")
    parser.add_argument("--chunk", type=int_at_least(1), default=50,
                        help="steps per turn (>= 1)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of the actions and of apple_picking (>= 0)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    envs = {name: build() for name, build in _builders(args.seed).items()}
    clocks = {name: Clock() for name in SUBSTRATES}
    timesteps: dict[str, object] = {name: None for name in SUBSTRATES}
    chunk_ratios: list[float] = []
    try:
        for env in envs.values():  # Warm-up: a reset and a few steps, not timed.
            env.reset()
            for row in rng.integers(0, NUM_ACTIONS, size=(20, NUM_PLAYERS)).tolist():
                env.step(row)
        done = 0
        while done < args.steps:
            size = min(args.chunk, args.steps - done)
            # Plain ints so that both run the same Python-side conversion.
            actions = rng.integers(0, NUM_ACTIONS, size=(size, NUM_PLAYERS)).tolist()
            order = SUBSTRATES if (done // args.chunk) % 2 == 0 else SUBSTRATES[::-1]
            rates = {}
            for name in order:
                timesteps[name], step_s = play_chunk(
                    envs[name], timesteps[name], actions, clocks[name])
                rates[name] = size / step_s
            chunk_ratios.append(rates[SUBSTRATES[0]] / rates[SUBSTRATES[1]])
            done += size
    finally:
        for env in envs.values():
            env.close()

    a, b = (clocks[name] for name in SUBSTRATES)
    print(f"{'substrate':<22}  {'steps':>6}  {'episodes':>8}  {'mean reset s':>12}  "
          f"{'within-episode steps/s':>22}  {'whole-episode steps/s':>21}")
    for name in SUBSTRATES:
        c = clocks[name]
        print(f"{name:<22}  {c.steps:>6}  {c.episodes:>8}  {c.reset_s / c.resets:>12.2f}  "
              f"{c.within_episode:>22.1f}  {c.whole_episodes:>21.1f}")
    q1, median, q3 = statistics.quantiles(chunk_ratios, n=4) if len(chunk_ratios) > 1 else (
        chunk_ratios * 3)
    print(f"\nratio {SUBSTRATES[0]} / {SUBSTRATES[1]}:")
    print(f"  within an episode: {a.within_episode / b.within_episode:.3f} of the totals; "
          f"median over {len(chunk_ratios)} chunk pairs {median:.3f} "
          f"(quartiles {q1:.3f}-{q3:.3f}; target >= 0.9)")
    print(f"  whole episodes:    {a.whole_episodes / b.whole_episodes:.3f} "
          f"({a.episodes} and {b.episodes} episodes)")


if __name__ == "__main__":
    main()
