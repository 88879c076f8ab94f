"""The voting mechanism f: reported types -> the principal's objective (SPEC section 5).

Objectives are the interpolated family W_eta of paper Section 4, so a voting rule
maps the players' selfishness sigma to eta in [0, 1], where eta = 1 is
utilitarian and eta = 0 egalitarian. The paper's default is the mean,
f(sigma) = (1/n) sum_i sigma_i; median and majority are extensions. Pure numpy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from sed_meltingpot.rewards import validate_selfishness
from sed_meltingpot.tax import _unit_interval_array

__all__ = [
    "VOTING_RULES",
    "VotingRule",
    "get_voting_rule",
    "majority_vote",
    "mean_vote",
    "median_vote",
    "register_voting_rule",
    "vote",
]


@runtime_checkable
class VotingRule(Protocol):
    """A social choice function f: selfishness (n,) in [0, 1] -> eta in [0, 1]."""

    def __call__(self, selfishness: np.ndarray, /) -> float: ...


def mean_vote(
    selfishness: ArrayLike, principal_type: float | None = None, principal_weight: float = 0.0
) -> float:
    """eta = (1 - w) * mean_i sigma_i + w * theta_principal (paper Section 4: f(sigma) = mean).

    The principal's own type may be blended in with weight w (paper Section 3:
    including the principal's preference theta_1 expresses "moral objectivity").
    w = 0 (default) is the paper's rule.
    """
    sigma = validate_selfishness(selfishness)
    w = float(_unit_interval_array(principal_weight, "principal_weight"))
    eta = float(sigma.mean())
    if principal_type is None:
        if w > 0:
            raise ValueError("principal_type must be given (in [0, 1]) when principal_weight > 0")
        return eta
    theta = float(_unit_interval_array(principal_type, "principal_type"))
    return (1.0 - w) * eta + w * theta


def median_vote(selfishness: ArrayLike) -> float:
    """eta = median_i sigma_i (for even n, the mean of the two middle values)."""
    return float(np.median(validate_selfishness(selfishness)))


def majority_vote(selfishness: ArrayLike) -> float:
    """Majority between the two extremes: eta in {0, 0.5, 1}.

    Each player votes for the extreme nearer its type: sigma_i >= 0.5 votes
    utilitarian (eta = 1), sigma_i < 0.5 egalitarian (eta = 0). The larger side
    wins. A tie (only possible for even n) gives eta = 0.5, the midpoint of the two
    proposals, so that neither side is favoured by an arbitrary tie-break.
    """
    sigma = validate_selfishness(selfishness)
    utilitarian_votes = int(np.count_nonzero(sigma >= 0.5))
    egalitarian_votes = sigma.shape[0] - utilitarian_votes
    if utilitarian_votes > egalitarian_votes:
        return 1.0
    if egalitarian_votes > utilitarian_votes:
        return 0.0
    return 0.5


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
    if not isinstance(name, str) or not name:
        raise ValueError(f"voting rule name must be a non-empty string, got {name!r}")
    if not callable(rule):
        raise TypeError(f"voting rule {name!r} must be callable, got {rule!r}")
    if name in VOTING_RULES and not overwrite:
        raise ValueError(
            f"voting rule {name!r} is already registered; pass overwrite=True to replace it"
        )
    VOTING_RULES[name] = rule


def get_voting_rule(name: str) -> VotingRule:
    """Look up a voting rule by name; unknown names list the registered ones."""
    try:
        return VOTING_RULES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(VOTING_RULES))
        raise ValueError(f"unknown voting rule {name!r}; known: {known}") from None


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
    return float(_unit_interval_array(eta_f, "eta"))
