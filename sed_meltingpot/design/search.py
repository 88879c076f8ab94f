"""The Stackelberg search (`search`, issue 30 item 1): the leader's choice of a tax schedule,
each candidate scored by the welfare of players trained from scratch under it.

Why: the paper's principal is a leader (Section 4, Eq. 7: max over phi of
W(phi, pi(phi))), and in the paper's game the lever acts only through the players'
learning (flat100's gain shows 80k+ game steps after it starts taxing), so a schedule
can only be judged by the players it produces. The search trains fresh players under
every candidate, for several search seeds, and scores a candidate by the mean W_eta (the
game's "objective") of the episodes that ended in the last `window` fraction of a rung's
iterations, averaged over the seeds. Successive halving (`halving.halving_plan`, with an
explicit first cut: nothing is scored before the lever can show) keeps the better half
at each rung, and the survivors resume their training (`Population.select`). The last
rung's choice is the best score (`choice="best"`) or the least-taxing schedule within one
paired standard error of it (`"least_tax"`, `halving.least_tax_within_se`). All
candidates x seeds of a rung are one `jax.vmap`ped program (`training/jax/population.py`);
run k of a seed starts from the same players and games for every candidate (common
random numbers), so the candidates' differences are their schedules'.

The search's seeds come from their own range (`search_seeds`, from `SEARCH_SEED_START`)
and must be disjoint from the reported seeds: the chosen schedule is then trained with
fresh players on the reported seeds and evaluated like every principal, so the seeds it
is reported on were never tuned on.

Outputs under `output_dir`: `search.json` (the arguments, a record per finished rung, the
chosen schedule, the rule that chose it and the game steps spent) and, between rungs,
the survivors' state (`state_rung<k>.npz`). Both are written whole after every rung, so
a rerun with the same arguments continues after the last finished rung; one with other
arguments is refused. The choice rule is not among those arguments: it trains nothing,
so a finished search answers any rule from its last rung's scores.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sed_meltingpot.design.halving import CHOICES, choose, halving_plan, keep_best
from sed_meltingpot.design.protocol import Schedule, arm_grid, check_arms
from sed_meltingpot.runs import runlog
from sed_meltingpot.training.jax.population import Objectives, Population
from sed_meltingpot.training.jax.ppo_config import TwinTrainConfig

#: Training seeds are below this (experiment.grid.MAX_TRAIN_SEED, restated: design/ sits
#: below the experiment and does not import it).
MAX_TRAIN_SEED = 1_000_000
#: The search's seeds start here, far above the experiment's reported seeds (0, 1, ...).
SEARCH_SEED_START = 900_000
RESULT_FILE = "search.json"
#: Bracket 0's extra levels in the default candidates (the issue: the learned principal's
#: bracket-0 rate decided each seed's result), with the upper brackets fully taxed.
BRACKET0_LEVELS = (0.2, 0.4, 0.6, 0.8)


def default_candidates(brackets: int = 3) -> tuple[Schedule, ...]:
    """The {0, 0.5, 1}^brackets grid (`protocol.arm_grid`, 27 schedules for 3 brackets),
    then bracket 0 at 0.2, 0.4, 0.6 and 0.8 with every other bracket at 1 (flat100 with a
    lower bracket-0 rate): 31 candidates for the paper's game."""
    grid = arm_grid((0.0, 0.5, 1.0), brackets)
    return grid + tuple((r,) + (1.0,) * (brackets - 1) for r in BRACKET0_LEVELS)


def check_disjoint(seeds: Sequence[int], reported: Sequence[int]) -> None:
    """A one-line ValueError if a search seed is also a reported seed."""
    both = sorted(set(seeds) & set(reported))
    if both:
        raise ValueError(f"search seeds must be disjoint from the reported seeds; both hold {both}")


def search_seeds(num: int, reported: Sequence[int] = (),
                 start: int = SEARCH_SEED_START) -> tuple[int, ...]:
    """`num` search seeds from `start` (`SEARCH_SEED_START` unless a protocol asks for
    fresh search seeds: a search whose design was revised on earlier search seeds is
    tested on new ones), below `MAX_TRAIN_SEED`, checked disjoint from `reported`."""
    if isinstance(start, bool) or not isinstance(start, int) \
            or not 0 <= start < MAX_TRAIN_SEED:
        raise ValueError(f"start must be an integer in [0, {MAX_TRAIN_SEED}), got {start!r}")
    if isinstance(num, bool) or not isinstance(num, int) \
            or not 1 <= num <= MAX_TRAIN_SEED - start:
        raise ValueError(f"num must be an integer in [1, {MAX_TRAIN_SEED - start}] (seeds "
                         f"from {start}), got {num!r}")
    seeds = tuple(range(start, start + num))
    check_disjoint(seeds, reported)
    return seeds


@dataclasses.dataclass(frozen=True)
class RungResult:
    """One finished rung: who was trained, to what budget, their scores, who went on.

    `budget` is in iterations (each candidate's training by the rung's end),
    `game_steps` the same in game steps per run, `spent` the game steps this rung
    trained summed over its runs (candidates x seeds x the iterations added).
    `scores[i]` is candidate i's mean over the seeds of `seed_scores[i]`.
    """

    candidates: tuple[Schedule, ...]
    budget: int
    game_steps: int
    spent: int
    scores: tuple[float, ...]
    seed_scores: tuple[tuple[float, ...], ...]
    kept: tuple[Schedule, ...]
    elapsed_s: float


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The schedule the search chose, its rungs and the game steps it spent (all runs)."""

    chosen: Schedule
    rungs: tuple[RungResult, ...]
    seeds: tuple[int, ...]
    game_steps: int


def window_scores(objectives: Objectives, window: float) -> np.ndarray:
    """Each run's mean objective over the episodes that ended in the last `window`
    fraction (at least one iteration) of the iterations in `objectives`; ValueError if
    a run has none there (the window is shorter than an episode)."""
    iterations = objectives.done.shape[1]
    last = max(1, math.ceil(window * iterations))
    done = objectives.done[:, -last:]
    value = np.where(done, objectives.value[:, -last:], 0.0)
    count = done.reshape(len(done), -1).sum(axis=1)
    if (count == 0).any():
        raise ValueError(f"no episode ended in the last {last} of {iterations} iterations of a "
                         "rung: raise window or the budgets (an episode must end in the window)")
    return value.reshape(len(done), -1).sum(axis=1, dtype=np.float64) / count


def _schedules(values: Any) -> tuple[Schedule, ...]:
    return tuple(tuple(float(r) for r in s) for s in values)


def _rung_from(record: dict[str, Any]) -> RungResult:
    return RungResult(
        candidates=_schedules(record["candidates"]), budget=int(record["budget"]),
        game_steps=int(record["game_steps"]), spent=int(record["spent"]),
        scores=tuple(float(s) for s in record["scores"]),
        seed_scores=tuple(tuple(float(x) for x in s) for s in record["seed_scores"]),
        kept=_schedules(record["kept"]), elapsed_s=float(record["elapsed_s"]))


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _save(output_dir: str, arguments: dict[str, Any], rungs: Sequence[RungResult],
          state: Any, chosen: Schedule | None, choice: str) -> None:
    """After a rung: the survivors' state (none after the last rung), then search.json
    naming it, then the older states removed; each file written whole, so a kill at any
    point leaves a search.json whose state file exists."""
    name = None
    if state is not None:
        name = f"state_rung{len(rungs)}.npz"
        Population.save(state, os.path.join(output_dir, name))
    runlog.write_json(os.path.join(output_dir, RESULT_FILE), {
        "arguments": arguments, "rungs": [dataclasses.asdict(r) for r in rungs],
        "state": name, "chosen": chosen, "choice": choice,
        "game_steps": sum(r.spent for r in rungs)})
    for old in glob.glob(os.path.join(output_dir, "state_rung*.npz*")):
        if os.path.basename(old) != name:
            os.remove(old)


def _added_at_default(obj: Any, saved: Any, prefix: str = "") -> list[str]:
    """The dotted paths of `obj`'s dataclass fields that `saved` (their JSON in an older
    search.json) lacks and whose value is the field's declared default.

    Why: a config field added after a search was written defaults, by this project's
    rule, to the behaviour from before it, so a search trained without it is the one the
    default asks for; its file should still answer (and resume)."""
    if not dataclasses.is_dataclass(obj) or not isinstance(saved, dict):
        return []
    added = []
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name in saved:
            added += _added_at_default(value, saved[field.name], f"{prefix}{field.name}.")
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            continue
        if _dumps(value) == _dumps(default):  # a dataclass compares by its repr
            added.append(prefix + field.name)
    return added


def _without(tree: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """A copy of the JSON `tree` without the dotted `paths`."""
    tree = json.loads(_dumps(tree))
    for path in paths:
        *parents, leaf = path.split(".")
        node = tree
        for key in parents:
            node = node[key]
        del node[leaf]
    return tree


def _saved(path: str, arguments: dict[str, Any], config: TwinTrainConfig
           ) -> dict[str, Any] | None:
    """The progress in `path` (None if there is none); a one-line ValueError if it was
    written with other arguments. Config fields added since it was written are not
    counted as different while they hold their defaults (`_added_at_default`)."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        saved = json.load(f)
    added = _added_at_default(config, saved["arguments"].get("config"))
    arguments = {**arguments, "config": _without(arguments["config"], added)}
    differ = sorted(k for k in arguments | saved["arguments"]
                    if _dumps(arguments.get(k)) != _dumps(saved["arguments"].get(k)))
    if differ:
        raise ValueError(f"{path} holds a search with other arguments ({', '.join(differ)} "
                         "differ): rerun with the same ones or another output_dir")
    return saved


def search(config: TwinTrainConfig, *, min_budget: int, first_cut_budget: int,
           candidates: Sequence[Sequence[float]] | None = None,
           seeds: Sequence[int] | None = None, reported_seeds: Sequence[int] = (),
           reduction: int = 2, max_budget: int | None = None, window: float = 0.5,
           choice: str = "best", output_dir: str | None = None, game_impl: Any = None,
           on_rung: Callable[[int, RungResult], None] | None = None,
           print_fn: Callable[[str], None] = print) -> SearchResult:
    """Successive halving over `candidates` (default `default_candidates`), each scored
    by the W_eta of players trained from scratch under it on every seed of `seeds`
    (default: 2 from `search_seeds`, disjoint from `reported_seeds`).

    Budgets are in training iterations of `config` (its principal is replaced by the
    candidates' fixed rates; its `num_iterations` is the full budget, over which the
    players' lr anneals, and the default `max_budget`). `first_cut_budget`: the first
    rung's budget is the first of min_budget * reduction**i at or above it (say why:
    when the lever has shown). `window`: the fraction of a rung's own iterations whose
    finished episodes score it. `choice`: the rule that picks among the last rung's
    candidates (`halving.CHOICES`). `on_rung(k, rung)` is called after rung k is saved.
    """
    if not 0.0 < window <= 1.0:
        raise ValueError(f"window must be in (0, 1], got {window!r}")
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {list(CHOICES)}, got {choice!r}")
    full = config.train.num_iterations
    max_budget = full if max_budget is None else max_budget
    if isinstance(max_budget, bool) or not isinstance(max_budget, int) \
            or not 1 <= max_budget <= full:
        raise ValueError(f"max_budget must be an integer in [1, num_iterations={full}], "
                         f"got {max_budget!r}")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                   principal="none"))
    candidates = check_arms(default_candidates(config.game.num_brackets)
                            if candidates is None else candidates)
    if len(candidates[0]) != config.game.num_brackets:
        raise ValueError(f"candidates must have num_brackets={config.game.num_brackets} rates, "
                         f"got {len(candidates[0])}")
    seeds = search_seeds(2, reported_seeds) if seeds is None else tuple(int(s) for s in seeds)
    check_disjoint(seeds, reported_seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be one or more distinct seeds, got {seeds}")
    plan = halving_plan(len(candidates), min_budget, reduction, max_budget,
                        first_cut_budget=first_cut_budget)
    steps_per_iteration = config.game_steps_per_iteration
    num_seeds = len(seeds)
    arguments = json.loads(_dumps({
        "config": dataclasses.asdict(config),
        "game": "SEDTwin" if game_impl is None else type(game_impl).__name__,
        "candidates": candidates, "seeds": seeds, "min_budget": min_budget,
        "first_cut_budget": first_cut_budget, "reduction": reduction,
        "max_budget": max_budget, "window": window}))

    # Where a rerun continues: after the last finished rung of the same arguments.
    rungs: list[RungResult] = []
    population, state = None, None
    elapsed0 = 0.0
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, RESULT_FILE)
        saved = _saved(path, arguments, config)
        if saved is not None:
            rungs = [_rung_from(r) for r in saved["rungs"]]
            if saved["chosen"] is not None:
                chosen = _chosen(rungs[-1], choice)
                print_fn(f"search: {path} is finished; chosen {chosen} ({choice})")
                return SearchResult(chosen, tuple(rungs), seeds, int(saved["game_steps"]))
            if rungs:
                population = Population(config, game_impl)
                state = population.load(os.path.join(output_dir, saved["state"]),
                                        len(rungs[-1].kept) * num_seeds)
                elapsed0 = rungs[-1].elapsed_s
                print_fn(f"search: resuming after rung {len(rungs)} of {len(plan)}")

    t0 = time.time() - elapsed0
    alive = rungs[-1].kept if rungs else candidates
    for k in range(len(rungs), len(plan)):
        rung = plan[k]
        assert len(alive) == rung.candidates
        if state is None:  # the first rung: fresh runs, candidate-major
            population, state = Population.create(
                config, [s for _ in alive for s in seeds],
                np.repeat(np.asarray(alive, np.float32), num_seeds, axis=0), game_impl)
        previous = plan[k - 1].budget if k else 0
        added = rung.budget - previous
        every = max(1, added // 10)
        where = (f"search rung {k + 1}/{len(plan)} ({len(alive)} candidates x {num_seeds} "
                 f"seeds): iteration {{}} of {rung.budget}; {{:.0f}}s")

        def progress(done: int, total: int, where: str = where, every: int = every,
                     start: int = previous) -> None:
            if done % every == 0 and done < total:
                print_fn(where.format(start + done, time.time() - t0))

        state, objectives = population.advance(state, added, progress)
        seed_scores = window_scores(objectives, window).reshape(len(alive), num_seeds)
        scores = seed_scores.mean(axis=1)
        best = keep_best(scores, rung.keep)
        result = RungResult(
            candidates=alive, budget=rung.budget, game_steps=rung.budget * steps_per_iteration,
            spent=len(alive) * num_seeds * (rung.budget - previous) * steps_per_iteration,
            scores=tuple(float(s) for s in scores),
            seed_scores=tuple(tuple(float(x) for x in s) for s in seed_scores),
            kept=tuple(alive[i] for i in best), elapsed_s=time.time() - t0)
        rungs.append(result)
        last = k + 1 == len(plan)
        if not last:  # survivors resume where they stopped
            state = population.select(state, [i * num_seeds + s for i in best
                                              for s in range(num_seeds)])
            alive = result.kept
        print_fn(f"search rung {k + 1}/{len(plan)}: {len(result.candidates)} candidates x "
                 f"{num_seeds} seeds to {rung.budget} iterations ({result.game_steps} game "
                 f"steps each); best {result.kept[0]} W={scores[best[0]]:.3f}; "
                 f"{result.elapsed_s:.1f}s")
        chosen = _chosen(result, choice) if last else None
        if last and choice != "best":
            print_fn(f"search: chosen {chosen} ({choice})")
        if output_dir is not None:
            _save(output_dir, arguments, rungs, None if last else state, chosen, choice)
        if on_rung is not None:
            on_rung(k, result)
    return SearchResult(_chosen(rungs[-1], choice), tuple(rungs), seeds,
                        sum(r.spent for r in rungs))


def _chosen(rung: RungResult, choice: str) -> Schedule:
    """The schedule `choice` picks among a (last) rung's candidates."""
    return rung.candidates[choose(choice, rung.candidates, rung.seed_scores)]
