"""The run folder's log, resume and summary (no Ray: runlog and plan_run).

Every expected figure below is worked out by hand from the records written
in the test, not read back from the code under test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings

import pytest

from sed_meltingpot import plotting
from sed_meltingpot.training import runlog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_log(path, records, tail: str = "") -> None:
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.write(tail)


def fake_run(folder, iterations: int) -> list[dict]:
    """A run log: iteration k at 10k seconds and 100k game steps."""
    os.makedirs(folder, exist_ok=True)
    records = [{"iteration": k, "game_steps": 100 * k, "wall_time_s": 10.0 * k,
                "objective": float(k), "rate_b0": 0.1, "rate_b1": 0.2, "rate_b2": 0.3,
                "metrics_stale": False} for k in range(1, iterations + 1)]
    write_log(os.path.join(folder, runlog.PROGRESS_FILE), records)
    return records


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ reading
def test_truncated_last_line_and_null_lines_are_skipped_with_a_warning_naming_the_file(
        tmp_path):
    path = tmp_path / runlog.PROGRESS_FILE
    write_log(path, [{"iteration": 1, "game_steps": 5}], tail='null\n{"iteration": 2, "gam')
    messages = []
    records = runlog.read_progress(str(tmp_path), warn=messages.append)
    assert records == [{"iteration": 1, "game_steps": 5}]
    assert len(messages) == 1 and str(path) in messages[0] and "2, 3" in messages[0]


def test_plots_survive_a_crashed_runs_log(tmp_path):
    fake_run(tmp_path / "run", 3)
    with open(tmp_path / "run" / runlog.PROGRESS_FILE, "a") as f:
        f.write('null\n{"iteration": 4, "game_st')
    with pytest.warns(UserWarning, match=runlog.PROGRESS_FILE):
        records = plotting.load_progress(str(tmp_path / "run"))
    assert [r["iteration"] for r in records] == [1, 2, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = plotting.plot_runs([str(tmp_path / "run")], str(tmp_path / "plots"))
    assert all(os.path.getsize(p) > 0 for p in paths)


# ------------------------------------------------------------ resume
def test_resume_drops_later_lines_and_continues_time_and_throughput(tmp_path):
    fake_run(tmp_path, 5)  # the run died after iteration 5; checkpoint at 3
    clock = Clock()
    log = runlog.ProgressLog(str(tmp_path), resume_iteration=3, clock=clock)
    clock.now += 4.0  # the first resumed iteration takes 4 s and samples 80 game steps
    record = log.add({"iteration": 4, "game_steps": 380, "episodes_this_iter": 1,
                      "objective": 9.0})
    assert record["wall_time_s"] == pytest.approx(30.0 + 4.0)
    assert record["game_steps_per_s"] == pytest.approx(80 / 4.0)
    clock.now += 2.0
    record = log.add({"iteration": 5, "game_steps": 480, "episodes_this_iter": 1,
                      "objective": 9.0})
    assert record["wall_time_s"] == pytest.approx(36.0)
    assert record["game_steps_per_s"] == pytest.approx(50.0)
    lines = runlog.read_progress(str(tmp_path))
    assert [r["iteration"] for r in lines] == [1, 2, 3, 4, 5]


def test_resume_into_another_folder_copies_the_log_up_to_the_checkpoint(tmp_path):
    fake_run(tmp_path / "old", 4)
    os.makedirs(tmp_path / "new")
    log = runlog.ProgressLog(str(tmp_path / "new"), resume_iteration=2,
                             source_log=str(tmp_path / "old" / runlog.PROGRESS_FILE),
                             clock=Clock())
    assert [r["iteration"] for r in runlog.read_progress(str(tmp_path / "new"))] == [1, 2]
    assert [r["iteration"] for r in runlog.read_progress(str(tmp_path / "old"))] == [1, 2, 3, 4]
    assert log.records[-1]["wall_time_s"] == 20.0


def test_fresh_log_starts_empty(tmp_path):
    clock = Clock()
    log = runlog.ProgressLog(str(tmp_path), clock=clock)
    clock.now += 2.0
    record = log.add({"iteration": 1, "game_steps": 100, "episodes_this_iter": 0})
    assert record["wall_time_s"] == pytest.approx(2.0)
    assert record["game_steps_per_s"] == pytest.approx(50.0)


# ------------------------------------------------------------ stale episodes
def test_iterations_without_finished_episodes_carry_the_latest_ones_and_say_so(tmp_path):
    nan = float("nan")
    log = runlog.ProgressLog(str(tmp_path), clock=Clock())
    first = log.add({"iteration": 1, "game_steps": 100, "episodes_this_iter": 0,
                     "objective": nan, "rate_b0": nan})
    assert first["metrics_stale"] and first.get("metrics_iteration") is None
    assert first["objective"] != first["objective"]  # nothing to carry yet: NaN stays
    log.add({"iteration": 2, "game_steps": 200, "episodes_this_iter": 2, "objective": 7.5,
             "rate_b0": 0.25, "player_returns": [1.0, 2.0], "env_steps": 210})
    third = log.add({"iteration": 3, "game_steps": 300, "episodes_this_iter": 0,
                     "objective": nan, "rate_b0": nan, "player_returns": [nan, nan],
                     "env_steps": 315})
    assert third["metrics_stale"] and third["metrics_iteration"] == 2
    assert (third["objective"], third["rate_b0"]) == (7.5, 0.25)
    assert third["player_returns"] == [1.0, 2.0]
    assert third["env_steps"] == 315  # not an episode figure: never carried
    fourth = log.add({"iteration": 4, "game_steps": 400, "episodes_this_iter": 1,
                      "objective": 3.0, "rate_b0": 0.5})
    assert not fourth["metrics_stale"] and fourth["objective"] == 3.0
    summary = runlog.build_summary(third, num_brackets=1, checkpoint=None, selfishness=[0.5])
    text = runlog.format_summary(summary)
    assert "7.500" in text and "iteration 2" in text
    # The carry survives a resume: the kept log is re-read.
    resumed = runlog.ProgressLog(str(tmp_path), resume_iteration=3, clock=Clock())
    again = resumed.add({"iteration": 4, "game_steps": 400, "episodes_this_iter": 0,
                         "objective": nan})
    assert again["objective"] == 7.5 and again["metrics_iteration"] == 2


@pytest.mark.parametrize("num_brackets", [2, 4])
def test_summary_and_progress_line_show_every_bracket(num_brackets):
    rates = [0.1 * (b + 1) for b in range(num_brackets)]
    record = {"iteration": 3, "game_steps": 300, "objective": 1.0, "eta": 0.5,
              **{f"rate_b{b}": r for b, r in enumerate(rates)}}
    summary = runlog.build_summary(record, num_brackets=num_brackets, checkpoint="c",
                                   selfishness=[0.5])
    assert [summary[f"rate_b{b}"] for b in range(num_brackets)] == rates
    text = runlog.format_summary(summary)
    assert ", ".join(f"{r:.3f}" for r in rates) + "\n" in text
    line = runlog.format_progress(record, num_brackets)
    assert "rates " + "/".join(f"{r:.2f}" for r in rates) + " |" in line


# ------------------------------------------------------------ run folder
def test_exit_code_convention():
    assert runlog.exit_code(None) == 0
    assert runlog.exit_code(signal.SIGTERM) == 143 and runlog.exit_code(signal.SIGINT) == 130


def test_stop_signals_defer_the_first_signal_and_restore_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with runlog.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM and stop.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def run_train(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


TINY_FLAGS = ("--preset=fast", "--episode_length=100", "--tax_period=50",
              "--num_iterations=1", "--num_env_runners=0", "--train_batch_size=104",
              "--rollout_fragment_length=104", "--minibatch_size=52")


def make_run_folder(folder, num_players: int = 7) -> str:
    """A finished run's folder: run_config.json, a log and a checkpoint marker."""
    checkpoint = folder / "checkpoints" / "iter_000001"
    checkpoint.mkdir(parents=True)
    (checkpoint / "rllib_checkpoint.json").write_text("{}")
    config = {"game": {"num_players": num_players, "thresholds": [0, 10, 20, 10000],
                       "num_rate_levels": 11, "substrate": "apple_picking", "map": None},
              "train": {"frame_stack": 4, "pixels_per_tile": 1, "conv_channels": [8, 16],
                        "hidden": 64, "principal": "learned"},
              "selfishness": [0.5] * num_players}
    (folder / runlog.RUN_CONFIG_FILE).write_text(json.dumps(config))
    fake_run(folder, 1)
    return (folder / runlog.RUN_CONFIG_FILE).read_text()


@pytest.mark.parametrize("case", ["missing", "no_checkpoint", "players"])
def test_bad_restore_fails_before_ray_and_leaves_run_config_alone(tmp_path, case):
    run = tmp_path / "run"
    saved = make_run_folder(run)
    restore = {"missing": str(tmp_path / "nowhere"), "no_checkpoint": str(tmp_path),
               "players": str(run)}[case]
    proc = run_train(*TINY_FLAGS, f"--output_dir={run}", f"--restore={restore}",
                     "--num_players=3")
    assert proc.returncode != 0
    assert "--restore" in proc.stderr, proc.stderr[-2000:]
    if case == "players":
        assert "--num_players: checkpoint 7, this run 3" in proc.stderr
    assert "Traceback" not in proc.stderr and "Ray instance" not in proc.stderr
    assert (run / runlog.RUN_CONFIG_FILE).read_text() == saved


def test_fresh_run_refuses_a_folder_that_holds_a_run(tmp_path):
    run = tmp_path / "run"
    make_run_folder(run)
    log_before = (run / runlog.PROGRESS_FILE).read_text()
    proc = run_train(*TINY_FLAGS, f"--output_dir={run}")
    assert proc.returncode != 0
    assert "already holds a run" in proc.stderr and "--overwrite" in proc.stderr
    assert "Traceback" not in proc.stderr and "Ray instance" not in proc.stderr
    assert (run / runlog.PROGRESS_FILE).read_text() == log_before
