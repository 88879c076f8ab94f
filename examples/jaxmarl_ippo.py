"""IPPO on the JaxMARL env of the SED game (`SEDJaxMARLEnv`), in JaxMARL's baseline style.

Shows: the game as a JaxMARL `MultiAgentEnv` (players and a learned principal), wrapped
in JaxMARL's `LogWrapper`, trained by an IPPO loop compiled whole with `jax.jit`.
Needs: the `jaxmarl` extra (`pip install '.[jaxmarl]'`; `scripts/setup_env.sh` has it).
Run:   python examples/jaxmarl_ippo.py            (about 30 s on 2 CPU cores)
       python examples/jaxmarl_ippo.py --num_updates=50 --num_envs=16   (longer)

JaxMARL's own IPPO scripts (`baselines/IPPO/ippo_ff_*.py` in its repository) are not in
its PyPI wheel and need hydra, wandb and distrax, so this is the same loop in the same
shape (PureJaxRL style: `make_train(config)` -> `train(rng)`, `LogWrapper`, `batchify` /
`unbatchify`, a `lax.scan` over env steps, GAE, epochs of shuffled minibatches), with two
changes the SED game needs: agents form groups that share one network (the players; the
learned principal has its own, with one categorical head per bracket), and each
transition's policy loss counts only where the agent's action took effect
(`infos["acted"]`: the principal at its turns, the players elsewhere). GAE is the jax
trainer's (`training.jax.ppo.gae`, episode ends terminal as in JaxMARL's loop).

`train` also returns what the env saw (reset and step keys, actions, observations,
rewards, dones), which `tests/test_jaxmarl_env.py` replays through `SEDTwin` itself
(that test imports this file: one copy of the loop).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.linen.initializers import constant, orthogonal
from flax.training.train_state import TrainState
from jaxmarl.environments import spaces
from jaxmarl.wrappers.baselines import LogWrapper

from sed_meltingpot.training.jax.ppo import gae


class ActorCritic(nn.Module):
    """JaxMARL's feed-forward actor-critic (two tanh layers of 64 each side); `heads`
    categorical heads of `num_actions` logits (heads > 1: a MultiDiscrete action)."""

    num_actions: int
    heads: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        def torso(h: jax.Array) -> jax.Array:
            for _ in range(2):
                h = nn.tanh(nn.Dense(64, kernel_init=orthogonal(np.sqrt(2)),
                                     bias_init=constant(0.0))(h))
            return h

        logits = nn.Dense(self.num_actions * self.heads, kernel_init=orthogonal(0.01),
                          bias_init=constant(0.0))(torso(x))
        value = nn.Dense(1, kernel_init=orthogonal(1.0), bias_init=constant(0.0))(torso(x))
        return logits.reshape(x.shape[:-1] + (self.heads, self.num_actions)), value[..., 0]


def log_prob_entropy(logits: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Summed over the heads: log pi(action) and the entropy."""
    logp = jax.nn.log_softmax(logits)
    taken = jnp.take_along_axis(logp, action[..., None], axis=-1)[..., 0]
    return taken.sum(-1), -(jnp.exp(logp) * logp).sum((-2, -1))


class Transition(NamedTuple):
    done: jax.Array
    action: jax.Array
    value: jax.Array
    reward: jax.Array
    log_prob: jax.Array
    obs: jax.Array
    acted: jax.Array


def rows(x: Any) -> jax.Array:
    """One agent's values over envs as f32[envs, D]: a dict observation's parts
    flattened and joined (images / 255), a vector as is, a scalar per env as D = 1."""
    if isinstance(x, dict):
        return jnp.concatenate([rows(v.astype(jnp.float32) / 255.0 if v.dtype == jnp.uint8
                                     else v) for v in x.values()], axis=-1)
    return x.reshape(x.shape[0], -1).astype(jnp.float32)


def batchify(x: dict[str, Any], agents: list[str]) -> jax.Array:
    """(agents x envs, D) rows, agent-major, as JaxMARL's batchify."""
    return jnp.concatenate([rows(x[a]) for a in agents])


def unbatchify(x: jax.Array, agents: list[str], num_envs: int) -> dict[str, jax.Array]:
    x = x.reshape((len(agents), num_envs) + x.shape[1:])
    return {a: x[i] for i, a in enumerate(agents)}


def make_train(config: dict[str, Any], env: Any):
    """`train(rng)` for `config` (JaxMARL's keys) on the unwrapped `env`."""
    groups = {name: members for name, members in env.agent_classes.items()}
    index = {a: i for i, a in enumerate(env.agents)}
    e, steps = config["NUM_ENVS"], config["NUM_STEPS"]
    env = LogWrapper(env)

    def network_of(agent: str) -> ActorCritic:
        space = env.action_space(agent)
        if isinstance(space, spaces.MultiDiscrete):
            return ActorCritic(int(space.num_categories[0]), heads=space.shape[0])
        return ActorCritic(space.n)

    nets = {g: network_of(members[0]) for g, members in groups.items()}

    def train(rng: jax.Array) -> dict[str, Any]:
        rng, reset_rng = jax.random.split(rng)
        reset_keys = jax.random.split(reset_rng, e)
        obsv, env_state = jax.vmap(env.reset)(reset_keys)
        states = {}
        for g, members in groups.items():
            rng, k = jax.random.split(rng)
            params = nets[g].init(k, batchify(obsv, members[:1]))
            tx = optax.chain(optax.clip_by_global_norm(config["MAX_GRAD_NORM"]),
                             optax.adam(config["LR"], eps=1e-5))
            states[g] = TrainState.create(apply_fn=nets[g].apply, params=params, tx=tx)

        def _env_step(runner_state, unused):
            states, env_state, last_obs, rng = runner_state
            env_act, out = {}, {}
            for g, members in groups.items():
                rng, k = jax.random.split(rng)
                obs_batch = batchify(last_obs, members)
                logits, value = nets[g].apply(states[g].params, obs_batch)
                action = jax.random.categorical(k, logits)
                log_prob, _ = log_prob_entropy(logits, action)
                squeezed = action[:, 0] if nets[g].heads == 1 else action
                env_act |= unbatchify(squeezed, members, e)
                out[g] = (obs_batch, action, value, log_prob)
            rng, k = jax.random.split(rng)
            rng_step = jax.random.split(k, e)
            obsv, env_state, reward, done, info = jax.vmap(env.step)(rng_step, env_state,
                                                                     env_act)
            transitions = {}
            for g, members in groups.items():
                obs_batch, action, value, log_prob = out[g]
                acted = jnp.concatenate([info["acted"][:, index[a]] for a in members])
                transitions[g] = Transition(
                    batchify(done, members)[:, 0] > 0, action, value,
                    batchify(reward, members)[:, 0], log_prob, obs_batch, acted)
            seen = {"key": rng_step, "obs": last_obs, "action": env_act, "reward": reward,
                    "done": done, "returned_episode_returns": info["returned_episode_returns"]}
            return (states, env_state, obsv, rng), (transitions, seen)

        def _update_group(g: str, state: TrainState, traj: Transition, last_obs, rng):
            _, last_val = nets[g].apply(state.params, batchify(last_obs, groups[g]))
            advantages, targets = gae(traj.reward, traj.value, traj.done, last_val,
                                      config["GAMMA"], config["GAE_LAMBDA"])

            def _loss_fn(params, batch):
                traj, adv, targets = batch
                logits, value = nets[g].apply(params, traj.obs)
                log_prob, entropy = log_prob_entropy(logits, traj.action)
                mask = traj.acted.astype(jnp.float32)
                count = jnp.maximum(mask.sum(), 1.0)
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                ratio = jnp.exp(log_prob - traj.log_prob)
                clipped = jnp.clip(ratio, 1.0 - config["CLIP_EPS"], 1.0 + config["CLIP_EPS"])
                actor = -(jnp.minimum(ratio * adv, clipped * adv) * mask).sum() / count
                critic = 0.5 * jnp.square(value - targets).mean()
                ent = (entropy * mask).sum() / count
                return actor + config["VF_COEF"] * critic - config["ENT_COEF"] * ent, ent

            def _update_epoch(carry, unused):
                state, rng = carry
                rng, k = jax.random.split(rng)
                batch = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]),
                                     (traj, advantages, targets))
                size = batch[1].shape[0]
                perm = jax.random.permutation(k, size)
                minibatches = jax.tree.map(
                    lambda x: jnp.take(x, perm, axis=0).reshape(
                        (config["NUM_MINIBATCHES"], -1) + x.shape[1:]), batch)

                def _update_minbatch(state, minibatch):
                    (loss, _), grads = jax.value_and_grad(_loss_fn, has_aux=True)(
                        state.params, minibatch)
                    return state.apply_gradients(grads=grads), loss

                state, losses = jax.lax.scan(_update_minbatch, state, minibatches)
                return (state, rng), losses

            (state, _), losses = jax.lax.scan(_update_epoch, (state, rng), None,
                                              config["UPDATE_EPOCHS"])
            return state, losses.mean()

        def _update_step(runner_state, unused):
            runner_state, (traj, seen) = jax.lax.scan(_env_step, runner_state, None, steps)
            states, env_state, last_obs, rng = runner_state
            metric = {"returned_episode_returns": seen["returned_episode_returns"].mean()}
            new_states = {}
            for g in groups:
                rng, k = jax.random.split(rng)
                new_states[g], metric[f"loss_{g}"] = _update_group(g, states[g], traj[g],
                                                                   last_obs, k)
            return (new_states, env_state, last_obs, rng), (metric, seen)

        rng, k = jax.random.split(rng)
        runner_state, (metrics, seen) = jax.lax.scan(
            _update_step, (states, env_state, obsv, k), None, config["NUM_UPDATES"])
        return {"runner_state": runner_state, "metrics": metrics, "seen": seen,
                "reset_keys": reset_keys, "reset_obs": obsv, "initial_params": {
                    g: s.params for g, s in states.items()}}

    return train


#: A short run's settings (JaxMARL's config keys): one update is NUM_ENVS games x
#: NUM_STEPS env steps; with the game below an episode is 100 world steps plus the
#: principal's 2 turns, so NUM_STEPS = 102 is one episode per game and update.
CONFIG = {"NUM_ENVS": 4, "NUM_STEPS": 102, "NUM_UPDATES": 5, "UPDATE_EPOCHS": 2,
          "NUM_MINIBATCHES": 2, "LR": 3e-4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95,
          "CLIP_EPS": 0.2, "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5}
GAME = {"num_players": 3, "episode_length": 100, "tax_period": 50}


def main() -> None:
    """Trains CONFIG (or the flags' sizes) and prints each update's finished episodes,
    their mean returns per group and the losses."""
    from sed_meltingpot.twin.jaxmarl_env import SEDJaxMARLEnv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_updates", type=int, default=CONFIG["NUM_UPDATES"])
    parser.add_argument("--num_envs", type=int, default=CONFIG["NUM_ENVS"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = CONFIG | {"NUM_UPDATES": args.num_updates, "NUM_ENVS": args.num_envs}
    env = SEDJaxMARLEnv(**GAME, principal="learned", seed=args.seed)
    print(f"agents: {env.agents}; types (selfishness): "
          f"{[round(s, 3) for s in env.config.selfishness]}")
    start = time.time()
    out = jax.block_until_ready(jax.jit(make_train(config, env))(
        jax.random.PRNGKey(args.seed)))
    done = np.asarray(out["seen"]["done"]["__all__"])  # (updates, steps, envs)
    returns = np.asarray(out["seen"]["returned_episode_returns"])  # (..., envs, agents)
    players = [env.agents.index(a) for a in env.players]
    for u in range(config["NUM_UPDATES"]):
        ended = returns[u][done[u]]  # (episodes, agents): each finished episode's return
        text = (f"player return {ended[:, players].mean():.3f}, principal return "
                f"{ended[:, -1].mean():.3f}" if len(ended) else "no return")
        print(f"update {u + 1}: {len(ended)} episodes ended, {text}, loss players "
              f"{float(out['metrics']['loss_players'][u]):.4f} principal "
              f"{float(out['metrics']['loss_principal'][u]):.4f}")
    print(f"episodes finished: {int(done.sum())} in {time.time() - start:.1f}s "
          f"(compile included)")


if __name__ == "__main__":
    main()
