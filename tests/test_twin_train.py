"""The jax engine's PPO (sed_meltingpot/training/jax/: ppo.py, networks.py, trainer.py,
checkpoint.py).

Pieces are checked against independent computations: GAE against a plain Python loop,
the PPO loss against a hand-worked example, the schedules against hand values and the
RLlib path's own tax-cap function, the flax networks against the torch RLModule with
copied weights. A tiny end-to-end run on a stand-in game (tests/twin_toy_game.py, the
SEDTwin interface with an obvious reward signal) checks learning, the outputs, the
progress keys (those the RLlib trainer writes, built by its own code) and --restore.
Slow tests train on the real twin and play the checkpoint on the Lua substrate.
"""

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
from sed_meltingpot.training.jax import checkpoint as ckpt
from sed_meltingpot.training.jax import networks, ppo
from sed_meltingpot.training.jax import trainer as twin_trainer
from sed_meltingpot.training.rllib.trainer import LOSS_KEYS, _iteration_record

sys.path.insert(0, os.path.dirname(__file__))
from twin_toy_game import ToyGame  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """The restore test compiles the toy run's update again: served from the cache."""
    twin_trainer.enable_compilation_cache(str(tmp_path_factory.mktemp("jax_cache")))


# ------------------------------------------------------------------ GAE
def gae_loop(rewards, values, dones, last_value, gamma, lam, finals=None):
    """GAE written out step by step for one sequence (Schulman et al. 2016, Eq. 16);
    with `finals`, an episode end bootstraps from the final observation's value."""
    T = len(rewards)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        if dones[t]:
            next_value = 0.0 if finals is None else finals[t]
            running = 0.0
        else:
            next_value = last_value if t == T - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv, adv + np.asarray(values)


def test_gae_with_time_limit_bootstrap_matches_a_hand_written_loop():
    rng = np.random.default_rng(5)
    T, B = 17, 4
    rewards, values, finals = (rng.normal(size=(T, B)).astype(np.float32) for _ in range(3))
    dones = rng.random((T, B)) < 0.2
    last = rng.normal(size=B).astype(np.float32)
    adv, targets = ppo.gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones),
                           jnp.asarray(last), 0.99, 0.95, jnp.asarray(finals))
    for b in range(B):
        want_adv, want_targets = gae_loop(rewards[:, b], values[:, b], dones[:, b], last[b],
                                          0.99, 0.95, finals[:, b])
        np.testing.assert_allclose(np.asarray(adv)[:, b], want_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(targets)[:, b], want_targets, rtol=1e-5,
                                   atol=1e-5)


def test_gae_matches_a_hand_written_loop():
    rng = np.random.default_rng(0)
    T, B = 23, 5
    rewards = rng.normal(size=(T, B)).astype(np.float32)
    values = rng.normal(size=(T, B)).astype(np.float32)
    dones = rng.random((T, B)) < 0.15
    last = rng.normal(size=B).astype(np.float32)
    adv, targets = ppo.gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(dones),
                           jnp.asarray(last), 0.99, 0.95)
    for b in range(B):
        want_adv, want_targets = gae_loop(rewards[:, b], values[:, b], dones[:, b], last[b],
                                          0.99, 0.95)
        np.testing.assert_allclose(np.asarray(adv)[:, b], want_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(targets)[:, b], want_targets, rtol=1e-5,
                                   atol=1e-5)


def test_gae_one_step_by_hand():
    # r=1, V=0.5, next V=2 (not done): delta = 1 + 0.9*2 - 0.5 = 2.3
    adv, targets = ppo.gae(jnp.array([1.0]), jnp.array([0.5]), jnp.array([False]),
                           jnp.array(2.0), 0.9, 0.5)
    assert float(adv[0]) == pytest.approx(2.3)
    assert float(targets[0]) == pytest.approx(2.8)
    # Done: nothing is bootstrapped, delta = 1 - 0.5.
    adv, _ = ppo.gae(jnp.array([1.0]), jnp.array([0.5]), jnp.array([True]), jnp.array(2.0),
                     0.9, 0.5)
    assert float(adv[0]) == pytest.approx(0.5)


# ------------------------------------------------------------- the loss
def test_clipped_loss_on_a_hand_example():
    # Sample 1: A=2, ratio 1.5 -> clipped to 1.2: surrogate min(3.0, 2.4) = 2.4;
    #           V=1, target 3 -> (V - target)^2 = 4; entropy 1.
    # Sample 2: A=-1, ratio 0.5 -> clipped to 0.8: min(-0.5, -0.8) = -0.8;
    #           V=0, target 0 -> 0; entropy 2.
    # total = mean(-2.4 + 0.5*4 - 0.01*1, 0.8 + 0 - 0.01*2) = mean(-0.41, 0.78) = 0.185
    old = jnp.log(jnp.array([0.4, 0.6]))
    new = jnp.log(jnp.array([0.6, 0.3]))
    total, aux = ppo.ppo_loss(new, old, jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]),
                              jnp.array([3.0, 0.0]), jnp.array([1.0, 2.0]), clip=0.2,
                              vf_coeff=0.5, entropy_coeff=0.01)
    assert float(total) == pytest.approx(0.185, abs=1e-6)
    assert float(aux["policy_loss"]) == pytest.approx(-(2.4 - 0.8) / 2, abs=1e-6)
    assert float(aux["vf_loss"]) == pytest.approx(2.0, abs=1e-6)
    assert float(aux["entropy"]) == pytest.approx(1.5, abs=1e-6)


def test_multi_categorical_sums_independent_heads():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 3 * 11)).astype(np.float32)
    actions = rng.integers(0, 11, size=(4, 3))
    logp, entropy = networks.multi_categorical_logp_entropy(jnp.asarray(logits),
                                                            jnp.asarray(actions), 3)
    for i in range(4):
        want_logp = want_h = 0.0
        for b in range(3):
            z = logits[i, 11 * b:11 * (b + 1)].astype(np.float64)
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            want_logp += math.log(p[actions[i, b]])
            want_h += -(p * np.log(p)).sum()
        assert float(logp[i]) == pytest.approx(want_logp, abs=1e-5)
        assert float(entropy[i]) == pytest.approx(want_h, abs=1e-5)


# ------------------------------------------------------------ schedules
def test_lr_falls_linearly_to_zero_over_the_budget():
    assert float(ppo.lr_at(0, 2.5e-4, 1000, True)) == pytest.approx(2.5e-4)
    assert float(ppo.lr_at(250, 2.5e-4, 1000, True)) == pytest.approx(1.875e-4)
    assert float(ppo.lr_at(1000, 2.5e-4, 1000, True)) == pytest.approx(0.0)
    assert float(ppo.lr_at(5000, 2.5e-4, 1000, True)) == pytest.approx(0.0)
    assert float(ppo.lr_at(700, 2.5e-4, 1000, False)) == pytest.approx(2.5e-4)


def test_optimizer_uses_the_lr_of_its_iteration():
    # 4 iterations of 100 env steps, 3 updates per iteration: updates 0-2 at lr, 3-5 at
    # 0.75 lr, ... With plain SGD-like Adam steps of a constant gradient the step size is
    # the lr itself (Adam's normalised step is 1 for a constant gradient).
    cfg = ppo.TwinTrainConfig(GameConfig(tax_period=50), TrainConfig(
        num_iterations=4, lr=1.0, grad_clip=1e9), num_envs=1, rollout_length=100)
    tx = ppo.make_optimizer(cfg, updates_per_iteration=3)
    params = jnp.zeros(())
    state = tx.init(params)
    steps = []
    for _ in range(12):
        updates, state = tx.update(jnp.ones(()), state, params)
        steps.append(-float(updates))
    # env steps per iteration = 100 game steps + 2 principal turns (learned principal)
    total = 4 * 102
    want = [1.0 - (k // 3) * 102 / total for k in range(12)]
    np.testing.assert_allclose(steps, want, rtol=1e-3)


def test_tax_cap_curriculum_by_hand_and_against_the_rllib_callback():
    kw = {"enabled": True, "start": 0.1, "end": 1.0, "fraction": 0.02, "total": 1000}
    assert float(ppo.tax_cap_at(0, **kw)) == pytest.approx(0.1)
    assert float(ppo.tax_cap_at(10, **kw)) == pytest.approx(0.55)  # ramp of 20 steps
    assert float(ppo.tax_cap_at(20, **kw)) == pytest.approx(1.0)
    assert float(ppo.tax_cap_at(500, **kw)) == pytest.approx(1.0)
    assert float(ppo.tax_cap_at(3, **{**kw, "enabled": False})) == 1.0
    callbacks = pytest.importorskip("sed_meltingpot.training.rllib.callbacks")
    for steps in (0, 1, 7, 13, 19, 20, 21, 999):
        assert float(ppo.tax_cap_at(steps, **kw)) == pytest.approx(
            callbacks.tax_cap(steps, kw), abs=1e-6)


def test_minibatch_plan_and_config_errors():
    assert ppo.minibatch_plan(1000, 256) == (256, 3)
    assert ppo.minibatch_plan(20, 32) == (20, 1)  # fewer rows: one smaller minibatch
    with pytest.raises(ValueError, match="rollout_fragment_length"):
        ppo.TwinTrainConfig(GameConfig(), TrainConfig(), rollout_length=120).validate()
    with pytest.raises(ValueError, match="pixels_per_tile=2"):
        ppo.TwinTrainConfig(GameConfig(), TrainConfig(pixels_per_tile=2)).validate()
    with pytest.raises(ValueError, match="num_envs"):
        ppo.TwinTrainConfig(GameConfig(), TrainConfig(), num_envs=0).validate()


# -------------------------------------------------- networks vs torch
@pytest.mark.parametrize("preset_name,principal", [("paper", False), ("fast", False),
                                                   ("paper", True), ("fast", True)])
def test_networks_equal_the_torch_module_with_its_weights(preset_name, principal):
    torch = pytest.importorskip("torch")
    pytest.importorskip("ray")
    import gymnasium
    from ray.rllib.core.columns import Columns

    from sed_meltingpot.training.rllib.modules import ImageFeaturesModule

    cfg = TrainConfig(**preset(preset_name))
    p = cfg.pixels_per_tile
    if principal:
        shape, features = (18 * p, 24 * p, 3), 2 * 7 + 3 + 2
        action = gymnasium.spaces.MultiDiscrete([11] * 3)
        num_logits, stride = 33, 2
    else:
        shape, features = (11 * p, 11 * p, 3 * cfg.frame_stack), 6
        action, num_logits, stride = gymnasium.spaces.Discrete(8), 8, 1
    space = gymnasium.spaces.Dict({
        "image": gymnasium.spaces.Box(0, 255, shape, np.uint8),
        "features": gymnasium.spaces.Box(-np.inf, np.inf, (features,), np.float32)})
    module = ImageFeaturesModule(observation_space=space, action_space=action, model_config={
        "pixels_per_tile": p, "conv_channels": list(cfg.conv_channels), "hidden": cfg.hidden,
        "conv2_stride": stride})
    spec = networks.NetworkSpec(shape, features, num_logits, p, tuple(cfg.conv_channels),
                                cfg.hidden, stride)
    params = networks.torch_to_flax(module.state_dict(), spec)
    # The copied tree has exactly the flax network's own parameter shapes.
    fresh = networks.init_params(spec, jax.random.PRNGKey(0))
    assert jax.tree_util.tree_structure(fresh) == jax.tree_util.tree_structure(params)
    for a, b in zip(jax.tree_util.tree_leaves(fresh), jax.tree_util.tree_leaves(params),
                    strict=True):
        assert a.shape == b.shape
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (6,) + shape, dtype=np.uint8)
    feats = rng.normal(size=(6, features)).astype(np.float32)
    batch = {Columns.OBS: {"image": torch.from_numpy(image), "features": torch.from_numpy(feats)}}
    with torch.no_grad():
        want_logits = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS].numpy()
        want_value = module.compute_values(batch).numpy()
    logits, value = networks.ImageFeaturesNet(spec).apply(params, image, feats)
    np.testing.assert_allclose(np.asarray(logits), want_logits, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(value), want_value, atol=1e-5, rtol=1e-4)


def test_fresh_network_init_has_the_torch_module_scales():
    spec = networks.NetworkSpec((11, 11, 12), 6, 8, 1, (8, 16), 64)
    params = networks.init_params(spec, jax.random.PRNGKey(3))["params"]
    # Hidden layers: U(+-1/sqrt(fan_in)) like torch's default; heads orthogonal, zero bias.
    fan = 9 * 8
    conv = np.asarray(params["conv"]["kernel"])
    assert np.abs(conv).max() <= 1 / math.sqrt(fan) + 1e-7
    assert np.abs(conv).max() > 0.8 / math.sqrt(fan)
    pi = np.asarray(params["pi"]["kernel"])  # (64, 8), orthogonal columns x gain 0.01
    np.testing.assert_allclose(pi.T @ pi, 1e-4 * np.eye(8), atol=1e-8)
    assert not np.asarray(params["vf"]["bias"]).any()


# ----------------------------------------------- end to end (stand-in)
TOY_GAME = GameConfig(num_players=3, episode_length=20, tax_period=10)
TOY_TRAIN = TrainConfig(num_iterations=2, frame_stack=1, lr=3e-3, **preset("fast"))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("twin") / "run")
    lines: list[str] = []
    summary = twin_trainer.train(TOY_GAME, TOY_TRAIN, out, num_envs=2, rollout_length=20,
                                 checkpoint_every=1, print_fn=lines.append,
                                 game_impl=ToyGame(TOY_GAME, "tiles", 1))
    return out, summary, lines


def test_toy_run_writes_the_rllib_trainers_outputs(toy_run):
    out, summary, lines = toy_run
    for name in ("progress.jsonl", "run_config.json", "summary.json", "checkpoints",
                 "tensorboard"):
        assert os.path.exists(os.path.join(out, name)), name
    records = runlog.read_progress(out)
    assert [r["iteration"] for r in records] == [1, 2]
    assert [r["game_steps"] for r in records] == [40, 80]  # 2 games x 20 steps
    assert [r["env_steps"] for r in records] == [44, 88]  # + 2 principal turns per game
    assert all(r["game_steps_per_s"] > 0 for r in records)
    for r in records:
        for key in ("objective", "productivity", "player_return_mean", "total_loss_players",
                    "vf_loss_principal", "entropy_principal"):
            assert math.isfinite(r[key]), key
    assert any(line.startswith("iter    2 | game steps") for line in lines)
    config = json.load(open(os.path.join(out, "run_config.json")))
    assert config["engine"] == "jax" and config["train"]["train_batch_size"] == 44
    assert summary["checkpoint"].endswith("iter_000002")
    assert ckpt.is_checkpoint(summary["checkpoint"])


def test_toy_run_progress_keys_equal_the_rllib_trainers(toy_run):
    """The keys the RLlib trainer writes for an iteration that ended episodes, built by
    its own `_iteration_record` and `runlog.ProgressLog` from an RLlib result holding
    what training/rllib/callbacks.py logs."""
    out, _, _ = toy_run
    n, b = TOY_GAME.num_players, TOY_GAME.num_brackets
    sed = {k: 1.0 for k in twin_trainer.SCALAR_METRICS}
    sed.update({f"rate_b{k}": 0.1 for k in range(b)})
    sed.update({f"apples_p{i}": 1.0 for i in range(n)})
    result = {
        "training_iteration": 1, "time_this_iter_s": 1.0,
        "env_runners": {
            "num_env_steps_sampled_lifetime": 10, "num_agent_steps_sampled_lifetime": {
                f"player_{i}": 10 for i in range(n)} | {"principal": 1},
            "num_env_steps_sampled": 10, "num_episodes_lifetime": 1, "num_episodes": 1,
            "module_episode_returns_mean": {"players": 1.0, "principal": 1.0},
            "agent_episode_returns_mean": {f"player_{i}": 1.0 for i in range(n)},
            "sed": sed, "sed_last_episode": {"p000_b0": 0.1, "p000_b1": 0.1, "p000_b2": 0.1},
        },
        "sed": {"tax_cap_next": 1.0},
        "learners": {m: {k: 0.0 for k in LOSS_KEYS} for m in ("players", "principal")}
        | {"__all_modules__": {"foo": 1}},
    }
    folder = os.path.join(os.path.dirname(out), "rllib_keys")
    os.makedirs(folder, exist_ok=True)
    want = set(runlog.ProgressLog(folder).add(
        _iteration_record(result, num_players=n, learned=True)))
    # ... and the learned principal's diagnostics (issue 16), which only the jax engine logs.
    diagnostics = {f"principal_{k}" for k in (
        "active", "samples", "updates", "lr", "entropy_coeff", "grad_norm", "param_change")}
    diagnostics |= {f"principal_{k}_b{i}" for k in ("entropy", "rate") for i in range(b)}
    for record in runlog.read_progress(out):
        assert set(record) == want | diagnostics


def test_restore_continues_the_iteration_count_and_weights(toy_run, tmp_path):
    out, summary, _ = toy_run
    saved_spec, saved = ckpt.load_params(summary["checkpoint"], "principal")
    assert saved_spec is not None and saved_spec.conv2_stride == 2
    more = TrainConfig(**{**TOY_TRAIN.__dict__, "num_iterations": 3})
    lines: list[str] = []
    restored_params = {}

    def grab(record):
        restored_params["iteration"] = record["iteration"]

    twin_trainer.train(TOY_GAME, more, out, num_envs=2, rollout_length=20, restore=out,
                       checkpoint_every=0, print_fn=lines.append, on_iteration=grab,
                       game_impl=ToyGame(TOY_GAME, "tiles", 1))
    assert any("restored" in line and "iteration 2" in line for line in lines)
    records = runlog.read_progress(out)
    assert [r["iteration"] for r in records] == [1, 2, 3]
    assert records[2]["game_steps"] == 120
    # The lifetime episode count goes on (issue 31: it restarted at 2): 2 games of
    # 20-step episodes, 20 steps an iteration, so 2 episodes end each iteration.
    assert [r["episodes"] for r in records] == [2, 4, 6]
    _, final = ckpt.load_params(os.path.join(out, "checkpoints", "iter_000003"), "principal")
    # Training went on from the saved weights: they changed, by a small step.
    diffs = [float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(
        jax.tree_util.tree_leaves(saved), jax.tree_util.tree_leaves(final), strict=True)]
    assert 0 < max(diffs) < 0.1


def test_fresh_run_refuses_a_folder_that_holds_one(toy_run):
    out, _, _ = toy_run
    with pytest.raises(ValueError, match="already holds a run"):
        twin_trainer.plan_runs(TOY_GAME, TOY_TRAIN, out, num_envs=2, rollout_length=20)


def test_runs_differing_in_fixed_eta_or_fixed_rates_share_one_program():
    """The experiment's objectives (fixed:<eta>, the voted mean) and scripted schedules
    (none, fixed:...) are run inputs, not constants: their update lowers to the same
    program, which the persistent cache then compiles once. A learned principal is
    another program (the comparison can fail)."""
    game = GameConfig(num_players=3, episode_length=20, tax_period=10)
    train = TrainConfig(num_iterations=1, frame_stack=1, **preset("fast"))

    def program(voting_rule: str, principal: str) -> str:
        cfg = ppo.TwinTrainConfig(
            dataclasses.replace(game, voting_rule=voting_rule),
            dataclasses.replace(train, principal=principal), num_envs=2, rollout_length=10)
        fns = ppo.make_functions(cfg)
        state = jax.eval_shape(fns.init, jax.random.PRNGKey(0), jnp.zeros(3, jnp.float32))
        return jax.jit(fns.update).lower(state).as_text()

    learned = [program(rule, "learned") for rule in ("fixed:0", "fixed:0.5", "mean")]
    assert learned[0] == learned[1] == learned[2]
    scripted = [program("fixed:1", p) for p in ("none", "fixed:0.1,0.2,0.3",
                                                 "fixed:0.5,0.5,0.5")]
    assert scripted[0] == scripted[1] == scripted[2]
    assert learned[0] != scripted[0]
    inputs = ppo.run_inputs(dataclasses.replace(game, voting_rule="fixed:0.5"),
                            "fixed:0.1,0.2,0.3")
    assert float(inputs.fixed_eta) == 0.5
    np.testing.assert_allclose(inputs.rates, [0.1, 0.2, 0.3])


def test_ppo_learns_the_toy_signal():
    """Players are paid for action 1 only: PPO must raise its frequency from 1/8."""
    train = TrainConfig(num_iterations=12, frame_stack=1, lr=3e-3, **preset("fast"))
    cfg = ppo.TwinTrainConfig(TOY_GAME, train, num_envs=4, rollout_length=20)
    run = ppo.make_train(cfg, ToyGame(TOY_GAME, "tiles", 1))
    state, metrics = jax.jit(run)(jax.random.PRNGKey(0), jnp.array([0.2, 0.5, 0.8]))
    reward = np.asarray(metrics["reward_mean"])
    assert reward[:2].mean() < 0.3 and reward[-2:].mean() > 0.6, reward
    assert int(state.iteration) == 12
    for leaf in jax.tree_util.tree_leaves(metrics["players"]):
        assert np.isfinite(np.asarray(leaf)).all()


def test_vmapped_seeds_train_independently():
    train = TrainConfig(num_iterations=1, frame_stack=1, **preset("fast"))
    cfg = ppo.TwinTrainConfig(TOY_GAME, train, num_envs=2, rollout_length=10)
    run = ppo.make_train(cfg, ToyGame(TOY_GAME, "tiles", 1))
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1), jax.random.PRNGKey(0)])
    types = jnp.array([[0.2, 0.5, 0.8], [0.1, 0.1, 0.1], [0.2, 0.5, 0.8]])
    state, _ = jax.jit(jax.vmap(run))(keys, types)
    kernel = np.asarray(state.players_params["params"]["pi"]["kernel"])
    np.testing.assert_array_equal(kernel[0], kernel[2])  # same seed, same types
    assert not np.array_equal(kernel[0], kernel[1])


# ------------------------------------------------------ the game interface
def test_the_twin_and_the_toy_game_are_trainable_games():
    """Both games the trainer drives have every member of `TrainableGame` (what
    training/jax/ppo.py calls); a class lacking any one is not one, and make_functions refuses
    it, naming the member."""
    from sed_meltingpot.training.jax.protocol import MEMBERS, TrainableGame
    from sed_meltingpot.twin.sed import SEDTwin

    assert set(MEMBERS) == {"reset", "step", "set_rates", "set_rate_levels",
                            "episode_metrics"}
    assert ppo.TrainableGame is TrainableGame
    assert isinstance(SEDTwin(TOY_GAME), TrainableGame)
    assert isinstance(ToyGame(TOY_GAME, "tiles", 1), TrainableGame)
    cfg = ppo.TwinTrainConfig(TOY_GAME, TOY_TRAIN, num_envs=2, rollout_length=20)
    for missing in MEMBERS:
        cls = type(f"No_{missing}", (), {m: getattr(ToyGame, m) for m in MEMBERS
                                         if m != missing})
        assert not isinstance(cls(), TrainableGame), missing
        with pytest.raises(TypeError, match=f"lacks {missing}"):
            ppo.make_functions(cfg, cls())


def test_fixed_rates_reach_the_toy_game_through_set_rates():
    """A scripted principal's fixed rates go through `set_rates` (no rounding to levels):
    the finished episodes played exactly those rates."""
    train = dataclasses.replace(TOY_TRAIN, num_iterations=1, principal="fixed:0.15,0.2,0.3")
    cfg = ppo.TwinTrainConfig(TOY_GAME, train, num_envs=2, rollout_length=20)
    fns = ppo.make_functions(cfg, ToyGame(TOY_GAME, "tiles", 1))
    state = fns.init(jax.random.PRNGKey(0), jnp.array([0.2, 0.5, 0.8]))
    _, metrics = jax.jit(fns.update)(state)
    episodes = jax.device_get(metrics["episodes"])
    done = np.asarray(episodes["done"])
    assert done.sum() == 2  # each game's one episode
    np.testing.assert_allclose(np.asarray(episodes["metrics"]["mean_rates"])[done],
                               [[0.15, 0.2, 0.3]] * 2, rtol=1e-6)


# ------------------------------------------------------------- imports / CLI
POISON = ("import sys\n"
          "for name in ('ray', 'meltingpot', 'dmlab2d', 'tensorflow', 'torch'):\n"
          "    sys.modules[name] = None\n")


def test_jax_engine_imports_no_ray_meltingpot_tensorflow():
    code = POISON + (
        "import sed_meltingpot.training.jax.trainer, sed_meltingpot.training.jax.ppo, "
        "sed_meltingpot.training.jax.networks, sed_meltingpot.training.jax.checkpoint\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def _train_cli(*args: str, poison: bool = False) -> subprocess.CompletedProcess:
    code = (POISON if poison else "import sys\n") + (
        "import runpy\n"
        f"sys.argv = ['train.py'] + {list(args)!r}\n"
        "runpy.run_path('scripts/train.py', run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_train_cli_engine_flags(tmp_path):
    out = _train_cli("--engine=jax", "--num_env_runners=2", "--output_dir", str(tmp_path))
    assert out.returncode != 0 and "--num_env_runners mean(s) nothing with --engine=jax" in (
        out.stderr + out.stdout)
    out = _train_cli("--num_envs=4", "--output_dir", str(tmp_path))
    assert out.returncode != 0 and "--num_envs mean(s) nothing with --engine=rllib" in (
        out.stderr + out.stdout)
    # A dry run of the jax engine with Ray, Melting Pot, TensorFlow and torch unavailable.
    out = _train_cli("--engine=jax", "--preset=fast", "--dry_run", "--num_envs=8",
                     "--output_dir", str(tmp_path / "run"), poison=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1600 game steps per iteration" in out.stdout


# --------------------------------------------------------- real twin (slow)
@pytest.mark.slow
def test_jax_run_trains_on_the_twin_and_plays_the_lua_substrate(tmp_path):
    """A tiny jax-engine run on the real SEDTwin, then its players and principal act on
    the Lua substrate's observations (evaluate.py / render_video.py paths)."""
    pytest.importorskip("meltingpot")
    from sed_meltingpot import evaluation

    game = GameConfig(episode_length=100, tax_period=50)
    train = TrainConfig(num_iterations=2, **preset("fast"))
    out = str(tmp_path / "run")
    twin_trainer.train(game, train, out, num_envs=2, rollout_length=100, print_fn=print)
    run = evaluation.load_run(out)
    assert run.checkpoint.endswith("iter_000002")
    setup = evaluation.build_setup(run, seed=0)
    players = evaluation.make_players("checkpoint", run, setup=setup)
    principal = evaluation.trained_principal(run, setup)
    episodes = evaluation.evaluate_principal(setup, players, principal, num_episodes=1,
                                             max_steps=60)
    assert len(episodes) == 1 and math.isfinite(episodes[0]["productivity"])
    assert math.isfinite(episodes[0]["rate_b0"])
    script = os.path.join(REPO, "scripts", "render_video.py")
    video = str(tmp_path / "clip.gif")
    done = subprocess.run([sys.executable, script, f"--checkpoint={out}", f"--output={video}",
                           "--max_steps=5", "--scale=1"], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.getsize(video) > 0


def test_period_play_rejects_an_unknown_kind_and_players_without_actions():
    """training/jax/rollout.py names the bad input: a principal kind outside KINDS, a learned
    principal without a network, network-less players without num_actions, and a
    random principal's turn without the caller's draw."""
    from sed_meltingpot.training.jax import rollout

    game = ToyGame(GameConfig(num_players=3))
    net = object()  # never applied before the checks
    with pytest.raises(ValueError, match=r"kind='fixed': must be one of learned, random"):
        rollout.make_period_play(game, "fixed", net, None, 2, 3, 11, 5)
    with pytest.raises(ValueError, match="kind='learned' needs a principal_net"):
        rollout.make_period_play(game, "learned", net, None, 2, 3, 11, 5)
    with pytest.raises(ValueError, match="num_actions=0"):
        rollout.make_period_play(game, "rates", None, None, 2, 3, 11, 5)
    play = rollout.make_period_play(game, "random", net, None, 2, 3, 11, 5)
    with pytest.raises(ValueError, match="needs random_levels"):
        play.principal_turn({}, None, None, None, 1.0, None, None)
