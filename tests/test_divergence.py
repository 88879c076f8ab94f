"""Divergence is caught (issue 31, item 3): a NaN or infinite loss or parameter stops
the run at the iteration it appears, with one line naming it and the last finite
checkpoint; nothing of the diverged state is logged or saved, no summary is written,
and scripts/train.py exits with runlog.DIVERGED_EXIT_CODE.

The NaN is injected: the jax engine's update is wrapped so that the players' parameters
it returns for iteration 2 are NaN (a stand-in game, tests/twin_toy_game.py, keeps the
compile short). The RLlib engine's check is `check_finite` on its result and weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sed_meltingpot.runs import runlog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(__file__))

#: Run in a subprocess: scripts/train.py on the stand-in game, its update poisoned at
#: iteration 2 (NaN players' parameters), so the whole path to the exit code is real.
POISONED_TRAIN = """
import runpy, sys
import jax, jax.numpy as jnp
sys.path.insert(0, {tests!r})
from twin_toy_game import ToyGame
from sed_meltingpot.training.jax import ppo

ppo.make_game = lambda config: ToyGame(config.game, config.obs_mode, config.train.frame_stack)
make_functions = ppo.make_functions

def poisoned(config, game=None):
    fns = make_functions(config, game)

    def update(state):
        state, metrics = fns.update(state)
        nan = lambda x: jnp.where(state.iteration == 2, jnp.nan, x)
        return state._replace(players_params=jax.tree_util.tree_map(
            nan, state.players_params)), metrics

    return fns._replace(update=update)

ppo.make_functions = poisoned
sys.argv = ["train.py"] + {argv!r}
runpy.run_path({script!r}, run_name="__main__")
"""


def test_a_nan_at_iteration_2_stops_train_py_and_keeps_iteration_1(tmp_path):
    out = str(tmp_path / "run")
    argv = ["--engine=jax", "--preset=fast", "--num_players=3", "--episode_length=20",
            "--tax_period=10", "--frame_stack=1", "--num_envs=2",
            "--rollout_fragment_length=20", "--num_iterations=4", "--checkpoint_every=1",
            f"--output_dir={out}"]
    code = POISONED_TRAIN.format(tests=os.path.join(ROOT, "tests"), argv=argv,
                                 script=os.path.join(ROOT, "scripts", "train.py"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=900,
                          env={**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "c")})
    assert done.returncode == runlog.DIVERGED_EXIT_CODE, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    line = [x for x in done.stderr.splitlines() if "diverged" in x]
    assert len(line) == 1, done.stderr[-3000:]
    first = os.path.join(out, "checkpoints", "iter_000001")
    assert "training diverged at iteration 2: non-finite" in line[0]
    assert "the players' parameters" in line[0] and first in line[0]
    # Only iteration 1's checkpoint, log line and no summary claiming success.
    assert os.listdir(os.path.join(out, "checkpoints")) == ["iter_000001"]
    assert [r["iteration"] for r in runlog.read_progress(out)] == [1]
    assert not os.path.exists(os.path.join(out, runlog.SUMMARY_FILE))
    assert not os.path.exists(os.path.join(out, "learning_curve.png"))
    with open(os.path.join(out, "run_config.json")) as f:
        assert json.load(f)["engine"] == "jax"


def test_non_finite_names_each_module_loss_and_parameters():
    nan, inf = float("nan"), float("inf")
    losses = {"players": {"total_loss": 1.0, "policy_loss": nan, "vf_loss": 0.5,
                          "entropy": 1.0, "grad_norm": nan},  # grad_norm: not a loss key
              "principal": {"total_loss": inf, "policy_loss": None}}
    assert runlog.non_finite(losses, {"players": True, "principal": False}) == [
        "the players' policy loss", "the principal's total loss", "the principal's parameters"]
    assert runlog.non_finite({"players": {"total_loss": 1.0}}, {"players": True}) == []
    error = runlog.TrainingDiverged(7, ["the players' policy loss"], "/r/checkpoints/iter_000005")
    assert str(error).startswith("training diverged at iteration 7: non-finite the players' "
                                 "policy loss; the last finite checkpoint is "
                                 "/r/checkpoints/iter_000005")
    assert "--lr" in str(error) and "\n" not in str(error)


def test_the_rllib_trainer_checks_each_result_and_its_weights():
    pytest.importorskip("ray")
    from sed_meltingpot.training.rllib.trainer import check_finite

    result = {"learners": {"players": {"total_loss": 0.1, "policy_loss": 0.2},
                           "principal": {"total_loss": 0.3}, "__all_modules__": {"x": 1}}}
    check_finite(result, {"players": True, "principal": True}, 3, None)  # sound: no error
    result["learners"]["players"]["policy_loss"] = float("nan")
    with pytest.raises(runlog.TrainingDiverged, match="iteration 3: non-finite the players' "
                       "policy loss; the last finite checkpoint is c2"):
        check_finite(result, {"players": True, "principal": True}, 3, "c2")
    result["learners"]["players"]["policy_loss"] = 0.2
    with pytest.raises(runlog.TrainingDiverged, match="the principal's parameters"):
        check_finite(result, {"players": True, "principal": False}, 4, "c2")


@pytest.mark.slow
def test_an_rllib_run_with_a_huge_lr_stops_without_saving(tmp_path):
    """A real RLlib run (the tiny game of tests/test_training_runs.py) at lr 1e30: its
    losses are NaN in the first iteration (RLlib zeroes NaN gradients, so the weights
    may stay finite: the losses are what shows it)."""
    ray = pytest.importorskip("ray")
    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.runs.train_config import TrainConfig, preset
    from sed_meltingpot.training.rllib.trainer import train

    tiny = TrainConfig(num_iterations=3, train_batch_size=52, rollout_fragment_length=52,
                       num_env_runners=0, **{**preset("fast"), "minibatch_size": 26},
                       principal_minibatch_size=2, lr=1e30)
    out = str(tmp_path / "run")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(runlog.TrainingDiverged, match="iteration 1: non-finite .*loss"):
            train(GameConfig(episode_length=100, tax_period=50), tiny, out,
                  checkpoint_every=1, print_fn=lambda line: None)
    finally:
        ray.shutdown()
    assert not os.path.exists(os.path.join(out, "checkpoints"))
    assert not os.path.exists(os.path.join(out, runlog.SUMMARY_FILE))
    assert runlog.read_progress(out) == []


#: scripts/experiment.py with its runs replaced by one that diverges (the trainer's
#: TrainingDiverged, as an in-process run raises it).
DIVERGING_EXPERIMENT = """
import runpy, sys
from sed_meltingpot.experiment import jobs
from sed_meltingpot.runs.runlog import TrainingDiverged

def run_jobs(*args, **kwargs):
    raise TrainingDiverged(7, ["the players' policy loss"], "RUN/checkpoints/iter_000006")

jobs.run_jobs = run_jobs
sys.argv = ["experiment.py"] + {argv!r}
runpy.run_path({script!r}, run_name="__main__")
"""


def test_a_diverged_run_ends_experiment_py_in_one_line(tmp_path):
    argv = ["--grid=smoke", "--engine=jax", "--principals=learned,none", "--seeds=0",
            "--objectives=voted", "--welfare_on=apples", f"--output_dir={tmp_path / 'exp'}"]
    code = DIVERGING_EXPERIMENT.format(argv=argv, script=os.path.join(ROOT, "scripts",
                                                                       "experiment.py"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=600)
    assert done.returncode == runlog.DIVERGED_EXIT_CODE, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = [x for x in done.stderr.splitlines() if "diverged" in x]
    assert len(line) == 1 and "iteration 7" in line[0] and "iter_000006" in line[0], line
    assert not os.path.exists(tmp_path / "exp" / "results.csv")


#: scripts/experiment.py with its runs replaced by a job that a signal stopped.
STOPPED_EXPERIMENT = """
import runpy, sys
from sed_meltingpot.experiment import jobs

def run_jobs(*args, **kwargs):
    raise jobs.TrainingStopped("training of RUN was stopped before its budget; the same "
                               "command trains it again")

jobs.run_jobs = run_jobs
sys.argv = ["experiment.py"] + {argv!r}
runpy.run_path({script!r}, run_name="__main__")
"""


def test_a_stopped_job_ends_experiment_py_in_one_line(tmp_path):
    """Exit 130, one line on stderr, no results; the plan's first line states the
    budget that --num_iterations set beside the grid's own description."""
    argv = ["--grid=smoke", "--engine=jax", "--principals=learned,none", "--seeds=0",
            "--objectives=voted", "--welfare_on=apples", "--num_iterations=3",
            f"--output_dir={tmp_path / 'exp'}"]
    code = STOPPED_EXPERIMENT.format(argv=argv, script=os.path.join(ROOT, "scripts",
                                                                     "experiment.py"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=600)
    assert done.returncode == 130, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = [x for x in done.stderr.splitlines() if "stopped" in x]
    assert len(line) == 1 and "RUN" in line[0] and "finished runs are kept" in line[0], line
    assert "here --num_iterations=3 iterations per run instead" in done.stdout.splitlines()[0]
    assert not os.path.exists(tmp_path / "exp" / "results.csv")
