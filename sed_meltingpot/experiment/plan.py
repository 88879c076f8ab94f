"""The plan of the results experiment: which runs are trained, which cells each serves.

`plan_training`, `plan_evaluation`, `plan_best_fixed`: the players' rewards (paper
Eq. 8) depend neither on eta nor on the definition (and the players do not observe
eta), so a scripted run is trained once per (principal, seed) and evaluated under
every objective and definition. A learned principal observes eta and is rewarded by
W_eta, so it is trained once per (definition, objective, seed), except that one run
serves both definitions at eta = 1: the tax is budget-balanced (the sum of post-tax
incomes is the sum of apples), so the utilitarian objective is the same on both.
best_fixed is planned in two stages: its grid search against each learned run's
players (an `EvalItem` of that run), then fresh players trained under the schedule
the search chose (`Search`, `plan_best_fixed`). Pure: the jobs that carry the plan
out are `sed_meltingpot.experiment.jobs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sed_meltingpot.experiment.grid import (
    BEST_FIXED,
    DEFAULT_WELFARE_ON,
    LEARNED,
    SAMPLED,
    SCHEDULES,
    SCRIPTED_TRAINING_RULE,
    SEARCH,
    TWO_TIMESCALE,
    eta_label,
    eta_of,
    principal_spec,
    rule_of,
)


@dataclasses.dataclass(frozen=True)
class TrainTask:
    """Players (and, if learned, a principal) trained from scratch for one seed.

    `objective` is the objective label of a learned principal and None otherwise (a
    scripted run serves every objective; the sampled principal draws eta);
    `welfare_on` the definition a learned or sampled principal is rewarded by (None for
    a scripted run, whose training does not depend on it); `rates` the schedule of a
    best_fixed run (fresh players under the schedule its search chose)."""

    principal: str
    objective: str | None
    seed: int
    welfare_on: str | None = None
    rates: tuple[float, ...] | None = None

    @property
    def voting_rule(self) -> str:
        return rule_of(self.objective) if self.objective else SCRIPTED_TRAINING_RULE

    @property
    def game_welfare_on(self) -> str:
        """The GameConfig.welfare_on it trains (and its episodes are played) with."""
        return self.welfare_on or DEFAULT_WELFARE_ON

    @property
    def spec(self) -> str:
        return principal_spec(self.principal, self.rates)

    @property
    def group(self) -> str:
        """The key without the seed: runs of one group differ only in their seed."""
        if self.principal == LEARNED or self.principal in TWO_TIMESCALE:
            suffix = "" if self.welfare_on == DEFAULT_WELFARE_ON else f"__{self.welfare_on}"
            return f"{self.principal}__{_slug(self.objective or '')}{suffix}"
        if self.principal == SAMPLED:
            return f"{SAMPLED}__{self.welfare_on}"
        if self.principal == SEARCH and self.rates is None:  # its search, per objective
            suffix = "" if self.welfare_on == DEFAULT_WELFARE_ON else f"__{self.welfare_on}"
            return f"{SEARCH}__{_slug(self.objective or '')}{suffix}"
        if self.principal in (BEST_FIXED, SEARCH):  # fresh players under a schedule
            return "fixed_" + "-".join(_slug(f"{r:g}") for r in self.rates or ())
        return self.principal

    @property
    def key(self) -> str:
        """Folder name of the run, unique in the grid."""
        return f"{self.group}__seed{self.seed}"


def _slug(label: str) -> str:
    return label.replace("=", "").replace(".", "p")


def learned_welfare_on(objective: str, welfare_on: str) -> str:
    """The definition of the learned run that serves (objective, welfare_on): at eta = 1
    both definitions are the same objective (budget-balanced tax), so they share the
    default's run."""
    return DEFAULT_WELFARE_ON if eta_of(objective) == 1.0 else welfare_on


def plan_training(objectives: Sequence[str], principals: Sequence[str], seeds: Sequence[int],
                  welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,)) -> list[TrainTask]:
    """Training runs of the first stage (best_fixed's fresh players come after its
    search, `plan_best_fixed`): one per (definition, objective, seed) for the learned
    principal, shared between definitions at eta = 1; one per (definition, seed) for
    the sampled one; one per (principal, seed) for each scripted one (module docstring)."""
    tasks: list[TrainTask] = []
    for seed in seeds:
        for p in principals:
            if p in (BEST_FIXED, SEARCH):  # trained after their searches
                continue
            if p == LEARNED or p in TWO_TIMESCALE:  # rewarded by W_eta: per objective
                for o in objectives:
                    for w in dict.fromkeys(learned_welfare_on(o, w) for w in welfare_on):
                        tasks.append(TrainTask(p, o, seed, w))
            elif p == SAMPLED:
                tasks += [TrainTask(SAMPLED, None, seed, w) for w in welfare_on]
            else:
                tasks.append(TrainTask(p, None, seed))
    return tasks


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """Cells of one seed: `principal` played under `objective` with the players of
    the run `task`, reported under each definition in `welfare_on` (one play, W under
    each definition from the same episodes). A best_fixed item whose task is a learned
    run is its grid search (against those players); one whose task is a fixed-rates
    run is the evaluation of the fresh players trained under the chosen schedule."""

    objective: str
    principal: str
    task: TrainTask
    welfare_on: tuple[str, ...]
    rates: tuple[float, ...] | None = None  # best_fixed's chosen schedule (second stage)

    @property
    def is_search(self) -> bool:
        return self.principal == BEST_FIXED and self.task.principal == LEARNED


def sampled_objectives(objectives: Sequence[str], rate_etas: Sequence[float]) -> list[str]:
    """Where the sampled principal is evaluated: the objectives, then the figure's etas."""
    labels = list(objectives)
    return labels + [e for e in (eta_label(x) for x in rate_etas) if e not in labels]


def plan_evaluation(tasks: Sequence[TrainTask], objectives: Sequence[str],
                    principals: Sequence[str], welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,),
                    rate_etas: Sequence[float] = ()) -> list[EvalItem]:
    """Every first-stage (definition, objective, principal, seed) cell and the run whose
    players it uses, plus best_fixed's searches against the learned runs' players."""
    items: list[EvalItem] = []
    for t in tasks:
        if t.principal == LEARNED or t.principal in TWO_TIMESCALE:
            defs = tuple(w for w in welfare_on if learned_welfare_on(t.objective, w)
                         == t.welfare_on)
            items.append(EvalItem(t.objective, t.principal, t, defs))
            if BEST_FIXED in principals and t.principal == LEARNED:
                items.append(EvalItem(t.objective, BEST_FIXED, t, defs))
        elif t.principal == SAMPLED:
            items += [EvalItem(o, SAMPLED, t, (t.welfare_on,))
                      for o in sampled_objectives(objectives, rate_etas)]
        else:
            items += [EvalItem(o, t.principal, t, tuple(welfare_on)) for o in objectives]
    return items


@dataclasses.dataclass(frozen=True)
class Search:
    """What best_fixed's grid search chose against a learned run's players."""

    objective: str
    welfare_on: tuple[str, ...]
    seed: int
    rates: tuple[float, ...]
    value: float  # the chosen schedule's mean W_eta on the search seeds


def plan_best_fixed(searches: Sequence[Search], tasks: Sequence[TrainTask],
                    principal: str = BEST_FIXED) -> tuple[list[TrainTask], list[EvalItem]]:
    """best_fixed's (or the search principal's, `principal=SEARCH`) second stage: per
    (seed, chosen schedule) the run of fresh players trained under it, which is the
    first-stage scripted run of that seed where one has the same schedule (none is
    (0, ..., 0), flat100 (1, ..., 1)), and its cells.
    Returns (the runs still to train, each once; the cells)."""
    def schedule(t: TrainTask, num_brackets: int) -> tuple[float, ...] | None:
        return (0.0,) * num_brackets if t.principal == "none" else SCHEDULES.get(t.principal)

    fresh: dict[tuple[tuple[float, ...], int], TrainTask] = {}
    items: list[EvalItem] = []
    for s in searches:
        rates = tuple(float(r) for r in s.rates)
        same = [t for t in tasks if t.seed == s.seed and schedule(t, len(rates)) == rates]
        task = same[0] if same else fresh.setdefault(
            (rates, s.seed), TrainTask(principal, None, s.seed, rates=rates))
        items.append(EvalItem(s.objective, principal, task, tuple(s.welfare_on), rates))
    return list(fresh.values()), items
