"""Where one jax-engine training iteration spends its time (`scripts/profile_iteration.py`).

Each stage of `ppo.make_functions`' update (`ppo.IterationStages`: the rollout, the
GAE and batch, the players' PPO epochs, the principal's) is compiled alone and timed on
the inputs the update would give it, beside the whole update compiled as one program.
Timing compiled programs (not a trace) keeps the profile to plain wall-clock medians that
any machine can produce; the price is that XLA cannot fuse across the stages, so their
sum differs a little from the whole (the table shows both).

The players' update is also given per epoch and per minibatch step (its time over
`num_epochs` and over `num_epochs x minibatches`): with many small minibatches that
per-step cost, sequential on any device, is what `--num_minibatches` trades.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sed_meltingpot.perf.timing import time_calls
from sed_meltingpot.training.jax import ppo


@dataclasses.dataclass(frozen=True)
class StageTime:
    """One table row: a stage's median ms per call; `part` rows (per epoch, per
    minibatch) divide a stage's time and take no share of the iteration."""

    name: str
    ms: float
    part: bool = False


@dataclasses.dataclass(frozen=True)
class Profile:
    rows: list[StageTime]
    whole_ms: float  # the update as one program
    compile_s: float  # all programs, outside every row
    players_plan: tuple[int, int]  # (minibatch size, minibatches per epoch)
    num_epochs: int


def _compiled(fn: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    return jax.jit(fn).lower(*args).compile()


def _median_ms(call: Callable[..., Any], args: tuple, repeats: int) -> float:
    """Median wall ms of `call(*args)` over `repeats` calls after the warm-up and pilot
    calls (`timing.time_calls`, the scaling benchmark's timer, with the count fixed)."""
    _, timed = time_calls(lambda _: call(*args), None, 0.0, min_calls=repeats,
                          max_calls=repeats)
    return 1e3 * timed.median_s


def profile_iteration(config: ppo.TwinTrainConfig, *, repeats: int = 3, seed: int = 0,
                      game: Any = None) -> Profile:
    """Times the stages of one iteration of `config` (its first: phase and schedules as
    iteration 0). `game`: a `TrainableGame` in place of the twin (tests)."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be >= 1")
    fns = ppo.make_functions(config, game)
    s = fns.stages
    n = config.game.num_players
    types = (jnp.asarray(config.game.selfishness, jnp.float32) if config.game.selfishness
             else jnp.full((n,), 0.5, jnp.float32))
    t0 = time.perf_counter()
    state = jax.block_until_ready(jax.jit(fns.init)(jax.random.PRNGKey(seed), types))
    k_roll, k_players, k_principal = jax.random.split(jax.random.PRNGKey(seed + 1), 3)
    schedule = config.schedule(0)
    cap, entropy = jnp.float32(schedule.tax_cap), jnp.float32(schedule.principal_entropy_coeff)

    # Compile each stage on the inputs of the one before it.
    rollout = _compiled(s.rollout, state, k_roll, cap)
    after, roll = rollout(state, k_roll, cap)
    programs: list[tuple[str, Callable[..., Any], tuple]] = [
        ("rollout (env steps + policy forward)", rollout, (state, k_roll, cap))]
    learned = s.principal_batch is not None

    def batches(st: ppo.RunnerState, ro: dict[str, Any]) -> tuple[Any, Any]:
        return s.players_batch(st, ro), s.principal_batch(st, ro) if learned else None

    gae_fn = _compiled(batches, after, roll)
    batch, q_batch = gae_fn(after, roll)
    programs.append(("GAE and batches (+ last values)", gae_fn, (after, roll)))
    programs.append(("players' update", _compiled(s.players_train, after, batch, k_players),
                     (after, batch, k_players)))
    if learned:
        args = (after, q_batch, k_principal, entropy)
        programs.append(("principal's update", _compiled(s.principal_train, *args), args))
    whole = _compiled(fns.update, state)
    compile_s = time.perf_counter() - t0

    rows = [StageTime(name, _median_ms(call, args, repeats)) for name, call, args in programs]
    epochs = config.train.num_epochs
    size, count = config.players_minibatch_plan
    players = next(r for r in rows if r.name == "players' update")
    at = rows.index(players) + 1
    rows[at:at] = [
        StageTime(f"  per epoch ({epochs} epochs)", players.ms / epochs, part=True),
        StageTime(f"  per minibatch step ({count} x {size} rows)", players.ms / epochs / count,
                  part=True)]
    return Profile(rows, _median_ms(whole, (state,), repeats), compile_s, (size, count),
                   epochs)


def table(profile: Profile) -> list[str]:
    """The profile as a Markdown table: ms per call and share of the stages' sum."""
    total = sum(r.ms for r in profile.rows if not r.part)
    lines = ["| stage | ms | share |", "|---|---:|---:|"]
    for r in profile.rows:
        share = "" if r.part else f"{100 * r.ms / total:.1f}%"
        lines.append(f"| {r.name} | {r.ms:,.1f} | {share} |")
    lines.append(f"| sum of the stages | {total:,.1f} | 100.0% |")
    lines.append(f"| the whole update as one program | {profile.whole_ms:,.1f} | "
                 f"{100 * profile.whole_ms / total:.1f}% |")
    return lines
