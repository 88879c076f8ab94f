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

from sed_meltingpot.analysis import plotting
from sed_meltingpot.runs import runlog

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


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_resume_with_an_empty_or_missing_log_says_the_history_is_lost(tmp_path, state):
    """Issue 31: a resume at iteration 5 whose progress.jsonl is empty (or gone) used
    to restart the log at 6 without a word."""
    if state == "empty":
        (tmp_path / runlog.PROGRESS_FILE).write_text("")
    said: list[str] = []
    log = runlog.ProgressLog(str(tmp_path), resume_iteration=5, clock=Clock(),
                             warn=said.append)
    path = os.path.join(str(tmp_path), runlog.PROGRESS_FILE)
    assert said == [f"{path} is {state}: the log restarts at iteration 6; earlier "
                    "iterations are lost"]
    assert log.records == []


def test_resume_with_a_log_cut_short_names_the_lost_iterations(tmp_path):
    fake_run(tmp_path, 2)  # the log ends at 2, the checkpoint is at 4
    said: list[str] = []
    runlog.ProgressLog(str(tmp_path), resume_iteration=4, clock=Clock(), warn=said.append)
    assert len(said) == 1 and "ends at iteration 2" in said[0]
    assert "iterations 3..4 are lost" in said[0]
    said.clear()  # a complete log: nothing to say
    fake_run(tmp_path, 4)
    runlog.ProgressLog(str(tmp_path), resume_iteration=4, clock=Clock(), warn=said.append)
    assert said == []


def test_the_episode_count_goes_on_after_a_resume(tmp_path):
    """`episodes` is a lifetime count: after a resume it goes on from the restored run's
    (`resumed_episodes`), and a trainer whose counter restarted at 0 is counted on."""
    write_log(tmp_path / runlog.PROGRESS_FILE, [
        {"iteration": k, "game_steps": 100 * k, "episodes": 4 * k} for k in (1, 2, 3)])
    log = runlog.ProgressLog(str(tmp_path), resume_iteration=2, clock=Clock())
    assert log.resumed_episodes == 8
    # A counter that restarted: 3 episodes since the resume, 8 before.
    assert log.add({"iteration": 3, "game_steps": 300, "episodes": 3})["episodes"] == 11
    assert log.add({"iteration": 4, "game_steps": 400, "episodes": 7})["episodes"] == 15
    # A counter that went on (the checkpoint holds it): left as it is.
    log = runlog.ProgressLog(str(tmp_path), resume_iteration=2, clock=Clock())
    assert log.add({"iteration": 3, "game_steps": 300, "episodes": 12})["episodes"] == 12
    episodes = [r["episodes"] for r in runlog.read_progress(str(tmp_path))]
    assert episodes == [4, 8, 12]


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
    (checkpoint / "algorithm_state.pkl").write_bytes(b"\x80\x04}\x94.")  # RLlib's last file
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


# ------------------------------------------------------------ iteration records
NAN = float("nan")


def test_iteration_record_without_episodes_has_nan_figures_and_the_counts():
    record = runlog.iteration_record(
        iteration=3, env_steps=330.0, game_steps=300.0, env_steps_this_iter=110,
        time_this_iter_s=2.5, episodes=4, episodes_this_iter=0.0, num_players=2,
        tax_cap_next=0.4)
    assert list(record) == [
        "iteration", "env_steps", "game_steps", "env_steps_this_iter", "time_this_iter_s",
        "episodes", "episodes_this_iter", "player_return_mean", "player_returns",
        "principal_return", "tax_cap_next", "last_episode_period_rates"]
    assert (record["env_steps"], record["game_steps"], record["episodes_this_iter"]) == (
        330, 300, 0)
    assert all(isinstance(record[k], int) for k in ("env_steps", "game_steps",
                                                     "episodes_this_iter"))
    assert record["player_return_mean"] != record["player_return_mean"]  # NaN
    assert len(record["player_returns"]) == 2 and record["last_episode_period_rates"] == []
    assert record["tax_cap_next"] == 0.4


def test_iteration_record_keeps_named_figures_over_the_means_and_only_loss_keys():
    record = runlog.iteration_record(
        iteration=1, env_steps=10, game_steps=10, env_steps_this_iter=10, time_this_iter_s=1.0,
        episodes=1, episodes_this_iter=1, num_players=2, player_return_mean=3.0,
        player_returns=(1.0, 2.0), principal_return=5.0,
        last_episode_period_rates=((0.1, 0.2), (0.3, 0.4)),
        episode_means={"principal_return": 9.0, "objective": 7.0, "rate_b0": 0.2},
        losses={"players": {"total_loss": 1.5, "vf_loss": 0.5, "grad_norm": 3.0},
                "principal": {"entropy": 0.25}},
        extra={"principal_lr": 0.001})
    assert record["principal_return"] == 5.0  # not the episodes' mean
    assert (record["objective"], record["rate_b0"]) == (7.0, 0.2)
    assert record["player_returns"] == [1.0, 2.0]
    assert record["last_episode_period_rates"] == [[0.1, 0.2], [0.3, 0.4]]
    assert {k: record[k] for k in record if "loss" in k or "entropy" in k} == {
        "total_loss_players": 1.5, "vf_loss_players": 0.5, "entropy_principal": 0.25}
    assert "grad_norm_players" not in record
    assert list(record)[-1] == "principal_lr"


def test_iteration_record_refuses_returns_of_another_number_of_players():
    with pytest.raises(ValueError, match=r"player_returns has 1 values, expected one per "
                                         r"player \(3\)"):
        runlog.iteration_record(iteration=1, env_steps=1, game_steps=1, env_steps_this_iter=1,
                                time_this_iter_s=1.0, episodes=1, episodes_this_iter=1,
                                num_players=3, player_returns=[1.0])


# ------------------------------------------------------------ run records
def write_config(folder, config) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, runlog.RUN_CONFIG_FILE)
    with open(path, "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))
    return path


def rllib_config() -> dict:
    """run_config.json as the RLlib trainer writes it (engine left out), abridged:
    absent settings are their defaults, a null stands for a non-finite default."""
    return {"game": {"num_players": 3, "episode_length": 100, "tax_period": 25,
                     "thresholds": [0, 10, 20, 10000], "num_rate_levels": 11,
                     "selfishness": None, "divergence_delta": None, "map": None},
            "train": {"principal": "fixed:0.10,0.3,0.5", "frame_stack": 2,
                      "pixels_per_tile": 8, "conv_channels": [8, 16], "hidden": 64},
            "selfishness": [0.25, 0.5, 1.0]}


def test_read_run_types_an_rllib_runs_settings_and_lists_its_checkpoints(tmp_path):
    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.game.principals import PrincipalSpec
    from sed_meltingpot.runs.train_config import TrainConfig

    run = tmp_path / "run"
    write_config(run, rllib_config())
    for name, marker in (("iter_000002", "algorithm_state.pkl"),
                         ("iter_000001", "rllib_checkpoint.json"),
                         ("iter_000003", None), ("other", "rllib_checkpoint.json")):
        (run / "checkpoints" / name).mkdir(parents=True)
        if marker:
            (run / "checkpoints" / name / marker).write_text("{}")
    record = runlog.read_run(str(run))
    assert record.engine == "rllib" and record.twin is None and record.run_dir == str(run)
    assert record.game == GameConfig(num_players=3, episode_length=100, tax_period=25,
                                     selfishness=(0.25, 0.5, 1.0))
    assert record.game.divergence_delta == float("inf")  # stored as null
    assert record.train == TrainConfig(principal="fixed:0.10,0.3,0.5", frame_stack=2,
                                       conv_channels=(8, 16), hidden=64)
    assert record.principal == PrincipalSpec("fixed", (0.1, 0.3, 0.5))
    assert str(record.principal) == "fixed:0.1,0.3,0.5"
    folder = str(run / "checkpoints")
    assert record.checkpoints == (os.path.join(folder, "iter_000001"),
                                  os.path.join(folder, "iter_000002"))
    assert record.latest_checkpoint == os.path.join(folder, "iter_000002")


def test_read_run_gives_a_jax_runs_twin_settings(tmp_path):
    config = rllib_config()
    config["engine"] = "jax"
    config["train"].update(principal="learned", pixels_per_tile=1, frame_stack=1)
    config["twin"] = {"num_envs": 4, "rollout_length": 50, "num_seeds": 2, "dtype": "float32",
                      "game_steps_per_iteration": 200, "recipe": {"principal_lr": 0.001},
                      "phase1_iterations": 3}
    write_config(tmp_path, config)
    record = runlog.read_run(str(tmp_path))
    assert record.engine == "jax" and record.principal.learned and record.checkpoints == ()
    assert record.twin == runlog.TwinSettings(
        obs_mode="tiles", frame_stack=1, num_envs=4, rollout_length=50, num_seeds=2,
        dtype="float32", game_steps_per_iteration=200, recipe={"principal_lr": 0.001},
        phase1_iterations=3)
    del config["twin"]  # an older jax run: observations only
    config["train"]["pixels_per_tile"] = 8
    write_config(tmp_path / "old", config)
    record = runlog.read_run(str(tmp_path / "old"))
    assert record.twin == runlog.TwinSettings(obs_mode="pixels", frame_stack=1)


def test_written_run_config_reads_back(tmp_path):
    import dataclasses

    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig

    game = GameConfig(num_players=2, episode_length=100, tax_period=50, voting_rule="fixed:0.5")
    train = TrainConfig(principal="random", pixels_per_tile=1)
    twin = {"num_envs": 2, "rollout_length": 100, "num_seeds": 1, "dtype": "bfloat16",
            "game_steps_per_iteration": 200, "recipe": {"eta_sampling": "uniform"},
            "phase1_iterations": 0}
    for engine in (None, "jax"):
        folder = tmp_path / str(engine)
        folder.mkdir()
        path = runlog.write_run_config(str(folder), game=game, train=train,
                                       selfishness=(0.5, 1.0), engine=engine,
                                       twin=twin if engine else None)
        saved = json.load(open(path))
        assert list(saved) == (["game", "train", "selfishness"] if engine is None else [
            "engine", "game", "train", "selfishness", "twin"])
        assert saved["game"]["divergence_delta"] is None  # inf, as JSON can hold it
        record = runlog.read_run(str(folder))
        assert record.engine == (engine or "rllib")
        assert record.game == dataclasses.replace(game, selfishness=(0.5, 1.0))
        assert record.train == train and str(record.principal) == "random"
        assert (record.twin is None) == (engine is None)
    assert record.twin == runlog.TwinSettings(obs_mode="tiles", frame_stack=4, **twin)


@pytest.mark.parametrize("change,message", [
    (lambda c: c["game"].update(colour="red"), r"unknown game settings \['colour'\]"),
    (lambda c: c["train"].update(batch=3), r"unknown train settings \['batch'\]"),
    (lambda c: c.update(engine="torch"), r"engine='torch' must be one of \['rllib', 'jax'\]"),
    (lambda c: c.update(extra=1), r"unknown entries \['extra'\]"),
    (lambda c: c.pop("game"), r"has no 'game' settings"),
    (lambda c: c["game"].update(tax_period=30), r"round length 100 .* tax_period=30"),
    (lambda c: c["train"].update(frame_stack=0), r"frame_stack=0 must be a positive integer"),
    (lambda c: c.update(selfishness=[0.5]), r"selfishness=\[0.5\] must hold one type per "
                                             r"player \(num_players=3\)"),
    (lambda c: c["train"].update(principal="fixed:0.1,0.2"),
     r"principal 'fixed:0.1,0.2': fixed principal rates has length 2, expected 3"),
    (lambda c: c["train"].update(principal="trained"),
     r"principal 'trained' must be 'learned', 'none', 'random' or 'fixed:r0,...,r2'"),
    (lambda c: c.update(twin={"num_envs": 2}), r"a 'twin' section belongs to a jax run"),
    (lambda c: c.update(engine="jax", twin={"num_envs": "2"}),
     r"twin num_envs='2' must be an integer"),
    (lambda c: c.update(engine="jax", twin={"envs": 2}), r"unknown twin settings \['envs'\]"),
])
def test_read_run_names_the_file_and_the_bad_setting(tmp_path, change, message):
    config = rllib_config()
    change(config)
    path = write_config(tmp_path, config)
    with pytest.raises(ValueError, match=message) as raised:
        runlog.read_run(str(tmp_path))
    assert str(raised.value).startswith(f"{path}: ")


def test_read_run_of_a_folder_without_or_with_a_broken_run_config(tmp_path):
    with pytest.raises(FileNotFoundError, match=runlog.RUN_CONFIG_FILE):
        runlog.read_run(str(tmp_path))
    path = write_config(tmp_path, '{"game": {')
    with pytest.raises(ValueError, match=f"{path}: not JSON"):
        runlog.read_run(str(tmp_path))
    write_config(tmp_path, "[1, 2]")
    with pytest.raises(ValueError, match=r"holds list \[1, 2\], not an object"):
        runlog.read_run(str(tmp_path))


# ------------------------------------------------------------ principal specs
@pytest.mark.parametrize("text,kind,rates,canonical", [
    ("learned", "learned", None, "learned"),
    ("none", "none", None, "none"),
    ("random", "random", None, "random"),
    ("fixed:0.1,0.3,0.5", "fixed", (0.1, 0.3, 0.5), "fixed:0.1,0.3,0.5"),
    ("fixed:1.0,0.50,0", "fixed", (1.0, 0.5, 0.0), "fixed:1,0.5,0"),
    ("fixed: 0.25, -0", "fixed", (0.25, 0.0), "fixed:0.25,0"),
    ("fixed:0.3333333333333333", "fixed", (1 / 3,), "fixed:0.3333333333333333"),
])
def test_principal_spec_parses_and_spells_canonically(text, kind, rates, canonical):
    from sed_meltingpot.game.principals import PrincipalSpec

    spec = PrincipalSpec.parse(text)
    assert (spec.kind, spec.rates, str(spec)) == (kind, rates, canonical)
    assert PrincipalSpec.parse(str(spec)) == spec
    assert spec.learned == (kind == "learned")


@pytest.mark.parametrize("text,options,message", [
    ("bogus", {}, r"^principal 'bogus' must be 'learned', 'none', 'random' or "
                  r"'fixed:r0,r1,...'$"),
    ("learned", {"scripted": True, "num_brackets": 3},
     r"^principal 'learned' must be 'none', 'random' or 'fixed:r0,...,r2'$"),
    ("fixed:a,0.2", {}, r"^principal 'fixed:a,0.2': rates must be numbers, e\.g\. "
                        r"fixed:0\.1,0\.2,0\.3$"),
    ("fixed:", {}, r"^principal 'fixed:': rates must be numbers"),
    ("fixed:0.1,1.5,0.2", {}, r"^principal 'fixed:0.1,1.5,0.2': fixed principal "
                              r"rates\[1\]=1\.5 is outside \[0, 1\]$"),
    ("fixed:0.1,0.2", {"num_brackets": 3},
     r"^principal 'fixed:0.1,0.2': fixed principal rates has length 2, expected 3"),
    (None, {}, r"^principal None must be a string"),
])
def test_principal_spec_errors_name_the_value_and_the_forms(text, options, message):
    from sed_meltingpot.game.principals import PrincipalSpec

    with pytest.raises(ValueError, match=message):
        PrincipalSpec.parse(text, **options)


def test_principal_spec_fields_are_checked_and_build_the_scripted_principals():
    import numpy as np

    from sed_meltingpot.game.principals import FixedRates, PrincipalSpec, RandomPrincipal

    with pytest.raises(ValueError, match=r"principal kind 'taxman' must be one of"):
        PrincipalSpec("taxman")
    with pytest.raises(ValueError, match=r"principal 'none' takes no rates"):
        PrincipalSpec("none", (0.1,))
    with pytest.raises(ValueError, match=r"a fixed principal needs its rates"):
        PrincipalSpec("fixed")
    none = PrincipalSpec.parse("none").build(num_brackets=2, rate_levels=(0.0, 1.0))
    assert isinstance(none, FixedRates) and none.rates.tolist() == [0.0, 0.0]
    fixed = PrincipalSpec("fixed", (0.2, 0.4)).build(num_brackets=2, rate_levels=(0.0, 1.0))
    assert fixed.rates.tolist() == [0.2, 0.4]
    assert isinstance(PrincipalSpec("random").build(num_brackets=2, rate_levels=(0.0, 1.0)),
                      RandomPrincipal)
    with pytest.raises(ValueError, match=r"principal 'learned' is not scripted"):
        PrincipalSpec("learned").build(num_brackets=2, rate_levels=(0.0, 1.0))
    assert PrincipalSpec("learned").rates_for(3) is None
    np.testing.assert_array_equal(PrincipalSpec("none").rates_for(3), np.zeros(3))


def test_the_existing_parsers_go_through_principal_spec():
    from sed_meltingpot.experiment.grid import BEST_FIXED, principal_spec
    from sed_meltingpot.game.principals import PrincipalSpec, parse_principal

    assert principal_spec("progressive") == str(PrincipalSpec("fixed", (0.1, 0.3, 0.5)))
    assert principal_spec(BEST_FIXED, (0.0, 0.5, 1.0)) == "fixed:0,0.5,1"
    with pytest.raises(ValueError, match=r"principal 'fixed:0,1.5': fixed principal "
                                         r"rates\[1\]=1\.5 is outside"):
        principal_spec(BEST_FIXED, (0.0, 1.5))
    with pytest.raises(ValueError, match=r"^principal 'learned' must be 'none', 'random' or "
                                         r"'fixed:r0,...,r2'$"):
        parse_principal("learned", num_brackets=3, rate_levels=(0.0, 1.0))
