"""The lever analysis (issue 16): can a tax move an objective in this game at all?

Against frozen players a principal draws independent uniform random rates each tax
period (`sed_meltingpot.analysis.lever_play` plays them on the twin); here the records are
turned into statistics, with numpy and scipy only (no JAX):

* per eta, the OLS fit y = a + sum_b s_b rate_b of the period's objective change y
  (the principal's reward summed over the period: the change of W_eta, paper Section 4)
  on the period's effective rates, with 95% intervals from episode-clustered CR1
  standard errors and a Student t critical value with (clusters - 1) degrees of
  freedom: the periods of one episode share a world and cumulative incomes, so they
  are not independent draws;
* a joint Wald test of s = 0 (F(B, clusters - 1), the same clustered covariance);
* per bracket, how often it binds: the share of player-periods whose period apples
  a_i exceed the bracket's lower threshold tau_b (the tax of paper Section 4 is zero
  on bracket b when a_i <= tau_b, so a rate there cannot act on that player);
* the objective per episode (mean and t-interval), to read the slopes against.

A slope is the same-period effect: because each period's rates are drawn
independently of every other period's, s_b estimates how much the objective changes
over the period itself per unit of that period's rate on bracket b, averaged over the
other periods' rates. Effects on later periods (through behaviour, or through the
cumulative incomes that W_eta is taken on) are not in it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sed_meltingpot.evaluation.stats import mean_ci, student_t_quantile

__all__ = ["LeverRecords", "LeverRow", "LeverSummary", "analyse", "binding_frequency",
           "cluster_ols", "format_markdown", "write_results"]

CSV_COLUMNS = ("eta", "bracket", "slope", "ci_low", "ci_high", "se", "n_periods",
               "n_episodes", "binds")
FILES = {"csv": "lever.csv", "json": "lever.json", "md": "lever.md"}


@dataclasses.dataclass(frozen=True)
class LeverRecords:
    """One row per (episode, tax period).

    rates f32[N, B]: the period's effective rates; y f32[N]: the objective's change
    over the period; eta f32[N]: the eta it was measured under; episode int[N]: the
    episode (the cluster; unique across etas); apples f32[N, n]: each player's apples
    of the period (a_i, what the bracket tax is computed on).
    """

    rates: np.ndarray
    y: np.ndarray
    eta: np.ndarray
    episode: np.ndarray
    apples: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.y)
        shapes = {"rates": (np.ndim(self.rates), len(self.rates)),
                  "eta": (np.ndim(self.eta), len(self.eta)),
                  "episode": (np.ndim(self.episode), len(self.episode)),
                  "apples": (np.ndim(self.apples), len(self.apples))}
        want = {"rates": 2, "eta": 1, "episode": 1, "apples": 2}
        for name, (ndim, length) in shapes.items():
            if ndim != want[name] or length != n:
                raise ValueError(f"{name} must have {want[name]} axes and {n} rows (one per "
                                 f"period of y), got shape {np.shape(getattr(self, name))}")

    @classmethod
    def concatenate(cls, parts: Sequence[LeverRecords]) -> LeverRecords:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in dataclasses.fields(cls)))


@dataclasses.dataclass(frozen=True)
class LeverRow:
    """One (eta, bracket): the slope of the period's objective change on the rate."""

    eta: float
    bracket: int
    slope: float
    ci_low: float
    ci_high: float
    se: float
    n_periods: int
    n_episodes: int
    binds: float


@dataclasses.dataclass(frozen=True)
class LeverSummary:
    """One eta: the intercept, the joint test of all slopes = 0 and the objective."""

    eta: float
    intercept: float
    joint_f: float
    joint_p: float
    objective_mean: float  # per episode: sum of the period changes (= W_eta of a round)
    objective_ci_low: float
    objective_ci_high: float
    period_change_mean: float
    periods_per_episode: float
    n_episodes: int


def cluster_ols(x: np.ndarray, y: np.ndarray, clusters: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and their CR1 cluster-robust covariance (Cameron and Miller 2015):
    (X'X)^-1 (sum_g X_g' u_g u_g' X_g) (X'X)^-1 * G/(G-1) * (N-1)/(N-K).

    x f64[N, K] (with the constant column, if any), y f64[N], clusters [N] labels.
    Raises ValueError when X'X is singular (a regressor without variation)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, k = x.shape
    if np.linalg.matrix_rank(x) < k:
        raise ValueError(f"the regressors are collinear (rank {np.linalg.matrix_rank(x)} < "
                         f"{k}): a rate that never varies cannot have a slope")
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ (x.T @ y)
    u = y - x @ beta
    labels, index = np.unique(np.asarray(clusters), return_inverse=True)
    g = len(labels)
    scores = np.zeros((g, k))
    np.add.at(scores, index, x * u[:, None])  # row g: X_g' u_g
    meat = scores.T @ scores
    scale = g / (g - 1) * (n - 1) / (n - k) if g > 1 and n > k else math.nan
    return beta, xtx_inv @ meat @ xtx_inv * scale


def binding_frequency(apples: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """f64[B]: per bracket b, the share of player-periods with a_i > tau_b (the
    bracket's lower threshold; thresholds = (tau_0, ..., tau_B))."""
    a = np.asarray(apples, np.float64).reshape(-1)
    lower = np.asarray(thresholds, np.float64)[:-1]
    if a.size == 0:
        return np.full(lower.shape, math.nan)
    return (a[:, None] > lower[None, :]).mean(axis=0)


def analyse(records: LeverRecords, thresholds: Sequence[float], confidence: float = 0.95
            ) -> tuple[list[LeverRow], list[LeverSummary]]:
    """Per eta (in increasing order): a LeverRow per bracket and a LeverSummary."""
    from scipy import stats as scipy_stats  # here: see evaluation.stats.student_t_quantile

    rows: list[LeverRow] = []
    summaries: list[LeverSummary] = []
    num_brackets = records.rates.shape[1]
    if len(thresholds) != num_brackets + 1:
        raise ValueError(f"{len(thresholds)} thresholds for {num_brackets} brackets (want "
                         f"{num_brackets + 1})")
    for eta in np.unique(records.eta):
        m = records.eta == eta
        rates, y = records.rates[m].astype(np.float64), records.y[m].astype(np.float64)
        episodes = records.episode[m]
        x = np.concatenate([np.ones((len(y), 1)), rates], axis=1)
        beta, cov = cluster_ols(x, y, episodes)
        labels, index = np.unique(episodes, return_inverse=True)
        g = len(labels)
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        t = student_t_quantile(0.5 + confidence / 2.0, g - 1) if g > 1 else math.nan
        binds = binding_frequency(records.apples[m], thresholds)
        for b in range(num_brackets):
            s, e = float(beta[1 + b]), float(se[1 + b])
            rows.append(LeverRow(float(eta), b, s, s - t * e, s + t * e, e, int(m.sum()), g,
                                 float(binds[b])))
        slopes, v = beta[1:], cov[1:, 1:]
        try:
            f_stat = float(slopes @ np.linalg.solve(v, slopes)) / num_brackets
            p = float(scipy_stats.f.sf(f_stat, num_brackets, g - 1)) if g > 1 else math.nan
        except np.linalg.LinAlgError:
            f_stat = p = math.nan
        per_episode = np.bincount(index, weights=y, minlength=g)
        stat = mean_ci(per_episode, confidence)
        summaries.append(LeverSummary(
            float(eta), float(beta[0]), f_stat, p, stat.mean, stat.ci_low, stat.ci_high,
            float(y.mean()), len(y) / g, g))
    return rows, summaries


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}g}"


def format_markdown(rows: Sequence[LeverRow], summaries: Sequence[LeverSummary],
                    meta: dict[str, Any] | None = None) -> str:
    """The tables of lever.md: per eta, the slopes and binding shares, the joint test and
    the objective per episode to read the slopes against."""
    meta = meta or {}
    lines = ["# Lever analysis", ""]
    if meta:
        lines += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    lines += [
        "Slope: change of the objective over a tax period per unit of that period's rate "
        "(0 -> 1) on the bracket, OLS on independent uniform random rates; 95% interval "
        "from episode-clustered (CR1) standard errors, t with episodes - 1 df. binds: share "
        "of player-periods with apples above the bracket's lower threshold.", "",
        "| eta | bracket | slope | 95% CI | binds | periods | episodes |",
        "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.eta:g} | {r.bracket} | {_fmt(r.slope)} | {_fmt(r.ci_low)} to "
                     f"{_fmt(r.ci_high)} | {r.binds:.3f} | {r.n_periods} | {r.n_episodes} |")
    lines += ["", "| eta | objective per episode (95% CI) | change per period | periods per "
              "episode | all slopes = 0: F, p |", "|---|---|---|---|---|"]
    for s in summaries:
        lines.append(f"| {s.eta:g} | {_fmt(s.objective_mean)} ({_fmt(s.objective_ci_low)} to "
                     f"{_fmt(s.objective_ci_high)}) | {_fmt(s.period_change_mean)} | "
                     f"{s.periods_per_episode:g} | {_fmt(s.joint_f)}, {_fmt(s.joint_p)} |")
    return "\n".join(lines) + "\n"


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_results(rows: Sequence[LeverRow], summaries: Sequence[LeverSummary],
                  output_dir: str, meta: dict[str, Any] | None = None) -> dict[str, str]:
    """Writes lever.csv (the rows), lever.json (rows, summaries, meta) and lever.md;
    returns their paths by kind."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {kind: os.path.join(output_dir, name) for kind, name in FILES.items()}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow(dataclasses.asdict(r))
    with open(paths["json"], "w") as f:
        json.dump(_clean({"meta": meta or {}, "rows": [dataclasses.asdict(r) for r in rows],
                          "summaries": [dataclasses.asdict(s) for s in summaries]}),
                  f, indent=1)
    with open(paths["md"], "w") as f:
        f.write(format_markdown(rows, summaries, meta))
    return paths
