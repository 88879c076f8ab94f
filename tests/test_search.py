"""The Stackelberg search (design/search.py) and the vmapped population under it
(training/jax/population.py), issue 30 item 1.

On the lagged-lever game (tests/lagged_lever_game.py: 2 players, 10-step episodes,
16 games x 10 steps an iteration, lr 3e-3) rate 1 is the best bracket-0 rate once the
players have learned (they then sustain: W = 24 an episode against 20 at rate 0), while
with the players frozen W falls with the rate. The search (4 candidates, seeds 900000
and 900001, rungs 4 x 20 and 2 x 40 iterations) must pick rate 1; the same-timescale
PPO principal (seeds 1, 2, 3, 80 iterations: twice the search's budget per candidate)
must end far from it. Compiles dominate the timings: on the 2-core machine under a
load of 5, the population test took 52 s, the search 30 s (then 4 s to resume it: the
programs are cached per config and game) and the learned principal 45-62 s (slow).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sed_meltingpot.core import rewards
from sed_meltingpot.design import halving_plan
from sed_meltingpot.design.search import (
    MAX_TRAIN_SEED,
    RESULT_FILE,
    SEARCH_SEED_START,
    check_disjoint,
    default_candidates,
    search,
    search_seeds,
)
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.runs.train_config import TrainConfig, preset
from sed_meltingpot.training.jax import ppo
from sed_meltingpot.training.jax.population import Population
from tests.lagged_lever_game import LaggedLeverGame

# ------------------------------------------------------------ the games
LEVER = GameConfig(num_players=2, episode_length=10, tax_period=10)
LEVER_GAME = LaggedLeverGame(LEVER)
SMALL_NET = {**preset("fast"), "hidden": 32, "conv_channels": (4, 8)}
STEPS_PER_ITERATION = 16 * 10  # games x rollout length
#: The search's candidates: the optimum (rate 1) neither first nor last; all below
#: the threshold r* = 0.7 above which sustaining pays.
CANDIDATES = ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.0), (0.25, 0.0, 0.0))
#: The first cut at 20 iterations: the players need 10-20 to learn to sustain at rate 1
#: (W of the first iteration is about 8-10 at every rate, 20 for harvesters).
SEARCH_ARGS = {"candidates": CANDIDATES, "seeds": (900_000, 900_001), "min_budget": 5,
               "first_cut_budget": 20, "reduction": 2}


def lever_config(principal: str = "none", num_iterations: int = 40) -> ppo.TwinTrainConfig:
    train = TrainConfig(num_iterations=num_iterations, frame_stack=1, lr=3e-3,
                        principal=principal, **SMALL_NET)
    return ppo.TwinTrainConfig(LEVER, train, num_envs=16, rollout_length=10)


# ------------------------------------------------------------ the population
# On the lagged-lever game with 4 runs: the programs the search's second rung uses
# (compiled once in the module, `population._compiled`), so the tests stay fast.
SCHEDULES = ((0.1, 0.3, 0.5), (0.9, 0.0, 0.2), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0))


def assert_trees_close(a, b) -> None:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb) > 10
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_a_population_of_runs_is_the_runs_trained_alone():
    """Four runs (seed, schedule) vmapped together, against each trained by the
    trainer's own path (`ppo.init_vmapped`'s two programs with the schedule's inputs
    from its principal spec, then `jit(vmap(update))` of one seed), after 2 iterations;
    then the runs reordered (`select`) and trained a third."""
    seeds = (3, 4, 5, 6)
    population, state = Population.create(lever_config(), seeds, np.array(SCHEDULES),
                                          LEVER_GAME)
    state, objectives = population.advance(state, 2)
    assert objectives.done.shape == (4, 2, 1, 16)  # runs, iterations, periods, games
    assert objectives.done.all()  # every episode is one period, one rollout

    fns = ppo.make_functions(lever_config(), LEVER_GAME)
    init_networks = jax.jit(jax.vmap(fns.init_networks))
    init_games = jax.jit(jax.vmap(fns.init_games, in_axes=(0, 0, None)))
    update = jax.jit(jax.vmap(fns.update))  # one program for every run: rates are inputs
    alone = []
    for k, (seed, rates) in enumerate(zip(seeds, SCHEDULES, strict=True)):
        types = rewards.sample_selfishness(LEVER.num_players, seed)[None].astype(np.float32)
        spec = "fixed:" + ",".join(map(str, rates))  # the rates as a principal spec
        one = init_games(init_networks(jax.random.PRNGKey(seed)[None]), jnp.asarray(types),
                         ppo.run_inputs(LEVER, spec))
        for i in range(2):
            one, metrics = update(one)
            ep = metrics["episodes"]
            np.testing.assert_array_equal(np.asarray(ep["done"][0]), objectives.done[k, i])
            np.testing.assert_allclose(np.asarray(ep["metrics"]["objective"][0]),
                                       objectives.value[k, i], rtol=1e-5)
        assert_trees_close(Population.select(state, [k]), one)
        alone.append(one)
    # The runs differ (the seeds and the rates reached them); each kept its own rates.
    kernels = np.asarray(state.players_params["params"]["pi"]["kernel"])
    assert not np.allclose(kernels[0], kernels[1])
    np.testing.assert_allclose(np.asarray(state.inputs.rates), SCHEDULES, rtol=1e-6)

    # Reordered (the same size: no new compile), each run resumes its own training.
    order = [3, 2, 1, 0]
    moved, _ = population.advance(Population.select(state, order), 1)
    np.testing.assert_allclose(np.asarray(moved.inputs.rates), SCHEDULES[::-1], rtol=1e-6)
    for position, k in enumerate(order):
        assert_trees_close(Population.select(moved, [position]), update(alone[k])[0])


def test_population_save_and_load_round_trip(tmp_path):
    population, state = Population.create(lever_config(), (5, 6, 7, 8), np.zeros((4, 3)),
                                          LEVER_GAME)
    path = str(tmp_path / "state.npz")
    Population.save(state, path)
    loaded = population.load(path, 4)
    for x, y in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(loaded),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert list(tmp_path.iterdir()) == [tmp_path / "state.npz"]  # no temporary left
    with pytest.raises(ValueError, match="does not fit 3 runs"):
        population.load(path, 3)


def test_population_refuses_a_learned_principal_and_bad_rates():
    with pytest.raises(ValueError, match="principal='learned'"):
        Population.create(lever_config("learned"), (1,), np.zeros((1, 3)), LEVER_GAME)
    with pytest.raises(ValueError, match=r"shape \(len\(seeds\), num_brackets\) = \(2, 3\)"):
        Population.create(lever_config(), (1, 2), np.zeros((2, 2)), LEVER_GAME)
    with pytest.raises(ValueError, match=r"rates must be in \[0, 1\]"):
        Population.create(lever_config(), (1,), np.full((1, 3), 1.5), LEVER_GAME)


# ------------------------------------------------------------ the lagged lever
def test_the_lever_points_the_wrong_way_with_frozen_players():
    """One seed's players under rates 0, 0.25, 0.5 and 1 in their first iteration: they
    do not see the rates, so they act alike and W differs by the collection cost alone,
    c * r * 10 steps = 2 r an episode: lower tax is better for frozen players. (4 runs:
    the search's second rung's program.)"""
    assert LEVER_GAME.threshold == pytest.approx(0.7)
    levels = np.array([0.0, 0.25, 0.5, 1.0])
    population, state = Population.create(
        lever_config(), (7,) * 4, np.array([(r, 0.0, 0.0) for r in levels]), LEVER_GAME)
    _, objectives = population.advance(state, 1)
    assert objectives.done.all()
    w = objectives.value[:, 0, 0, :]  # (rates, games)
    np.testing.assert_allclose(w[0] - w, 2.0 * levels[:, None] + 0 * w, atol=1e-5)
    assert w[0].std() > 0  # the games differ: the players act at random


@pytest.fixture(scope="module")
def lever_search(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    lines: list[str] = []
    result = search(lever_config(), output_dir=str(folder), game_impl=LEVER_GAME,
                    print_fn=lines.append, **SEARCH_ARGS)
    return result, folder, lines


def test_search_picks_the_lagged_optimum(lever_search):
    result, _, lines = lever_search
    assert result.chosen == (1.0, 0.0, 0.0)
    first = result.rungs[0]
    # Players learning: sustaining under rate 1 (W 22.0 over iterations 10-20, on its
    # way to 24) beats every lower rate (20.4-20.8: harvesters at 20, some still sustain).
    assert first.scores[1] > max(first.scores[:1] + first.scores[2:]) + 0.5
    assert result.rungs[1].scores[0] == pytest.approx(24.0, abs=0.2)  # all sustain
    rungs = [line for line in lines if ": iteration " not in line]
    assert len(rungs) == 2 and rungs[0].startswith("search rung 1/2: 4 candidates x 2 seeds")
    # Progress within a rung, every tenth of its iterations (20 each: every 2nd), the
    # last one left to the rung's line: 9 per rung.
    progress = [line for line in lines if ": iteration " in line]
    assert [line.split(";")[0] for line in progress[:2]] == [
        "search rung 1/2 (4 candidates x 2 seeds): iteration 2 of 20",
        "search rung 1/2 (4 candidates x 2 seeds): iteration 4 of 20"]
    assert len(progress) == 18 and progress[-1].startswith(
        "search rung 2/2 (2 candidates x 2 seeds): iteration 38 of 40")


def test_search_rungs_follow_the_halving_plan_and_count_game_steps(lever_search):
    result, folder, _ = lever_search
    plan = halving_plan(4, 5, 2, 40, first_cut_budget=20)
    # By hand: the ladder 5, 10, 20 starts at 20 (the first cut); 4 x 20, then 2 x 40.
    assert [(r.candidates, r.budget) for r in plan] == [(4, 20), (2, 40)]
    assert [(len(r.candidates), r.budget) for r in result.rungs] == [(4, 20), (2, 40)]
    assert result.rungs[0].candidates == CANDIDATES
    # The survivors are rung 1's two best, best first.
    order = np.argsort(-np.asarray(result.rungs[0].scores), kind="stable")[:2]
    assert result.rungs[1].candidates == tuple(CANDIDATES[i] for i in order)
    n = STEPS_PER_ITERATION
    assert result.rungs[0].game_steps == 20 * n and result.rungs[1].game_steps == 40 * n
    # 4 candidates x 2 seeds x 20 iterations, then 2 x 2 x 20 more, at 160 game steps.
    assert result.game_steps == (4 * 2 * 20 + 2 * 2 * 20) * n == 38_400
    saved = json.loads((folder / RESULT_FILE).read_text())
    assert saved["game_steps"] == 38_400 and tuple(saved["chosen"]) == result.chosen
    assert saved["state"] is None and not list(folder.glob("state_rung*"))
    for rung in result.rungs:  # a candidate's score is its seeds' mean
        np.testing.assert_allclose(rung.scores, np.mean(rung.seed_scores, axis=1))


def test_an_interrupted_search_resumes_to_the_same_result(lever_search, tmp_path):
    result, _, _ = lever_search

    def stop_after_first(k, rung):
        if k == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search(lever_config(), output_dir=str(tmp_path), game_impl=LEVER_GAME,
               on_rung=stop_after_first, print_fn=lambda line: None, **SEARCH_ARGS)
    assert [p.name for p in tmp_path.glob("state_rung*")] == ["state_rung1.npz"]
    lines, called = [], []
    resumed = search(lever_config(), output_dir=str(tmp_path), game_impl=LEVER_GAME,
                     on_rung=lambda k, rung: called.append(k), print_fn=lines.append,
                     **SEARCH_ARGS)
    assert called == [1] and lines[0] == "search: resuming after rung 1 of 2"
    assert resumed.chosen == result.chosen and resumed.game_steps == result.game_steps
    for a, b in zip(resumed.rungs, result.rungs, strict=True):
        assert dataclasses.replace(a, elapsed_s=0.0) == dataclasses.replace(b, elapsed_s=0.0)
    # A finished search answers from its file; other arguments are refused.
    again = search(lever_config(), output_dir=str(tmp_path), game_impl=LEVER_GAME,
                   print_fn=lambda line: None, **SEARCH_ARGS)
    assert again == resumed
    with pytest.raises(ValueError, match=r"other arguments \(window differ\)"):
        search(lever_config(), output_dir=str(tmp_path), game_impl=LEVER_GAME, window=0.25,
               **SEARCH_ARGS)


def test_a_search_file_from_before_a_config_field_was_added_still_answers(lever_search,
                                                                        tmp_path):
    """A config field added since a search.json was written (absent from its arguments)
    is no difference while it holds its default (the committed paper_fast search predates
    five recipe fields); one that holds another value is."""
    result, folder, _ = lever_search
    saved = json.loads((folder / RESULT_FILE).read_text())
    assert saved["arguments"]["config"]["train"]["gamma"] == 0.99  # TrainConfig's default
    del saved["arguments"]["config"]["train"]["gamma"]
    (tmp_path / RESULT_FILE).write_text(json.dumps(saved))
    answered = search(lever_config(), output_dir=str(tmp_path), game_impl=LEVER_GAME,
                      on_rung=lambda k, rung: pytest.fail("trained"),
                      print_fn=lambda line: None, **SEARCH_ARGS)
    assert answered.chosen == result.chosen and answered.rungs == result.rungs
    del saved["arguments"]["config"]["train"]["lr"]  # 3e-3 here, 2.5e-4 by default
    (tmp_path / RESULT_FILE).write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"other arguments \(config differ\)"):
        search(lever_config(), output_dir=str(tmp_path), game_impl=LEVER_GAME,
               print_fn=lambda line: None, **SEARCH_ARGS)


def test_a_finished_search_answers_the_least_tax_rule_from_its_file(lever_search):
    """The rule trains nothing: the finished fixture answers it (no rung runs). On the
    lagged-lever game rate 1's lead over rate 0.5 holds on both seeds (all sustain at
    rate 1), far beyond one paired standard error, so the lagged optimum stays."""
    result, folder, _ = lever_search
    last = result.rungs[-1]
    assert json.loads((folder / RESULT_FILE).read_text())["choice"] == "best"
    lines, called = [], []
    answered = search(lever_config(), output_dir=str(folder), game_impl=LEVER_GAME,
                      choice="least_tax", on_rung=lambda k, rung: called.append(k),
                      print_fn=lines.append, **SEARCH_ARGS)
    assert called == [] and lines == [f"search: {folder / RESULT_FILE} is finished; chosen "
                                      "(1.0, 0.0, 0.0) (least_tax)"]
    assert answered.chosen == (1.0, 0.0, 0.0) and answered.rungs == result.rungs
    d = np.subtract(last.seed_scores[0], last.seed_scores[1])  # the optimum's lead
    assert (d > 0).all() and d.mean() > d.std(ddof=1) / np.sqrt(len(d))
    with pytest.raises(ValueError, match=r"choice must be one of \['best', 'least_tax'\]"):
        search(lever_config(), output_dir=str(folder), game_impl=LEVER_GAME,
               choice="simplest", **SEARCH_ARGS)


@pytest.mark.slow  # about 33 s of CPU, mostly the compile of the learned principal's run
def test_the_same_timescale_ppo_principal_ends_far_from_the_optimum():
    """The learned principal (the trainer's recipe: phase 1 of 16 players-only
    iterations, then PPO on its per-period W) on the same game, seeds 1, 2 and 3 for 80
    iterations: its mean bracket-0 rate over the last 16 iterations stays below 0.5
    (rate 1 is the optimum); the frozen-players gradient pushes it down."""
    config = lever_config("learned", num_iterations=80)
    train = ppo.make_train(config, LEVER_GAME)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (1, 2, 3)])
    types = jnp.asarray(np.stack([rewards.sample_selfishness(2, s) for s in (1, 2, 3)]),
                        jnp.float32)
    _, metrics = jax.jit(jax.vmap(train))(keys, types)
    rate = np.asarray(metrics["principal_diagnostics"]["mean_rate"])[:, -16:, 0]
    assert (rate.mean(axis=1) < 0.5).all(), rate.mean(axis=1)
    assert (np.asarray(metrics["tax_cap"])[:, -16:] == 1.0).all()  # the cap does not hold it


# ------------------------------------------------------------------ the seeds
def test_search_seeds_are_disjoint_from_the_reported_seeds():
    from sed_meltingpot.experiment.grid import MAX_TRAIN_SEED as EXPERIMENT_MAX

    assert MAX_TRAIN_SEED == EXPERIMENT_MAX
    assert search_seeds(3) == (900_000, 900_001, 900_002) and SEARCH_SEED_START == 900_000
    assert search_seeds(2, reported=range(8)) == (900_000, 900_001)
    with pytest.raises(ValueError, match=r"disjoint from the reported seeds; both hold \[900001\]"):
        search_seeds(2, reported=[0, 900_001])
    with pytest.raises(ValueError, match="num must be an integer in"):
        search_seeds(100_001)
    # A fresh range (a protocol revised on earlier search seeds): the same checks hold.
    assert search_seeds(3, start=910_000) == (910_000, 910_001, 910_002)
    assert search_seeds(1, start=MAX_TRAIN_SEED - 1) == (MAX_TRAIN_SEED - 1,)
    with pytest.raises(ValueError, match=r"num must be an integer in \[1, 1\]"):
        search_seeds(2, start=MAX_TRAIN_SEED - 1)  # would reach MAX_TRAIN_SEED
    with pytest.raises(ValueError, match="start must be an integer"):
        search_seeds(1, start=MAX_TRAIN_SEED)
    with pytest.raises(ValueError, match=r"both hold \[5\]"):
        search_seeds(2, reported=[5], start=4)
    check_disjoint((1, 2), (3, 4))
    with pytest.raises(ValueError, match=r"both hold \[6\]"):  # refused before training
        search(lever_config(), seeds=(5, 6), reported_seeds=(6, 7), game_impl=LEVER_GAME,
               **{k: v for k, v in SEARCH_ARGS.items() if k != "seeds"})


def test_importing_design_stays_light_and_serves_the_search_lazily():
    code = ("import sys, sed_meltingpot.design as d; assert 'jax' not in sys.modules; "
            "assert d.search_seeds(1) == (900000,) and 'jax' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_default_candidates_and_argument_checks():
    cands = default_candidates()
    assert len(cands) == 31 and len(set(cands)) == 31
    assert cands[0] == (0.0, 0.0, 0.0) and cands[26] == (1.0, 1.0, 1.0)
    assert cands[27:] == ((0.2, 1.0, 1.0), (0.4, 1.0, 1.0), (0.6, 1.0, 1.0), (0.8, 1.0, 1.0))
    base = {**SEARCH_ARGS, "game_impl": LEVER_GAME}
    with pytest.raises(ValueError, match=r"window must be in \(0, 1\]"):
        search(lever_config(), **{**base, "window": 0.0})
    with pytest.raises(ValueError, match=r"max_budget must be an integer in \[1, num_itera"):
        search(lever_config(), **{**base, "max_budget": 80})
    with pytest.raises(ValueError, match="candidates must have num_brackets=3 rates"):
        search(lever_config(), **{**base, "candidates": ((0.0,), (1.0,))})
    with pytest.raises(ValueError, match="first_cut_budget"):
        search(lever_config(), **{**base, "first_cut_budget": 41})


def test_the_committed_searches_answer_their_saved_choice():
    """A finished search answers from its last rung: the rule it was run with (files
    written before the rule existed hold no "choice": the default, best), recomputed
    from the saved scores, must give the schedule it saved."""
    from sed_meltingpot.design.halving import choose

    files = sorted(Path(__file__).resolve().parents[1].glob(
        "docs/results/*/searches/*/search.json"))
    assert len(files) >= 5
    for path in files:
        saved = json.loads(path.read_text())
        last = saved["rungs"][-1]
        candidates = [tuple(c) for c in last["candidates"]]
        rule = saved.get("choice", "best")
        assert candidates[choose(rule, candidates, last["seed_scores"])] == \
            tuple(saved["chosen"]), path
