"""The twin's SED layer (`sed_meltingpot.twin.sed`) is the game of `SEDGame` (issue 9, item 2).

Two kinds of checks:

* one definition per formula: the array-namespace cores of tax.py, rewards.py,
  welfare.py, voting.py and constraints.py give the same numbers with jax.numpy as
  the validated numpy API does, on the same random inputs (float64 under
  `jax.enable_x64`, where the two must agree to the last bits but for summation order,
  and the twin's float32);
* replay: an episode of the Lua substrate played through `SEDMultiAgentEnv` (which
  wraps `SEDGame`) with random actions and a scripted principal (random levels each
  period) is fed, step by step, into the twin's pure SED update (`SEDTwin.sed_step`)
  with that step's apples eaten, NEARBY, ZAPPED and READY_TO_SHOOT. Every per-step
  reward, tax, transfer, rate, principal reward, objective, feature vector and the
  episode metrics must equal the reference's (float32 tolerance). An end-to-end test
  runs `SEDTwin` with the real twin world from the Lua start state instead.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sed_meltingpot.core import constraints, rewards, tax, voting, welfare
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.twin.sed import SEDTwin

# Few distinct shapes (each new shape costs a JAX compile); values vary freely.
SETTINGS = settings(max_examples=30, deadline=None)
PLAYERS = st.sampled_from([1, 7])
RTOL = ATOL = 1e-5  # float32 twin vs float64 SEDGame


# ------------------------------------------------------------ one definition


@st.composite
def tax_case(draw):
    b = draw(st.sampled_from([1, 3]))
    edges = np.cumsum(draw(st.lists(st.floats(0.5, 30), min_size=b, max_size=b)))
    tau = np.concatenate([[draw(st.floats(-5, 5))], edges])
    tau[1:] += tau[0]
    if draw(st.booleans()):
        tau[-1] = np.inf
    n = draw(PLAYERS)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    income = rng.uniform(-10, 120, size=(2, n))
    if draw(st.booleans()):
        income = np.round(income)
    rates = rng.choice([rng.uniform(0, 1, b), np.round(rng.uniform(0, 1, b), 1)])
    return income, rates, tau


@SETTINGS
@given(tax_case())
def test_tax_core_numpy_equals_jax(case):
    income, rates, tau = case
    want = tax.bracket_tax(income, rates, tau)
    want_transfers = want.mean(axis=-1, keepdims=True) - want
    with jax.enable_x64(True):
        got = tax.bracket_tax_core(jnp.asarray(income), jnp.asarray(rates),
                                   jnp.asarray(tau[:-1]), jnp.asarray(np.diff(tau)), jnp)
        got_transfers = tax.transfers_core(got, jnp)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(np.asarray(got_transfers), want_transfers, rtol=1e-12,
                                   atol=1e-11)
    got32 = tax.bracket_tax_core(jnp.asarray(income, jnp.float32), jnp.asarray(rates, jnp.float32),
                                 jnp.asarray(tau[:-1], jnp.float32),
                                 jnp.asarray(np.diff(tau), jnp.float32), jnp)
    np.testing.assert_allclose(np.asarray(got32), want, rtol=1e-5, atol=1e-4)
    # The transfers balance the budget: sum_i r_tax,i == sum_i a_i (paper Section 4).
    np.testing.assert_allclose(want_transfers.sum(-1), 0.0, atol=1e-9)


@st.composite
def mix_case(draw):
    n = draw(PLAYERS)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    batch = draw(st.sampled_from([(), (3,)]))
    r_tax = rng.normal(0, 3, size=batch + (n,))
    sigma = rng.uniform(0, 1, n)
    visible = rng.uniform(size=batch + (n, n)) < draw(st.floats(0, 1))
    return r_tax, sigma, visible, draw(st.sampled_from(["sum", "mean"]))


@SETTINGS
@given(mix_case())
def test_eq8_core_numpy_equals_jax(case):
    r_tax, sigma, visible, aggregate = case
    want = rewards.mix_rewards(r_tax, sigma, visible, neighbour_aggregate=aggregate)
    with jax.enable_x64(True):
        got = rewards.mix_rewards_core(jnp.asarray(r_tax), jnp.asarray(sigma),
                                       jnp.asarray(visible), aggregate, jnp)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13, atol=1e-12)
    got32 = rewards.mix_rewards_core(jnp.asarray(r_tax, jnp.float32),
                                     jnp.asarray(sigma, jnp.float32), jnp.asarray(visible),
                                     aggregate, jnp)
    np.testing.assert_allclose(np.asarray(got32), want, rtol=1e-5, atol=1e-5)
    # Independent check of Eq. 8 with loops (sum) for one game.
    if aggregate == "sum" and r_tax.ndim == 1:
        n = len(sigma)
        loop = [sigma[i] * r_tax[i] + (1 - sigma[i]) * sum(
            r_tax[j] for j in range(n) if j != i and visible[i, j]) for i in range(n)]
        np.testing.assert_allclose(want, loop, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.sampled_from([1, 4, 7]), st.booleans())
def test_welfare_vote_and_projection_cores_numpy_equals_jax(seed, n, zeros):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 40, size=(2, n)).astype(float)
    if zeros:
        u[0] = 0.0
    eta = float(rng.uniform())
    sigma = rng.uniform(0, 1, n)
    if zeros:
        sigma[: n // 2] = 0.5  # ties at the majority rule's boundary
    proposed, reference = rng.uniform(-0.2, 1.2, 3), rng.uniform(0, 1, 3)
    delta = float(rng.choice([0.0, 0.1, 0.5, np.inf]))
    want = {
        "interpolated": welfare.interpolated(u, eta),
        "nash": welfare.nash_welfare(u),
        "gini": welfare.gini(u),
        "mean": voting.mean_vote(sigma),
        "median": voting.median_vote(sigma),
        "majority": voting.majority_vote(sigma),
        "linf": constraints.project_rates(proposed, reference, delta, "linf"),
    }
    for x64, rtol in ((True, 1e-13), (False, 1e-5)):
        with jax.enable_x64(x64):
            dt = jnp.float64 if x64 else jnp.float32
            ju, js = jnp.asarray(u, dt), jnp.asarray(sigma, dt)
            got = {
                "interpolated": welfare.WELFARE_CORES["interpolated"](ju, eta, jnp),
                "nash": welfare.WELFARE_CORES["nash"](ju, eta, jnp),
                "gini": welfare.gini_core(ju, jnp),
                "mean": voting.VOTE_CORES["mean"](js, jnp),
                "median": voting.VOTE_CORES["median"](js, jnp),
                "majority": voting.VOTE_CORES["majority"](js, jnp),
                "linf": constraints.project_linf_core(
                    jnp.asarray(proposed, dt), jnp.asarray(reference, dt), delta, jnp),
            }
            for key, value in want.items():
                np.testing.assert_allclose(np.asarray(got[key]), value, rtol=rtol,
                                           atol=rtol, err_msg=key)
    # The other registered objectives' cores against the numpy functions.
    for name in ("utilitarian", "egalitarian"):
        np.testing.assert_allclose(
            np.asarray(welfare.WELFARE_CORES[name](jnp.asarray(u, jnp.float32), eta, jnp)),
            welfare.get_welfare(name)(u, eta), rtol=1e-6)


def test_twin_sed_imports_no_engine():
    code = textwrap.dedent("""
        import sys
        import sed_meltingpot.twin.sed
        bad = [m for m in ("meltingpot", "dmlab2d", "tensorflow", "ray", "gymnasium")
               if m in sys.modules]
        assert not bad, bad
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_unsupported_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="divergence_norm='l1'"):
        SEDTwin(GameConfig(divergence_delta=0.2, divergence_norm="l1"))
    with pytest.raises(ValueError, match="obs_mode='rgb'"):
        SEDTwin(GameConfig(), obs_mode="rgb")
    with pytest.raises(ValueError, match="frame_stack=0"):
        SEDTwin(GameConfig(), frame_stack=0)


def test_custom_voting_rule_runs_on_the_host():
    name = "twin_sed_test_max"
    if name not in voting.VOTING_RULES:
        voting.register_voting_rule(name, lambda sigma: float(np.max(sigma)))
    sigma = (0.1, 0.2, 0.9)
    twin = SEDTwin(GameConfig(num_players=3, voting_rule=name, selfishness=sigma,
                              principal_weight=0.5, principal_type=0.3))
    assert float(jax.jit(twin.vote)(jnp.asarray(sigma))) == pytest.approx(0.5 * 0.9 + 0.5 * 0.3)
    free = SEDTwin(GameConfig(num_players=3, voting_rule=name))
    with pytest.raises(ValueError, match=f"voting_rule='{name}' has no JAX form"):
        jax.jit(free.vote)(jnp.asarray(sigma))
    assert float(free.sed_reset(np.asarray(sigma), np.ones(3)).eta) == pytest.approx(0.9)


def test_a_fixed_eta_input_overrides_the_vote_every_round():
    """`fixed_eta` (what ppo.compile_game turns a `fixed:<eta>` rule into) gives the eta
    of that rule through SEDGame's formula (1 - w) eta + w theta, also in the second
    round of a continual episode; NaN leaves the players' vote (the mean)."""
    sigma = np.array([0.1, 0.5, 0.6], np.float32)
    game = GameConfig(num_players=3, episode_length=4, tax_period=2, rounds_per_episode=2,
                      principal_weight=0.25, principal_type=0.8)
    twin = SEDTwin(game)
    everyone, zapped = np.ones((3, 3), bool), np.zeros(3, bool)
    for fixed in (0.0, 0.3, 1.0, float("nan")):
        inner = sigma.mean() if np.isnan(fixed) else fixed
        want = 0.75 * inner + 0.25 * 0.8
        s = jax.jit(twin.sed_reset)(sigma, np.ones(3), np.float32(fixed))
        assert float(s.eta) == pytest.approx(want, abs=1e-6)
        for _ in range(2):  # the first round's two steps: round 2 votes again
            s = twin.sed_set_rates(s, np.zeros(3), 1.0)
            s, *_ = twin.sed_step(s, np.ones(3), everyone, zapped, np.ones(3))
        assert int(s.round_index) == 1 and float(s.eta) == pytest.approx(want, abs=1e-6)
        if not np.isnan(fixed):  # the same eta as the rule compiled as a constant
            rule = SEDTwin(dataclasses.replace(game, voting_rule=f"fixed:{fixed}"))
            assert float(rule.vote(sigma)) == pytest.approx(want, abs=1e-6)


# ------------------------------------------------------------------ replay


def close(got, want, what, scale=1.0):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=RTOL, atol=ATOL * max(1.0, scale), err_msg=what)


def play_reference(game: GameConfig, *, seed: int, action_seed: int, cap: float,
                   frame_stack: int = 1, zap: bool = True, pixels_per_tile: int = 1,
                   debug: bool = False):
    """One episode of SEDMultiAgentEnv (learned-principal turn order) with random
    actions and random levels; records everything per step. `debug` builds the
    substrate with debug observations and records the Lua state (`LuaFrame`) of every
    step in record["frames"] (0 = reset), so that the twin world can start from it."""
    from lua_reference import frame_from_timestep

    from sed_meltingpot.envs.rllib_env import PRINCIPAL, SEDMultiAgentEnv
    from sed_meltingpot.game import substrate

    get_config = substrate.get_config
    if debug:
        substrate.get_config = lambda *a, **k: get_config(*a, debug_observations=True, **k)
    try:
        env = SEDMultiAgentEnv({"game": dict(vars(game)), "seed": seed,
                                "principal": "learned", "frame_stack": frame_stack,
                                "pixels_per_tile": pixels_per_tile})
    finally:
        substrate.get_config = get_config
    env.set_tax_cap(cap)
    results, frames = [], []

    def hook(g, result):
        results.append(result)
        if debug:
            frames.append(frame_from_timestep(g._last_timestep, g.episode_step))

    env.step_hooks.append(hook)
    rng = np.random.default_rng(action_seed)
    b, k = game.num_brackets, game.num_rate_levels
    obs, _ = env.reset()
    record = {"start_ready": np.array([o["READY_TO_SHOOT"]
                                       for o in env.game.player_observations()]),
              "sigma": env.game.selfishness.copy(), "decisions": [], "steps": [],
              "frames": frames}
    if debug:
        frames.append(frame_from_timestep(env.game._last_timestep, 0))
    while True:
        if PRINCIPAL in obs:
            levels = rng.integers(0, k, b)
            principal_obs = obs[PRINCIPAL]
            obs, *_ , info = env.step({PRINCIPAL: levels})
            record["decisions"].append({
                "step": env.game.episode_step, "levels": levels,
                "principal_features": principal_obs["features"],
                "principal_image": principal_obs["image"],
                "rates": info[PRINCIPAL]["rates"],
                "player_features": np.stack([obs[a]["features"] for a in env.players]),
                "player_image": np.stack([obs[a]["image"] for a in env.players])})
            continue
        actions = rng.integers(0, 8 if zap else 7, game.num_players)
        obs, reward, done, truncated, _ = env.step(
            {a: int(x) for a, x in zip(env.players, actions, strict=True)})
        result = results[-1]
        step = {"actions": actions, "result": result,
                "rewards": np.array([reward[a] for a in env.players]),
                "principal_reward": reward[PRINCIPAL],
                "ready": np.array([o["READY_TO_SHOOT"] for o in result.observations])}
        if env.players[0] in obs:
            step["player_features"] = np.stack([obs[a]["features"] for a in env.players])
            step["player_image"] = np.stack([obs[a]["image"] for a in env.players])
        if PRINCIPAL in obs:
            step["principal_features"] = obs[PRINCIPAL]["features"]
            step["principal_image"] = obs[PRINCIPAL]["image"]
        record["steps"].append(step)
        if done["__all__"] or truncated["__all__"]:
            record["metrics"] = env.last_episode_metrics
            record["periods"] = env.game.episode_periods
            env.close()
            return record


def check_step(ref_step, out) -> None:
    """Compares the twin's outputs of one step with the reference's."""
    _, rew, principal_reward, done, info = out
    result = ref_step["result"]
    i = result.info
    scale = abs(float(i.objective))
    where = f"step {i.step}"
    close(rew, ref_step["rewards"], f"{where}: Eq. 8 rewards", scale)
    close(principal_reward, ref_step["principal_reward"], f"{where}: principal reward", scale)
    assert bool(done) == bool(result.done), where
    close(info["r_tax"], i.r_tax, f"{where}: r_tax")
    close(info["rates"], i.rates, f"{where}: rates")
    close(info["eta"], i.eta, f"{where}: eta")
    close(info["objective"], i.objective, f"{where}: objective", scale)
    assert bool(info["period_end"]) == i.period_end, where
    assert bool(info["round_end"]) == i.round_end, where
    assert int(info["period"]) == i.period and int(info["round"]) == i.round, where
    if i.period_end:
        rec = i.period_record
        close(info["taxes"], rec.taxes, f"{where}: taxes")
        close(info["transfers"], rec.transfers, f"{where}: transfers")
        close(info["tax_revenue"], rec.tax_revenue, f"{where}: tax revenue")
    else:
        assert float(info["tax_revenue"]) == 0.0 and not np.any(np.asarray(info["taxes"]))
    if "player_features" in ref_step:
        close(info["player_features"], ref_step["player_features"], f"{where}: features")
    if "principal_features" in ref_step:
        close(info["principal_features"], ref_step["principal_features"],
              f"{where}: principal features")


def replay_signals(game: GameConfig, record) -> None:
    """Feeds the reference's per-step signals into the twin's SED layer."""
    twin = SEDTwin(game)

    @jax.jit
    def sed_step(s, apples, nearby, zapped, ready):
        s, rew, principal_reward, done, info = twin.sed_step(s, apples, nearby, zapped, ready)
        info = info | {"player_features": twin.player_features(s),
                       "principal_features": twin.principal_features(s)}
        return s, rew, principal_reward, done, info

    @jax.jit
    def set_rates(s, levels, cap):
        s = twin.sed_set_rates(s, twin.levels_to_rates(levels), cap)
        return s, twin.player_features(s)

    s = twin.sed_reset(record["sigma"], record["start_ready"])
    decisions = {d["step"]: d for d in record["decisions"]}
    cap = record["cap"]
    for t, ref_step in enumerate(record["steps"]):
        if t in decisions:
            d = decisions[t]
            assert bool(s.principal_due), f"step {t}: principal due in SEDGame, not in twin"
            close(twin.principal_features(s), d["principal_features"],
                  f"step {t}: principal features")
            s, features = set_rates(s, d["levels"], cap)
            close(s.rates, d["rates"], f"step {t}: effective rates")
            close(features, d["player_features"], f"step {t}: features")
        else:
            assert not bool(s.principal_due), f"step {t}: twin wants a principal turn"
        result = ref_step["result"]
        i = result.info
        out = jax.device_get(sed_step(s, i.apples, i.nearby, i.zapped,
                                      ref_step["ready"]))
        check_step(ref_step, out)
        s = out[0]
    check_metrics(twin, s, record)


def check_metrics(twin: SEDTwin, s, record) -> None:
    want = record["metrics"]
    got = jax.jit(twin.episode_metrics)(s)
    assert set(want) <= set(got), set(want) - set(got)
    for key, value in want.items():
        g = np.asarray(got[key])
        if key == "period_rates":
            g = g[: int(s.metrics.periods)]
        np.testing.assert_allclose(g.astype(float), np.asarray(value, float), rtol=RTOL,
                                   atol=ATOL * max(1.0, float(np.nanmax(np.abs(
                                       np.asarray(value, float)), initial=1.0))),
                                   err_msg=f"episode metric {key}")
    # Independent of both implementations: the tax revenue is the sum of the
    # recorded periods' taxes, and the budget balances over the episode.
    np.testing.assert_allclose(float(got["tax_revenue"]),
                               sum(p.taxes.sum() for p in record["periods"]), atol=1e-4)
    np.testing.assert_allclose(float(np.asarray(got["income_per_player"]).sum()),
                               float(np.asarray(got["apples_per_player"]).sum()), atol=1e-3)


CASES = {
    # name: (GameConfig, tax cap, Lua seed)
    "paper_brackets_cap": (GameConfig(episode_length=200, tax_period=50,
                                      thresholds=(0, 1, 2, 10000)), 0.6, 3),
    "continual_rounds_median_taxed": (GameConfig(
        episode_length=200, tax_period=25, rounds_per_episode=2, thresholds=(0, 1, 3, 10000),
        voting_rule="median", welfare_on="taxed"), 1.0, 5),
    "two_brackets_mean_aggregate": (GameConfig(
        episode_length=200, tax_period=40, thresholds=(0, 2, 10000), num_rate_levels=5,
        neighbour_aggregate="mean", voting_rule="majority", principal_weight=0.3,
        principal_type=0.9), 0.8, 7),
    "four_brackets_linf_nash": (GameConfig(
        episode_length=200, tax_period=50, num_players=5, thresholds=(0, 1, 2, 4, 10000),
        divergence_delta=0.3, reference_rates=(0.2, 0.0, 0.5, 1.0), welfare="nash"), 1.0, 11),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sed_layer_replays_sedgame(name):
    game, cap, seed = CASES[name]
    record = play_reference(game, seed=seed, action_seed=seed + 100, cap=cap)
    record["cap"] = cap
    # The replay must exercise taxes: some period had a positive revenue.
    assert any(p.tax_revenue > 0 for p in record["periods"])
    replay_signals(game, record)


@pytest.mark.slow
def test_sed_layer_replays_sedgame_full_episode():
    game = GameConfig(rounds_per_episode=2, thresholds=(0, 2, 5, 10000))
    record = play_reference(game, seed=1, action_seed=2, cap=0.7)
    record["cap"] = 0.7
    replay_signals(game, record)


# ------------------------------------------------------------- end to end


def test_sedtwin_with_twin_world_equals_sedgame_end_to_end():
    game = GameConfig(episode_length=100, tax_period=25, thresholds=(0, 1, 2, 10000),
                      regrowth_probabilities=(0.0, 0.0, 0.0, 0.0))
    run_end_to_end(game, seed=4, cap=0.9, frame_stack=2, obs_mode="tiles")


@pytest.mark.slow
def test_sedtwin_end_to_end_pixels_continual_rounds():
    game = GameConfig(episode_length=300, tax_period=50, rounds_per_episode=2,
                      thresholds=(0, 1, 3, 10000), regrowth_probabilities=(0.0,) * 4)
    run_end_to_end(game, seed=6, cap=1.0, frame_stack=4, obs_mode="pixels")


def run_end_to_end(game: GameConfig, *, seed: int, cap: float, frame_stack: int,
                   obs_mode: str) -> None:
    """SEDTwin with the real twin world, started from the Lua start state (regrowth off),
    replays a Lua episode: rewards, principal rewards, features and images all equal.

    No zaps (a zapped player respawns at a point the engine draws at random, which the
    twin need not draw alike; tests/test_twin_env.py covers respawns). A move conflict
    is resolved by a random order in both engines: where `SEDTwin.step`'s world differs
    from Lua's, the test looks for a move order under which the twin's world
    (`TwinEnv.step_in_order`) gives Lua's outcome and continues through
    `SEDTwin.step_from` with it (tests/test_twin_env.py checks that conflict rule).
    """

    ppt = {"tiles": 1, "pixels": 8}[obs_mode]
    record = play_reference(game, seed=seed, action_seed=9, cap=cap, frame_stack=frame_stack,
                            zap=False, pixels_per_tile=ppt, debug=True)
    start, *frames = record["frames"]

    twin = SEDTwin(game, obs_mode=obs_mode, frame_stack=frame_stack)
    g, obs = twin.reset_from(twin.env.state_from(**start.twin_fields()), record["sigma"])
    set_levels = jax.jit(twin.set_rate_levels)
    step_fn, step_from = jax.jit(twin.step), jax.jit(twin.step_from)
    env_step = jax.jit(twin.env.step_in_order)
    perm = np.random.default_rng(0).permutation
    orders = [jnp.asarray(perm(game.num_players), jnp.int32) for _ in range(200)]

    def same_world(state, frame) -> bool:
        return bool(np.array_equal(state.pos, frame.pos)
                    and np.array_equal(state.orient, frame.orient)
                    and np.array_equal(state.apples, frame.apples))

    decisions = {d["step"]: d for d in record["decisions"]}
    key = jax.random.PRNGKey(0)
    for t, ref in enumerate(record["steps"]):
        if t in decisions:
            d = decisions[t]
            assert bool(twin.principal_due(g)), f"step {t}"
            np.testing.assert_array_equal(np.asarray(obs.principal_image), d["principal_image"],
                                          err_msg=f"step {t}: principal image")
            close(obs.principal_features, d["principal_features"], f"step {t}: principal")
            g, obs = set_levels(g, jnp.asarray(d["levels"], jnp.int32), cap)
            close(obs.player_features, d["player_features"], f"step {t}: player features")
            np.testing.assert_array_equal(np.asarray(obs.player_image), d["player_image"],
                                          err_msg=f"step {t}: player images")
        key, k = jax.random.split(key)
        actions = jnp.asarray(ref["actions"], jnp.int32)
        result = jax.device_get(step_fn(g, actions, k))
        if not same_world(result[0].env, frames[t]):
            for order in orders:
                env_state, out = env_step(g.env, actions, k, order)
                if same_world(jax.device_get(env_state), frames[t]):
                    result = jax.device_get(step_from(g, env_state, out))
                    break
            else:
                pytest.fail(f"step {t + 1}: no move order gives Lua's world")
        g, obs, rew, principal_reward, done, info = result
        check_step(ref, (g.sed, rew, principal_reward, done, info
                         | {"player_features": obs.player_features,
                            "principal_features": obs.principal_features}))
        if "player_image" in ref:
            np.testing.assert_array_equal(obs.player_image, ref["player_image"],
                                          err_msg=f"step {t + 1}: player images")
        if "principal_image" in ref:
            np.testing.assert_array_equal(obs.principal_image, ref["principal_image"],
                                          err_msg=f"step {t + 1}: principal image")
    assert bool(done)
    check_metrics(twin, g.sed, record)


def test_sed_step_hand_worked_period():
    """One tax period worked by hand (paper Section 4: bracket tax, even redistribution,
    Eq. 8, W_eta with eta = mean sigma), plus the principal's turn order."""
    game = GameConfig(num_players=2, episode_length=4, tax_period=2, thresholds=(0, 1, 100),
                      num_rate_levels=3)
    twin = SEDTwin(game)
    s = twin.sed_reset(np.array([1.0, 0.5]), np.ones(2))
    assert float(s.eta) == 0.75 and bool(s.principal_due)
    s = twin.sed_set_rates(s, twin.levels_to_rates(np.array([1, 2])), 1.0)  # (0.5, 1.0)
    np.testing.assert_allclose(s.rates, [0.5, 1.0])
    everyone = np.ones((2, 2), bool)
    s, rew, pr, done, info = twin.sed_step(s, np.array([2.0, 0.0]), everyone,
                                           np.zeros(2, bool), np.ones(2))
    # No tax mid-period: r_tax = apples; r_0 = 2, r_1 = 0.5 * 0 + 0.5 * 2; W = 0.75 * 2 + 0.
    np.testing.assert_allclose(rew, [2.0, 1.0])
    assert float(pr) == pytest.approx(1.5) and not bool(done)
    # Not due mid-period: a principal action changes nothing.
    assert not bool(s.principal_due)
    np.testing.assert_allclose(twin.sed_set_rates(s, np.ones(2), 1.0).rates, [0.5, 1.0])
    s, rew, pr, done, info = twin.sed_step(s, np.array([1.0, 1.0]), everyone,
                                           np.zeros(2, bool), np.ones(2))
    # Period incomes (3, 1): T = 0.5 * 1 + 1.0 * 2 = 2.5 and 0.5 * 1 = 0.5; mean 1.5;
    # transfers (-1, +1); r_tax = (0, 2); r_0 = 0, r_1 = 0.5 * 2 + 0.5 * 0 = 1.
    np.testing.assert_allclose(info["taxes"], [2.5, 0.5])
    np.testing.assert_allclose(info["transfers"], [-1.0, 1.0])
    np.testing.assert_allclose(info["r_tax"], [0.0, 2.0])
    np.testing.assert_allclose(rew, [0.0, 1.0])
    # W over the round's apples (3, 1): 0.75 * 4 + 0.25 * 1 = 3.25, so 3.25 - 1.5.
    assert float(pr) == pytest.approx(1.75) and bool(info["period_end"])
    assert bool(s.principal_due)
    np.testing.assert_allclose(twin.principal_features(s), np.float32(
        [np.log1p(3), np.log1p(1), np.log1p(3), np.log1p(1), 0.75, 0.5, 1.0, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(twin.player_features(s),
                               [[1.0, 0.5, 1.0, 0.0, 1.0], [0.5, 0.5, 1.0, 0.0, 1.0]])


def test_lazy_principal_image_matches_the_rendered_world():
    game = GameConfig(episode_length=4, tax_period=2)
    eager = SEDTwin(game)
    lazy = SEDTwin(game, principal_image_every_step=False)
    key, sigma = jax.random.PRNGKey(3), jnp.linspace(0.0, 1.0, game.num_players)
    g, _ = lazy.reset(key, sigma)
    g, _ = lazy.set_rate_levels(g, jnp.array([1, 2, 3]), 1.0)
    actions = jnp.arange(game.num_players, dtype=jnp.int32) % 8
    g2, obs, *_ = jax.jit(lazy.step)(g, actions, key)
    ref_obs = eager.observe(g2)  # what the default SEDTwin.step returns for this state
    assert not np.any(np.asarray(obs.principal_image))
    np.testing.assert_array_equal(lazy.principal_image(g2), ref_obs.principal_image)
    np.testing.assert_array_equal(obs.player_image, ref_obs.player_image)
    np.testing.assert_array_equal(obs.principal_features, ref_obs.principal_features)


def test_fixed_eta_rule_votes_on_device():
    twin = SEDTwin(GameConfig(num_players=3, voting_rule="fixed:0.25", principal_weight=0.5,
                              principal_type=0.75))
    sigma = jnp.asarray([0.9, 0.8, 0.7])  # ignored by fixed:<eta>
    assert float(jax.jit(twin.vote)(sigma)) == pytest.approx(0.5 * 0.25 + 0.5 * 0.75)
    assert twin.host_vote(np.asarray(sigma)) == pytest.approx(0.5)
