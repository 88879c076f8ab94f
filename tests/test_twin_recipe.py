"""The principal's training recipe on the jax engine (sed_meltingpot/training/jax/recipe.py,
issue 16): schedule boundaries by hand, the terminal round end, eta sampling, the
players-first phase, the no-tax initialisation, and one CLI run with every option on."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs import runlog
from sed_meltingpot.runs.train_config import TrainConfig, preset
from sed_meltingpot.training.jax import networks, ppo
from sed_meltingpot.training.jax import recipe as recipes
from sed_meltingpot.training.jax.recipe import PrincipalRecipe
from tests.twin_toy_game import ToyGame

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DEFAULT = PrincipalRecipe()


def plan(iteration, recipe=DEFAULT, *, total=10, learned=True, anneal=True,
         start=0.1, fraction=0.5):
    s = recipes.schedule(iteration, recipe, num_iterations=total, learned=learned,
                         tax_cap_anneal=anneal, tax_cap_start=start, tax_cap_end=1.0,
                         tax_cap_fraction=fraction)
    return {k: float(v) for k, v in s._asdict().items()}


# ------------------------------------------------------------ schedule by hand
def test_two_phase_boundaries_and_the_cap_ramp_by_hand():
    # 10 iterations, phase 1 = round(0.3 * 10) = 3; phase 2 = iterations 3..9 (7 long);
    # the cap ramps 0.1 -> 1 over the first half of phase 2 (3.5 iterations).
    r = PrincipalRecipe(players_only_fraction=0.3)
    assert recipes.phase1_iterations(r, 10, learned=True) == 3
    assert recipes.phase1_iterations(r, 10, learned=False) == 0
    for it in (0, 1, 2):
        p = plan(it, r)
        assert p["principal_active"] == 0.0 and p["tax_cap"] == 0.0
    # progress = (it - 3) / 7; cap = 0.1 + 0.9 * min(1, progress / 0.5)
    for it in (3, 4, 5, 6, 9):
        want = 0.1 + 0.9 * min(1.0, (it - 3) / 7 / 0.5)
        p = plan(it, r)
        assert p["principal_active"] == 1.0
        assert p["tax_cap"] == pytest.approx(want, abs=1e-6), it
    assert plan(9, r)["tax_cap"] == 1.0
    # No anneal: the full cap as soon as the principal joins.
    assert plan(2, r, anneal=False)["tax_cap"] == 0.0
    assert plan(3, r, anneal=False)["tax_cap"] == 1.0
    # A scripted principal: no phase 1, no cap (as on the RLlib path).
    p = plan(0, r, learned=False)
    assert p["tax_cap"] == 1.0 and p["players_lr_scale"] == 1.0


def test_no_phase_one_is_the_rllib_paths_ramp():
    """players_only_fraction = 0: the cap at iteration i equals ppo.tax_cap_at at env
    steps i x steps per iteration (training/rllib/callbacks.tax_cap's ramp)."""
    r = PrincipalRecipe(players_only_fraction=0.0)
    steps, total = 102, 40
    kw = {"enabled": True, "start": 0.1, "end": 1.0, "fraction": 0.2, "total": total * steps}
    for it in range(total):
        assert plan(it, r, total=total, fraction=0.2)["tax_cap"] == pytest.approx(
            float(ppo.tax_cap_at(it * steps, **kw)), abs=1e-6)


def test_entropy_anneal_lr_schedules_and_the_players_scale_by_hand():
    r = PrincipalRecipe(players_only_fraction=0.2, principal_entropy_coeff=0.1,
                        principal_entropy_final=0.02, principal_entropy_anneal_fraction=0.5,
                        phase2_players_lr_scale=0.25)
    # phase 1 = 2 of 10; phase 2 has 8 iterations; the anneal spans its first 4.
    assert plan(0, r)["principal_entropy_coeff"] == pytest.approx(0.1)
    assert plan(2, r)["principal_entropy_coeff"] == pytest.approx(0.1)
    assert plan(4, r)["principal_entropy_coeff"] == pytest.approx(0.1 - 0.08 * 0.5)
    assert plan(6, r)["principal_entropy_coeff"] == pytest.approx(0.02)
    assert plan(9, r)["principal_entropy_coeff"] == pytest.approx(0.02)
    assert plan(1, r)["players_lr_scale"] == 1.0 and plan(2, r)["players_lr_scale"] == 0.25

    cfg = ppo.TwinTrainConfig(GameConfig(tax_period=50), TrainConfig(
        num_iterations=10, lr=1.0, lr_anneal=False), num_envs=1, rollout_length=100,
        recipe=dataclasses.replace(r, principal_lr=0.5, principal_lr_schedule="linear"))
    assert cfg.phase1_iterations == 2
    # The principal's lr counts its own trained iterations: 0.5 (1 - k / 8).
    for k, want in ((0, 0.5), (2, 0.375), (8, 0.0), (12, 0.0)):
        assert float(ppo.principal_lr(cfg, k)) == pytest.approx(want)
    assert float(ppo.players_lr(cfg, 1)) == pytest.approx(1.0)
    assert float(ppo.players_lr(cfg, 2)) == pytest.approx(0.25)
    constant = dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe,
                                                                   principal_lr_schedule="constant"))
    assert float(ppo.principal_lr(constant, 7)) == pytest.approx(0.5)


def test_the_principals_optimiser_steps_at_its_own_lr():
    """Adam's step for a constant gradient is its lr: the principal's optimiser takes
    0.5 (1 - k / 8) at its k-th trained iteration (3 updates each)."""
    cfg = ppo.TwinTrainConfig(GameConfig(tax_period=50), TrainConfig(
        num_iterations=10, grad_clip=1e9), num_envs=1, rollout_length=100,
        recipe=PrincipalRecipe(players_only_fraction=0.2, principal_lr=0.5,
                               principal_lr_schedule="linear"))
    tx = ppo.make_optimizer(cfg, 3, lambda k: ppo.principal_lr(cfg, k))
    params, state, steps = jnp.zeros(()), None, []
    state = tx.init(params)
    for _ in range(9):
        updates, state = tx.update(jnp.ones(()), state, params)
        steps.append(-float(updates))
    np.testing.assert_allclose(steps, [0.5 * (1 - (k // 3) / 8) for k in range(9)], rtol=1e-3)


def test_principal_gae_terminal_and_truncated_by_hand():
    """Two rounds of two turns in one rollout (round ends at t = 1 and 3), episode end
    at t = 3 only (continual rounds). gamma 1, lambda 1: the advantage is the return to
    the end of the principal's episode minus the value."""
    rewards = jnp.array([[1.0], [2.0], [3.0], [4.0]])
    values = jnp.array([[0.5], [0.5], [0.5], [0.5]])
    round_end = jnp.array([[False], [True], [False], [True]])
    episode_end = jnp.array([[False], [False], [False], [True]])
    finals = jnp.array([[0.0], [9.0], [0.0], [7.0]])
    last = jnp.array([100.0])
    r = PrincipalRecipe(principal_gamma=1.0, principal_lambda=1.0)
    adv, targets = ppo.principal_gae(r, rewards, values, round_end, episode_end, last, finals)
    np.testing.assert_allclose(np.asarray(targets)[:, 0], [3.0, 2.0, 7.0, 4.0])  # no bootstrap
    np.testing.assert_allclose(np.asarray(adv)[:, 0], [2.5, 1.5, 6.5, 3.5])
    truncated = dataclasses.replace(r, principal_round_end="truncated")
    _, targets = ppo.principal_gae(truncated, rewards, values, round_end, episode_end, last,
                                   finals)
    # One episode over both rounds, bootstrapped at its end from the final value 7.
    np.testing.assert_allclose(np.asarray(targets)[:, 0], [17.0, 16.0, 14.0, 11.0])


def test_no_tax_bias_gives_level_zero_its_probability():
    for k, p in ((11, 0.9), (3, 0.5), (5, 0.01)):
        b = recipes.no_tax_bias(k, p)
        probs = np.exp([b] + [0.0] * (k - 1))
        assert probs[0] / probs.sum() == pytest.approx(p)
    with pytest.raises(ValueError, match="probability"):
        recipes.no_tax_bias(11, 1.0)


def test_recipe_validation_names_the_flag():
    for field, value, text in (("principal_lr_schedule", "cosine", "--principal_lr_schedule"),
                               ("principal_round_end", "bootstrap", "--principal_round_end"),
                               ("players_only_fraction", 1.5, "--players_only_fraction"),
                               ("principal_init_no_tax", 1.0, "--principal_init_no_tax"),
                               ("eta_sampling", "0,2", "--eta_sampling"),
                               ("eta_sampling", "sometimes", "--eta_sampling"),
                               ("principal_reward_scale", "per_eta",
                                "--principal_reward_scale"),
                               ("principal_lr", 0.0, "--principal_lr")):
        with pytest.raises(ValueError, match=text):
            dataclasses.replace(PrincipalRecipe(), **{field: value}).validate()


def test_draw_etas_distributions():
    key = jax.random.PRNGKey(3)
    assert np.isnan(np.asarray(recipes.draw_etas("none", key, (4,)))).all()
    uniform = np.asarray(recipes.draw_etas("uniform", key, (4000,)))
    assert 0.0 <= uniform.min() and uniform.max() <= 1.0
    assert abs(uniform.mean() - 0.5) < 0.03 and abs(uniform.var() - 1 / 12) < 0.01
    listed = np.asarray(recipes.draw_etas("0,0.5,1", key, (3000,)))
    values, counts = np.unique(listed, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0])
    assert (np.abs(counts / 3000 - 1 / 3) < 0.04).all()


def test_reward_scale_by_hand():
    """W_eta = eta * sum + (1 - eta) * min over n = 4 players: one apple more for every
    player moves it by 1 at eta 0, 4 at eta 1, 2.5 at eta 0.5."""
    etas = jnp.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(np.asarray(recipes.reward_scale("per_player", etas, 4)),
                               [1.0, 2.5, 4.0])
    np.testing.assert_array_equal(np.asarray(recipes.reward_scale("none", etas, 4)), 1.0)
    # Independently: the change of W_eta when every player's income rises by one.
    before, after = np.array([3.0, 5.0, 8.0, 9.0]), np.array([4.0, 6.0, 9.0, 10.0])
    for eta, scale in zip((0.0, 0.5, 1.0), (1.0, 2.5, 4.0), strict=True):
        change = (eta * after.sum() + (1 - eta) * after.min()
                  - eta * before.sum() - (1 - eta) * before.min())
        assert change == pytest.approx(scale)


def test_remove_eta_trend_leaves_what_is_orthogonal_to_a_line_in_eta():
    # a = 3 + 5 eta + noise, noise orthogonal to 1 and to eta: the noise is what is left.
    etas = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.5])
    noise = np.array([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])
    assert noise.sum() == 0 and (noise * etas).sum() == 0
    out = recipes.remove_eta_trend(jnp.asarray(3 + 5 * etas + noise), jnp.asarray(etas))
    np.testing.assert_allclose(np.asarray(out), noise, atol=1e-5)
    # One eta in the batch: only the mean goes.
    a = np.array([1.0, 4.0, 7.0])
    np.testing.assert_allclose(np.asarray(recipes.remove_eta_trend(
        jnp.asarray(a), jnp.full(3, 0.3))), a - 4.0, atol=1e-6)


# ----------------------------------------------------------- in the trainer
TOY = GameConfig(num_players=3, episode_length=20, tax_period=10)


def toy_functions(recipe: PrincipalRecipe, num_iterations: int = 4, game=TOY, impl=None):
    train = TrainConfig(num_iterations=num_iterations, frame_stack=1, **preset("fast"))
    cfg = ppo.TwinTrainConfig(game, train, num_envs=2, rollout_length=20, recipe=recipe)
    return cfg, ppo.make_functions(cfg, impl or ToyGame(game, "tiles", 1))


def test_phase_one_freezes_the_principal_and_untaxes_the_players():
    cfg, fns = toy_functions(PrincipalRecipe(players_only_fraction=0.5), num_iterations=4)
    state = fns.init(jax.random.PRNGKey(0), jnp.array([0.2, 0.5, 0.8]))
    update = jax.jit(fns.update)
    kernels, caps, rates, active = [], [], [], []
    for _ in range(4):
        before = state.principal_params
        state, m = update(state)
        kernels.append(not np.array_equal(before["params"]["pi"]["kernel"],
                                          state.principal_params["params"]["pi"]["kernel"]))
        caps.append(float(m["tax_cap"]))
        d = m["principal_diagnostics"]
        rates.append(np.asarray(d["mean_rate"]))
        active.append(float(d["active"]))
    assert kernels == [False, False, True, True]  # phase 1 = 2 of 4 iterations
    assert active == [0.0, 0.0, 1.0, 1.0]
    assert caps[:2] == [0.0, 0.0] and caps[2] == pytest.approx(0.1)
    assert (rates[0] == 0).all() and (rates[1] == 0).all() and (rates[2] > 0).any()


def test_per_player_scale_divides_the_principals_reward_in_the_trainer():
    """Same seed, same first rollout: the toy game plays eta 0.5 with 3 players, so the
    principal's rewards under per_player are those under none divided by 2."""
    rewards = {}
    for scale in ("none", "per_player"):
        _, fns = toy_functions(PrincipalRecipe(principal_reward_scale=scale,
                                               principal_eta_baseline=True,
                                               players_only_fraction=0.0))
        state = fns.init(jax.random.PRNGKey(4), jnp.array([0.2, 0.5, 0.8]))
        _, m = jax.jit(fns.update)(state)
        rewards[scale] = float(m["principal_reward_mean"])
    assert rewards["none"] > 0
    assert rewards["per_player"] == pytest.approx(rewards["none"] / 2.0, rel=1e-5)


def _principal_spec(eta_feature: int) -> networks.NetworkSpec:
    return networks.NetworkSpec(image_shape=(8, 8, 3), num_features=9, num_logits=6,
                                pixels_per_tile=2, conv_channels=(4, 8), hidden=16,
                                conv2_stride=2, eta_feature=eta_feature).validate()


def test_eta_heads_add_nothing_at_eta_zero_and_their_own_path_elsewhere():
    """The eta-head network with the default network's shared weights: at eta = 0 it
    is that network, whatever its eta heads hold; at eta = 1 the eta heads' output is
    added to the logits (so with them zeroed, eta acts through the torso alone)."""
    plain, headed = _principal_spec(-1), _principal_spec(4)
    p_plain = networks.init_params(plain, jax.random.PRNGKey(0))
    p_headed = networks.init_params(headed, jax.random.PRNGKey(1))
    assert set(p_headed["params"]) == set(p_plain["params"]) | {"pi_eta", "vf_eta"}
    shared = {"params": {**p_headed["params"], **p_plain["params"]}}  # plain's weights
    big = jax.tree_util.tree_map(lambda x: x + 0.5, shared["params"]["pi_eta"])
    shared["params"]["pi_eta"] = big
    image = jax.random.randint(jax.random.PRNGKey(2), (3, 8, 8, 3), 0, 256).astype(jnp.uint8)
    features = jax.random.uniform(jax.random.PRNGKey(3), (3, 9))
    net_plain, net_headed = networks.ImageFeaturesNet(plain), networks.ImageFeaturesNet(headed)
    at0 = features.at[:, 4].set(0.0)
    np.testing.assert_allclose(np.asarray(net_headed.apply(shared, image, at0)[0]),
                               np.asarray(net_plain.apply(p_plain, image, at0)[0]), atol=1e-6)
    at1 = features.at[:, 4].set(1.0)
    zeroed = {"params": {**shared["params"], "pi_eta": jax.tree_util.tree_map(
        jnp.zeros_like, big)}}
    np.testing.assert_allclose(np.asarray(net_headed.apply(zeroed, image, at1)[0]),
                               np.asarray(net_plain.apply(p_plain, image, at1)[0]), atol=1e-6)
    assert not np.allclose(np.asarray(net_headed.apply(shared, image, at1)[0]),
                           np.asarray(net_plain.apply(p_plain, image, at1)[0]), atol=1e-3)
    with pytest.raises(ValueError, match="eta_feature=9"):
        _principal_spec(9)


def test_eta_index_points_at_eta_in_the_principals_features():
    from sed_meltingpot.game import kernel

    n, eta = 3, 0.37
    vector = kernel.principal_feature_vector(np.array([1.0, 2.0, 3.0]), np.zeros(3), eta,
                                             np.array([0.1, 0.2, 0.3]), 1, 4, np)
    assert vector[kernel.principal_eta_index(n)] == pytest.approx(eta)
    _, fns = toy_functions(PrincipalRecipe(principal_eta_heads=True))
    assert fns.principal_spec.eta_feature == kernel.principal_eta_index(TOY.num_players)
    assert toy_functions(DEFAULT)[1].principal_spec.eta_feature == -1


def test_two_stage_init_equals_the_single_program_leaf_by_leaf():
    """`ppo.init_vmapped` (the trainer's init: networks, then games, two programs) gives
    the state `jit(vmap(init))` gives, bit for bit, for an eta-heads principal under
    eta sampling (the stalled case) and for scripted players."""
    for recipe, principal in ((PrincipalRecipe(principal_eta_heads=True,
                                               eta_sampling="uniform"), "learned"),
                              (DEFAULT, "fixed:0.1,0.3,0.5")):
        train = TrainConfig(num_iterations=2, frame_stack=1, principal=principal,
                            **preset("fast"))
        cfg = ppo.TwinTrainConfig(TOY, train, num_envs=2, rollout_length=20, recipe=recipe)
        fns = ppo.make_functions(cfg, ToyGame(TOY, "tiles", 1))
        keys = jnp.stack([jax.random.PRNGKey(s) for s in (3, 4)])
        types = jnp.array([[0.2, 0.5, 0.8], [0.9, 0.1, 0.4]])
        inputs = ppo.run_inputs(TOY, principal)
        staged = ppo.init_vmapped(fns, keys, types, inputs)
        whole = jax.jit(jax.vmap(fns.init, in_axes=(0, 0, None)))(keys, types, inputs)
        a, b = jax.tree_util.tree_leaves(staged), jax.tree_util.tree_leaves(whole)
        assert len(a) == len(b) > 10
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        # the seeds differ: the keys reached both stages
        assert not np.array_equal(np.asarray(staged.players_params["params"]["pi"]["kernel"][0]),
                                  np.asarray(staged.players_params["params"]["pi"]["kernel"][1]))


def test_no_tax_init_starts_the_principal_at_level_zero():
    _, fns = toy_functions(PrincipalRecipe(principal_init_no_tax=0.8))
    state = fns.init(jax.random.PRNGKey(1), jnp.array([0.2, 0.5, 0.8]))
    net = networks.ImageFeaturesNet(fns.principal_spec)
    logits, _ = net.apply(state.principal_params, state.obs.principal_image,
                          state.obs.principal_features)
    probs = jax.nn.softmax(logits.reshape(logits.shape[0], TOY.num_brackets, -1), axis=-1)
    np.testing.assert_allclose(np.asarray(probs[..., 0]), 0.8, rtol=1e-5)


@pytest.fixture(scope="module")
def continual_twin_run():
    """The real SEDTwin, 2 rounds of 2 periods per episode, eta drawn from {0, 1}."""
    game = GameConfig(num_players=2, episode_length=40, tax_period=10, rounds_per_episode=2,
                      voting_rule="fixed:0.5")
    recipe = PrincipalRecipe(eta_sampling="0,1", players_only_fraction=0.0)
    train = TrainConfig(num_iterations=2, frame_stack=1, **preset("fast"))
    cfg = ppo.TwinTrainConfig(game, train, num_envs=6, rollout_length=40, recipe=recipe)
    fns = ppo.make_functions(cfg)
    state = fns.init(jax.random.PRNGKey(0), jnp.array([0.3, 0.7]))
    state, metrics = jax.jit(fns.update)(state)
    return jax.device_get(metrics)


def test_round_ends_reach_the_principals_gae(continual_twin_run):
    ends = np.asarray(continual_twin_run["principal_round_end"])  # (P=4, E)
    np.testing.assert_array_equal(ends, np.array([[False], [True], [False], [True]])
                                  .repeat(ends.shape[1], axis=1))


def test_sampled_eta_reaches_the_games(continual_twin_run):
    """Each game's episode plays one drawn eta (in both rounds), not the rule's 0.5."""
    episodes = continual_twin_run["episodes"]
    done = np.asarray(episodes["done"])
    etas = np.asarray(episodes["metrics"]["eta"])[done]
    assert set(np.round(etas, 6)) <= {0.0, 1.0} and len(etas) == 6


def test_train_cli_with_every_recipe_option(tmp_path):
    """One smoke run of scripts/train.py --engine=jax with every new option on."""
    out = str(tmp_path / "run")
    args = ["--engine=jax", "--preset=fast", "--num_players=2", "--episode_length=40",
            "--tax_period=10", "--rounds_per_episode=2", "--num_envs=2",
            "--rollout_fragment_length=40", "--num_iterations=3", "--frame_stack=1",
            "--welfare_on=taxed", "--eta_sampling=uniform", "--principal_lr=0.002",
            "--principal_lr_schedule=linear", "--principal_entropy_coeff=0.05",
            "--principal_entropy_final=0.01", "--principal_entropy_anneal_fraction=0.5",
            "--principal_num_epochs=3", "--principal_gamma=0.9", "--principal_lambda=0.8",
            "--principal_round_end=terminal", "--players_only_fraction=0.34",
            "--phase2_players_lr_scale=0.5", "--principal_init_no_tax=0.6",
            "--principal_reward_scale=per_player", "--principal_eta_baseline",
            "--principal_eta_heads", "--principal_value_net=separate",
            "--principal_entropy_floor=2.3", "--principal_entropy_floor_weight=0.5",
            "--tax_cap_fraction=0.5", f"--output_dir={out}"]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.load(open(os.path.join(out, "run_config.json")))
    assert config["game"]["welfare_on"] == "taxed"
    assert config["twin"]["recipe"]["eta_sampling"] == "uniform"
    assert config["twin"]["recipe"]["principal_num_epochs"] == 3
    assert config["twin"]["recipe"]["principal_reward_scale"] == "per_player"
    assert config["twin"]["recipe"]["principal_eta_baseline"] is True
    assert config["twin"]["recipe"]["principal_eta_heads"] is True
    # The checkpoint keeps the eta heads: the principal reloads with them.
    from sed_meltingpot.training.jax import checkpoint as ckpt

    spec, params = ckpt.load_params(ckpt.latest_checkpoint(out), "principal")
    assert spec.eta_feature >= 0 and "pi_eta" in params["params"]
    # ... and its value tower (layers "v_*" beside the policy's).
    assert spec.value_tower and {"v_joint", "v_torso", "joint", "vf_eta"} <= set(
        params["params"])
    assert config["twin"]["recipe"]["principal_entropy_floor"] == 2.3
    assert config["twin"]["phase1_iterations"] == 1
    records = runlog.read_progress(out)
    assert [r["principal_active"] for r in records] == [0.0, 1.0, 1.0]
    assert [r["principal_updates"] for r in records] == [0.0, 3.0, 3.0]  # 3 epochs x 1 mb
    assert records[0]["principal_param_change"] == 0.0 < records[1]["principal_param_change"]
    assert records[1]["principal_lr"] == pytest.approx(0.002)
    assert records[2]["principal_lr"] == pytest.approx(0.001)  # linear over 2 iterations
    assert records[1]["principal_entropy_coeff"] == pytest.approx(0.05)
    assert records[2]["principal_entropy_coeff"] == pytest.approx(0.01)
    for r in records:
        assert all(math.isfinite(r[f"principal_entropy_b{b}"]) for b in range(3))
    # The floor (2.3 nats, below the uniform 2.398) is logged as the principal's loss term.
    assert all(r["entropy_floor_penalty_principal"] >= 0 for r in records)
    # A recipe flag is refused with the rllib engine, naming it.
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"),
                          "--engine=rllib", "--eta_sampling=uniform", "--dry_run",
                          f"--output_dir={tmp_path / 'x'}"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode != 0 and "--eta_sampling" in bad.stderr
