"""RLlib training on a tiny game: smoke run, restore, credit and updates.

Small on purpose (100-step episodes, 1 pixel per tile, 2 iterations): the
point is that the wiring is right, not that anything is learned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray.rllib.core.rl_module.rl_module import RLModule  # noqa: E402
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch  # noqa: E402

from sed_meltingpot.envs.rllib_env import PLAYERS_MODULE, PRINCIPAL  # noqa: E402
from sed_meltingpot.game.config import GameConfig  # noqa: E402
from sed_meltingpot.runs.train_config import TrainConfig, preset  # noqa: E402
from sed_meltingpot.training.rllib.callbacks import sed_envs, tax_cap  # noqa: E402
from sed_meltingpot.training.rllib.learner import (  # noqa: E402
    MINIBATCH_SIZES_KEY,
    PerModuleMinibatchIterator,
    SEDPPOTorchLearner,
)
from sed_meltingpot.training.rllib.rllib_config import build_ppo_config  # noqa: E402
from sed_meltingpot.training.rllib.trainer import module_checkpoint, train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAME = GameConfig(episode_length=100, tax_period=25)
TINY = TrainConfig(num_iterations=2, train_batch_size=208, rollout_fragment_length=104,
                   num_env_runners=0, **{**preset("fast"), "minibatch_size": 64},
                   principal_minibatch_size=2)
SIGMA = (0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8)


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def weights(algo, module_id):
    module = algo.get_module(module_id)
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def test_smoke_run_checkpoint_and_restore(tmp_path):
    out = str(tmp_path / "run")
    summary = train(GAME, TINY, out, checkpoint_every=1, print_fn=lambda s: None)
    records = [json.loads(line) for line in open(os.path.join(out, "progress.jsonl"))]
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(r["env_steps_this_iter"] >= 208 for r in records)
    assert records[-1]["game_steps"] > 0 and records[-1]["episodes"] >= 1
    for key in ("objective", "eta", "productivity", "equality", "peace", "tax_revenue",
                "rate_b0", "principal_return"):
        assert key in records[-1], key
    assert os.listdir(os.path.join(out, "tensorboard"))
    checkpoint = summary["checkpoint"]
    assert checkpoint.endswith("iter_000002")
    # Both modules restore alone from the checkpoint.
    saved_principal = RLModule.from_checkpoint(module_checkpoint(checkpoint, PRINCIPAL))
    RLModule.from_checkpoint(module_checkpoint(checkpoint, PLAYERS_MODULE))

    # --restore continues the count and the principal's weights.
    algo = build_ppo_config(GAME, TINY, selfishness=SIGMA).build_algo()
    try:
        algo.restore_from_path(checkpoint)
        assert algo.iteration == 2
        restored = weights(algo, PRINCIPAL)
        for key, value in saved_principal.state_dict().items():
            np.testing.assert_array_equal(restored[key], value.detach().cpu().numpy())
    finally:
        algo.stop()
    more = TrainConfig(**{**TINY.__dict__, "num_iterations": 3})
    train(GAME, more, out, restore=out, checkpoint_every=1, print_fn=lambda s: None)
    records = [json.loads(line) for line in open(os.path.join(out, "progress.jsonl"))]
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert records[2]["env_steps"] > records[1]["env_steps"]


def brute_tax(apples: float, rates) -> float:
    """Tax apple by apple; thresholds (0, 10, 20, 10000)."""
    edges = (0, 10, 20, 10000)
    return sum(rates[b] for k in range(1, int(apples) + 1) for b in range(3)
               if edges[b] < k <= edges[b + 1])


def test_principal_actions_become_next_period_rates_and_rewards_telescope():
    # sigma = 1: each player's reward is its own taxed income (Eq. 8), so its
    # episode return is checkable against the tax recomputed by hand.
    selfish = (1.0,) * 7
    algo = build_ppo_config(GAME, TINY, selfishness=selfish).build_algo()
    try:
        runner = algo.env_runner
        env = sed_envs(runner.env)[0]
        env.set_tax_cap(0.5)
        episodes = runner.sample(num_episodes=1)
        done = [e for e in episodes if e.is_done]
        assert done, "no finished episode"
        episode = done[-1]
        principal = episode.agent_episodes[PRINCIPAL]
        actions = np.asarray(principal.get_actions())
        assert actions.shape == (4, 3)  # 100 steps / tax period 25
        game = env.game
        records = [r for r in game.period_records if r.episode == game.period_records[-1].episode]
        levels = np.asarray(GAME.rate_levels)
        for action, record in zip(actions, records, strict=True):
            np.testing.assert_allclose(record.requested_rates, levels[action])
            np.testing.assert_allclose(record.effective_rates, 0.5 * levels[action])
        # The principal's rewards sum to the round's objective, recomputed.
        apples = sum(r.incomes for r in records)
        eta = float(np.mean(selfish))
        objective = eta * apples.sum() + (1 - eta) * apples.min()
        assert sum(principal.get_rewards()) == pytest.approx(objective)
        # The tax reaches the players' rewards in the training env.
        taxed = np.zeros(7)
        for record in records:
            taxes = [brute_tax(a, record.effective_rates) for a in record.incomes]
            taxed += record.incomes - taxes + sum(taxes) / 7
        assert sum(r.tax_revenue for r in records) > 0, "no tax collected; test proves nothing"
        for i in range(7):
            player = episode.agent_episodes[f"player_{i}"]
            assert len(player.get_actions()) == 100  # every player acts every game step
            assert sum(player.get_rewards()) == pytest.approx(taxed[i])
    finally:
        algo.stop()


def test_fragments_shorter_than_an_episode_do_not_reset_the_game():
    short = TrainConfig(**{**TINY.__dict__, "rollout_fragment_length": 26,
                           "train_batch_size": 104, "minibatch_size": 52})
    algo = build_ppo_config(GAME, short, selfishness=SIGMA).build_algo()
    try:
        algo.train()  # four 26-step fragments of one 104-env-step episode
        game = sed_envs(algo.env_runner.env)[0].game
        by_episode: dict[int, list[int]] = {}
        for record in game.period_records:
            by_episode.setdefault(record.episode, []).append(record.start_step)
        finished = [starts for e, starts in sorted(by_episode.items())][:-1]
        assert finished or len(by_episode[max(by_episode)]) == 4, by_episode
        for starts in finished or [by_episode[max(by_episode)]]:
            assert starts == [0, 25, 50, 75], by_episode
    finally:
        algo.stop()


def test_one_iteration_changes_both_policies():
    algo = build_ppo_config(GAME, TINY, selfishness=SIGMA).build_algo()
    try:
        before = {m: weights(algo, m) for m in (PLAYERS_MODULE, PRINCIPAL)}
        algo.train()
        after = {m: weights(algo, m) for m in (PLAYERS_MODULE, PRINCIPAL)}
        for module_id in before:
            changed = [k for k in before[module_id]
                       if not np.array_equal(before[module_id][k], after[module_id][k])]
            assert changed, f"{module_id} did not change"
        assert isinstance(algo.learner_group._learner, SEDPPOTorchLearner)
    finally:
        algo.stop()


def test_paper_settings_are_explicit():
    config = build_ppo_config(GameConfig(), TrainConfig(), selfishness=SIGMA)
    assert config.use_kl_loss is False and config.kl_coeff == 0.0
    assert config.vf_clip_param == float("inf")
    assert (config.gamma, config.lambda_, config.clip_param) == (0.99, 0.95, 0.2)
    assert (config.entropy_coeff, config.vf_loss_coeff, config.grad_clip) == (0.01, 0.5, 0.5)
    assert (config.minibatch_size, config.num_epochs) == (128, 4)
    assert config.rollout_fragment_length == 200
    assert config.learner_class is SEDPPOTorchLearner
    assert config.learner_config_dict[MINIBATCH_SIZES_KEY] == {PRINCIPAL: 32}
    assert config.lr[0] == [0, 2.5e-4] and config.lr[-1][1] == 0.0  # annealed to 0
    assert config.env_config["frame_stack"] == 4


def test_principal_samples_are_used_a_bounded_number_of_times():
    players = SampleBatch({"obs": np.arange(1400.0), "x": np.arange(1400.0) * 2})
    principal = SampleBatch({"obs": np.arange(20.0), "x": np.arange(20.0) * 2})
    batch = MultiAgentBatch({PLAYERS_MODULE: players, PRINCIPAL: principal}, 1420)
    iterator = PerModuleMinibatchIterator(batch, num_epochs=4, default_minibatch_size=128,
                                          minibatch_sizes={PRINCIPAL: 8}, seed=0)
    seen = {PLAYERS_MODULE: [], PRINCIPAL: []}
    count = 0
    for minibatch in iterator:
        count += 1
        for mid, b in minibatch.policy_batches.items():
            seen[mid].extend(b["obs"].tolist())
            np.testing.assert_array_equal(b["x"], b["obs"] * 2)  # rows stay intact
            size = 8 if mid == PRINCIPAL else 128
            assert size <= len(b) < 2 * size  # an epoch's leftover joins its last minibatch
    assert count == 4 * (1400 // 128)
    for mid, n in ((PLAYERS_MODULE, 1400), (PRINCIPAL, 20)):
        uses = np.bincount(np.asarray(seen[mid], dtype=int), minlength=n)
        np.testing.assert_array_equal(uses, np.full(n, 4))  # exactly num_epochs times
        np.testing.assert_array_equal(iterator.usage[mid], np.full(n, 4))


def test_tax_cap_curriculum():
    curriculum = {"enabled": True, "start": 0.1, "end": 1.0, "fraction": 0.02, "total": 10_000}
    assert tax_cap(0, curriculum) == pytest.approx(0.1)
    assert tax_cap(100, curriculum) == pytest.approx(0.55)  # halfway through the 200-step ramp
    assert tax_cap(200, curriculum) == pytest.approx(1.0)
    assert tax_cap(9_000, curriculum) == pytest.approx(1.0)
    assert tax_cap(0, {**curriculum, "enabled": False}) == 1.0


@pytest.mark.parametrize("args,message", [
    (["--tax_period=-5"], "tax_period"),
    (["--voting_rule=dictator"], "voting_rule"),
    (["--principal=fixed:0.1,1.5,0.2"], "outside"),
    (["--tax_period=30"], "multiple of --tax_period"),
    (["--pixels_per_tile=3"], "pixels_per_tile"),
])
def test_bad_flags_exit_with_a_message(args, message):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
