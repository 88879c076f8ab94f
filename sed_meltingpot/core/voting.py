"""The voting mechanism f: reported types -> the principal's objective (paper Sections 3-4).

Objectives are the interpolated family W_eta of paper Section 4, so a voting rule
maps the players' selfishness sigma to eta in [0, 1], where eta = 1 is
utilitarian and eta = 0 egalitarian. The paper's default is the mean,
f(sigma) = (1/n) sum_i sigma_i; median and majority are extensions. The built-in
rules are written once, in ``VOTE_CORES`` (``core(sigma, xp)`` for an array
namespace ``xp``: numpy or jax.numpy), used by the numpy rules and the JAX twin.
`fixed:<eta>` (e.g. "fixed:0.5") names a rule that ignores the reports and
returns eta: it fixes the objective without changing the players' types, so
experiments compare objectives with the same players (`vote_core` gives its
array form too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from sed_meltingpot.core import registry
from sed_meltingpot.core.rewards import validate_selfishness
from sed_meltingpot.core.validators import unit_interval_array

__all__ = [
    "FIXED_PREFIX",
    "VOTE_CORES",
    "VOTING_RULES",
    "FixedVote",
    "VotingRule",
    "blend_principal",
    "fixed_eta",
    "get_voting_rule",
    "is_voting_rule",
    "majority_vote",
    "mean_vote",
    "median_vote",
    "register_voting_rule",
    "vote",
    "vote_core",
]


@runtime_checkable
class VotingRule(Protocol):
    """A social choice function f: selfishness (n,) in [0, 1] -> eta in [0, 1]."""

    def __call__(self, selfishness: np.ndarray, /) -> float: ...


def _majority_core(sigma: Any, xp: Any = np) -> Any:
    utilitarian_votes = xp.sum(sigma >= 0.5, axis=-1)
    egalitarian_votes = sigma.shape[-1] - utilitarian_votes
    return xp.where(utilitarian_votes > egalitarian_votes, 1.0,
                    xp.where(egalitarian_votes > utilitarian_votes, 0.0, 0.5))


#: The built-in rules as ``core(sigma (..., n), xp) -> eta (...)``, unvalidated.
VOTE_CORES: dict[str, Callable[[Any, Any], Any]] = {
    "mean": lambda sigma, xp=np: xp.mean(sigma, axis=-1),
    "median": lambda sigma, xp=np: xp.median(sigma, axis=-1),
    "majority": _majority_core,
}


def blend_principal(eta: Any, weight: float, principal_type: float) -> Any:
    """eta = (1 - w) f(sigma) + w theta_principal: the principal's own type blended into
    the vote with weight w (GameConfig.principal_weight; w = 0 leaves the players'
    vote). Unvalidated, for any array namespace; the game's shells and `mean_vote`
    call it."""
    return (1.0 - weight) * eta + weight * principal_type if weight > 0 else eta


def mean_vote(
    selfishness: ArrayLike, principal_type: float | None = None, principal_weight: float = 0.0
) -> float:
    """eta = (1 - w) * mean_i sigma_i + w * theta_principal (paper Section 4: f(sigma) = mean).

    The principal's own type may be blended in with weight w (paper Section 3:
    including the principal's preference theta_1 expresses "moral objectivity").
    w = 0 (default) is the paper's rule.
    """
    sigma = validate_selfishness(selfishness)
    w = float(unit_interval_array(principal_weight, "principal_weight"))
    eta = float(VOTE_CORES["mean"](sigma, np))
    if principal_type is None:
        if w > 0:
            raise ValueError("principal_type must be given (in [0, 1]) when principal_weight > 0")
        return eta
    theta = float(unit_interval_array(principal_type, "principal_type"))
    return float(blend_principal(eta, w, theta))


def median_vote(selfishness: ArrayLike) -> float:
    """eta = median_i sigma_i (for even n, the mean of the two middle values)."""
    return float(VOTE_CORES["median"](validate_selfishness(selfishness), np))


def majority_vote(selfishness: ArrayLike) -> float:
    """Majority between the two extremes: eta in {0, 0.5, 1}.

    Each player votes for the extreme nearer its type: sigma_i >= 0.5 votes
    utilitarian (eta = 1), sigma_i < 0.5 egalitarian (eta = 0). The larger side
    wins. A tie (only possible for even n) gives eta = 0.5, the midpoint of the two
    proposals, so that neither side is favoured by an arbitrary tie-break.
    """
    return float(_majority_core(validate_selfishness(selfishness), np))


class FixedVote:
    """The rule `fixed:<eta>`: eta whatever the reports (the types stay as
    they are, so the players' rewards, paper Eq. 8, do not change)."""

    def __init__(self, eta: float) -> None:
        self.eta = float(eta)

    def __call__(self, selfishness: np.ndarray, /) -> float:
        validate_selfishness(selfishness)
        return self.eta

    def __repr__(self) -> str:
        return f"FixedVote({self.eta!r})"


FIXED_PREFIX = "fixed:"


def fixed_eta(name: object) -> float | None:
    """eta of a `fixed:<eta>` rule name, None for any other name; raises
    ValueError naming the rule if eta is not a number in [0, 1]."""
    if not isinstance(name, str) or not name.startswith(FIXED_PREFIX):
        return None
    text = name[len(FIXED_PREFIX):]
    try:
        eta = float(text)
    except ValueError:
        eta = math.nan
    if not 0.0 <= eta <= 1.0:  # also rejects NaN
        raise ValueError(f"voting rule {name!r}: eta={text!r} must be a number in [0, 1], "
                         "e.g. fixed:0.5")
    return eta


def vote_core(name: str) -> Callable[[Any, Any], Any]:
    """``core(sigma (..., n), xp) -> eta (...)`` of a built-in rule or of
    `fixed:<eta>`, for array code (the JAX twin)."""
    eta = fixed_eta(name)
    if eta is not None:
        return lambda sigma, xp=np: xp.full(sigma.shape[:-1], eta)
    try:
        return VOTE_CORES[name]
    except (KeyError, TypeError):
        raise ValueError(f"voting rule {name!r} has no array form; those with one: "
                         f"{', '.join(sorted(VOTE_CORES))}, {FIXED_PREFIX}<eta>") from None


#: Registered rules, each ``rule(selfishness) -> eta``.
VOTING_RULES: dict[str, VotingRule] = {
    "mean": mean_vote,
    "median": median_vote,
    "majority": majority_vote,
}


def register_voting_rule(name: str, rule: VotingRule, *, overwrite: bool = False) -> None:
    """Add a custom voting rule ``rule(selfishness) -> eta`` under ``name``.

    Re-using a name raises unless ``overwrite=True``.
    """
    registry.register(VOTING_RULES, "voting rule", name, rule, overwrite=overwrite)


def get_voting_rule(name: str) -> VotingRule:
    """Look up a voting rule by name, or build `fixed:<eta>`; unknown names
    list the registered ones."""
    eta = fixed_eta(name)
    if eta is not None:
        return FixedVote(eta)
    return registry.lookup(VOTING_RULES, "voting rule", name,
                           hint=f"; or {FIXED_PREFIX}<eta> with eta in [0, 1]")


def is_voting_rule(name: object) -> bool:
    """True if `get_voting_rule(name)` succeeds (for flag validators)."""
    try:
        get_voting_rule(name)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def vote(rule: str | VotingRule, selfishness: ArrayLike) -> float:
    """Run a rule (by name or callable) and check that it returned an eta in [0, 1].

    Use this rather than calling a custom rule directly, so a faulty rule fails
    loudly instead of handing the principal an objective outside the family W.
    """
    fn = get_voting_rule(rule) if isinstance(rule, str) else rule
    sigma = validate_selfishness(selfishness)
    eta = fn(sigma)
    try:
        eta_f = float(np.asarray(eta, dtype=float).item())
    except (TypeError, ValueError) as err:
        raise ValueError(f"voting rule returned {eta!r}, expected one eta in [0, 1]") from err
    return float(unit_interval_array(eta_f, "eta"))
