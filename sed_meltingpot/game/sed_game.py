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

The rules are `kernel.py`'s, which the JAX twin (`twin/sed.py`) runs too; this
module is their numpy shell over the Lua substrate. Everything a trainer or
evaluator needs is returned per step (`StepResult`) or recorded per period and
per round, so nothing has to be recomputed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from sed_meltingpot.core import constraints, rewards, tax, voting, welfare
from sed_meltingpot.game import kernel
from sed_meltingpot.game import substrate as substrate_lib
from sed_meltingpot.game.config import GameConfig
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


class SEDGame:
    """The Social Environment Design game; see the module docstring. The numpy shell
    of `kernel`: the substrate moves the world, the kernel applies the rules, and
    this class validates the inputs and keeps the records."""

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
        self._rules = kernel.make_rules(
            config, welfare_fn=self._welfare_on_host(),
            vote=lambda sigma, fixed_eta, xp: self.vote(), project=self._project,
            dtype=np.float64)
        self._tax_cap = 1.0
        self.period_records: list[PeriodRecord] = []
        self.round_records: list[RoundRecord] = []
        # Set by reset(); None before the first one (`_require_reset`).
        self._state: kernel.SEDState | None = None
        self._episode = -1
        self._episode_periods: list[PeriodRecord] = []
        self._episode_rounds: list[RoundRecord] = []
        self._round_index = -1  # the running round, counted over the game's lifetime
        self._period_start = 0
        self._period_gain = 0.0  # the principal's reward over the running period
        self._started = False  # an episode is running

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

    def _require_reset(self, what: str) -> kernel.SEDState:
        """Episode state exists only after the first `reset()`: say so, instead
        of an AttributeError on a private field."""
        if self._state is None:
            raise RuntimeError(f"SEDGame.{what} is undefined before the first reset(); "
                               "call reset() first")
        return self._state

    @property
    def episode_step(self) -> int:
        """Steps played in the current episode."""
        return int(self._require_reset("episode_step").step)

    @property
    def episode_periods(self) -> list[PeriodRecord]:
        """The periods settled in the current episode (`period_records`: all of them)."""
        self._require_reset("episode_periods")
        return list(self._episode_periods)

    @property
    def eta(self) -> float:
        return float(self._require_reset("eta").eta)

    @property
    def rates(self) -> np.ndarray:
        """The effective rates of the current period."""
        return self._require_reset("rates").rates.copy()

    @property
    def principal_due(self) -> bool:
        """True at the start of a tax period, until `set_rates` is called."""
        state = self._require_reset("principal_due")
        return self._started and bool(state.principal_due)

    @property
    def substrate(self):
        return self._env

    def vote(self) -> float:
        """eta from the players' reported types (paper: f(sigma) = mean sigma), blended
        with the principal's own type (GameConfig.principal_weight)."""
        return float(voting.blend_principal(voting.vote(self._vote_rule, self.selfishness),
                                            self.config.principal_weight,
                                            self.config.principal_type))

    def objective(self, values: np.ndarray) -> float:
        """The current objective W_eta of per-player totals `values`."""
        return float(self._welfare(np.asarray(values, dtype=float), self.eta))

    def _welfare_on_host(self) -> kernel.WelfareFn:
        """The objective for the kernel: the built-in's array core (the kernel's totals
        need no validation each step), else the registered custom function."""
        core = welfare.welfare_core(self.config.welfare)
        if core is not None:
            return core
        return lambda values, eta, xp: self._welfare(values, float(eta))

    def _project(self, requested: np.ndarray, xp: Any = np) -> np.ndarray:
        """Onto D(phi_0, phi) <= delta (GameConfig.divergence_norm); the box otherwise."""
        if not np.isfinite(self.config.divergence_delta):
            return requested
        return constraints.project_rates(requested, self.reference_rates,
                                         self.config.divergence_delta,
                                         norm=self.config.divergence_norm)

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
        self._episode += 1
        self._episode_periods, self._episode_rounds = [], []
        self._round_index += 1
        self._period_start, self._period_gain = 0, 0.0
        # A new episode starts untaxed, with the vote taken and the principal due.
        self._state = kernel.reset(self._rules, self.selfishness, _ready(timestep), None, np)
        self._started = True
        self._last_timestep = timestep
        return self._player_observations(timestep), self.principal_observation()

    def set_rates(self, rates: Sequence[float]) -> np.ndarray:
        """The principal's action for the period now starting; returns the
        effective rates (after the divergence projection and the cap)."""
        if not self._started:
            raise RuntimeError("call reset() before set_rates()")
        if not self.principal_due:
            step = self.episode_step
            raise RuntimeError(
                f"the principal acts only at the start of a tax period (step {step} "
                f"is {step - self._period_start} steps into one)")
        requested = tax.validate_rates(rates, self.config.num_brackets)
        self._state = kernel.set_rates(self._rules, self._state, requested, self._tax_cap, np)
        return self._state.rates.copy()

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
        """One step of all players: the substrate steps, then the kernel settles the
        period's taxes at its last step, mixes the rewards (Eq. 8), tracks the
        objective and closes the period, round and episode where they end; this
        shell records what closed."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self.principal_due:
            raise RuntimeError("the principal must set_rates() at the start of each tax period")
        timestep = self._env.step(validate_actions(actions, self.num_players, self.num_actions))
        self._last_timestep = timestep
        obs = timestep.observation
        apples = np.array([o["APPLES_EATEN"] for o in obs], dtype=float)
        nearby = np.stack([o["NEARBY"] for o in obs]).astype(bool)
        zapped = np.array([o["ZAPPED"] for o in obs], dtype=bool)
        before = self._state
        state, step_rewards, principal_reward, kernel_done, out = kernel.step(
            self._rules, before, apples, nearby, zapped, _ready(timestep), np)
        done = bool(timestep.last())
        if done != bool(kernel_done):
            raise RuntimeError(f"the substrate's episode ended={done} at step {int(state.step)}"
                               f" but episode_length={self.config.episode_length}")
        self._state = state
        self._period_gain += float(principal_reward)
        round_index, value = self._round_index, float(out["objective"])
        period_record = self._close_period(before, out) if out["period_end"] else None
        round_record = self._close_round(before, out, done) if out["round_end"] else None
        if done:
            self._started = False
        info = StepInfo(
            episode=self._episode, step=int(state.step), round=round_index,
            period=int(out["period"]), apples=apples, nearby=nearby, zapped=zapped,
            r_tax=out["r_tax"], rates=before.rates.copy(), eta=float(before.eta),
            objective=value, num_apples=float(obs[0]["WORLD.NUM_APPLES"]),
            period_end=bool(out["period_end"]), round_end=bool(out["round_end"]),
            period_record=period_record, round_record=round_record)
        return StepResult(self._player_observations(timestep), step_rewards,
                          float(principal_reward), done, info)

    def _close_period(self, before: kernel.SEDState, out: dict[str, Any]) -> PeriodRecord:
        """Records the settled period; the next starts with the principal's turn."""
        taxes = out["taxes"]
        record = PeriodRecord(
            episode=self._episode, round_index=self._round_index, period=int(out["period"]),
            start_step=self._period_start, requested_rates=before.requested.copy(),
            effective_rates=before.rates.copy(), tax_cap=float(before.tax_cap),
            incomes=out["period_apples"].copy(), taxes=taxes, transfers=out["transfers"],
            tax_revenue=float(taxes.sum()), eta=float(before.eta),
            objective=float(out["objective"]), principal_reward=self._period_gain)
        self.period_records.append(record)
        self._episode_periods.append(record)
        self._period_start, self._period_gain = int(out["step"]), 0.0
        return record

    def _close_round(self, before: kernel.SEDState, out: dict[str, Any], done: bool
                     ) -> RoundRecord:
        """Records the round; continual rounds start the next in the same world (the
        kernel has taken its vote)."""
        record = RoundRecord(
            episode=self._episode, round_index=self._round_index,
            start_step=int(before.round_start), end_step=int(out["step"]),
            eta=float(before.eta), reported_types=self.selfishness.copy(),
            apples=out["round_apples"].copy(), objective=float(out["objective"]))
        self.round_records.append(record)
        self._episode_rounds.append(record)
        if not done:
            self._round_index += 1
        return record

    def episode_metrics(self) -> dict[str, Any]:
        """The social metrics of the current (or just finished) episode
        (`kernel.episode_metrics`, the twin's definitions): Python floats for the
        scalars, and `period_rates` holds the settled periods only."""
        state = self._require_reset("episode_metrics()")
        metrics = kernel.episode_metrics(self._rules, state, np)
        periods = int(state.metrics.periods)
        out: dict[str, Any] = {}
        for key, value in metrics.items():
            value = np.asarray(value)
            out[key] = float(value) if value.ndim == 0 else value.copy()
        out["steps"] = int(state.step)
        out["period_rates"] = out["period_rates"][:periods]
        return out

    # ----------------------------------------------------------- observations
    def period_position(self) -> float:
        """Fraction of the current tax period already played, in [0, 1)."""
        state = self._require_reset("period_position()")
        return float(kernel.period_position(self._rules, state, np))

    def period_in_round(self) -> int:
        """Index of the current tax period within its voting round."""
        state = self._require_reset("period_in_round()")
        return int(kernel.period_in_round(self._rules, state))

    def principal_observation_shape(self) -> tuple[int, int, int]:
        """Shape of WORLD.RGB (known before the first reset)."""
        return tuple(self._substrate_config.timestep_spec.observation["WORLD.RGB"].shape)

    def player_observations(self) -> list[dict[str, Any]]:
        """The players' current observations (refresh after `set_rates`, so
        that TAX_RATES shows the rates of the period the players now act in)."""
        self._require_reset("player_observations()")
        return self._player_observations(self._last_timestep)

    def player_features(self) -> np.ndarray:
        """``f32[n, B + 3]`` ``[sigma, rates, period position, ready_to_shoot]``: the players'
        network features (`kernel.player_features`, as the twin's)."""
        state = self._require_reset("player_features()")
        return kernel.player_features(self._rules, state, np)

    def _player_observations(self, timestep) -> list[dict[str, Any]]:
        position = np.float32(self.period_position())
        rates = self._state.rates.astype(np.float32)
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
        state = self._require_reset("principal_observation()")
        obs = self._last_timestep.observation[0]
        return {
            "WORLD.RGB": obs["WORLD.RGB"],
            "PERIOD_APPLES": state.period_apples.astype(np.float32),
            "LAST_PERIOD_APPLES": state.last_period_apples.astype(np.float32),
            "ROUND_APPLES": state.round_apples.astype(np.float32),
            "ETA": np.float32(state.eta),
            "TAX_RATES": state.rates.astype(np.float32),
            "PERIOD_IN_ROUND": np.int32(self.period_in_round()),
        }

    def close(self) -> None:
        self._env.close()


def _ready(timestep: Any) -> np.ndarray:
    """READY_TO_SHOOT of each player in a substrate timestep."""
    return np.array([o["READY_TO_SHOOT"] for o in timestep.observation], dtype=float)
