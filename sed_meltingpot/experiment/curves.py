"""Learning curves and what the runs' training logs (progress.jsonl) show.

A run's W_eta per logged training episode under either definition
(`objective_curve`, `panel_curve`), the band over seeds (`band`), whether the budget
was enough (`budget_quarters`: each curve by quarter of its iterations),
learning_curves.csv (`write_learning_curves`) and the learned principal's rates in
the last training episode (`last_period_rates`). Read from the trainers' logs; the
figure is `figures.plot_learning_curves`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sed_meltingpot.evaluation.stats import mean_ci
from sed_meltingpot.experiment.grid import DEFAULT_WELFARE_ON, SAMPLED, eta_of

#: curves[(welfare_on, objective)][principal]: the progress records of each seed's run.
Panels = Mapping[tuple[str, str], Mapping[str, Sequence[Sequence[Mapping]]]]


#: The progress.jsonl key of min_i post-tax income (the trainers' episode figures).
EGALITARIAN_KEYS = {"apples": "egalitarian", "taxed": "egalitarian_income"}


def objective_curve(records: Sequence[Mapping[str, Any]], eta: float | None,
                    welfare_on: str = DEFAULT_WELFARE_ON) -> tuple[np.ndarray, np.ndarray]:
    """(game steps, W_eta) over a run's log, on `welfare_on`. W_eta of the logged
    episodes is eta * utilitarian + (1 - eta) * egalitarian (on apples) or
    egalitarian_income (min_i post-tax income; the sum is the same, the tax being
    budget-balanced), exact for the mean over episodes since W_eta is linear in
    (sum, min) (one round per episode). eta None: each record's own voted eta.
    Records without the figure (logs from before egalitarian_income) are skipped."""
    low = EGALITARIAN_KEYS[welfare_on]
    xs, ys = [], []
    for r in records:
        x, u, e = r.get("game_steps"), r.get("utilitarian"), r.get(low)
        w = eta if eta is not None else r.get("eta")
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, u, e, w)):
            xs.append(float(x))
            ys.append(w * u + (1.0 - w) * e)
    return np.asarray(xs), np.asarray(ys)


def panel_curve(records: Sequence[Mapping[str, Any]], objective: str, welfare_on: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """A run's learning curve in the (welfare_on, objective) panel: `objective_curve`;
    for the sampled principal's panel (objective "sampled") the game's own objective
    per logged episode (W at each episode's drawn eta, on the run's definition)."""
    if objective == SAMPLED:
        from sed_meltingpot.analysis.plotting import series

        return series(records, "objective")
    return objective_curve(records, eta_of(objective), welfare_on)


def band(curves: Sequence[tuple[np.ndarray, np.ndarray]]
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeds' curves on their common iterations (cut to the shortest): x (the
    mean over seeds), mean, and the 95% t-interval bounds (NaN for one seed)."""
    length = min((len(x) for x, _ in curves), default=0)
    if length == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    xs = np.mean([x[:length] for x, _ in curves], axis=0)
    stats = [mean_ci(y[i] for _, y in curves) for i in range(length)]
    return (xs, np.array([s.mean for s in stats]), np.array([s.ci_low for s in stats]),
            np.array([s.ci_high for s in stats]))


def last_period_rates(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[float]]:
    """Mean over runs of the rates per period of each run's last logged
    episode (`last_episode_period_rates` of its last record that has them)."""
    tables = []
    for records in runs:
        found = [r["last_episode_period_rates"] for r in records
                 if r.get("last_episode_period_rates")]
        if found:
            tables.append(np.asarray(found[-1], dtype=float))
    if not tables:
        return []
    periods = min(t.shape[0] for t in tables)
    return np.mean([t[:periods] for t in tables], axis=0).tolist()


def budget_quarters(curves: Panels) -> list[dict[str, Any]]:
    """Is the budget enough? Per (definition, objective) panel and principal: each
    seed's learning curve (`panel_curve`) cut into quarters of its iterations; per
    quarter the mean over the seeds of the curve's mean in it, and the last quarter
    minus the third with its 95% t-interval over seeds. A curve that has flattened has
    a change near zero; one still rising, a positive change. Runs with fewer than 4
    logged points are left out."""
    out = []
    for (w, o), per_principal in curves.items():
        for p, runs in per_principal.items():
            quarters = []  # per seed: the curve's mean in each quarter
            for records in runs:
                _, y = panel_curve(records, o, w)
                if len(y) >= 4:
                    quarters.append([float(np.mean(q)) for q in np.array_split(y, 4)])
            if not quarters:
                continue
            q = np.asarray(quarters)
            out.append({"welfare_on": w, "objective": o, "principal": p, "seeds": len(q),
                        "quarters": [mean_ci(q[:, k]) for k in range(4)],
                        "change": mean_ci(q[:, 3] - q[:, 2])})
    return out


def write_learning_curves(curves: Panels, seeds: Mapping[tuple[str, str],
                                                         Mapping[str, Sequence[int]]],
                          path: str) -> str:
    """learning_curves.csv, the data of learning_curves.png: one row per definition,
    objective, principal, training seed (``seeds[panel][p][k]`` of ``curves[panel][p][k]``)
    and logged iteration."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["welfare_on", "objective", "principal", "seed", "game_steps",
                         "W_eta"])
        for (w, o), per_principal in curves.items():
            for p, runs in per_principal.items():
                for seed, records in zip(seeds[(w, o)][p], runs, strict=True):
                    for x, y in zip(*panel_curve(records, o, w), strict=True):
                        writer.writerow([w, o, p, seed, int(x), f"{y:.6g}"])
    return path
