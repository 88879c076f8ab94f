"""One source for the game's defaults (paper Section 4 and Appendix A).

`GameConfig` holds everything the Social Environment Design game needs; the
game, the training code and the scripts' flag defaults all read it, so a
default changes in one place.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from sed_meltingpot.core import voting
from sed_meltingpot.core.hyperparameters import hyperparameter

# The tax schedule's defaults are declared with the tax math, so the import
# points down (config -> tax, never back); re-exported here with the others.
from sed_meltingpot.core.tax import DEFAULT_NUM_RATE_LEVELS, DEFAULT_THRESHOLDS
from sed_meltingpot.substrates import apple_picking_data

#: What W_eta is computed on (GameConfig.welfare_on).
WELFARE_ON = ("apples", "taxed")
#: GameConfig.map's name for a map sized from the number of players: tiled Commons
#: Harvest patches, played only by the JAX twin (`twin/generated_map.py`).
GENERATED_MAP = "generated"
#: The named maps (GameConfig.map, --map): both engines play the first two.
MAPS = ("default", "large", GENERATED_MAP)
#: The most players a generated map is made for (a bound on its build time and memory).
GENERATED_MAX_PLAYERS = 4096


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """Parameters of one Social Environment Design game.

    Attributes:
      substrate: name of the substrate (`sed_meltingpot.game.substrate.SUBSTRATES`).
      num_players: n.
      episode_length: steps before the world resets.
      rounds_per_episode: voting rounds per episode. 1 (default) resets the
        world every round; >1 plays continual (online) rounds in one episode,
        each starting from the last state of the previous (paper Def. 3.1).
      tax_period: steps per tax period; the principal acts at each start.
      thresholds: bracket edges tau_0 < ... < tau_B in apples.
      num_rate_levels: discrete levels per bracket for the principal's action.
      selfishness: fixed types sigma (length n), or None to sample them
        uniformly on [0, 1] from the seed.
      voting_rule: name in `sed_meltingpot.core.voting` (e.g. "mean", "median"), or
        "fixed:<eta>" to fix the objective without changing the types.
      principal_type / principal_weight: blend the principal's own type into
        the vote: eta = (1 - w) * rule(sigma) + w * principal_type.
      welfare: name in `sed_meltingpot.core.welfare` (fn(values, eta)).
      welfare_on: "apples" (the paper's W on apples collected) or "taxed"
        (the same function on post-tax incomes r_tax).
      neighbour_aggregate: "sum" (paper Eq. 8) or "mean" over visible players.
      reference_rates / divergence_delta / divergence_norm: the constraint
        D(phi_0, phi) <= delta, applied as a projection (inf = none).
      regrowth_probabilities / map: substrate overrides (None = default); map
        "generated" (the JAX twin only) is sized from num_players, 1 to
        GENERATED_MAX_PLAYERS.
    """

    substrate: str = "apple_picking"
    num_players: int = hyperparameter(apple_picking_data.NUM_PLAYERS, "Number of players.",
                                      lower_bound=1)
    episode_length: int = hyperparameter(apple_picking_data.EPISODE_LENGTH, "Steps per episode.",
                                         lower_bound=1)
    rounds_per_episode: int = hyperparameter(
        1, "Voting rounds per episode; >1 plays continual rounds without resetting the world "
        "between them.", lower_bound=1)
    tax_period: int = hyperparameter(50, "Steps per tax period.", lower_bound=1)
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    num_rate_levels: int = DEFAULT_NUM_RATE_LEVELS
    selfishness: tuple[float, ...] | None = None
    voting_rule: str = hyperparameter(
        "mean", "Social choice rule: one of the registered rules (sed_meltingpot.core.voting), or "
        "fixed:<eta> (eta in [0, 1], the players' types unchanged).")
    principal_type: float = 0.5
    principal_weight: float = 0.0
    welfare: str = hyperparameter("interpolated", "Principal's objective family: a registered "
                                  "welfare function (sed_meltingpot.core.welfare).")
    welfare_on: str = hyperparameter(
        "apples", "What the principal's objective W_eta is computed on: apples (apples eaten, "
        "paper Section 4) or taxed (post-tax incomes r_tax, the players' payoffs of paper "
        "Section 3 before Eq. 8's mixing).")
    neighbour_aggregate: str = "sum"
    reference_rates: tuple[float, ...] | None = None  # None: no tax, (0, ..., 0)
    divergence_delta: float = math.inf
    divergence_norm: str = "linf"
    regrowth_probabilities: tuple[float, ...] | None = None
    map: str | None = hyperparameter(
        None, "Substrate map: default or large; generated (--engine=jax only): tiled Commons "
        f"Harvest patches sized from --num_players, 1 to {GENERATED_MAX_PLAYERS}.")

    @property
    def num_brackets(self) -> int:
        return len(self.thresholds) - 1

    @property
    def round_length(self) -> int:
        return self.episode_length // self.rounds_per_episode

    @property
    def rate_levels(self) -> tuple[float, ...]:
        k = self.num_rate_levels - 1
        return tuple(i / k for i in range(self.num_rate_levels))

    def validate(self) -> GameConfig:
        """Raises ValueError naming the bad field and its allowed range."""
        _positive_int("num_players", self.num_players)
        _positive_int("episode_length", self.episode_length)
        _positive_int("rounds_per_episode", self.rounds_per_episode)
        _positive_int("tax_period", self.tax_period)
        if self.episode_length % self.rounds_per_episode:
            raise ValueError(
                f"episode_length={self.episode_length} is not divisible by "
                f"rounds_per_episode={self.rounds_per_episode}")
        if self.round_length % self.tax_period:
            raise ValueError(
                f"round length {self.round_length} (episode_length / rounds_per_episode) "
                f"must be a multiple of tax_period={self.tax_period}")
        if not (isinstance(self.num_rate_levels, int) and self.num_rate_levels >= 2):
            raise ValueError(f"num_rate_levels={self.num_rate_levels!r} must be an integer >= 2")
        for name in ("principal_type", "principal_weight"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} is outside [0, 1]")
        voting.get_voting_rule(self.voting_rule)  # ValueError names the rule
        if self.welfare_on not in WELFARE_ON:
            raise ValueError(f"welfare_on={self.welfare_on!r} must be one of {WELFARE_ON}")
        if self.neighbour_aggregate not in ("sum", "mean"):
            raise ValueError(
                f"neighbour_aggregate={self.neighbour_aggregate!r} must be 'sum' or 'mean'")
        if self.divergence_norm not in ("linf", "l1"):
            raise ValueError(f"divergence_norm={self.divergence_norm!r} must be 'linf' or 'l1'")
        if not self.divergence_delta >= 0:
            raise ValueError(f"divergence_delta={self.divergence_delta!r} must be >= 0")
        return self


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer (>= 1)")


def as_tuple(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)
