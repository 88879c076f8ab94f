"""The speed rows of `scripts/gpu_check.py`: env steps and training iterations of the
twin, planned, lowered, compiled in parallel threads, then timed one by one.

A row's compile time (lowering + XLA compile) is reported apart and never enters a
rate; a warm-up call after it is untimed; a row that would start after the run's
budget is skipped and a row that raises is reported as failed, so the table is
always printed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import math
import os
import sys
import time
from typing import Any

from sed_meltingpot.perf import programs
from sed_meltingpot.perf.timing import Budget, peak_mib, program_mib, timed_calls

OBS_LABELS = {"none": "env step, no observations", "tiles": "env step + tiles (11x11)",
              "pixels": "env step + pixels (88x88 RGB)"}
# Issue 19's targets on one H100/H200 (game steps/s), reported against, not required.
TARGETS = {"none": 10e6, "tiles": 3e6, "fast": 1e6, "paper": 1e5}


@dataclasses.dataclass
class Result:
    """One table row. `steps_per_game` x `games` = `game_steps`, all in the timed part."""

    name: str
    kind: str  # an observation (env rows) or a preset (training rows)
    dtype: str  # "-" for env rows
    games: int
    steps_per_game: int = 0
    compile_s: float = math.nan
    run_s: float = math.nan
    program_mib: float | None = None
    peak_mib: float | None = None
    status: str = "ok"  # ok | skipped: ... | failed: ...

    @property
    def game_steps(self) -> int:
        return self.games * self.steps_per_game

    @property
    def rate(self) -> float:
        return self.game_steps / self.run_s if self.status == "ok" and self.run_s > 0 \
            else math.nan

    @property
    def target(self) -> float | None:
        return TARGETS.get(self.kind)



@dataclasses.dataclass(frozen=True)
class Planned:
    """A row to run: group "env" (kind = observation) or "train" (kind = preset)."""

    group: str
    kind: str
    dtype: str
    games: int
    slot_s: float  # env: timed seconds; train: the row's wall-clock slot


def plan(args: argparse.Namespace) -> list[Planned]:
    """The rows in running order: env rows by size (so peak memory grows with the
    row), then each preset's dtypes, which share the preset's slot evenly."""
    rows = [Planned("env", obs, "-", games, args.env_seconds)
            for games in sorted(args.sizes) for obs in args.obs]
    for preset in args.presets:
        games = args.fast_envs if preset == "fast" else args.paper_envs
        slot = (args.fast_seconds if preset == "fast" else args.paper_seconds)
        rows += [Planned("train", preset, dtype, games, slot / len(args.dtypes))
                 for dtype in args.dtypes]
    return rows


def row_label(row: Planned) -> str:
    """The table's name of a row (what it steps and what the players see)."""
    if row.group == "env":
        return OBS_LABELS[row.kind]
    return f"training, {row.kind} preset ({'tiles' if row.kind == 'fast' else '88x88 pixels'})"


def _failure(e: BaseException) -> str:
    """A row's status for an exception: one line, at most 160 characters after 'failed: '."""
    return "failed: " + " ".join(f"{type(e).__name__}: {e}".split())[:160]


@dataclasses.dataclass
class Prepared:
    """A planned row's program, lowered (then compiled), or why it could not be."""

    row: Planned
    program: Any = None  # a perf.programs.Program
    steps_per_call: int = 0  # game steps per game in one call (env) or iteration (train)
    error: str | None = None


def prepare(row: Planned, args: argparse.Namespace) -> Prepared:
    """Lowers a row's program (tracing is Python: one row at a time)."""
    from sed_meltingpot.twin import TwinEnv

    try:
        if row.group == "env":
            program = programs.twin_rollout_program(TwinEnv.create("apple_picking"), row.games,
                                                    args.env_steps, args.seed, row.kind)
            return Prepared(row, program, args.env_steps)
        config, program = programs.twin_training_program(row.kind, row.games, args.rollout,
                                                         args.seed, row.dtype, args.principal)
        return Prepared(row, program, config.rollout_length)
    except Exception as e:  # noqa: BLE001 - reported in the row, the others go on
        return Prepared(row, error=_failure(e))


def compile_all(prepared: list[Prepared], threads: int) -> None:
    """Compiles the lowered programs, `threads` at a time: XLA compiles outside the
    GIL, so on a many-core host the 13 compiles of the device run overlap."""

    def one(p: Prepared) -> None:
        if p.program is None:
            return
        try:
            p.program.compile()
        except Exception as e:  # noqa: BLE001 - reported in the row
            p.program, p.error = None, _failure(e)

    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(one, prepared))


def run_prepared(p: Prepared, args: argparse.Namespace, budget: Budget, slot_s: float
                 ) -> Result:
    """One row: a warm-up call, then timed calls (env: for `slot_s`, one at least;
    training: to the end of the `slot_s` slot, which the warm-up counts in, and
    --min_iterations at least). Training steps are counted on device (the state's
    iteration counter)."""
    import jax

    row = p.row
    result = Result(row_label(row), row.kind, row.dtype, row.games)
    if p.error or p.program is None or budget.left() <= 0:
        result.status = p.error or "skipped: time budget"
        return result
    program, p.program = p.program, None  # freed once the row is done
    result.compile_s = program.lower_s + program.compile_s
    result.program_mib = program_mib(program.memory)
    try:
        if row.group == "env":
            carry = program.run(*program.args)  # warm-up
            jax.block_until_ready(carry)
            carry, calls, result.run_s = timed_calls(
                lambda c: program.run(c[0], c[1]), carry, lambda c: c[2], 1,
                budget.deadline(slot_s))
            result.steps_per_game = calls * p.steps_per_call
        else:
            deadline = budget.deadline(slot_s)
            state, metrics = program.run(*program.args)  # warm-up
            jax.block_until_ready(metrics)
            first = int(state.iteration)
            (state, _), _, result.run_s = timed_calls(
                lambda c: program.run(c[0]), (state, metrics), lambda c: c[1],
                args.min_iterations, deadline)
            result.steps_per_game = (int(state.iteration) - first) * p.steps_per_call
    except Exception as e:  # noqa: BLE001 - e.g. out of memory: report it, go on
        result.status = _failure(e)
    result.peak_mib = peak_mib()
    return result


def _progress(message: str) -> None:
    """A timestamped progress line on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_rows(args: argparse.Namespace, budget: Budget) -> tuple[list[Result], float]:
    """Every planned row: all lowered, then compiled in threads, then run one by one.
    Returns the results and the wall seconds of lowering and compiling."""
    start = time.perf_counter()
    rows = plan(args)
    prepared = [prepare(row, args) if budget.left() > 0 else Prepared(row) for row in rows]
    _progress(f"lowered {len(rows)} programs; compiling")
    threads = args.compile_threads or min(len(rows), os.cpu_count() or 1)
    compile_all(prepared, threads)
    compile_wall = time.perf_counter() - start
    _progress(f"compiled in {compile_wall:.0f} s ({threads} threads)")
    results = []
    for k, p in enumerate(prepared):
        slot = budget.share(p.row.slot_s, sum(q.row.slot_s for q in prepared[k:]))
        result = run_prepared(p, args, budget, slot)
        results.append(result)
        _progress(f"{result.name}, {result.dtype}, {result.games} games: {result.status}, "
                  f"{result.rate:,.0f} game steps/s")
    return results, compile_wall

