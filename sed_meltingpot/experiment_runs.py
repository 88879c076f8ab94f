"""Running the results experiment: training engines, evaluation, Ray tasks.

The stateful half of `scripts/experiment.py` (the pure half, grids, plan,
statistics and outputs, is `sed_meltingpot.experiment`). An engine trains a
run into a folder and evaluates a run's players under a principal:

    engine.train(grid, tasks, run_dirs, log)          # one or several seeds
    engine.evaluate(grid, run_dir, voting_rule, principal, seed, num_episodes)
        -> per-episode scalars (evaluation.episode_scalars keys)

`RllibEngine` trains with RLlib (sed_meltingpot.training.trainer) and plays on
the Lua substrate; `JaxEngine` trains on the JAX twin (seeds vmapped in one
process) and plays on the twin, and its learned players and principal are also
played on the Lua substrate for the transfer gap. Lua evaluation goes through
sed_meltingpot.evaluation (load_run, evaluate_principal, grid_search), so the
numbers are the game's own `episode_metrics()`.

Runs are independent: `run_jobs` calls them in this process one after the
other, or as Ray tasks over local cores or an existing cluster.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sed_meltingpot import evaluation
from sed_meltingpot import experiment as ex
from sed_meltingpot.principals import FixedRates

Log = Callable[[str], None]
# How the grid names a principal: "learned" | spec ("none", "fixed:..", "random") | rates
PrincipalSpec = str | tuple[float, ...]
EVAL_FILE = "experiment_eval.json"
RUNS_DIR = "runs"


class Engine(Protocol):
    name: str
    substrate: str  # where `evaluate` plays: "lua" or "twin"
    batch_seeds: bool  # True: train() takes several seeds of one (principal, objective) at once

    def train(self, grid: ex.Grid, tasks: Sequence[ex.TrainTask], run_dirs: Sequence[str],
              log: Log) -> None: ...

    def evaluate(self, grid: ex.Grid, run_dir: str, voting_rule: str, principal: PrincipalSpec,
                 seed: int, num_episodes: int) -> list[dict[str, float]]: ...


def is_trained(run_dir: str) -> bool:
    """A finished run leaves summary.json (written last by both trainers)."""
    return os.path.exists(os.path.join(run_dir, "summary.json"))


# ------------------------------------------------------------------- Lua
class LuaEvaluator:
    """Plays a trained run's players on the Lua substrate through
    sed_meltingpot.evaluation; loads the run's modules once."""

    def __init__(self, run_dir: str) -> None:
        import torch

        # One thread: these networks are tiny, and on a busy machine torch's
        # thread pool waits for cores far longer than it computes (measured
        # 10x slower episodes on 2 shared cores).
        torch.set_num_threads(1)
        self.run = evaluation.load_run(run_dir)

    def episodes(self, voting_rule: str, principal: PrincipalSpec, seed: int, num_episodes: int
                 ) -> list[dict[str, float]]:
        setup = evaluation.build_setup(self.run, {"voting_rule": voting_rule}, seed=seed)
        players = evaluation.make_players("checkpoint", self.run)
        if isinstance(principal, tuple):
            acting: Any = FixedRates(principal)
        else:
            acting = evaluation.make_principal(
                "trained" if principal == ex.LEARNED else principal, setup, self.run)
        return evaluation.evaluate_principal(setup, players, acting, num_episodes=num_episodes,
                                             seed=seed)


_LUA_CACHE: dict[str, LuaEvaluator] = {}


def lua_episodes(run_dir: str, voting_rule: str, principal: PrincipalSpec, seed: int,
                 num_episodes: int) -> list[dict[str, float]]:
    if run_dir not in _LUA_CACHE:
        _LUA_CACHE.clear()  # one run at a time: modules are small but envs are not
        _LUA_CACHE[run_dir] = LuaEvaluator(run_dir)
    return _LUA_CACHE[run_dir].episodes(voting_rule, principal, seed, num_episodes)


def _train_config(grid: ex.Grid, task: ex.TrainTask, *, num_iterations: int,
                  rollout_fragment_length: int, train_batch_size: int) -> Any:
    """The grid's TrainConfig for one run; the engines differ only in how an
    iteration is sized (RLlib: batch of fragments; jax: games x rollout)."""
    from sed_meltingpot.training.config import TrainConfig, preset

    overrides = {**preset(grid.preset), "minibatch_size": grid.minibatch_size}
    return TrainConfig(
        num_iterations=num_iterations, seed=task.seed,
        principal=ex.principal_spec(task.principal),
        rollout_fragment_length=rollout_fragment_length,
        train_batch_size=train_batch_size, num_env_runners=0,
        frame_stack=grid.frame_stack,
        principal_minibatch_size=grid.principal_minibatch_size, **overrides).validate()


# ----------------------------------------------------------------- RLlib
class RllibEngine:
    """RLlib multi-agent PPO (sampling in the driver: one core per run),
    evaluated on the Lua substrate."""

    name = "rllib"
    substrate = ex.SUBSTRATE_LUA
    batch_seeds = False

    def train_config(self, grid: ex.Grid, task: ex.TrainTask) -> Any:
        return _train_config(grid, task, num_iterations=grid.num_iterations,
                             rollout_fragment_length=grid.rollout_fragment_length,
                             train_batch_size=grid.train_batch_size)

    def train(self, grid: ex.Grid, tasks: Sequence[ex.TrainTask], run_dirs: Sequence[str],
              log: Log) -> None:
        from sed_meltingpot.training.trainer import train

        for task, run_dir in zip(tasks, run_dirs, strict=True):
            game = dataclasses.replace(grid.game, voting_rule=task.voting_rule).validate()
            os.makedirs(run_dir, exist_ok=True)
            with open(os.path.join(run_dir, "train.log"), "a") as f:
                # overwrite: a run without summary.json was cut short; start it again.
                train(game, self.train_config(grid, task), run_dir, checkpoint_every=0,
                      overwrite=True, print_fn=lambda s, f=f: print(s, file=f, flush=True))

    def evaluate(self, grid: ex.Grid, run_dir: str, voting_rule: str, principal: PrincipalSpec,
                 seed: int, num_episodes: int) -> list[dict[str, float]]:
        return lua_episodes(run_dir, voting_rule, principal, seed, num_episodes)


# ------------------------------------------------------------------- JAX
def game_from_run_config(run_config: dict[str, Any]) -> Any:
    """The GameConfig of a run's run_config.json, with its players' types
    (nulls stand for non-finite defaults, as evaluation.load_setup reads them);
    without importing the RLlib env, so it works where only JAX is installed."""
    from sed_meltingpot.config import GameConfig

    defaults = {f.name: f.default for f in dataclasses.fields(GameConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v
              for k, v in run_config["game"].items() if v is not None or defaults.get(k) is None}
    if run_config.get("selfishness"):
        values["selfishness"] = tuple(float(x) for x in run_config["selfishness"])
    return GameConfig(**values).validate()


def _twin_play_fn(game: Any, obs_mode: str, frame_stack: int, kind: str,
                  players_spec: Any, principal_spec: Any, num_episodes: int) -> Any:
    """A jitted `play(reset_keys, play_key, sigma, players_params, principal_params,
    rates, fixed_eta) -> episode metrics (per episode)` for `num_episodes` games
    vmapped. Compiled once per game settings and principal kind: networks'
    weights, types, fixed rates and a fixed eta are arguments, so every run,
    schedule and objective of a grid reuses it."""
    from sed_meltingpot.twin.ppo import compile_game

    game = compile_game(game)
    key = (game, obs_mode, frame_stack, kind, players_spec, principal_spec, num_episodes)
    if key in _TWIN_PLAY:
        return _TWIN_PLAY[key]
    import jax
    import jax.numpy as jnp

    from sed_meltingpot.twin import networks
    from sed_meltingpot.twin.sed import SEDTwin

    sed = SEDTwin(game, obs_mode=obs_mode, frame_stack=frame_stack)
    players = networks.ImageFeaturesNet(players_spec)
    principal = networks.ImageFeaturesNet(principal_spec) if principal_spec else None
    E, B, K = num_episodes, game.num_brackets, game.num_rate_levels
    periods, period_len = game.episode_length // game.tax_period, game.tax_period
    reset_v = jax.vmap(sed.reset, in_axes=(0, None, None))
    step_v = jax.vmap(sed.step)
    set_rates_v = jax.vmap(sed.set_rates, in_axes=(0, 0, None))
    metrics_v = jax.vmap(sed.episode_metrics)

    def play(reset_keys, play_key, sigma, players_params, principal_params, rates, fixed_eta):
        g, obs = reset_v(reset_keys, sigma, fixed_eta)

        def period(carry, k):
            g, obs = carry
            kq, ks = jax.random.split(k)
            if kind == "learned":
                logits = principal.apply(principal_params, obs.principal_image,
                                         obs.principal_features)[0].reshape(E, B, K)
                r = sed.levels_to_rates(jax.random.categorical(kq, logits))
            elif kind == "random":
                r = sed.levels_to_rates(jax.random.randint(kq, (E, B), 0, K))
            else:
                r = jnp.broadcast_to(rates, (E, B))
            g, obs = set_rates_v(g, r, 1.0)

            def step(carry, k2):
                g, obs = carry
                ka, ke = jax.random.split(k2)
                logits = players.apply(players_params, obs.player_image,
                                       obs.player_features)[0]
                actions = jax.random.categorical(ka, logits).astype(jnp.int32)
                g, obs, *_ = step_v(g, actions, jax.random.split(ke, E))
                return (g, obs), None

            (g, obs), _ = jax.lax.scan(step, (g, obs), jax.random.split(ks, period_len))
            return (g, obs), None

        (g, obs), _ = jax.lax.scan(period, (g, obs), jax.random.split(play_key, periods))
        return metrics_v(g)

    _TWIN_PLAY[key] = jax.jit(play)
    return _TWIN_PLAY[key]


_TWIN_PLAY: dict[tuple, Any] = {}


def twin_episodes(run_dir: str, voting_rule: str, principal: PrincipalSpec, seed: int,
                  num_episodes: int) -> list[dict[str, float]]:
    """Plays a jax run's players (and learned principal) on the twin:
    episode k from PRNGKey(seed + k); policies sample as in training. Scalars
    come from SEDTwin.episode_metrics (the game's metrics on device)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sed_meltingpot.twin import checkpoint as ckpt
    from sed_meltingpot.twin import ppo

    with open(os.path.join(run_dir, "run_config.json")) as f:
        run_config = json.load(f)
    game = dataclasses.replace(game_from_run_config(run_config), voting_rule=voting_rule)
    sigma = jnp.asarray(game.selfishness, jnp.float32)
    game = dataclasses.replace(game, selfishness=None)  # types are an argument of play
    train = run_config.get("train", {})
    ppt, frame_stack = int(train.get("pixels_per_tile", 1)), int(train.get("frame_stack", 1))
    obs_mode = "tiles" if ppt == 1 else "pixels"
    path = ckpt.latest_checkpoint(run_dir)
    players_spec, players_params = ckpt.load_params(path, "players")
    principal_spec, principal_params = (ckpt.load_params(path, "principal")
                                        if principal == ex.LEARNED else (None, {}))
    spec = str(FixedRates(principal)) if isinstance(principal, tuple) else principal
    kind, _ = ppo.parse_scripted(spec, game)
    if kind == "learned" and principal_spec is None:
        raise ValueError(f"{path} has no learned principal")
    inputs = ppo.run_inputs(game, spec)
    play = _twin_play_fn(game, obs_mode, frame_stack, kind, players_spec, principal_spec,
                         num_episodes)
    keys = [jax.random.split(jax.random.PRNGKey(seed + k)) for k in range(num_episodes)]
    metrics = jax.device_get(play(
        jnp.stack([k[0] for k in keys]), keys[0][1], sigma, players_params, principal_params,
        inputs.rates, inputs.fixed_eta))
    return [evaluation.episode_scalars({k: np.asarray(v)[e] for k, v in metrics.items()})
            for e in range(num_episodes)]


class JaxEngine:
    """The JAX twin (issue 9): the seeds of one (principal, objective) trained
    in one process, vmapped; evaluated on the twin (and the learned players
    and principal also on the Lua substrate)."""

    name = "jax"
    substrate = ex.SUBSTRATE_TWIN
    batch_seeds = True

    def train_config(self, grid: ex.Grid, task: ex.TrainTask) -> Any:
        return _train_config(grid, task, num_iterations=grid.twin_iterations,
                             rollout_fragment_length=grid.rollout_length,
                             train_batch_size=grid.num_envs * grid.rollout_length)

    def train(self, grid: ex.Grid, tasks: Sequence[ex.TrainTask], run_dirs: Sequence[str],
              log: Log) -> None:
        from sed_meltingpot.twin import trainer as twin_trainer

        seeds = [t.seed for t in tasks]
        if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
            raise ValueError(f"the jax engine trains consecutive seeds together, got {seeds}")
        group = run_dirs[0] if len(seeds) == 1 else os.path.dirname(run_dirs[0])
        if list(run_dirs) != twin_trainer.run_dirs(group, seeds):
            raise ValueError(f"run folders {run_dirs} are not the jax trainer's for {group}")
        game = dataclasses.replace(grid.game, voting_rule=tasks[0].voting_rule).validate()
        twin_trainer.enable_compilation_cache()  # a rerun or resume skips the compiles
        os.makedirs(group, exist_ok=True)
        with open(os.path.join(group, "train.log"), "a") as f:
            twin_trainer.train(game, self.train_config(grid, tasks[0]), group,
                               num_envs=grid.num_envs, rollout_length=grid.rollout_length,
                               num_seeds=len(seeds), checkpoint_every=0, overwrite=True,
                               print_fn=lambda s, f=f: print(s, file=f, flush=True))

    def evaluate(self, grid: ex.Grid, run_dir: str, voting_rule: str, principal: PrincipalSpec,
                 seed: int, num_episodes: int) -> list[dict[str, float]]:
        return twin_episodes(run_dir, voting_rule, principal, seed, num_episodes)


ENGINES: dict[str, Callable[[], Engine]] = {"rllib": RllibEngine, "jax": JaxEngine}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise ValueError(f"--engine={name!r} must be one of {sorted(ENGINES)}") from None


# ------------------------------------------------------------ evaluation
def evaluate_run(engine: Engine, grid: ex.Grid, task: ex.TrainTask, run_dir: str,
                 objectives: Sequence[str], principals: Sequence[str]
                 ) -> list[dict[str, Any]]:
    """The CSV rows of one training run (see experiment.plan_evaluation):
    a scripted run under every objective; a learned run under its objective,
    best_fixed against its players, and, for the twin, the learned principal
    again on the Lua substrate."""
    rows: list[dict[str, Any]] = []
    items = [i for i in ex.plan_evaluation([task], objectives, principals)]
    b = grid.game.num_brackets

    def row(item: ex.EvalItem, episodes: list[dict[str, float]], substrate: str,
            rates: str = "") -> dict[str, Any]:
        return ex.episodes_row(episodes, objective=item.objective, principal=item.principal,
                               seed=task.seed, substrate=substrate, players_from=task.key,
                               rates=rates)

    for item in items:
        rule = ex.OBJECTIVES[item.objective]
        if item.principal == ex.BEST_FIXED:
            schedules = evaluation.rate_grid(grid.search_resolution, b)

            def judge(rates: tuple[float, ...], rule: str = rule) -> list[dict[str, float]]:
                return engine.evaluate(grid, run_dir, rule, rates,
                                       ex.EVAL_SEED + ex.SEARCH_SEED_OFFSET,
                                       grid.search_episodes)

            search = evaluation.grid_search(judge, schedules)
            episodes = engine.evaluate(grid, run_dir, rule, search.best_rates, ex.EVAL_SEED,
                                       grid.eval_episodes)
            rows.append(row(item, episodes, engine.substrate,
                            ",".join(f"{r:g}" for r in search.best_rates)))
            continue
        spec = ex.principal_spec(item.principal)
        episodes = engine.evaluate(grid, run_dir, rule, spec, ex.EVAL_SEED, grid.eval_episodes)
        rates = spec[len("fixed:"):] if spec.startswith("fixed:") else ""
        rows.append(row(item, episodes, engine.substrate, rates))
        if item.principal == ex.LEARNED and engine.substrate != ex.SUBSTRATE_LUA:
            try:  # the same networks on the Lua substrate: the transfer gap
                episodes = lua_episodes(run_dir, rule, ex.LEARNED, ex.EVAL_SEED,
                                        grid.eval_episodes)
            except (ImportError, OSError, ValueError, NotImplementedError) as e:
                print(f"warning: no Lua evaluation of {run_dir}: {type(e).__name__}: {e}",
                      flush=True)
                continue
            rows.append(row(item, episodes, ex.SUBSTRATE_LUA))
    return rows


# ------------------------------------------------------------------ jobs
@dataclasses.dataclass(frozen=True)
class Job:
    """Training (several tasks if the engine batches seeds) then evaluation of
    each run; everything a worker needs, picklable."""

    engine: str
    grid: ex.Grid
    tasks: tuple[ex.TrainTask, ...]
    run_dirs: tuple[str, ...]
    objectives: tuple[str, ...]
    principals: tuple[str, ...]

    @property
    def label(self) -> str:
        t = self.tasks[0]
        seeds = ",".join(str(x.seed) for x in self.tasks)
        return f"{t.principal}" + (f" [{t.objective}]" if t.objective else "") + f" seed {seeds}"

    def eval_key(self) -> dict[str, Any]:
        """What the cached evaluation of a run depends on."""
        g = self.grid
        return {"format": 2, "engine": self.engine, "eval_seed": ex.EVAL_SEED,
                "eval_episodes": g.eval_episodes, "search_resolution": g.search_resolution,
                "search_episodes": g.search_episodes, "objectives": list(self.objectives),
                "principals": list(self.principals), "schedules": {
                    k: list(v) for k, v in ex.SCHEDULES.items()}}


def make_jobs(engine: Engine, grid: ex.Grid, output_dir: str, objectives: Sequence[str],
              principals: Sequence[str], seeds: Sequence[int]) -> list[Job]:
    """One job per run, or per (principal, objective) with all seeds if the
    engine batches seeds."""
    tasks = ex.plan_training(objectives, principals, seeds)
    root = os.path.join(output_dir, RUNS_DIR)
    jobs = []

    def add(group: list[ex.TrainTask], dirs: list[str]) -> None:
        jobs.append(Job(engine.name, grid, tuple(group), tuple(dirs), tuple(objectives),
                        tuple(principals)))

    if not engine.batch_seeds:
        for t in tasks:
            add([t], [os.path.join(root, t.key)])
        return jobs
    groups: dict[tuple[str, str | None], list[ex.TrainTask]] = {}
    for t in tasks:
        groups.setdefault((t.principal, t.objective), []).append(t)
    for group in groups.values():
        group.sort(key=lambda t: t.seed)
        blocks = [[group[0]]]
        for t in group[1:]:  # consecutive seeds train together (the twin's vmap)
            if t.seed == blocks[-1][-1].seed + 1:
                blocks[-1].append(t)
            else:
                blocks.append([t])
        for block in blocks:
            first = block[0].key.rsplit("__seed", 1)[0]
            name = f"{first}__seeds{block[0].seed}-{block[-1].seed}"
            folder = os.path.join(root, name)
            add(block, [folder] if len(block) == 1 else
                [os.path.join(folder, f"seed_{t.seed}") for t in block])
    return jobs


def run_job(job: Job) -> dict[str, Any]:
    """Trains what is not trained yet, evaluates what is not evaluated yet
    (cached in each run's experiment_eval.json); returns rows and timings."""
    engine = get_engine(job.engine)
    t0 = time.time()
    todo = [(t, d) for t, d in zip(job.tasks, job.run_dirs, strict=True) if not is_trained(d)]
    if todo and engine.batch_seeds:  # the seeds of a job train together: all again
        todo = list(zip(job.tasks, job.run_dirs, strict=True))
    if todo:
        engine.train(job.grid, [t for t, _ in todo], [d for _, d in todo], print)
    train_s = time.time() - t0
    rows: list[dict[str, Any]] = []
    key = job.eval_key()
    for task, run_dir in zip(job.tasks, job.run_dirs, strict=True):
        path = os.path.join(run_dir, EVAL_FILE)
        cached = _read_json(path)
        if cached and cached.get("key") == key:
            rows += [{k: (math.nan if v is None else v) for k, v in r.items()}
                     for r in cached["rows"]]
            continue
        run_rows = evaluate_run(engine, job.grid, task, run_dir, job.objectives, job.principals)
        with open(path, "w") as f:
            json.dump({"key": key, "rows": [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in r.items()} for r in run_rows]}, f, indent=1)
        rows += run_rows
    return {"rows": rows, "train_s": train_s, "eval_s": time.time() - t0 - train_s,
            "trained": len(todo)}


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_jobs(jobs: Sequence[Job], *, num_workers: int, ray_address: str | None,
             log: Log = print) -> list[dict[str, Any]]:
    """Runs the jobs here one by one (num_workers 1, no address), else as Ray
    tasks (one CPU each) on a local Ray with `num_workers` CPUs or on the
    cluster at `ray_address`; logs a line per finished job with an ETA."""
    start = time.time()
    results: list[dict[str, Any]] = []

    def done(i: int, job: Job, result: dict[str, Any]) -> None:
        results.append(result)
        elapsed = time.time() - start
        eta = elapsed / len(results) * (len(jobs) - len(results))
        log(f"[{len(results)}/{len(jobs)}] {job.label}: train {result['train_s']:.0f}s "
            f"({'cached' if not result['trained'] else 'trained'}), eval "
            f"{result['eval_s']:.0f}s | elapsed {elapsed / 60:.1f} min, eta {eta / 60:.1f} min")

    if num_workers <= 1 and not ray_address:
        for i, job in enumerate(jobs):
            done(i, job, run_job(job))
        return results
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
        done(0, job, ray.get(ready[0]))
    return results
