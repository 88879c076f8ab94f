"""The SED game's rules, written once over an array namespace (paper Section 4).

Two shells run them: `SEDGame` (game.py, numpy, over the Lua substrate; it keeps the
period and round records) and `SEDTwin` (twin/sed.py, jax.numpy, over the twin
world; jit- and vmap-able). Each shell steps its world and hands `step` that step's
signals: apples eaten, who sees whom (NEARBY), who is zapped and READY_TO_SHOOT.
Everything the rules decide is here, once:

* the principal's turn at each tax period's start (`set_rates`): the requested rates,
  projected onto D(phi_0, phi) <= delta, times the curriculum's tax cap;
* the period's end: the bracket tax on the period's incomes (`tax.bracket_tax_core`)
  collected and redistributed evenly in that step's post-tax income r_tax;
* paper Eq. 8 rewards with that step's NEARBY (`rewards.mix_rewards_core`; as a
  matrix, or as lists of whom each player sees for the twin's large games);
* the objective W_eta of the round's cumulative apples (or post-tax incomes,
  `GameConfig.welfare_on`) and the principal's reward, its change each step;
* the round's end: a new vote (continual rounds keep the world);
* the players' and principal's feature vectors, and the episode metrics.

A shell differs only in its `Rules`: the float dtype (float64 / float32), the welfare
function and voting rule (any registered one on the host; the array cores on device)
and the divergence projection (L1 or L-inf on the host, L-inf on device).
`xp` is numpy or jax.numpy; numpy has no `.at[]` updates and no lazy `where`, so small
helpers (`set_at`, `select`, `where_lazy`) give both namespaces one spelling. The vote's
blend with the principal's type is `voting.blend_principal`, which both shells call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from sed_meltingpot.core import rewards, tax, welfare

# (values f[n], eta, xp) -> W_eta; (sigma f[n], fixed_eta or None, xp) -> eta;
# (requested rates f[B], xp) -> rates in the divergence ball.
WelfareFn = Callable[[Any, Any, Any], Any]
VoteFn = Callable[[Any, Any, Any], Any]
ProjectFn = Callable[[Any, Any], Any]


# ------------------------------------------------------------ array helpers
def set_at(xp: Any, array: Any, index: Any, value: Any) -> Any:
    """`array.at[index].set(value)` for jax; a copy with the item set for numpy."""
    if xp is np:
        out = np.array(array, copy=True)
        out[index] = value
        return out
    return array.at[index].set(value)


def select(xp: Any, condition: Any, if_true: Any, otherwise: Any) -> Any:
    """`where(condition, if_true, otherwise)` for a scalar condition: numpy picks one of
    the two (no array operation per field and step), jax traces `where`."""
    if xp is np:
        return if_true if bool(condition) else otherwise
    return xp.where(condition, if_true, otherwise)


def where_lazy(xp: Any, condition: Any, if_true: Callable[[], Any], otherwise: Any) -> Any:
    """`where(condition, if_true(), otherwise)`; numpy calls `if_true` only when the
    condition holds (a host voting rule may count its calls), jax always (traced)."""
    if xp is np:
        return if_true() if bool(condition) else otherwise
    return xp.where(condition, if_true(), otherwise)


# -------------------------------------------------------------------- rules
@dataclasses.dataclass(frozen=True)
class Rules:
    """What a shell fixes for the kernel: the game's sizes and clocks (GameConfig), the
    brackets as lower bounds and widths, and the shell's welfare, vote, projection
    and float dtype (module docstring)."""

    num_players: int
    num_brackets: int
    tax_period: int
    round_length: int
    episode_length: int
    lower: np.ndarray
    width: np.ndarray
    neighbour_aggregate: str
    welfare_on: str
    welfare: WelfareFn
    vote: VoteFn
    project: ProjectFn
    dtype: Any

    @property
    def num_periods(self) -> int:
        return self.episode_length // self.tax_period

    @property
    def periods_per_round(self) -> int:
        return self.round_length // self.tax_period


def make_rules(config: Any, *, welfare_fn: WelfareFn, vote: VoteFn, project: ProjectFn,
               dtype: Any) -> Rules:
    """`Rules` of a validated GameConfig with the shell's functions."""
    thresholds = tax.validate_thresholds(config.thresholds)
    return Rules(
        num_players=config.num_players, num_brackets=config.num_brackets,
        tax_period=config.tax_period, round_length=config.round_length,
        episode_length=config.episode_length, lower=thresholds[:-1],
        width=np.diff(thresholds), neighbour_aggregate=config.neighbour_aggregate,
        welfare_on=config.welfare_on, welfare=welfare_fn, vote=vote, project=project,
        dtype=dtype)


# -------------------------------------------------------------------- state
class _Replace:
    def replace(self, **changes: Any) -> Any:
        """A copy with `changes` (flax.struct's spelling, for both namespaces)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Metrics(_Replace):
    """Per-episode accumulators for `episode_metrics`.

    apples/income: f[n] episode totals of apples eaten and of r_tax. zapped_steps:
    player-steps out of play. eat_time / eat_count: sum_t t * c_t and sum_t c_t over
    steps t = 0, 1, ... (sustainability). tax_revenue: sum of taxes. period_rates
    f[P, B] / period_cap f[P]: effective rates and cap of each settled period
    (P = episode_length / tax_period); periods: how many settled. round_objective /
    round_eta: sums over finished rounds; rounds: how many finished.
    principal_return: sum of the principal's per-step rewards.
    """

    apples: Any
    income: Any
    zapped_steps: Any
    eat_time: Any
    eat_count: Any
    tax_revenue: Any
    period_rates: Any
    period_cap: Any
    periods: Any
    round_objective: Any
    round_eta: Any
    rounds: Any
    principal_return: Any


@dataclasses.dataclass(frozen=True)
class SEDState(_Replace):
    """The rules' state (no world).

    sigma f[n] types; eta the round's objective; rates f[B] effective rates of the
    current period (requested f[B] before projection and cap; tax_cap the cap they
    were set under); step steps taken in the episode; round_start the step the round
    began at; round_index the round within the episode; period_apples,
    last_period_apples, round_apples, round_taxed f[n] (a_i of the running period, of
    the last settled one, the round's apples and post-tax incomes); objective W_eta of
    the round so far; principal_due; done (episode over); ready f[n] READY_TO_SHOOT of
    the current frame (player features); metrics; fixed_eta the eta every round takes,
    a run input (NaN: the players vote).
    """

    sigma: Any
    eta: Any
    rates: Any
    requested: Any
    tax_cap: Any
    step: Any
    round_start: Any
    round_index: Any
    period_apples: Any
    last_period_apples: Any
    round_apples: Any
    round_taxed: Any
    objective: Any
    principal_due: Any
    done: Any
    ready: Any
    metrics: Metrics
    fixed_eta: Any


def _float(rules: Rules, x: Any, xp: Any) -> Any:
    return xp.asarray(x, rules.dtype)


def _int(x: Any, xp: Any) -> Any:
    return xp.asarray(x, xp.int32)


# ------------------------------------------------------------ the game's turns
def reset(rules: Rules, sigma: Any, ready: Any, fixed_eta: Any, xp: Any) -> SEDState:
    """A fresh episode: rates 0, round 0, the vote taken, the principal due.
    `fixed_eta` (None or NaN: the players vote) replaces the vote in every round."""
    n, b, p = rules.num_players, rules.num_brackets, rules.num_periods
    f = lambda x: _float(rules, x, xp)  # noqa: E731
    zeros, zb, zero, izero = f(xp.zeros(n)), f(xp.zeros(b)), f(0.0), _int(0, xp)
    sigma, fixed = f(sigma), f(np.nan if fixed_eta is None else fixed_eta)
    metrics = Metrics(
        apples=zeros, income=zeros, zapped_steps=zero, eat_time=zero, eat_count=zero,
        tax_revenue=zero, period_rates=f(xp.zeros((p, b))), period_cap=f(xp.zeros(p)),
        periods=izero, round_objective=zero, round_eta=zero, rounds=izero,
        principal_return=zero)
    return SEDState(
        sigma=sigma, eta=f(rules.vote(sigma, fixed, xp)), rates=zb, requested=zb,
        tax_cap=f(1.0), step=izero, round_start=izero, round_index=izero,
        period_apples=zeros, last_period_apples=zeros, round_apples=zeros,
        round_taxed=zeros, objective=zero, principal_due=xp.asarray(True),
        done=xp.asarray(False), ready=f(ready), metrics=metrics, fixed_eta=fixed)


def set_rates(rules: Rules, s: SEDState, rates: Any, tax_cap: Any, xp: Any) -> SEDState:
    """The principal's rates in [0, 1]^B (clipped) for the period now starting,
    applied only while due: effective rates = projection onto the divergence ball,
    times the cap. A call when not due leaves the state unchanged (a shell that can
    raise says so before calling)."""
    requested = xp.clip(_float(rules, rates, xp), 0.0, 1.0)
    projected = _float(rules, rules.project(requested, xp), xp)
    cap, due = _float(rules, tax_cap, xp), s.principal_due
    return s.replace(requested=select(xp, due, requested, s.requested),
                     rates=select(xp, due, projected * cap, s.rates),
                     tax_cap=select(xp, due, cap, s.tax_cap),
                     principal_due=xp.asarray(False))


def step(rules: Rules, s: SEDState, apples: Any, nearby: Any, zapped: Any, ready: Any,
         xp: Any) -> tuple[SEDState, Any, Any, Any, dict[str, Any]]:
    """One step after the world moved, from its signals: apples f[n] eaten, nearby
    bool[n, n] (or `rewards.SeenLists`: a large twin game's lists of whom each player
    sees), zapped bool[n], ready f[n]. Returns (state, rewards f[n] (Eq. 8),
    principal_reward, done, info)."""
    apples, ready = _float(rules, apples, xp), _float(rules, ready, xp)
    if not isinstance(nearby, rewards.SeenLists):
        nearby = xp.asarray(nearby, bool)
    zapped = xp.asarray(zapped, bool)
    clock = _clock(rules, s, xp)
    period_apples = s.period_apples + apples
    taxes, transfers = _settle(rules, s, period_apples, clock["period_end"], xp)
    r_tax = apples + transfers
    round_apples, round_taxed = s.round_apples + apples, s.round_taxed + r_tax
    step_rewards = rewards.mix_rewards_core(r_tax, s.sigma, nearby,
                                            rules.neighbour_aggregate, xp)
    value = _float(rules, rules.welfare(
        round_taxed if rules.welfare_on == "taxed" else round_apples, s.eta, xp), xp)
    principal_reward = value - s.objective
    metrics = _accumulate(rules, s, clock, apples, r_tax, zapped, taxes, value,
                          principal_reward, xp)
    info = {
        "step": clock["step"], "round": s.round_index, "period": clock["period"],
        "apples": apples, "nearby": nearby, "zapped": zapped, "r_tax": r_tax,
        "taxes": taxes, "transfers": transfers, "tax_revenue": taxes.sum(),
        "rates": s.rates, "eta": s.eta, "objective": value,
        "period_apples": period_apples, "round_apples": round_apples,
        "period_end": clock["period_end"], "round_end": clock["round_end"],
    }
    s = _advance(rules, s, clock, period_apples, round_apples, round_taxed, value, ready,
                 metrics, xp)
    return s, step_rewards, principal_reward, clock["done"], info


def _clock(rules: Rules, s: SEDState, xp: Any) -> dict[str, Any]:
    """Where this step falls: the step count after it, the period within the round,
    and whether it ends the period, the round, the episode."""
    step_ = s.step + 1
    in_round = step_ - s.round_start
    return {"step": step_, "period": (in_round - 1) // rules.tax_period,
            "period_end": xp.asarray(in_round % rules.tax_period == 0),
            "round_end": xp.asarray(in_round == rules.round_length),
            "done": xp.asarray(step_ == rules.episode_length)}


def _settle(rules: Rules, s: SEDState, period_apples: Any, period_end: Any, xp: Any
            ) -> tuple[Any, Any]:
    """(taxes, transfers) of this step: at the period's last step the bracket tax on
    the period's incomes, redistributed evenly (sums to zero); zero otherwise."""
    def settle() -> Any:
        return _float(rules, tax.bracket_tax_core(
            period_apples, s.rates, _float(rules, rules.lower, xp),
            _float(rules, rules.width, xp), xp), xp)

    zeros = xp.zeros_like(period_apples)
    taxes = _float(rules, where_lazy(xp, period_end, settle, zeros), xp)
    return taxes, where_lazy(xp, period_end, lambda: tax.transfers_core(taxes, xp), zeros)


def _accumulate(rules: Rules, s: SEDState, clock: dict[str, Any], apples: Any, r_tax: Any,
                zapped: Any, taxes: Any, value: Any, principal_reward: Any, xp: Any
                ) -> Metrics:
    """The episode's accumulators after this step."""
    m, f = s.metrics, (lambda x: _float(rules, x, xp))  # noqa: E731
    period_end, round_end = clock["period_end"], clock["round_end"]
    index = xp.minimum(m.periods, rules.num_periods - 1)
    return m.replace(
        apples=m.apples + apples, income=m.income + r_tax,
        zapped_steps=m.zapped_steps + f(zapped.sum()),
        eat_time=m.eat_time + f(s.step) * apples.sum(),
        eat_count=m.eat_count + apples.sum(), tax_revenue=m.tax_revenue + taxes.sum(),
        period_rates=where_lazy(xp, period_end, lambda: set_at(
            xp, m.period_rates, index, s.rates), m.period_rates),
        period_cap=where_lazy(xp, period_end, lambda: set_at(
            xp, m.period_cap, index, s.tax_cap), m.period_cap),
        periods=m.periods + _int(period_end, xp),
        round_objective=m.round_objective + select(xp, round_end, value, 0.0),
        round_eta=m.round_eta + select(xp, round_end, s.eta, 0.0),
        rounds=m.rounds + _int(round_end, xp),
        principal_return=m.principal_return + principal_reward)


def _advance(rules: Rules, s: SEDState, clock: dict[str, Any], period_apples: Any,
             round_apples: Any, round_taxed: Any, value: Any, ready: Any, metrics: Metrics,
             xp: Any) -> SEDState:
    """The state after this step: a settled period's counters restart and the
    principal is due; continual rounds (a round's end before the episode's) vote
    again and restart the round's counters in the same world."""
    period_end, done = clock["period_end"], clock["done"]
    new_round = clock["round_end"] & ~done
    zeros = xp.zeros_like(period_apples)
    return s.replace(
        step=clock["step"],
        round_start=select(xp, new_round, clock["step"], s.round_start),
        round_index=s.round_index + _int(new_round, xp),
        eta=_float(rules, where_lazy(xp, new_round, lambda: rules.vote(
            s.sigma, s.fixed_eta, xp), s.eta), xp),
        period_apples=select(xp, period_end, zeros, period_apples),
        last_period_apples=select(xp, period_end, period_apples, s.last_period_apples),
        round_apples=select(xp, new_round, zeros, round_apples),
        round_taxed=select(xp, new_round, zeros, round_taxed),
        objective=_float(rules, select(xp, new_round, 0.0, value), xp),
        principal_due=period_end & ~done, done=done, ready=ready, metrics=metrics)


# ----------------------------------------------------------------- features
def period_position(rules: Rules, s: SEDState, xp: Any) -> Any:
    """Fraction of the current tax period already played, in [0, 1)."""
    return _float(rules, (s.step - s.round_start) % rules.tax_period, xp) / rules.tax_period


def period_in_round(rules: Rules, s: SEDState) -> Any:
    """Index of the current tax period within its round (periods_per_round after the
    episode's last step)."""
    return (s.step - s.round_start) // rules.tax_period


def player_features(rules: Rules, s: SEDState, xp: Any) -> Any:
    """f32[n, B + 3]: [sigma, rates, period position, ready_to_shoot] per player."""
    n, b = rules.num_players, rules.num_brackets
    return xp.concatenate([
        s.sigma[:, None], xp.broadcast_to(s.rates, (n, b)),
        xp.broadcast_to(period_position(rules, s, xp), (n, 1)), s.ready[:, None]],
        axis=1).astype(xp.float32)


def principal_feature_vector(last_period_apples: Any, round_apples: Any, eta: Any, rates: Any,
                             period_index: Any, periods_per_round: int, xp: Any) -> Any:
    """f32[2n + B + 2]: [log1p last-period apples (n), log1p round apples (n), eta,
    rates (B), period_in_round / periods_per_round]; one formula for the kernel's
    state and for `observations.principal_input` (SEDGame's observation dict)."""
    return xp.concatenate([
        xp.log1p(last_period_apples), xp.log1p(round_apples), xp.reshape(eta, (1,)),
        rates, xp.reshape(xp.asarray(period_index, xp.float32) / periods_per_round, (1,))
    ]).astype(xp.float32)


def principal_eta_index(num_players: int) -> int:
    """Where eta sits in `principal_feature_vector` (after the 2n apple features)."""
    return 2 * num_players


def principal_features(rules: Rules, s: SEDState, xp: Any) -> Any:
    """`principal_feature_vector` of the current state."""
    return principal_feature_vector(s.last_period_apples, s.round_apples, s.eta, s.rates,
                                    period_in_round(rules, s), rules.periods_per_round, xp)


# ------------------------------------------------------------------ metrics
#: The scalar keys of `episode_metrics` (the others hold per-player or per-period
#: arrays): what both trainers log per iteration, averaged over episodes.
SCALAR_METRICS = ("objective", "eta", "utilitarian", "egalitarian", "nash_welfare",
                  "productivity", "equality", "income_equality", "egalitarian_income",
                  "sustainability", "peace", "tax_revenue", "principal_return", "steps",
                  "tax_cap")


def episode_metrics(rules: Rules, s: SEDState, xp: Any) -> dict[str, Any]:
    """The social metrics of the current (or just finished) episode, from the
    accumulators: `period_rates` holds `num_periods` rows, of which `metrics.periods`
    are settled (the others zero); NaN where undefined (no steps, no apples, no round,
    no period)."""
    m = s.metrics
    totals, income = m.apples, m.income
    f = lambda x: _float(rules, x, xp)  # noqa: E731
    nan, steps, periods = f(np.nan), f(s.step), f(m.periods)
    settled = xp.arange(rules.num_periods) < m.periods
    rates_sum = xp.where(settled[:, None], m.period_rates, 0.0).sum(axis=0)
    with np.errstate(divide="ignore"):  # numpy: log(0) = -inf, so Nash welfare 0 (welfare.py)
        nash = welfare.nash_core(totals, xp)
    return {
        "steps": s.step,
        "apples_per_player": totals,
        "income_per_player": income,
        "objective": xp.where(m.rounds > 0, m.round_objective / xp.maximum(m.rounds, 1), nan),
        "eta": xp.where(m.rounds > 0, m.round_eta / xp.maximum(m.rounds, 1), s.eta),
        "utilitarian": totals.sum(),
        "egalitarian": totals.min(),
        "nash_welfare": nash,
        "productivity": totals.sum(),
        "equality": 1.0 - welfare.gini_core(totals, xp),
        "income_equality": 1.0 - welfare.gini_core(xp.maximum(income, 0.0), xp),
        # min_i of post-tax income: with `utilitarian` (the sum, which the balanced tax
        # keeps) it gives W_eta on post-tax income (welfare_on="taxed").
        "egalitarian_income": income.min(),
        "sustainability": xp.where(m.eat_count > 0,
                                   m.eat_time / xp.where(m.eat_count > 0, m.eat_count, 1.0),
                                   nan),
        "peace": xp.where(steps > 0, 1.0 - m.zapped_steps / xp.maximum(
            steps * rules.num_players, 1.0), nan),
        "tax_revenue": m.tax_revenue,
        "period_rates": m.period_rates,
        "mean_rates": xp.where(periods > 0, rates_sum / xp.maximum(periods, 1.0), nan),
        "principal_return": m.principal_return,
        "tax_cap": xp.where(periods > 0, xp.where(settled, m.period_cap, 0.0).sum()
                            / xp.maximum(periods, 1.0), nan),
    }
