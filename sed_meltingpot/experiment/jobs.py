"""Running the results experiment: jobs of training and evaluation, cached, on Ray.

The stateful half of `scripts/experiment.py` with `engines` (the pure half, grids,
plan, statistics and outputs, is the rest of `sed_meltingpot.experiment`). A `Job`
trains runs with an engine and evaluates each run's cells (`evaluate_run`: one row
per definition of each cell; best_fixed's grid searches return as `Search`es).

The experiment runs in two stages (`make_jobs`, `plan_jobs`, `best_fixed_jobs`):
first every run of the plan and its evaluation, with best_fixed's grid searches
against the learned runs' players; then the fresh players trained under each chosen
schedule and their evaluation. Runs are independent: `run_jobs` calls them in this
process one after the other, or as Ray tasks over local cores or an existing
cluster. Finished runs (`is_trained`) and evaluations (`EVAL_FILE`,
`BEST_FIXED_EVAL_FILE`, keyed by `Job.eval_key`) are cached in the run folders, so
an interrupted experiment resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from typing import Any

from sed_meltingpot import evaluation
from sed_meltingpot.design import two_timescale
from sed_meltingpot.evaluation import SEARCH_SEED_OFFSET
from sed_meltingpot.experiment.engines import Engine, Log, get_engine, lua_episodes
from sed_meltingpot.experiment.grid import (
    BEST_FIXED,
    EVAL_SEED,
    LEARNED,
    SCHEDULES,
    SUBSTRATE_LUA,
    TWO_TIMESCALE,
    Grid,
    principal_spec,
    rule_of,
)
from sed_meltingpot.experiment.plan import (
    EvalItem,
    Search,
    TrainTask,
    plan_best_fixed,
    plan_evaluation,
    plan_training,
)
from sed_meltingpot.experiment.rows import DEFINITION_COLUMNS, episodes_row

EVAL_FILE = "experiment_eval.json"
BEST_FIXED_EVAL_FILE = "experiment_eval_best_fixed.json"
SEARCH_EVAL_FILE = "experiment_eval_search.json"  # the search principal's second stage
RUNS_DIR = "runs"
EVAL_FORMAT = 3


class TrainingStopped(RuntimeError):
    """A job's training was stopped by a signal (Ctrl-C, SIGTERM) before its budget."""


def is_trained(run_dir: str) -> bool:
    """A finished run: summary.json (written last by both trainers), readable, and not
    from a run that a signal stopped early (`"stopped_by"`). Why the last: a stopped run
    also writes its summary, and counting it would evaluate a run of part of the budget
    as if it were whole, in this call and in every call that reuses the folder."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):  # missing, or cut mid-write: train it again
        return False
    return isinstance(summary, dict) and not summary.get("stopped_by")


# ------------------------------------------------------------ evaluation
def evaluate_run(engine: Engine, grid: Grid, task: TrainTask, run_dir: str,
                 items: Sequence[EvalItem]) -> tuple[list[dict[str, Any]], list[Search]]:
    """The CSV rows of one training run's `items` (experiment.plan_evaluation,
    plan_best_fixed): one play per item, one row per definition of the item; a learned
    run on the twin also on the Lua substrate (`grid.lua_episodes`); best_fixed's
    searches against a learned run's players return as `Search`es."""
    rows: list[dict[str, Any]] = []
    searches: list[Search] = []
    b = grid.game.num_brackets

    def add(item: EvalItem, episodes: list[dict[str, float]], substrate: str,
            rates: str = "") -> None:
        rows.extend(episodes_row(episodes, welfare_on=w, objective=item.objective,
                                    principal=item.principal, seed=task.seed,
                                    substrate=substrate, players_from=task.key, rates=rates)
                    for w in item.welfare_on)

    for item in items:
        rule = rule_of(item.objective)
        if item.is_search:
            column = DEFINITION_COLUMNS[task.game_welfare_on]

            def judge(rates: tuple[float, ...], rule: str = rule) -> list[dict[str, float]]:
                return engine.evaluate(grid, run_dir, rule, rates,
                                       EVAL_SEED + SEARCH_SEED_OFFSET,
                                       grid.search_episodes, task.seed)

            found = evaluation.grid_search(judge, evaluation.rate_grid(grid.search_resolution, b),
                                           objective=column)
            searches.append(Search(item.objective, item.welfare_on, task.seed,
                                      tuple(found.best_rates), float(found.best_value)))
            continue
        rates = (two_timescale.best_rates(run_dir) if item.principal in TWO_TIMESCALE
                 else item.rates)  # a two-timescale principal plays the arm it chose
        spec = principal_spec(item.principal, rates)
        episodes = engine.evaluate(grid, run_dir, rule, spec, EVAL_SEED, grid.eval_episodes,
                                   task.seed)
        add(item, episodes, engine.substrate,
            spec[len("fixed:"):] if spec.startswith("fixed:") else "")
        if item.principal == LEARNED and engine.substrate != SUBSTRATE_LUA:
            try:  # the same networks on the Lua substrate: the transfer gap
                episodes = lua_episodes(run_dir, rule, LEARNED, EVAL_SEED,
                                        grid.lua_episodes, task.seed)
            except (ImportError, OSError, ValueError, NotImplementedError) as e:
                print(f"warning: no Lua evaluation of {run_dir}: {type(e).__name__}: {e}",
                      flush=True)
                continue
            add(item, episodes, SUBSTRATE_LUA)
    return rows, searches


# ------------------------------------------------------------------ jobs
@dataclasses.dataclass(frozen=True)
class Job:
    """Training (several tasks if the engine batches seeds) then evaluation of
    each run's items; everything a worker needs, picklable. `eval_file`: where each
    run folder caches this job's evaluation (the second stage has its own)."""

    engine: str
    grid: Grid
    tasks: tuple[TrainTask, ...]
    run_dirs: tuple[str, ...]
    items: tuple[EvalItem, ...]
    eval_file: str = EVAL_FILE

    @property
    def label(self) -> str:
        t = self.tasks[0]
        seeds = ",".join(str(x.seed) for x in self.tasks)
        stage = {BEST_FIXED_EVAL_FILE: " (best_fixed)",
                 SEARCH_EVAL_FILE: " (search)"}.get(self.eval_file, "")
        return f"{t.group}{stage} seed {seeds}"

    def items_of(self, task: TrainTask) -> list[EvalItem]:
        return [i for i in self.items if i.task == task]

    def eval_key(self, task: TrainTask) -> dict[str, Any]:
        """What the cached evaluation of a run depends on."""
        g = self.grid
        return {"format": EVAL_FORMAT, "engine": self.engine, "eval_seed": EVAL_SEED,
                "eval_episodes": g.eval_episodes, "lua_episodes": g.lua_episodes,
                "search_resolution": g.search_resolution,
                "search_episodes": g.search_episodes, "schedules": {
                    k: list(v) for k, v in SCHEDULES.items()},
                "items": [[i.objective, i.principal, list(i.welfare_on),
                           list(i.rates) if i.rates else None] for i in self.items_of(task)]}


def make_jobs(engine: Engine, grid: Grid, output_dir: str, tasks: Sequence[TrainTask],
              items: Sequence[EvalItem], eval_file: str = EVAL_FILE) -> list[Job]:
    """One job per run, or per group (same principal, objective, definition and
    schedule) of consecutive seeds if the engine batches seeds; each with its runs'
    evaluation items."""
    root = os.path.join(output_dir, RUNS_DIR)
    jobs = []

    def add(group: list[TrainTask], dirs: list[str]) -> None:
        jobs.append(Job(engine.name, grid, tuple(group), tuple(dirs),
                        tuple(i for i in items if i.task in group), eval_file))

    if not engine.batch_seeds:
        for t in tasks:
            add([t], [os.path.join(root, t.key)])
        return jobs
    groups: dict[str, list[TrainTask]] = {}
    for t in tasks:
        groups.setdefault(t.group, []).append(t)
    for group in groups.values():
        group.sort(key=lambda t: t.seed)
        blocks = [[group[0]]]
        for t in group[1:]:  # consecutive seeds train together (the twin's vmap)
            if t.seed == blocks[-1][-1].seed + 1:
                blocks[-1].append(t)
            else:
                blocks.append([t])
        for block in blocks:
            folder = os.path.join(root, f"{block[0].group}__seeds{block[0].seed}-"
                                        f"{block[-1].seed}")
            add(block, [folder] if len(block) == 1 else
                [os.path.join(folder, f"seed_{t.seed}") for t in block])
    return jobs


def plan_jobs(engine: Engine, grid: Grid, output_dir: str, objectives: Sequence[str],
              principals: Sequence[str], seeds: Sequence[int],
              welfare_on: Sequence[str]) -> list[Job]:
    """The first stage: every run of the plan and its evaluation (plan.py)."""
    tasks = plan_training(objectives, principals, seeds, welfare_on)
    items = plan_evaluation(tasks, objectives, principals, welfare_on, grid.rate_etas)
    return make_jobs(engine, grid, output_dir, tasks, items)


def best_fixed_jobs(engine: Engine, grid: Grid, output_dir: str,
                    searches: Sequence[Search], first_stage: Sequence[Job],
                    principal: str = BEST_FIXED) -> list[Job]:
    """The second stage: fresh players under each schedule best_fixed's searches chose
    (experiment.plan_best_fixed), and their evaluation; a first-stage scripted run of
    the same seed and schedule is reused (in its folder, not trained again)."""
    tasks = [t for j in first_stage for t in j.tasks]
    folders = {t.key: d for j in first_stage for t, d in zip(j.tasks, j.run_dirs, strict=True)}
    fresh, items = plan_best_fixed(searches, tasks, principal)
    eval_file = BEST_FIXED_EVAL_FILE if principal == BEST_FIXED else SEARCH_EVAL_FILE
    jobs = make_jobs(engine, grid, output_dir, fresh, items, eval_file)
    for t in dict.fromkeys(i.task for i in items if i.task.key in folders):
        jobs.append(Job(engine.name, grid, (t,), (folders[t.key],),
                        tuple(i for i in items if i.task == t), eval_file))
    return jobs


def run_job(job: Job) -> dict[str, Any]:
    """Trains what is not trained yet, evaluates what is not evaluated yet
    (cached in each run's `job.eval_file`); returns rows, searches and timings."""
    engine = get_engine(job.engine)
    t0 = time.time()
    todo = [(t, d) for t, d in zip(job.tasks, job.run_dirs, strict=True) if not is_trained(d)]
    if todo and engine.batch_seeds:  # the seeds of a job train together: all again
        todo = list(zip(job.tasks, job.run_dirs, strict=True))
    if todo:
        engine.train(job.grid, [t for t, _ in todo], [d for _, d in todo], print)
        stopped = [d for _, d in todo if not is_trained(d)]
        if stopped:  # nothing of a stopped job is evaluated, and the call ends
            raise TrainingStopped(f"training of {', '.join(stopped)} was stopped before its "
                                  "budget; the same command trains it again")
    train_s = time.time() - t0
    rows: list[dict[str, Any]] = []
    searches: list[Search] = []
    for task, run_dir in zip(job.tasks, job.run_dirs, strict=True):
        path = os.path.join(run_dir, job.eval_file)
        key = job.eval_key(task)
        cached = _read_json(path)
        if cached and cached.get("key") == key:
            rows += [{k: (math.nan if v is None else v) for k, v in r.items()}
                     for r in cached["rows"]]
            searches += [Search(s["objective"], tuple(s["welfare_on"]), s["seed"],
                                   tuple(s["rates"]), s["value"]) for s in cached["searches"]]
            continue
        run_rows, run_searches = evaluate_run(engine, job.grid, task, run_dir,
                                              job.items_of(task))
        with open(path, "w") as f:
            json.dump({"key": key, "rows": [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in r.items()} for r in run_rows],
                "searches": [dataclasses.asdict(s) for s in run_searches]}, f, indent=1)
        rows += run_rows
        searches += run_searches
    return {"rows": rows, "searches": searches, "train_s": train_s,
            "eval_s": time.time() - t0 - train_s, "trained": len(todo)}


def _read_json(path: str, log: Log = print) -> dict[str, Any] | None:
    """A run's cached evaluation, or None: missing, or damaged (a crash mid-write), which
    a resumed experiment says in one line naming the file and then evaluates again."""
    try:
        with open(path) as f:
            cached = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log(f"{path}: unreadable ({e}); evaluating this run again")
        return None
    if not isinstance(cached, dict):
        log(f"{path}: not a JSON object; evaluating this run again")
        return None
    return cached


def run_jobs(jobs: Sequence[Job], *, num_workers: int, ray_address: str | None,
             log: Log = print) -> list[dict[str, Any]]:
    """Runs the jobs here one by one (num_workers 1, no address), else as Ray
    tasks (one CPU each) on a local Ray with `num_workers` CPUs or on the
    cluster at `ray_address`; logs a line per finished job with an ETA."""
    start = time.time()
    results: list[dict[str, Any]] = []

    def done(job: Job, result: dict[str, Any]) -> None:
        results.append(result)
        elapsed = time.time() - start
        eta = elapsed / len(results) * (len(jobs) - len(results))
        log(f"[{len(results)}/{len(jobs)}] {job.label}: train {result['train_s']:.0f}s "
            f"({'cached' if not result['trained'] else 'trained'}), eval "
            f"{result['eval_s']:.0f}s | elapsed {elapsed / 60:.1f} min, eta {eta / 60:.1f} min")

    if num_workers <= 1 and not ray_address:
        for job in jobs:
            done(job, run_job(job))
        return results
    from sed_meltingpot.core.optional import extra_import

    with extra_import("rllib", "--num_workers > 1 / --ray_address (Ray tasks)"):
        import ray

    if not ray.is_initialized():
        if ray_address:
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=num_workers, include_dashboard=False,
                     log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(run_job)
    pending = {remote.remote(job): job for job in jobs}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready[0])
        done(job, ray.get(ready[0]))
    return results
