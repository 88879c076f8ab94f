"""The training loop: build the algorithm, iterate, log, checkpoint, summarise.

Outputs under `output_dir`:
  progress.jsonl   one JSON object per iteration (see `_iteration_record`)
  tensorboard/     TensorBoard event files of the same numbers
  checkpoints/iter_NNNNNN/   RLlib checkpoints (players and principal); a
                   module alone restores from
                   <checkpoint>/learner_group/learner/rl_module/<module id>
  run_config.json  the game and training settings, and the players' types
  summary.json     what the principal learned, written at the end
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sed_meltingpot import rewards
from sed_meltingpot.config import GameConfig
from sed_meltingpot.training.config import TrainConfig, build_ppo_config

CHECKPOINT_DIR = "checkpoints"
MODULE_PATH = os.path.join("learner_group", "learner", "rl_module")


class NoSamplesError(RuntimeError):
    """An iteration sampled no env steps: training would silently do nothing."""


def module_checkpoint(checkpoint: str, module_id: str) -> str:
    """The folder from which `RLModule.from_checkpoint` restores one module."""
    return os.path.join(checkpoint, MODULE_PATH, module_id)


def latest_checkpoint(path: str) -> str:
    """`path` itself if it is a checkpoint, else the newest one under it."""
    if os.path.exists(os.path.join(path, "algorithm_state.pkl")) or os.path.exists(
            os.path.join(path, "rllib_checkpoint.json")):
        return path
    folder = os.path.join(path, CHECKPOINT_DIR) if os.path.isdir(
        os.path.join(path, CHECKPOINT_DIR)) else path
    candidates = sorted(d for d in os.listdir(folder) if d.startswith("iter_")) if os.path.isdir(
        folder) else []
    if not candidates:
        raise FileNotFoundError(f"no checkpoint found at {path!r}")
    return os.path.join(folder, candidates[-1])


def _get(result: dict, *keys: str, default: Any = float("nan")) -> Any:
    for key in keys:
        if not isinstance(result, dict) or key not in result:
            return default
        result = result[key]
    return result


def _iteration_record(result: dict, *, wall_start: float, num_players: int,
                      learned: bool) -> dict[str, Any]:
    """The per-iteration numbers a researcher plots."""
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
    record = {
        "iteration": result.get("training_iteration"),
        "env_steps": int(_get(runners, "num_env_steps_sampled_lifetime", default=0)),
        "game_steps": int(agent_steps.get("player_0", 0)),
        "env_steps_this_iter": _get(runners, "num_env_steps_sampled", default=0),
        "wall_time_s": time.time() - wall_start,
        "time_this_iter_s": result.get("time_this_iter_s"),
        "episodes": _get(runners, "num_episodes_lifetime", default=0),
        "player_return_mean": module_returns.get("players", float("nan")) ,
        "player_returns": [agent_returns.get(f"player_{i}", float("nan"))
                           for i in range(num_players)],
        "principal_return": module_returns.get("principal", float("nan")) if learned else
        sed.get("principal_return", float("nan")),
        # The cap for the next iteration; `tax_cap` (from the episodes) is the one applied.
        "tax_cap_next": _get(result, "sed", "tax_cap_next"),
        "last_episode_period_rates": [[periods[k][b] for b in sorted(periods[k])]
                                      for k in sorted(periods)],
    }
    for key, value in sed.items():
        record.setdefault(key, value)
    return record


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_progress(record: dict[str, Any], steps_per_s: float) -> str:
    rates = "/".join(f"{record.get(f'rate_b{b}', float('nan')):.2f}" for b in range(3))
    return (f"iter {record['iteration']:4d} | game steps {record['game_steps']:8d} "
            f"({steps_per_s:6.1f}/s) | objective {record.get('objective', float('nan')):7.2f} "
            f"eta {record.get('eta', float('nan')):.2f} | apples "
            f"{record.get('productivity', float('nan')):6.1f} | rates {rates} | "
            f"cap {record.get('tax_cap', float('nan')):.2f}")


def train(game: GameConfig, train_config: TrainConfig, output_dir: str, *,
          restore: str | None = None, ray_address: str | None = None,
          checkpoint_every: int = 10,
          on_iteration: Callable[[dict[str, Any]], None] | None = None,
          print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """Trains players and principal; returns the final summary."""
    import ray

    game.validate()
    train_config.validate()
    os.makedirs(output_dir, exist_ok=True)
    # Types are sampled once per run from its seed and shared by every env.
    selfishness = tuple(float(s) for s in (
        game.selfishness if game.selfishness is not None
        else rewards.sample_selfishness(game.num_players, train_config.seed)))
    with open(os.path.join(output_dir, "run_config.json"), "w") as f:
        json.dump(_clean({"game": dataclasses.asdict(game), "train": dataclasses.asdict(
            train_config), "selfishness": selfishness}), f, indent=2)

    if not ray.is_initialized():
        init_kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if ray_address:
            init_kwargs["address"] = ray_address
        else:
            # "local" starts a fresh instance even if another cluster runs here.
            init_kwargs["address"] = "local"
            init_kwargs["num_cpus"] = max(os.cpu_count() or 1, train_config.num_env_runners + 1)
            init_kwargs["num_gpus"] = train_config.num_gpus
        ray.init(**init_kwargs)

    from tensorboardX import SummaryWriter

    from sed_meltingpot.training.callbacks import apply_tax_cap

    algo = build_ppo_config(game, train_config, selfishness=selfishness).build_algo()
    learned = train_config.principal == "learned"
    try:
        if restore:
            checkpoint = latest_checkpoint(restore)
            algo.restore_from_path(checkpoint)
            apply_tax_cap(algo)
            print_fn(f"restored {checkpoint} at iteration {algo.iteration}")
        writer = SummaryWriter(os.path.join(output_dir, "tensorboard"))
        wall_start = time.time()
        record: dict[str, Any] = {}
        last_checkpoint = None
        prev_steps, prev_time = None, None
        with open(os.path.join(output_dir, "progress.jsonl"), "a") as log:
            while algo.iteration < train_config.num_iterations:
                result = algo.train()
                record = _iteration_record(result, wall_start=wall_start,
                                           num_players=game.num_players, learned=learned)
                if not record["env_steps_this_iter"]:
                    raise NoSamplesError(
                        f"iteration {record['iteration']} sampled 0 env steps; the env runners "
                        "are failing (see their logs above)")
                now = time.time()
                if prev_steps is None:
                    steps_per_s = record["game_steps"] / max(1e-9, record["time_this_iter_s"])
                else:
                    steps_per_s = (record["game_steps"] - prev_steps) / max(1e-9, now - prev_time)
                prev_steps, prev_time = record["game_steps"], now
                record["game_steps_per_s"] = steps_per_s
                log.write(json.dumps(_clean(record)) + "\n")
                log.flush()
                for key, value in record.items():
                    if isinstance(value, (int, float)) and value is not None and math.isfinite(
                            float(value)):
                        writer.add_scalar(f"sed/{key}", value, record["game_steps"])
                print_fn(format_progress(record, steps_per_s))
                if on_iteration:
                    on_iteration(record)
                if checkpoint_every and algo.iteration % checkpoint_every == 0:
                    last_checkpoint = _save(algo, output_dir)
        if last_checkpoint is None or not last_checkpoint.endswith(f"{algo.iteration:06d}"):
            last_checkpoint = _save(algo, output_dir)
        writer.close()
        summary = _summary(record, last_checkpoint, selfishness)
        with open(os.path.join(output_dir, "summary.json"), "w") as f:
            json.dump(_clean(summary), f, indent=2)
        print_fn(format_summary(summary))
        return summary
    finally:
        algo.stop()


def _save(algo: Any, output_dir: str) -> str:
    path = os.path.abspath(os.path.join(output_dir, CHECKPOINT_DIR, f"iter_{algo.iteration:06d}"))
    algo.save_to_path(path)
    return path


def _summary(record: dict[str, Any], checkpoint: str | None, selfishness) -> dict[str, Any]:
    keys = ("iteration", "game_steps", "objective", "eta", "productivity", "equality",
            "sustainability", "peace", "tax_revenue", "principal_return", "player_return_mean",
            "rate_b0", "rate_b1", "rate_b2", "last_episode_period_rates", "tax_cap")
    summary = {k: record.get(k) for k in keys}
    summary["checkpoint"] = checkpoint
    summary["selfishness"] = list(selfishness)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    def fmt(key: str) -> str:
        value = summary.get(key)
        return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(
            value)) else f"{value:.3f}"

    rates = ", ".join(fmt(f"rate_b{b}") for b in range(3))
    return "\n".join([
        "=== summary ===",
        f"iterations {summary['iteration']}, game steps {summary['game_steps']}",
        f"voted eta {fmt('eta')}; objective W_eta per episode {fmt('objective')}",
        f"principal's mean rates per bracket (last episodes): {rates}",
        f"apples per episode {fmt('productivity')}, equality {fmt('equality')}, "
        f"sustainability {fmt('sustainability')}, peace {fmt('peace')}, "
        f"tax revenue {fmt('tax_revenue')}",
        f"checkpoint: {summary['checkpoint']}",
    ])
