"""The game kernel (`sed_meltingpot/game/kernel.py`) on its own, in both array namespaces.

Expected numbers are worked out by hand in the comments (no library formula is
called to make them); the Lua-vs-twin replays (tests/test_twin_sed.py) check the
two shells around it against each other.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from sed_meltingpot.core import welfare
from sed_meltingpot.game import kernel
from sed_meltingpot.game.config import GameConfig

jnp = pytest.importorskip("jax.numpy")


def rules(xp, welfare_on: str = "apples") -> kernel.Rules:
    """2 players, tax periods of 2 steps, a 4-step episode, W = interpolated."""
    config = dataclasses.replace(GameConfig(), num_players=2, episode_length=4, tax_period=2,
                                 welfare_on=welfare_on)
    return kernel.make_rules(
        config, welfare_fn=welfare.WELFARE_CORES["interpolated"],
        vote=lambda sigma, fixed, xp: xp.asarray(0.5), project=lambda r, xp: r,
        dtype=np.float64 if xp is np else jnp.float32)


def play(xp, welfare_on: str = "apples"):
    """Period 1 at rates 0.5 (apples [2, 0] then [1, 1]); period 2 at rates 0, no apples."""
    r = rules(xp, welfare_on)
    s = kernel.reset(r, [1.0, 0.5], [1.0, 1.0], None, xp)
    nearby, no_zap, ready = np.ones((2, 2), bool), np.zeros(2, bool), np.ones(2)
    outs = []
    for k, apples in enumerate(([2.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0])):
        if k % 2 == 0:
            assert bool(s.principal_due)
            s = kernel.set_rates(r, s, [0.5, 0.5, 0.5] if k == 0 else [0.0, 0.0, 0.0], 1.0, xp)
        s, rew, preward, done, info = kernel.step(r, s, apples, nearby, no_zap, ready, xp)
        outs.append((rew, preward, done, info, s))
    return r, s, outs


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
def test_a_hand_worked_episode(xp):
    r, s, outs = play(xp)
    # Period 1: incomes [3, 1], taxes 0.5 * [3, 1] = [1.5, 0.5] (all in bracket 1),
    # mean tax 1.0, transfers [-0.5, +0.5], so r_tax at step 2 = [1, 1] + [-0.5, 0.5].
    rew2, _, _, info2, s2 = outs[1]
    np.testing.assert_allclose(info2["taxes"], [1.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(info2["r_tax"], [0.5, 1.5], rtol=1e-6)
    # Eq. 8 with everyone visible: r_1 = r_tax,1; r_2 = 0.5 * 1.5 + 0.5 * 0.5 = 1.0.
    np.testing.assert_allclose(rew2, [0.5, 1.0], rtol=1e-6)
    # W_0.5 on round apples: after step 1, 0.5 * 2 + 0.5 * 0 = 1; after step 2 ([3, 1]),
    # 0.5 * 4 + 0.5 * 1 = 2.5, so the principal gets 1.0 then 1.5.
    assert [float(o[1]) for o in outs[:2]] == pytest.approx([1.0, 1.5])
    assert bool(s2.principal_due) and not bool(outs[0][4].principal_due)
    np.testing.assert_allclose(s2.last_period_apples, [3.0, 1.0])
    np.testing.assert_allclose(s2.period_apples, [0.0, 0.0])
    assert [bool(o[2]) for o in outs] == [False, False, False, True]
    assert not bool(s.principal_due)  # the episode is over
    m = kernel.episode_metrics(r, s, xp)
    np.testing.assert_allclose(m["apples_per_player"], [3.0, 1.0])
    np.testing.assert_allclose(m["income_per_player"], [2.5, 1.5], rtol=1e-6)
    assert float(m["tax_revenue"]) == pytest.approx(2.0)
    np.testing.assert_allclose(m["mean_rates"], [0.25, 0.25, 0.25], rtol=1e-6)
    # Apples eaten at steps 0 (2) and 1 (2): mean eating time (0 * 2 + 1 * 2) / 4.
    assert float(m["sustainability"]) == pytest.approx(0.5)
    assert float(m["objective"]) == pytest.approx(2.5) and float(m["eta"]) == 0.5
    assert int(m["steps"]) == 4 and float(m["peace"]) == 1.0
    assert float(m["egalitarian_income"]) == pytest.approx(1.5)


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
def test_the_objective_on_post_tax_income(xp):
    _, s, outs = play(xp, "taxed")
    # Round post-tax incomes after step 2: [2.5, 1.5]; W_0.5 = 0.5 * 4 + 0.5 * 1.5 = 2.75.
    assert float(outs[1][3]["objective"]) == pytest.approx(2.75)
    assert sum(float(o[1]) for o in outs) == pytest.approx(2.75)


def test_rates_apply_only_while_due_and_are_capped():
    r = rules(np)
    s = kernel.reset(r, [1.0, 1.0], [1.0, 1.0], None, np)
    s = kernel.set_rates(r, s, [1.0, 0.5, 2.0], 0.5, np)  # clipped to 1, then times the cap
    np.testing.assert_allclose(s.rates, [0.5, 0.25, 0.5])
    again = kernel.set_rates(r, s, [0.0, 0.0, 0.0], 1.0, np)  # not due any more
    np.testing.assert_allclose(again.rates, s.rates)


def test_helpers_give_numpy_and_jax_one_spelling():
    a = np.zeros(3)
    b = kernel.set_at(np, a, 1, 5.0)
    assert a.tolist() == [0.0, 0.0, 0.0] and b.tolist() == [0.0, 5.0, 0.0]
    assert np.asarray(kernel.set_at(jnp, jnp.zeros(3), 1, 5.0)).tolist() == b.tolist()
    calls = []
    fn = lambda: calls.append(1) or 7.0  # noqa: E731
    assert kernel.where_lazy(np, False, fn, 3.0) == 3.0 and calls == []
    assert kernel.where_lazy(np, True, fn, 3.0) == 7.0 and calls == [1]
    assert float(kernel.where_lazy(jnp, jnp.asarray(False), fn, 3.0)) == 3.0


def test_the_kernel_imports_no_jax():
    code = ("import sys, sed_meltingpot.game.kernel; "
            "sys.exit(sorted(m for m in ('jax', 'flax') if m in sys.modules) or 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout
