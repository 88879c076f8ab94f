"""The SED game (twin world + SED layer) as a JaxMARL `MultiAgentEnv` (issue 18).

`SEDJaxMARLEnv(**GameConfig fields, principal=..., obs_mode=..., ...)` wraps `SEDTwin`
(twin/sed.py) in JaxMARL's API: `reset(key) -> (obs, state)`, `step(key, state, actions)
-> (obs, state, rewards, dones, infos)` with JaxMARL's auto-reset (`MultiAgentEnv.step`,
on `dones["__all__"]`), `agents`, and `observation_space(agent)` / `action_space(agent)`
from `jaxmarl.environments.spaces`. Everything is a pure function of its arguments:
jit-, vmap- and LogWrapper-able. It needs the `jaxmarl` extra.

Agents and what they see (what the jax trainer's networks see, `training/jax/ppo.py`):
* `player_0` .. `player_{n-1}`: Discrete(8) (Melting Pot's actions). Observation
  {"image": uint8 (11p, 11p, 3 * frame_stack), oldest frame first, p = 1 for
  obs_mode="tiles" (the fast preset) or 8 for "pixels" (the paper preset);
  "features": f32 [sigma, rates (B), period position, ready_to_shoot]}.
* `principal`, only with `principal="learned"` (an agent of its own): MultiDiscrete([K] * B),
  one rate level per bracket. It acts at each tax period's start, as in `rllib_env.py`:
  that step is its **turn**, a step of its own that sets the rates and does not move the
  world (the players' actions are ignored there; they then see the new rates). An
  episode therefore has `episode_length + episode_length / tax_period` env steps,
  RLlib's count. Observation {"image": uint8 world (H p, W p, 3), "features": f32 [log1p
  last-period apples (n), log1p round apples (n), eta, rates (B), period in round],
  "turn": f32[1], 1.0 at its turn}; its action is read only then.
* a scripted principal instead (`principal="none" | "fixed:r0,r1,r2" | "random"`, a
  `principals.FixedRates` / `RandomPrincipal`, or a jittable `schedule(key, observation)
  -> rates f32[B]` on the principal's {"image", "features"}): not an agent; it sets the
  rates inside the step that ends a period (and in `reset`), so the observation the
  players get already shows them, as `training/jax/ppo.py` plays its scripted principals.
`obs_format="flat"` gives every agent one f32 vector instead (the dict's parts in the
order above, image values 0-255 unscaled), for JaxMARL code that expects flat
observations (e.g. `CTRolloutManager`).

Rewards are SEDTwin's: a player's is paper Eq. 8 of that step's post-tax incomes (apples
when eaten; the period's net tax transfer arrives at the period's last step); the
learned principal's arrives every world step as the change of W_eta that step
(`SEDTwin.step`'s principal reward), so its rewards from one turn to the next sum to the
period's objective change, the reward RLlib and the jax trainer give that turn's
decision. Every agent gets 0 at a principal's turn. Infos hold, per agent
(shape (num_agents,), as JaxMARL's baselines reshape them): "acted" (whose action took
effect this step: the principal at its turn, the players otherwise), "apples" and
"r_tax" (a player's apples eaten and post-tax income this step; 0 for the principal).
An episode's end is a time limit (README, "Episode end"); JaxMARL reports it in `dones`.

Keys: `reset(key)` builds the world from `split(key)[0]` and draws a scripted principal's
first rates from `split(key)[1]`; `step_env(key, ...)` steps the world with
`split(key)[0]` and draws the scripted principal's next rates from `split(key)[1]`
(JaxMARL's `step` first splits off its reset key). Types sigma are fixed per env
(`GameConfig.selfishness`, else drawn from `seed` like `SEDGame`), and the tax cap is a
constant (`tax_cap`, default 1: the end of the training curriculum).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sed_meltingpot.core import rewards
from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.game import principals
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.twin.sed import GameState, SEDTwin

with extra_import("jaxmarl", __name__):
    from jaxmarl.environments import spaces
    from jaxmarl.environments.multi_agent_env import MultiAgentEnv, State

__all__ = ["OBS_FORMATS", "PRINCIPAL", "SEDEnvState", "SEDJaxMARLEnv", "player_id"]

PRINCIPAL = "principal"
OBS_FORMATS = ("dict", "flat")
#: A jittable scripted principal: (key, {"image", "features"}) -> rates f32[B] in [0, 1].
Schedule = Callable[[jax.Array, dict[str, jax.Array]], jax.Array]


def player_id(i: int) -> str:
    """The agent name of player i (rllib_env's names)."""
    return f"player_{i}"


@struct.dataclass
class SEDEnvState(State):
    """JaxMARL's State (done; step = env steps this episode, principal turns included)
    plus the whole game on device."""

    game: GameState


def _game_config(game_config: GameConfig | None, fields: Mapping[str, Any]) -> GameConfig:
    """GameConfig from a config and/or its fields; unknown names raise a TypeError."""
    known = {f.name for f in dataclasses.fields(GameConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"SEDJaxMARLEnv got unknown arguments {unknown}; GameConfig fields "
                        f"are {sorted(known)}")
    return dataclasses.replace(game_config or GameConfig(), **fields).validate()


def _schedule(principal: Any, config: GameConfig) -> Schedule:
    """A scripted principal as a jittable schedule (see the module docstring)."""
    b = config.num_brackets
    if isinstance(principal, str):
        principal = principals.parse_principal(principal, num_brackets=b,
                                               rate_levels=config.rate_levels)
    if isinstance(principal, principals.FixedRates):
        if principal.rates.shape != (b,):
            raise ValueError(f"{principal!r} has {principal.rates.size} rates; the game has "
                             f"{b} brackets")
        rates = jnp.asarray(principal.rates, jnp.float32)
        return lambda key, observation: rates
    if isinstance(principal, principals.RandomPrincipal):
        if principal.num_brackets != b:
            raise ValueError(f"RandomPrincipal has num_brackets={principal.num_brackets}; "
                             f"the game has {b}")
        levels = jnp.asarray(principal.rate_levels, jnp.float32)
        return lambda key, observation: levels[
            jax.random.randint(key, (b,), 0, levels.shape[0])]
    if isinstance(principal, principals.Principal) or not callable(principal):
        raise TypeError(
            f"principal={principal!r}: give 'learned' (an agent), 'none', 'fixed:r0,..', "
            "'random', a principals.FixedRates / RandomPrincipal, or a jittable function "
            "(key, observation) -> rates; a host-side Principal cannot run under jit")
    return principal


class SEDJaxMARLEnv(MultiAgentEnv):
    """See the module docstring."""

    def __init__(self, game_config: GameConfig | None = None, *,
                 principal: str | principals.Principal | Schedule = "learned",
                 obs_mode: str = "tiles", frame_stack: int = 1, obs_format: str = "dict",
                 seed: int | None = 0, tax_cap: float = 1.0, **game_fields: Any) -> None:
        """`game_fields` are GameConfig's (num_players=..., tax_period=...), applied over
        `game_config`; `seed` draws the types when GameConfig.selfishness is None."""
        config = _game_config(game_config, game_fields)
        n = config.num_players
        sigma = (rewards.sample_selfishness(n, seed) if config.selfishness is None
                 else rewards.validate_selfishness(config.selfishness, num_players=n))
        if obs_format not in OBS_FORMATS:
            raise ValueError(f"obs_format={obs_format!r} must be one of {OBS_FORMATS}")
        if not 0.0 <= float(tax_cap) <= 1.0:
            raise ValueError(f"tax_cap={tax_cap!r} is outside [0, 1]")
        self.config = dataclasses.replace(config, selfishness=tuple(float(s) for s in sigma))
        self.selfishness = jnp.asarray(sigma, jnp.float32)
        self.twin = SEDTwin(self.config, obs_mode=obs_mode, frame_stack=frame_stack,
                            principal_image_every_step=False)
        self.learned = isinstance(principal, str) and principal == "learned"
        self._schedule = None if self.learned else _schedule(principal, self.config)
        self.principal, self.obs_format, self.tax_cap = principal, obs_format, float(tax_cap)
        self.players = [player_id(i) for i in range(n)]
        agents = self.players + ([PRINCIPAL] if self.learned else [])
        super().__init__(num_agents=len(agents))
        self.agents = agents

        shapes, b = self.twin.obs_shapes(), config.num_brackets
        player_space = {
            "image": spaces.Box(0, 255, shapes["player_image"][1:], jnp.uint8),
            "features": spaces.Box(0.0, 1.0, shapes["player_features"][1:], jnp.float32)}
        self.observation_spaces = {a: self._space(player_space) for a in self.players}
        self.action_spaces = {a: spaces.Discrete(self.twin.num_actions) for a in self.players}
        if self.learned:
            self.observation_spaces[PRINCIPAL] = self._space({
                "image": spaces.Box(0, 255, shapes["principal_image"], jnp.uint8),
                "features": spaces.Box(0.0, jnp.inf, shapes["principal_features"],
                                       jnp.float32),
                "turn": spaces.Box(0.0, 1.0, (1,), jnp.float32)})
            self.action_spaces[PRINCIPAL] = spaces.MultiDiscrete(
                [config.num_rate_levels] * b)

    # ------------------------------------------------------------ spaces
    def _space(self, parts: dict[str, Any]) -> Any:
        """The dict space, or for obs_format="flat" one f32 Box with the parts' bounds."""
        if self.obs_format == "dict":
            return spaces.Dict(parts)

        def bound(value: Any, shape: tuple[int, ...]) -> np.ndarray:
            return np.broadcast_to(np.asarray(value, np.float32), shape).ravel()

        low = np.concatenate([bound(s.low, s.shape) for s in parts.values()])
        high = np.concatenate([bound(s.high, s.shape) for s in parts.values()])
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), low.shape, jnp.float32)

    def _pack(self, parts: dict[str, jax.Array]) -> Any:
        if self.obs_format == "dict":
            return parts
        return jnp.concatenate([jnp.ravel(v).astype(jnp.float32) for v in parts.values()])

    @property
    def agent_classes(self) -> dict[str, list[str]]:
        """The players share a policy in the jax trainer; the principal has its own."""
        return {"players": list(self.players),
                **({"principal": [PRINCIPAL]} if self.learned else {})}

    # -------------------------------------------------------- observations
    def _principal_parts(self, g: GameState) -> dict[str, jax.Array]:
        return {"image": self.twin.principal_image(g),
                "features": self.twin.principal_features(g.sed)}

    def get_obs(self, state: SEDEnvState) -> dict[str, Any]:
        """Every agent's observation of `state` (JaxMARL's reset_state path uses it too)."""
        g = state.game
        features = self.twin.player_features(g.sed)
        obs = {a: self._pack({"image": g.frames[i], "features": features[i]})
               for i, a in enumerate(self.players)}
        if self.learned:
            turn = g.sed.principal_due.astype(jnp.float32)[None]
            obs[PRINCIPAL] = self._pack({**self._principal_parts(g), "turn": turn})
        return obs

    @partial(jax.jit, static_argnums=(0,))
    def get_avail_actions(self, state: SEDEnvState) -> dict[str, jax.Array]:
        """Every action is always legal (the principal's is read only at its turn)."""
        avail = {a: jnp.ones(self.twin.num_actions, bool) for a in self.players}
        if self.learned:
            avail[PRINCIPAL] = jnp.ones(
                (self.config.num_brackets, self.config.num_rate_levels), bool)
        return avail

    # ------------------------------------------------------------ dynamics
    def _scripted_turn(self, g: GameState, key: jax.Array) -> GameState:
        """A scripted principal's rates for the period starting now (a no-op unless due)."""
        if self.learned:
            return g
        rates = self._schedule(key, self._principal_parts(g))
        return self.twin.set_rates(g, rates, self.tax_cap)[0]

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key: jax.Array) -> tuple[dict[str, Any], SEDEnvState]:
        k_world, k_principal = jax.random.split(key)
        g, _ = self.twin.reset(k_world, self.selfishness)
        state = SEDEnvState(done=jnp.zeros((), bool), step=jnp.zeros((), jnp.int32),
                            game=self._scripted_turn(g, k_principal))
        return self.get_obs(state), state

    def step_env(self, key: jax.Array, state: SEDEnvState, actions: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], SEDEnvState, dict[str, jax.Array],
                            dict[str, jax.Array], dict[str, jax.Array]]:
        """One env step without auto-reset: the principal's turn or a world step."""
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions lack {missing}: give one for each of {self.agents}")
        k_world, k_principal = jax.random.split(key)
        n = self.config.num_players
        moves = jnp.stack([jnp.asarray(actions[a], jnp.int32).reshape(()) for a in self.players])

        def world(g: GameState) -> tuple[Any, ...]:
            g, _, step_rewards, principal_reward, done, info = self.twin.step(g, moves, k_world)
            return (self._scripted_turn(g, k_principal), step_rewards, principal_reward, done,
                    info["apples"], info["r_tax"])

        if self.learned:
            def turn(g: GameState) -> tuple[Any, ...]:
                levels = jnp.asarray(actions[PRINCIPAL], jnp.int32).reshape(
                    self.config.num_brackets)
                g, _ = self.twin.set_rate_levels(g, levels, self.tax_cap)
                zeros = jnp.zeros(n, jnp.float32)
                return g, zeros, jnp.float32(0.0), jnp.zeros((), bool), zeros, zeros

            is_turn = state.game.sed.principal_due
            g, step_rewards, principal_reward, done, apples, r_tax = jax.lax.cond(
                is_turn, turn, world, state.game)
            acted = jnp.concatenate([jnp.broadcast_to(~is_turn, (n,)), is_turn[None]])
            zero = jnp.zeros(1, jnp.float32)
            apples, r_tax = jnp.concatenate([apples, zero]), jnp.concatenate([r_tax, zero])
        else:
            g, step_rewards, principal_reward, done, apples, r_tax = world(state.game)
            acted = jnp.ones(n, bool)
        state = SEDEnvState(done=done, step=state.step + 1, game=g)
        reward = {a: step_rewards[i] for i, a in enumerate(self.players)}
        if self.learned:
            reward[PRINCIPAL] = principal_reward
        dones = {a: done for a in self.agents} | {"__all__": done}
        infos = {"acted": acted, "apples": apples, "r_tax": r_tax}
        return self.get_obs(state), state, reward, dones, infos
