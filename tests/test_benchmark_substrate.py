"""Tests for scripts/benchmark_substrate.py: the two rates it reports and its flags.

The benchmark itself is not a test (its figures depend on the machine); these
check, on a scripted stand-in environment, that "within an episode" leaves
the resets out, that "whole episodes" counts them, and that episodes are
played to their end.
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
    t = bench.Timing(steps=1000, step_s=4.0, reset_s=1.0)
    assert t.within_episode == 250.0  # 1000 / 4
    assert t.whole_episodes == 200.0  # 1000 / (4 + 1)


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


def test_play_episodes_plays_each_episode_to_its_end():
    env = _FakeEnv([3, 5])
    actions = [[[k, i] for i in range(10)] for k in range(2)]
    timing = bench.play_episodes(env, actions, episodes=2)
    assert timing.steps == 8 and env.resets == 2
    # Episode k uses the rows of actions[k] from its first row on.
    assert env.steps_taken == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [1, 3], [1, 4]]
    assert timing.step_s > 0 and timing.reset_s > 0


def test_play_episodes_refuses_an_episode_longer_than_its_actions():
    with pytest.raises(RuntimeError, match="outlasted 4 steps"):
        bench.play_episodes(_FakeEnv([9]), [[[0]] * 4], episodes=1)


@pytest.mark.parametrize("flag", ["--rounds=0", "--episodes=0", "--seed=-1", "--rounds=x"])
def test_bad_flags_fail_naming_the_flag(flag, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args([flag])
    assert flag.split("=")[0] in capsys.readouterr().err


def test_defaults():
    args = bench.parse_args([])
    assert (args.rounds, args.episodes, args.seed) == (5, 1, 0)
