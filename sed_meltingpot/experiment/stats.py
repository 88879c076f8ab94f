"""The results experiment's statistics over training seeds.

Per cell (definition, objective, principal, substrate) the values of its seeds
(`cell_values`, `seed_values`), summarised by the mean and 95% Student-t interval
of `evaluation.stats.mean_ci` (the same interval as the per-episode evaluation). Each
learned principal is compared with each baseline by the paired t-test by seed
(scipy.stats.ttest_rel) with the signed-rank test (scipy.stats.wilcoxon) as a check,
and Holm's step-down correction (`holm`) within each (definition, objective)
(`comparisons`); Welch's test (`welch_test`) for unpaired samples. Also the transfer
gap (learned principal on the twin and on Lua: `transfer_gaps`) and the sampled
principal's rates against eta (`rates_by_eta`). scipy is imported where a test runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sed_meltingpot.evaluation.stats import Stat, mean_ci
from sed_meltingpot.experiment.grid import (
    DEFAULT_WELFARE_ON,
    LEARNED,
    LEARNERS,
    SAMPLED,
    SUBSTRATE_LUA,
    eta_of,
)
from sed_meltingpot.experiment.rows import definition_of


def welch_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Welch's two-sample t-test (unequal variances) of mean(a) - mean(b),
    two-sided, by scipy.stats.ttest_ind(equal_var=False). NaN where a
    sample has fewer than two values or neither varies."""
    from scipy import stats

    x = np.asarray([v for v in a if math.isfinite(v)], dtype=float)
    y = np.asarray([v for v in b if math.isfinite(v)], dtype=float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    out = {"diff": diff, "t": math.nan, "df": math.nan, "p": math.nan,
           "n_a": len(x), "n_b": len(y)}
    if len(x) < 2 or len(y) < 2:
        return out
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if vx + vy == 0:
        return out
    res = stats.ttest_ind(x, y, equal_var=False)
    out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    out["df"] = float((vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)))
    return out


def paired_test(a: Mapping[int, float], b: Mapping[int, float]) -> dict[str, Any]:
    """a - b paired by training seed (the seeds with a finite value in both): the paired
    t-test (scipy.stats.ttest_rel, two-sided; t = mean(d) / (sd(d) / sqrt(n)), n - 1 df)
    and, as a check, the signed-rank test of the differences (scipy.stats.wilcoxon,
    two-sided; with 5 seeds its smallest p is 2 / 2^5 = 0.0625, so it cannot reach
    0.05). NaN where fewer than two pairs or the differences do not vary beyond float32
    resolution (relative 1e-6 of the values: the twin's metrics are float32, so two
    principals that played the same episodes differ by rounding only)."""
    from scipy import stats

    seeds = sorted(s for s in a if s in b and math.isfinite(a[s]) and math.isfinite(b[s]))
    d = np.asarray([a[s] - b[s] for s in seeds], dtype=float)
    out: dict[str, Any] = {"diff": float(d.mean()) if len(d) else math.nan, "t": math.nan,
                           "df": math.nan, "p": math.nan, "n": len(d),
                           "p_signed_rank": math.nan}
    scale = max([1.0] + [abs(v) for s in seeds for v in (a[s], b[s])])
    if len(d) < 2 or np.ptp(d) <= 1e-6 * scale:
        return out
    res = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
    out.update(t=float(res.statistic), p=float(res.pvalue), df=float(len(d) - 1))
    if np.any(d != 0):
        out["p_signed_rank"] = float(stats.wilcoxon(d).pvalue)
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control): the
    k-th smallest p (k from 0) is multiplied by (m - k), made monotone by a
    running maximum and capped at 1. NaN p-values are left out of the family
    and stay NaN."""
    idx = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    m = len(idx)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for k, i in enumerate(sorted(idx, key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        adjusted[i] = running
    return adjusted


def paired_family(ours: Mapping[int, float], others: Mapping[str, Mapping[int, float]]
                  ) -> dict[str, dict[str, Any]]:
    """`ours` against each of `others` ({name: {seed: value}}) by `paired_test`, each
    test with its "p_holm": Holm's correction over this family, in `others`' order.
    One principal's comparisons with its baselines, as the reproduce scripts print them."""
    tests = {name: paired_test(ours, theirs) for name, theirs in others.items()}
    for test, adjusted in zip(tests.values(), holm([t["p"] for t in tests.values()]),
                              strict=True):
        test["p_holm"] = adjusted
    return tests


def cell_rows(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
              substrate: str, welfare_on: str) -> list[Mapping[str, Any]]:
    """The rows of one cell: (definition, objective, principal, substrate)."""
    return [r for r in rows if r["objective"] == objective and r["principal"] == principal
            and r["substrate"] == substrate and definition_of(r) == welfare_on]


def cell_values(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
                metric: str, substrate: str, welfare_on: str = DEFAULT_WELFARE_ON
                ) -> list[float]:
    return [float(r[metric]) for r in cell_rows(rows, objective, principal, substrate, welfare_on)]


def seed_values(rows: Iterable[Mapping[str, Any]], objective: str, principal: str,
                metric: str, substrate: str, welfare_on: str = DEFAULT_WELFARE_ON
                ) -> dict[int, float]:
    """{training seed: value} of one cell (a seed twice is an error: pairs need one)."""
    out: dict[int, float] = {}
    for r in cell_rows(rows, objective, principal, substrate, welfare_on):
        if int(r["seed"]) in out:
            raise ValueError(f"cell {welfare_on}/{objective}/{principal}/{substrate} has seed "
                             f"{r['seed']} twice")
        out[int(r["seed"])] = float(r[metric])
    return out


def comparisons(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                principals: Sequence[str], substrate: str,
                welfare_on: Sequence[str] = (DEFAULT_WELFARE_ON,), metric: str = "W_eta"
                ) -> list[dict[str, Any]]:
    """Each learned principal (LEARNERS) against each baseline with rows, per definition
    and objective, by `paired_test` on the per-seed `metric`; Holm's correction within
    each (definition, objective): one family per table of results.md."""
    tests = []
    for w in welfare_on:
        for o in objectives:
            family = []
            for learner in (p for p in principals if p in LEARNERS):
                ours = seed_values(rows, o, learner, metric, substrate, w)
                for p in principals:
                    theirs = seed_values(rows, o, p, metric, substrate, w)
                    if p in LEARNERS or not ours or not theirs:
                        continue
                    family.append({"welfare_on": w, "objective": o, "learner": learner,
                                   "baseline": p, **paired_test(ours, theirs)})
            for test, adj in zip(family, holm([t["p"] for t in family]), strict=True):
                test["p_holm"] = adj
            tests += family
    return tests


def transfer_gaps(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                  substrate: str, welfare_on: str = DEFAULT_WELFARE_ON
                  ) -> list[dict[str, Any]]:
    """Per objective: the learned principal's W_eta on the engine's substrate
    and on Lua, where both exist."""
    if substrate == SUBSTRATE_LUA:
        return []
    out = []
    for o in objectives:
        twin = cell_values(rows, o, LEARNED, "W_eta", substrate, welfare_on)
        lua = cell_values(rows, o, LEARNED, "W_eta", SUBSTRATE_LUA, welfare_on)
        if twin and lua:
            t, s = mean_ci(twin), mean_ci(lua)
            out.append({"objective": o, "twin": t, "lua": s, "gap": s.mean - t.mean})
    return out


def rates_by_eta(rows: Sequence[Mapping[str, Any]], substrate: str, num_brackets: int,
                 welfare_on: str = DEFAULT_WELFARE_ON
                 ) -> list[tuple[float, list[Stat], int]]:
    """The sampled principal's rates against eta: per fixed eta it was evaluated at
    (ascending), the mean over seeds of each seed's mean effective rate per bracket
    (95% t-interval over seeds), and the number of seeds."""
    by_eta: dict[float, list[Mapping[str, Any]]] = {}
    for r in rows:
        if (r["principal"] == SAMPLED and r["substrate"] == substrate
                and definition_of(r) == welfare_on and eta_of(r["objective"]) is not None):
            by_eta.setdefault(float(eta_of(r["objective"])), []).append(r)
    return [(eta, [mean_ci(float(r[f"rate_b{b}"]) for r in cell)
                   for b in range(num_brackets)], len(cell))
            for eta, cell in sorted(by_eta.items())]
