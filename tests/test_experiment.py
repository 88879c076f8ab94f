"""The results experiment (issue 10): plan, statistics, outputs, and a real smoke grid.

Statistics are checked against independent computations: Welch's t by its
textbook formula with the p-value from tests/t_distribution.py (not scipy),
Holm's correction on a hand-worked example. The orchestration is checked end
to end: with a stand-in engine whose episodes are known (fast), and with
`scripts/experiment.py --grid=smoke` training and evaluating for real with each
engine (about 4 and 3 minutes).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import t_distribution

from sed_meltingpot import evaluation, voting, welfare
from sed_meltingpot import experiment as ex
from sed_meltingpot import experiment_runs as runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


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
    from sed_meltingpot.config import GameConfig

    GameConfig(voting_rule="fixed:0.5").validate()
    with pytest.raises(ValueError, match="fixed:2"):
        GameConfig(voting_rule="fixed:2").validate()
    out = subprocess.run([PYTHON, "scripts/train.py", "--voting_rule=fixed:3"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "--voting_rule" in out.stderr and "fixed:3" in out.stderr and "[0, 1]" in out.stderr


def test_fixed_vote_sets_the_games_eta_without_changing_types():
    from sed_meltingpot.config import GameConfig
    from sed_meltingpot.game import SEDGame

    game = SEDGame(GameConfig(num_players=3, episode_length=50, tax_period=25,
                              voting_rule="fixed:0.2"), seed=3)
    try:
        game.reset()
        assert game.eta == 0.2
        np.testing.assert_allclose(game.selfishness, SEDGame(
            GameConfig(num_players=3, episode_length=50, tax_period=25), seed=3).selfishness)
    finally:
        game.close()


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


def test_holm_hand_example():
    # Sorted p: 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04;
    # the running maximum makes the last 0.06.
    assert ex.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ex.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = ex.holm([0.02, math.nan, 0.04])  # NaN is left out of the family (m = 2)
    assert adjusted[0] == pytest.approx(0.04) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])


# --------------------------------------------------------------------- plan
def test_plan_trains_scripted_principals_once_per_seed():
    objectives, principals, seeds = list(ex.OBJECTIVES), list(ex.PRINCIPALS), [0, 1]
    tasks = ex.plan_training(objectives, principals, seeds)
    # learned: 4 objectives x 2 seeds; none, flat, progressive, regressive, random: 5 x 2.
    assert len(tasks) == 4 * 2 + 5 * 2
    assert len({t.key for t in tasks}) == len(tasks)
    assert all(t.objective is None for t in tasks if t.principal != ex.LEARNED)
    assert {t.voting_rule for t in tasks if t.principal == ex.LEARNED} == {
        "fixed:0", "fixed:0.5", "fixed:1", "mean"}
    items = ex.plan_evaluation(tasks, objectives, principals)
    cells = [(i.objective, i.principal, i.task.seed) for i in items]
    assert len(cells) == len(set(cells)) == 4 * 7 * 2  # every cell exactly once
    for i in items:
        if i.principal == ex.BEST_FIXED:  # searched against the learned run's players
            assert i.task.principal == ex.LEARNED and i.task.objective == i.objective


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
    (["--principals=none,random"], "--principals must include learned"),
    (["--objectives=eta=2"], "--objectives=eta=2"),
])
def test_bad_flags_exit_with_a_message(args, message, tmp_path):
    out = subprocess.run([PYTHON, "scripts/experiment.py", f"--output_dir={tmp_path}", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert message in out.stderr


# ------------------------------------------------------------------ outputs
def test_objective_curve_is_the_mean_w_eta_of_the_logged_episodes():
    episodes = np.array([[1.0, 5.0, 2.0], [3.0, 3.0, 6.0]])  # apples per player, 2 episodes
    record = {"game_steps": 100, "utilitarian": welfare.utilitarian(episodes).mean(),
              "egalitarian": welfare.egalitarian(episodes).mean(), "eta": 0.3}
    for eta in (0.0, 0.3, 1.0):
        x, y = ex.objective_curve([record], eta)
        assert y[0] == pytest.approx(welfare.interpolated(episodes, eta).mean())
    x, y = ex.objective_curve([record], None)  # the record's own eta
    assert y[0] == pytest.approx(welfare.interpolated(episodes, 0.3).mean())


def test_budget_quarters_by_hand_and_the_curves_csv(tmp_path):
    """Seed 0 rises 1..8, seed 1 is flat at 5: quarters (1.5, 3.5, 5.5, 7.5) and
    (5, 5, 5, 5), so the mean change Q4 - Q3 is (2 + 0) / 2 = 1 with a t-interval
    over 2 seeds of 1 ± t(0.975, 1) * sqrt(2) / sqrt(2); a 3-point run is left out.
    Quarter means over seeds: (1.5 + 5) / 2 = 3.25, then 4.25, 5.25, 6.25."""
    def run(values):  # eta=1: W_eta is the utilitarian sum
        return [{"game_steps": 10 * (i + 1), "utilitarian": v, "egalitarian": 0.0}
                for i, v in enumerate(values)]

    curves = {"eta=1": {"learned": [run(range(1, 9)), run([5] * 8)],
                        "none": [run([1, 2, 3])]}}
    (q,) = ex.budget_quarters(curves)
    assert (q["objective"], q["principal"], q["seeds"]) == ("eta=1", "learned", 2)
    assert [s.mean for s in q["quarters"]] == pytest.approx([3.25, 4.25, 5.25, 6.25])
    assert q["change"].mean == pytest.approx(1.0)
    t975 = math.tan(math.pi * (0.975 - 0.5))  # Student t with 1 df is the Cauchy law
    assert q["change"].half_width == pytest.approx(t975 * 1.0, rel=1e-6)
    md = ex.results_markdown(synthetic_rows(), objectives=["eta=1"], principals=ex.PRINCIPALS,
                             substrate="lua", meta={}, num_brackets=3, curves=curves)
    assert "## Is the budget enough?" in md and "| eta=1 | learned | 3.25 ± " in md
    path = ex.write_learning_curves(curves, {"eta=1": {"learned": [4, 7], "none": [4]}},
                                    str(tmp_path / "curves.csv"))
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 8 + 8 + 3
    assert {(r["principal"], r["seed"]) for r in rows} == {("learned", "4"), ("learned", "7"),
                                                             ("none", "4")}
    assert [float(r["W_eta"]) for r in rows if r["seed"] == "7"] == [5.0] * 8


def synthetic_rows(seeds=(0, 1, 2), twin=False):
    """Learned beats every baseline by 10 under every objective."""
    rows = []
    for o in ex.OBJECTIVES:
        for k, p in enumerate(ex.PRINCIPALS):
            subs = ["twin", "lua"] if twin and p == ex.LEARNED else ["twin" if twin else "lua"]
            for sub in subs:
                for s in seeds:
                    value = (20.0 if p == ex.LEARNED else 10.0 - k * 0.1) + s
                    row = {"objective": o, "principal": p, "seed": s, "substrate": sub,
                           "players_from": "x", "rates": "", "episodes": 2}
                    row.update({m: value for m in ex.metric_columns(3)})
                    row.update({f"rate_b{b}": 0.1 * b for b in range(3)})
                    rows.append(row)
    return rows


def test_csv_and_results_md_structure(tmp_path):
    rows = synthetic_rows()
    path = ex.write_csv(rows, str(tmp_path / "r.csv"), 3)
    back = ex.read_csv(path)
    assert len(back) == len(rows) == 4 * 7 * 3
    with open(path) as f:
        header = next(csv.reader(f))
    for col in ("objective", "principal", "seed", "substrate", "W_eta", "utilitarian",
                "egalitarian", "nash_welfare", "equality", "income_equality", "sustainability",
                "peace", "tax_revenue", "rate_b0", "rate_b1", "rate_b2"):
        assert col in header
    assert back[5]["objective"] == rows[5]["objective"] and back[5]["seed"] == rows[5]["seed"]
    assert back[5]["utilitarian"] == pytest.approx(rows[5]["utilitarian"])

    md = ex.results_markdown(back, objectives=list(ex.OBJECTIVES),
                             principals=list(ex.PRINCIPALS), substrate="lua",
                             meta={"grid": "smoke", "engine": "rllib"}, num_brackets=3)
    for o in ex.OBJECTIVES:
        assert f"## Objective {o}" in md
    # Per cell: values 20 + s over seeds 0, 1, 2: mean 21, half-width t(0.975, 2) * 1 / sqrt(3).
    half = evaluation.student_t_quantile(0.975, 2) / math.sqrt(3)
    assert f"| learned | 21 ± {half:.2g} |" in md
    test_lines = [line for line in md.splitlines() if line.startswith("| eta=") or
                  line.startswith("| voted")]
    assert len(test_lines) == 4 * 6  # every objective x baseline
    assert all(line.endswith("| yes |") for line in test_lines)
    assert "Transfer gap" not in md

    twin = ex.results_markdown(synthetic_rows(twin=True), objectives=list(ex.OBJECTIVES),
                               principals=list(ex.PRINCIPALS), substrate="twin",
                               meta={}, num_brackets=3)
    assert "| learned (lua) |" in twin and "Transfer gap" in twin


def test_welch_holm_table_rows_match_direct_computation():
    rows = synthetic_rows(seeds=(0, 1, 2, 3))
    rng = np.random.default_rng(0)
    for r in rows:  # noise so that every test differs
        r["W_eta"] += float(rng.normal())
    tests = ex.comparisons(rows, list(ex.OBJECTIVES), list(ex.PRINCIPALS), "lua")
    assert len(tests) == 24
    raw = [t["p"] for t in tests]
    assert [t["p_holm"] for t in tests] == pytest.approx(ex.holm(raw))
    # The first test by hand: eta=0, learned against none, over the 4 seeds.
    cell = {p: [r["W_eta"] for r in rows if r["objective"] == "eta=0" and r["principal"] == p]
            for p in (ex.LEARNED, "none")}
    assert (tests[0]["objective"], tests[0]["baseline"]) == ("eta=0", "none")
    assert tests[0]["n_a"] == 4
    assert tests[0]["p"] == pytest.approx(ex.welch_test(cell[ex.LEARNED], cell["none"])["p"])
    assert tests[0]["diff"] == pytest.approx(np.mean(cell[ex.LEARNED]) - np.mean(cell["none"]))


# ----------------------------------------------------- orchestration (fake)
class FakeEngine:
    """Known episodes: apples per player depend on the principal and eta
    only through the game's formulas, so the rows can be checked."""

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
                                        "egalitarian": 1.0 * it, "eta": 0.5}) + "\n")
            with open(os.path.join(d, "summary.json"), "w") as f:
                json.dump({}, f)

    def evaluate(self, grid, run_dir, voting_rule, principal, seed, num_episodes):
        eta = voting.vote(voting_rule, [0.5, 0.5, 0.5])
        bonus = 0.0 if principal != "learned" else 5.0
        out = []
        for k in range(num_episodes):
            apples = np.array([1.0 + k, 2.0, 3.0 + bonus])
            out.append({"objective": float(welfare.interpolated(apples, eta)), "eta": eta,
                        "utilitarian": float(apples.sum()), "egalitarian": float(apples.min()),
                        "nash_welfare": float(welfare.nash_welfare(apples)),
                        "productivity": float(apples.sum()),
                        "equality": float(welfare.equality(apples)), "income_equality": 1.0,
                        "sustainability": 10.0, "peace": 3.0, "tax_revenue": 0.0,
                        "principal_return": 0.0, "rate_b0": 0.0, "rate_b1": 0.0,
                        "rate_b2": 0.0})
        return out


def test_orchestration_with_a_stand_in_engine(tmp_path, monkeypatch):
    monkeypatch.setitem(runs.ENGINES, "fake", FakeEngine)
    grid = ex.GRIDS["smoke"]
    jobs = runs.make_jobs(FakeEngine(), grid, str(tmp_path), list(ex.OBJECTIVES),
                          list(ex.PRINCIPALS), [0, 1])
    assert len(jobs) == 18
    results = runs.run_jobs(jobs, num_workers=1, ray_address=None, log=lambda s: None)
    rows = [r for res in results for r in res["rows"]]
    assert len(rows) == 4 * 7 * 2
    by = {(r["objective"], r["principal"], r["seed"]): r for r in rows}
    # eta=0: W = min apples = 1 (episode 0: [1, 2, 3]); learned: min of [1, 2, 8] = 1.
    assert by[("eta=0", "none", 0)]["W_eta"] == pytest.approx(1.0)
    # eta=1 learned: sum [1, 2, 8] = 11.
    assert by[("eta=1", "learned", 1)]["W_eta"] == pytest.approx(11.0)
    # best_fixed is one schedule of the {0, 1}^3 grid.
    assert by[("eta=0.5", "best_fixed", 0)]["rates"] in {
        ",".join(f"{r:g}" for r in s) for s in evaluation.rate_grid(2, 3)}
    # A second call reuses the cached training and evaluations.
    again = runs.run_jobs(jobs, num_workers=1, ray_address=None, log=lambda s: None)
    assert sum(r["trained"] for r in again) == 0
    assert [r["rows"] for r in again] == [r["rows"] for r in results]
    curve = ex.plot_learning_curves(
        {"eta=0": {"learned": [evaluation_progress(jobs[0].run_dirs[0])]}},
        str(tmp_path / "c.png"))
    assert os.path.getsize(curve) > 1000


def evaluation_progress(run_dir):
    from sed_meltingpot import plotting

    return plotting.load_progress(run_dir)


# --------------------------------------------------------- real smoke grid
@pytest.mark.parametrize("engine", ["jax", "rllib"])
def test_smoke_grid_end_to_end(tmp_path, engine):
    """The whole smoke grid, real tiny runs, both engines in the default run (on the
    idle 2-core machine from an empty compile cache: jax 4.0 min, mostly the three
    XLA compiles the grid's jobs share; rllib 2.6 min)."""
    out = tmp_path / "smoke"
    proc = subprocess.run([PYTHON, "scripts/experiment.py", "--grid=smoke", f"--engine={engine}",
                           f"--output_dir={out}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = ex.read_csv(str(out / "results.csv"))
    every_cell = {(o, p, s) for o in ex.OBJECTIVES for p in ex.PRINCIPALS for s in (0, 1)}
    played = ex.SUBSTRATE_TWIN if engine == "jax" else ex.SUBSTRATE_LUA
    main = [r for r in rows if r["substrate"] == played]
    cells = {(r["objective"], r["principal"], r["seed"]) for r in main}
    assert cells == every_cell and len(main) == len(cells)
    # The jax engine's learned players and principal also play the Lua substrate
    # (the transfer gap), one row per objective and seed; nothing else does.
    lua_rows = [r for r in rows if r["substrate"] != played]
    assert {(r["objective"], r["principal"], r["seed"]) for r in lua_rows} == (
        {(o, ex.LEARNED, s) for o in ex.OBJECTIVES for s in (0, 1)} if engine == "jax"
        else set())
    assert len(lua_rows) == (len(ex.OBJECTIVES) * 2 if engine == "jax" else 0)
    assert not ex.non_finite(rows, ex.metric_columns(3))
    for r in rows:
        eta = voting.fixed_eta(ex.OBJECTIVES[r["objective"]])
        if eta is not None:
            assert r["eta"] == pytest.approx(eta)
            # W_eta of every episode is eta * sum + (1 - eta) * min, so the means obey it too.
            assert r["W_eta"] == pytest.approx(
                eta * r["utilitarian"] + (1 - eta) * r["egalitarian"])
    md = (out / "results.md").read_text()
    assert md.count("## Objective") == 4 and "Holm" in md
    for name in ("learning_curves.png", "equality_productivity.png"):
        assert (out / name).stat().st_size > 1000


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

    from sed_meltingpot.twin import checkpoint as ckpt
    from sed_meltingpot.twin import networks

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
    income (equality 1); no tax leaves post-tax equality = equality of apples;
    W_eta = eta * sum + (1 - eta) * min; the same seeds replay the same worlds."""
    from sed_meltingpot.config import GameConfig

    game = GameConfig(num_players=3, episode_length=100, tax_period=25)
    run = make_twin_run(str(tmp_path / "run"), game)
    full = runs.twin_episodes(run, "fixed:0.3", (1.0, 1.0, 1.0), ex.EVAL_SEED, 3)
    free = runs.twin_episodes(run, "fixed:0.3", "none", ex.EVAL_SEED, 3)
    again = runs.twin_episodes(run, "fixed:0.3", "none", ex.EVAL_SEED, 3)
    assert free == again
    for e in full:
        assert [e[f"rate_b{b}"] for b in range(3)] == pytest.approx([1.0, 1.0, 1.0])
        assert e["eta"] == pytest.approx(0.3)
        assert e["W_eta" if "W_eta" in e else "objective"] == pytest.approx(
            0.3 * e["utilitarian"] + 0.7 * e["egalitarian"], abs=1e-4)
        assert e["tax_revenue"] == pytest.approx(e["productivity"], abs=1e-3)
        assert e["income_equality"] == pytest.approx(1.0, abs=1e-5)
    for e in free:
        assert e["tax_revenue"] == 0.0
        assert e["income_equality"] == pytest.approx(e["equality"], abs=1e-6)
    assert sum(e["productivity"] for e in free) > 0  # the episodes were played


@pytest.mark.slow
def test_runs_spread_as_ray_tasks(tmp_path):
    """--num_workers=2: the jobs run as Ray tasks (local Ray), rows as in-process."""
    out = tmp_path / "ray"
    proc = subprocess.run([PYTHON, "scripts/experiment.py", "--grid=smoke", "--engine=rllib",
                           "--objectives=eta=0", "--principals=learned,none", "--seeds=0,1",
                           "--num_workers=2", f"--output_dir={out}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Started a local Ray instance" in proc.stderr + proc.stdout
    rows = ex.read_csv(str(out / "results.csv"))
    assert {(r["principal"], r["seed"]) for r in rows} == {
        (p, s) for p in ("learned", "none") for s in (0, 1)}
    assert not ex.non_finite(rows, ex.metric_columns(3))


def t975(df: int) -> float:
    """The 97.5% Student-t quantile by bisection on the written-out CDF."""
    lo, hi = 0.0, 20.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_distribution.student_t_cdf(mid, df) < 0.975 else (lo, mid)
    return lo


def readme_section(start: str, end: str) -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index(start):]
    return section[:section.index(end)]


def seed_quarters(points, objective: str, principal: str) -> np.ndarray:
    """(seeds, 4): each seed's mean W_eta in each quarter of its logged iterations (the
    first n % 4 quarters get one point more), from learning_curves.csv rows."""
    out = []
    for seed in sorted({p["seed"] for p in points}):
        y = [float(p["W_eta"]) for p in points if p["objective"] == objective
             and p["principal"] == principal and p["seed"] == seed]
        n = len(y)
        sizes = [n // 4 + (1 if k < n % 4 else 0) for k in range(4)]
        starts = np.cumsum([0] + sizes)
        out.append([np.mean(y[starts[k]:starts[k + 1]]) for k in range(4)])
    return np.asarray(out)


def test_readme_budget_check_matches_its_committed_curves():
    """The README's 4x-budget table is the quarter means of each seed's W_eta curve in
    docs/results/budget/learning_curves.csv (quarters cut by hand here: the first
    n % 4 get one point more), averaged over seeds, with 95% t half-widths; its
    held-out comparison is results.csv's mean, half-width and Welch p."""
    import csv as csv_module
    import re

    folder = os.path.join(ROOT, "docs", "results", "budget")
    with open(os.path.join(folder, "learning_curves.csv")) as f:
        points = list(csv_module.DictReader(f))
    section = readme_section("### Is the budget enough? A 4x-budget check", "## Docker")
    table = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(table) == 2

    def stat(values):
        values = np.asarray(values, dtype=float)
        return values.mean(), t975(len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))

    for line, principal in zip(table, ("learned", "none"), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        per_seed = seed_quarters(points, "voted", principal)
        columns = [per_seed[:, k] for k in range(4)] + [per_seed[:, 3] - per_seed[:, 2]]
        for cell, values in zip(cells, columns, strict=True):
            mean, half = (float(x) for x in re.findall(r"[-\d.]+", cell))
            want_mean, want_half = stat(values)
            assert mean == pytest.approx(want_mean, rel=0.005, abs=0.006), (principal, cell)
            assert half == pytest.approx(want_half, rel=0.05, abs=0.06), (principal, cell)
    rows = ex.read_csv(os.path.join(folder, "results.csv"))
    held_out = {p: [r["W_eta"] for r in rows if r["principal"] == p and r["substrate"] ==
                    ex.SUBSTRATE_TWIN] for p in ("learned", "none")}
    quoted = re.search(r"W_eta ([\d.]+) ± ([\d.]+) vs ([\d.]+) ± ([\d.]+) on held-out seeds, "
                       r"Welch p = ([\d.]+)", " ".join(section.split()))
    assert quoted, "the README's held-out comparison"
    numbers = [float(x) for x in quoted.groups()]
    for k, principal in enumerate(("learned", "none")):
        want_mean, want_half = stat(held_out[principal])
        assert numbers[2 * k] == pytest.approx(want_mean, abs=0.06)
        assert numbers[2 * k + 1] == pytest.approx(want_half, rel=0.05, abs=0.6)
    a, b = (np.asarray(held_out[p], dtype=float) for p in ("learned", "none"))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p_value = 2 * (1 - t_distribution.student_t_cdf(abs(t), df))
    assert numbers[4] == pytest.approx(p_value, abs=0.006)


def test_readme_small_grid_table_matches_the_committed_results():
    """Every W_eta cell of the README's small-grid table is the mean and 95%
    half-width (computed here with numpy and t_distribution) of the per-seed
    values in docs/results/small/results.csv, the committed command's output."""
    import re

    rows = ex.read_csv(os.path.join(ROOT, "docs", "results", "small", "results.csv"))
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("### Small grid on the 2-core machine"):]
    section = section[:section.index("What the numbers say")]
    table = [line for line in section.splitlines() if line.startswith("| ")][1:]
    names = {"learned (played on the twin)": ("learned", ex.SUBSTRATE_TWIN),
             "learned (played on the Lua substrate)": ("learned", ex.SUBSTRATE_LUA)}
    objectives = ("eta=0", "eta=0.5", "eta=1", "voted")
    assert len(table) == 8
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        label = cells[0]
        principal, substrate = names.get(label, (label.split(" ")[0], ex.SUBSTRATE_TWIN))
        for objective, cell in zip(objectives, cells[1:], strict=True):
            mean, half = (float(x) for x in re.findall(r"[-\d.]+", cell))
            values = np.array([r["W_eta"] for r in rows if r["objective"] == objective
                               and r["principal"] == principal
                               and r["substrate"] == substrate], dtype=float)
            assert len(values) == 5, (label, objective)
            n = len(values)
            want_half = t975(n - 1) * values.std(ddof=1) / math.sqrt(n)
            assert mean == pytest.approx(values.mean(), abs=0.006, rel=0.005), (label, objective)
            assert half == pytest.approx(want_half, rel=0.05, abs=0.06), (label, objective)
    # "the last quarter of training is above the third in all 24 cells (by 0.22 to
    # 3.53 W_eta), in 10 of them with a 95% interval above zero"
    import csv as csv_module

    with open(os.path.join(ROOT, "docs", "results", "small", "learning_curves.csv")) as f:
        points = list(csv_module.DictReader(f))
    changes = []
    for objective in objectives:
        for principal in ("learned", "none", "flat", "progressive", "regressive", "random"):
            q = seed_quarters(points, objective, principal)
            change = q[:, 3] - q[:, 2]
            assert len(change) == 5, (objective, principal)
            half = t975(4) * change.std(ddof=1) / math.sqrt(5)
            changes.append((change.mean(), change.mean() - half))
    claim = re.search(r"above the third in all (\d+) cells \(by ([\d.]+) to ([\d.]+) W_eta\), "
                      r"in (\d+) of them with a 95% interval above zero",
                      " ".join(readme.split()))
    assert claim, "the README's quarter claim"
    cells, low, high, significant = claim.groups()
    assert int(cells) == len(changes) == 24 and all(m > 0 for m, _ in changes)
    assert float(low) == pytest.approx(min(m for m, _ in changes), abs=0.006)
    assert float(high) == pytest.approx(max(m for m, _ in changes), abs=0.006)
    assert int(significant) == sum(lo > 0 for _, lo in changes)
