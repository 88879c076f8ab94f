"""Two-timescale bandit principals (design/two_timescale.py): when a principal step
starts and is scored, which episodes score it, and that the jax trainer plays the arms
it is given (issue 30, item 2). Numbers are worked by hand from the docstrings' rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sed_meltingpot.design import two_timescale as tt
from sed_meltingpot.design.bandits import UCB

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


def config(**changes) -> tt.TwoTimescaleConfig:
    return tt.TwoTimescaleConfig(**{"designer_steps": 4, "designer_window": 0.5,
                                    "designer_arms": "0,0,0;1,1,1", "ucb_c": 0.0,
                                    "designer_shuffle": False, **changes})


def test_window_start_by_hand():
    # The last ceil(window * steps) iterations of a step are scored.
    assert config(designer_steps=4, designer_window=0.5).window_start() == 2
    assert config(designer_steps=10, designer_window=0.5).window_start() == 5
    assert config(designer_steps=10, designer_window=0.25).window_start() == 7  # ceil(2.5)=3
    assert config(designer_steps=3, designer_window=1.0).window_start() == 0
    assert config(designer_steps=5, designer_window=0.01).window_start() == 4  # at least one


def test_a_step_holds_one_arm_and_is_scored_on_its_windows_episodes():
    d = tt.TwoTimescale("ucb", config(), seeds=[7], num_brackets=3, fixed_eta=1.0)
    # Step 0 (iterations 0-3): UCB pulls arm 0 first; only iterations 2 and 3 score it.
    for it, episodes in enumerate([[100.0], [100.0], [10.0, 20.0], [30.0]]):
        assert d.rates_for(it).tolist() == [[0.0, 0.0, 0.0]]
        d.observe(it, 0, np.asarray(episodes))
    assert d.history[0] == [{"step": 0, "last_iteration": 4, "arm": [0.0, 0.0, 0.0],
                             "score": 20.0, "episodes": 3}]  # mean(10, 20, 30)
    # Step 1: arm 1 (never pulled), scored 50 on iteration 7's episodes alone (NaN dropped).
    for it, episodes in zip(range(4, 8), [[], [1.0], [], [50.0, float("nan")]], strict=True):
        assert d.rates_for(it).tolist() == [[1.0, 1.0, 1.0]]
        d.observe(it, 0, np.asarray(episodes))
    assert d.history[0][1]["score"] == 50.0 and d.history[0][1]["episodes"] == 1
    # Step 2: with c = 0 UCB is greedy: arm 1 (mean 50 > 20); best() agrees.
    assert d.rates_for(8).tolist() == [[1.0, 1.0, 1.0]]
    summary = d.summary(0)
    assert summary["best_rates"] == [1.0, 1.0, 1.0]
    assert summary["counts"] == [1, 1] and summary["means"] == [20.0, 50.0]


def test_ucb_detrend_reaches_the_bandit_and_its_record():
    """--ucb_detrend=1: arm 0 scores 10 then 14 (steps 0 and 2), arm 1 16 (step 1); the
    trend of 4 a step makes arm 0 the better (effects 14 and 12, by hand in
    tests/test_design.py), where the means (12, 16) pick arm 1."""
    d = tt.TwoTimescale("ucb", config(ucb_detrend=1, designer_steps=1, designer_window=1.0),
                        seeds=[0], num_brackets=3, fixed_eta=1.0)
    assert d.bandits[0].detrend == 1
    for it, (arm, w) in enumerate(((0.0, 10.0), (1.0, 16.0))):
        assert d.rates_for(it)[0, 0] == arm  # each arm once, in order
        d.observe(it, 0, np.asarray([w]))
    assert d.rates_for(2)[0, 0] == 1.0  # each arm once: the means decide (16 > 10)
    d.observe(2, 0, np.asarray([20.0]))  # arm 1 again: 16, 20
    # Arm 0 at step 0 (10), arm 1 at steps 1 and 2 (16, 20): tc = -1, 0, 1; arm 1 gives
    # b = 4, e1 = 16; arm 0 gives 10 = e0 - 4, e0 = 14. The means: 10 and 18.
    summary = d.summary(0)
    assert summary["means"] == [10.0, 18.0]
    np.testing.assert_allclose(summary["estimates"], [14.0, 16.0])
    assert summary["best_rates"] == [1.0, 1.0, 1.0]


def test_a_step_without_episodes_in_its_window_is_not_scored():
    d = tt.TwoTimescale("ucb", config(), seeds=[0], num_brackets=3, fixed_eta=0.5)
    for it in range(4):
        d.rates_for(it)
        d.observe(it, 0, np.asarray([5.0] if it < 2 else []))  # ended before the window
    assert d.history[0] == [] and d.summary(0)["best_rates"] is None


def test_seeds_are_independent_bandits_and_runs_repeat():
    def run(seeds):
        d = tt.TwoTimescale("egreedy", config(epsilon=0.5, designer_steps=1,
                                              designer_window=1.0), seeds, 3, 1.0)
        pulled = []
        for it in range(12):
            rates = d.rates_for(it)
            pulled.append(rates[:, 0].tolist())
            for k in range(len(seeds)):  # seed k's W: 10 under arm 0, 20 under arm 1
                d.observe(it, k, np.asarray([10.0 + 10.0 * rates[k, 0]]))
        return pulled

    both = run([3, 4])
    assert both == run([3, 4])  # a function of the seeds alone
    assert [p[0] for p in both] == [p[0] for p in run([3])]  # seed 3 alone: the same pulls
    assert [p[0] for p in both] != [p[1] for p in both]  # the seeds explore differently


def test_bandit_choice_matches_the_bandit_module():
    d = tt.TwoTimescale("ucb", config(ucb_c=5.0, designer_steps=1, designer_window=1.0),
                        [0], 3, 1.0)
    mirror = UCB([(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)], c=5.0)
    for it, w in enumerate([3.0, 1.0, 2.0, 9.0, 0.0, 4.0]):
        arm = tuple(float(r) for r in d.rates_for(it)[0])
        assert arm == mirror.propose(np.random.default_rng(0))
        d.observe(it, 0, np.asarray([w]))
        mirror.observe(arm, w)


@pytest.mark.parametrize("changes, message", [
    ({"designer_steps": 0}, "--designer_steps=0"),
    ({"designer_window": 0.0}, "--designer_window=0.0"),
    ({"designer_arms": "0,0;1,1"}, "each arm needs 3 rates"),
    ({"designer_arms": "0,0,2"}, "--designer_arms='0,0,2'"),
    ({"designer_arms": "nonsense"}, "named sets: schedules, grid"),
    ({"epsilon": 1.5}, "--epsilon=1.5"),
    ({"thompson_noise_sd": 0.0}, "--thompson_noise_sd"),
    ({"ucb_detrend": 3}, "--ucb_detrend=3 must be 0, 1 or 2"),
])
def test_bad_settings_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        config(**changes).validate(3)


def test_each_seed_gets_the_arms_in_its_own_order():
    shuffled = config(designer_arms="grid", designer_shuffle=True)
    orders = {seed: tt.seed_arms(shuffled, 3, seed) for seed in range(4)}
    for arms in orders.values():  # a permutation of the 27 arms
        assert sorted(arms) == sorted(shuffled.arms(3)) and len(arms) == 27
    assert len({arms for arms in orders.values()}) == 4  # (27! orders: no two alike here)
    assert tt.seed_arms(shuffled, 3, 2) == orders[2]  # a function of the seed
    d = tt.TwoTimescale("ucb", shuffled, [0, 1], 3, 1.0)  # UCB pulls its own first arm
    assert [tuple(r) for r in d.rates_for(0).tolist()] == [orders[0][0], orders[1][0]]


def test_named_arm_sets():
    assert len(config(designer_arms="grid").arms(3)) == 27
    assert config(designer_arms="schedules").arms(3)[-1] == (1.0, 1.0, 1.0)


def test_train_script_plays_the_arms_and_records_the_choice(tmp_path):
    """The quickstart game, 2 seeds, principal steps of 2 iterations: every episode's
    rates are the arm its step holds (UCB pulls the arms in order first)."""
    out = tmp_path / "ucb"
    proc = subprocess.run(
        [PYTHON, "scripts/train.py", "--engine=jax", "--preset=quickstart", "--principal=ucb",
         "--voting_rule=fixed:1", "--num_iterations=6", "--designer_steps=2",
         "--designer_arms=0,0,0;1,1,1;0.5,0,1", "--nodesigner_shuffle", "--num_seeds=2",
         f"--output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    arms = [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.0, 1.0]]
    for seed in (0, 1):
        folder = out / f"seed_{seed}"
        record = json.loads((folder / "designer.json").read_text())
        assert [s["arm"] for s in record["steps"]] == arms
        # Episodes of 200 steps end every iteration (16 games x 200 steps): each step is
        # scored on its second iteration's 16 episodes.
        assert [s["episodes"] for s in record["steps"]] == [16, 16, 16]
        log = [json.loads(line) for line in open(folder / "progress.jsonl")]
        played = [np.asarray(r["last_episode_period_rates"])[0].round(6).tolist() for r in log]
        assert played == [arms[0], arms[0], arms[1], arms[1], arms[2], arms[2]]
        best = int(np.argmax([s["score"] for s in record["steps"]]))
        assert record["best_rates"] == arms[best]
        config_json = json.loads((folder / "run_config.json").read_text())
        assert config_json["twin"]["designer"]["algorithm"] == "ucb"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["designer"]["best_rates"] == arms[best]
    # evaluate.py plays the committed arm as the run's principal, without --fixed.
    record = json.loads((out / "seed_0" / "designer.json").read_text())
    proc = subprocess.run(
        [PYTHON, "scripts/evaluate.py", f"--checkpoint={out / 'seed_0'}", "--dry_run",
         f"--output_dir={tmp_path / 'eval'}"], cwd=ROOT, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    choice = ",".join(f"{r:g}" for r in record["best_rates"])
    assert f"its principal committed to {choice} (designer.json)" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--principal=ucb"], "--principal=ucb trains only with --engine=jax"),
    (["--engine=jax", "--designer_steps=3"], "mean(s) nothing without a two-timescale"),
    (["--engine=jax", "--principal=thompson", "--designer_window=2"], "designer_window"),
    (["--engine=jax", "--principal=egreedy", "--designer_arms=1,1"], "each arm needs 3"),
])
def test_train_script_refuses_bad_two_timescale_flags(args, message, tmp_path):
    proc = subprocess.run([PYTHON, "scripts/train.py", "--preset=quickstart", "--dry_run",
                           f"--output_dir={tmp_path / 'x'}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-1500:]
