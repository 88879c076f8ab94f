"""Bad inputs get one clear error that names the culprit (issue 11, section 4).

Library level (the game, the PettingZoo env, the reward mixing); the
scripts' one-line errors are in `test_script_errors.py`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from sed_meltingpot.core import rewards
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.sed_game import SEDGame

N = 3  # players: small and fast


@pytest.fixture(scope="module")
def game():
    game = SEDGame(GameConfig(num_players=N, episode_length=100, tax_period=50), seed=0)
    yield game
    game.close()


def _started(game: SEDGame) -> SEDGame:
    game.reset()
    game.set_rates([0.0, 0.0, 0.0])
    return game


@pytest.mark.parametrize("actions, pattern", [
    ([0, 0], r"one action per player \(3\)"),
    ([0, 0, 0, 0], r"one action per player \(3\)"),
    ([[0, 0, 0]], r"one action per player \(3\)"),
    ([0, -1, 0], r"player 1 is -1; allowed: integers in \[0, 7\]"),
    ([0, 0, 8], r"player 2 is 8; allowed: integers in \[0, 7\]"),
    ([3.9, 0, 0], r"player 0 is 3.9; allowed: integers in \[0, 7\]"),
    ([0, float("nan"), 0], r"player 1 is nan"),
    (["a", "b", "c"], r"integers in \[0, 7\]"),
    ([True, False, True], r"integers in \[0, 7\]"),
])
def test_step_rejects_bad_actions_naming_the_player(game, actions, pattern):
    _started(game)
    with pytest.raises(ValueError, match=pattern):
        game.step(actions)
    # A rejected step leaves the game where it was: a good step still works,
    # and it is the first step of the episode.
    result = game.step([0] * N)
    assert result.info.step == 1


def test_step_accepts_every_legal_action_and_integral_floats(game):
    """The check does not reject what the substrate accepts: every action
    0..7 (Melting Pot's action set) as ints, numpy ints and integral floats."""
    assert game.num_actions == 8
    _started(game)
    for action in range(8):
        game.step(np.full(N, action, dtype=np.int32))
    game.step([7.0, 0.0, 1.0])
    result = game.step([np.int64(2), 3, 4])
    assert result.info.step == 10


READS = {
    "eta": lambda g: g.eta,
    "rates": lambda g: g.rates,
    "principal_due": lambda g: g.principal_due,
    "period_position()": lambda g: g.period_position(),
    "period_in_round()": lambda g: g.period_in_round(),
    "player_observations()": lambda g: g.player_observations(),
    "principal_observation()": lambda g: g.principal_observation(),
    "episode_metrics()": lambda g: g.episode_metrics(),
}


def test_episode_state_before_reset_says_call_reset():
    game = SEDGame(GameConfig(num_players=N, episode_length=100, tax_period=50), seed=0)
    try:
        for name, read in READS.items():
            with pytest.raises(RuntimeError, match=rf"SEDGame\.{re.escape(name)} is undefined "
                               r"before the first reset\(\); call reset\(\)"):
                read(game)
        game.reset()
        for read in READS.values():
            read(game)  # defined once reset
    finally:
        game.close()


def test_pettingzoo_step_before_reset_and_after_the_end():
    from sed_meltingpot.envs.pettingzoo_env import SEDParallelEnv

    env = SEDParallelEnv(GameConfig(num_players=N, episode_length=50, tax_period=50), seed=0)
    actions = {f"player_{i}": 0 for i in range(N)}
    try:
        with pytest.raises(RuntimeError, match=r"before reset\(\)"):
            env.step(actions)
        env.reset()
        with pytest.raises(ValueError, match=r"unknown agents \['player_9'\]"):
            env.step({**actions, "player_9": 0})
        with pytest.raises(ValueError, match=r"player 0 is 8"):
            env.step({**actions, "player_0": 8})
        for _ in range(50):
            *_, truncations, _ = env.step(actions)
        assert all(truncations.values()) and env.agents == []
        with pytest.raises(RuntimeError, match=r"after the episode ended.*call reset\(\)"):
            env.step(actions)
        env.reset()
        env.step(actions)  # a new episode plays again
    finally:
        env.close()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_mix_rewards_rejects_non_finite_rewards(bad):
    taxed = np.array([[1.0, 2.0, 3.0], [0.0, bad, 1.0]])
    visible = np.ones((2, 3, 3), dtype=bool)
    with pytest.raises(ValueError, match=r"taxed\[1, 1\]=.*not finite"):
        rewards.mix_rewards(taxed, [0.5, 0.5, 0.5], visible)
    # The same call with finite rewards is Eq. 8 by hand: player 0 of row 0
    # gets 0.5 * 1 + 0.5 * (2 + 3).
    taxed[1, 1] = 0.0
    out = rewards.mix_rewards(taxed, [0.5, 0.5, 0.5], visible)
    assert out[0, 0] == pytest.approx(3.0)
