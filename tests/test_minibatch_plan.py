"""The players' minibatch plan by count (`--num_minibatches`, issue 32 item 2) and the
profile of one training iteration (`scripts/profile_iteration.py`)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_script_errors import ROOT, _check, run_script

from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.perf.iteration_profile import profile_iteration, table
from sed_meltingpot.runs.train_config import TrainConfig, preset
from sed_meltingpot.training.jax import ppo
from tests.twin_toy_game import ToyGame

TOY = GameConfig(num_players=3, episode_length=20, tax_period=10)
TOY_ROWS = 2 * 20 * 3  # games x steps x players per iteration
PROFILE = os.path.join(ROOT, "scripts", "profile_iteration.py")
QUICK = ["--num_envs=2", "--rollout_fragment_length=50"]  # 2 x 50 x 7 = 700 rows


def toy_config(**train_changes) -> ppo.TwinTrainConfig:
    train = TrainConfig(num_iterations=2, frame_stack=1,
                        **{**preset("fast"), **train_changes})
    return ppo.TwinTrainConfig(TOY, train, num_envs=2, rollout_length=20)


# --------------------------------------------------------------- the plan
def test_the_plan_by_size_is_unchanged_and_by_count_splits_the_rows():
    assert ppo.minibatch_plan(700, 256) == (256, 2)  # 188 rows left out per epoch
    assert ppo.minibatch_plan(100, 256) == (100, 1)  # fewer rows: one smaller minibatch
    assert ppo.minibatch_plan(700, 256, 4) == (175, 4)  # the size plays no part
    assert ppo.minibatch_plan(700, 1, 3) == (233, 3)  # 3 x 233 = 699: one row left out
    assert ppo.minibatch_plan(700, 256, 700) == (1, 700)
    assert ppo.minibatch_plan(22400, 256, 16) == (1400, 16)  # fast preset, 16 games


@pytest.mark.parametrize("count", [701, 10**6, -1])
def test_a_count_above_the_rows_is_refused_in_one_line(count):
    with pytest.raises(ValueError, match=rf"--num_minibatches={count} is outside \[0, 700\]"):
        ppo.minibatch_plan(700, 256, count)


def test_the_config_plans_the_players_rows_and_checks_the_count():
    assert toy_config().players_rows == TOY_ROWS == 120
    assert toy_config(num_minibatches=7).players_minibatch_plan == (17, 7)  # 1 row left out
    assert toy_config(minibatch_size=16).players_minibatch_plan == (16, 7)
    # The principal keeps its own plan: 2 games x 2 periods = 4 turns, minibatch 32.
    assert toy_config(num_minibatches=7).principal_minibatch_plan == (4, 1)
    with pytest.raises(ValueError, match=r"--num_minibatches=121 is outside \[0, 120\]"):
        toy_config(num_minibatches=121).validate()
    with pytest.raises(ValueError, match="num_minibatches=-1 must be an integer >= 0"):
        TrainConfig(num_minibatches=-1).validate()


# ------------------------------------------------------------ in training
def adam_steps(opt_state) -> int:
    """The Adam step count of an optimiser state (`ppo.make_optimizer`'s chain)."""
    is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
    (adam,) = [s for s in jax.tree_util.tree_leaves(opt_state, is_leaf=is_adam) if is_adam(s)]
    return int(adam.count)


def trained(config: ppo.TwinTrainConfig, iterations: int = 2):
    fns = ppo.make_functions(config, ToyGame(TOY, "tiles", 1))
    state = fns.init(jax.random.PRNGKey(5), jnp.array([0.2, 0.5, 0.8]))
    update = jax.jit(fns.update)
    metrics = []
    for _ in range(iterations):
        state, m = update(state)
        metrics.append(m)
    return state, metrics


def update_program(config: ppo.TwinTrainConfig) -> str:
    """The StableHLO text of `config`'s jitted update (traced, not compiled)."""
    fns = ppo.make_functions(config, ToyGame(TOY, "tiles", 1))
    state = jax.eval_shape(fns.init, jax.random.PRNGKey(0), jnp.zeros(3))
    return jax.jit(fns.update).lower(state).as_text()


def test_a_count_of_rows_over_size_is_the_size_plans_very_program():
    """120 rows: 4 minibatches by count and minibatches of 30 rows by size lower to the
    same program (so the same numbers, bit for bit, from the same inputs; the slow test
    below trains both), with the epoch's shuffled order cut into 4 x 30 indices; the
    preset's size alone (256) cuts it into 1 x 120."""
    by_count = update_program(toy_config(num_minibatches=4))
    assert by_count == update_program(toy_config(minibatch_size=30))
    assert "tensor<4x30xi32>" in by_count
    by_preset_size = update_program(toy_config())
    assert "tensor<1x120xi32>" in by_preset_size and "tensor<4x30xi32>" not in by_preset_size


@pytest.mark.slow  # two compiles of the toy's update: about 1 minute on 2 loaded cores
def test_a_count_of_rows_over_size_trains_bit_for_bit_as_the_size_plan():
    """The same two plans trained for 2 iterations: every leaf of the state and the
    metrics equal. No tax (a learned principal keeps its own plan)."""
    by_size = trained(toy_config(minibatch_size=30, principal="none"))
    by_count = trained(toy_config(num_minibatches=4, principal="none"))
    a, b = jax.tree_util.tree_leaves(by_size), jax.tree_util.tree_leaves(by_count)
    assert len(a) == len(b) > 30
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The count reached the update: 2 iterations x 2 epochs x 4 minibatch steps (the
    # size plan of the preset's 256 would have stepped 2 x 2 x 1 = 4 times).
    assert adam_steps(by_count[0].players_opt) == 16


def test_observations_stay_uint8_from_the_rollout_to_the_batch():
    """The players' images are kept as uint8 (the network converts them), so a row of
    the toy's 11 x 11 x 3 image with 6 float32 features costs 363 + 24 bytes, plus 4
    bytes each of action, logp, advantage and target in the batch."""
    fns = ppo.make_functions(toy_config(), ToyGame(TOY, "tiles", 1))
    state = jax.eval_shape(fns.init, jax.random.PRNGKey(0), jnp.zeros(3))
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    after, roll = jax.eval_shape(fns.stages.rollout, state, key, jnp.float32(1))
    assert roll["players"].image.dtype == jnp.uint8
    assert roll["players"].image.shape == (2, 10, 2, 3, 11, 11, 3)  # periods, steps, games
    batch = jax.eval_shape(fns.stages.players_batch, after, roll)
    assert batch["image"].dtype == jnp.uint8 and batch["image"].shape == (TOY_ROWS, 11, 11, 3)
    row_bytes = sum(np.prod(v.shape) * v.dtype.itemsize for v in batch.values()) / TOY_ROWS
    assert row_bytes == 363 + 6 * 4 + 4 * 4


# ---------------------------------------------------------------- profile
def test_the_profile_times_each_stage_of_an_iteration():
    """On the toy game with 7 minibatches of 17 rows (one row left out each epoch), no
    tax (the slow test below profiles a learned principal on the twin)."""
    config = toy_config(num_minibatches=7, principal="none")
    result = profile_iteration(config, repeats=1, game=ToyGame(TOY, "tiles", 1))
    names = [r.name for r in result.rows]
    assert names == ["rollout (env steps + policy forward)", "GAE and batches (+ last values)",
                     "players' update", "  per epoch (2 epochs)",
                     "  per minibatch step (7 x 17 rows)"]
    ms = {r.name: r.ms for r in result.rows}
    assert all(v > 0 for v in ms.values()) and result.whole_ms > 0
    assert ms["  per epoch (2 epochs)"] == pytest.approx(ms["players' update"] / 2)
    assert ms["  per minibatch step (7 x 17 rows)"] == pytest.approx(ms["players' update"] / 14)
    lines = table(result)
    assert lines[:2] == ["| stage | ms | share |", "|---|---:|---:|"]
    shares = [float(line.split("|")[3].strip().rstrip("%")) for line in lines[2:]
              if line.split("|")[3].strip() and "sum" not in line and "whole" not in line]
    assert len(shares) == 3 and sum(shares) == pytest.approx(100, abs=0.3)


def test_profile_script_dry_run_prints_the_plan_and_refuses_a_bad_count():
    ok = subprocess.run([sys.executable, PROFILE, *QUICK, "--num_minibatches=4", "--dry_run"],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "700 players' rows per iteration; 2 epochs of 4 minibatches of 175 rows" in ok.stdout
    bad = subprocess.run([sys.executable, PROFILE, *QUICK, "--num_minibatches=701",
                          "--dry_run"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode != 0
    assert "--num_minibatches=701 is outside [0, 700]" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow  # compiles five programs of the twin: 1-2 minutes on 2 loaded cores
def test_profile_script_quick_run_prints_the_table(tmp_path):
    out = subprocess.run([sys.executable, PROFILE, *QUICK, "--repeats=1"], capture_output=True,
                         text=True, cwd=ROOT, timeout=900,  # a fresh compile cache
                         env={**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    for row in ("| rollout (env steps + policy forward) |", "| players' update |",
                "|   per minibatch step (2 x 256 rows) |", "| principal's update |",
                "| sum of the stages |", "| the whole update as one program |"):
        assert row in out.stdout, (row, out.stdout)


# ---------------------------------------------------------------- train.py
def test_train_py_takes_the_flag_with_the_jax_engine_only(tmp_path):
    out = str(tmp_path / "run")
    cases = [
        (["--engine=jax", "--preset=fast", "--num_minibatches=4", f"--output_dir={out}"],
         "ok", ["num_minibatches=4"]),
        # 16 games x 200 steps x 7 players = 22,400 rows
        (["--engine=jax", "--num_minibatches=22401", f"--output_dir={out}"], "usage",
         ["--num_minibatches=22401 is outside [0, 22400]"]),
        (["--engine=jax", "--num_minibatches=-1", f"--output_dir={out}"], "usage",
         ["num_minibatches"]),
        (["--num_minibatches=4", f"--output_dir={out}"], "usage",
         ["--num_minibatches mean(s) nothing with --engine=rllib"]),
    ]
    _check(run_script("train.py", [argv for argv, _, _ in cases], str(tmp_path)), cases)
    assert not os.path.exists(out)  # a dry run writes nothing
