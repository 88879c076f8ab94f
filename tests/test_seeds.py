"""Seeds (issue 11, section 2): distinct worlds per env runner and sub-env,
`reset(seed=...)` honoured, and runs reproducible from --seed.

Worlds are compared by what the seed decides at the first step: where the
players spawn (the principal's WORLD.RGB) and, under --principal=random, the
first period's rates.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ray.rllib.env.env_context import EnvContext

from sed_meltingpot.envs.rllib_env import PRINCIPAL, SEDMultiAgentEnv, world_seed
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.sed_game import SEDGame

GAME = GameConfig(num_players=4, episode_length=100, tax_period=50)


def make_env(worker_index: int, principal: str = "random", seed: int = 0,
             vector_index: int = 0) -> SEDMultiAgentEnv:
    """An env as RLlib builds it: the env_config arrives as an EnvContext."""
    context = EnvContext({"game": {"num_players": 4, "episode_length": 100, "tax_period": 50},
                          "seed": seed, "principal": principal, "pixels_per_tile": 1,
                          "frame_stack": 1}, worker_index=worker_index,
                         vector_index=vector_index)
    return SEDMultiAgentEnv(context)


def world_fingerprint(env: SEDMultiAgentEnv, seed: int | None = None) -> tuple:
    """(world image at the reset, first period's rates, image after 5 steps)."""
    env.reset(seed=seed)
    start = env.game.principal_observation()["WORLD.RGB"].copy()
    rates = tuple(env.game.rates)
    for _ in range(5):
        env.step({p: 1 for p in env.players})  # all move forward
    return start.tobytes(), rates, env.game.principal_observation()["WORLD.RGB"].tobytes()


def test_world_seed_is_distinct_for_every_place_and_reproducible():
    places = list(itertools.product(range(4), range(6), range(3)))  # seed, worker, sub-env
    seeds = [world_seed(*p) for p in places]
    assert len(set(seeds)) == len(places)  # sums like seed + worker would collide here
    assert seeds == [world_seed(*p) for p in places]
    assert all(0 <= s < 2**31 for s in seeds)
    with pytest.raises(ValueError, match="seed=-1"):
        world_seed(-1)


def test_env_runners_get_distinct_worlds_and_random_principal_rates():
    """The EnvContext's worker_index reaches the env (it was lost when the
    context was copied into a dict): runner 1 and runner 2 differ."""
    envs = [make_env(worker) for worker in (1, 2)]
    try:
        assert envs[0].worker_index == 1 and envs[1].worker_index == 2
        first, second = (world_fingerprint(env) for env in envs)
        assert first[0] != second[0]  # spawn positions
        assert first[1] != second[1]  # --principal=random's first rates
    finally:
        for env in envs:
            env.close()


def test_same_place_same_seed_replays_the_same_worlds():
    envs = [make_env(1), make_env(1)]
    try:
        assert world_fingerprint(envs[0]) == world_fingerprint(envs[1])
        # The next episode too (the seed sequence continues alike).
        assert world_fingerprint(envs[0]) == world_fingerprint(envs[1])
    finally:
        for env in envs:
            env.close()


def test_reset_seed_is_honoured_and_sub_envs_differ():
    """RLlib seeds a runner's first reset with config.seed + worker_index +
    sub-env index: every (runner, sub-env) pair must get its own world, and
    reset(seed=s) must not depend on what the env was built with."""
    run_seed = 3
    fingerprints = {}
    for worker, sub_env in itertools.product((1, 2), (0, 1)):
        env = make_env(worker, seed=123 * worker + sub_env)  # construction seed: irrelevant
        try:
            fingerprints[worker, sub_env] = world_fingerprint(env, seed=run_seed + worker + sub_env)
        finally:
            env.close()
    starts = {fp[0] for fp in fingerprints.values()}
    assert len(starts) == 4, "two (runner, sub-env) pairs share a world"
    again = make_env(2, seed=999)
    try:
        assert world_fingerprint(again, seed=run_seed + 2 + 1) == fingerprints[2, 1]
        assert world_fingerprint(again, seed=run_seed + 2 + 0) == fingerprints[2, 0]
    finally:
        again.close()


def test_game_and_pettingzoo_reset_seed_match_a_fresh_game():
    from sed_meltingpot.envs.pettingzoo_env import SEDParallelEnv

    def first_world(game: SEDGame, seed=None) -> bytes:
        game.reset(seed=seed) if seed is not None else game.reset()
        return game.principal_observation()["WORLD.RGB"].tobytes()

    fresh = {s: SEDGame(GAME, seed=s) for s in (11, 12)}
    reused = SEDGame(GAME, seed=0)
    env = SEDParallelEnv(GAME, seed=0)
    try:
        worlds = {s: first_world(g) for s, g in fresh.items()}
        assert worlds[11] != worlds[12]
        assert first_world(reused, 12) == worlds[12]
        assert first_world(reused, 11) == worlds[11]
        env.reset(seed=12)
        assert env.render().tobytes() == worlds[12]
        env.reset(seed=11)
        assert env.render().tobytes() == worlds[11]
        with pytest.raises(ValueError, match="seed=-3"):
            reused.reset(seed=-3)
    finally:
        for game in (*fresh.values(), reused):
            game.close()
        env.close()


def test_learned_principal_env_still_starts_with_the_principal():
    env = make_env(1, principal="learned")
    try:
        obs, _ = env.reset(seed=5)
        assert list(obs) == [PRINCIPAL]
    finally:
        env.close()


# ------------------------------------------------------------- in training
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _tiny_train_config(**changes):
    from sed_meltingpot.runs.train_config import TrainConfig, preset

    values = {**preset("fast"), "minibatch_size": 32, "num_iterations": 1,
              "train_batch_size": 104, "rollout_fragment_length": 52, "num_env_runners": 0,
              "principal_minibatch_size": 2, "frame_stack": 1}
    values.update(changes)
    return TrainConfig(**values)


def _weights_after_one_iteration(train_config) -> dict[str, np.ndarray]:
    from sed_meltingpot.training.rllib.rllib_config import build_ppo_config

    game = GameConfig(episode_length=100, tax_period=50)
    algo = build_ppo_config(game, train_config, selfishness=(0.5,) * 7).build_algo()
    try:
        algo.train()
        out = {}
        for module_id in ("players", PRINCIPAL):
            state = algo.get_module(module_id).state_dict()
            out.update({f"{module_id}.{k}": v.detach().cpu().numpy().copy()
                        for k, v in state.items()})
        return out
    finally:
        algo.stop()


@pytest.mark.slow
def test_training_is_reproducible_from_the_seed(ray_session):
    """Same --seed: bit-identical weights after an iteration (worlds, actions,
    initial weights and the learner's minibatch shuffle all follow the seed);
    another seed: different weights."""
    a = _weights_after_one_iteration(_tiny_train_config(seed=4))
    b = _weights_after_one_iteration(_tiny_train_config(seed=4))
    c = _weights_after_one_iteration(_tiny_train_config(seed=5))
    assert a.keys() == b.keys()
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"same seed, different weights: {different[:5]}"
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_runners_and_sub_envs_of_a_run_play_distinct_worlds(ray_session):
    from sed_meltingpot.training.rllib.callbacks import sed_envs
    from sed_meltingpot.training.rllib.rllib_config import build_ppo_config

    train_config = _tiny_train_config(num_env_runners=2, num_envs_per_env_runner=2,
                                      rollout_fragment_length=26, principal="random")
    algo = build_ppo_config(GameConfig(episode_length=100, tax_period=50), train_config,
                            selfishness=(0.5,) * 7).build_algo()
    try:
        algo.train()
        per_runner = algo.env_runner_group.foreach_env_runner(
            lambda runner: [(env.worker_index, env.seed, tuple(env.game.period_records[0]
                             .effective_rates) if env.game.period_records else None)
                            for env in sed_envs(runner.env)],
            local_env_runner=False)
    finally:
        algo.stop()
    envs = [e for runner in per_runner for e in runner]
    assert sorted({e[0] for e in envs}) == [1, 2]
    assert len(envs) == 4 and len({e[1] for e in envs}) == 4, envs


def test_a_given_scripted_principal_is_played_and_kept_across_seeded_resets():
    """Evaluation hands the env its principal (e.g. a searched schedule) in the
    constructor; seeded resets keep it and restart its random stream."""
    from sed_meltingpot.game.principals import FixedRates, RandomPrincipal

    config = {"game": {"num_players": 4, "episode_length": 100, "tax_period": 50},
              "pixels_per_tile": 1, "frame_stack": 1}
    env = SEDMultiAgentEnv(config, scripted_principal=FixedRates([0.2, 0.4, 0.6]))
    try:
        for seed in (None, 3, 4):
            env.reset(seed=seed)
            assert np.allclose(env.game.rates, [0.2, 0.4, 0.6])
    finally:
        env.close()
    levels = tuple(np.linspace(0, 1, 11))
    env = SEDMultiAgentEnv(config, scripted_principal=RandomPrincipal(levels))
    try:
        drawn = []
        for seed in (5, 6, 5):
            env.reset(seed=seed)
            drawn.append(env.game.rates.copy())
        np.testing.assert_array_equal(drawn[0], drawn[2])  # same seed, same rates
        assert not np.array_equal(drawn[0], drawn[1])  # 11^3 outcomes: a tie is 1 in 1331
    finally:
        env.close()
    for spec in ("learned", "none"):
        with pytest.raises(ValueError, match="give one"):
            SEDMultiAgentEnv(dict(config, principal=spec),
                             scripted_principal=FixedRates([0.2, 0.4, 0.6]))
