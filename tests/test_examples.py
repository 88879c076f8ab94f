"""Every script in examples/ runs as its docstring says (issue 29, item 7), and prints
numbers that an independent computation here predicts: plain-Python arithmetic for the
formulas, the game's definitions (the tax per bracket, transfers that sum to zero, the
principal's rewards that telescope to W_eta) and the run sizes for the training loops.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, timeout: float = 300) -> str:
    """Runs examples/<name>.py from the repository root, as its docstring says; its stdout."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def test_every_example_has_a_docstring_with_its_extra_and_command():
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert [p.stem for p in scripts] == ["custom_rule_training", "jaxmarl_ippo",
                                         "lua_random_players", "pure_functions"]
    for path in scripts:
        doc = path.read_text().split('"""')[1]
        assert "Needs:" in doc and f"python examples/{path.name}" in doc, path.name


def _tax(a: float, rates: list[float], tau=(0, 10, 20, 10000)) -> float:
    """T(a, phi), paper Section 4, term by term as written (both indicator cases)."""
    total = 0.0
    for b, phi in enumerate(rates):
        lo, hi = tau[b], tau[b + 1]
        if a > hi:
            total += phi * (hi - lo)
        elif lo < a <= hi:
            total += phi * (a - lo)
    return total


def test_pure_functions_prints_the_hand_worked_numbers():
    out = dict(line.split(": ", 1) for line in run_example("pure_functions").splitlines())
    got = {k: numbers(v) for k, v in out.items()}
    a, rates = [3, 8, 15, 25], [0.1, 0.2, 0.5]
    taxes = [_tax(x, rates) for x in a]
    r_tax = [x - t + sum(taxes) / len(a) for x, t in zip(a, taxes, strict=True)]
    sigma = [1.0, 0.5, 0.0, 0.25]
    sees = {0: [1], 1: [0, 2], 2: [3], 3: []}
    eq8 = [sigma[i] * r_tax[i] + (1 - sigma[i]) * sum(r_tax[j] for j in sees[i])
           for i in range(4)]
    eta = statistics.mean(sigma)
    pairs = sum(abs(x - y) for x in a for y in a)
    expected = {
        "taxes": taxes, "r_tax": r_tax, "budget (sum r_tax - sum a)": [0.0],
        "eq8 rewards": eq8, "vote mean": [eta], "vote median": [statistics.median(sigma)],
        "vote majority": [0.5],  # two sigma >= 0.5 against two below: a tie
        "W_eta": [eta * sum(a) + (1 - eta) * min(a)], "utilitarian": [sum(a)],
        "egalitarian": [min(a)], "nash": [math.prod(a) ** (1 / len(a))],
        "equality (1 - gini)": [1 - pairs / (2 * len(a) * sum(a))],
        "vote most_selfish": [max(sigma)],
    }
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key] == pytest.approx(want, abs=1e-6), key
    assert taxes == pytest.approx([0.3, 0.8, 2.0, 5.5])  # the docstring's hand-worked case


@pytest.mark.skipif(importlib.util.find_spec("meltingpot") is None,
                    reason="the lua extra (Melting Pot) is not installed")
def test_lua_random_players_periods_follow_the_schedule_and_the_game_rules():
    out = run_example("lua_random_players")
    header = re.search(r"selfishness \[([^\]]*)\], voted eta (\S+)", out)
    sigma = numbers(header.group(1))
    eta = statistics.mean(sigma)  # the paper's vote, f(sigma) = mean
    assert float(header.group(2)) == pytest.approx(eta, abs=1e-3)
    periods = re.findall(r"^period (\d+): rates \[(.*?)\] incomes \[(.*?)\] taxes \[(.*?)\] "
                         r"transfers \[(.*?)\] objective (\S+) principal_reward (\S+)$",
                         out, re.M)
    schedule = [[0, 0, 0], [0.1, 0.2, 0.5], [0.3, 0.3, 0.3], [1, 1, 1]]
    assert [int(p[0]) for p in periods] == [0, 1, 2, 3]  # 200 steps / 50 per period
    apples, objective, gains = [0.0] * len(sigma), 0.0, 0.0
    for (_, rates, incomes, taxes, transfers, objective, gain), want in zip(
            periods, schedule, strict=True):
        rates, incomes = numbers(rates), numbers(incomes)
        assert rates == pytest.approx(want)
        taxes_want = [_tax(x, rates) for x in incomes]
        assert numbers(taxes) == pytest.approx(taxes_want, abs=1e-3)
        mean_tax = sum(taxes_want) / len(taxes_want)
        assert numbers(transfers) == pytest.approx([mean_tax - t for t in taxes_want],
                                                   abs=1e-3)
        apples = [x + y for x, y in zip(apples, incomes, strict=True)]
        gains += float(gain)
        # the objective so far: W_eta on the round's apples up to this period's end
        assert float(objective) == pytest.approx(
            eta * sum(apples) + (1 - eta) * min(apples), abs=1e-2)
    assert gains == pytest.approx(float(objective), abs=1e-2)  # the rewards telescope
    line = re.search(r"apples per player: \[(.*?)\]", out).group(1)
    assert numbers(line) == pytest.approx(apples)
    episode = dict(re.findall(r"(\w+) (-?[\d.]+)", out.split("episode: ")[1]))
    assert float(episode["utilitarian"]) == pytest.approx(sum(apples))
    assert float(episode["egalitarian"]) == pytest.approx(min(apples))
    # the pool's size: the taxes over every period
    assert float(episode["tax_revenue"]) == pytest.approx(
        sum(_tax(x, numbers(p[1])) for p in periods for x in numbers(p[2])), abs=1e-2)


def test_custom_rule_training_trains_with_the_registered_rule(tmp_path):
    out = run_example("custom_rule_training", f"--output_dir={tmp_path}", timeout=600)
    types = [0.95, 0.6, 0.5, 0.05]
    eta = statistics.mean(sorted(types)[1:-1])  # the rule: the mean without the extremes
    assert eta != pytest.approx(statistics.mean(types))  # so the rule, not the mean, ran
    rows = re.findall(r"^iteration (\d+): eta (\S+) objective (\S+) utilitarian (\S+) "
                      r"egalitarian (\S+)$", out, re.M)
    assert [int(r[0]) for r in rows] == list(range(1, 7))
    for _, got_eta, objective, utilitarian, egalitarian in rows:
        assert float(got_eta) == pytest.approx(eta, abs=1e-4)
        # W_eta = eta sum + (1 - eta) min, averaged over the same episodes
        assert float(objective) == pytest.approx(
            eta * float(utilitarian) + (1 - eta) * float(egalitarian), abs=1e-3)
    progress = [json.loads(line) for line in (tmp_path / "progress.jsonl").open()]
    assert len(progress) == 6 and progress[-1]["game_steps"] == 6 * 8 * 200
    config = json.loads((tmp_path / "run_config.json").read_text())
    assert json.dumps(config).count('"trimmed_mean"') >= 1
    assert (tmp_path / "checkpoints" / "iter_000006").is_dir()


@pytest.mark.skipif(importlib.util.find_spec("jaxmarl") is None,
                    reason="the jaxmarl extra is not installed")
def test_jaxmarl_ippo_runs_its_documented_sizes():
    out = run_example("jaxmarl_ippo")
    updates = re.findall(r"^update (\d+): (\d+) episodes ended, player return (\S+), "
                         r"principal return (\S+), loss players (\S+) principal (\S+)$",
                         out, re.M)
    # 5 updates of 4 games x 102 env steps; an episode is 100 world steps plus the
    # principal's 2 turns (one per 50-step tax period), so each game ends one per update.
    assert [int(u[0]) for u in updates] == [1, 2, 3, 4, 5]
    assert all(int(u[1]) == 4 for u in updates)
    assert all(math.isfinite(float(x)) for u in updates for x in u[2:])
    assert re.search(r"^episodes finished: 20 in ", out, re.M)
