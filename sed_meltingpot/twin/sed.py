"""The Social Environment Design game on device: `SEDGame` + `SEDMultiAgentEnv` in JAX.

`SEDTwin` plays paper Section 4's game on top of the twin world (`twin/env.py`) with
the rules of `sed_meltingpot/game/sed_game.py` and the observations and turn order of
`sed_meltingpot/envs/rllib_env.py`:

* the principal acts at each tax period's start (`principal_due`, `set_rate_levels`):
  levels -> `GameConfig.rate_levels`, the divergence projection (L-inf only), times the
  curriculum's tax cap;
* each step the world moves (`TwinEnv.step`), then the SED layer (`sed_step`, a pure
  function of that step's apples eaten, NEARBY, ZAPPED and READY_TO_SHOOT) settles the
  bracket tax at the period's last step, redistributes it evenly in that step's reward,
  mixes the rewards by paper Eq. 8 with that step's NEARBY, and pays the principal the
  change of W_eta of the round's cumulative apples (or post-tax incomes);
* continual rounds (`rounds_per_episode > 1`) keep the world, vote again and reset the
  round's counters; the episode ends after `episode_length` steps.

The rules are not written here: they are `kernel.py`'s (period and round boundaries,
settlement, objective tracking, features, episode metrics, the vote), run with
`xp=jax.numpy`, as `SEDGame` runs them with `xp=numpy`; the formulas inside are the
array-namespace cores of `tax.py`, `rewards.py`, `welfare.py`, `voting.py` and
`constraints.py`. The SED layer works in float32; `SEDGame` in float64.

`sed_step` being a pure function of per-step signals is what `tests/test_twin_sed.py`
uses to replay Lua episodes of `SEDGame` through it and compare every number.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sed_meltingpot.core import constraints, rewards, tax, voting, welfare
from sed_meltingpot.game import kernel
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.kernel import Metrics, SEDState
from sed_meltingpot.twin import render
from sed_meltingpot.twin.env import TwinEnv, TwinState, ready_to_shoot

__all__ = ["GameState", "Metrics", "Obs", "SEDState", "SEDTwin"]

OBS_MODES = {"tiles": 1, "pixels": render.SPRITE}  # obs_mode -> pixels per tile

# The built-in rules, whose JAX form (voting.VOTE_CORES) is the same definition.
_BUILTIN_VOTES = {"mean": voting.mean_vote, "median": voting.median_vote,
                  "majority": voting.majority_vote}


class Obs(NamedTuple):
    """What the agents see, as `SEDMultiAgentEnv` builds it (one game; vmap adds axes).

    player_image uint8[n, 11p, 11p, 3 * frame_stack]: last views, oldest first.
    player_features f32[n, B + 3]: [sigma, rates (B), period position, ready_to_shoot].
    principal_image uint8[H p, W p, 3]: the world at p pixels per tile.
    principal_features f32[2n + B + 2]: [log1p last-period apples (n), log1p round
    apples (n), eta, rates (B), period_in_round / periods_per_round].
    """

    player_image: jax.Array
    player_features: jax.Array
    principal_image: jax.Array
    principal_features: jax.Array


# The kernel's state is a plain frozen dataclass (no JAX in kernel.py); here it becomes
# a pytree, so it can live in jitted and vmapped programs.
for _cls in (Metrics, SEDState):
    jax.tree_util.register_dataclass(
        _cls, data_fields=[f.name for f in dataclasses.fields(_cls)], meta_fields=[])


@struct.dataclass
class GameState:
    """One game on device: the world, the SED layer and the players' frame stacks."""

    env: TwinState
    sed: SEDState
    frames: jax.Array  # uint8[n, 11p, 11p, 3 * frame_stack], oldest frame first


def _f32(x: Any) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


class SEDTwin:
    """See the module docstring. Static: holds only the config and the twin env."""

    def __init__(self, game_config: GameConfig | None = None, obs_mode: str = "tiles",
                 frame_stack: int = 1, env: TwinEnv | None = None,
                 principal_image_every_step: bool = True) -> None:
        """`principal_image_every_step=False` leaves Obs.principal_image zero after a
        step (the world image is only read at the principal's turn; rendering it every
        step costs about half the players' views with `pixels`): call
        `principal_image(g)` at the turn instead."""
        cfg = self.config = (game_config or GameConfig()).validate()
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={obs_mode!r} must be one of {sorted(OBS_MODES)}")
        if not isinstance(frame_stack, int) or isinstance(frame_stack, bool) or frame_stack < 1:
            raise ValueError(f"frame_stack={frame_stack!r} must be an integer >= 1")
        if math.isfinite(cfg.divergence_delta) and cfg.divergence_norm != "linf":
            raise ValueError(
                f"divergence_norm={cfg.divergence_norm!r} with a finite divergence_delta="
                f"{cfg.divergence_delta} has no JAX form in the twin; use divergence_norm="
                "'linf' or divergence_delta=inf (the Lua path supports 'l1')")
        self.obs_mode, self.frame_stack = obs_mode, frame_stack
        self.principal_image_every_step = bool(principal_image_every_step)
        self.pixels_per_tile = OBS_MODES[obs_mode]
        self.env = env if env is not None else TwinEnv.create(
            cfg.substrate, num_players=cfg.num_players, episode_length=cfg.episode_length,
            regrowth_probabilities=cfg.regrowth_probabilities, map=cfg.map)
        if (self.env.num_players, self.env.episode_length) != (cfg.num_players,
                                                                cfg.episode_length):
            raise ValueError(
                f"env has num_players={self.env.num_players}, episode_length="
                f"{self.env.episode_length}; the game config {cfg.num_players}, "
                f"{cfg.episode_length}")
        self.num_players, self.num_brackets = cfg.num_players, cfg.num_brackets
        self.num_rate_levels, self.num_actions = cfg.num_rate_levels, self.env.num_actions
        self._levels = np.asarray(cfg.rate_levels, np.float64)
        self._reference = (np.zeros(cfg.num_brackets) if cfg.reference_rates is None else
                           tax.validate_rates(cfg.reference_rates, cfg.num_brackets,
                                              "reference_rates"))
        # The objective: a registered core, unless a custom function took the name.
        core = welfare.welfare_core(cfg.welfare)
        if core is None:
            raise ValueError(f"welfare={cfg.welfare!r} has no JAX form; the twin serves "
                             f"{sorted(welfare.WELFARE_CORES)}")
        self._welfare_core = core
        # The vote: on device for the built-in rules and `fixed:<eta>` (voting.vote_core);
        # a custom registered rule runs on the host (the types are fixed per run, so eta
        # is a constant of the run).
        name = cfg.voting_rule
        rule = voting.get_voting_rule(name)
        on_device = (voting.fixed_eta(name) is not None
                     or _BUILTIN_VOTES.get(name) is rule)
        self._vote_core = voting.vote_core(name) if on_device else None
        self._host_eta = None
        if not on_device and cfg.selfishness is not None:
            self._host_eta = self.host_vote(cfg.selfishness)
        self._rules = kernel.make_rules(
            cfg, welfare_fn=self._welfare_core, vote=lambda sigma, fixed, xp: self.vote(
                sigma, fixed), project=self._project, dtype=jnp.float32)

    @property
    def num_periods(self) -> int:
        """Tax periods per episode (the kernel's)."""
        return self._rules.num_periods

    @property
    def periods_per_round(self) -> int:
        """Tax periods per voting round (the kernel's)."""
        return self._rules.periods_per_round

    # ------------------------------------------------------------------ shapes
    def obs_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of one game's `Obs` fields (as SEDMultiAgentEnv's spaces, per player)."""
        p, n, b = self.pixels_per_tile, self.num_players, self.num_brackets
        return {"player_image": (n, render.VIEW_H * p, render.VIEW_W * p, 3 * self.frame_stack),
                "player_features": (n, b + 3),
                "principal_image": (self.env.height * p, self.env.width * p, 3),
                "principal_features": (2 * n + b + 2,)}

    # -------------------------------------------------------------------- vote
    def host_vote(self, selfishness: Any) -> float:
        """eta on the host with any registered rule (SEDGame.vote)."""
        cfg = self.config
        sigma = rewards.validate_selfishness(selfishness, num_players=cfg.num_players)
        eta = voting.vote(voting.get_voting_rule(cfg.voting_rule), sigma)
        return voting.blend_principal(eta, cfg.principal_weight, cfg.principal_type)

    def vote(self, sigma: jax.Array, fixed_eta: Any = None) -> jax.Array:
        """eta = (1 - w) f(sigma) + w theta_principal (SEDGame.vote), on device if possible.

        `fixed_eta` (f32, NaN for none) replaces f(sigma) at run time: the `fixed:<eta>`
        voting rules as an input rather than a constant, so that runs differing only in
        the fixed eta share one compiled program (`ppo.compile_game`)."""
        cfg = self.config
        if self._host_eta is not None:
            return _f32(self._host_eta)
        if self._vote_core is None:
            try:
                concrete = np.asarray(sigma)
            except jax.errors.TracerArrayConversionError as err:
                raise ValueError(
                    f"voting_rule={cfg.voting_rule!r} has no JAX form: give "
                    "GameConfig.selfishness (eta is then computed once on the host) or "
                    "call reset outside jit/vmap") from err
            return _f32(self.host_vote(concrete))
        eta = self._vote_core(_f32(sigma), jnp)
        if fixed_eta is not None:
            eta = jnp.where(jnp.isnan(_f32(fixed_eta)), eta, _f32(fixed_eta))
        return _f32(voting.blend_principal(eta, cfg.principal_weight, cfg.principal_type))

    # ------------------------------------------------------- the SED layer (pure)
    def _project(self, requested: jax.Array, xp: Any = jnp) -> jax.Array:
        """Onto D(phi_0, phi) <= delta in L-inf (delta = inf clips to the box only)."""
        return constraints.project_linf_core(
            requested, _f32(self._reference), _f32(self.config.divergence_delta), jnp)

    def sed_reset(self, selfishness: Any, ready: Any, fixed_eta: Any = None) -> SEDState:
        """A fresh episode's SED state (SEDGame.reset: rates 0, round 0, principal due);
        `fixed_eta` as in `vote`."""
        return kernel.reset(self._rules, selfishness, ready, fixed_eta, jnp)

    def sed_set_rates(self, s: SEDState, rates: Any, tax_cap: Any) -> SEDState:
        """SEDGame.set_rates for rates in [0, 1]^B (clipped), applied only while due
        (`kernel.set_rates`; no exception can be raised under jit)."""
        return kernel.set_rates(self._rules, s, rates, tax_cap, jnp)

    def levels_to_rates(self, levels: Any) -> jax.Array:
        """Level indices (clipped to [0, K-1]) -> rates via GameConfig.rate_levels."""
        levels = jnp.clip(jnp.asarray(levels, jnp.int32), 0, self.num_rate_levels - 1)
        return _f32(self._levels)[levels]

    def sed_step(self, s: SEDState, apples: Any, nearby: Any, zapped: Any, ready: Any
                 ) -> tuple[SEDState, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """SEDGame.step after the world moved, from that step's signals (`kernel.step`).

        apples f32[n] eaten this step, nearby bool[n, n] (or `rewards.SeenLists`, as a
        grid world reports it: `TwinEnv.locality`), zapped bool[n], ready f32[n].
        Returns (state, rewards f32[n] (Eq. 8), principal_reward f32, done bool, info).
        """
        return kernel.step(self._rules, s, apples, nearby, zapped, ready, jnp)

    # ---------------------------------------------------------------- features
    def player_features(self, s: SEDState) -> jax.Array:
        """f32[n, B + 3]: [sigma, rates, period position, ready_to_shoot]."""
        return kernel.player_features(self._rules, s, jnp)

    def principal_features(self, s: SEDState) -> jax.Array:
        """f32[2n + B + 2]: [log1p last-period apples, log1p round apples, eta, rates,
        period_in_round / periods_per_round]."""
        return kernel.principal_features(self._rules, s, jnp)

    # ------------------------------------------------------------- whole game
    def _views(self, env_state: TwinState) -> jax.Array:
        if self.obs_mode == "tiles":
            return render.tiles(self.env, env_state)
        return render.pixels(self.env, env_state)

    def _world(self, env_state: TwinState) -> jax.Array:
        if self.obs_mode == "tiles":
            return render.world_tiles(self.env, env_state)
        return render.world_rgb(self.env, env_state)

    def principal_image(self, g: GameState) -> jax.Array:
        """uint8[H p, W p, 3]: the world at `pixels_per_tile` (WORLD.RGB or its tiles)."""
        return self._world(g.env)

    def observe(self, g: GameState) -> Obs:
        """The current `Obs` (features read from the SED state, images from frames/world)."""
        return Obs(g.frames, self.player_features(g.sed), self._world(g.env),
                   self.principal_features(g.sed))

    def reset_from(self, env_state: TwinState, selfishness: Any, fixed_eta: Any = None
                   ) -> tuple[GameState, Obs]:
        """A new episode from a given world state (e.g. the Lua substrate's)."""
        views = self._views(env_state)
        frames = jnp.tile(views, (1, 1, 1, self.frame_stack))  # frame_stack copies
        sed = self.sed_reset(selfishness, ready_to_shoot(env_state.alive, env_state.zap_timer),
                             fixed_eta)
        g = GameState(env=env_state, sed=sed, frames=frames)
        return g, self.observe(g)

    def reset(self, key: jax.Array, selfishness: Any, fixed_eta: Any = None
              ) -> tuple[GameState, Obs]:
        """A new episode: a fresh world from `key`, types `selfishness` f32[n]; `fixed_eta`
        as in `vote`."""
        return self.reset_from(self.env.reset(key), selfishness, fixed_eta)

    def principal_due(self, g: GameState) -> jax.Array:
        """True at a tax period's start until the rates are set (SEDGame.principal_due)."""
        return g.sed.principal_due

    def set_rates(self, g: GameState, rates: Any, tax_cap: Any = 1.0
                  ) -> tuple[GameState, Obs]:
        """The principal's rates f32[B] for the period now starting (no-op unless due)."""
        g = g.replace(sed=self.sed_set_rates(g.sed, rates, tax_cap))
        return g, self.observe(g)

    def set_rate_levels(self, g: GameState, levels: Any, tax_cap: Any = 1.0
                        ) -> tuple[GameState, Obs]:
        """`set_rates` with one level index int32[B] per bracket (SEDGame.set_rate_levels)."""
        return self.set_rates(g, self.levels_to_rates(levels), tax_cap)

    def step(self, g: GameState, actions: jax.Array, key: jax.Array
             ) -> tuple[GameState, Obs, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One step of all players -> (state, obs, rewards f32[n], principal_reward f32,
        done bool, info). Does not reset after `done` (the caller does) and assumes the
        principal has acted when due (no check is possible under jit)."""
        env_state, out = self.env.step(g.env, actions, key)
        return self.step_from(g, env_state, out)

    def step_from(self, g: GameState, env_state: TwinState, out: Any
                  ) -> tuple[GameState, Obs, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """`step` given the world's step result (`TwinEnv.step`'s state and StepOut)."""
        sed, step_rewards, principal_reward, done, info = self.sed_step(
            g.sed, out.apples_eaten, out.nearby, out.zapped, out.ready_to_shoot)
        info["num_apples"] = out.num_apples
        channels = 3
        frames = jnp.concatenate([g.frames[..., channels:], self._views(env_state)], axis=-1)
        g = GameState(env=env_state, sed=sed, frames=frames)
        obs = self.observe(g) if self.principal_image_every_step else Obs(
            frames, self.player_features(sed),
            jnp.zeros(self.obs_shapes()["principal_image"], jnp.uint8),
            self.principal_features(sed))
        return g, obs, step_rewards, principal_reward, done, info

    # ---------------------------------------------------------------- metrics
    def episode_metrics(self, g: GameState | SEDState) -> dict[str, jax.Array]:
        """SEDGame.episode_metrics' keys from the device accumulators (jit/vmap-able;
        `kernel.episode_metrics`). `period_rates` holds `num_periods` rows, of which
        `metrics.periods` are settled; the others are zero."""
        s = g.sed if isinstance(g, GameState) else g
        return kernel.episode_metrics(self._rules, s, jnp)
