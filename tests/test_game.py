"""The SED game wrapper over scripted rollouts, checked by recomputation.

Every expected value here is recomputed from the per-step observations the
game hands out (apples eaten, NEARBY) with plain loops written for the test,
not with the library's own tax/reward/welfare functions.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from sed_meltingpot.core import voting
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.sed_game import SEDGame

THRESHOLDS = (0, 10, 20, 10000)


def brute_tax(apples: float, rates) -> float:
    """Tax apple by apple: the k-th apple falls in the bracket (tau_b, tau_b+1]."""
    total = 0.0
    for k in range(1, int(apples) + 1):
        for b in range(len(rates)):
            if THRESHOLDS[b] < k <= THRESHOLDS[b + 1]:
                total += rates[b]
    return total


def rollout(config: GameConfig, rates_fn, seed=0, action_seed=0, cap=1.0):
    game = SEDGame(config, seed=seed)
    game.tax_cap = cap
    rng = np.random.default_rng(action_seed)
    game.reset()
    steps, decisions = [], []
    while True:
        if game.principal_due:
            decisions.append((len(steps), game.set_rates(rates_fn(len(decisions)))))
        result = game.step(rng.integers(0, 8, config.num_players))
        steps.append(result)
        if result.done:
            return game, steps, decisions


@pytest.fixture(scope="module")
def taxed_rollout():
    config = GameConfig(episode_length=150, tax_period=50)
    schedule = [(0.1, 0.2, 0.5), (1.0, 1.0, 1.0), (0.0, 0.5, 0.3)]
    return config, schedule, *rollout(config, lambda k: schedule[k], seed=7)


def test_principal_acts_exactly_once_per_period(taxed_rollout):
    config, schedule, game, steps, decisions = taxed_rollout
    assert len(steps) == config.episode_length
    assert [d[0] for d in decisions] == [0, 50, 100]
    assert len(game.period_records) == 3
    for k, record in enumerate(game.period_records):
        np.testing.assert_array_equal(record.effective_rates, schedule[k])
        # The period's steps ran at those rates.
        for s in steps[50 * k:50 * (k + 1)]:
            np.testing.assert_array_equal(s.info.rates, schedule[k])


def test_tax_matches_brute_force_and_is_budget_balanced(taxed_rollout):
    config, schedule, game, steps, _ = taxed_rollout
    n = config.num_players
    for k, record in enumerate(game.period_records):
        period = steps[50 * k:50 * (k + 1)]
        incomes = np.zeros(n)
        for s in period:
            incomes += [o["APPLES_EATEN"] for o in s.observations]
        np.testing.assert_array_equal(record.incomes, incomes)
        expected_tax = [brute_tax(a, schedule[k]) for a in incomes]
        np.testing.assert_allclose(record.taxes, expected_tax, atol=1e-12)
        assert abs(record.transfers.sum()) < 1e-9
        # r_tax over the period: own apples minus own tax plus an equal share.
        r_tax_sum = sum(s.info.r_tax for s in period)
        share = sum(expected_tax) / n
        np.testing.assert_allclose(r_tax_sum, incomes - expected_tax + share, atol=1e-9)
        assert r_tax_sum.sum() == pytest.approx(incomes.sum())
        # Transfers arrive on the period's last step only.
        for s in period[:-1]:
            np.testing.assert_array_equal(s.info.r_tax, s.info.apples)


def test_full_tax_equalises_period_incomes(taxed_rollout):
    _, _, game, steps, _ = taxed_rollout
    record = game.period_records[1]  # rates (1, 1, 1); incomes stay below 10000
    after = record.incomes - record.taxes + record.taxes.mean()
    np.testing.assert_allclose(after, np.full_like(after, record.incomes.mean()))


def test_rewards_follow_eq8_with_nearby_of_the_step(taxed_rollout):
    config, _, game, steps, _ = taxed_rollout
    sigma = game.selfishness
    saw_neighbour = False
    for s in steps:
        nearby = np.stack([o["NEARBY"] for o in s.observations])
        for i in range(config.num_players):
            others = sum(s.info.r_tax[j] for j in range(config.num_players)
                         if j != i and nearby[i, j] == 1)
            saw_neighbour |= others != 0
            expected = sigma[i] * s.info.r_tax[i] + (1 - sigma[i]) * others
            assert s.rewards[i] == pytest.approx(expected, abs=1e-12)
    assert saw_neighbour, "the rollout never rewarded a neighbour; the test proves nothing"


def test_principal_reward_telescopes_to_the_objective(taxed_rollout):
    config, _, game, steps, _ = taxed_rollout
    apples = sum(s.info.apples for s in steps)
    eta = float(np.mean(game.selfishness))  # paper: f(sigma) = mean sigma
    objective = eta * apples.sum() + (1 - eta) * apples.min()
    assert sum(s.principal_reward for s in steps) == pytest.approx(objective)
    assert game.round_records[-1].objective == pytest.approx(objective)
    assert sum(r.principal_reward for r in game.period_records) == pytest.approx(objective)
    assert game.eta == pytest.approx(eta)


def test_cap_and_divergence_constraint_shape_the_rates():
    config = GameConfig(episode_length=50, tax_period=50, divergence_delta=0.2)
    game, steps, decisions = rollout(config, lambda k: (1.0, 0.0, 0.5), cap=0.5)
    # L-inf ball of radius 0.2 around no tax, then the cap: (0.2, 0, 0.2) * 0.5.
    np.testing.assert_allclose(decisions[0][1], [0.1, 0.0, 0.1])
    np.testing.assert_allclose(game.period_records[0].requested_rates, [1.0, 0.0, 0.5])


def test_set_rates_rejected_mid_period_and_bad_rates():
    game = SEDGame(GameConfig(episode_length=50, tax_period=25), seed=0)
    game.reset()
    with pytest.raises(ValueError, match=r"rates"):
        game.set_rates([0.1, 1.5, 0.0])
    with pytest.raises(ValueError, match=r"length"):
        game.set_rates([0.1, 0.2])
    with pytest.raises(RuntimeError, match="set_rates"):
        game.step([0] * 7)
    game.set_rates([0.0, 0.0, 0.0])
    game.step([0] * 7)
    with pytest.raises(RuntimeError, match="start of a tax period"):
        game.set_rates([0.0, 0.0, 0.0])


def test_continual_rounds_vote_at_boundaries_and_keep_the_world():
    etas = itertools.cycle([0.25, 0.75])
    voting.register_voting_rule("test_alternating", lambda sigma: next(etas))
    config = GameConfig(episode_length=100, rounds_per_episode=2, tax_period=25,
                        voting_rule="test_alternating",
                        regrowth_probabilities=(0.0, 0.0, 0.0, 0.0))
    game, steps, decisions = rollout(config, lambda k: (0.0, 0.0, 0.0), seed=1)
    assert len(steps) == 100 and [d[0] for d in decisions] == [0, 25, 50, 75]
    assert [r.eta for r in game.round_records] == [0.25, 0.75]
    assert [s.info.eta for s in steps[:50]] == [0.25] * 50
    assert [s.info.eta for s in steps[50:]] == [0.75] * 50
    # The world is not reset between rounds: with regrowth off, live apples
    # only fall, by exactly the apples eaten, across the boundary too.
    for prev, cur in zip(steps, steps[1:], strict=False):
        assert cur.info.num_apples == prev.info.num_apples - cur.info.apples.sum()
    assert steps[50].info.num_apples < 64 or steps[49].info.num_apples == 64
    # Each round's principal rewards telescope to that round's objective,
    # computed on that round's apples only.
    for r, chunk in enumerate((steps[:50], steps[50:])):
        apples = sum(s.info.apples for s in chunk)
        eta = game.round_records[r].eta
        expected = eta * apples.sum() + (1 - eta) * apples.min()
        assert sum(s.principal_reward for s in chunk) == pytest.approx(expected)
        np.testing.assert_array_equal(game.round_records[r].apples, apples)


def test_default_episodes_reset_the_world():
    config = GameConfig(episode_length=50, tax_period=50,
                        regrowth_probabilities=(0.0, 0.0, 0.0, 0.0))
    game = SEDGame(config, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(2):
        game.reset()
        game.set_rates([0, 0, 0])
        first = None
        while True:
            result = game.step(rng.integers(0, 8, 7))
            first = first if first is not None else result.info.num_apples
            if result.done:
                break
        assert first + result.info.apples.sum() >= 64 - 7  # restarted near 64
    assert [r.episode for r in game.round_records] == [0, 1]


def test_player_observations_carry_type_rates_and_period_position():
    config = GameConfig(episode_length=50, tax_period=25, selfishness=(0.0, 0.1, 0.2, 0.3, 0.4,
                                                                         0.5, 0.6))
    game = SEDGame(config, seed=0)
    game.reset()
    game.set_rates([0.3, 0.2, 0.1])
    observations = game.player_observations()
    for i, obs in enumerate(observations):
        assert obs["SELFISHNESS"] == pytest.approx(0.1 * i)
        np.testing.assert_allclose(obs["TAX_RATES"], [0.3, 0.2, 0.1])
        assert obs["PERIOD_POSITION"] == 0
        assert "WORLD.RGB" not in obs
    result = game.step([0] * 7)
    assert result.observations[0]["PERIOD_POSITION"] == pytest.approx(1 / 25)
    principal = game.principal_observation()
    assert principal["WORLD.RGB"].shape == (144, 192, 3)
    assert principal["PERIOD_APPLES"].shape == (7,)


@pytest.mark.parametrize("field,value,pattern", [
    ("tax_period", 0, "tax_period"),
    ("tax_period", -5, "tax_period"),
    ("tax_period", 30, "multiple of tax_period"),
    ("episode_length", 0, "episode_length"),
    ("rounds_per_episode", 3, "divisible"),
    ("selfishness", (0.5,) * 6 + (1.5,), r"selfishness"),
    ("selfishness", (0.5,) * 6, r"selfishness"),
    ("thresholds", (0, 20, 10, 10000), "increasing"),
    ("principal_weight", 2.0, r"principal_weight.*\[0, 1\]"),
    ("voting_rule", "nope", "nope"),
    ("welfare", "nope", "nope"),
])
def test_bad_config_names_the_field(field, value, pattern):
    config = dataclasses.replace(GameConfig(), **{field: value})
    with pytest.raises(ValueError, match=pattern):
        SEDGame(config, seed=0)


def test_pettingzoo_adapter_passes_the_api_test_and_uses_the_principal():
    from pettingzoo.test import parallel_api_test

    from sed_meltingpot.envs.pettingzoo_env import SEDParallelEnv
    from sed_meltingpot.game.principals import FixedRates

    config = GameConfig(episode_length=50, tax_period=25)
    env = SEDParallelEnv(config, principal=FixedRates([0.2, 0.4, 0.6]), seed=0)
    parallel_api_test(env, num_cycles=60)
    obs, _ = env.reset()
    np.testing.assert_allclose(obs["player_0"]["TAX_RATES"], [0.2, 0.4, 0.6])
    done = False
    while not done:
        _, rewards, _, truncations, _ = env.step({a: 0 for a in env.agents})
        done = all(truncations.values())
    assert len(env.game.period_records) >= 2
    for record in env.game.period_records:
        np.testing.assert_allclose(record.effective_rates, [0.2, 0.4, 0.6])
