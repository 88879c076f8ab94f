"""The PPO pieces of the jax trainer (`training/jax/ppo.py`), pure functions of arrays:
GAE (the players' and the principal's, `gae` / `principal_gae`), RLlib's advantage
standardisation and PPO loss (no KL term, no value clipping)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sed_meltingpot.training.jax import recipe as recipes


def gae(rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array,
        gamma: float, lam: float, final_values: jax.Array | None = None
        ) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over a time-major batch (T, ...).

    `dones[t]` is True when the episode ended with transition t: the advantage sum stops
    there. With `final_values` (the value of each episode's final observation, read at
    the done steps) the end is a time limit, as the RLlib path treats it (truncated,
    README "Episode end"; Pardo et al. 2018): transition t bootstraps from it. Without,
    the end is terminal (nothing bootstrapped). `last_value` bootstraps the rollout's
    last step. Returns (advantages, value targets = advantages + values).
    """
    if final_values is None:
        final_values = jnp.zeros_like(values)

    def step(carry: tuple[jax.Array, jax.Array], x: tuple[jax.Array, ...]):
        next_adv, next_value = carry
        reward, value, done, final = x
        live = 1.0 - done.astype(jnp.float32)
        bootstrap = jnp.where(done, final, next_value)
        delta = reward + gamma * bootstrap - value
        adv = delta + gamma * lam * live * next_adv
        return (adv, value), adv

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(step, init, (rewards, values, dones, final_values),
                                 reverse=True)
    return advantages, advantages + values


def principal_gae(recipe: recipes.PrincipalRecipe, rewards: jax.Array, values: jax.Array,
                  round_end: jax.Array, episode_end: jax.Array, last_value: jax.Array,
                  final_values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """GAE over the principal's turns (P periods, time-major) with its own gamma/lambda.

    terminal (default): each round end ends its episode with nothing bootstrapped: its
    objective restarts there, and the final observation (period position 1.0) is an
    input none of its decisions saw. truncated: only the episode end stops the sum, as a
    time limit bootstrapped from `final_values` (the RLlib path's treatment)."""
    if recipe.principal_round_end == "terminal":
        return gae(rewards, values, round_end, last_value, recipe.principal_gamma,
                   recipe.principal_lambda)
    return gae(rewards, values, episode_end, last_value, recipe.principal_gamma,
               recipe.principal_lambda, final_values)


def standardize(x: jax.Array) -> jax.Array:
    """(x - mean) / max(1e-4, std), RLlib's advantage standardisation."""
    return (x - x.mean()) / jnp.maximum(1e-4, x.std())


def ppo_loss(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array, value: jax.Array,
             targets: jax.Array, entropy: jax.Array, *, clip: float, vf_coeff: float,
             entropy_coeff: float) -> tuple[jax.Array, dict[str, jax.Array]]:
    """RLlib's PPO loss (ppo_torch_learner) without KL and value clipping:
    mean(-min(A r, A clip(r, 1-c, 1+c)) + vf_coeff (V - target)^2 - entropy_coeff H)."""
    ratio = jnp.exp(logp - old_logp)
    surrogate = jnp.minimum(advantages * ratio,
                            advantages * jnp.clip(ratio, 1.0 - clip, 1.0 + clip))
    vf_loss = jnp.square(value - targets)
    total = jnp.mean(-surrogate + vf_coeff * vf_loss - entropy_coeff * entropy)
    return total, {"policy_loss": -surrogate.mean(), "vf_loss": vf_loss.mean(),
                   "entropy": entropy.mean()}


def entropy_floor_penalty(head_entropy: jax.Array, floor: float, weight: float) -> jax.Array:
    """weight x the mean over rows of sum over heads of max(0, floor - H_head): the
    principal's per-bracket entropy floor (recipe.principal_entropy_floor). Zero while
    every bracket keeps at least `floor` nats, so it only acts on a collapsing head,
    unlike the entropy bonus, which pulls every head alike. head_entropy (rows, heads)."""
    return weight * jnp.maximum(floor - head_entropy, 0.0).sum(axis=-1).mean()
