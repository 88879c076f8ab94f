"""The Social Environment Design game on device: `SEDGame` + `SEDMultiAgentEnv` in JAX.

`SEDTwin` plays paper Section 4's game on top of the twin world (`twin/env.py`) with
the rules of `sed_meltingpot/game.py` and the observations and turn order of
`sed_meltingpot/rllib_env.py`:

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

The formulas are not written here: the tax, the transfers, Eq. 8, W_eta, the Gini index
and the vote are the array-namespace cores of `tax.py`, `rewards.py`, `welfare.py`,
`voting.py` and `constraints.py`, called with `xp=jax.numpy` (the numpy API calls the
same cores with `xp=numpy`). The SED layer works in float32; `SEDGame` in float64.

`sed_step` being a pure function of per-step signals is what `tests/test_twin_sed.py`
uses to replay Lua episodes of `SEDGame` through it and compare every number.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sed_meltingpot import constraints, rewards, tax, voting, welfare
from sed_meltingpot.config import GameConfig
from sed_meltingpot.twin import render
from sed_meltingpot.twin.env import TwinEnv, TwinState, ready_to_shoot

__all__ = ["GameState", "Metrics", "Obs", "SEDState", "SEDTwin"]

OBS_MODES = {"tiles": 1, "pixels": render.SPRITE}  # obs_mode -> pixels per tile

# The built-in rules, whose JAX form (voting.VOTE_CORES) is the same definition.
_BUILTIN_VOTES = {"mean": voting.mean_vote, "median": voting.median_vote,
                  "majority": voting.majority_vote}
_BUILTIN_WELFARE = {"interpolated": welfare.interpolated,
                    "utilitarian": welfare._utilitarian_objective,
                    "egalitarian": welfare._egalitarian_objective,
                    "nash": welfare._nash_objective}


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


@struct.dataclass
class Metrics:
    """Per-episode accumulators for `SEDTwin.episode_metrics` (= SEDGame.episode_metrics).

    apples/income: f32[n] episode totals of apples eaten and of r_tax. zapped_steps:
    player-steps out of play. eat_time / eat_count: sum_t t * c_t and sum_t c_t over
    steps t = 0, 1, ... (sustainability). tax_revenue: sum of taxes. period_rates
    f32[P, B] / period_cap f32[P]: effective rates and cap of each settled period
    (P = episode_length / tax_period); periods: how many settled. round_objective /
    round_eta: sums over finished rounds; rounds: how many finished.
    principal_return: sum of the principal's per-step rewards.
    """

    apples: jax.Array
    income: jax.Array
    zapped_steps: jax.Array
    eat_time: jax.Array
    eat_count: jax.Array
    tax_revenue: jax.Array
    period_rates: jax.Array
    period_cap: jax.Array
    periods: jax.Array
    round_objective: jax.Array
    round_eta: jax.Array
    rounds: jax.Array
    principal_return: jax.Array


@struct.dataclass
class SEDState:
    """The SED layer's state (no world): the fields of `SEDGame` that the rules read.

    sigma f32[n] types; eta f32 the round's objective; rates f32[B] effective rates of
    the current period (requested f32[B] before projection and cap; tax_cap f32 the cap
    they were set under); step i32 steps taken in the episode; round_start i32 the step
    the round began at; round_index i32 the round within the episode; period_apples,
    last_period_apples, round_apples, round_taxed f32[n] (a_i of the running period,
    of the last settled one, the round's apples and post-tax incomes); objective f32
    W_eta of the round so far; principal_due bool; done bool (episode over); ready
    f32[n] READY_TO_SHOOT of the current frame (player features); metrics; fixed_eta f32
    the eta every round takes, a run input (NaN: the players vote; see `vote`).
    """

    sigma: jax.Array
    eta: jax.Array
    rates: jax.Array
    requested: jax.Array
    tax_cap: jax.Array
    step: jax.Array
    round_start: jax.Array
    round_index: jax.Array
    period_apples: jax.Array
    last_period_apples: jax.Array
    round_apples: jax.Array
    round_taxed: jax.Array
    objective: jax.Array
    principal_due: jax.Array
    done: jax.Array
    ready: jax.Array
    metrics: Metrics
    fixed_eta: jax.Array


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
        tau = tax.validate_thresholds(cfg.thresholds)
        self._lower, self._width = tau[:-1], np.diff(tau)
        self._levels = np.asarray(cfg.rate_levels, np.float64)
        self._reference = (np.zeros(cfg.num_brackets) if cfg.reference_rates is None else
                           tax.validate_rates(cfg.reference_rates, cfg.num_brackets,
                                              "reference_rates"))
        self.num_periods = cfg.episode_length // cfg.tax_period
        self.periods_per_round = cfg.round_length // cfg.tax_period
        # The objective: a registered core, unless a custom function took the name.
        fn = welfare.get_welfare(cfg.welfare)
        if _BUILTIN_WELFARE.get(cfg.welfare) is not fn:
            raise ValueError(f"welfare={cfg.welfare!r} has no JAX form; the twin serves "
                             f"{sorted(welfare.WELFARE_CORES)}")
        self._welfare_core = welfare.WELFARE_CORES[cfg.welfare]
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
        w = cfg.principal_weight
        return (1.0 - w) * eta + w * cfg.principal_type if w > 0 else eta

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
        w = cfg.principal_weight
        return _f32((1.0 - w) * eta + w * cfg.principal_type if w > 0 else eta)

    # ------------------------------------------------------- the SED layer (pure)
    def sed_reset(self, selfishness: Any, ready: Any, fixed_eta: Any = None) -> SEDState:
        """A fresh episode's SED state (SEDGame.reset: rates 0, round 0, principal due);
        `fixed_eta` as in `vote`."""
        n, b, p = self.num_players, self.num_brackets, self.num_periods
        sigma = _f32(selfishness)
        zeros, zb = jnp.zeros(n, jnp.float32), jnp.zeros(b, jnp.float32)
        zero, izero = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        metrics = Metrics(
            apples=zeros, income=zeros, zapped_steps=zero, eat_time=zero, eat_count=zero,
            tax_revenue=zero, period_rates=jnp.zeros((p, b), jnp.float32),
            period_cap=jnp.zeros(p, jnp.float32), periods=izero, round_objective=zero,
            round_eta=zero, rounds=izero, principal_return=zero)
        return SEDState(
            sigma=sigma, eta=self.vote(sigma, fixed_eta), rates=zb, requested=zb, tax_cap=_f32(1.0),
            step=izero, round_start=izero, round_index=izero, period_apples=zeros,
            last_period_apples=zeros, round_apples=zeros, round_taxed=zeros,
            objective=zero, principal_due=jnp.ones((), bool), done=jnp.zeros((), bool),
            ready=_f32(ready), metrics=metrics,
            fixed_eta=_f32(jnp.nan if fixed_eta is None else fixed_eta))

    def sed_set_rates(self, s: SEDState, rates: Any, tax_cap: Any) -> SEDState:
        """SEDGame.set_rates for rates in [0, 1]^B (clipped), applied only while due.

        Effective rates = projection onto D(phi_0, phi) <= delta (L-inf; delta = inf
        clips to the box only) times the cap. A call when the principal is not due
        leaves the state unchanged (no exception can be raised under jit).
        """
        cfg = self.config
        requested = jnp.clip(_f32(rates), 0.0, 1.0)
        projected = constraints.project_linf_core(
            requested, _f32(self._reference), _f32(cfg.divergence_delta), jnp)
        cap = _f32(tax_cap)
        due = s.principal_due
        return s.replace(
            requested=jnp.where(due, requested, s.requested),
            rates=jnp.where(due, projected * cap, s.rates),
            tax_cap=jnp.where(due, cap, s.tax_cap),
            principal_due=jnp.zeros((), bool))

    def levels_to_rates(self, levels: Any) -> jax.Array:
        """Level indices (clipped to [0, K-1]) -> rates via GameConfig.rate_levels."""
        levels = jnp.clip(jnp.asarray(levels, jnp.int32), 0, self.num_rate_levels - 1)
        return _f32(self._levels)[levels]

    def sed_step(self, s: SEDState, apples: Any, nearby: Any, zapped: Any, ready: Any
                 ) -> tuple[SEDState, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """SEDGame.step after the world moved, from that step's signals.

        apples f32[n] eaten this step, nearby bool[n, n], zapped bool[n], ready f32[n].
        Returns (state, rewards f32[n] (Eq. 8), principal_reward f32, done bool, info).
        """
        cfg = self.config
        apples, nearby = _f32(apples), jnp.asarray(nearby, bool)
        zapped, ready = jnp.asarray(zapped, bool), _f32(ready)
        step = s.step + 1
        step_in_round = step - s.round_start
        period_end = step_in_round % cfg.tax_period == 0
        round_end = step_in_round == cfg.round_length
        done = step == cfg.episode_length

        period_apples = s.period_apples + apples
        round_apples = s.round_apples + apples
        taxes = jnp.where(period_end, tax.bracket_tax_core(
            period_apples, s.rates, _f32(self._lower), _f32(self._width), jnp), 0.0)
        transfers = tax.transfers_core(taxes, jnp)  # 0 except at the period's end
        r_tax = apples + transfers
        round_taxed = s.round_taxed + r_tax
        step_rewards = rewards.mix_rewards_core(
            r_tax, s.sigma, nearby, cfg.neighbour_aggregate, jnp)
        value = self._welfare_core(round_taxed if cfg.welfare_on == "taxed" else round_apples,
                                   s.eta, jnp)
        value = _f32(value)
        principal_reward = value - s.objective

        m = s.metrics
        period_index = jnp.minimum(m.periods, self.num_periods - 1)
        metrics = m.replace(
            apples=m.apples + apples, income=m.income + r_tax,
            zapped_steps=m.zapped_steps + zapped.sum().astype(jnp.float32),
            eat_time=m.eat_time + (step - 1).astype(jnp.float32) * apples.sum(),
            eat_count=m.eat_count + apples.sum(),
            tax_revenue=m.tax_revenue + taxes.sum(),
            period_rates=jnp.where(period_end, m.period_rates.at[period_index].set(s.rates),
                                   m.period_rates),
            period_cap=jnp.where(period_end, m.period_cap.at[period_index].set(s.tax_cap),
                                 m.period_cap),
            periods=m.periods + period_end.astype(jnp.int32),
            round_objective=m.round_objective + jnp.where(round_end, value, 0.0),
            round_eta=m.round_eta + jnp.where(round_end, s.eta, 0.0),
            rounds=m.rounds + round_end.astype(jnp.int32),
            principal_return=m.principal_return + principal_reward)

        info = {
            "step": step, "round": s.round_index, "period": (step_in_round - 1) // cfg.tax_period,
            "apples": apples, "nearby": nearby, "zapped": zapped, "r_tax": r_tax,
            "taxes": taxes, "transfers": transfers, "tax_revenue": taxes.sum(),
            "rates": s.rates, "eta": s.eta, "objective": value,
            "period_end": period_end, "round_end": round_end,
        }
        new_round = round_end & ~done  # continual rounds: same world, a new vote
        zeros = jnp.zeros_like(apples)
        s = s.replace(
            step=step,
            round_start=jnp.where(new_round, step, s.round_start),
            round_index=s.round_index + new_round.astype(jnp.int32),
            eta=jnp.where(new_round, self.vote(s.sigma, s.fixed_eta), s.eta),
            period_apples=jnp.where(period_end, zeros, period_apples),
            last_period_apples=jnp.where(period_end, period_apples, s.last_period_apples),
            round_apples=jnp.where(new_round, zeros, round_apples),
            round_taxed=jnp.where(new_round, zeros, round_taxed),
            objective=jnp.where(new_round, 0.0, value),
            principal_due=period_end & ~done,
            done=done, ready=ready, metrics=metrics)
        return s, step_rewards, principal_reward, done, info

    # ---------------------------------------------------------------- features
    def player_features(self, s: SEDState) -> jax.Array:
        """f32[n, B + 3]: [sigma, rates, period position, ready_to_shoot]."""
        n, cfg = self.num_players, self.config
        position = ((s.step - s.round_start) % cfg.tax_period).astype(jnp.float32) / _f32(
            cfg.tax_period)
        return jnp.concatenate([
            s.sigma[:, None], jnp.broadcast_to(s.rates, (n, self.num_brackets)),
            jnp.broadcast_to(position, (n, 1)), s.ready[:, None]], axis=1).astype(jnp.float32)

    def principal_features(self, s: SEDState) -> jax.Array:
        """f32[2n + B + 2]: [log1p last-period apples, log1p round apples, eta, rates,
        period_in_round / periods_per_round]."""
        period_in_round = (s.step - s.round_start) // self.config.tax_period
        return jnp.concatenate([
            jnp.log1p(s.last_period_apples), jnp.log1p(s.round_apples), s.eta[None],
            s.rates, (period_in_round.astype(jnp.float32)
                      / _f32(self.periods_per_round))[None]]).astype(jnp.float32)

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
        """SEDGame.episode_metrics' keys from the device accumulators (jit/vmap-able).

        `period_rates` holds `num_periods` rows, of which `metrics.periods` are settled;
        the others are zero. NaN where SEDGame gives NaN (no steps, no apples, no round).
        """
        s = g.sed if isinstance(g, GameState) else g
        m = s.metrics
        totals, income = m.apples, m.income
        steps = s.step.astype(jnp.float32)
        nan = jnp.float32(jnp.nan)
        periods = m.periods.astype(jnp.float32)
        settled = jnp.arange(self.num_periods) < m.periods
        rates_sum = jnp.where(settled[:, None], m.period_rates, 0.0).sum(axis=0)
        return {
            "steps": s.step,
            "apples_per_player": totals,
            "income_per_player": income,
            "objective": jnp.where(m.rounds > 0, m.round_objective / m.rounds, nan),
            "eta": jnp.where(m.rounds > 0, m.round_eta / m.rounds, s.eta),
            "utilitarian": totals.sum(),
            "egalitarian": totals.min(),
            "nash_welfare": welfare.nash_core(totals, jnp),
            "productivity": totals.sum(),
            "equality": 1.0 - welfare.gini_core(totals, jnp),
            "income_equality": 1.0 - welfare.gini_core(jnp.maximum(income, 0.0), jnp),
            "egalitarian_income": income.min(),
            "sustainability": jnp.where(m.eat_count > 0, m.eat_time / m.eat_count, nan),
            "peace": jnp.where(steps > 0, 1.0 - m.zapped_steps / (steps * self.num_players),
                               nan),
            "tax_revenue": m.tax_revenue,
            "period_rates": m.period_rates,
            "mean_rates": jnp.where(periods > 0, rates_sum / jnp.maximum(periods, 1.0), nan),
            "principal_return": m.principal_return,
            "tax_cap": jnp.where(periods > 0, jnp.where(settled, m.period_cap, 0.0).sum()
                                 / jnp.maximum(periods, 1.0), nan),
        }
