"""The principal's training recipe on the jax engine (issue 16): its own PPO settings,
a players-first phase, the tax-cap ramp after it, entropy annealing, eta sampling.

Why a recipe: in the small game the principal has a handful of transitions per
iteration (one per tax period and game), so the players' PPO settings starve it (lr
annealed to 0 with theirs, 2 Adam steps an iteration). AI Economist (Zheng et al. 2022,
the paper's Appendix A curriculum) trains its planner in two phases: agents alone
without tax first, then the planner joins while a tax cap rises; its planner's entropy
is annealed from high to low. Each piece here is a flag of `scripts/train.py
--engine=jax` (declared once on its field, `hyperparameters.hyperparameter`).

The schedule (`schedule`) is a pure function of the iteration, traced inside the
jitted update; the phase boundary and the ramp are counted in iterations:

    phase 1  iterations [0, p1):        tax cap 0 (no tax), the principal is not trained
    phase 2  iterations [p1, total):    the principal acts and learns; the tax cap rises
                                        from tax_cap_start to 1 over the first
                                        tax_cap_fraction of phase 2 (TrainConfig fields)

with p1 = round(players_only_fraction * total). With players_only_fraction = 0 the ramp
covers the first tax_cap_fraction of the run, as on the RLlib path
(`TrainConfig.tax_cap_curriculum`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sed_meltingpot.core.hyperparameters import hyperparameter

LR_SCHEDULES = ("constant", "linear")
VALUE_NETS = ("shared", "separate")
ROUND_ENDS = ("terminal", "truncated")
ETA_SAMPLING_NONE, ETA_SAMPLING_UNIFORM = "none", "uniform"
REWARD_SCALES = ("none", "per_player")


@dataclasses.dataclass(frozen=True)
class PrincipalRecipe:
    """How the learned principal is trained on the jax engine (module docstring).

    Defaults: the settings under which the twin's principal learned full redistribution
    at eta 0 on post-tax income (issue 16): constant lr 1e-3, 8 epochs, entropy 0.02,
    terminal round end; plus a players-first phase of 20% of the budget.
    """

    principal_lr: float = hyperparameter(
        1e-3, "jax engine: the principal's Adam learning rate.", lower_bound=0.0)
    principal_lr_schedule: str = hyperparameter(
        "constant", "jax engine: the principal's lr over phase 2: constant, or linear (falls "
        "to 0 at the run's end).")
    principal_entropy_coeff: float = hyperparameter(
        0.02, "jax engine: the principal's entropy coefficient at the start of phase 2.",
        lower_bound=0.0)
    principal_entropy_final: float = hyperparameter(
        0.02, "jax engine: the principal's entropy coefficient after its anneal (equal to "
        "--principal_entropy_coeff: constant).", lower_bound=0.0)
    principal_entropy_anneal_fraction: float = hyperparameter(
        0.5, "jax engine: share of phase 2 over which the principal's entropy coefficient "
        "moves linearly to --principal_entropy_final.", lower_bound=0.0, upper_bound=1.0)
    principal_num_epochs: int = hyperparameter(
        8, "jax engine: the principal's PPO epochs per iteration.", lower_bound=1)
    principal_gamma: float = hyperparameter(
        1.0, "jax engine: the principal's discount per turn (tax period).", lower_bound=0.0,
        upper_bound=1.0)
    principal_lambda: float = hyperparameter(
        0.95, "jax engine: the principal's GAE lambda over its turns.", lower_bound=0.0,
        upper_bound=1.0)
    principal_round_end: str = hyperparameter(
        "terminal", "jax engine: the principal's episode at a round end: terminal (its "
        "objective restarts, nothing bootstrapped) or truncated (bootstrapped from the "
        "value of the final observation, the RLlib path's treatment).")
    players_only_fraction: float = hyperparameter(
        0.2, "jax engine, learned principal: share of the run's iterations in which the "
        "players train alone without tax before the principal joins (phase 1).",
        lower_bound=0.0, upper_bound=1.0)
    phase2_players_lr_scale: float = hyperparameter(
        1.0, "jax engine, learned principal: the players' lr is multiplied by this once the "
        "principal has joined (phase 2).", lower_bound=0.0)
    principal_init_no_tax: float = hyperparameter(
        0.0, "jax engine: 0 keeps the default initialisation; p in (0, 1) starts the "
        "principal's policy near phi_0 = 0 (no tax; paper Section 4): its logits layer's "
        "weights zeroed and biases set so that rate level 0 has probability p per bracket.",
        lower_bound=0.0, upper_bound=1.0)
    principal_init_level: int = hyperparameter(
        0, "jax engine: the rate level that --principal_init_no_tax's probability p goes "
        "to in every bracket (0: no tax, the paper's phi_0; num_rate_levels - 1: full "
        "tax, to ask whether the principal's gradient moves it off full redistribution).",
        lower_bound=0)
    scripted_curriculum: bool = hyperparameter(
        False, "jax engine, a scripted principal (none, fixed:.., random): it follows the "
        "learned principal's curriculum, no tax in phase 1 (--players_only_fraction) and "
        "its rates times the cap ramp after it, so that a fixed schedule shows what the "
        "timing alone costs (issue 30's diagnostic).")
    eta_sampling: str = hyperparameter(
        ETA_SAMPLING_NONE, "jax engine: none (eta from --voting_rule), uniform (eta ~ U[0, 1] "
        "drawn per game at each episode start) or a list such as 0,0.5,1 (drawn uniformly "
        "from it), so that one principal learns rates as a function of eta (it observes eta).")
    principal_reward_scale: str = hyperparameter(
        "none", "jax engine: none, or per_player: the principal's reward divided by "
        "eta * n + 1 - eta (W_eta in one player's units: its utilitarian term sums n "
        "players, its egalitarian term is one player's), so that its rewards have one "
        "scale at every eta; the best rates at each eta are unchanged (eta is fixed within "
        "an episode).")
    principal_eta_heads: bool = hyperparameter(
        False, "jax engine: the principal's policy and value heads linear in eta (logits "
        "= a(x) + eta b(x), the value likewise; training/jax/networks.py), so that its rates "
        "can depend on eta through a path of their own; for eta-sampled training.")
    principal_eta_baseline: bool = hyperparameter(
        False, "jax engine: before standardising the principal's advantages, subtract "
        "their least-squares line in eta over the iteration's batch (a baseline per eta, "
        "so that eta's scale does not swamp the advantages while the value net has not "
        "learned it); no effect when every game plays one eta.")
    principal_value_net: str = hyperparameter(
        "shared", "jax engine: the principal's value head on the policy's torso (shared) or "
        "on a torso of its own (separate), each tower with its own gradient clip and Adam, "
        "so that a value shock at an episode's start cannot move the policy (issue 30).")
    principal_entropy_floor: float = hyperparameter(
        0.0, "jax engine: nats per bracket below which the principal's loss adds "
        "--principal_entropy_floor_weight x (floor - that bracket's entropy), so that no "
        "bracket's exploration collapses before the players' response can show; 0 = off "
        "(the uniform policy over 11 levels has 2.40).", lower_bound=0.0)
    principal_entropy_floor_weight: float = hyperparameter(
        1.0, "jax engine: the weight of --principal_entropy_floor's hinge (the advantages "
        "are standardised, so 1 is the policy gradient's scale).", lower_bound=0.0)

    def validate(self) -> PrincipalRecipe:
        """Raises ValueError naming the flag, the value and what is allowed."""
        if self.principal_lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--principal_lr_schedule={self.principal_lr_schedule!r} must be "
                             f"one of {', '.join(LR_SCHEDULES)}")
        if self.principal_reward_scale not in REWARD_SCALES:
            raise ValueError(f"--principal_reward_scale={self.principal_reward_scale!r} must "
                             f"be one of {', '.join(REWARD_SCALES)}")
        if self.principal_round_end not in ROUND_ENDS:
            raise ValueError(f"--principal_round_end={self.principal_round_end!r} must be one "
                             f"of {', '.join(ROUND_ENDS)}")
        if self.principal_value_net not in VALUE_NETS:
            raise ValueError(f"--principal_value_net={self.principal_value_net!r} must be one "
                             f"of {', '.join(VALUE_NETS)}")
        if not self.principal_lr > 0:
            raise ValueError(f"--principal_lr={self.principal_lr!r} must be > 0")
        for name in ("principal_entropy_anneal_fraction", "principal_gamma",
                     "principal_lambda", "players_only_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--{name}={value!r} is outside [0, 1]")
        if not 0.0 <= self.principal_init_no_tax < 1.0:
            raise ValueError(f"--principal_init_no_tax={self.principal_init_no_tax!r} must be "
                             "in [0, 1) (0: default initialisation)")
        for name in ("principal_entropy_coeff", "principal_entropy_final",
                     "phase2_players_lr_scale", "principal_entropy_floor",
                     "principal_entropy_floor_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--{name}={getattr(self, name)!r} must be >= 0")
        if not isinstance(self.principal_init_level, int) or self.principal_init_level < 0:
            raise ValueError(f"--principal_init_level={self.principal_init_level!r} must be "
                             "a rate level >= 0")
        if not isinstance(self.principal_num_epochs, int) or self.principal_num_epochs < 1:
            raise ValueError(f"--principal_num_epochs={self.principal_num_epochs!r} must be a "
                             "positive integer")
        sampled_etas(self.eta_sampling)
        return self


def sampled_etas(spec: str) -> tuple[float, ...] | str | None:
    """None for "none", "uniform", or the tuple of a list spec ("0,0.5,1"); raises
    ValueError naming --eta_sampling for anything else."""
    if spec == ETA_SAMPLING_NONE:
        return None
    if spec == ETA_SAMPLING_UNIFORM:
        return spec
    try:
        values = tuple(float(v) for v in spec.split(","))
    except (AttributeError, ValueError):
        values = ()
    if not values or not all(0.0 <= v <= 1.0 for v in values):  # also rejects NaN
        raise ValueError(f"--eta_sampling={spec!r} must be none, uniform, or a comma list of "
                         "etas in [0, 1] such as 0,0.5,1")
    return values


def draw_etas(spec: str, key: Any, shape: tuple[int, ...]) -> Any:
    """f32 etas of `shape` for `spec` (`sampled_etas`): NaN everywhere for "none" (the
    players' vote, `SEDTwin.vote`), U[0, 1] for "uniform", else uniform over the list."""
    etas = sampled_etas(spec)
    if etas is None:
        return jnp.full(shape, jnp.nan, jnp.float32)
    if etas == ETA_SAMPLING_UNIFORM:
        return jax.random.uniform(key, shape, jnp.float32)
    choices = jnp.asarray(etas, jnp.float32)
    return choices[jax.random.randint(key, shape, 0, len(etas))]


def reward_scale(spec: str, eta: Any, num_players: int) -> Any:
    """The divisor of the principal's reward under `principal_reward_scale`: 1 for
    "none"; eta * n + 1 - eta for "per_player" (W_eta = eta * sum + (1 - eta) * min, so
    a change of one apple for every player moves it by this much at any eta)."""
    eta = jnp.asarray(eta, jnp.float32)
    if spec == "none":
        return jnp.ones_like(eta)
    return eta * num_players + 1.0 - eta


def remove_eta_trend(advantages: Any, etas: Any) -> Any:
    """`advantages` minus their least-squares line a + b * eta over the batch (flat
    arrays of one shape): a baseline per eta. With (nearly) one eta in the batch only
    the mean is removed, as `standardize` would."""
    a, e = jnp.asarray(advantages, jnp.float32), jnp.asarray(etas, jnp.float32)
    e_c = e - e.mean()
    var = jnp.mean(e_c * e_c)
    slope = jnp.where(var > 1e-8, jnp.mean(e_c * (a - a.mean())) / jnp.maximum(var, 1e-8),
                      0.0)
    return a - a.mean() - slope * e_c


class Schedule(NamedTuple):
    """What an iteration trains with (`schedule`)."""

    principal_active: Any  # bool: phase 2 (the principal acts under a cap > 0 and learns)
    tax_cap: Any  # f32
    principal_lr: Any  # f32
    principal_entropy_coeff: Any  # f32
    players_lr_scale: Any  # f32


def phase1_iterations(recipe: PrincipalRecipe, num_iterations: int, learned: bool) -> int:
    """Iterations of phase 1 (players alone); 0 without a learned principal."""
    if not learned:
        return 0
    return int(round(recipe.players_only_fraction * num_iterations))


def _linear(start: float, end: float, progress: Any) -> Any:
    progress = jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)
    return jnp.float32(start) + jnp.float32(end - start) * progress


def schedule(iteration: Any, recipe: PrincipalRecipe, *, num_iterations: int, learned: bool,
             tax_cap_anneal: bool, tax_cap_start: float, tax_cap_end: float,
             tax_cap_fraction: float) -> Schedule:
    """The recipe's settings at `iteration` (0-based, the iteration being trained).

    Phase 2 progress is (iteration - p1) / (total - p1). The cap: 0 in phase 1; in phase
    2 tax_cap_start -> tax_cap_end linearly until progress reaches tax_cap_fraction (then
    tax_cap_end); without the anneal, tax_cap_end throughout phase 2. Without a learned
    principal the cap is 1 and phase 1 is empty (a scripted principal has no curriculum,
    as on the RLlib path). The principal's lr: constant, or linear from principal_lr at
    phase 2's start to 0 at the run's end. Its entropy coefficient moves linearly from
    principal_entropy_coeff to principal_entropy_final over the first
    principal_entropy_anneal_fraction of phase 2.
    """
    it = jnp.asarray(iteration, jnp.float32)
    p1 = phase1_iterations(recipe, num_iterations, learned)
    phase2_length = max(1, num_iterations - p1)
    progress = jnp.clip((it - p1) / phase2_length, 0.0, 1.0)
    active = it >= p1
    if not learned:
        cap = jnp.float32(1.0)
    elif not tax_cap_anneal or tax_cap_fraction <= 0:
        cap = jnp.where(active, jnp.float32(tax_cap_end), 0.0)
    else:
        ramp = _linear(tax_cap_start, tax_cap_end, progress / tax_cap_fraction)
        cap = jnp.where(active, ramp, 0.0)
    lr = (jnp.float32(recipe.principal_lr) if recipe.principal_lr_schedule == "constant"
          else _linear(recipe.principal_lr, 0.0, progress))
    fraction = recipe.principal_entropy_anneal_fraction
    entropy = (jnp.float32(recipe.principal_entropy_final) if fraction <= 0 else _linear(
        recipe.principal_entropy_coeff, recipe.principal_entropy_final, progress / fraction))
    players_scale = (jnp.where(active, jnp.float32(recipe.phase2_players_lr_scale), 1.0)
                     if learned else jnp.float32(1.0))
    return Schedule(active, jnp.float32(cap), jnp.float32(lr), jnp.float32(entropy),
                    jnp.float32(players_scale))


def no_tax_bias(num_levels: int, probability: float) -> float:
    """The logit b of level 0 (others 0) that gives it `probability` under a softmax:
    e^b / (e^b + K - 1) = p  =>  b = log(p (K - 1) / (1 - p))."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability={probability!r} must be in (0, 1)")
    return math.log(probability * (num_levels - 1) / (1.0 - probability))
