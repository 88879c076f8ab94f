"""The game's formulas as pure functions (numpy in, numpy out), on numbers worked by hand.

Shows: the bracket tax T(a, phi) and its even redistribution r_tax (paper Section 4,
the formulas under Eq. 8), the type-weighted rewards of Eq. 8, the votes f(sigma) -> eta
and the objectives W_eta, utilitarian, egalitarian and Nash (Eqs. 4-6), plus a custom
voting rule registered by name.
Needs: the base install only (`pip install .`).
Run:   python examples/pure_functions.py        (about a second)

Four players, one tax period: incomes a = (3, 8, 15, 25) apples, rates phi = (0.1, 0.2,
0.5) on the brackets (0, 10], (10, 20], (20, 10000]. By hand: T = (0.3, 0.8, 1.0 + 1.0,
1.0 + 2.0 + 2.5) = (0.3, 0.8, 2.0, 5.5); the pool 8.6 comes back as 2.15 each, so
r_tax = a - T + 2.15 = (4.85, 9.35, 15.15, 21.65), which sums to 51 like a.
"""

from __future__ import annotations

import numpy as np

from sed_meltingpot.core import rewards, tax, voting, welfare


def show(label: str, value: object) -> None:
    """One `label: value` line, rounded to 6 decimals (tests/test_examples.py reads them)."""
    print(f"{label}: {np.round(np.asarray(value, dtype=float), 6).tolist()}")


incomes = np.array([3.0, 8.0, 15.0, 25.0])  # a_i, apples eaten in the period
rates = (0.1, 0.2, 0.5)  # phi, one rate per bracket
show("taxes", tax.bracket_tax(incomes, rates))  # thresholds (0, 10, 20, 10000)
r_tax = tax.redistribute(incomes, rates)
show("r_tax", r_tax)
show("budget (sum r_tax - sum a)", r_tax.sum() - incomes.sum())

# Eq. 8: r_i = sigma_i r_tax,i + (1 - sigma_i) sum of r_tax,j over the players j that
# player i sees. visible[i, j]: 0 sees 1; 1 sees 0 and 2; 2 sees 3; 3 sees nobody.
sigma = np.array([1.0, 0.5, 0.0, 0.25])  # selfishness: 1 selfish, 0 fully social
visible = np.array([[0, 1, 0, 0],
                    [1, 0, 1, 0],
                    [0, 0, 0, 1],
                    [0, 0, 0, 0]], dtype=bool)
show("eq8 rewards", rewards.mix_rewards(r_tax, sigma, visible))  # (4.85, 14.675, 21.65, 5.4125)

# The vote: eta = mean selfishness (the paper's rule), or median / majority.
show("vote mean", voting.mean_vote(sigma))  # 0.4375
show("vote median", voting.median_vote(sigma))  # (0.25 + 0.5) / 2
show("vote majority", voting.majority_vote(sigma))  # 2 vs 2: a tie gives 0.5

# The objective on the period's apples at the voted eta: eta * 51 + (1 - eta) * 3 = 24.
eta = voting.mean_vote(sigma)
show("W_eta", welfare.interpolated(incomes, eta))
show("utilitarian", welfare.utilitarian(incomes))
show("egalitarian", welfare.egalitarian(incomes))
show("nash", welfare.nash_welfare(incomes))  # (3 * 8 * 15 * 25) ** (1 / 4)
show("equality (1 - gini)", welfare.equality(incomes))


# A custom voting rule by name: the most selfish player decides (GameConfig(voting_rule=
# "most_selfish") would then use it; examples/custom_rule_training.py trains with one).
def most_selfish(selfishness: np.ndarray) -> float:
    return float(np.max(selfishness))


voting.register_voting_rule("most_selfish", most_selfish)
show("vote most_selfish", voting.vote("most_selfish", sigma))
