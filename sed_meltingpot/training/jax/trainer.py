"""The jax engine's training loop (`scripts/train.py --engine=jax`): the same outputs as
the RLlib trainer (sed_meltingpot/training/rllib/trainer.py), from `training.jax.ppo`'s
jitted update.

Outputs under `output_dir` (one such run directory per seed; with --num_seeds > 1 they
are `output_dir/seed_<seed>`, trained together under `jax.vmap`):
  progress.jsonl   one JSON object per iteration, the RLlib trainer's keys (both engines
                   build it with `runlog.iteration_record`), game_steps_per_s
  tensorboard/     the same numbers (if tensorboardX is installed)
  checkpoints/iter_NNNNNN/   twin checkpoints (training/jax/checkpoint.py), each written
                   whole; a resume from an older one moves the later ones to abandoned/
  run_config.json  game and training settings, the players' types, "engine": "jax" and
                   the twin's settings (`runlog.write_run_config`, read by `runlog.read_run`)
  summary.json     what the principal learned, written at the end

Episode figures are `SEDTwin.episode_metrics` (= SEDGame.episode_metrics, on device),
averaged over the last 20 finished episodes like the RLlib path's metrics window.
Importing this module imports neither Ray, Melting Pot, dmlab2d nor TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.kernel import SCALAR_METRICS
from sed_meltingpot.runs import checkpoint_files, run_lock, runlog
from sed_meltingpot.runs.run_plan import RunSetupError, plan_run
from sed_meltingpot.runs.train_config import TrainConfig
from sed_meltingpot.training.jax import checkpoint as ckpt
from sed_meltingpot.training.jax import ppo
from sed_meltingpot.training.jax.recipe import PrincipalRecipe

DEFAULT_RECIPE = PrincipalRecipe()

SMOOTHING_EPISODES = 20  # the RLlib path's metrics_num_episodes_for_smoothing / window


# -------------------------------------------------------------- episodes
class EpisodeBook:
    """The finished episodes' figures (`SEDTwin.episode_metrics`, computed on device
    with the shared formula cores) and the players' returns, keeping the last
    `SMOOTHING_EPISODES` like the RLlib path's metrics window (host side, numpy)."""

    def __init__(self) -> None:
        self.recent: collections.deque = collections.deque(maxlen=SMOOTHING_EPISODES)
        self.returns: collections.deque = collections.deque(maxlen=SMOOTHING_EPISODES)
        self.num_episodes = 0
        self.last: dict[str, Any] | None = None

    def add(self, episodes: dict[str, Any]) -> int:
        """`episodes`: `update`'s metrics["episodes"] of one seed as numpy, (P, E, ...)
        with `done` (P, E). Returns how many episodes ended."""
        done = np.asarray(episodes["done"], dtype=bool)
        for p, e in zip(*np.nonzero(done), strict=True):
            metrics = {k: np.asarray(v[p, e]) for k, v in episodes["metrics"].items()}
            metrics["period_rates"] = metrics["period_rates"][: int(metrics.get(
                "periods", len(metrics["period_rates"])))]
            self.recent.append(metrics)
            self.returns.append(np.asarray(episodes["returns"][p, e]))
            self.last = metrics
            self.num_episodes += 1
        return int(done.sum())

    def sed_means(self) -> dict[str, float]:
        """Means over the recent episodes of what training/rllib/callbacks.py logs (finite
        values only, as it does)."""
        out: dict[str, float] = {}
        if not self.recent:
            return out

        def mean(values: list[float]) -> float | None:
            finite = [v for v in values if np.isfinite(v)]
            return float(np.mean(finite)) if finite else None

        for key in SCALAR_METRICS:
            value = mean([float(m[key]) for m in self.recent])
            if value is not None:
                out[key] = value
        for b in range(len(self.recent[-1]["mean_rates"])):
            value = mean([float(m["mean_rates"][b]) for m in self.recent])
            if value is not None:
                out[f"rate_b{b}"] = value
        for i in range(len(self.recent[-1]["apples_per_player"])):
            out[f"apples_p{i}"] = float(np.mean([m["apples_per_player"][i]
                                                 for m in self.recent]))
        return out

    def figures(self, learned: bool) -> dict[str, Any]:
        """`runlog.iteration_record`'s episode figures from the recent episodes, as the
        RLlib path's metrics give them: the players' mean returns (their sum is
        `player_return_mean`), the principal's (its module's mean return when learned,
        else the episodes' metric), the last episode's rates and `sed_means`. Given
        only for an iteration in which episodes ended (runlog.ProgressLog carries
        them into the others)."""
        means = self.sed_means()
        per_player = np.mean(np.stack(self.returns), axis=0)
        principal = (float(np.mean([m["principal_return"] for m in self.recent])) if learned
                     else means.get("principal_return", float("nan")))
        return {"player_return_mean": float(per_player.sum()),
                "player_returns": [float(r) for r in per_player],
                "principal_return": principal,
                "last_episode_period_rates": [[float(rate) for rate in rates]
                                              for rates in self.last["period_rates"]],
                "episode_means": means}


# ------------------------------------------------------------------ train
def _writer(path: str, print_fn: Callable[[str], None], kept: list[dict[str, Any]]) -> Any:
    """A TensorBoard writer, or None where tensorboardX is missing (GPU machines)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        print_fn("tensorboardX is not installed: no TensorBoard logs (progress.jsonl only)")
        return None
    # TensorBoard hides the events of dropped iterations (as the RLlib trainer does).
    purge = int(kept[-1].get("game_steps") or 0) + 1 if kept else None
    return SummaryWriter(path, purge_step=purge)


DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "sed_meltingpot", "jax")


def enable_compilation_cache(path: str | None = None) -> str:
    """Turns on JAX's persistent compilation cache (unless one is set already, e.g. by
    JAX_COMPILATION_CACHE_DIR), so that rerunning or resuming the same settings skips
    the compile of `update` (minutes on a loaded 2-core machine). Returns the folder."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    folder = os.path.expanduser(path or DEFAULT_CACHE_DIR)
    os.makedirs(folder, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", folder)
    return folder


def run_seeds(first_seed: int, num_seeds: int) -> list[int]:
    """The seeds of a run of `num_seeds` vmapped seeds: `first_seed` and the next ones."""
    return [first_seed + k for k in range(num_seeds)]


def run_dirs(output_dir: str, seeds: list[int]) -> list[str]:
    return [output_dir] if len(seeds) == 1 else [os.path.join(output_dir, f"seed_{s}")
                                                 for s in seeds]


@dataclasses.dataclass(frozen=True)
class TwinRunPlan:
    """What `plan_runs` checked: the twin config, the seeds and their run folders, the
    TrainConfig each run_config.json records, and each folder's `RunPlan`."""

    config: ppo.TwinTrainConfig
    seeds: list[int]
    dirs: list[str]
    recorded: list[TrainConfig]
    plans: list[Any]


def plan_runs(game: GameConfig, train_config: TrainConfig, output_dir: str, *,
              num_envs: int = ppo.TwinTrainConfig.num_envs, rollout_length: int | None = None,
              num_seeds: int = 1, dtype: str = ppo.TwinTrainConfig.dtype,
              restore: str | None = None, overwrite: bool = False,
              recipe: PrincipalRecipe = DEFAULT_RECIPE) -> TwinRunPlan:
    """Checks every setting, the output folders and --restore (ValueError /
    RunSetupError naming the flag) before anything is compiled or written."""
    if not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"--num_seeds={num_seeds!r} must be a positive integer")
    config = ppo.TwinTrainConfig(
        game=game, train=train_config, num_envs=num_envs,
        rollout_length=rollout_length or train_config.rollout_fragment_length,
        dtype=dtype, recipe=recipe).validate()
    seeds = run_seeds(train_config.seed, num_seeds)
    dirs = run_dirs(output_dir, seeds)
    sources = [None] * num_seeds if not restore else (
        [restore] if num_seeds == 1 else run_dirs(restore, seeds))
    recorded = [dataclasses.replace(
        train_config, seed=seed, train_batch_size=config.env_steps_per_iteration,
        rollout_fragment_length=config.rollout_length, num_env_runners=0) for seed in seeds]
    plans = [plan_run(game, rec, folder, restore=source, overwrite=overwrite, engine="jax")
             for rec, folder, source in zip(recorded, dirs, sources, strict=True)]
    for p in plans:  # a damaged file is named now, not after the compile
        if p.checkpoint is not None:
            try:
                ckpt.check_files(p.checkpoint)
            except (OSError, ValueError) as e:
                raise RunSetupError(f"--restore={restore!r}: {e}") from e
    return TwinRunPlan(config, seeds, dirs, recorded, plans)


def train(game: GameConfig, train_config: TrainConfig, output_dir: str,
          **kwargs: Any) -> dict[str, Any] | list[dict[str, Any]]:
    """`_train` (the keywords are its own) while holding the lock of every run folder
    (`runs/run_lock.py`), taken before the folders are checked or written: a second run
    into one of them is refused (run_lock.FolderInUseError, one line) instead of
    interleaving its log with this one's. Released when training ends in any way."""
    num_seeds = kwargs.get("num_seeds", 1)
    seeds = run_seeds(train_config.seed, num_seeds) if (
        isinstance(num_seeds, int) and num_seeds >= 1) else [train_config.seed]
    with run_lock.hold(run_dirs(output_dir, seeds), warn=kwargs.get("print_fn", print)):
        return _train(game, train_config, output_dir, **kwargs)


def _train(game: GameConfig, train_config: TrainConfig, output_dir: str, *,
           num_envs: int = ppo.TwinTrainConfig.num_envs, rollout_length: int | None = None,
           num_seeds: int = 1, dtype: str = ppo.TwinTrainConfig.dtype,
           restore: str | None = None, checkpoint_every: int = 10, overwrite: bool = False,
           recipe: PrincipalRecipe = DEFAULT_RECIPE,
           on_iteration: Callable[[dict[str, Any]], None] | None = None,
           print_fn: Callable[[str], None] = print, game_impl: Any = None,
           designer: OuterPrincipal | None = None
           ) -> dict[str, Any] | list[dict[str, Any]]:
    """Trains players and principal on the twin; returns the final summary (a list of
    them, one per seed, with num_seeds > 1). `recipe`: how a learned principal trains
    (training/jax/recipe.py). `game_impl` replaces the SEDTwin (tests). `designer`: an
    outer-loop principal (`OuterPrincipal`, e.g. design/two_timescale.py) that sets a
    scripted principal's rates before every iteration and sees the finished episodes'
    W_eta after it; its record goes to each run folder."""
    plan = plan_runs(game, train_config, output_dir, num_envs=num_envs,
                     rollout_length=rollout_length, num_seeds=num_seeds, dtype=dtype,
                     restore=restore, overwrite=overwrite, recipe=recipe)
    if designer is not None:
        check_designer(plan.config, restore)
    config, seeds, dirs, recorded = plan.config, plan.seeds, plan.dirs, plan.recorded
    plans = plan.plans
    for note in dict.fromkeys(n for p in plans for n in p.notes):  # skipped checkpoints
        print_fn(note)
    types = [p.selfishness for p in plans]
    n = game.num_players

    # Said before the compile, which can take a minute on a CPU (cached for a rerun).
    print_fn(f"jax engine on {jax.devices()[0].platform}: {num_seeds} seed(s) x {num_envs} "
             f"games x {config.rollout_length} steps per iteration; compiling ...")
    t_start = time.time()
    fns = ppo.make_functions(config, game_impl)
    keys = jnp.stack([jax.random.PRNGKey(seed) for seed in seeds])
    # The initial state is computed (in two programs: ppo.init_vmapped) before the
    # update is compiled, so that a stall shows where it is.
    state = ppo.init_vmapped(fns, keys, jnp.asarray(types, jnp.float32),
                             ppo.run_inputs(config.game, config.train.principal))
    resume_iteration = None
    if restore:
        state = _restore(state, [p.checkpoint for p in plans], print_fn)
        resume_iteration = int(state.iteration[0])
    update = jax.jit(jax.vmap(fns.update))
    t0 = time.time()
    update = update.lower(state).compile()
    print_fn(f"compiled in {time.time() - t0:.1f}s (ready after {time.time() - t_start:.1f}s)")

    # Whether each seed's parameters are all finite: a program of its own, so that the
    # update's compiled program (and so its numbers) stays exactly as it was.
    params_finite = jax.jit(jax.vmap(lambda *trees: jnp.stack([_all_finite(t)
                                                                for t in trees])))

    logs, writers = [], []
    for k, folder in enumerate(dirs):
        if plans[k].overwrite:
            runlog.clear_run(folder)
        os.makedirs(folder, exist_ok=True)
        runlog.write_run_config(
            folder, engine="jax", game=game, train=recorded[k], selfishness=types[k],
            twin={"num_envs": config.num_envs, "rollout_length": config.rollout_length,
                  "num_seeds": num_seeds, "dtype": dtype,
                  "game_steps_per_iteration": config.game_steps_per_iteration,
                  "recipe": dataclasses.asdict(recipe),
                  "phase1_iterations": config.phase1_iterations,
                  **({"designer": designer.describe()} if designer is not None else {})})
        source_dir = plans[k].source_dir
        log = runlog.ProgressLog(folder, resume_iteration=resume_iteration, warn=print_fn,
                                 source_log=os.path.join(source_dir, runlog.PROGRESS_FILE)
                                 if source_dir else None)
        if resume_iteration is not None:  # the folder keeps one history: this one
            checkpoint_files.move_later_aside(folder, resume_iteration, warn=print_fn)
        logs.append(log)
        writers.append(_writer(os.path.join(folder, runlog.TENSORBOARD_DIR), print_fn,
                               log.records))
    books = [EpisodeBook() for _ in seeds]
    for book, log in zip(books, logs, strict=True):  # the lifetime count goes on
        book.num_episodes = log.resumed_episodes
    records: list[dict[str, Any]] = [log.records[-1] if log.records else {} for log in logs]
    last_checkpoint: list[str | None] = [None] * num_seeds
    prev_time = time.time()
    iteration = int(state.iteration[0])
    try:
        with runlog.StopSignals() as stop:
            while iteration < train_config.num_iterations and stop.signum is None:
                if designer is not None:  # an input of the compiled update: no recompile
                    state = state._replace(inputs=state.inputs._replace(rates=jnp.asarray(
                        designer.rates_for(iteration), jnp.float32)))
                state, metrics = update(state)
                host = jax.device_get({k: metrics[k] for k in (
                    "episodes", "players", "principal", "principal_diagnostics")
                    if k in metrics})
                iteration = int(state.iteration[0])
                # Before anything of this iteration is logged or saved (TrainingDiverged).
                _check_finite(host, params_finite(state.players_params,
                                                  state.principal_params), iteration,
                              seeds, [c or p.checkpoint for c, p in zip(
                                  last_checkpoint, plans, strict=True)])
                now = time.time()
                dt, prev_time = now - prev_time, now
                cap_next = float(config.schedule(iteration).tax_cap)
                for k in range(num_seeds):
                    episodes = _seed_slice(host["episodes"], k)
                    if designer is not None:
                        designer.observe(iteration - 1, k, finished_objectives(episodes))
                    ended = books[k].add(episodes)
                    losses = {m: {key: float(v[k]) for key, v in host[m].items()}
                              for m in ("players", "principal") if m in host}
                    diagnostics = (principal_diagnostics(_seed_slice(
                        host["principal_diagnostics"], k)) if "principal_diagnostics" in host
                        else None)
                    record = runlog.iteration_record(
                        iteration=iteration,
                        env_steps=iteration * config.env_steps_per_iteration,
                        game_steps=iteration * config.game_steps_per_iteration,
                        env_steps_this_iter=config.env_steps_per_iteration,
                        time_this_iter_s=dt, episodes=books[k].num_episodes,
                        episodes_this_iter=ended, num_players=n, tax_cap_next=cap_next,
                        losses=losses, extra=diagnostics,
                        **(books[k].figures(config.learned) if ended else {}))
                    record = logs[k].add(record)
                    records[k] = record
                    if writers[k] is not None:
                        for key, value in record.items():
                            if isinstance(value, (int, float)) and not isinstance(
                                    value, bool) and math.isfinite(float(value)):
                                writers[k].add_scalar(f"sed/{key}", value,
                                                      record["game_steps"])
                    prefix = f"[seed {seeds[k]}] " if num_seeds > 1 else ""
                    print_fn(prefix + runlog.format_progress(
                        record, game.num_brackets,
                        eta_s=logs[k].eta_s(train_config.num_iterations)))
                    if on_iteration:
                        on_iteration(record)
                if checkpoint_every and iteration % checkpoint_every == 0:
                    last_checkpoint = _save_all(state, fns, dirs, iteration)
                if designer is not None:
                    for k, folder in enumerate(dirs):
                        designer.write(k, folder)
            if last_checkpoint[0] is None or not last_checkpoint[0].endswith(
                    f"{iteration:06d}"):
                last_checkpoint = _save_all(state, fns, dirs, iteration)
    except BaseException:
        checkpoint_files.close_writers(writers, quietly=True)  # the run's error is the news
        raise
    checkpoint_files.close_writers(writers, quietly=False)
    summaries = []
    for k, folder in enumerate(dirs):
        summary = runlog.build_summary(records[k], num_brackets=game.num_brackets,
                                       checkpoint=last_checkpoint[k], selfishness=types[k])
        if designer is not None:
            summary["designer"] = {key: designer.summary(k)[key] for key in (
                "principal", "best_rates", "counts", "means")}
        if stop.signum is not None:
            summary["stopped_by"] = stop.name
            summary["stopped_by_signal"] = stop.signum
        with open(os.path.join(folder, runlog.SUMMARY_FILE), "w") as f:
            json.dump(runlog.clean(summary), f, indent=2)
        print_fn(runlog.format_summary(summary))
        summaries.append(summary)
    return summaries[0] if num_seeds == 1 else summaries


class OuterPrincipal(Protocol):
    """A principal above the trainer that sets a scripted run's fixed rates between
    iterations (design/two_timescale.py): the rates are `RunInputs.rates`, an input of
    the compiled update, so changing them recompiles nothing."""

    def describe(self) -> dict[str, Any]:
        """Its settings, recorded in run_config.json."""
        ...

    def rates_for(self, iteration: int) -> np.ndarray:
        """Every seed's rates (seeds x brackets) for the iteration about to run."""
        ...

    def observe(self, iteration: int, k: int, objectives: np.ndarray) -> None:
        """Seed k's episodes that ended in `iteration` (0-based): their W_eta."""
        ...

    def summary(self, k: int) -> dict[str, Any]:
        """Seed k's record (with at least principal, best_rates, counts, means)."""
        ...

    def write(self, k: int, folder: str) -> str:
        """Writes seed k's record into its run folder; returns the path."""
        ...


def check_designer(config: ppo.TwinTrainConfig, restore: str | None) -> None:
    """An outer principal drives a scripted-rates run from its start: one line otherwise."""
    kind, _ = ppo.parse_scripted(config.train.principal, config.game)
    if kind != "rates":
        raise ValueError(f"a two-timescale principal sets fixed rates: the run's principal "
                         f"must be 'none' or fixed rates, got {config.train.principal!r}")
    if restore:
        raise ValueError("--restore: a two-timescale principal's bandit state is not "
                         "checkpointed; start the run again (its runs are minutes long)")


def finished_objectives(episodes: dict[str, Any]) -> np.ndarray:
    """W_eta (the game's `objective`) of one seed's episodes that ended in an iteration
    (`update`'s metrics["episodes"], (P, E) with `done`)."""
    done = np.asarray(episodes["done"], dtype=bool)
    return np.asarray(episodes["metrics"]["objective"])[done].astype(np.float64)


def principal_diagnostics(diagnostics: dict[str, Any]) -> dict[str, float]:
    """The learned principal's per-iteration diagnostics (`ppo.make_functions`' update) as
    progress.jsonl / TensorBoard scalars: principal_active (phase 2), principal_samples
    (its transitions this iteration), principal_updates (Adam steps), principal_lr,
    principal_entropy_coeff, principal_grad_norm (mean over its minibatches, before
    clipping), principal_param_change (global norm of this iteration's parameter step),
    principal_entropy_b<k> (its policy's entropy per bracket at its decisions) and
    principal_rate_b<k> (mean requested rate times the tax cap)."""
    out: dict[str, float] = {}
    for key, value in diagnostics.items():
        value = np.asarray(value)
        if value.ndim == 0:
            out[f"principal_{key}"] = float(value)
            continue
        name = {"head_entropy": "entropy", "mean_rate": "rate"}[key]
        for b, v in enumerate(value):
            out[f"principal_{name}_b{b}"] = float(v)
    return out


def _all_finite(tree: Any) -> jax.Array:
    """True when every leaf of `tree` is finite (True for an empty tree: no principal)."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.bool_(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _check_finite(host: dict[str, Any], params_ok: Any, iteration: int, seeds: list[int],
                  checkpoints: list[str | None]) -> None:
    """Raises runlog.TrainingDiverged at the first seed whose logged losses (host's
    "players" / "principal" statistics, seeds first) or parameters (`params_ok`, bool
    [seeds, (players, principal)]) are not all finite; `checkpoints`: each seed's last
    finite one (saved by this run, or the one it restored)."""
    params_ok = np.asarray(params_ok)
    for k, seed in enumerate(seeds):
        losses = {m: {key: v[k] for key, v in host[m].items()}
                  for m in ("players", "principal") if m in host}
        bad = runlog.non_finite(losses, {"players": bool(params_ok[k, 0]),
                                         "principal": bool(params_ok[k, 1])})
        if bad:
            raise runlog.TrainingDiverged(iteration, bad, checkpoints[k],
                                          seed=seed if len(seeds) > 1 else None)


def _seed_slice(tree: Any, k: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x[k], tree)


def _train_state(state: ppo.RunnerState) -> dict[str, Any]:
    return {"players_opt": state.players_opt, "principal_opt": state.principal_opt,
            "rng": state.rng, "iteration": state.iteration}


def _save_all(state: ppo.RunnerState, fns: ppo.TrainFunctions, dirs: list[str],
              iteration: int) -> list[str | None]:
    paths: list[str | None] = []
    for k, folder in enumerate(dirs):
        path = os.path.join(folder, ckpt.CHECKPOINT_DIR, f"iter_{iteration:06d}")
        paths.append(ckpt.save(
            path, iteration=iteration, players_params=_seed_slice(state.players_params, k),
            principal_params=_seed_slice(state.principal_params, k),
            train_state=_seed_slice(_train_state(state), k), players_spec=fns.players_spec,
            principal_spec=fns.principal_spec))
    return paths


def _restore(state: ppo.RunnerState, checkpoints: list[str | None],
             print_fn: Callable[[str], None]) -> ppo.RunnerState:
    """Params, optimiser states, rng and iteration of each seed from its checkpoint
    (games start fresh episodes, as in the RLlib path)."""
    parts = []
    for k, path in enumerate(checkpoints):
        if path is None or not ckpt.is_checkpoint(path):
            raise RunSetupError(f"--restore: {path!r} is not a jax-engine checkpoint (no "
                                f"{ckpt.MARKER}); an RLlib checkpoint restores with "
                                "--engine=rllib")
        one = _seed_slice(state, k)
        try:
            _, players = ckpt.load_params(path, "players")
            _, principal = ckpt.load_params(path, "principal")
            extra = ckpt.load_train_state(path, _train_state(one))
        except (OSError, ckpt.DamagedCheckpointError) as e:  # names the file
            raise RunSetupError(f"--restore: {e}") from e
        parts.append(one._replace(
            players_params=players, principal_params=principal if principal is not None
            else one.principal_params, players_opt=extra["players_opt"],
            principal_opt=extra["principal_opt"], rng=extra["rng"],
            iteration=jnp.asarray(extra["iteration"], jnp.int32)))
        print_fn(f"restored {path} at iteration {int(extra['iteration'])}")
    iterations = {int(p.iteration) for p in parts}
    if len(iterations) > 1:
        raise RunSetupError(f"--restore: the seeds' checkpoints are at different iterations "
                            f"{sorted(iterations)}")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *parts)
