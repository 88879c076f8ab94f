"""What an evaluation reports and how it is summarised: the metrics (all read
from `SEDGame.episode_metrics()`), and per metric the mean over episodes with
its 95% Student-t confidence interval (scipy.stats)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: Scalar metrics reported per principal, in table order; all come from
#: `SEDGame.episode_metrics()` (rates per bracket are added as rate_b<k>).
METRICS = ("objective", "eta", "utilitarian", "egalitarian", "nash_welfare", "productivity",
           "equality", "income_equality", "egalitarian_income", "sustainability", "peace",
           "tax_revenue", "principal_return")
METRIC_LABELS = {
    "objective": "W_eta", "eta": "eta", "utilitarian": "utilit.", "egalitarian": "egalit.",
    "nash_welfare": "Nash", "productivity": "apples", "equality": "equality",
    "income_equality": "post-tax eq.", "egalitarian_income": "post-tax egalit.",
    "sustainability": "sustain.", "peace": "peace", "tax_revenue": "tax rev.",
    "principal_return": "princ. ret.",
}


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r} must be in (0, 1)")
    if df <= 0:
        raise ValueError(f"df={df!r} must be > 0")
    # Imported here: train.py --engine=jax imports this package (through cli.py) and
    # must run where only JAX is usable; scipy.stats probes torch when imported.
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(p, df))


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df={df!r} must be > 0")
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.cdf(t, df))


@dataclasses.dataclass(frozen=True)
class Stat:
    """Mean of a metric over episodes and its 95% Student-t interval
    (NaN bounds with fewer than two finite values)."""

    mean: float
    ci_low: float
    ci_high: float
    std: float
    n: int

    @property
    def half_width(self) -> float:
        return 0.5 * (self.ci_high - self.ci_low)


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Stat:
    """Mean and t-interval of the finite values (a metric can be NaN in an
    episode, e.g. sustainability when nobody ate an apple)."""
    x = np.asarray([float(v) for v in values], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Stat(mean, math.nan, math.nan, math.nan, 1)
    std = float(x.std(ddof=1))
    if np.ptp(x) <= 1e-12 * max(1.0, abs(mean)):
        std = 0.0  # equal up to rounding: no spread, not a spread of 1e-17
    half = student_t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return Stat(mean, mean - half, mean + half, std, n)


def episode_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The reported scalars of one `SEDGame.episode_metrics()` dict."""
    out = {key: float(metrics[key]) for key in METRICS}
    for b, rate in enumerate(np.asarray(metrics["mean_rates"], dtype=float)):
        out[f"rate_b{b}"] = float(rate)
    return out


def summarize(episodes: Sequence[dict[str, float]], confidence: float = 0.95
              ) -> dict[str, Stat]:
    """Per metric: mean and confidence interval over episodes."""
    keys = list(episodes[0]) if episodes else []
    return {k: mean_ci((e[k] for e in episodes), confidence) for k in keys}

