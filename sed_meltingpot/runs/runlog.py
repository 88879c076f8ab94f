"""A run directory's files: the per-iteration log, its resumption, the summary.

Engine-neutral (no Ray, no JAX), so the RLlib trainer and the JAX twin's
trainer write the same `progress.jsonl` and `summary.json`:

* `read_progress` reads a log that a crash may have cut mid-line, or that
  holds `null` lines, skipping the bad lines with a warning naming the file.
* `ProgressLog` appends one record per iteration and keeps the log
  continuous across `--restore`: lines after the restored iteration are
  dropped, `wall_time_s` continues from the restored run and the first
  resumed `game_steps_per_s` counts only the steps sampled since the resume;
  a log that lacks the checkpoint's iterations (missing, empty, cut short) is
  said in one line, and `resumed_episodes` lets the episode count go on.
  Iterations in which no episode ended carry the latest completed episodes'
  figures forward and say so (`metrics_stale`, `metrics_iteration`).
* `build_summary` / `format_summary` give the end-of-run summary for any
  number of tax brackets.
* `StopSignals` turns SIGTERM/SIGINT into "stop after this iteration", so
  the trainer saves a checkpoint before it exits (exit code 128 + signal).
* `iteration_record` builds one iteration's record from plain numbers, the
  same for both engines (each trainer extracts them from its own results).
* `write_run_config` / `read_run` (from `run_record.py`, re-exported here with the
  file names of `run_files.py`) write and read `run_config.json`: read
  back, a run is a `RunRecord` (engine, GameConfig with the run's players'
  types, TrainConfig, `principals.PrincipalSpec`, a jax run's
  `TwinSettings`, its checkpoints), validated once, where it is read.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sed_meltingpot.runs.run_files import (  # noqa: F401  (the run-folder API, re-exported)
    CHECKPOINT_DIR,
    CHECKPOINT_MARKERS,
    ENGINES,
    PROGRESS_FILE,
    RUN_CONFIG_FILE,
    RUN_FILES,
    SUMMARY_FILE,
    TENSORBOARD_DIR,
    TWIN_CHECKPOINT_MARKER,
    _finite,
    clean,
)
from sed_meltingpot.runs.run_record import (  # noqa: F401  (re-exported)
    RunRecord,
    TwinSettings,
    is_checkpoint,
    obs_mode_of,
    parse_run_config,
    read_run,
    run_checkpoints,
    write_run_config,
)

# Figures measured on completed episodes (besides `rate_b<k>` and
# `apples_p<i>`): an iteration in which no episode ended has none of its own.
EPISODE_KEYS = frozenset({
    "objective", "eta", "utilitarian", "egalitarian", "nash_welfare", "productivity",
    "equality", "income_equality", "sustainability", "peace", "tax_revenue",
    "principal_return", "steps", "tax_cap", "player_return_mean", "player_returns",
    "last_episode_period_rates"})
SUMMARY_KEYS = ("iteration", "game_steps", "objective", "eta", "productivity", "equality",
                "sustainability", "peace", "tax_revenue", "principal_return",
                "player_return_mean", "last_episode_period_rates", "tax_cap",
                "metrics_stale", "metrics_iteration")
# Learner statistics copied into each record, per module (`iteration_record`).
LOSS_KEYS = ("total_loss", "policy_loss", "vf_loss", "entropy")
#: Copied where a module's loss has them (the principal's entropy floor, jax engine).
OPTIONAL_LOSS_KEYS = ("entropy_floor_penalty",)


def is_episode_key(key: str) -> bool:
    return key in EPISODE_KEYS or key.startswith(("rate_b", "apples_p"))


def progress_path(run: str) -> str:
    """The log of a run directory (or `run` itself if it is a file)."""
    return run if os.path.isfile(run) else os.path.join(run, PROGRESS_FILE)


def read_progress(run: str, *, warn: Callable[[str], None] | None = None
                  ) -> list[dict[str, Any]]:
    """The records of a run's log, skipping lines that are not JSON objects
    (the truncated last line of a crashed run, `null`) with one warning that
    names the file and the lines. A missing file gives []."""
    path = progress_path(run)
    if not os.path.exists(path):
        return []
    records, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                bad.append(number)
    if bad:
        message = (f"{path}: skipped {len(bad)} line(s) that are not JSON objects "
                   f"(line {', '.join(map(str, bad[:10]))}{', ...' if len(bad) > 10 else ''}); "
                   "a crash can leave a truncated last line")
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(message)
    return records


def _write_lines(path: str, records: Iterable[dict[str, Any]]) -> None:
    """Replaces `path` atomically (a crash leaves the old or the new file)."""
    _replace_whole(path, "".join(json.dumps(clean(record)) + "\n" for record in records))


def write_json(path: str, data: Any) -> None:
    """`data` as JSON (indent 1) in `path`, replaced atomically like `_write_lines` (the
    designers' records: design/two_timescale.py's designer.json, design/search.py's
    search.json)."""
    _replace_whole(path, json.dumps(data, indent=1))


def _replace_whole(path: str, text: str) -> None:
    """`text` into a temporary sibling of `path`, renamed over it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def probe_write(folder: str) -> None:
    """Creates and removes a scratch file in the existing `folder`; raises OSError
    if that fails. Tried rather than `os.access`, which says yes to root even
    where writing fails (a read-only file system, /sys)."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_test_"):
        pass


def holds_run(folder: str) -> list[str]:
    """The run files (RUN_FILES) present in `folder`."""
    return [name for name in RUN_FILES if os.path.exists(os.path.join(folder, name))]


def clear_run(folder: str) -> None:
    """Removes a previous run's files (for `--overwrite`), nothing else."""
    for name in holds_run(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def iteration_record(*, iteration: int, env_steps: int, game_steps: int,
                     env_steps_this_iter: Any, time_this_iter_s: Any, episodes: Any,
                     episodes_this_iter: int, num_players: int,
                     player_return_mean: float = math.nan,
                     player_returns: Sequence[float] | None = None,
                     principal_return: float = math.nan, tax_cap_next: float = math.nan,
                     last_episode_period_rates: Sequence[Sequence[float]] = (),
                     episode_means: Mapping[str, float] | None = None,
                     losses: Mapping[str, Mapping[str, float]] | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One iteration's record, as both engines log it (`ProgressLog.add` then adds
    wall_time_s, game_steps_per_s and the staleness of the episode figures).

    Counts: `iteration`, lifetime `env_steps` (game steps plus a learned principal's
    turns) and `game_steps`, `env_steps_this_iter`, `time_this_iter_s`, lifetime
    `episodes` and `episodes_this_iter` (0: the episode figures are stale).
    Episode figures (NaN / empty when no episode ended): the players' returns (their
    sum `player_return_mean` and one per player), `principal_return`, the last
    episode's rates per period and bracket, and `episode_means` (what
    training/rllib/callbacks.py logs: the game's scalar metrics, `rate_b<k>`,
    `apples_p<i>`), which never replace the figures named above.
    `tax_cap_next`: the cap of the next iteration (`tax_cap` in the means is the one
    applied). `losses`: per module, those of its statistics in LOSS_KEYS or
    OPTIONAL_LOSS_KEYS, as `<key>_<module>`. `extra` (e.g. the jax principal's
    diagnostics) is added last."""
    returns = [math.nan] * num_players if player_returns is None else list(player_returns)
    if len(returns) != num_players:
        raise ValueError(f"player_returns has {len(returns)} values, expected one per "
                         f"player ({num_players})")
    record: dict[str, Any] = {
        "iteration": iteration,
        "env_steps": int(env_steps),
        "game_steps": int(game_steps),
        "env_steps_this_iter": env_steps_this_iter,
        "time_this_iter_s": time_this_iter_s,
        "episodes": episodes,
        "episodes_this_iter": int(episodes_this_iter),
        "player_return_mean": player_return_mean,
        "player_returns": returns,
        "principal_return": principal_return,
        # The cap for the next iteration; `tax_cap` (from the episodes) is the one applied.
        "tax_cap_next": tax_cap_next,
        "last_episode_period_rates": [list(rates) for rates in last_episode_period_rates],
    }
    for key, value in (episode_means or {}).items():
        record.setdefault(key, value)
    # Each module's losses (the principal's included).
    for module_id, stats in (losses or {}).items():
        for key in LOSS_KEYS + OPTIONAL_LOSS_KEYS:
            if key in stats:
                record[f"{key}_{module_id}"] = stats[key]
    record.update(extra or {})
    return record


def _lost_history(source: str, kept: Sequence[dict[str, Any]], resume_iteration: int
                  ) -> str | None:
    """One line when the log a resume continues lacks iterations the checkpoint has
    (missing, empty, or cut short): those iterations are lost, the log goes on from
    `resume_iteration + 1` and says so rather than restarting silently."""
    if resume_iteration <= 0:
        return None
    name = os.path.join(source, PROGRESS_FILE) if os.path.isdir(source) else source
    if not kept:
        state = "empty" if os.path.exists(name) else "missing"
        return (f"{name} is {state}: the log restarts at iteration {resume_iteration + 1}; "
                f"earlier iterations are lost")
    last = int(kept[-1]["iteration"])
    if last < resume_iteration:
        return (f"{name} ends at iteration {last} but the checkpoint is at iteration "
                f"{resume_iteration}: iterations {last + 1}..{resume_iteration} are lost; "
                f"the log continues at iteration {resume_iteration + 1}")
    return None


class ProgressLog:
    """Appends iteration records to `<output_dir>/progress.jsonl`.

    `resume_iteration` (the restored checkpoint's iteration, or None for a
    fresh run) keeps the log continuous: the records up to it are kept
    (read from `source_log`, the restored run's log, when the run continues
    in another folder) and every later line is dropped, so that iterations
    the checkpoint does not hold never appear twice.
    """

    def __init__(self, output_dir: str, *, resume_iteration: int | None = None,
                 source_log: str | None = None, clock: Callable[[], float] = time.time,
                 warn: Callable[[str], None] | None = None) -> None:
        self.path = os.path.join(output_dir, PROGRESS_FILE)
        self._clock = clock
        kept: list[dict[str, Any]] = []
        if resume_iteration is not None:
            source = source_log if source_log and os.path.exists(source_log) else self.path
            kept = [r for r in read_progress(source, warn=warn)
                    if isinstance(r.get("iteration"), int) and r["iteration"] <= resume_iteration]
            lost = _lost_history(source, kept, resume_iteration)
            if lost:
                (warn or (lambda m: warnings.warn(m, stacklevel=2)))(lost)
        _write_lines(self.path, kept)
        self.records = kept
        last = kept[-1] if kept else {}
        # The lifetime episode count of the restored run, from which a trainer whose
        # counter is not in the checkpoint (the jax engine) counts on.
        self.resumed_episodes = int(last.get("episodes") or 0) if _finite(
            last.get("episodes")) else 0
        self._wall_offset = float(last.get("wall_time_s") or 0.0)
        self._prev_steps = int(last.get("game_steps") or 0)
        self._start = self._prev_time = clock()
        # The iteration this process starts from (the ETA counts only its own).
        self._start_iteration = int(last.get("iteration") or 0)
        # Added to `episodes` when a trainer's lifetime counter restarted at the resume
        # (decided at the first record added: a lifetime count never goes down).
        self._episodes_offset: int | None = None if self.resumed_episodes else 0
        # The latest figures of completed episodes, carried into iterations
        # in which no episode ended.
        self._carry: dict[str, Any] = {}
        self._carry_iteration: int | None = None
        for record in kept:
            self._remember(record)

    def _remember(self, record: dict[str, Any]) -> None:
        if record.get("metrics_stale"):
            return
        fresh = {k: v for k, v in record.items() if is_episode_key(k) and _finite(v)}
        if fresh:
            self._carry.update(fresh)
            self._carry_iteration = record.get("iteration")

    def eta_s(self, total_iterations: int) -> float | None:
        """Seconds left until iteration `total_iterations`, at the mean time per
        iteration of those added by this log (`eta_seconds`; a restored run's earlier
        iterations, run elsewhere or before a compile, do not count); None before
        the first is added."""
        if not self.records:
            return None
        iteration = int(self.records[-1].get("iteration") or 0)
        return eta_seconds(self._prev_time - self._start, iteration - self._start_iteration,
                           total_iterations - iteration)

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Completes `record` (wall_time_s, game_steps_per_s, staleness),
        appends it as one line and returns it.

        `record` must hold `iteration` and `game_steps` (lifetime); it may
        hold `episodes_this_iter` (episodes that ended in this iteration):
        0 marks the episode figures stale, and missing ones are then taken
        from the latest iteration that completed episodes. After a resume, a lifetime
        `episodes` below the restored run's (a counter that restarted) counts on
        from it, so the count never goes down."""
        now = self._clock()
        record = dict(record)
        episodes = record.get("episodes")
        if _finite(episodes) and not isinstance(episodes, (list, tuple)):
            if self._episodes_offset is None:
                self._episodes_offset = (self.resumed_episodes
                                         if episodes < self.resumed_episodes else 0)
            record["episodes"] = episodes + self._episodes_offset
        record["wall_time_s"] = self._wall_offset + (now - self._start)
        steps = int(record.get("game_steps") or 0)
        record["game_steps_per_s"] = (steps - self._prev_steps) / max(1e-9, now - self._prev_time)
        self._prev_steps, self._prev_time = steps, now
        ended = record.get("episodes_this_iter")
        if ended is None:
            ended = int(any(_finite(v) for k, v in record.items() if is_episode_key(k)))
            record["episodes_this_iter"] = None
        stale = not ended
        record["metrics_stale"] = stale
        if stale:
            for key, value in self._carry.items():
                if not _finite(record.get(key)):
                    record[key] = value
            record["metrics_iteration"] = self._carry_iteration
        else:
            self._remember(record)
            record["metrics_iteration"] = record.get("iteration")
        with open(self.path, "a") as f:
            f.write(json.dumps(clean(record)) + "\n")
        self.records.append(record)
        return record


def num_brackets_of(record: dict[str, Any]) -> int:
    """Brackets in a record: its `rate_b<k>` keys (0 if none)."""
    indices = [int(k[6:]) for k in record if k.startswith("rate_b") and k[6:].isdigit()]
    return max(indices) + 1 if indices else 0


def build_summary(record: dict[str, Any], *, num_brackets: int, checkpoint: str | None,
                  selfishness: Sequence[float]) -> dict[str, Any]:
    """The end-of-run summary from the last record (whose episode figures
    are the latest completed episodes', see ProgressLog.add)."""
    summary = {k: record.get(k) for k in SUMMARY_KEYS}
    summary["num_brackets"] = num_brackets
    for b in range(num_brackets):
        summary[f"rate_b{b}"] = record.get(f"rate_b{b}")
    summary["checkpoint"] = checkpoint
    summary["selfishness"] = list(selfishness)
    return summary


MISSING = "-"  # printed for a figure no completed episode has measured yet


def format_number(value: Any, spec: str) -> str:
    """`value` in the format `spec` (e.g. "7.2f"), or MISSING right-aligned to the
    width `spec` names where it is not a finite number (None, NaN, a list): a
    figure that no completed episode has measured yet, shown as "-", not "nan"."""
    if _finite(value) and not isinstance(value, (list, tuple)):
        return format(float(value), spec)
    digits = spec.split(".")[0].lstrip("<>^=+- 0")
    return MISSING.rjust(int(digits) if digits.isdigit() else 0)


def format_duration(seconds: float) -> str:
    """A duration to read at a glance: 42s, 3m05s, 1h02m (rounded to the second)."""
    total = max(0, int(round(seconds)))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def eta_seconds(elapsed_s: float, iterations_done: int, iterations_left: int) -> float | None:
    """Seconds left if the iterations still to run take as long, on average, as
    those this process ran (`elapsed_s` for `iterations_done`); None before the first."""
    if iterations_done <= 0:
        return None
    return max(0, iterations_left) * elapsed_s / iterations_done


def format_summary(summary: dict[str, Any]) -> str:
    def fmt(key: str) -> str:
        return format_number(summary.get(key), ".3f")

    num_brackets = summary.get("num_brackets") or num_brackets_of(summary)
    rates = ", ".join(fmt(f"rate_b{b}") for b in range(num_brackets))
    lines = [
        "=== summary ===",
        f"iterations {summary.get('iteration')}, game steps {summary.get('game_steps')}",
        f"voted eta {fmt('eta')}; objective W_eta per episode {fmt('objective')}",
        f"principal's mean rates per bracket (last episodes): {rates}",
        f"apples per episode {fmt('productivity')}, equality {fmt('equality')}, "
        f"sustainability {fmt('sustainability')}, peace {fmt('peace')}, "
        f"tax revenue {fmt('tax_revenue')}",
    ]
    if summary.get("metrics_stale"):
        lines.append(f"(episode figures from iteration {summary.get('metrics_iteration')}, "
                     "the last that completed episodes)")
    if summary.get("stopped_by"):
        lines.append(f"stopped early by {summary['stopped_by']}")
    lines.append(f"checkpoint: {summary.get('checkpoint')}")
    return "\n".join(lines)


def format_progress(record: dict[str, Any], num_brackets: int, *,
                    eta_s: float | None = None) -> str:
    """The one-line progress report of an iteration: "-" for a figure that no
    completed episode has measured yet (`format_number`), and with `eta_s` (e.g.
    `ProgressLog.eta_s`) the estimated time left."""
    def num(key: str, spec: str) -> str:
        return format_number(record.get(key), spec)

    rates = "/".join(num(f"rate_b{b}", ".2f") for b in range(num_brackets))
    stale = " (stale)" if record.get("metrics_stale") and record.get("metrics_iteration") else ""
    left = "" if eta_s is None else f" | ETA {format_duration(eta_s)}"
    return (f"iter {record['iteration']:4d} | game steps {record['game_steps']:8d} "
            f"({num('game_steps_per_s', '6.1f')}/s) | objective {num('objective', '7.2f')} "
            f"eta {num('eta', '.2f')} | apples {num('productivity', '6.1f')} | rates {rates} | "
            f"cap {num('tax_cap', '.2f')}{stale}{left}")


class StopSignals:
    """While active, SIGTERM and SIGINT only set `signum`: the training loop
    finishes its iteration, saves a checkpoint and returns, so a killed run
    loses nothing. A second signal raises KeyboardInterrupt (stop now). The
    previous handlers (Ray's `sys.exit` on SIGTERM among them) come back on
    exit. Outside the main thread signals cannot be caught: a no-op."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum else None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping now")
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def exit_code(signum: int | None) -> int:
    """The shell's convention for a run stopped by a signal: 128 + signal
    (130 SIGINT, 143 SIGTERM); 0 when it ran to the end (a diverged run exits with
    DIVERGED_EXIT_CODE: `TrainingDiverged`)."""
    return 128 + signum if signum else 0


#: The exit status of a run stopped because training diverged (scripts/train.py).
DIVERGED_EXIT_CODE = 3
_MODULE_WORDS = {"players": "the players'", "principal": "the principal's"}
_LOSS_WORDS = {"total_loss": "total loss", "policy_loss": "policy loss",
               "vf_loss": "value loss", "entropy": "entropy",
               "entropy_floor_penalty": "entropy floor penalty"}


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN or infinite: the trainer stopped at once,
    saved nothing of that state and wrote no summary, so the newest checkpoint is the
    last finite one (the message names it) and a later --restore cannot pick up NaN
    weights. Scripts print the message as one line and exit DIVERGED_EXIT_CODE."""

    def __init__(self, iteration: int, what: Sequence[str], checkpoint: str | None,
                 *, seed: int | None = None) -> None:
        self.iteration, self.what, self.checkpoint = iteration, list(what), checkpoint
        where = f" (seed {seed})" if seed is not None else ""
        kept = (f"the last finite checkpoint is {checkpoint} (nothing later was saved); "
                "--restore it with a lower --lr (or --principal_lr for the principal)"
                if checkpoint else "no checkpoint was saved before it; lower --lr (or "
                "--principal_lr for the principal)")
        super().__init__(f"training diverged at iteration {iteration}{where}: non-finite "
                         f"{', '.join(what)}; {kept}")


def non_finite(losses: Mapping[str, Mapping[str, Any]],
               params: Mapping[str, bool] | None = None) -> list[str]:
    """What is not finite, in words ("the players' policy loss", "the principal's
    parameters"): each module's LOSS_KEYS and OPTIONAL_LOSS_KEYS in `losses` (as
    `iteration_record` takes them), and `params` (module -> whether all its parameters
    are finite). Empty when training is sound."""
    def infinite_or_nan(value: Any) -> bool:
        try:
            return not math.isfinite(float(value))
        except (TypeError, ValueError):  # not a number (None: a statistic not computed)
            return False

    bad = []
    for module, stats in losses.items():
        who = _MODULE_WORDS.get(module, f"{module}'s")
        bad += [f"{who} {_LOSS_WORDS[key]}" for key in LOSS_KEYS + OPTIONAL_LOSS_KEYS
                if key in stats and infinite_or_nan(stats[key])]
    for module, finite in (params or {}).items():
        if not finite:
            who = _MODULE_WORDS.get(module, f"{module}'s")
            bad.append(f"{who} parameters")
    return bad
