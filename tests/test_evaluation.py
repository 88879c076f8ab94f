"""Evaluation, rendering and plotting, checked against independent computations.

Short games (50-100 steps, 1 pixel per tile) keep the file to about a minute
and a half on 2 cores; most of it is importing RLlib for the env once.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys

import imageio.v2 as iio
import numpy as np
import pytest
import t_distribution
from PIL import Image

from sed_meltingpot import evaluation as ev
from sed_meltingpot.analysis import plotting, rendering
from sed_meltingpot.game.config import GameConfig
from sed_meltingpot.game.principals import (
    FixedRates,
    Principal,
    RandomPrincipal,
    no_tax,
    parse_principal,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SIGMA = (0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8)
SETUP = ev.EvalSetup(GameConfig(episode_length=100, tax_period=25, selfishness=SIGMA),
                     frame_stack=1, pixels_per_tile=1)


def busy_players(step: int, player: int, obs: dict, rng: np.random.Generator) -> int:
    """Mostly forward, some turns and zaps: eats apples and zaps others."""
    return int(rng.choice([1, 1, 1, 1, 3, 4, 5, 6, 7]))


# ------------------------------------------------------------------ t quantile
@pytest.mark.parametrize("df, expected", [(4, 2.776), (9, 2.262), (29, 2.045)])
def test_t_quantile_table_values(df, expected):
    assert ev.student_t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_closed_forms_and_symmetry():
    # df=1 is Cauchy: tan(pi (p - 1/2)); df=2: (2p - 1) / sqrt(2 p (1 - p)).
    for p in (0.6, 0.9, 0.975, 0.995):
        assert ev.student_t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)),
                                                            rel=1e-9)
        assert ev.student_t_quantile(p, 2) == pytest.approx(
            (2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
        assert ev.student_t_quantile(1 - p, 7) == pytest.approx(-ev.student_t_quantile(p, 7))
    assert ev.student_t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)
    with pytest.raises(ValueError, match="p="):
        ev.student_t_quantile(1.0, 3)


@pytest.mark.parametrize("df", [1, 2.5, 4, 17, 300])
def test_t_quantile_and_cdf_invert_the_written_out_cdf(df):
    for p in (0.01, 0.3, 0.5, 0.9, 0.975, 0.999):
        q = ev.student_t_quantile(p, df)
        assert t_distribution.student_t_cdf(q, df) == pytest.approx(p, abs=1e-9)
        assert ev.student_t_cdf(q, df) == pytest.approx(p, abs=1e-12)
    for t in (-3.0, -0.2, 0.0, 1.5, 8.0):
        assert ev.student_t_cdf(t, df) == pytest.approx(
            t_distribution.student_t_cdf(t, df), abs=1e-9)


def test_mean_ci_by_hand():
    stat = ev.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0, float("nan")])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)  # t_{.975,4} * sd / sqrt(n)
    assert stat.n == 5 and stat.mean == 3.0
    assert (stat.ci_low, stat.ci_high) == pytest.approx((3 - half, 3 + half), rel=1e-6)
    one = ev.mean_ci([2.0])
    assert one.mean == 2.0 and math.isnan(one.ci_low)
    assert ev.mean_ci([0.2 + 1e-17 * k for k in range(4)]).half_width == 0.0


# ----------------------------------------------------------------- grid search
def test_grid_search_two_point_grid_evaluates_8_schedules_and_picks_best():
    calls = []

    def fake(rates):
        calls.append(rates)
        r0, r1, r2 = rates
        # Two objectives with different winners: (1, 0, 1) and (0, 1, 0).
        return [{"objective": 3 * r0 - 2 * r1 + r2 + e, "equality": r1 - r0 - r2 + e}
                for e in (-0.1, 0.1)]

    grid = ev.rate_grid(2)
    result = ev.grid_search(fake, grid, "objective")
    assert len(calls) == 8 and set(calls) == {
        (a, b, c) for a in (0.0, 1.0) for b in (0.0, 1.0) for c in (0.0, 1.0)}
    assert result.best_rates == (1.0, 0.0, 1.0) and result.best_value == pytest.approx(4.0)
    assert [r for r, _ in result.table] == calls
    calls.clear()
    assert ev.grid_search(fake, grid, "equality").best_rates == (0.0, 1.0, 0.0)
    assert len(calls) == 8
    assert len(ev.rate_grid(3)) == 27 and (0.5, 0.0, 1.0) in ev.rate_grid(3)


def test_evaluate_wires_the_search_on_separate_seeds(monkeypatch):
    calls = []

    def fake(setup, players, principal, *, num_episodes, seed, max_steps=None, **kw):
        rates = tuple(principal.rates) if isinstance(principal, FixedRates) else principal
        calls.append((rates, num_episodes, seed))
        value = -sum((r - t) ** 2 for r, t in zip(rates, (1.0, 0.0, 1.0), strict=True)) if (
            isinstance(rates, tuple)) else 0.0
        return [dict.fromkeys(("objective", "peace"), value + k) for k in range(num_episodes)]

    monkeypatch.setattr(ev.compare, "evaluate_principal", fake)
    results, search = ev.evaluate(SETUP, ev.RandomPlayers(), principals=["none", "best_fixed"],
                                  num_episodes=3, seed=10, grid_resolution=2, search_episodes=2,
                                  print_fn=None)
    search_calls = [c for c in calls if c[2] == 10 + ev.SEARCH_SEED_OFFSET]
    assert len(search_calls) == 8 and all(c[1] == 2 for c in search_calls)
    assert search.best_rates == (1.0, 0.0, 1.0)
    assert calls[-1] == ((1.0, 0.0, 1.0), 3, 10)  # the winner, on the evaluation seeds
    assert [r.name for r in results] == ["none", "best_fixed(1,0,1)"]


# ------------------------------------------------------- metrics of a rollout
def gini_by_pairs(x):
    n, total = len(x), sum(x)
    if total == 0:
        return 0.0
    return sum(abs(a - b) for a in x for b in x) / (2 * n * total)


def bracket_tax(income, rates, thresholds):
    tax = 0.0
    for b, rate in enumerate(rates):
        lo, hi = thresholds[b], thresholds[b + 1]
        if income > lo:
            tax += rate * (min(income, hi) - lo)
    return tax


def test_rollout_metrics_equal_independent_computation():
    steps, periods = [], []

    def record(game, result):
        steps.append({k: np.array(getattr(result.info, k)) for k in ("apples", "zapped", "rates",
                                                            "r_tax")})
        if result.info.period_end:
            periods.append(result.info.period_record)

    rates = (0.3, 0.6, 0.9)
    episodes = ev.evaluate_principal(SETUP, ev.ScriptedPlayers(busy_players), FixedRates(rates),
                                     num_episodes=2, seed=3, on_step=record)
    assert len(steps) == 200 and len(periods) == 8
    for k, got in enumerate(episodes):
        ep = steps[100 * k:100 * (k + 1)]
        n = 7
        totals = [sum(s["apples"][i] for s in ep) for i in range(n)]
        assert sum(totals) > 0, "the scripted players should eat apples"
        eta = sum(SIGMA) / n
        assert got["eta"] == pytest.approx(eta)
        assert got["objective"] == pytest.approx(eta * sum(totals) + (1 - eta) * min(totals))
        assert got["principal_return"] == pytest.approx(got["objective"])
        assert got["utilitarian"] == got["productivity"] == pytest.approx(sum(totals))
        assert got["egalitarian"] == pytest.approx(min(totals))
        assert got["nash_welfare"] == pytest.approx(math.prod(totals) ** (1 / n))
        assert got["equality"] == pytest.approx(1 - gini_by_pairs(totals))
        incomes = [max(0.0, sum(s["r_tax"][i] for s in ep)) for i in range(n)]
        assert got["income_equality"] == pytest.approx(1 - gini_by_pairs(incomes))
        assert got["income_equality"] != pytest.approx(got["equality"])  # the tax redistributed
        eaten = [sum(s["apples"]) for s in ep]
        assert got["sustainability"] == pytest.approx(
            sum(t * c for t, c in enumerate(eaten)) / sum(eaten))
        zaps = sum(int(z) for s in ep for z in s["zapped"])
        assert got["peace"] == pytest.approx(1 - zaps / (100 * n))
        revenue = 0.0
        for p in range(4):
            period = ep[25 * p:25 * (p + 1)]
            incomes = [sum(s["apples"][i] for s in period) for i in range(n)]
            np.testing.assert_allclose(period[0]["rates"], rates)
            taxes = [bracket_tax(a, rates, (0, 10, 20, 10000)) for a in incomes]
            revenue += sum(taxes)
            # Budget balance: what the players received equals what they ate.
            assert sum(sum(s["r_tax"]) for s in period) == pytest.approx(sum(incomes))
        assert revenue > 0
        assert got["tax_revenue"] == pytest.approx(revenue)
        assert [got[f"rate_b{b}"] for b in range(3)] == pytest.approx(rates)
    # Some zaps happened in the episodes, so peace is tested away from 1.
    assert any(s["zapped"].any() for s in steps)


class FakeModule:
    """Stands in for an RLModule: fixed logits; it records its calls' inputs."""

    def __init__(self, logits):
        self.logits, self.calls = np.asarray(logits, dtype=np.float32), []
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []

    def forward_inference(self, batch):
        import torch

        image = batch["obs"]["image"]
        self.calls.append(tuple(image.shape))
        self.inputs.append((image.numpy().copy(), batch["obs"]["features"].numpy().copy()))
        return {"action_dist_inputs": torch.from_numpy(np.tile(self.logits, (len(image), 1)))}


def test_learned_principal_turns_set_the_period_rates():
    levels = (2, 5, 10)
    logits = np.full((3, 11), -10.0)
    logits[np.arange(3), levels] = 10.0
    principal = ev.ModulePrincipal(FakeModule(logits.ravel()), SETUP.game, SETUP.pixels_per_tile,
                                   greedy=True)
    players_module = FakeModule(np.eye(8)[1] * 10)  # always forward
    periods = []
    episodes = ev.evaluate_principal(
        SETUP, ev.ModulePlayers(players_module, greedy=True), principal, num_episodes=1,
        on_step=lambda g, r: periods.append(r.info.period_record) if r.info.period_end
        else None)
    assert len(principal.module.calls) == 4  # one decision per tax period
    assert principal.module.calls[0][0] == 1
    assert len(players_module.calls) == 100 and players_module.calls[0][0] == 7
    for record in periods:
        np.testing.assert_allclose(record.requested_rates, np.array(levels) / 10)
    assert [episodes[0][f"rate_b{b}"] for b in range(3)] == pytest.approx([0.2, 0.5, 1.0])


def test_a_trained_principal_sees_in_evaluation_what_training_showed_it():
    """Evaluation plays a trained principal as a `principals.Principal` in the
    env's scripted slot; its network input must equal what the training env
    (principal as an agent) hands the agent, in the same worlds with the same
    players, and the position of the period in the round must be k / 4."""
    from sed_meltingpot.envs.rllib_env import PRINCIPAL, SEDMultiAgentEnv

    levels = (1, 4, 7)
    logits = np.full((3, 11), -10.0)
    logits[np.arange(3), levels] = 10.0
    players = ev.ScriptedPlayers(busy_players)
    training_env = SEDMultiAgentEnv(SETUP.env_config(seed=3, principal="learned"))
    seen_in_training = []
    try:
        players.reset(11)
        obs, _ = training_env.reset()
        while True:
            if PRINCIPAL in obs:
                seen_in_training.append(obs[PRINCIPAL])
                obs, *_ = training_env.step({PRINCIPAL: np.array(levels)})
                continue
            obs, _, _, truncated, _ = training_env.step(players.act(obs))
            if truncated["__all__"]:
                break
        trained_metrics = training_env.game.episode_metrics()
    finally:
        training_env.close()

    module = FakeModule(logits.ravel())
    principal = ev.ModulePrincipal(module, SETUP.game, SETUP.pixels_per_tile, greedy=True)
    assert isinstance(principal, Principal) and str(principal) == "trained"
    env = ev.make_env(SETUP, principal, seed=3)
    try:
        metrics = ev.run_episode(env, players, seed=11)
        rates = [r.requested_rates for r in env.game.period_records]
    finally:
        env.close()
    assert SETUP.game.round_length == 100 and len(module.inputs) == len(seen_in_training) == 4
    for k, ((image, features), trained_on) in enumerate(
            zip(module.inputs, seen_in_training, strict=True)):
        np.testing.assert_array_equal(image[0], trained_on["image"])
        np.testing.assert_array_equal(features[0], trained_on["features"])
        assert features[0][-1] == pytest.approx(k / 4)
    for requested in rates:
        np.testing.assert_allclose(requested, np.array(levels) / 10)
    # Same worlds, players and rates: the same episode.
    for key in ("objective", "productivity", "tax_revenue", "peace"):
        assert metrics[key] == trained_metrics[key], key


def test_every_principal_follows_one_protocol_and_reads_back_from_its_spelling():
    levels = tuple(np.linspace(0, 1, 11))
    kinds = [no_tax(), FixedRates([0.1, 0.25, 0.5]), RandomPrincipal(levels)]
    for principal in kinds:
        assert isinstance(principal, Principal)
        again = parse_principal(str(principal), num_brackets=3, rate_levels=levels)
        assert type(again) is type(principal) and str(again) == str(principal)
    assert str(kinds[0]) == "none" and str(kinds[1]) == "fixed:0.1,0.25,0.5"
    np.testing.assert_array_equal(parse_principal(str(kinds[1]), num_brackets=3,
                                                  rate_levels=levels)({}), [0.1, 0.25, 0.5])
    # A spec string is not a principal: the envs say how to build one.
    from sed_meltingpot.envs.pettingzoo_env import SEDParallelEnv

    for build in (lambda: ev.make_env(SETUP, "none", seed=0),
                  lambda: SEDParallelEnv(SETUP.game, principal="none")):
        with pytest.raises(TypeError, match=r"'none' is not a principals.Principal.*parse_princ"):
            build()


def test_a_random_principal_draws_each_episode_from_that_episodes_seed():
    """Episode k of an evaluation seeded s plays the rates of episode 0 of one
    seeded s + k (same principal seed), whatever episodes came before it."""
    levels = SETUP.game.rate_levels
    setup = ev.EvalSetup(dataclasses_replace(SETUP.game, episode_length=50), 1, 1)
    players = ev.RandomPlayers()
    rate_keys = [f"rate_b{b}" for b in range(3)]
    two = ev.evaluate_principal(setup, players, RandomPrincipal(levels), num_episodes=2, seed=0)
    one = ev.evaluate_principal(setup, players, RandomPrincipal(levels), num_episodes=1, seed=1)
    assert [two[1][k] for k in rate_keys] == [one[0][k] for k in rate_keys]
    assert [two[0][k] for k in rate_keys] != [two[1][k] for k in rate_keys]


def test_greedy_players_find_apples_in_their_view():
    colour = (169.0, 159.0, 95.0)
    players = ev.GreedyApplePlayers(colour, pixels_per_tile=2, explore=0.0)
    floor = np.full((22, 22, 6), 200, dtype=np.uint8)  # two stacked frames, 2 px per tile

    def view(*cells):
        image = floor.copy()
        for r, c in cells:
            image[2 * r:2 * r + 2, 2 * c:2 * c + 2, 3:] = colour  # newest frame only
        return image

    old_frame_only = floor.copy()
    old_frame_only[0:2, 10:12, :3] = colour
    assert len(players.apples_in_view(old_frame_only)) == 0
    np.testing.assert_array_equal(players.apples_in_view(view((3, 5), (8, 1))), [[3, 5], [8, 1]])
    # Own tile (9, 5): the nearest apple decides the move.
    # (8, 1) is 5 tiles away (1 ahead, 4 left); (3, 5) is 6 ahead.
    assert players._action(view((3, 5), (8, 1))) == players.LEFT
    assert players._action(view((6, 5))) == players.FORWARD
    assert players._action(view((10, 5), (2, 9))) == players.BACKWARD
    assert players._action(view((9, 8))) == players.RIGHT


def test_greedy_players_eat_more_than_random_ones():
    setup = ev.EvalSetup(dataclasses_replace(SETUP.game, episode_length=50), 1, 1)
    greedy = ev.make_players("greedy_apples", setup=setup)
    np.testing.assert_allclose(greedy.apple_colour, (169.4, 158.9, 95.3), atol=0.1)
    eaten = {kind: ev.evaluate_principal(setup, players, no_tax(),
                                         num_episodes=1)[0]["productivity"]
             for kind, players in (("greedy", greedy), ("random", ev.RandomPlayers()))}
    assert eaten["greedy"] > 3 * max(eaten["random"], 5), eaten


def test_results_files_round_trip(tmp_path):
    episodes = [{"objective": 1.0, "peace": 0.5}, {"objective": 3.0, "peace": 0.7}]
    results = [ev.PrincipalResult("none", "no tax", episodes, ev.summarize(episodes))]
    paths = ev.write_results(results, str(tmp_path), meta={"seed": 1})
    rows = list(csv.DictReader(open(paths["summary.csv"])))
    assert rows[0]["principal"] == "none" and float(rows[0]["objective_mean"]) == 2.0
    half = ev.student_t_quantile(0.975, 1) * math.sqrt(2.0) / math.sqrt(2)
    assert float(rows[0]["objective_ci_high"]) == pytest.approx(2.0 + half)
    assert len(list(csv.DictReader(open(paths["episodes.csv"])))) == 2
    doc = json.load(open(paths["results.json"]))
    assert doc["principals"][0]["summary"]["peace"]["mean"] == pytest.approx(0.6)
    assert ev.format_table(results).splitlines()[2].startswith("W_eta")


def test_load_setup_reads_the_trainers_run_config(tmp_path):
    config = json.load(open(os.path.join(DATA, "run_config_tiny.json")))
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "iter_000001"
    ckpt.mkdir(parents=True)
    (run / "run_config.json").write_text(json.dumps(config))
    setup = ev.load_setup(str(ckpt))
    assert setup.game.divergence_delta == math.inf  # stored as null
    assert setup.game.selfishness == pytest.approx(tuple(config["selfishness"]))
    assert (setup.frame_stack, setup.pixels_per_tile) == (4, 1)
    assert setup.game.episode_length == 100


# -------------------------------------------------------------------- video
def test_video_decodes_with_world_region_equal_to_world_rgb(tmp_path):
    setup = ev.EvalSetup(dataclasses_replace(SETUP.game, episode_length=50), 1, 1)
    worlds, frames, period_apples = [], [], []
    running = np.zeros(7)

    def on_frame(frame, game, result):
        nonlocal running
        worlds.append(game.substrate.observation()[0]["WORLD.RGB"].copy())
        frames.append(frame)
        running = running + result.info.apples
        period_apples.append((rendering.panel_info(game, result).period_apples.copy(),
                              running.copy()))
        if result.info.period_end:
            running = np.zeros(7)

    path = str(tmp_path / "episode.mp4")
    scale = 2
    out = rendering.render_episode(setup, ev.ScriptedPlayers(busy_players),
                                   FixedRates([0.1, 0.2, 0.3]), path, scale=scale, max_steps=30,
                                   mosaic=True, lossless=True, on_frame=on_frame, progress=None,
                                   seed=1)
    assert out.num_frames == 30 and len(frames) == 30
    height, width, _ = out.frame_shape
    assert height % 16 == 0 and width % 16 == 0
    top, left, h, w = out.layout.world
    assert (h, w) == (144 * scale, 192 * scale)
    decoded = [f for f in iio.get_reader(path)]
    assert len(decoded) == 30 and decoded[0].shape == (height, width, 3)
    for k in (0, 12, 24, 29):
        upscaled = np.kron(worlds[k], np.ones((scale, scale, 1), dtype=np.uint8))
        np.testing.assert_array_equal(frames[k][top:top + h, left:left + w], upscaled)
        # Lossless H.264 (libx264rgb, CRF 0) decodes bit-exact.
        np.testing.assert_array_equal(decoded[k][top:top + h, left:left + w], upscaled)
    assert not np.array_equal(worlds[0], worlds[29]), "the world should change"
    for shown, expected in period_apples:
        np.testing.assert_array_equal(shown, expected)
    assert sum(e.sum() for _, e in period_apples) > 0

    # Default MP4 (yuv420p, lossy: chroma is subsampled) and GIF (palette):
    # same frame count and size; the MP4's world region is close, not equal.
    lossy = str(tmp_path / "episode_lossy.mp4")
    rendering.render_episode(setup, ev.ScriptedPlayers(busy_players),
                             FixedRates([0.1, 0.2, 0.3]), lossy, scale=scale, max_steps=30,
                             mosaic=True, progress=None, seed=1)
    decoded = [f for f in iio.get_reader(lossy)]
    assert len(decoded) == 30 and decoded[0].shape == (height, width, 3)
    diff = np.abs(decoded[12][top:top + h, left:left + w].astype(int) - np.kron(
        worlds[12], np.ones((scale, scale, 1), dtype=np.uint8)))
    assert diff.mean() < 4.0
    gif = str(tmp_path / "episode.gif")
    rendering.render_episode(setup, ev.RandomPlayers(), None, gif, scale=1, max_steps=5,
                             progress=None)
    frames_gif = iio.mimread(gif)
    assert len(frames_gif) == 5 and frames_gif[0].shape[:2] == (144, 192 + 224)


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


# -------------------------------------------------------------------- plots
def test_plots_from_a_recorded_log_have_the_requested_size(tmp_path):
    # A log written by the trainer (3 iterations of a tiny run) and a copy of
    # it with scaled numbers, as a second run to overlay.
    run_a, run_b = tmp_path / "run_a", tmp_path / "run_b"
    run_a.mkdir()
    run_b.mkdir()
    shutil.copy(os.path.join(DATA, "progress_tiny.jsonl"), run_a / "progress.jsonl")
    with open(run_b / "progress.jsonl", "w") as f:
        for line in open(run_a / "progress.jsonl"):
            record = json.loads(line)
            for key in ("player_return_mean", "principal_return", "productivity", "equality",
                        "rate_b0", "rate_b1", "rate_b2", "tax_cap", "eta",
                        "game_steps_per_s", "time_this_iter_s"):
                record[key] *= 0.7
            record["player_returns"] = [0.7 * r for r in record["player_returns"]]
            record["objective"] = None if record["iteration"] == 1 else 2 * record["objective"]
            f.write(json.dumps(record) + "\n")
    paths = plotting.plot_runs([str(run_a), str(run_b)], str(tmp_path / "plots"), width=640,
                               height=480, dpi=80)
    assert [os.path.basename(p) for p in paths] == [f"{k}.png" for k in plotting.PLOTS]
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape == (480, 640, 3), path
        assert image.std() > 10, f"{path} looks blank"
        # Both runs' colours (matplotlib C0 blue, C1 orange) are drawn.
        for colour in ((31, 119, 180), (255, 127, 14)):
            assert (np.abs(image.astype(int) - colour).sum(axis=-1) < 30).sum() > 10, (
                path, colour)


def test_plot_script_end_to_end_and_flag_messages(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(os.path.join(DATA, "progress_tiny.jsonl"), run / "progress.jsonl")
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "plot.py"), str(run),
           f"--output_dir={tmp_path / 'out'}", "--width=500", "--height=300", "--dpi=50"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    assert Image.open(tmp_path / "out" / "throughput.png").size == (500, 300)
    bad = subprocess.run(cmd[:-3] + ["--width=20"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "--width" in bad.stderr
    bad = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "evaluate.py"), "--principals=bogus"],
        capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "--principals" in bad.stderr
