"""The Social Environment Design game over the apple_picking substrate.

`SEDGame` plays the whole game of paper Section 4 with the principal as a
separate decision maker, and knows nothing of any training library:

* at the start of each tax period the principal sets the bracket rates
  (`set_rates`); the trainer's cap multiplier (`tax_cap`, paper Appendix A) and
  the divergence constraint D(phi_0, phi) <= delta are applied to them;
* each step the players act (`step`); the substrate reports apples eaten,
  who sees whom (`NEARBY`) and who is zapped, all computed in Lua;
* at the period's last step the tax on that period's incomes is collected
  and redistributed evenly, delivered in that step's reward;
* per-step rewards follow paper Eq. 8 with the visibility of that step;
* at the end of each voting round the players' types go to the voting rule,
  which sets the principal's objective eta for the next round; the
  principal's reward is the change of that objective's value each step, so
  over a round its returns telescope to the objective's value.

Everything a trainer or evaluator needs is returned per step (`StepResult`)
or recorded per period and per round, so nothing has to be recomputed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from sed_meltingpot import constraints, rewards, tax, voting, welfare
from sed_meltingpot import substrate as substrate_lib
from sed_meltingpot.config import GameConfig
from sed_meltingpot.substrates import apple_picking_data

# Substrate observations each player receives (global WORLD.* ones go to the
# principal); the game adds SELFISHNESS, TAX_RATES and PERIOD_POSITION.
PLAYER_SUBSTRATE_KEYS = apple_picking_data.PLAYER_OBSERVATIONS


def substrate_config(config: GameConfig):
    """The substrate's locked config for `config`, without building a world.

    Raises ValueError for what only the substrate knows, such as more players
    than the map has spawn points; scripts call it before starting anything.
    """
    overrides: dict[str, Any] = {}
    if config.regrowth_probabilities is not None:
        overrides["regrowth_probabilities"] = tuple(config.regrowth_probabilities)
    if config.map is not None:
        overrides["map"] = config.map
    return substrate_lib.get_config(config.substrate, num_players=config.num_players,
                                    episode_length=config.episode_length, **overrides)


def validate_actions(actions: Sequence[int] | np.ndarray, num_players: int,
                     num_actions: int) -> np.ndarray:
    """One action per player, each an integer in [0, num_actions).

    Checked here because the substrate would take -1 as the last action
    (negative indexing), truncate 3.9 to 3, and fail deep inside Melting Pot
    on 8; the message names the player and the allowed range.
    """
    arr = np.asarray(actions)
    if arr.ndim != 1 or arr.shape[0] != num_players:
        raise ValueError(f"actions must hold one action per player ({num_players}), got shape "
                         f"{arr.shape}")
    allowed = f"integers in [0, {num_actions - 1}]"
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"actions must be {allowed}, got dtype {arr.dtype}")
    for i, action in enumerate(arr.tolist()):
        if not (np.isfinite(action) and action == int(action) and 0 <= action < num_actions):
            raise ValueError(f"action of player {i} is {action!r}; allowed: {allowed}")
    return arr.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class PeriodRecord:
    """One tax period, settled at its last step."""

    episode: int
    round_index: int  # voting round, counted over the game's lifetime
    period: int  # index of the period within its round
    start_step: int  # step within the episode at which the period began
    requested_rates: np.ndarray  # what the principal asked for
    effective_rates: np.ndarray  # after the divergence projection and the cap
    tax_cap: float
    incomes: np.ndarray  # apples per player in the period (a_i)
    taxes: np.ndarray  # T(a_i, phi)
    transfers: np.ndarray  # -T(a_i) + mean_j T(a_j); sums to zero
    tax_revenue: float  # sum_i T(a_i)
    eta: float
    objective: float  # the round's objective value at the period's end
    principal_reward: float  # change of the objective over the period


@dataclasses.dataclass(frozen=True)
class RoundRecord:
    """One voting round: the vote at its start and the outcome at its end."""

    episode: int
    round_index: int
    start_step: int
    end_step: int
    eta: float  # the objective voted for this round
    reported_types: np.ndarray
    apples: np.ndarray  # apples per player over the round
    objective: float  # the objective's value over the round


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What one game step did, for evaluation, rendering and tests."""

    episode: int
    step: int  # steps played in the episode, this one included
    round: int  # voting round, counted over the game's lifetime
    period: int  # index of this step's tax period within its round
    apples: np.ndarray  # (n,) apples eaten this step
    nearby: np.ndarray  # (n, n) bool: who sees whom (paper Eq. 8)
    zapped: np.ndarray  # (n,) bool
    r_tax: np.ndarray  # (n,) post-tax income this step (transfers at a period's end)
    rates: np.ndarray  # the period's effective rates
    eta: float
    objective: float  # the round's objective value after this step
    num_apples: float  # apples on the map
    period_end: bool
    round_end: bool
    period_record: PeriodRecord | None = None  # the period settled at this step
    round_record: RoundRecord | None = None  # the round closed at this step


@dataclasses.dataclass
class StepResult:
    observations: list[dict[str, Any]]  # one dict per player
    rewards: np.ndarray  # (n,) paper Eq. 8
    principal_reward: float  # change of the objective this step
    done: bool  # the episode (world) ended
    info: StepInfo


@dataclasses.dataclass
class PeriodState:
    """The running tax period: made at each period start, settled at its end."""

    start_step: int
    incomes: np.ndarray  # apples per player so far (a_i)
    requested_rates: np.ndarray
    rates: np.ndarray  # effective rates (after projection and cap)
    objective_gain: float = 0.0  # the principal's reward so far

    @classmethod
    def start(cls, step: int, num_players: int, num_brackets: int) -> PeriodState:
        zeros = np.zeros(num_brackets)
        return cls(step, np.zeros(num_players), zeros.copy(), zeros.copy())


@dataclasses.dataclass
class RoundState:
    """The running voting round: made at each round start (after the vote)."""

    index: int
    start_step: int
    eta: float
    apples: np.ndarray  # per player over the round
    taxed: np.ndarray  # post-tax incomes over the round
    objective: float = 0.0  # the objective's value so far


@dataclasses.dataclass
class EpisodeState:
    """What one episode keeps for `episode_metrics`."""

    index: int
    step: int = 0
    apples: list[np.ndarray] = dataclasses.field(default_factory=list)  # per step
    zapped: list[np.ndarray] = dataclasses.field(default_factory=list)
    r_tax: list[np.ndarray] = dataclasses.field(default_factory=list)
    periods: list[PeriodRecord] = dataclasses.field(default_factory=list)
    rounds: list[RoundRecord] = dataclasses.field(default_factory=list)


class SEDGame:
    """The Social Environment Design game; see the module docstring."""

    def __init__(self, config: GameConfig | None = None, seed: int | None = 0) -> None:
        self.config = config = (config or GameConfig()).validate()
        self.seed = seed
        self._substrate_config = substrate_config(config)
        self._env = substrate_lib.build_from_config(self._substrate_config, seed=seed)
        n, b = config.num_players, config.num_brackets
        self.thresholds = tax.validate_thresholds(config.thresholds)
        if config.selfishness is None:
            self.selfishness = rewards.sample_selfishness(n, seed)
        else:
            self.selfishness = rewards.validate_selfishness(config.selfishness, num_players=n)
        self.reference_rates = (np.zeros(b) if config.reference_rates is None else
                                tax.validate_rates(config.reference_rates, b, "reference_rates"))
        self._welfare = welfare.get_welfare(config.welfare)
        self._vote_rule = voting.get_voting_rule(config.voting_rule)
        self._tax_cap = 1.0
        self.period_records: list[PeriodRecord] = []
        self.round_records: list[RoundRecord] = []
        # Set by reset(); None before the first one (`_require_reset`).
        self._ep: EpisodeState | None = None
        self._round: RoundState | None = None
        self._period: PeriodState | None = None
        self._last_period_apples = np.zeros(config.num_players)
        self._rounds_started = 0
        self._started = False  # an episode is running
        self._principal_due = False

    # ----------------------------------------------------------------- setup
    @property
    def num_players(self) -> int:
        return self.config.num_players

    @property
    def tax_cap(self) -> float:
        """Multiplier c on the rates (tax-annealing curriculum, paper Appendix A); 1 = off."""
        return self._tax_cap

    @tax_cap.setter
    def tax_cap(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"tax_cap={value!r} is outside [0, 1]")
        self._tax_cap = float(value)

    @property
    def num_actions(self) -> int:
        """Actions per player: the substrate's action set (noop, moves, turns, zap)."""
        return len(self._substrate_config.action_set)

    def _require_reset(self, what: str) -> None:
        """Episode state exists only after the first `reset()`: say so, instead
        of an AttributeError on a private field."""
        if self._ep is None:
            raise RuntimeError(f"SEDGame.{what} is undefined before the first reset(); "
                               "call reset() first")

    @property
    def episode_step(self) -> int:
        """Steps played in the current episode."""
        self._require_reset("episode_step")
        return self._ep.step

    @property
    def episode_periods(self) -> list[PeriodRecord]:
        """The periods settled in the current episode (`period_records`: all of them)."""
        self._require_reset("episode_periods")
        return list(self._ep.periods)

    @property
    def eta(self) -> float:
        self._require_reset("eta")
        return self._round.eta

    @property
    def rates(self) -> np.ndarray:
        """The effective rates of the current period."""
        self._require_reset("rates")
        return self._period.rates.copy()

    @property
    def principal_due(self) -> bool:
        """True at the start of a tax period, until `set_rates` is called."""
        self._require_reset("principal_due")
        return self._principal_due

    @property
    def substrate(self):
        return self._env

    def vote(self) -> float:
        """eta from the players' reported types (paper: f(sigma) = mean sigma)."""
        eta = voting.vote(self._vote_rule, self.selfishness)
        w = self.config.principal_weight
        if w > 0:
            eta = (1.0 - w) * eta + w * self.config.principal_type
        return eta

    def objective(self, values: np.ndarray) -> float:
        """The current objective W_eta of per-player totals `values`."""
        return float(self._welfare(np.asarray(values, dtype=float), self._round.eta))

    # -------------------------------------------------------------- dynamics
    def reset(self, seed: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Starts a new episode; returns (player observations, principal obs).

        `seed` (Gymnasium's reset contract) restarts the world's seed
        sequence: this episode plays the world `SEDGame(config, seed)` would
        play first, and later resets continue from it. The players' types
        stay those of the run (the paper fixes them per run).
        """
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed={seed!r} must be a non-negative integer")
            self._env.close()
            self._env = substrate_lib.build_from_config(self._substrate_config, seed=int(seed))
        timestep = self._env.reset()
        self._ep = EpisodeState(index=self._ep.index + 1 if self._ep else 0)
        self._last_period_apples = np.zeros(self.num_players)
        self._period = None  # a new episode starts untaxed
        self._start_round()
        self._started = True
        self._last_timestep = timestep
        return self._player_observations(timestep), self.principal_observation()

    def set_rates(self, rates: Sequence[float]) -> np.ndarray:
        """The principal's action for the period now starting; returns the
        effective rates (after the divergence projection and the cap)."""
        if not self._started:
            raise RuntimeError("call reset() before set_rates()")
        if not self._principal_due:
            step = self._ep.step
            raise RuntimeError(
                f"the principal acts only at the start of a tax period (step {step} "
                f"is {step - self._period.start_step} steps into one)")
        requested = tax.validate_rates(rates, self.config.num_brackets)
        projected = requested
        if np.isfinite(self.config.divergence_delta):
            projected = constraints.project_rates(
                requested, self.reference_rates, self.config.divergence_delta,
                norm=self.config.divergence_norm)
        self._period.requested_rates = requested.copy()
        self._period.rates = np.asarray(projected, dtype=float) * self._tax_cap
        self._principal_due = False
        return self._period.rates.copy()

    def set_rate_levels(self, levels: Sequence[int]) -> np.ndarray:
        """`set_rates` with one discrete level index per bracket."""
        levels = np.asarray(levels)
        k = self.config.num_rate_levels
        if levels.shape != (self.config.num_brackets,) or np.any(levels < 0) or np.any(
                levels >= k) or not np.issubdtype(levels.dtype, np.integer):
            raise ValueError(
                f"levels={levels.tolist()} must be {self.config.num_brackets} integers in "
                f"[0, {k - 1}]")
        return self.set_rates(np.asarray(self.config.rate_levels)[levels])

    def step(self, actions: Sequence[int]) -> StepResult:
        """One step of all players: the substrate steps, the period's taxes are
        settled at its last step, rewards mixed (Eq. 8), the objective tracked,
        and the period, round and episode closed where they end."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._principal_due:
            raise RuntimeError("the principal must set_rates() at the start of each tax period")
        cfg = self.config
        timestep = self._env.step(validate_actions(actions, self.num_players, self.num_actions))
        self._last_timestep = timestep
        obs = timestep.observation
        apples = np.array([o["APPLES_EATEN"] for o in obs], dtype=float)
        nearby = np.stack([o["NEARBY"] for o in obs]).astype(bool)
        zapped = np.array([o["ZAPPED"] for o in obs], dtype=bool)
        ep, round_, period = self._ep, self._round, self._period
        ep.step += 1
        step_in_round = ep.step - round_.start_step
        period_end = step_in_round % cfg.tax_period == 0
        round_end = step_in_round == cfg.round_length
        done = bool(timestep.last())

        period.incomes += apples
        r_tax, taxes, transfers = self._settle_taxes(apples, period_end)
        step_rewards = rewards.mix_rewards(
            r_tax, self.selfishness, nearby, neighbour_aggregate=cfg.neighbour_aggregate)
        value, principal_reward = self._track_objective(apples, r_tax)
        ep.apples.append(apples)
        ep.zapped.append(zapped)
        ep.r_tax.append(r_tax)

        period_record = self._close_period(value, taxes, transfers, done) if period_end else None
        round_record = self._close_round(value, done) if round_end else None
        if done:
            self._started = False
            self._principal_due = False
        info = StepInfo(
            episode=ep.index, step=ep.step, round=round_.index,
            period=(step_in_round - 1) // cfg.tax_period, apples=apples, nearby=nearby,
            zapped=zapped, r_tax=r_tax, rates=period.rates.copy(), eta=round_.eta,
            objective=value, num_apples=float(obs[0]["WORLD.NUM_APPLES"]),
            period_end=period_end, round_end=round_end, period_record=period_record,
            round_record=round_record)
        return StepResult(self._player_observations(timestep), step_rewards,
                          float(principal_reward), done, info)

    def _settle_taxes(self, apples: np.ndarray, period_end: bool
                      ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(post-tax incomes r_tax of this step, taxes, transfers): at a period's last
        step the bracket tax on the period's incomes is collected and redistributed
        evenly (paper Section 4); otherwise r_tax is the apples eaten."""
        if not period_end:
            return apples.copy(), None, None
        taxes = tax.bracket_tax(self._period.incomes, self._period.rates, self.thresholds)
        transfers = tax.transfers_core(taxes)
        return apples + transfers, taxes, transfers

    def _track_objective(self, apples: np.ndarray, r_tax: np.ndarray) -> tuple[float, float]:
        """(the round's objective after this step, its change: the principal's reward)."""
        round_ = self._round
        round_.apples += apples
        round_.taxed += r_tax
        value = self.objective(round_.taxed if self.config.welfare_on == "taxed"
                               else round_.apples)
        gain = value - round_.objective
        round_.objective = value
        self._period.objective_gain += gain
        return value, gain

    def _close_period(self, value: float, taxes: np.ndarray, transfers: np.ndarray,
                      done: bool) -> PeriodRecord:
        """Records the settled period and starts the next (the principal's turn)."""
        period, round_, ep = self._period, self._round, self._ep
        record = PeriodRecord(
            episode=ep.index, round_index=round_.index,
            period=self.period_in_round(),
            start_step=period.start_step, requested_rates=period.requested_rates.copy(),
            effective_rates=period.rates.copy(), tax_cap=self._tax_cap,
            incomes=period.incomes.copy(), taxes=taxes, transfers=transfers,
            tax_revenue=float(taxes.sum()), eta=round_.eta, objective=value,
            principal_reward=period.objective_gain)
        self.period_records.append(record)
        ep.periods.append(record)
        self._last_period_apples = period.incomes.copy()
        self._start_period()
        self._principal_due = not done
        return record

    def _close_round(self, value: float, done: bool) -> RoundRecord:
        """Records the round; continual rounds start the next in the same world."""
        round_, ep = self._round, self._ep
        record = RoundRecord(
            episode=ep.index, round_index=round_.index, start_step=round_.start_step,
            end_step=ep.step, eta=round_.eta, reported_types=self.selfishness.copy(),
            apples=round_.apples.copy(), objective=value)
        self.round_records.append(record)
        ep.rounds.append(record)
        if not done:
            self._start_round()  # continual rounds: same world, new vote
        return record

    def episode_metrics(self) -> dict[str, Any]:
        """The social metrics of the current (or just finished) episode.

        Computed with `sed_meltingpot.welfare` from what the game recorded, so
        training and evaluation report the same definitions.
        """
        self._require_reset("episode_metrics()")
        ep = self._ep
        apples = np.array(ep.apples).reshape(-1, self.num_players)
        zapped = np.array(ep.zapped).reshape(-1, self.num_players)
        r_tax = np.array(ep.r_tax).reshape(-1, self.num_players)
        totals = apples.sum(axis=0)
        periods, rounds = ep.periods, ep.rounds
        rates = (np.array([p.effective_rates for p in periods]) if periods
                 else np.zeros((0, self.config.num_brackets)))
        return {
            "steps": int(apples.shape[0]),
            "apples_per_player": totals,
            "income_per_player": r_tax.sum(axis=0),
            "objective": float(np.mean([r.objective for r in rounds])) if rounds else float("nan"),
            "eta": float(np.mean([r.eta for r in rounds])) if rounds else self._round.eta,
            "utilitarian": float(welfare.utilitarian(totals)),
            "egalitarian": float(welfare.egalitarian(totals)),
            "nash_welfare": float(welfare.nash_welfare(totals)),
            "productivity": float(welfare.productivity(totals)),
            "equality": float(welfare.equality(totals)),
            "income_equality": float(welfare.equality(np.maximum(r_tax.sum(axis=0), 0.0))),
            # min_i of post-tax income: with `utilitarian` (the sum, which the balanced
            # tax keeps) it gives W_eta on post-tax income (welfare_on="taxed").
            "egalitarian_income": float(welfare.egalitarian(r_tax.sum(axis=0))),
            "sustainability": welfare.sustainability(apples),
            "peace": welfare.peace(zapped) if zapped.size else float("nan"),
            "tax_revenue": float(sum(p.tax_revenue for p in periods)),
            "period_rates": rates,
            "mean_rates": rates.mean(axis=0) if len(rates) else np.full(
                self.config.num_brackets, np.nan),
            "principal_return": float(sum(p.principal_reward for p in periods)),
            "tax_cap": float(np.mean([p.tax_cap for p in periods])) if periods else float("nan"),
        }

    # ----------------------------------------------------------- observations
    def _start_round(self) -> None:
        """A voting round starts: the vote sets eta, and its first period starts
        with the principal's turn."""
        self._round = RoundState(
            index=self._rounds_started, start_step=self._ep.step, eta=self.vote(),
            apples=np.zeros(self.num_players), taxed=np.zeros(self.num_players))
        self._rounds_started += 1
        self._start_period()
        self._principal_due = True

    def _start_period(self) -> None:
        """A tax period starts. Its rates are the last period's (shown to the players
        until the principal sets new ones; continual rounds too), zero in an
        episode's first period."""
        previous = self._period
        self._period = PeriodState.start(self._ep.step, self.num_players,
                                         self.config.num_brackets)
        if previous is not None:
            self._period.requested_rates = previous.requested_rates.copy()
            self._period.rates = previous.rates.copy()

    def period_position(self) -> float:
        """Fraction of the current tax period already played, in [0, 1)."""
        self._require_reset("period_position()")
        return (self._ep.step - self._period.start_step) / self.config.tax_period

    def period_in_round(self) -> int:
        """Index of the current tax period within its voting round."""
        self._require_reset("period_in_round()")
        return (self._period.start_step - self._round.start_step) // self.config.tax_period

    def principal_observation_shape(self) -> tuple[int, int, int]:
        """Shape of WORLD.RGB (known before the first reset)."""
        return tuple(self._substrate_config.timestep_spec.observation["WORLD.RGB"].shape)

    def player_observations(self) -> list[dict[str, Any]]:
        """The players' current observations (refresh after `set_rates`, so
        that TAX_RATES shows the rates of the period the players now act in)."""
        self._require_reset("player_observations()")
        return self._player_observations(self._last_timestep)

    def _player_observations(self, timestep) -> list[dict[str, Any]]:
        position = np.float32(self.period_position())
        rates = self._period.rates.astype(np.float32)
        out = []
        for i, obs in enumerate(timestep.observation):
            player = {key: obs[key] for key in PLAYER_SUBSTRATE_KEYS}
            player["SELFISHNESS"] = np.float32(self.selfishness[i])
            player["TAX_RATES"] = rates.copy()
            player["PERIOD_POSITION"] = position
            out.append(player)
        return out

    def principal_observation(self) -> dict[str, Any]:
        """What the principal sees: the whole map and the players' totals."""
        self._require_reset("principal_observation()")
        obs = self._last_timestep.observation[0]
        return {
            "WORLD.RGB": obs["WORLD.RGB"],
            "PERIOD_APPLES": self._period.incomes.astype(np.float32),
            "LAST_PERIOD_APPLES": self._last_period_apples.astype(np.float32),
            "ROUND_APPLES": self._round.apples.astype(np.float32),
            "ETA": np.float32(self._round.eta),
            "TAX_RATES": self._period.rates.astype(np.float32),
            "PERIOD_IN_ROUND": np.int32(self.period_in_round()),
        }

    def close(self) -> None:
        self._env.close()
