"""Successive halving over candidate schedules (Jamieson & Talwalkar 2016).

Why: the Stackelberg search (issue 30, item 1) scores each candidate schedule phi by
the welfare W(phi, pi(phi)) of players trained from scratch under it, the paper's
leader objective (Section 4, Eq. 7). Training players is the cost, so the search
trains every candidate a little, keeps the best 1/reduction of them, trains those further,
and so on: successive halving, from Jamieson and Talwalkar (2016), "Non-stochastic
best arm identification and hyperparameter optimization" (the rung layout here is
the one Hyperband, Li et al. 2017, uses inside one bracket).

The lever of the paper's game shows only after the players have learned (issue 30:
flat100's gain appears 80k+ game steps after it starts taxing), so an early cut
would rank candidates on noise. `first_cut_budget` says when the first cut may come:
no rung is scored below it. The reduction factor is called `reduction` (the
literature's eta), so as not to be read as the game's objective weight eta.

Budgets are integers in any unit the caller trains in (game steps, iterations).
A rung's `budget` is what each of its candidates has been trained for by the end of
the rung; survivors can resume where they stopped (`added`) or restart (`total`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rung:
    """One rung of a halving plan.

    Args:
        candidates: how many candidates are trained and scored at this rung.
        budget: each candidate's training budget by the end of this rung.
        keep: how many go on to the next rung (1 at the last rung: the winner).
        total: candidates * budget, the rung's cost when candidates restart from scratch.
        added: candidates * (budget - the previous rung's budget), its cost when the
            survivors resume their training.
    """

    candidates: int
    budget: int
    keep: int
    total: int
    added: int


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """`value` if it is an integer in [low, high], else a one-line ValueError."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return value


def halving_plan(num_candidates: int, min_budget: int, reduction: int = 2,
                 max_budget: int | None = None, *, first_cut_budget: int) -> list[Rung]:
    """The rungs of successive halving: who is trained, for how long, at what cost.

    The budget ladder is min_budget * reduction**i, capped at `max_budget` (None: no cap;
    the candidates run out first). The first rung is the first ladder budget at or
    above `first_cut_budget` (before it nothing is scored, so nothing is cut) and
    trains all `num_candidates`; each later rung keeps floor(candidates / reduction) and
    trains them to the next ladder budget. The plan ends at the rung that reaches
    `max_budget`, or where a further cut would leave fewer than 2 candidates; the
    last rung's best (`keep_best(scores, 1)`) is the winner.

    With 27 candidates, reduction 3, budgets 1 to 9 and the first cut at 1 the rungs are
    27 x 1, 9 x 3, 3 x 9 (total 27 each; resumed, 27 + 18 + 18 = 63).

    `first_cut_budget` has no default: the caller states when the lever can show.
    Every argument is checked, with a one-line ValueError naming it and its range.
    """
    _check_int("num_candidates", num_candidates, 1)
    _check_int("min_budget", min_budget, 1)
    _check_int("reduction", reduction, 2)
    if max_budget is not None:
        _check_int("max_budget", max_budget, min_budget)
    _check_int("first_cut_budget", first_cut_budget, min_budget, max_budget)
    cap = math.inf if max_budget is None else max_budget

    budget = min_budget
    while budget < first_cut_budget:
        budget = int(min(budget * reduction, cap))
    sizes, budgets = [num_candidates], [budget]
    while budgets[-1] < cap and sizes[-1] // reduction >= 2:
        sizes.append(sizes[-1] // reduction)
        budgets.append(int(min(budgets[-1] * reduction, cap)))

    rungs, previous = [], 0
    for i, (size, rung_budget) in enumerate(zip(sizes, budgets, strict=True)):
        keep = sizes[i + 1] if i + 1 < len(sizes) else 1
        rungs.append(Rung(candidates=size, budget=rung_budget, keep=keep,
                          total=size * rung_budget, added=size * (rung_budget - previous)))
        previous = rung_budget
    return rungs


def plan_cost(rungs: Sequence[Rung], resume: bool = True) -> int:
    """The plan's whole training budget: the sum of `added` (resume) or of `total`."""
    return sum(r.added if resume else r.total for r in rungs)


def keep_best(scores: Sequence[float], k: int) -> tuple[int, ...]:
    """The indices of the `k` highest scores, best first; ties go to the lower index.

    Deterministic, so a search's cuts are a function of the scores alone. NaN scores
    are refused (a NaN would sort arbitrarily).
    """
    values = [float(s) for s in scores]
    if not values:
        raise ValueError("scores must hold at least one score, got none")
    if any(math.isnan(v) for v in values):
        raise ValueError("scores must not be NaN")
    _check_int("k", k, 1, len(values))
    return tuple(sorted(range(len(values)), key=lambda i: (-values[i], i))[:k])


#: How a search picks among the last rung's candidates (`choose`).
CHOICES = ("best", "least_tax")


def least_tax_within_se(candidates: Sequence[Sequence[float]],
                        seed_scores: Sequence[Sequence[float]]) -> int:
    """The index of the least-taxing candidate (lowest mean rate over its brackets)
    whose score is within one paired standard error of the best's.

    Why: a principal should not impose a tax whose benefit its evidence cannot tell from
    noise, and a close call between schedules is decided by seed noise (on the small
    grid the paired sd of flat 30% - no tax over search seeds is about 6 apples, and 4
    seeds picked the tax that the reported seeds put 6 below no tax:
    docs/results/small_designers_taxed.md). This is the one-standard-error rule of
    model selection (Breiman et al. 1984, CART, Section 3.4), with "simplest" read as
    "least tax" and the errors paired by seed, as the candidates share their seeds'
    players and games (common random numbers). Candidate i is within if
    mean(d) <= sd(d) / sqrt(n) for d = best - i over the n seeds (sd with n - 1); with
    one seed no error is known and the best is returned. Ties in mean rate go to the
    higher score, then the lower index; the best is `keep_best`'s."""
    scores = np.asarray(seed_scores, dtype=np.float64)
    if scores.ndim != 2 or len(scores) != len(candidates) or scores.shape[1] < 1:
        raise ValueError(f"seed_scores must be candidates x seeds ({len(candidates)} rows, "
                         f"one or more seeds), got shape {scores.shape}")
    means = scores.mean(axis=1)
    best = keep_best(means, 1)[0]
    n = scores.shape[1]
    if n < 2:
        return best
    d = scores[best] - scores
    within = d.mean(axis=1) <= d.std(axis=1, ddof=1) / math.sqrt(n)
    rates = [float(np.mean(c)) for c in candidates]
    return min((i for i in range(len(candidates)) if within[i]),
               key=lambda i: (rates[i], -means[i], i))


def choose(rule: str, candidates: Sequence[Sequence[float]],
           seed_scores: Sequence[Sequence[float]]) -> int:
    """The index a search chooses by `rule` (one of `CHOICES`): "best" the highest mean
    score (`keep_best`), "least_tax" `least_tax_within_se`."""
    if rule == "best":
        return keep_best(np.asarray(seed_scores, dtype=np.float64).mean(axis=1), 1)[0]
    if rule == "least_tax":
        return least_tax_within_se(candidates, seed_scores)
    raise ValueError(f"choice must be one of {list(CHOICES)}, got {rule!r}")
