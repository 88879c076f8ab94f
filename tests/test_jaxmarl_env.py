"""The JaxMARL MultiAgentEnv of the SED game (issue 18), tested with JaxMARL's own code.

The reference for every number is `SEDTwin` itself, stepped here for the same keys and
actions (`replay`), plus numpy's tax and welfare functions for the period taxes and the
principal's return. JaxMARL's `LogWrapper` and `CTRolloutManager` wrap the env under
jit(vmap), and an IPPO loop in JaxMARL's baseline style (`examples/jaxmarl_ippo.py`, the
one copy of it) trains a few iterations on it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("jaxmarl", reason="the jaxmarl extra is not installed")

from jaxmarl.wrappers.baselines import CTRolloutManager, LogWrapper  # noqa: E402

from sed_meltingpot.core import tax, voting, welfare
from sed_meltingpot.game import principals  # noqa: E402
from sed_meltingpot.game.config import GameConfig  # noqa: E402
from sed_meltingpot.twin.jaxmarl_env import PRINCIPAL, SEDJaxMARLEnv  # noqa: E402
from sed_meltingpot.twin.sed import SEDTwin  # noqa: E402

GAME = {"num_players": 3, "episode_length": 50, "tax_period": 25}
IPPO_CONFIG = {"NUM_ENVS": 2, "NUM_STEPS": 40, "NUM_UPDATES": 3, "UPDATE_EPOCHS": 2,
               "NUM_MINIBATCHES": 2, "LR": 3e-4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95,
               "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5}


@pytest.fixture(scope="module")
def learned_env() -> SEDJaxMARLEnv:
    return SEDJaxMARLEnv(**GAME, principal="learned", seed=3)


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def replay(env: SEDJaxMARLEnv, reset_keys, keys, actions, rates=None):
    """What SEDTwin gives for JaxMARL's keys and actions, per env: lists over steps of
    (observation before the step as {agent: {part: array}}, rewards {agent: float},
    done). JaxMARL's `step` splits (key, reset key); the adapter steps the world with
    split(key)[0] and resets from split(reset key)[0] (its docstring); `rates`: a
    scripted principal's fixed rates, set at every period start."""
    twin = SEDTwin(env.config, obs_mode=env.twin.obs_mode, frame_stack=env.twin.frame_stack)
    reset, step = jax.jit(twin.reset), jax.jit(twin.step)
    set_levels, set_rates = jax.jit(twin.set_rate_levels), jax.jit(twin.set_rates)
    sigma = jnp.asarray(env.config.selfishness, jnp.float32)
    n = env.config.num_players

    def fresh(key):
        g, obs = reset(jax.random.split(key)[0], sigma)
        return set_rates(g, rates) if rates is not None else (g, obs)

    def view(g, obs):
        seen = {f"player_{i}": {"image": np.asarray(obs.player_image[i]),
                                "features": np.asarray(obs.player_features[i])}
                for i in range(n)}
        if env.learned:
            seen[PRINCIPAL] = {"image": np.asarray(obs.principal_image),
                               "features": np.asarray(obs.principal_features),
                               "turn": np.float32([bool(g.sed.principal_due)])}
        return seen

    episodes = []
    for e in range(len(reset_keys)):
        g, obs = fresh(reset_keys[e])
        out = []
        for t in range(len(keys)):
            before = view(g, obs)
            key, key_reset = jax.random.split(keys[t][e])
            k_world = jax.random.split(key)[0]
            if env.learned and bool(g.sed.principal_due):
                g, obs = set_levels(g, actions[PRINCIPAL][t][e], 1.0)
                rewards, principal_reward, done = np.zeros(n), 0.0, False
            else:
                moves = jnp.asarray([actions[f"player_{i}"][t][e] for i in range(n)])
                g, obs, rewards, principal_reward, done, _ = step(g, moves, k_world)
                if rates is not None and bool(g.sed.principal_due):
                    g, obs = set_rates(g, rates)
            reward = {f"player_{i}": float(rewards[i]) for i in range(n)}
            if env.learned:
                reward[PRINCIPAL] = float(principal_reward)
            out.append((before, reward, bool(done)))
            if bool(done):
                g, obs = fresh(key_reset)
        episodes.append(out)
    return episodes


def check_replay(env, episodes, obs, rewards, dones, returned=None) -> int:
    """The env's per-step observations (before each step), rewards and dones, indexed
    [step][env], equal the reference; LogWrapper's returned episode returns equal the
    reference's summed rewards. Returns the number of episodes that ended."""
    ended = 0
    for e, steps in enumerate(episodes):
        totals = dict.fromkeys(env.agents, 0.0)
        for t, (before, reward, done) in enumerate(steps):
            for a in env.agents:
                for part, want in before[a].items():
                    got = np.asarray(obs[a][part][t][e])
                    if want.dtype == np.uint8:
                        np.testing.assert_array_equal(got, want, err_msg=f"{a} {part} t={t}")
                    else:
                        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6,
                                                   err_msg=f"{a} {part} t={t}")
                np.testing.assert_allclose(float(rewards[a][t][e]), reward[a], rtol=1e-5,
                                           atol=1e-6, err_msg=f"{a} reward t={t}")
                totals[a] += reward[a]
            assert bool(dones["__all__"][t][e]) == done, t
            if done:
                ended += 1
                if returned is not None:
                    np.testing.assert_allclose(
                        np.asarray(returned[t][e]), [totals[a] for a in env.agents],
                        rtol=1e-5, atol=1e-5)
                totals = dict.fromkeys(env.agents, 0.0)
    return ended


def _flatten_updates(tree):
    """(updates, steps, ...) -> (updates * steps, ...)."""
    return jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), tree)


def _example(name: str):
    """examples/<name>.py as a module (examples/ is not a package; the test runs the
    example's own code, not a copy)."""
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before exec: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_ippo_in_jaxmarl_style_trains_and_sees_what_sedtwin_gives(learned_env):
    jaxmarl_ippo = _example("jaxmarl_ippo")

    out = jax.jit(jaxmarl_ippo.make_train(IPPO_CONFIG, learned_env))(jax.random.PRNGKey(0))
    metrics = _np(out["metrics"])
    for name in ("loss_players", "loss_principal"):
        assert metrics[name].shape == (IPPO_CONFIG["NUM_UPDATES"],)
        assert np.isfinite(metrics[name]).all(), name
    for g, before in out["initial_params"].items():  # both networks were trained
        after = out["runner_state"][0][g].params
        moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), before, after)
        assert max(jax.tree.leaves(moved)) > 0, g
    seen = _flatten_updates(out["seen"])
    episodes = replay(learned_env, out["reset_keys"], seen["key"], seen["action"])
    ended = check_replay(learned_env, episodes, seen["obs"], seen["reward"], seen["done"],
                         seen["returned_episode_returns"])
    # 120 env steps per game: an episode is 50 world steps + 2 principal turns.
    assert ended == 2 * IPPO_CONFIG["NUM_ENVS"]
    assert np.asarray(out["reset_obs"][PRINCIPAL]["turn"]).tolist() == [[1.0], [1.0]]


def test_log_wrapper_under_jit_vmap_with_a_scripted_schedule_in_pixels():
    env = SEDJaxMARLEnv(**GAME, principal="fixed:0.2,0.4,0.6", obs_mode="pixels",
                        frame_stack=2, seed=1)
    assert env.agents == ["player_0", "player_1", "player_2"]
    wrapped, games, steps = LogWrapper(env), 2, 60
    reset_keys = jax.random.split(jax.random.PRNGKey(4), games)
    obs, state = jax.jit(jax.vmap(wrapped.reset))(reset_keys)
    step = jax.jit(jax.vmap(wrapped.step))
    record = {"key": [], "obs": [], "action": [], "reward": [], "done": [], "returned": []}
    rng = jax.random.PRNGKey(5)
    for _ in range(steps):
        rng, k_act, k_step = jax.random.split(rng, 3)
        actions = {a: jax.random.randint(k, (games,), 0, 8)
                   for a, k in zip(env.agents, jax.random.split(k_act, 3), strict=True)}
        keys = jax.random.split(k_step, games)
        record["obs"].append(obs)
        obs, state, reward, done, info = step(keys, state, actions)
        for name, value in (("key", keys), ("action", actions), ("reward", reward),
                            ("done", done), ("returned", info["returned_episode_returns"])):
            record[name].append(value)
    stack = {k: jax.tree.map(lambda *x: np.stack(x), *v) for k, v in record.items()}
    episodes = replay(env, reset_keys, stack["key"], stack["action"],
                      rates=jnp.asarray([0.2, 0.4, 0.6], jnp.float32))
    assert check_replay(env, episodes, stack["obs"], stack["reward"], stack["done"],
                        stack["returned"]) == games
    features = stack["obs"]["player_0"]["features"]  # the rates are set from the first step
    np.testing.assert_allclose(features[:, :, 1:4], np.broadcast_to([0.2, 0.4, 0.6],
                                                                    features[:, :, 1:4].shape))
    assert stack["obs"]["player_0"]["image"].shape == (steps, games, 88, 88, 6)


def _one_episode(env: SEDJaxMARLEnv, seed: int):
    """One episode with random actions (the principal's too), stepping `step_env`."""
    obs, state = env.reset(jax.random.PRNGKey(seed))
    step = jax.jit(env.step_env)
    rng, out = jax.random.PRNGKey(seed + 1), []
    while True:
        rng, k_act, k_step = jax.random.split(rng, 3)
        actions = {a: env.action_space(a).sample(k)
                   for a, k in zip(env.agents, jax.random.split(k_act, env.num_agents),
                                   strict=True)}
        obs_next, state, reward, dones, info = step(k_step, state, actions)
        out.append(_np((obs, actions, reward, info)))
        obs = obs_next
        if bool(dones["__all__"]):
            return out


def test_taxes_arrive_at_the_periods_last_step_and_the_principal_return_telescopes():
    env = SEDJaxMARLEnv(num_players=4, episode_length=100, tax_period=50,
                        principal="learned", seed=7)
    steps = _one_episode(env, seed=11)
    assert len(steps) == 100 + 2  # two principal turns
    n, k = 4, env.config.num_rate_levels
    total_apples, principal_return, period_apples, rates = np.zeros(n), 0.0, np.zeros(n), None
    taxed_periods = 0
    for obs, actions, reward, info in steps:
        acted = info["acted"]
        if obs[PRINCIPAL]["turn"][0] == 1.0:  # its turn: only it acts, nobody is paid
            assert acted.tolist() == [False] * n + [True]
            assert all(reward[a] == 0.0 for a in env.agents)
            rates = actions[PRINCIPAL] / (k - 1)
            period_apples[:] = 0.0
            continue
        assert acted.tolist() == [True] * n + [False]
        apples, r_tax = info["apples"][:n], info["r_tax"][:n]
        period_apples += apples
        total_apples += apples
        principal_return += reward[PRINCIPAL]
        position = obs["player_0"]["features"][4]  # in the period, before this step
        if np.isclose(position, (env.config.tax_period - 1) / env.config.tax_period):
            want = tax.redistribute(period_apples, rates=rates) - period_apples
            np.testing.assert_allclose(r_tax - apples, want, atol=1e-5)
            taxed_periods += bool(np.abs(want).max() > 0)
        else:
            np.testing.assert_array_equal(r_tax, apples)
    assert total_apples.sum() > 0 and taxed_periods > 0  # there was something to tax
    eta = voting.mean_vote(env.config.selfishness)
    np.testing.assert_allclose(principal_return, welfare.interpolated(total_apples, eta),
                               rtol=1e-5)


def test_a_random_schedule_draws_rate_levels_from_the_step_keys():
    env = SEDJaxMARLEnv(**GAME, principal="random", obs_format="flat", seed=2)
    rates = []
    for seed in (0, 0, 1):
        obs, _ = env.reset(jax.random.PRNGKey(seed))
        features = np.asarray(obs["player_0"][-6:])  # flat: .., sigma, rates (3), pos, ready
        rates.append(features[1:4])
    levels = np.asarray(env.config.rate_levels, np.float32)
    assert all(np.isin(r, levels).all() for r in rates)
    np.testing.assert_array_equal(rates[0], rates[1])  # same key, same draw
    assert not np.array_equal(rates[0], rates[2])


def test_spaces_hold_the_observations_and_flat_is_the_dict_joined(learned_env):
    env = learned_env
    assert env.agents == ["player_0", "player_1", "player_2", PRINCIPAL]
    assert env.agent_classes == {"players": env.agents[:3], "principal": [PRINCIPAL]}
    assert env.action_space("player_1").n == 8
    assert env.action_space(PRINCIPAL).shape == (3,)
    shapes = env.twin.obs_shapes()
    assert env.observation_space("player_0").spaces["image"].shape == shapes["player_image"][1:]
    assert env.observation_space(PRINCIPAL).spaces["features"].shape == (2 * 3 + 3 + 2,)
    flat = SEDJaxMARLEnv(**GAME, principal="learned", seed=3, obs_format="flat")
    key = jax.random.PRNGKey(9)
    obs, state = jax.jit(env.reset)(key)
    flat_obs, _ = jax.jit(flat.reset)(key)
    for _ in range(3):
        for a in env.agents:
            assert bool(env.observation_space(a).contains(obs[a])), a
            assert bool(flat.observation_space(a).contains(flat_obs[a])), a
            parts = [p for p in ("image", "features", "turn") if p in obs[a]]  # documented
            assert sorted(parts) == sorted(obs[a])
            joined = np.concatenate([np.ravel(obs[a][p]).astype(np.float32) for p in parts])
            np.testing.assert_array_equal(np.asarray(flat_obs[a]), joined)
            assert flat.observation_space(a).shape == joined.shape
        key, k_act = jax.random.split(key)
        actions = {a: env.action_space(a).sample(k_act) for a in env.agents}
        obs, state, *_ = jax.jit(env.step)(key, state, actions)
        flat_obs = flat.get_obs(state)  # the same game state, seen flat


def test_ctrollout_manager_batches_the_flat_env():
    env = SEDJaxMARLEnv(**GAME, principal="none", obs_format="flat", seed=2)
    manager = CTRolloutManager(env, batch_size=3)
    obs, state = manager.batch_reset(jax.random.PRNGKey(0))
    dim = env.observation_space("player_0").shape[0]
    for _ in range(2):
        actions = {a: manager.batch_sample(jax.random.PRNGKey(3), a) for a in env.agents}
        obs, state, reward, dones, info = manager.batch_step(jax.random.PRNGKey(1), state,
                                                              actions)
        raw = jax.vmap(env.get_obs)(state)
        for i, a in enumerate(env.agents):  # its padded observation plus a one-hot id
            np.testing.assert_array_equal(np.asarray(obs[a][:, :dim]), np.asarray(raw[a]))
            np.testing.assert_array_equal(np.asarray(obs[a][:, dim:]),
                                          np.broadcast_to(np.eye(3)[i], (3, 3)))
        np.testing.assert_allclose(np.asarray(reward["__all__"]),
                                   sum(np.asarray(reward[a]) for a in env.agents), rtol=1e-6)
        assert obs["__all__"].shape == (3, 3 * dim)


def test_constructor_takes_game_config_fields_and_rejects_bad_input():
    env = SEDJaxMARLEnv(GameConfig(num_players=2), episode_length=50, tax_period=25,
                        principal=principals.FixedRates([0.1, 0.2, 0.3]))
    assert (env.config.num_players, env.config.episode_length) == (2, 50)
    assert env.config.selfishness is not None  # drawn from the seed, fixed for the env
    with pytest.raises(TypeError, match=r"unknown arguments \['num_playerz'\]"):
        SEDJaxMARLEnv(num_playerz=3)
    with pytest.raises(ValueError, match="tax_period"):
        SEDJaxMARLEnv(episode_length=50, tax_period=30)
    with pytest.raises(ValueError, match="obs_format='image' must be one of"):
        SEDJaxMARLEnv(**GAME, obs_format="image")
    with pytest.raises(ValueError, match="obs_mode='rgb' must be one of"):
        SEDJaxMARLEnv(**GAME, obs_mode="rgb")
    with pytest.raises(ValueError, match=r"tax_cap=1.5 is outside \[0, 1\]"):
        SEDJaxMARLEnv(**GAME, tax_cap=1.5)
    with pytest.raises(ValueError, match="principal 'best'"):
        SEDJaxMARLEnv(**GAME, principal="best")
    with pytest.raises(ValueError, match="has 2 rates; the game has 3 brackets"):
        SEDJaxMARLEnv(**GAME, principal=principals.FixedRates([0.1, 0.2]))

    class HostPrincipal:
        def __call__(self, observation):
            return np.zeros(3)

        def reset(self, seed):
            pass

    with pytest.raises(TypeError, match="a host-side Principal cannot run under jit"):
        SEDJaxMARLEnv(**GAME, principal=HostPrincipal())
    env = SEDJaxMARLEnv(**GAME, principal="none")
    _, state = env.reset(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"actions lack \['player_2'\]"):
        env.step(jax.random.PRNGKey(0), state, {"player_0": 0, "player_1": 0})


def test_a_jittable_schedule_sees_the_principal_observation():
    seen_shapes = {}

    def schedule(key, observation):
        seen_shapes.update({k: v.shape for k, v in observation.items()})
        return jnp.full(3, 0.5) * (observation["features"][-1] == 0)  # 0.5 in period 0

    env = SEDJaxMARLEnv(**dataclasses.asdict(GameConfig(**GAME)), principal=schedule)
    obs, state = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(obs["player_0"]["features"][1:4]), [0.5] * 3)
    assert seen_shapes == {"image": env.twin.obs_shapes()["principal_image"],
                           "features": env.twin.obs_shapes()["principal_features"]}
