"""The training loop: build the algorithm, iterate, log, checkpoint, summarise.

Outputs under `output_dir`:
  progress.jsonl   one JSON object per iteration (`runlog.iteration_record`, its
                   inputs read from RLlib's result by `_iteration_record`)
  tensorboard/     TensorBoard event files of the same numbers
  checkpoints/iter_NNNNNN/   RLlib checkpoints (players and principal), each written
                   whole (`_save`; runs/checkpoint_files.py); a module alone restores from
                   <checkpoint>/learner_group/learner/rl_module/<module id>
  run_config.json  the game and training settings, and the players' types
                   (`runlog.write_run_config`; `runlog.read_run` reads it)
  summary.json     what the principal learned, written at the end

A run directory belongs to one run: a second process writing it is refused
(`runs/run_lock.py`), a fresh run refuses a folder that holds one (unless
`overwrite`), and `restore` continues a run, in its own folder or another, with
a continuous log (`runlog.ProgressLog`). Every check of the output folder and
of `restore` happens before Ray starts, and nothing but the lock file is
written before the restore succeeded. SIGTERM/SIGINT stop the run after
the current iteration with a checkpoint (`runlog.StopSignals`); a crashed
env runner is restarted by RLlib (`build_ppo_config`'s fault tolerance).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

from sed_meltingpot.core.optional import extra_import
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs import checkpoint_files, quiet, run_lock, runlog
from sed_meltingpot.runs.run_plan import (  # noqa: F401  (re-exported: the trainer's API)
    RESTORE_GAME_FIELDS,
    RESTORE_TRAIN_FIELDS,
    RunPlan,
    RunSetupError,
    latest_checkpoint,
    plan_run,
)
from sed_meltingpot.runs.runlog import CHECKPOINT_DIR
from sed_meltingpot.runs.train_config import TrainConfig
from sed_meltingpot.training.rllib.rllib_config import build_ppo_config

MODULE_PATH = os.path.join("learner_group", "learner", "rl_module")
# Consecutive iterations without samples (all env runners down) before the
# run stops with NoSamplesError; RLlib restarts crashed runners meanwhile.
MAX_EMPTY_ITERATIONS = 3
RUNNER_RECOVERY_TIMEOUT_S = 180.0  # wait for a restarted env runner at most this long
# Learner statistics copied into each progress record, per module (declared in runlog).
LOSS_KEYS = runlog.LOSS_KEYS


class NoSamplesError(RuntimeError):
    """An iteration sampled no env steps: training would silently do nothing."""


def module_checkpoint(checkpoint: str, module_id: str) -> str:
    """The folder from which `RLModule.from_checkpoint` restores one module."""
    return os.path.join(checkpoint, MODULE_PATH, module_id)


def _get(result: dict, *keys: str, default: Any = float("nan")) -> Any:
    for key in keys:
        if not isinstance(result, dict) or key not in result:
            return default
        result = result[key]
    return result


def _iteration_record(result: dict, *, num_players: int, learned: bool) -> dict[str, Any]:
    """`runlog.iteration_record` of an RLlib `algo.train()` result: the per-iteration
    numbers a researcher plots, read from where RLlib and training/rllib/callbacks.py put
    them (`runlog.ProgressLog` adds wall_time_s, game_steps_per_s and the staleness of
    episode figures)."""
    runners = result.get("env_runners", {})
    sed = runners.get("sed", {}) if isinstance(runners.get("sed"), dict) else {}
    last = runners.get("sed_last_episode", {})
    agent_steps = runners.get("num_agent_steps_sampled_lifetime", {}) or {}
    module_returns = runners.get("module_episode_returns_mean", {}) or {}
    agent_returns = runners.get("agent_episode_returns_mean", {}) or {}
    periods: dict[int, dict[int, float]] = {}
    for key, value in (last or {}).items():
        k, b = key[1:].split("_b")
        periods.setdefault(int(k), {})[int(b)] = value
    nan = float("nan")
    losses = _module_losses(result)
    return runlog.iteration_record(
        iteration=result.get("training_iteration"),
        env_steps=_get(runners, "num_env_steps_sampled_lifetime", default=0),
        game_steps=agent_steps.get("player_0", 0),
        env_steps_this_iter=_get(runners, "num_env_steps_sampled", default=0),
        time_this_iter_s=result.get("time_this_iter_s"),
        episodes=_get(runners, "num_episodes_lifetime", default=0),
        episodes_this_iter=_count(_get(runners, "num_episodes", default=0)),
        num_players=num_players,
        player_return_mean=module_returns.get("players", nan),
        player_returns=[agent_returns.get(f"player_{i}", nan) for i in range(num_players)],
        principal_return=module_returns.get("principal", nan) if learned else
        sed.get("principal_return", nan),
        tax_cap_next=_get(result, "sed", "tax_cap_next"),
        last_episode_period_rates=[[periods[k][b] for b in sorted(periods[k])]
                                   for k in sorted(periods)],
        episode_means=sed, losses=losses)


def _module_losses(result: dict) -> dict[str, dict]:
    """Each module's learner statistics in an `algo.train()` result (the principal's
    included, see SEDPPOTorchLearner)."""
    return {module_id: stats for module_id, stats in (result.get("learners") or {}).items()
            if not module_id.startswith("__") and isinstance(stats, dict)}


def _weights_finite(algo: Any) -> dict[str, bool]:
    """Whether each module's weights are all finite (the learner's state as numpy)."""
    import numpy as np

    def finite(tree: Any) -> bool:
        if isinstance(tree, dict):
            return all(finite(v) for v in tree.values())
        array = np.asarray(tree)
        return not np.issubdtype(array.dtype, np.floating) or bool(np.isfinite(array).all())

    return {module_id: finite(state)
            for module_id, state in algo.learner_group.get_weights().items()}


def check_finite(result: dict, weights_finite: dict[str, bool], iteration: int,
                 checkpoint: str | None) -> None:
    """runlog.TrainingDiverged when a module's losses in `result` or its weights are not
    all finite; `checkpoint`: the last one saved (or restored), which holds finite
    weights since every iteration before was checked."""
    bad = runlog.non_finite(_module_losses(result), weights_finite)
    if bad:
        raise runlog.TrainingDiverged(iteration, bad, checkpoint)


def _count(value: Any) -> int:
    """An episode count from RLlib's metrics (NaN or missing when none)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0
    return int(value) if math.isfinite(value) else 0


def _clean(value: Any) -> Any:
    return runlog.clean(value)


def train(game: GameConfig, train_config: TrainConfig, output_dir: str,
          **kwargs: Any) -> dict[str, Any]:
    """`_train` (the keywords are its own) while holding `output_dir`'s lock
    (`runs/run_lock.py`), taken before the folder is checked or written: a second run
    into it is refused (run_lock.FolderInUseError, one line) instead of interleaving
    its log with this one's. Released when training ends in any way."""
    with run_lock.RunLock(output_dir, warn=kwargs.get("print_fn", print)):
        return _train(game, train_config, output_dir, **kwargs)


def _train(game: GameConfig, train_config: TrainConfig, output_dir: str, *,
           restore: str | None = None, ray_address: str | None = None,
           checkpoint_every: int = 10, overwrite: bool = False,
           on_iteration: Callable[[dict[str, Any]], None] | None = None,
           print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """Trains players and principal; returns the final summary (its
    `stopped_by` names the signal that ended the run early, if one did)."""
    with extra_import("rllib", "training with --engine=rllib"):
        import ray
        from tensorboardX import SummaryWriter

    game.validate()
    train_config.validate()
    plan = plan_run(game, train_config, output_dir, restore=restore, overwrite=overwrite,
                    engine="rllib")
    for note in plan.notes:  # incomplete checkpoints skipped
        print_fn(note)
    selfishness = plan.selfishness

    if not ray.is_initialized():
        # A quiet start (runs/quiet.py): Ray's own logger at WARNING, and the notices
        # Ray and RLlib print on every run hidden here and in every worker.
        quiet.quiet_python_loggers()
        init_kwargs: dict[str, Any] = {
            "include_dashboard": False, "log_to_driver": True, "logging_level": logging.WARNING,
            "runtime_env": {"worker_process_setup_hook": quiet.RAY_WORKER_SETUP_HOOK}}
        if ray_address:
            init_kwargs["address"] = ray_address
        else:
            # "local" starts a fresh instance even if another cluster runs here.
            init_kwargs["address"] = "local"
            init_kwargs["num_cpus"] = max(os.cpu_count() or 1, train_config.num_env_runners + 1)
            init_kwargs["num_gpus"] = train_config.num_gpus
        ray.init(**init_kwargs)

    from sed_meltingpot.training.rllib.callbacks import apply_tax_cap

    with quiet.filtered_stderr():  # Ray's start-up lines as the env runners start
        algo = build_ppo_config(game, train_config, selfishness=selfishness).build_algo()
    learned = train_config.principal == "learned"
    writer: Any = None
    try:
        resume_iteration = None
        if plan.checkpoint:
            algo.restore_from_path(plan.checkpoint)
            apply_tax_cap(algo)
            resume_iteration = algo.iteration
            print_fn(f"restored {plan.checkpoint} at iteration {algo.iteration}")
        # Only now, with the restore done, is the folder written.
        if plan.overwrite:
            runlog.clear_run(output_dir)
        os.makedirs(output_dir, exist_ok=True)
        runlog.write_run_config(output_dir, game=game, train=train_config,
                                selfishness=selfishness)
        source_log = (os.path.join(plan.source_dir, runlog.PROGRESS_FILE)
                      if plan.source_dir else None)
        log = runlog.ProgressLog(output_dir, resume_iteration=resume_iteration,
                                 source_log=source_log, warn=print_fn)
        if resume_iteration is not None:  # the folder keeps one history: this one
            checkpoint_files.move_later_aside(output_dir, resume_iteration, warn=print_fn)
        # TensorBoard hides the events of dropped iterations (purge_step).
        purge = int(log.records[-1].get("game_steps") or 0) + 1 if log.records else None
        writer = SummaryWriter(os.path.join(output_dir, "tensorboard"), purge_step=purge)
        record: dict[str, Any] = log.records[-1] if log.records else {}
        last_checkpoint = None
        empty = 0  # consecutive iterations without samples
        with runlog.StopSignals() as stop:
            while algo.iteration < train_config.num_iterations and stop.signum is None:
                result = algo.train()
                sampled = _iteration_record(result, num_players=game.num_players,
                                            learned=learned)
                if not _count(sampled["env_steps_this_iter"]):
                    # Every runner failed in this iteration (RLlib skips its
                    # update); wait for RLlib to restore them, fail if it can't.
                    empty += 1
                    if empty >= MAX_EMPTY_ITERATIONS or not _await_env_runners(algo):
                        raise NoSamplesError(
                            f"{empty} iterations in a row (the last: {algo.iteration}) sampled "
                            "0 env steps; the env runners are failing (see their logs above)")
                    print_fn(f"iteration {algo.iteration} sampled 0 env steps (env runners "
                             "restarting); not logged, going on")
                    continue
                empty = 0
                # Before this iteration is logged or saved: a NaN state is never saved.
                check_finite(result, _weights_finite(algo), algo.iteration,
                             last_checkpoint or plan.checkpoint)
                record = log.add(sampled)
                for key, value in record.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                            math.isfinite(float(value))):
                        writer.add_scalar(f"sed/{key}", value, record["game_steps"])
                print_fn(runlog.format_progress(
                    record, game.num_brackets, eta_s=log.eta_s(train_config.num_iterations)))
                if on_iteration:
                    on_iteration(record)
                if checkpoint_every and algo.iteration % checkpoint_every == 0:
                    last_checkpoint = _save(algo, output_dir)
            if last_checkpoint is None or not last_checkpoint.endswith(f"{algo.iteration:06d}"):
                last_checkpoint = _save(algo, output_dir)
        writer.close()
        summary = runlog.build_summary(record, num_brackets=game.num_brackets,
                                       checkpoint=last_checkpoint, selfishness=selfishness)
        if stop.signum is not None:
            summary["stopped_by"] = stop.name
            summary["stopped_by_signal"] = stop.signum
        with open(os.path.join(output_dir, runlog.SUMMARY_FILE), "w") as f:
            json.dump(_clean(summary), f, indent=2)
        print_fn(runlog.format_summary(summary))
        return summary
    except BaseException:
        checkpoint_files.close_writers([writer], quietly=True)  # the run's error is the news
        raise
    finally:
        algo.stop()


def _await_env_runners(algo: Any, timeout_s: float = RUNNER_RECOVERY_TIMEOUT_S) -> bool:
    """After an iteration in which every env runner failed: lets RLlib restore
    them (Ray restarts the actors; RLlib pings them and syncs weights, which it
    otherwise does only after the next iteration) and pushes the tax cap.
    True once one is healthy; False without remote runners or after timeout_s."""
    from sed_meltingpot.training.rllib.callbacks import apply_tax_cap

    group = algo.env_runner_group
    if group is None or group.num_remote_workers() == 0:
        return False
    deadline = time.monotonic() + timeout_s
    while True:
        algo.restore_env_runners(group)
        if group.num_healthy_remote_workers() > 0:
            apply_tax_cap(algo)
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def _save(algo: Any, output_dir: str) -> str:
    """RLlib's save, made atomic (`checkpoint_files.atomic_folder`: a temporary sibling
    renamed into place), so that a kill or a full disk mid-save leaves no half-written
    checkpoint folder; ENOSPC: CheckpointSaveError, one line."""
    path = os.path.abspath(os.path.join(output_dir, CHECKPOINT_DIR, f"iter_{algo.iteration:06d}"))
    with checkpoint_files.atomic_folder(path) as folder:
        algo.save_to_path(folder)
    return path
