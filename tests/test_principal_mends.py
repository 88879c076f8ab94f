"""The PPO principal's mends (issue 30, item 3; training/jax): a value tower that the
policy's gradient and clip cannot see (networks.NetworkSpec.value_tower, ppo.per_tower)
and a per-bracket entropy floor (ppo_losses.entropy_floor_penalty), each checked against
a hand-worked or independent computation."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sed_meltingpot.training.jax import networks, ppo
from sed_meltingpot.training.jax.ppo_losses import entropy_floor_penalty
from sed_meltingpot.training.jax.recipe import PrincipalRecipe
from tests.test_twin_recipe import toy_functions


def _spec(value_tower: bool, eta_feature: int = -1) -> networks.NetworkSpec:
    return networks.NetworkSpec(image_shape=(8, 8, 3), num_features=9, num_logits=6,
                                pixels_per_tile=2, conv_channels=(4, 8), hidden=16,
                                conv2_stride=2, eta_feature=eta_feature,
                                value_tower=value_tower).validate()


def _batch(key):
    k1, k2 = jax.random.split(key)
    image = jax.random.randint(k1, (5, 8, 8, 3), 0, 256).astype(jnp.uint8)
    return image, jax.random.uniform(k2, (5, 9))


@pytest.mark.parametrize("eta_feature", [-1, 4])
def test_the_value_tower_shares_no_parameter_with_the_policy(eta_feature):
    net = networks.ImageFeaturesNet(_spec(True, eta_feature))
    params = networks.init_params(_spec(True, eta_feature), jax.random.PRNGKey(0))
    image, features = _batch(jax.random.PRNGKey(1))
    value_grads = jax.grad(lambda p: net.apply(p, image, features)[1].sum())(params)
    logit_grads = jax.grad(lambda p: net.apply(p, image, features)[0].sum())(params)
    labels = ppo.value_tower_labels(params)
    for grads, silent in ((value_grads, "policy"), (logit_grads, "value")):
        flat = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
            lambda g, label, s=silent: float(jnp.abs(g).sum()) if label == s else 0.0,
            grads, labels))
        assert sum(flat) == 0.0
    # ... and both towers are live: each output has a gradient in its own tower.
    assert optax.global_norm(value_grads) > 0 and optax.global_norm(logit_grads) > 0
    assert {"v_tile_kernel", "v_conv", "v_torso", "v_joint"} <= set(params["params"])


def test_without_the_tower_the_network_is_unchanged():
    """value_tower=False: the same parameter names, and the logits of the towered
    network equal the plain one's given the plain one's policy parameters."""
    plain = networks.init_params(_spec(False), jax.random.PRNGKey(0))
    towered = networks.init_params(_spec(True), jax.random.PRNGKey(2))
    assert set(towered["params"]) - set(plain["params"]) == {
        "v_tile_kernel", "v_tile_bias", "v_conv", "v_torso", "v_joint"}
    mixed = {"params": {**towered["params"], **plain["params"]}}
    image, features = _batch(jax.random.PRNGKey(3))
    logits_plain, _ = networks.ImageFeaturesNet(_spec(False)).apply(plain, image, features)
    logits_mixed, value = networks.ImageFeaturesNet(_spec(True)).apply(mixed, image, features)
    np.testing.assert_array_equal(np.asarray(logits_plain), np.asarray(logits_mixed))
    assert value.shape == (5,)


def test_per_tower_clips_each_tower_alone_by_hand():
    """A value gradient of norm 1,000 beside a policy gradient of norm 0.3: with one
    global clip (0.5) the policy's step shrinks 2,000-fold; per tower it is whole."""
    params = {"params": {"joint": jnp.zeros(2), "pi": jnp.zeros(1), "vf": jnp.zeros(1),
                         "v_joint": jnp.zeros(2)}}
    grads = {"params": {"joint": jnp.array([0.3, 0.0]), "pi": jnp.array([0.0]),
                        "vf": jnp.array([0.0]), "v_joint": jnp.array([600.0, 800.0])}}
    sgd = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(1.0))
    for tx, policy_step, value_step in (
            (sgd, 0.3 * 0.5 / math.hypot(0.3, 1000.0), 0.5),
            (ppo.per_tower(sgd), 0.3, 0.5)):
        updates, _ = tx.update(grads, tx.init(params), params)
        assert float(-updates["params"]["joint"][0]) == pytest.approx(policy_step, rel=1e-5)
        assert float(optax.global_norm(updates["params"]["v_joint"])) == pytest.approx(
            value_step, rel=1e-5)
    assert ppo.value_tower_labels(params) == {"params": {
        "joint": "policy", "pi": "policy", "vf": "value", "v_joint": "value"}}


def test_head_entropies_and_the_floor_by_hand():
    k = 11
    uniform = jnp.zeros((1, 3 * k))
    np.testing.assert_allclose(np.asarray(networks.head_entropies(uniform, 3)),
                               [[math.log(k)] * 3], rtol=1e-6)
    logits = jax.random.normal(jax.random.PRNGKey(0), (4, 3 * k))
    _, total = networks.multi_categorical_logp_entropy(logits, jnp.zeros((4, 3), int), 3)
    np.testing.assert_allclose(np.asarray(networks.head_entropies(logits, 3).sum(-1)),
                               np.asarray(total), rtol=1e-6)
    # Rows (2.0, 0.5, 1.0) and (2.5, 2.5, 0.0), floor 1.2, weight 2:
    # row 1: 0 + 0.7 + 0.2 = 0.9; row 2: 0 + 0 + 1.2 = 1.2; mean 1.05, x 2 = 2.1.
    h = jnp.array([[2.0, 0.5, 1.0], [2.5, 2.5, 0.0]])
    assert float(entropy_floor_penalty(h, 1.2, 2.0)) == pytest.approx(2.1)
    assert float(entropy_floor_penalty(h, 0.0, 2.0)) == 0.0


def test_the_floor_pushes_a_collapsed_head_back_up():
    """The floor's gradient raises a collapsed head's entropy and leaves a head above
    the floor alone (gradient descent on the penalty alone, one step)."""
    logits = jnp.concatenate([jnp.array([8.0] + [0.0] * 10),  # head 0: collapsed
                              jnp.zeros(11)])[None]  # head 1: uniform (2.40 nats)
    grad = jax.grad(lambda x: entropy_floor_penalty(networks.head_entropies(x, 2), 1.5,
                                                    1.0))(logits)
    after = networks.head_entropies(logits - 1.0 * grad, 2)[0]
    before = networks.head_entropies(logits, 2)[0]
    assert float(after[0]) > float(before[0])
    assert float(jnp.abs(grad[0, 11:]).max()) == 0.0


def test_recipe_refuses_bad_mends_naming_the_flag():
    with pytest.raises(ValueError, match="--principal_value_net='both'"):
        PrincipalRecipe(principal_value_net="both").validate()
    with pytest.raises(ValueError, match="--principal_entropy_floor=-0.1"):
        PrincipalRecipe(principal_entropy_floor=-0.1).validate()


def test_mends_train_in_the_trainer_and_the_floor_reaches_the_loss():
    """One jitted update on the toy game with both mends: the principal's parameters
    carry the tower, its optimiser state is per tower, and the loss reports the floor's
    penalty, positive when the floor (5 nats) is above the uniform policy's (2.40)."""
    recipe = PrincipalRecipe(principal_value_net="separate", principal_entropy_floor=5.0,
                             players_only_fraction=0.0)
    _, fns = toy_functions(recipe)
    state = fns.init(jax.random.PRNGKey(0), jnp.array([0.2, 0.5, 0.8]))
    assert "v_joint" in state.principal_params["params"]
    before = state.principal_params
    state, m = jax.jit(fns.update)(state)
    penalty = float(m["principal"]["entropy_floor_penalty"])
    entropy = float(m["principal"]["entropy"])  # summed over the 3 brackets
    assert penalty == pytest.approx(3 * 5.0 - entropy, rel=0.05)
    moved = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()),
                                   before, state.principal_params)
    assert moved["params"]["v_joint"]["kernel"] > 0 and moved["params"]["pi"]["kernel"] > 0


# ------------------------------------------------------------- the diagnostics' options
def test_init_level_puts_the_start_probability_on_that_level():
    """principal_init_level=10 with p = 0.8: every bracket starts at full tax with
    probability 0.8 and the other ten levels share 0.2 (the bias formula by hand)."""
    _, fns = toy_functions(PrincipalRecipe(principal_init_no_tax=0.8,
                                           principal_init_level=10))
    state = fns.init(jax.random.PRNGKey(1), jnp.array([0.2, 0.5, 0.8]))
    logits, _ = networks.ImageFeaturesNet(fns.principal_spec).apply(
        state.principal_params, state.obs.principal_image, state.obs.principal_features)
    probs = np.asarray(jax.nn.softmax(logits.reshape(logits.shape[0], 3, -1), axis=-1))
    np.testing.assert_allclose(probs[..., 10], 0.8, rtol=1e-5)
    np.testing.assert_allclose(probs[..., 0], 0.02, rtol=1e-4)
    with pytest.raises(ValueError, match="--principal_init_level=11"):
        toy_functions(PrincipalRecipe(principal_init_level=11))


def _scripted_caps(recipe: PrincipalRecipe, iterations: int = 4) -> list[float]:
    from sed_meltingpot.runs.train_config import TrainConfig, preset
    from tests.test_twin_recipe import TOY
    from tests.twin_toy_game import ToyGame

    train = TrainConfig(num_iterations=iterations, frame_stack=1, principal="fixed:1,1,1",
                        tax_cap_fraction=0.5, **preset("fast"))
    cfg = ppo.TwinTrainConfig(TOY, train, num_envs=2, rollout_length=20, recipe=recipe)
    fns = ppo.make_functions(cfg, ToyGame(TOY, "tiles", 1))
    state = fns.init(jax.random.PRNGKey(0), jnp.array([0.2, 0.5, 0.8]))
    update, caps = jax.jit(fns.update), []
    for _ in range(iterations):
        state, m = update(state)
        caps.append(float(m["tax_cap"]))
    return caps


def test_scripted_curriculum_gives_a_fixed_schedule_the_learned_cap():
    """4 iterations, phase 1 = 2: caps 0, 0, then the ramp 0.1 + 0.9 x progress / 0.5
    (progress 0 and 1/2): 0.1 and 1; without the option a fixed schedule plays cap 1."""
    curriculum = PrincipalRecipe(players_only_fraction=0.5, scripted_curriculum=True)
    assert _scripted_caps(curriculum) == pytest.approx([0.0, 0.0, 0.1, 1.0])
    assert _scripted_caps(PrincipalRecipe(players_only_fraction=0.5)) == [1.0] * 4
    with pytest.raises(ValueError, match="--scripted_curriculum"):
        toy_functions(PrincipalRecipe(scripted_curriculum=True))
