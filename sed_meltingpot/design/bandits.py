"""Two-timescale bandit principals: UCB1, Thompson sampling, epsilon-greedy, per eta.

Why bandits: the lever of the paper's game acts only through the players' learning
(issue 30: flat100's gain shows 80k+ game steps after it starts taxing), so the
principal should hold one schedule long enough for the players to respond, score it
on the welfare they reach, and only then choose again. That is the two-timescale
principal of Large Legislative Models (Gasztowtt et al. 2024), where UCB gave the
highest principal payoff on Commons Harvest; it approximates the paper's leader
(Section 4, Eq. 7: max over phi of W(phi, pi(phi))) over a finite set of arms.

Drift: the players learn while the principal chooses, so every arm's score moves with
their training whatever the arm (on the small grid a seed's first step scores 24-33
apples and its last ones 57-69, docs/results/small_designers). A plain mean then
judges an arm by when it was pulled: the arm pulled first is never pulled again.
`UCB(detrend=d)` scores the arms by their effects in a least-squares fit of every
score on the arms plus a common polynomial of degree d in the principal step
(`detrended_effects`), so an arm is compared with the others at the same point of
the players' learning.

Sources: UCB1 is Auer, Cesa-Bianchi and Fischer (2002), "Finite-time analysis of the
multiarmed bandit problem"; Thompson sampling (Thompson 1933) is used here with a
Gaussian reward model and a conjugate normal prior; epsilon-greedy is the classic
rule analysed in the same Auer et al. paper.

Every bandit is a `protocol.Designer`: `propose(rng)` does not change its state,
`observe(schedule, score)` does, and the state (counts, means, posterior parameters)
is exposed as numpy arrays aligned with `arms` for tests and logs. Ties are broken by
the lowest arm index everywhere, so a run is a function of its rng's seed alone.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import numpy as np

from sed_meltingpot.design.protocol import Designer, Schedule, check_arms


def detrended_effects(pulls: Sequence[int], scores: Sequence[float], num_arms: int,
                      degree: int) -> np.ndarray | None:
    """Each arm's effect in the least-squares fit score_t = effect[arm_t] + sum_k
    b_k (t - mean t)^k (k = 1..degree; t = 0, 1, ... the observation's order): the arm's
    score at the observations' mean time with the common trend removed. NaN for an arm
    never pulled; None where the fit is not determined (fewer observations than
    parameters, or a trend the arms' order cannot tell apart from the arms), when a
    caller falls back on the plain means. degree 0 gives the plain means."""
    pulls = np.asarray(pulls, dtype=np.int64)
    y = np.asarray(scores, dtype=np.float64)
    pulled = np.unique(pulls)
    t = np.arange(len(y), dtype=np.float64)
    t -= t.mean() if len(t) else 0.0
    columns = [(pulls == a).astype(np.float64) for a in pulled]
    columns += [t**k for k in range(1, degree + 1)]
    x = np.stack(columns, axis=1) if columns else np.zeros((0, 0))
    if len(y) < x.shape[1] or np.linalg.matrix_rank(x) < x.shape[1]:
        return None
    coefficients = np.linalg.lstsq(x, y, rcond=None)[0]
    effects = np.full(num_arms, np.nan)
    effects[pulled] = coefficients[:len(pulled)]
    return effects


class _ArmBandit:
    """Shared bookkeeping: the arms, the pulls and the sum of the scores per arm, and
    the observations in order (`pulls`, `scores`)."""

    def __init__(self, arms: Sequence[Sequence[float]]) -> None:
        self.arms: tuple[Schedule, ...] = check_arms(arms)
        self._index = {arm: i for i, arm in enumerate(self.arms)}
        self.counts = np.zeros(len(self.arms), dtype=np.int64)
        self.sums = np.zeros(len(self.arms), dtype=np.float64)
        self.pulls: list[int] = []
        self.scores: list[float] = []

    @property
    def means(self) -> np.ndarray:
        """The mean score per arm (NaN for an arm never observed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)

    @property
    def total(self) -> int:
        """The number of observations so far (all arms)."""
        return int(self.counts.sum())

    def index_of(self, schedule: Sequence[float]) -> int:
        """The arm index of `schedule`; a ValueError if it is not one of the arms."""
        key = tuple(float(r) for r in schedule)
        if key not in self._index:
            raise ValueError(f"schedule must be one of the {len(self.arms)} arms, got {key}")
        return self._index[key]

    def observe(self, schedule: Schedule, score: float) -> None:
        """Add `score` (a finite number) to the arm `schedule`'s statistics."""
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"score must be a finite number, got {score}")
        i = self.index_of(schedule)
        self.counts[i] += 1
        self.sums[i] += score
        self.pulls.append(i)
        self.scores.append(score)

    def estimates(self) -> np.ndarray:
        """The per-arm values the bandit chooses by: the means here."""
        return self.means

    def _best_estimate(self) -> int:
        """The pulled arm of highest estimate (lowest index on ties); ValueError if none."""
        if self.total == 0:
            raise ValueError("best() needs at least one observation, got none")
        means = np.where(self.counts > 0, self.estimates(), -np.inf)
        return int(np.argmax(means))

    def best(self) -> Schedule:
        """The observed arm with the highest estimate (lowest index on ties): its mean
        score, or UCB's detrended effect."""
        return self.arms[self._best_estimate()]


class UCB(_ArmBandit):
    """UCB1 (Auer et al. 2002) with an exploration scale `c`.

    Each arm is pulled once first, in arm order. After that the arm chosen maximises
    `mean_i + c * sqrt(2 ln t / n_i)`, where `n_i` is arm i's pulls and `t` the
    number of observations so far (Auer et al.'s "overall number of plays done so
    far"): the 4th pull of a 3-arm bandit uses t = 3. Ties go to the lowest index.
    `c` exists because UCB1's bonus assumes rewards in [0, 1]; welfare in apples is
    on another scale, so `c` should be about the scores' spread (c = 1 is UCB1).

    `detrend` = d > 0 replaces the means, in the index and in `best`, by the arms'
    effects net of a common polynomial trend of degree d over the observations
    (`detrended_effects`; the plain means while that fit is not determined). The bonus
    stays UCB1's: a heuristic there, as an effect's estimate is noisier than a mean of
    as many scores.
    """

    def __init__(self, arms: Sequence[Sequence[float]], c: float = 1.0,
                 detrend: int = 0) -> None:
        super().__init__(arms)
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"c must be a finite number >= 0, got {c}")
        if isinstance(detrend, bool) or detrend not in (0, 1, 2):
            raise ValueError(f"detrend must be 0, 1 or 2 (a trend's degree), got {detrend!r}")
        self.c = float(c)
        self.detrend = int(detrend)

    def estimates(self) -> np.ndarray:
        """The arms' detrended effects (`detrend` > 0, once determined), else the means."""
        if self.detrend:
            effects = detrended_effects(self.pulls, self.scores, len(self.arms), self.detrend)
            if effects is not None:
                return effects
        return self.means

    def indices(self) -> np.ndarray:
        """The UCB index per arm now (+inf for an arm never pulled)."""
        t = max(self.total, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            bonus = self.c * np.sqrt(2.0 * math.log(t) / self.counts)
            return np.where(self.counts > 0, self.estimates() + bonus, np.inf)

    def propose(self, rng: np.random.Generator) -> Schedule:
        """The first unpulled arm, else the arm of highest index (`rng` is unused)."""
        del rng  # deterministic: kept for the Designer interface
        return self.arms[int(np.argmax(self.indices()))]


class Thompson(_ArmBandit):
    """Thompson sampling with a Gaussian reward model and a normal prior per arm.

    The scores of arm i are taken as N(mu_i, noise_sd^2) with noise_sd known, and
    mu_i ~ N(prior_mean, prior_sd^2). The posterior is normal in closed form:
    precision = 1/prior_sd^2 + n_i/noise_sd^2, and
    mean = (prior_mean/prior_sd^2 + sum_i/noise_sd^2) / precision.
    `propose` draws one mu from every arm's posterior (one `rng.normal` call, arms in
    order) and picks the largest. The defaults suit standardised scores; for welfare
    in apples pass a prior and a noise sd in apples (e.g. the seeds' spread).
    """

    def __init__(self, arms: Sequence[Sequence[float]], noise_sd: float = 1.0,
                 prior_mean: float = 0.0, prior_sd: float = 1.0) -> None:
        super().__init__(arms)
        for name, value in (("noise_sd", noise_sd), ("prior_sd", prior_sd)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not math.isfinite(prior_mean):
            raise ValueError(f"prior_mean must be a finite number, got {prior_mean}")
        self.noise_sd = float(noise_sd)
        self.prior_mean = float(prior_mean)
        self.prior_sd = float(prior_sd)

    @property
    def posterior_var(self) -> np.ndarray:
        """The posterior variance of each arm's mean score."""
        return 1.0 / (1.0 / self.prior_sd**2 + self.counts / self.noise_sd**2)

    @property
    def posterior_mean(self) -> np.ndarray:
        """The posterior mean of each arm's mean score (the prior mean if unpulled)."""
        weighted = self.prior_mean / self.prior_sd**2 + self.sums / self.noise_sd**2
        return weighted * self.posterior_var

    def propose(self, rng: np.random.Generator) -> Schedule:
        """The arm whose posterior draw is largest (lowest index on ties)."""
        draws = rng.normal(self.posterior_mean, np.sqrt(self.posterior_var))
        return self.arms[int(np.argmax(draws))]

    def estimates(self) -> np.ndarray:
        """The posterior means: what `best` ranks by."""
        return self.posterior_mean

    def best(self) -> Schedule:
        """The arm of highest posterior mean (the prior's answer before any data)."""
        return self.arms[int(np.argmax(self.posterior_mean))]


class EpsilonGreedy(_ArmBandit):
    """Epsilon-greedy: explore a uniformly random arm with probability `epsilon`.

    `propose` draws `rng.random()` first; below `epsilon` it returns
    `arms[rng.integers(len(arms))]`, else the greedy arm: the first arm never pulled
    if any (so every arm gets a score), else the arm of highest mean (lowest index
    on ties). An exploring draw may land on the greedy arm too.
    """

    def __init__(self, arms: Sequence[Sequence[float]], epsilon: float = 0.1) -> None:
        super().__init__(arms)
        if not (0.0 <= epsilon <= 1.0):
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)

    def greedy(self) -> int:
        """The greedy arm's index: the first unpulled arm, else the highest mean."""
        unpulled = np.flatnonzero(self.counts == 0)
        return int(unpulled[0]) if unpulled.size else self._best_estimate()

    def propose(self, rng: np.random.Generator) -> Schedule:
        """A random arm with probability epsilon, else the greedy arm."""
        if rng.random() < self.epsilon:
            return self.arms[int(rng.integers(len(self.arms)))]
        return self.arms[self.greedy()]


class PerEtaBucket:
    """One designer per eta bucket: contextual on the objective's weight eta.

    Why: the welfare W the principal maximises changes with eta (the players' vote on
    the objective), and so does the best tax (the issue's target: the chosen rates
    fall as eta rises), so one arm table for all eta would average incomparable
    scores. `edges` are the inner bucket boundaries in increasing order; bucket k
    holds eta with edges[k-1] <= eta < edges[k] (`bisect_right`), so edges (1/3, 2/3)
    make three buckets and eta = 0, 0.5, 1 fall in buckets 0, 1, 2. `factory()` makes
    each bucket's designer (a fresh one per bucket). The calls are the `Designer`
    calls with an `eta` argument added, which chooses the bucket.
    """

    def __init__(self, factory: Callable[[], Designer], edges: Sequence[float]) -> None:
        self.edges: tuple[float, ...] = tuple(float(e) for e in edges)
        if not all(math.isfinite(e) for e in self.edges) or any(
                b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError(f"edges must be finite and strictly increasing, got {self.edges}")
        self.designers: tuple[Designer, ...] = tuple(
            factory() for _ in range(len(self.edges) + 1))
        if len({id(d) for d in self.designers}) != len(self.designers):
            raise ValueError("factory must return a new designer on every call")

    def bucket_of(self, eta: float) -> int:
        """The index of the bucket holding `eta` (a finite number)."""
        if not math.isfinite(eta):
            raise ValueError(f"eta must be a finite number, got {eta}")
        return bisect.bisect_right(self.edges, float(eta))

    def propose(self, rng: np.random.Generator, eta: float) -> Schedule:
        """The schedule that eta's bucket proposes."""
        return self.designers[self.bucket_of(eta)].propose(rng)

    def observe(self, schedule: Schedule, score: float, eta: float) -> None:
        """Record the score in eta's bucket only."""
        self.designers[self.bucket_of(eta)].observe(schedule, score)

    def best(self, eta: float) -> Schedule:
        """Eta's bucket's answer."""
        return self.designers[self.bucket_of(eta)].best()
