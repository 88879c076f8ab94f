"""Tests for scripts/benchmark_substrate.py: the two rates it reports and its flags.

The benchmark itself is not a test (its figures depend on the machine); these
check, by hand-worked examples and a scripted stand-in environment, that
"within an episode" leaves the resets out, that "whole episodes" counts them
over finished episodes only, and that play goes on across episode ends.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "benchmark_substrate", os.path.join(ROOT, "scripts", "benchmark_substrate.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Its dataclass looks its module up there.
    spec.loader.exec_module(module)
    return module


bench = _load_script()


def test_rates_by_hand():
    clock = bench.Clock()
    clock.add_reset(1.0)
    for _ in range(4):
        clock.add_step(0.5)  # Episode 1: 4 steps in 2 s after a 1 s reset.
    clock.end_episode()
    clock.add_reset(3.0)
    clock.add_step(1.0)  # Episode 2, unfinished: 1 step in 1 s after a 3 s reset.
    assert clock.within_episode == 5 / 3.0  # 5 steps in 3 s of stepping.
    assert clock.whole_episodes == 4 / 3.0  # Finished episode only: 4 steps in 1 + 2 s.
    assert (clock.episodes, clock.resets, clock.reset_s) == (1, 2, 4.0)


def test_whole_episodes_needs_a_finished_episode():
    clock = bench.Clock()
    clock.add_reset(1.0)
    clock.add_step(0.5)
    with pytest.raises(ValueError, match="no episode finished"):
        _ = clock.whole_episodes


@dataclass
class _Step:
    end: bool

    def last(self) -> bool:
        return self.end


class _FakeEnv:
    """Episodes of fixed lengths; records the calls it gets."""

    def __init__(self, lengths: list[int]):
        self.lengths = list(lengths)
        self.resets = 0
        self.steps_taken: list[list[int]] = []
        self._left = 0

    def reset(self) -> _Step:
        self._left = self.lengths[self.resets]
        self.resets += 1
        return _Step(end=False)

    def step(self, row) -> _Step:
        self.steps_taken.append(row)
        self._left -= 1
        return _Step(end=self._left == 0)


def test_play_chunk_resets_at_episode_ends_and_goes_on():
    env = _FakeEnv([3, 5, 5])
    clock = bench.Clock()
    actions = [[i] for i in range(6)]
    timestep, step_s = bench.play_chunk(env, None, actions, clock)
    # Reset, 3 steps (episode 1 ends), reset, 3 steps of episode 2.
    assert env.steps_taken == actions and env.resets == 2
    assert (clock.steps, clock.episodes, clock.episode_steps) == (6, 1, 3)
    assert not timestep.last() and 0 < step_s == pytest.approx(clock.step_s)
    # The next chunk goes on with episode 2 where it stopped; its last step ends it.
    timestep, _ = bench.play_chunk(env, timestep, [[9], [9]], clock)
    assert timestep.last() and env.resets == 2
    assert (clock.episodes, clock.episode_steps) == (2, 8)
    bench.play_chunk(env, timestep, [[7]], clock)
    assert env.resets == 3 and clock.episodes == 2 and clock.steps == 9


@pytest.mark.parametrize("flag", ["--steps=0", "--chunk=0", "--seed=-1", "--steps=x"])
def test_bad_flags_fail_naming_the_flag(flag, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args([flag])
    assert flag.split("=")[0] in capsys.readouterr().err


def test_defaults():
    args = bench.parse_args([])
    assert (args.steps, args.chunk, args.seed) == (6000, 50, 0)
