"""One tax period of play on vmapped twin games, written once for training and evaluation.

A period is the principal's turn (`principal_turn`: a learned network samples one rate
level per bracket, the random principal plays levels its caller drew, a fixed schedule
plays its rates) and then `tax_period` steps of the players (`players_steps`: the shared
network samples every player's action). The trainer (`training/jax/ppo.py`) keeps what the
period returns as transitions and resets finished games; evaluation (`training/jax/play.py`)
plays one episode of periods and reads its metrics. Each caller splits its own keys and
passes the principal's and the steps' keys in, so both keep their key schedules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sed_meltingpot.training.jax import networks
from sed_meltingpot.training.jax.protocol import TrainableGame

#: The principal kinds a period is played for (`ppo_config.parse_scripted`'s names).
KINDS = ("learned", "random", "rates")


class Transitions(NamedTuple):
    """One module's rollout, time-major (T, games[, players])."""

    image: jax.Array  # uint8
    features: jax.Array
    action: jax.Array
    logp: jax.Array
    value: jax.Array
    reward: jax.Array
    done: jax.Array


class Turn(NamedTuple):
    """The principal's decision at a period start, on the observation it saw."""

    image: jax.Array
    features: jax.Array
    levels: jax.Array  # int32 (E, B): the levels played (a fixed schedule: its rates' levels)
    logp: jax.Array  # f32 (E,); zeros unless learned
    value: jax.Array  # f32 (E,); zeros unless learned
    head_entropy: jax.Array  # f32 (E, B); zeros unless learned


class PeriodPlay(NamedTuple):
    principal_turn: Callable[..., tuple[Any, Any, Turn]]
    players_steps: Callable[..., tuple[tuple[Any, Any, jax.Array], dict[str, Any]]]


def make_period_play(game: TrainableGame, kind: str, players_net: Any | None,
                     principal_net: Any | None, num_envs: int, num_brackets: int,
                     num_levels: int, period_length: int, num_actions: int = 0
                     ) -> PeriodPlay:
    """The two halves of a period for `num_envs` games of `game` and a principal of
    `kind` ('learned' | 'random' | 'rates', as `ppo_config.parse_scripted` names it).
    Without a players' network (`players_net=None`: the lever analysis's untrained
    players) the players act uniformly over `num_actions`."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: must be one of {', '.join(KINDS)}")
    if kind == "learned" and principal_net is None:
        raise ValueError("kind='learned' needs a principal_net")
    if players_net is None and num_actions < 1:
        raise ValueError(f"num_actions={num_actions}: players without a network act "
                         "uniformly over num_actions >= 1")
    E, B, K = num_envs, num_brackets, num_levels
    step_v = jax.vmap(game.step)
    set_levels_v = jax.vmap(game.set_rate_levels, in_axes=(0, 0, None))
    set_rates_v = jax.vmap(game.set_rates, in_axes=(0, 0, None))

    def principal_turn(principal_params: Any, game_state: Any, obs: Any, key: jax.Array,
                       cap: Any, rates: jax.Array, random_levels: jax.Array | None = None
                       ) -> tuple[Any, Any, Turn]:
        """(game_state, obs, Turn) after the principal set this period's rates (times
        `cap`). `rates` f32[B]: a fixed schedule's; `random_levels` int32 (E, B): the
        random principal's draw, which the caller makes (training and evaluation draw
        from different key streams)."""
        logp = value = jnp.zeros(E, jnp.float32)
        head_entropy = jnp.zeros((E, B), jnp.float32)
        if kind == "rates":  # a fixed schedule (none: zeros), recorded as its levels
            fixed = jnp.broadcast_to(rates, (E, B))
            levels = jnp.rint(fixed * (K - 1)).astype(jnp.int32)
            game_state, new_obs = set_rates_v(game_state, fixed, cap)
        else:
            if kind == "learned":
                logits, value = principal_net.apply(principal_params, obs.principal_image,
                                                    obs.principal_features)
                per_head = logits.reshape((E, B, K))
                levels = jax.random.categorical(key, per_head, axis=-1).astype(jnp.int32)
                logp, _ = networks.multi_categorical_logp_entropy(logits, levels, B)
                _, head_entropy = networks.categorical_logp_entropy(per_head, levels)
            elif random_levels is None:
                raise ValueError("the random principal's turn needs random_levels "
                                 "(int32 (num_envs, num_brackets)), drawn by the caller")
            else:
                levels = random_levels
            game_state, new_obs = set_levels_v(game_state, levels, cap)
        turn = Turn(obs.principal_image, obs.principal_features, levels, logp, value,
                    head_entropy)
        return game_state, new_obs, turn

    def players_steps(players_params: Any, game_state: Any, obs: Any, returns: jax.Array,
                      key: jax.Array) -> tuple[tuple[Any, Any, jax.Array], dict[str, Any]]:
        """The period's `period_length` steps (`lax.scan`): ((game_state, obs, returns +
        the players' rewards), per step {"t": Transitions, "principal_reward", "done",
        "info": the game's step info}). No reset: episodes end only at a period's end."""
        def step(carry, k):
            game_state, obs, returns = carry
            k_act, k_env = jax.random.split(k)
            if players_net is None:
                actions = jax.random.randint(k_act, obs.player_features.shape[:2], 0,
                                             num_actions).astype(jnp.int32)
                logp = value = jnp.zeros(actions.shape, jnp.float32)
            else:
                logits, value = players_net.apply(players_params, obs.player_image,
                                                  obs.player_features)
                actions = jax.random.categorical(k_act, logits, axis=-1).astype(jnp.int32)
                logp, _ = networks.categorical_logp_entropy(logits, actions)
            game_state, new_obs, rewards, principal_reward, done, info = step_v(
                game_state, actions, jax.random.split(k_env, E))
            rewards = rewards.astype(jnp.float32)
            transition = Transitions(obs.player_image, obs.player_features, actions, logp,
                                     value, rewards, done)
            out = {"t": transition, "principal_reward": principal_reward, "done": done,
                   "info": info}
            return (game_state, new_obs, returns + rewards), out

        return jax.lax.scan(step, (game_state, obs, returns),
                            jax.random.split(key, period_length))

    return PeriodPlay(principal_turn, players_steps)
