"""The results experiment (issues 10, 16): plan, statistics, outputs, and a real smoke grid.

Statistics are checked against independent computations: Welch's and the paired t by
their textbook formulas with the p-value from tests/t_distribution.py (not scipy), the
signed-rank p by counting sign patterns, Holm's correction on a hand-worked example.
The orchestration is checked end to end: with a stand-in engine whose episodes are
known (fast), and with `scripts/experiment.py --grid=smoke` training and evaluating
for real with each engine (minutes).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import t_distribution

from sed_meltingpot import evaluation
from sed_meltingpot import experiment as ex
from sed_meltingpot.core import voting, welfare
from sed_meltingpot.experiment import engines
from sed_meltingpot.experiment.jobs import best_fixed_jobs, plan_jobs, run_jobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def committed_rows(results_dir: str) -> list[dict]:
    """The rows of a committed docs/results/<results_dir>/results.csv."""
    return ex.read_csv(os.path.join(ROOT, "docs", "results", results_dir, "results.csv"))
PYTHON = sys.executable
BOTH = ("apples", "taxed")


# ------------------------------------------------------------------- voting
def test_fixed_voting_rule_ignores_types_and_validates_eta():
    assert voting.vote("fixed:0.25", [0.9, 0.8, 0.7]) == 0.25
    assert voting.vote("fixed:1", [0.0]) == 1.0
    assert voting.fixed_eta("mean") is None
    for bad in ("fixed:1.5", "fixed:-0.1", "fixed:abc", "fixed:nan", "fixed:"):
        with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]"):
            voting.get_voting_rule(bad)
    # The array form (used by the twin) gives one eta per game.
    cores = voting.vote_core("fixed:0.5")(np.zeros((3, 4)), np)
    np.testing.assert_array_equal(cores, [0.5, 0.5, 0.5])


def test_fixed_voting_rule_in_game_config_and_flags():
    from sed_meltingpot.game.config import GameConfig

    GameConfig(voting_rule="fixed:0.5").validate()
    with pytest.raises(ValueError, match="fixed:2"):
        GameConfig(voting_rule="fixed:2").validate()
    out = subprocess.run([PYTHON, "scripts/train.py", "--voting_rule=fixed:3"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "--voting_rule" in out.stderr and "fixed:3" in out.stderr and "[0, 1]" in out.stderr


def test_fixed_vote_sets_the_games_eta_without_changing_types():
    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.game.sed_game import SEDGame

    game = SEDGame(GameConfig(num_players=3, episode_length=50, tax_period=25,
                              voting_rule="fixed:0.2"), seed=3)
    try:
        game.reset()
        assert game.eta == 0.2
        np.testing.assert_allclose(game.selfishness, SEDGame(
            GameConfig(num_players=3, episode_length=50, tax_period=25), seed=3).selfishness)
    finally:
        game.close()


def test_objective_labels_and_their_rules():
    assert ex.rule_of("eta=0.5") == "fixed:0.5" and ex.rule_of("voted") == "mean"
    assert ex.rule_of("eta=0.25") == "fixed:0.25" and ex.eta_of("eta=0.75") == 0.75
    assert ex.eta_of("voted") is None
    for bad in ("eta=2", "median", "sampled"):
        with pytest.raises(ValueError):
            ex.rule_of(bad)
    assert ex.sampled_objectives(["eta=0", "voted"], (0.0, 0.25, 1.0)) == [
        "eta=0", "voted", "eta=0.25", "eta=1"]
    assert ex.SCHEDULES["flat100"] == (1.0, 1.0, 1.0)
    assert ex.principal_spec("flat100") == "fixed:1,1,1"
    assert ex.principal_spec(ex.SAMPLED) == "learned"
    assert ex.principal_spec(ex.BEST_FIXED, (0.0, 0.5, 1.0)) == "fixed:0,0.5,1"
    with pytest.raises(ValueError, match="best_fixed"):
        ex.principal_spec(ex.BEST_FIXED)


def test_grid_validation_names_the_field():
    import dataclasses

    for name in ex.GRIDS:
        ex.GRIDS[name].validate()
    small = ex.GRIDS["small"]
    assert small.eval_episodes >= 64 and small.lua_episodes < small.eval_episodes
    assert small.welfare_on == BOTH
    with pytest.raises(ValueError, match="--welfare_on=money"):
        dataclasses.replace(small, welfare_on=("money",)).validate()
    with pytest.raises(ValueError, match="lua_episodes=0"):
        dataclasses.replace(small, lua_episodes=0).validate()
    with pytest.raises(ValueError, match="rounds_per_episode=2"):
        dataclasses.replace(small, game=dataclasses.replace(
            small.game, rounds_per_episode=2)).validate()


# --------------------------------------------------------------- statistics
def test_welch_matches_the_textbook_formula():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    # By hand: means 2.5 and 6; sample variances 5/3 and 10.
    va, vb = (5 / 3) / 4, 10 / 5
    t = (2.5 - 6.0) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 4)
    p = 2 * (1 - t_distribution.student_t_cdf(abs(t), df))
    res = ex.welch_test(a, b)
    assert res["diff"] == pytest.approx(-3.5)
    assert res["t"] == pytest.approx(t, rel=1e-10)
    assert res["df"] == pytest.approx(df, rel=1e-10)
    assert res["p"] == pytest.approx(p, rel=1e-6)
    assert (res["n_a"], res["n_b"]) == (4, 5)


def test_welch_degenerate_samples_give_nan():
    assert math.isnan(ex.welch_test([1.0], [1.0, 2.0])["p"])
    assert math.isnan(ex.welch_test([1.0, 1.0], [2.0, 2.0])["p"])  # no spread at all
    assert ex.welch_test([1.0, 1.0], [2.0, 2.0])["diff"] == -1.0


def signed_rank_p(d):
    """Exact two-sided signed-rank p by enumerating the 2^n sign patterns (no ties)."""
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    w_minus = ranks[np.asarray(d) < 0].sum()
    w_plus = ranks.sum() - w_minus
    stat = min(w_minus, w_plus)
    n = len(d)
    sums = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s)
            for signs in itertools.product([0, 1], repeat=n)]
    return min(1.0, 2 * sum(s <= stat for s in sums) / 2 ** n)


def test_paired_t_test_by_hand():
    # Seed 9 has no partner and is left out; the differences are 2, 1, -0.5, 3, 4.
    a = {0: 3.0, 1: 5.0, 2: 4.0, 3: 8.0, 4: 6.0}
    b = {4: 2.0, 3: 5.0, 2: 4.5, 1: 4.0, 0: 1.0, 9: 100.0}
    d = [2.0, 1.0, -0.5, 3.0, 4.0]
    mean = sum(d) / 5  # 1.9
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 4)
    t = mean / (sd / math.sqrt(5))
    p = 2 * (1 - t_distribution.student_t_cdf(abs(t), 4))
    res = ex.paired_test(a, b)
    assert res["n"] == 5 and res["df"] == 4
    assert res["diff"] == pytest.approx(1.9)
    assert res["t"] == pytest.approx(t, rel=1e-10)
    assert res["p"] == pytest.approx(p, rel=1e-6)
    # |d| ranks 3, 2, 1, 4, 5: W- = 1, and 2 of the 32 sign patterns have a sum <= 1.
    assert res["p_signed_rank"] == pytest.approx(2 * 2 / 32)
    assert signed_rank_p(d) == pytest.approx(0.125)
    # Pairing matters: the same values unpaired (Welch) give another p.
    assert ex.welch_test(list(a.values()), list(b.values())[:5])["p"] != pytest.approx(res["p"])


def test_signed_rank_cannot_reach_005_with_five_seeds_but_the_t_test_can():
    a = {s: 10.0 + s + 0.1 * s * s for s in range(5)}
    b = {s: float(s) for s in range(5)}  # every difference positive
    res = ex.paired_test(a, b)
    assert res["p_signed_rank"] == pytest.approx(2 / 32)  # the smallest there is
    assert res["p"] < 1e-3


def test_paired_test_degenerate_cases_give_nan():
    assert math.isnan(ex.paired_test({0: 1.0}, {0: 2.0})["p"])  # one pair
    same = ex.paired_test({0: 3.0, 1: 4.0}, {0: 1.0, 1: 2.0})  # differences do not vary
    assert math.isnan(same["p"]) and same["diff"] == 2.0 and same["n"] == 2
    assert ex.paired_test({0: 1.0, 1: math.nan, 2: 3.0}, {0: 0.0, 1: 1.0, 2: 1.0})["n"] == 2
    # Float32 rounding of the same episodes is no spread (values about 30, eps 2e-6).
    rounding = ex.paired_test({0: 30.0 + 4e-7, 1: 30.0 - 3e-7, 2: 30.0}, {0: 30.0, 1: 30.0,
                                                                          2: 30.0})
    assert math.isnan(rounding["p"]) and rounding["n"] == 3


def test_holm_hand_example():
    # Sorted p: 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04;
    # the running maximum makes the last 0.06.
    assert ex.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ex.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = ex.holm([0.02, math.nan, 0.04])  # NaN is left out of the family (m = 2)
    assert adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])


def test_paired_family_holm_by_hand():
    """One principal against three baselines: d = (1, 2, 3) gives t = 2 / (1 / sqrt 3)
    on 2 df; d = (5, 0, 4) gives t = 3 / (sqrt 7 / sqrt 3); identical values give no p
    and leave the family (m = 2), so the smaller p is doubled, the larger kept (or
    raised to the running maximum)."""
    ours = {0: 10.0, 1: 12.0, 2: 14.0}
    family = ex.paired_family(ours, {"a": {0: 9.0, 1: 10.0, 2: 11.0}, "same": dict(ours),
                                     "c": {0: 5.0, 1: 12.0, 2: 10.0}})
    assert list(family) == ["a", "same", "c"]
    p_a = 2 * (1 - t_distribution.student_t_cdf(2 / (1 / math.sqrt(3)), 2))
    p_c = 2 * (1 - t_distribution.student_t_cdf(3 / (math.sqrt(7) / math.sqrt(3)), 2))
    assert family["a"]["diff"] == pytest.approx(2.0) and family["c"]["diff"] == pytest.approx(3.0)
    assert family["a"]["p"] == pytest.approx(p_a, rel=1e-6) and p_a < p_c
    assert family["a"]["p_holm"] == pytest.approx(min(1.0, 2 * p_a), rel=1e-6)
    assert family["c"]["p_holm"] == pytest.approx(max(p_c, 2 * p_a), rel=1e-6)
    assert math.isnan(family["same"]["p"]) and math.isnan(family["same"]["p_holm"])


# --------------------------------------------------------------------- plan
def test_two_timescale_principals_are_planned_like_learned():
    """One run per (definition, objective, seed), shared at eta=1, evaluated on the
    objective it was trained for with its own players; no best_fixed search of its own."""
    objectives, seeds = list(ex.OBJECTIVES), [0, 1]
    tasks = ex.plan_training(objectives, ["ucb", "none"], seeds, BOTH)
    ucb = [t for t in tasks if t.principal == "ucb"]
    assert len(ucb) == 7 * 2 and len(tasks) == (7 + 1) * 2
    assert ex.TrainTask("ucb", "eta=0.5", 3, "taxed").key == "ucb__eta0p5__taxed__seed3"
    assert ex.TrainTask("ucb", "eta=1", 3, "apples").spec == "none"  # before its first arm
    assert ex.principal_spec("thompson", (1.0, 0.5, 0.0)) == "fixed:1,0.5,0"
    items = ex.plan_evaluation(tasks, objectives, ["ucb", "none", ex.BEST_FIXED], BOTH)
    mine = [i for i in items if i.task.principal == "ucb"]
    assert all(i.principal == "ucb" and i.objective == i.task.objective for i in mine)
    assert sorted((w, i.objective, i.task.seed) for i in mine for w in i.welfare_on) == sorted(
        (w, o, s) for w in BOTH for o in objectives for s in seeds)
    assert not any(i.is_search for i in items)  # best_fixed searches learned runs only


def test_the_search_principal_is_planned_after_its_search():
    """No first-stage run of its own; its choice trains fresh players per reported seed,
    reusing the scripted run of the same schedule and seed; its search's settings do not
    depend on the reported seeds (so calls of other seeds resume the same search)."""
    from sed_meltingpot.design.search import SEARCH_SEED_START
    from sed_meltingpot.experiment import searches

    tasks = ex.plan_training(["eta=1"], [ex.SEARCH, "none", "flat100"], [0, 1])
    assert {t.principal for t in tasks} == {"none", "flat100"}
    chosen = [ex.Search("eta=1", ("apples",), s, rates, 1.0)
              for s, rates in ((0, (1.0, 1.0, 1.0)), (1, (0.5, 0.3, 0.1)))]
    fresh, items = ex.plan_best_fixed(chosen, tasks, principal=ex.SEARCH)
    assert [(t.principal, t.seed, t.rates, t.key) for t in fresh] == [
        (ex.SEARCH, 1, (0.5, 0.3, 0.1), "fixed_0p5-0p3-0p1__seed1")]
    assert [(i.principal, i.task.key) for i in items] == [
        (ex.SEARCH, "flat100__seed0"), (ex.SEARCH, "fixed_0p5-0p3-0p1__seed1")]
    assert ex.principal_spec(ex.SEARCH, (0.5, 0.3, 0.1)) == "fixed:0.5,0.3,0.1"
    grid = ex.GRIDS["paper_fast"]
    args = searches.search_arguments(engines.get_engine("jax"), grid, "eta=1", "apples")
    assert args["seeds"] == (SEARCH_SEED_START, SEARCH_SEED_START + 1)
    assert args["first_cut_budget"] == args["min_budget"] == 62  # round(0.5 x 125)
    assert args["max_budget"] == 125 and len(args["candidates"]) == 5
    assert args["config"].train.seed == SEARCH_SEED_START
    assert args["config"].game.voting_rule == "fixed:1"
    with pytest.raises(ValueError, match="stackelberg_first_cut=0"):
        dataclasses.replace(grid, stackelberg_first_cut=0.0).validate()


def test_plan_trains_scripted_principals_once_per_seed():
    seeds = [0, 1]
    objectives = list(ex.OBJECTIVES)
    principals = [p for p in ex.PRINCIPALS if p not in (*ex.TWO_TIMESCALE, ex.SEARCH)]
    tasks = ex.plan_training(objectives, principals, seeds, BOTH)
    learned = [t for t in tasks if t.principal == ex.LEARNED]
    # learned: 4 objectives x 2 definitions, one run shared at eta=1: 7 per seed;
    # sampled: one per definition; none, 4 schedules, random: 6 per seed.
    assert len(learned) == 7 * 2
    assert len([t for t in tasks if t.principal == ex.SAMPLED]) == 2 * 2
    assert len(tasks) == (7 + 2 + 6) * 2
    assert len({t.key for t in tasks}) == len(tasks)
    assert [t.welfare_on for t in learned if t.objective == "eta=1"] == ["apples"] * 2
    assert all(t.objective is None and t.welfare_on is None for t in tasks
               if t.principal in ex.SCRIPTED)
    assert {t.voting_rule for t in learned} == {"fixed:0", "fixed:0.5", "fixed:1", "mean"}
    assert {t.game_welfare_on for t in learned} == set(BOTH)
    assert ex.TrainTask(ex.LEARNED, "eta=0", 3, "taxed").key == "learned__eta0__taxed__seed3"
    assert ex.TrainTask(ex.LEARNED, "eta=0.5", 3, "apples").key == "learned__eta0p5__seed3"
    assert ex.TrainTask(ex.SAMPLED, None, 1, "taxed").key == "sampled__taxed__seed1"
    # One definition: the plan of issue 10 (4 learned runs per seed).
    assert len(ex.plan_training(objectives, principals, [0], ["apples"])) == 4 + 1 + 6

    etas = (0.0, 0.25, 1.0)
    items = ex.plan_evaluation(tasks, objectives, principals, BOTH, etas)
    cells = [(w, i.objective, i.principal, i.task.seed) for i in items if not i.is_search
             for w in i.welfare_on]
    extra = [ex.eta_label(0.25)]
    want = {(w, o, p, s) for w in BOTH for o in objectives for s in seeds
            for p in principals if p != ex.BEST_FIXED}
    want |= {(w, o, ex.SAMPLED, s) for w in BOTH for o in extra for s in seeds}
    assert len(cells) == len(set(cells)) and set(cells) == want  # every cell exactly once
    searches = [(w, i.objective, i.task.seed) for i in items if i.is_search for w in i.welfare_on]
    assert sorted(searches) == sorted((w, o, s) for w in BOTH for o in objectives for s in seeds)
    for i in items:
        if i.is_search:  # searched against the learned run's players of that objective
            assert i.task.principal == ex.LEARNED and i.task.objective == i.objective
        if i.principal == ex.SAMPLED:
            assert i.welfare_on == (i.task.welfare_on,)


def test_best_fixed_trains_fresh_players_under_the_chosen_schedule():
    tasks = ex.plan_training(["eta=0", "eta=0.5"], list(ex.PRINCIPALS), [0, 1], BOTH)
    searches = [
        ex.Search("eta=0", ("apples",), 0, (0.0, 0.0, 0.0), 5.0),  # = none's run
        ex.Search("eta=0", ("taxed",), 0, (1.0, 1.0, 1.0), 6.0),  # = flat100's run
        ex.Search("eta=0.5", ("apples",), 0, (0.0, 1.0, 1.0), 7.0),  # fresh
        ex.Search("eta=0.5", ("taxed",), 0, (0.0, 1.0, 1.0), 7.5),  # the same fresh run
        ex.Search("eta=0.5", ("apples",), 1, (0.0, 1.0, 1.0), 8.0),  # fresh, other seed
    ]
    fresh, items = ex.plan_best_fixed(searches, tasks)
    assert [t.key for t in fresh] == ["fixed_0-1-1__seed0", "fixed_0-1-1__seed1"]
    assert all(t.principal == ex.BEST_FIXED and t.spec == "fixed:0,1,1" for t in fresh)
    assert [i.task.key for i in items] == ["none__seed0", "flat100__seed0",
                                           "fixed_0-1-1__seed0", "fixed_0-1-1__seed0",
                                           "fixed_0-1-1__seed1"]
    assert [i.rates for i in items] == [s.rates for s in searches]
    assert all(i.principal == ex.BEST_FIXED and not i.is_search for i in items)
    assert [i.welfare_on for i in items] == [s.welfare_on for s in searches]
    assert ex.TrainTask(ex.BEST_FIXED, None, 2, rates=(0.5, 0.0, 1.0)).key == \
        "fixed_0p5-0-1__seed2"


def test_seed_parsing_and_validation():
    assert ex.parse_seeds("0-3") == [0, 1, 2, 3]
    assert ex.parse_seeds("4,7") == [4, 7]
    with pytest.raises(ValueError, match="--seeds"):
        ex.parse_seeds("a")
    with pytest.raises(ValueError, match=r"--seeds: \[-1\] outside"):
        ex.check_seeds([-1, 2])
    with pytest.raises(ValueError, match="repeats"):
        ex.check_seeds([1, 1])
    assert ex.check_seeds([0, 1]) == [0, 1]
    assert ex.EVAL_SEED > ex.MAX_TRAIN_SEED + 10_007 * 64  # held out of every env seed


@pytest.mark.parametrize("args,message", [
    (["--seeds=5-2"], "--seeds"),
    (["--seeds=-1"], "--seeds"),
    (["--principals=none,random"], "--principals must include learned or another co-trained"),
    (["--engine=rllib", "--principals=ucb,none"], "--principals=ucb needs --engine=jax"),
    (["--objectives=eta=2"], "--objectives=eta=2"),
    (["--welfare_on=money"], "--welfare_on=money"),
    (["--search_seeds=0"], "--search_seeds"),
    (["--search_choice=simplest"], "--search_choice"),
    (["--search_first_cut=0"], "--search_first_cut=0: must be in (0, 1]"),
    (["--search_first_cut=1.5"], "--search_first_cut"),
    (["--search_seed_start=-3"], "--search_seed_start"),
    (["--grid=smoke", "--seeds=0-4", "--search_seed_start=3", "--search_seeds=2"],
     "--search_seed_start=3 --search_seeds=2: search seeds must be disjoint from the "
     "reported seeds; both hold [3, 4]"),
    (["--search_seed_start=999999", "--search_seeds=2"], "stackelberg_seed_start=999999 "
                                                          "must be an integer in [0, 999998]"),
    (["--ucb_detrend=3"], "--ucb_detrend"),
    (["--players_only_fraction=1.5"], "--players_only_fraction"),
    (["--engine=rllib", "--players_only_fraction=0.4"], "--players_only_fraction needs "
                                                         "--engine=jax"),
    (["--engine=rllib", "--principals=learned,sampled"], "--principals=sampled needs "
                                                         "--engine=jax"),
])
def test_bad_flags_exit_with_a_message(args, message, tmp_path):
    out = subprocess.run([PYTHON, "scripts/experiment.py", f"--output_dir={tmp_path}", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert message in out.stderr


def test_evaluate_script_records_the_welfare_definition(tmp_path):
    """evaluate.py takes --welfare_on (a GameConfig hyperparameter) and its results.json
    says which definition the objective was on."""
    out = tmp_path / "eval"
    proc = subprocess.run([PYTHON, "scripts/evaluate.py", "--players=random", "--num_players=3",
                           "--episode_length=50", "--tax_period=25", "--welfare_on=taxed",
                           "--num_episodes=1", "--principals=none", f"--output_dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["welfare_on"] == "taxed" and meta["game"]["welfare_on"] == "taxed"


# ------------------------------------------------------------------ outputs
def test_both_definitions_from_an_episodes_totals():
    metrics = {"apples_per_player": np.array([1.0, 5.0, 3.0]),
               "income_per_player": np.array([3.0, 3.0, 3.0]), "eta": 0.25}
    out = ex.episode_welfare(metrics)
    assert out["W_apples"] == pytest.approx(0.25 * 9 + 0.75 * 1)
    assert out["W_taxed"] == pytest.approx(0.25 * 9 + 0.75 * 3)
    ex.check_objective([{"objective": out["W_taxed"], **out}], "taxed")
    with pytest.raises(ValueError, match="welfare_on=apples"):
        ex.check_objective([{"objective": out["W_taxed"], **out}], "apples")
    row = ex.episodes_row([{"objective": 0.0, **out}], welfare_on="taxed", objective="eta=0")
    assert row["W_eta"] == out["W_taxed"] and row["welfare_on"] == "taxed"


def test_objective_curve_is_the_mean_w_eta_of_the_logged_episodes():
    episodes = np.array([[1.0, 5.0, 2.0], [3.0, 3.0, 6.0]])  # apples per player, 2 episodes
    income = np.array([[2.0, 4.0, 2.0], [4.0, 4.0, 4.0]])  # same sums (budget-balanced)
    record = {"game_steps": 100, "utilitarian": welfare.utilitarian(episodes).mean(),
              "egalitarian": welfare.egalitarian(episodes).mean(),
              "egalitarian_income": welfare.egalitarian(income).mean(), "eta": 0.3}
    for eta in (0.0, 0.3, 1.0):
        x, y = ex.objective_curve([record], eta)
        assert y[0] == pytest.approx(welfare.interpolated(episodes, eta).mean())
        x, y = ex.objective_curve([record], eta, "taxed")
        assert y[0] == pytest.approx(welfare.interpolated(income, eta).mean())
    x, y = ex.objective_curve([record], None)  # the record's own eta
    assert y[0] == pytest.approx(welfare.interpolated(episodes, 0.3).mean())
    # A log from before egalitarian_income has no taxed curve (not a wrong one).
    old = {k: v for k, v in record.items() if k != "egalitarian_income"}
    assert len(ex.objective_curve([old], 0.5, "taxed")[1]) == 0
    # The sampled principal's panel is the game's own objective per record.
    x, y = ex.panel_curve([{**record, "objective": 7.5}], ex.SAMPLED, "taxed")
    assert list(y) == [7.5]


def test_budget_quarters_by_hand_and_the_curves_csv(tmp_path):
    """Seed 0 rises 1..8, seed 1 is flat at 5: quarters (1.5, 3.5, 5.5, 7.5) and
    (5, 5, 5, 5), so the mean change Q4 - Q3 is (2 + 0) / 2 = 1 with a t-interval
    over 2 seeds of 1 ± t(0.975, 1) * sqrt(2) / sqrt(2); a 3-point run is left out.
    Quarter means over seeds: (1.5 + 5) / 2 = 3.25, then 4.25, 5.25, 6.25."""
    def run(values):  # eta=1: W_eta is the utilitarian sum
        return [{"game_steps": 10 * (i + 1), "utilitarian": v, "egalitarian": 0.0}
                for i, v in enumerate(values)]

    curves = {("apples", "eta=1"): {"learned": [run(range(1, 9)), run([5] * 8)],
                                    "none": [run([1, 2, 3])]}}
    (q,) = ex.budget_quarters(curves)
    assert (q["objective"], q["principal"], q["seeds"]) == ("eta=1", "learned", 2)
    assert [s.mean for s in q["quarters"]] == pytest.approx([3.25, 4.25, 5.25, 6.25])
    assert q["change"].mean == pytest.approx(1.0)
    t975_1 = math.tan(math.pi * (0.975 - 0.5))  # Student t with 1 df is the Cauchy law
    assert q["change"].half_width == pytest.approx(t975_1 * 1.0, rel=1e-6)
    md = ex.results_markdown(synthetic_rows(), objectives=["eta=1"], principals=ex.PRINCIPALS,
                             substrate="lua", meta={}, num_brackets=3, curves=curves)
    assert "## Is the budget enough?" in md and "| apples | eta=1 | learned | 3.25 ± " in md
    path = ex.write_learning_curves(curves, {("apples", "eta=1"): {"learned": [4, 7],
                                                                   "none": [4]}},
                                    str(tmp_path / "curves.csv"))
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 8 + 8 + 3
    assert {(r["principal"], r["seed"]) for r in rows} == {("learned", "4"), ("learned", "7"),
                                                             ("none", "4")}
    assert {r["welfare_on"] for r in rows} == {"apples"}
    assert [float(r["W_eta"]) for r in rows if r["seed"] == "7"] == [5.0] * 8


def synthetic_rows(seeds=(0, 1, 2), twin=False, definitions=("apples",)):
    """Learned (and sampled) beat every baseline by 10 under every objective."""
    rows = []
    for w in definitions:
        for o in ex.OBJECTIVES:
            for k, p in enumerate(ex.PRINCIPALS):
                subs = ["twin", "lua"] if twin and p == ex.LEARNED else ["twin" if twin else "lua"]
                for sub in subs:
                    for s in seeds:
                        value = (20.0 + s if p in ex.LEARNERS
                                 else 10.0 - k * 0.1 + s - 0.2 * s * s)
                        row = {"welfare_on": w, "objective": o, "principal": p, "seed": s,
                               "substrate": sub, "players_from": "x", "rates": "",
                               "episodes": 2}
                        row.update({m: value for m in ex.metric_columns(3)})
                        row.update({f"rate_b{b}": 0.1 * b for b in range(3)})
                        rows.append(row)
    return rows


def test_csv_and_results_md_structure(tmp_path):
    rows = synthetic_rows(definitions=BOTH)
    path = ex.write_csv(rows, str(tmp_path / "r.csv"), 3)
    back = ex.read_csv(path)
    # definitions x objectives x principals (learned, sampled, 3 two-timescale, search,
    # none, 4 schedules, random, best_fixed) x seeds
    assert len(back) == len(rows) == 2 * 4 * 13 * 3
    with open(path) as f:
        header = next(csv.reader(f))
    for col in ("welfare_on", "objective", "principal", "seed", "substrate", "W_eta",
                "W_apples", "W_taxed", "utilitarian", "egalitarian", "egalitarian_income",
                "nash_welfare", "equality", "income_equality", "sustainability", "peace",
                "tax_revenue", "rate_b0", "rate_b1", "rate_b2"):
        assert col in header
    assert back[5]["objective"] == rows[5]["objective"] and back[5]["seed"] == rows[5]["seed"]
    assert back[-1]["welfare_on"] == "taxed"
    assert back[5]["utilitarian"] == pytest.approx(rows[5]["utilitarian"])

    md = ex.results_markdown(back, objectives=list(ex.OBJECTIVES),
                             principals=list(ex.PRINCIPALS), substrate="lua",
                             meta={"grid": "smoke", "engine": "rllib"}, num_brackets=3,
                             welfare_on=BOTH)
    for w in BOTH:
        for o in ex.OBJECTIVES:
            assert f", welfare_on={w}: objective {o} " in md
    # Per cell: values 20 + s over seeds 0, 1, 2: mean 21, half-width t(0.975, 2) * 1 / sqrt(3).
    half = evaluation.student_t_quantile(0.975, 2) / math.sqrt(3)
    assert f"| learned | 21 ± {half:.2g} |" in md
    test_lines = [line for line in md.splitlines() if line.startswith("| eta=") or
                  line.startswith("| voted")]
    # every definition x objective x learner (2) x baseline (7), each significant
    # (differences 10 + 0.1 k + 0.2 s^2: t about 43 with 2 df, p about 5e-4, x 14 by Holm)
    # and with a signed-rank p that cannot be small with 3 seeds (2 / 8 = 0.25).
    assert len(test_lines) == 2 * 4 * 6 * 7  # (w, o) x 6 principal algorithms x 7 baselines
    assert all(line.endswith("| yes | 0.25 |") for line in test_lines), test_lines[0]
    assert "Transfer gap" not in md and "paired t-test" in md and "Holm" in md

    twin = ex.results_markdown(synthetic_rows(twin=True), objectives=list(ex.OBJECTIVES),
                               principals=list(ex.PRINCIPALS), substrate="twin",
                               meta={}, num_brackets=3)
    assert "| learned (lua) |" in twin and "Transfer gap" in twin


def test_old_results_csv_reads_as_apples():
    """The committed results (before welfare_on) read back as welfare_on=apples, and
    their tables and comparisons still come out."""
    rows = committed_rows("small")
    assert rows and {r["welfare_on"] for r in rows} == {"apples"}
    tests = ex.comparisons(rows, list(ex.OBJECTIVES), list(ex.PRINCIPALS), "twin")
    assert len(tests) == 4 * 6 and all(t["n"] == 5 for t in tests)


def test_paired_holm_families_match_direct_computation():
    rows = synthetic_rows(seeds=(0, 1, 2, 3), definitions=BOTH)
    rng = np.random.default_rng(0)
    for r in rows:  # noise so that every test differs
        r["W_eta"] += float(rng.normal())
    rows = [rows[i] for i in rng.permutation(len(rows))]  # pairing is by seed, not order
    tests = ex.comparisons(rows, list(ex.OBJECTIVES), list(ex.PRINCIPALS), "lua", BOTH)
    assert len(tests) == 2 * 4 * 6 * 7  # (w, o) x 6 principal algorithms x 7 baselines
    for w in BOTH:
        for o in ex.OBJECTIVES:  # one Holm family per definition and objective
            family = [t for t in tests if t["welfare_on"] == w and t["objective"] == o]
            assert len(family) == 6 * 7
            assert [t["p_holm"] for t in family] == pytest.approx(
                ex.holm([t["p"] for t in family]))
    # The first test by hand: apples, eta=0, learned against none, paired over 4 seeds.
    cell = {p: {r["seed"]: r["W_eta"] for r in rows if r["objective"] == "eta=0"
                and r["principal"] == p and r["welfare_on"] == "apples"}
            for p in (ex.LEARNED, "none")}
    first = tests[0]
    assert (first["welfare_on"], first["objective"], first["learner"], first["baseline"]) == (
        "apples", "eta=0", ex.LEARNED, "none")
    d = np.array([cell[ex.LEARNED][s] - cell["none"][s] for s in range(4)])
    t = d.mean() / (d.std(ddof=1) / 2)
    assert first["n"] == 4 and first["t"] == pytest.approx(t)
    assert first["p"] == pytest.approx(2 * (1 - t_distribution.student_t_cdf(abs(t), 3)),
                                       rel=1e-6)


def test_rates_against_eta_by_hand(tmp_path):
    """Two seeds of the sampled principal at eta 0 and 1: bracket b's rate is
    0.1 * b + eta * 0.5 + 0.1 * seed; means over seeds 0.05 + ... and a t(1) band."""
    rows = []
    for s in (0, 1):
        for o in ("eta=0", "eta=1", "voted"):  # the voted row has no fixed eta: left out
            eta = 1.0 if o == "eta=1" else 0.0
            rows.append({"welfare_on": "taxed", "objective": o, "principal": ex.SAMPLED,
                         "seed": s, "substrate": "twin", **{
                             f"rate_b{b}": 0.1 * b + 0.5 * eta + 0.1 * s for b in range(3)}})
    table = ex.rates_by_eta(rows, "twin", 3, "taxed")
    assert [eta for eta, _, _ in table] == [0.0, 1.0]
    assert [s.mean for s in table[1][1]] == pytest.approx([0.55, 0.65, 0.75])
    t975_1 = math.tan(math.pi * (0.975 - 0.5))
    # bracket 0 at eta 0: 0 and 0.1 over the seeds, sd 0.1 / sqrt(2), n 2.
    assert table[0][1][0].half_width == pytest.approx(t975_1 * (0.1 / math.sqrt(2))
                                                      / math.sqrt(2), rel=1e-6)
    assert ex.rates_by_eta(rows, "twin", 3, "apples") == []
    path = ex.plot_rates_vs_eta(rows, "twin", 3, str(tmp_path / "r.png"), welfare_on=BOTH)
    assert os.path.getsize(path) > 1000


# ------------------------------------------------ the random principal's draws
def test_random_principal_draws_differ_across_seeds_and_episodes():
    """Twin: the random principal's levels come from per-episode keys folded with the
    training seed; Lua: its generator is seeded by the episode and the training seed."""
    from sed_meltingpot.training.jax.play import random_levels, random_principal_keys

    keys = {s: random_principal_keys(ex.EVAL_SEED, s, 2) for s in (0, 1)}
    levels = {s: np.asarray(random_levels(keys[s], 0, 3, 11)) for s in (0, 1)}
    assert levels[0].shape == (2, 3)
    assert not np.array_equal(levels[0], levels[1])  # two training seeds
    assert not np.array_equal(levels[0][0], levels[0][1])  # two episodes
    np.testing.assert_array_equal(levels[0], np.asarray(random_levels(
        random_principal_keys(ex.EVAL_SEED, 0, 2), 0, 3, 11)))  # reproducible
    assert not np.array_equal(levels[0], np.asarray(random_levels(keys[0], 1, 3, 11)))
    draws = {}
    for stream in (0, 1):
        p = engines.StreamRandomPrincipal([i / 10 for i in range(11)], 3, stream)
        for episode_seed in (5, 6):
            p.reset(episode_seed)
            draws[(stream, episode_seed)] = tuple(np.concatenate([p({}) for _ in range(4)]))
    assert len(set(draws.values())) == 4
    p.reset(5)
    assert tuple(np.concatenate([p({}) for _ in range(4)])) == draws[(1, 5)]


# ----------------------------------------------------- orchestration (fake)
class FakeEngine:
    """Known episodes: apples per player depend on the principal and eta only through
    the game's formulas (a fixed schedule r gives the second player 2 + 1.5 (1 + r1 -
    r0 - r2) apples, so the search picks (0, 1, 0)); post-tax income is the apples fully
    redistributed under any tax (its minimum is the mean), the apples without tax."""

    name = "fake"
    substrate = "lua"
    batch_seeds = False

    def train(self, grid, tasks, run_dirs, log):
        for task, d in zip(tasks, run_dirs, strict=True):
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "progress.jsonl"), "w") as f:
                for it in range(1, 4):
                    f.write(json.dumps({"iteration": it, "game_steps": 100 * it,
                                        "utilitarian": 10.0 * it + task.seed,
                                        "egalitarian": 1.0 * it,
                                        "egalitarian_income": 2.0 * it, "eta": 0.5,
                                        "objective": 3.0 * it}) + "\n")
            with open(os.path.join(d, "summary.json"), "w") as f:
                json.dump({}, f)

    def evaluate(self, grid, run_dir, voting_rule, principal, seed, num_episodes, stream):
        eta = voting.vote(voting_rule, [0.5, 0.5, 0.5])
        bonus = 0.0 if principal != "learned" else 5.0
        taxed = principal not in ("none", "fixed:0,0,0")
        rates = principal if isinstance(principal, tuple) else (
            [float(x) for x in principal[len("fixed:"):].split(",")]
            if principal.startswith("fixed:") else None)
        second = 2.0 if rates is None else 2.0 + 1.5 * (1 + rates[1] - rates[0] - rates[2])
        out = []
        for k in range(num_episodes):
            apples = np.array([1.0 + k, second, 3.0 + bonus])
            income = np.full(3, apples.mean()) if taxed else apples
            metrics = {"apples_per_player": apples, "income_per_player": income, "eta": eta}
            out.append({"objective": float(welfare.interpolated(apples, eta)), "eta": eta,
                        "utilitarian": float(apples.sum()), "egalitarian": float(apples.min()),
                        "egalitarian_income": float(income.min()),
                        "nash_welfare": float(welfare.nash_welfare(apples)),
                        "productivity": float(apples.sum()),
                        "equality": float(welfare.equality(apples)), "income_equality": 1.0,
                        "sustainability": 10.0, "peace": 3.0, "tax_revenue": 0.0,
                        "principal_return": 0.0, "rate_b0": 0.0, "rate_b1": 0.0,
                        "rate_b2": 0.0, **ex.episode_welfare(metrics)})
        return out


def test_a_call_loads_every_lazily_imported_stage_at_its_start():
    """Every module that the experiment's stages import inside a function (scanned from
    the source, so a new lazy import is caught) is loaded by `load_later_stages` before
    the call trains, in a fresh interpreter where importing the experiment loads no JAX.
    The RLlib trainer (ray) is imported by the rllib engine's own first stage."""
    import re

    sources = [os.path.join(ROOT, "scripts", "experiment.py")] + [
        os.path.join(ROOT, "sed_meltingpot", "experiment", f)
        for f in os.listdir(os.path.join(ROOT, "sed_meltingpot", "experiment"))
        if f.endswith(".py")]
    lazy = set()
    for path in sources:
        lazy |= set(re.findall(r"^[ \t]+from ([\w.]+) import", open(path).read(), re.M))
    lazy -= {"sed_meltingpot.training.rllib.trainer"}
    assert "sed_meltingpot.design.search" in lazy and len(lazy) >= 6
    code = ("import sys; from sed_meltingpot.experiment import engines as e; "
            "assert 'jax' not in sys.modules; e.load_later_stages('jax'); "
            f"missing = [m for m in {sorted(lazy)!r} if m not in sys.modules]; "
            "assert not missing, missing")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with pytest.raises(ValueError, match="--engine='torch' must be one of"):
        engines.load_later_stages("torch")


class StoppedEngine(FakeEngine):
    """FakeEngine whose training is stopped by a signal the first time (the jax trainer's
    summary then says `stopped_by`) and finishes the next."""

    name = "stopped"
    calls = 0

    def train(self, grid, tasks, run_dirs, log):
        super().train(grid, tasks, run_dirs, log)
        StoppedEngine.calls += 1
        if StoppedEngine.calls == 1:
            for d in run_dirs:
                with open(os.path.join(d, "summary.json"), "w") as f:
                    json.dump({"stopped_by": "SIGINT", "stopped_by_signal": 2}, f)


def test_a_run_stopped_by_a_signal_is_not_trained_and_ends_the_call(tmp_path, monkeypatch):
    """A stopped run's summary.json does not make it trained: its job ends the call
    before evaluating it (TrainingStopped), and the next call trains it again."""
    from sed_meltingpot.experiment import jobs as job_module

    run = tmp_path / "one"
    assert not job_module.is_trained(str(run))  # no folder
    run.mkdir()
    (run / "summary.json").write_text('{"iteration": 3')  # cut mid-write
    assert not job_module.is_trained(str(run))
    (run / "summary.json").write_text('{"stopped_by": "SIGTERM"}')
    assert not job_module.is_trained(str(run))
    (run / "summary.json").write_text('{"iteration": 3}')
    assert job_module.is_trained(str(run))

    monkeypatch.setitem(engines.ENGINES, "stopped", StoppedEngine)
    monkeypatch.setattr(StoppedEngine, "calls", 0)
    grid = ex.GRIDS["smoke"]
    jobs = plan_jobs(StoppedEngine(), grid, str(tmp_path / "call"), ["eta=1"], ["none"],
                     [0], ("apples",))
    assert len(jobs) == 1
    with pytest.raises(job_module.TrainingStopped, match="was stopped before its budget"):
        run_jobs(jobs, num_workers=1, ray_address=None, log=lambda s: None)
    assert not os.path.exists(os.path.join(jobs[0].run_dirs[0], jobs[0].eval_file))
    results = run_jobs(jobs, num_workers=1, ray_address=None, log=lambda s: None)
    assert StoppedEngine.calls == 2 and results[0]["trained"] == 1 and results[0]["rows"]


def test_orchestration_with_a_stand_in_engine(tmp_path, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "fake", FakeEngine)
    grid = ex.GRIDS["smoke"]
    principals = [p for p in ex.PRINCIPALS if p != ex.SAMPLED and p not in ex.TWO_TIMESCALE]
    jobs = plan_jobs(FakeEngine(), grid, str(tmp_path), list(ex.OBJECTIVES), principals,
                          [0, 1], BOTH)
    assert len(jobs) == (7 + 6) * 2
    results = run_jobs(jobs, num_workers=1, ray_address=None, log=lambda s: None)
    rows = [r for res in results for r in res["rows"]]
    searches = [s for res in results for s in res["searches"]]
    assert len(rows) == 2 * 4 * 2 * (6 + 1)  # (w, o, seed) x (6 scripted + learned)
    assert len(searches) == 7 * 2  # one per learned run, covering both definitions
    by = {(r["welfare_on"], r["objective"], r["principal"], r["seed"]): r for r in rows}
    # eta=0: W = min apples, 1 and 2 in episodes 0 and 1 ([1, 2, 3], [2, 2, 3]).
    assert by[("apples", "eta=0", "none", 0)]["W_eta"] == pytest.approx(1.5)
    assert by[("taxed", "eta=0", "none", 0)]["W_eta"] == pytest.approx(1.5)
    # On post-tax income, random taxes and (here) redistributes: min = mean apples.
    assert by[("taxed", "eta=0", "random", 0)]["W_eta"] == pytest.approx((2 + 7 / 3) / 2)
    assert by[("apples", "eta=0", "random", 0)]["W_eta"] == pytest.approx(1.5)
    assert by[("taxed", "eta=0", "random", 0)]["W_apples"] == pytest.approx(1.5)
    # eta=1 learned: sum [1, 2, 8] = 11 and [2, 2, 8] = 12, one run for both definitions.
    assert by[("apples", "eta=1", "learned", 1)]["W_eta"] == pytest.approx(11.5)
    assert by[("taxed", "eta=1", "learned", 1)]["players_from"] == "learned__eta1__seed1"

    second = best_fixed_jobs(FakeEngine(), grid, str(tmp_path), searches, jobs)
    more = run_jobs(second, num_workers=1, ray_address=None, log=lambda s: None)
    best = [r for res in more for r in res["rows"]]
    assert {(r["welfare_on"], r["objective"], r["seed"]) for r in best} == {
        (w, o, s) for w in BOTH for o in ex.OBJECTIVES for s in (0, 1)}
    assert len(best) == 2 * 4 * 2
    # At eta=0 on apples every schedule ties (player 0 has the minimum): the first of the
    # grid, (0, 0, 0), whose players are none's run; elsewhere (0, 1, 0), fresh players.
    assert {(s.objective, s.welfare_on, s.rates) for s in searches if s.rates[1] == 0} == {
        ("eta=0", ("apples",), (0.0, 0.0, 0.0))}
    for r in best:
        assert r["principal"] == ex.BEST_FIXED
        if (r["objective"], r["welfare_on"]) == ("eta=0", "apples"):
            assert (r["rates"], r["players_from"]) == ("0,0,0", f"none__seed{r['seed']}")
        else:  # fresh players trained under the chosen schedule
            assert r["rates"] == "0,1,0"
            assert r["players_from"] == f"fixed_0-1-0__seed{r['seed']}"
    assert sum(r["trained"] for r in more) == 2  # one fresh run per seed
    # eta=0 on post-tax income with (0, 1, 0): [1 + k, 5, 3] redistributed, means 3, 10/3.
    assert [r["W_eta"] for r in best if r["objective"] == "eta=0"
            and r["welfare_on"] == "taxed"] == pytest.approx([(3 + 10 / 3) / 2] * 2)
    # A second call reuses the cached training and evaluations of both stages.
    again = run_jobs(jobs, num_workers=1, ray_address=None, log=lambda s: None)
    assert sum(r["trained"] for r in again) == 0
    assert [r["rows"] for r in again] == [r["rows"] for r in results]
    assert [r["searches"] for r in again] == [r["searches"] for r in results]
    again = run_jobs(second, num_workers=1, ray_address=None, log=lambda s: None)
    assert sum(r["trained"] for r in again) == 0 and [r["rows"] for r in again] == [
        r["rows"] for r in more]
    curve = ex.plot_learning_curves(
        {("apples", "eta=0"): {"learned": [evaluation_progress(jobs[0].run_dirs[0])]},
         ("taxed", ex.SAMPLED): {ex.SAMPLED: [evaluation_progress(jobs[0].run_dirs[0])]}},
        str(tmp_path / "c.png"))
    assert os.path.getsize(curve) > 1000


def evaluation_progress(run_dir):
    from sed_meltingpot.analysis import plotting

    return plotting.load_progress(run_dir)


# --------------------------------------------------------- real smoke grid
@pytest.mark.parametrize("engine", ["jax", "rllib"])
def test_smoke_grid_end_to_end(tmp_path, engine):
    """The whole smoke grid, real tiny runs, both engines in the default run, both
    welfare definitions; the jax engine adds the sampled principal (from an empty
    compile cache on the idle 2-core machine: see the README's Results). The jax call
    scores the search on 3 seeds (--search_seeds; the grid's default is 2) from 910000
    (--search_seed_start; the default is 900000), with the first cut stated
    (--search_first_cut=1.0, the smoke grid's own), picks by
    least_tax (--search_choice; the default is best) and detrends
    ucb's scores (--ucb_detrend=1; the grid's default is 0); its recipe says the players
    train alone for 30% of a run (one iteration: phase 1 is round(0.3) = 0 iterations,
    as with the default 0.2)."""
    out = tmp_path / "smoke"
    more = ["--search_seeds=3", "--search_seed_start=910000", "--search_first_cut=1.0",
            "--search_choice=least_tax", "--ucb_detrend=1",
            "--players_only_fraction=0.3"] \
        if engine == "jax" else []
    proc = subprocess.run([PYTHON, "scripts/experiment.py", "--grid=smoke", f"--engine={engine}",
                           f"--output_dir={out}", *more], cwd=ROOT, capture_output=True, text=True,
                          timeout=2400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = ex.read_csv(str(out / "results.csv"))
    grid = ex.GRIDS["smoke"]
    principals = [p for p in ex.PRINCIPALS if engine == "jax" or p not in ex.JAX_ONLY]
    every_cell = {(w, o, p, s) for w in BOTH for o in ex.OBJECTIVES for p in principals
                  for s in (0, 1)}
    if engine == "jax":  # the sampled principal also at the figure's etas
        every_cell |= {(w, ex.eta_label(e), ex.SAMPLED, s) for w in BOTH
                       for e in grid.rate_etas for s in (0, 1)}
    played = ex.SUBSTRATE_TWIN if engine == "jax" else ex.SUBSTRATE_LUA
    main = [r for r in rows if r["substrate"] == played]
    cells = {(r["welfare_on"], r["objective"], r["principal"], r["seed"]) for r in main}
    assert cells == every_cell and len(main) == len(cells)
    assert all(r["episodes"] == grid.eval_episodes for r in main)
    # The jax engine's learned players and principal also play the Lua substrate
    # (the transfer gap), one row per definition, objective and seed; nothing else does.
    lua_rows = [r for r in rows if r["substrate"] != played]
    assert {(r["welfare_on"], r["objective"], r["principal"], r["seed"]) for r in lua_rows} == (
        {(w, o, ex.LEARNED, s) for w in BOTH for o in ex.OBJECTIVES for s in (0, 1)}
        if engine == "jax" else set())
    assert all(r["episodes"] == grid.lua_episodes for r in lua_rows)
    assert not ex.non_finite(rows, ex.metric_columns(3))
    for r in rows:
        assert r["W_eta"] == r[ex.DEFINITION_COLUMNS[r["welfare_on"]]]
        eta = ex.eta_of(r["objective"])
        if eta is not None:
            assert r["eta"] == pytest.approx(eta)
            # W_eta of every episode is eta * sum + (1 - eta) * min, so the means obey it
            # too; the sum of post-tax incomes is the sum of apples (budget-balanced tax).
            assert r["W_apples"] == pytest.approx(
                eta * r["utilitarian"] + (1 - eta) * r["egalitarian"], rel=1e-5, abs=1e-4)
            assert r["W_taxed"] == pytest.approx(
                eta * r["utilitarian"] + (1 - eta) * r["egalitarian_income"], rel=1e-5,
                abs=1e-4)
    for r in rows:
        if r["principal"] == "flat100" and r["substrate"] == played:
            assert r["rates"] == "1,1,1" and r["rate_b0"] == pytest.approx(1.0)
        if r["principal"] == ex.BEST_FIXED:  # fresh players, not the learned run's
            assert not r["players_from"].startswith("learned")
        if r["principal"] == ex.LEARNED:
            assert r["players_from"].startswith("learned__")
        if r["principal"] == ex.SEARCH:  # fresh players (here the scripted run reused)
            assert not r["players_from"].startswith(("learned", "ucb", "thompson", "egreedy"))
        if r["principal"] in ex.TWO_TIMESCALE:  # its own players, the arm it committed to
            group = r["players_from"].rsplit("__seed", 1)[0]
            assert group.startswith(r["principal"] + "__")
            record = json.loads((out / "runs" / f"{group}__seeds0-1" / f"seed_{r['seed']}"
                                 / "designer.json").read_text())
            assert [float(x) for x in r["rates"].split(",")] == record["best_rates"]
            assert len(record["steps"]) == 1  # one iteration: one principal step, scored
            assert record["config"]["ucb_detrend"] == 1
    md = (out / "results.md").read_text()
    if engine == "jax":  # one search per objective and definition (shared at eta = 1)
        # --search_choice reached the search; 5 x 3 x 1 x 100 game steps
        assert md.count("(least_tax; W_eta ") == 7 and "1,500 game steps" in md
        assert md.count("search seeds [910000, 910001, 910002]") == 7
        assert "players_only_fraction=0.3," in md and "players_only_fraction=0.2" not in md
    assert md.count(", welfare_on=apples: objective") == 4
    assert md.count(", welfare_on=taxed: objective") == 4
    assert "Holm" in md and "paired" in md and "signed-rank" in md
    figures = ["learning_curves.png", "equality_productivity.png"]
    figures += ["rates_vs_eta.png"] if engine == "jax" else []
    for name in figures:
        assert (out / name).stat().st_size > 1000
    assert ("The sampled principal's rates against eta" in md) == (engine == "jax")
    curves = list(csv.DictReader(open(out / "learning_curves.csv")))
    assert {r["welfare_on"] for r in curves} == set(BOTH)


def test_last_period_rates_averages_the_last_logged_episode_over_runs():
    run_a = [{"last_episode_period_rates": [[0.0, 0.0, 0.0]]},
             {"last_episode_period_rates": [[0.2, 0.4, 0.6], [0.0, 0.2, 0.4]]},
             {"last_episode_period_rates": None}]  # an iteration without a finished episode
    run_b = [{"last_episode_period_rates": [[0.4, 0.4, 0.4], [0.2, 0.2, 0.2]]}]
    np.testing.assert_allclose(ex.last_period_rates([run_a, run_b]),
                               [[0.3, 0.4, 0.5], [0.1, 0.2, 0.3]])
    assert ex.last_period_rates([[{}]]) == []


# ------------------------------------------------------------ twin evaluator
def make_twin_run(folder, game):
    """A jax-engine run folder with untrained player networks (no principal)."""
    import dataclasses

    import jax

    from sed_meltingpot.training.jax import checkpoint as ckpt
    from sed_meltingpot.training.jax import networks

    spec = networks.NetworkSpec(image_shape=(11, 11, 3), num_features=game.num_brackets + 3,
                                num_logits=8, pixels_per_tile=1, conv_channels=(8, 16),
                                hidden=32)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "run_config.json"), "w") as f:
        json.dump({"engine": "jax", "game": {k: (list(v) if isinstance(v, tuple) else v)
                                             for k, v in dataclasses.asdict(game).items()},
                   "train": {"pixels_per_tile": 1, "frame_stack": 1},
                   "selfishness": [0.2, 0.9, 0.5]}, f)
    ckpt.save(os.path.join(folder, "checkpoints", "iter_000001"), iteration=1,
              players_params=networks.init_params(spec, jax.random.PRNGKey(0)),
              principal_params=None, train_state={}, players_spec=spec, principal_spec=None)
    return folder


@pytest.mark.slow
def test_twin_evaluator_applies_the_principal_every_period(tmp_path):
    """Properties that hold whatever the players do: the fixed schedule is the
    effective rate of every period (tax cap 1 at evaluation); a 100% tax on
    every bracket, redistributed evenly, leaves everyone the same post-tax
    income (equality 1, so W_taxed at eta 0 is the mean apples); no tax leaves
    post-tax equality = equality of apples and W_taxed = W_apples;
    W_eta = eta * sum + (1 - eta) * min; the same seeds replay the same worlds;
    the random principal's rates differ across training seeds (streams)."""
    from sed_meltingpot.game.config import GameConfig

    game = GameConfig(num_players=3, episode_length=100, tax_period=25)
    run = make_twin_run(str(tmp_path / "run"), game)
    full = engines.twin_episodes(run, "fixed:0.3", (1.0, 1.0, 1.0), ex.EVAL_SEED, 3)
    free = engines.twin_episodes(run, "fixed:0.3", "none", ex.EVAL_SEED, 3)
    again = engines.twin_episodes(run, "fixed:0.3", "none", ex.EVAL_SEED, 3)
    assert free == again
    for e in full:
        assert [e[f"rate_b{b}"] for b in range(3)] == pytest.approx([1.0, 1.0, 1.0])
        assert e["eta"] == pytest.approx(0.3)
        assert e["objective"] == pytest.approx(
            0.3 * e["utilitarian"] + 0.7 * e["egalitarian"], abs=1e-4)
        assert e["W_apples"] == pytest.approx(e["objective"], rel=1e-5, abs=1e-4)
        assert e["W_taxed"] == pytest.approx(0.3 * e["utilitarian"]
                                             + 0.7 * e["utilitarian"] / 3, rel=1e-5, abs=1e-4)
        assert e["tax_revenue"] == pytest.approx(e["productivity"], abs=1e-3)
        assert e["income_equality"] == pytest.approx(1.0, abs=1e-5)
    for e in free:
        assert e["tax_revenue"] == 0.0
        assert e["income_equality"] == pytest.approx(e["equality"], abs=1e-6)
        assert e["W_taxed"] == pytest.approx(e["W_apples"], abs=1e-4)
    assert sum(e["productivity"] for e in free) > 0  # the episodes were played
    draws = {s: [tuple(e[f"rate_b{b}"] for b in range(3)) for e in engines.twin_episodes(
        run, "fixed:0.3", "random", ex.EVAL_SEED, 2, stream=s)] for s in (0, 1)}
    assert draws[0] != draws[1] and draws[0][0] != draws[0][1]


@pytest.mark.slow
def test_runs_spread_as_ray_tasks(tmp_path):
    """--num_workers=2: the jobs run as Ray tasks (local Ray), rows as in-process."""
    out = tmp_path / "ray"
    proc = subprocess.run([PYTHON, "scripts/experiment.py", "--grid=smoke", "--engine=rllib",
                           "--objectives=eta=0", "--principals=learned,none", "--seeds=0,1",
                           "--welfare_on=apples", "--num_workers=2", f"--output_dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Started a local Ray instance" in proc.stderr + proc.stdout
    rows = ex.read_csv(str(out / "results.csv"))
    assert {(r["principal"], r["seed"]) for r in rows} == {
        (p, s) for p in ("learned", "none") for s in (0, 1)}
    assert not ex.non_finite(rows, ex.metric_columns(3))


def test_small_apples_more_reproduces_the_first_apples_grid():
    """small_apples_more.md says the second apples call's learned, none and flat100 runs, trained
    again from scratch, reproduce small_taxed's apples rows exactly: compare every shared
    row's W_eta and rates."""
    def keyed(results_dir: str) -> dict:
        return {(r["objective"], r["principal"], r["seed"], r["substrate"]): r
                for r in committed_rows(results_dir) if r["welfare_on"] == "apples"}

    first, second = keyed("small_taxed"), keyed("small_apples_more")
    shared = sorted(set(first) & set(second))
    assert {(k[0], k[1]) for k in shared} == {
        (o, p) for o in ("eta=0", "eta=0.5", "eta=1") for p in ("learned", "none", "flat100")}
    assert len(shared) == 60
    for key in shared:
        for column in ("W_eta", "rate_b0", "rate_b1", "rate_b2"):
            assert first[key][column] == second[key][column], (key, column)


# ------------------------------------------------------------- pooling calls
def _split_paper_fast(tmp_path, parts: dict[str, set[int]]) -> list[str]:
    """docs/results/paper_fast's results.csv split by seed into folders (each with the
    call's experiment.json), as if each part of the seeds had run in its own call."""
    src = os.path.join(ROOT, "docs", "results", "paper_fast")
    with open(os.path.join(src, "results.csv"), newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    with open(os.path.join(src, "experiment.json")) as f:
        info = json.load(f)
    folders = []
    for name, seeds in parts.items():
        folder = tmp_path / name
        folder.mkdir()
        with open(folder / "results.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["seed"]) in seeds)
        with open(folder / "experiment.json", "w") as f:
            json.dump({**info, "seeds": sorted(seeds)}, f)
        folders.append(str(folder))
    return folders


def _pool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "pool_results.py"),
                           *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_pooled_calls_give_the_rows_and_paired_test_of_one_call(tmp_path):
    """Seeds 0-1 and seed 2 of the committed paper_fast call, pooled, are that call's rows,
    and results.md's paired test over the 3 seeds is the one computed here by hand."""
    a, b = _split_paper_fast(tmp_path, {"a": {0, 1}, "b": {2}})
    out = tmp_path / "pooled"
    done = _pool(f"--inputs={a},{b}", f"--output_dir={out}", "--objectives=eta=1",
                 "--principals=learned,none", "--welfare_on=apples")
    assert done.returncode == 0, done.stderr[-2000:]
    original = [r for r in committed_rows("paper_fast")
                if r["objective"] == "eta=1" and r["principal"] in ("learned", "none")
                and r["welfare_on"] == "apples"]
    pooled = ex.read_csv(str(out / "results.csv"))
    key = lambda r: (r["principal"], r["seed"], r["substrate"])  # noqa: E731
    assert sorted(map(key, pooled)) == sorted(map(key, original)) and len(pooled) >= 6
    by_key = {key(r): r["W_eta"] for r in original}
    assert all(r["W_eta"] == pytest.approx(by_key[key(r)], rel=1e-12) for r in pooled)
    w = {p: {r["seed"]: r["W_eta"] for r in original if r["principal"] == p
             and r["substrate"] == ex.SUBSTRATE_TWIN} for p in ("learned", "none")}
    d = np.array([w["learned"][s] - w["none"][s] for s in range(3)])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    p = 2 * (1 - t_distribution.student_t_cdf(abs(t), 2))
    md = (out / "results.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| eta=1 | learned | none | 3 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[4]) == pytest.approx(d.mean(), rel=5e-3)
    assert float(cells[7]) == pytest.approx(p, rel=5e-2, abs=5e-3)
    assert "0, 1 from" in md and "2 from" in md


def test_a_principal_run_by_some_inputs_is_pooled_over_their_seeds(tmp_path):
    """Issue 30's pooling: a new principal run on all seeds in a call of its own (here
    "progressive" held by the seeds-0-2 folder alone, the other folder holding seeds 0-2
    of "none" only) is pooled over its seeds and paired by seed with the others."""
    a, b = _split_paper_fast(tmp_path, {"a": {0, 1, 2}, "b": {0, 1, 2}})
    for folder, keep in ((a, {"learned", "progressive"}), (b, {"none"})):
        path = os.path.join(folder, "results.csv")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header, rows = reader.fieldnames, [r for r in reader if r["principal"] in keep]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        with open(os.path.join(folder, "experiment.json")) as f:
            info = json.load(f)
        with open(os.path.join(folder, "experiment.json"), "w") as f:
            json.dump({**info, "principals": sorted(keep)}, f)
    out = tmp_path / "pooled"
    done = _pool(f"--inputs={a},{b}", f"--output_dir={out}", "--objectives=eta=1",
                 "--welfare_on=apples")
    assert done.returncode == 0, done.stderr[-2000:]
    pooled = ex.read_csv(str(out / "results.csv"))
    twin = [r for r in pooled if r["substrate"] == ex.SUBSTRATE_TWIN]
    assert sorted((r["principal"], r["seed"]) for r in twin) == sorted(
        (p, s) for p in ("learned", "none", "progressive") for s in range(3))
    original = {(r["principal"], r["seed"]): r["W_eta"] for r in committed_rows("paper_fast")
                if r["objective"] == "eta=1" and r["welfare_on"] == "apples"
                and r["substrate"] == ex.SUBSTRATE_TWIN}
    d = np.array([original[("learned", s)] - original[("none", s)] for s in range(3)])
    md = (out / "results.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| eta=1 | learned | none | 3 |"))
    assert float(line.strip("|").split("|")[4]) == pytest.approx(d.mean(), rel=5e-3)
    done = _pool(f"--inputs={a},{b}", f"--output_dir={tmp_path / 'x'}",
                 "--principals=learned,ucb")
    assert done.returncode != 0 and "['ucb'] run by no input" in done.stderr


def test_pooling_refuses_a_seed_twice_and_different_grids(tmp_path):
    a, b = _split_paper_fast(tmp_path, {"a": {0, 1}, "b": {1, 2}})
    done = _pool(f"--inputs={a},{b}", f"--output_dir={tmp_path / 'out'}")
    assert done.returncode != 0 and "seed=1" in done.stderr and "both hold" in done.stderr
    c, = _split_paper_fast(tmp_path, {"c": {2}})
    with open(os.path.join(c, "experiment.json")) as f:
        info = json.load(f)
    info["grid"]["twin_iterations"] += 1
    with open(os.path.join(c, "experiment.json"), "w") as f:
        json.dump(info, f)
    a2, = _split_paper_fast(tmp_path, {"a2": {0, 1}})
    done = _pool(f"--inputs={a2},{c}", f"--output_dir={tmp_path / 'out'}")
    assert done.returncode != 0 and "different grids: twin_iterations" in done.stderr
    done = _pool(f"--inputs={a2}", f"--output_dir={tmp_path / 'out'}")
    assert done.returncode != 0 and "two or more" in done.stderr


def test_pooling_credits_only_the_seeds_it_pooled(tmp_path):
    """Issue 31: an input whose experiment.json lists seeds 3, 4, 5 but whose results.csv
    is a header only was still credited with "3, 4, 5 from ..." in results.md."""
    a, b = _split_paper_fast(tmp_path, {"a": {0, 1}, "b": {2}})
    with open(os.path.join(b, "experiment.json")) as f:
        info = json.load(f)
    with open(os.path.join(b, "experiment.json"), "w") as f:
        json.dump({**info, "seeds": [2, 3, 4]}, f)  # lists more seeds than it holds
    out = tmp_path / "pooled"
    done = _pool(f"--inputs={a},{b}", f"--output_dir={out}", "--objectives=eta=1",
                 "--principals=learned,none", "--welfare_on=apples")
    assert done.returncode == 0, done.stderr[-2000:]
    seeds_line = next(x for x in (out / "results.md").read_text().splitlines()
                      if x.startswith("* seeds:"))
    assert f"0, 1 from `{a}`" in seeds_line and f"; 2 from `{b}`" in seeds_line
    assert "2, 3, 4" not in seeds_line
    # The empty input: refused in one line, nothing credited.
    with open(os.path.join(b, "results.csv")) as f:
        header = f.readline()
    with open(os.path.join(b, "results.csv"), "w") as f:
        f.write(header)
    done = _pool(f"--inputs={a},{b}", f"--output_dir={tmp_path / 'empty'}")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"--inputs: {os.path.join(b, 'results.csv')} holds no rows (a header "
                    "only): it contributes no seeds; leave it out")
    assert not (tmp_path / "empty" / "results.md").exists()
    # The pooling itself refuses an input that gives no rows (e.g. none it was asked for).
    with pytest.raises(ValueError, match=r"b contributes no rows"):
        ex.pool_rows([("a", ex.read_csv(os.path.join(a, "results.csv"))), ("b", [])])


def test_paper_fast_pooled_is_the_two_calls_rows():
    """The pooled table holds exactly the eta 1 / apples rows of learned, none, progressive
    and flat100 of the two committed calls (seeds 0-2 and 3-5), values unchanged."""
    def key(row):
        return row["principal"], int(row["seed"]), row["substrate"]

    expected = {key(r): r["W_eta"] for name in ("paper_fast", "paper_fast_s3")
                for r in committed_rows(name) if r["objective"] == "eta=1"
                and r["welfare_on"] == "apples"
                and r["principal"] in ("learned", "none", "progressive", "flat100")}
    pooled = {key(r): r["W_eta"] for r in committed_rows("paper_fast_pooled")}
    assert pooled == expected and {s for _, s, _ in pooled} == set(range(6))
