"""This checkout against another one, side by side: did a change slow the game down?

A refactor must not cost speed (issue 17). Two checkouts cannot be imported in one
process (same module names), so each measurement runs in a fresh subprocess with
PYTHONPATH set to one checkout, and the checkouts take turns (A B, B A, A B, ...)
so that drifts in machine load hit both alike. Every figure is the median over
`--rounds` turns; the ratio column is this checkout's rate over the baseline's,
measured in the same run. Rows:

* `lua_game`: `SEDGame.step` (the Lua substrate plus the SED rules), 7 players, 1000-step
  episodes, random actions, a fixed schedule set every period; steps per second.
* `twin_game`: `SEDTwin.step` jitted and vmapped over 16 games under `lax.scan`
  (200 steps, random actions, fixed rates at each period's start); game steps per
  second after the compile.
* `twin_train`: `scripts/train.py --engine=jax --preset=fast` for a few iterations;
  the median `game_steps_per_s` of its iterations after the first (the compile).

Usage: python scripts/benchmark_checkouts.py --baseline=/path/to/old/checkout
       [--rows=lua_game,twin_game,twin_train] [--rounds=3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from sed_meltingpot.core.validators import int_at_least

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LUA_GAME = """
import time, numpy as np
try:  # the layered package (issue 17 stage 3) or the flat one before it
    from sed_meltingpot.game.config import GameConfig
    from sed_meltingpot.game.sed_game import SEDGame
except ImportError:
    from sed_meltingpot.config import GameConfig
    from sed_meltingpot.game import SEDGame
game = SEDGame(GameConfig(), seed=0)
rng = np.random.default_rng(0)
actions = rng.integers(0, 8, size=(STEPS, 7))
game.reset()
elapsed, done_steps = 0.0, 0
for row in actions:
    if game.principal_due:
        game.set_rates([0.1, 0.3, 0.5])
    start = time.perf_counter()
    result = game.step(row)
    elapsed += time.perf_counter() - start
    done_steps += 1
    if result.done:
        game.reset()
print(done_steps / elapsed)
"""

TWIN_GAME = """
import time, jax, jax.numpy as jnp
try:
    from sed_meltingpot.game.config import GameConfig
except ImportError:
    from sed_meltingpot.config import GameConfig
from sed_meltingpot.twin.sed import SEDTwin
twin, E, T = SEDTwin(GameConfig()), 16, 200
sigma = jnp.full((E, 7), 0.5)
def run(key):
    g, _ = jax.vmap(twin.reset)(jax.random.split(key, E), sigma)
    def body(g, k):
        g, _ = jax.vmap(lambda s: twin.set_rates(s, jnp.array([0.1, 0.3, 0.5])))(g)
        a = jax.random.randint(k, (E, 7), 0, twin.num_actions)
        g, obs, r, pr, d, info = jax.vmap(twin.step)(g, a, jax.random.split(k, E))
        return g, r.sum()
    return jax.lax.scan(body, g, jax.random.split(key, T))[1].sum()
f = jax.jit(run)
f(jax.random.PRNGKey(0)).block_until_ready()
best = []
for i in range(3):
    start = time.perf_counter()
    f(jax.random.PRNGKey(i + 1)).block_until_ready()
    best.append(E * T / (time.perf_counter() - start))
print(sorted(best)[1])
"""


def measure(row: str, checkout: str, args: argparse.Namespace) -> float:
    """One measurement of `row` with `checkout` first on the import path."""
    env = {**os.environ, "PYTHONPATH": checkout, "PYTHONUNBUFFERED": "1"}
    if row == "twin_train":
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(
                [sys.executable, os.path.join(checkout, "scripts", "train.py"), "--engine=jax",
                 "--preset=fast", f"--num_iterations={args.train_iterations}",
                 "--frame_stack=1", f"--output_dir={out}"],
                env=env, check=True, capture_output=True, cwd=checkout)
            with open(os.path.join(out, "progress.jsonl")) as f:
                rates = [json.loads(line)["game_steps_per_s"] for line in f]
            return statistics.median(rates[1:])
    code = {"lua_game": LUA_GAME.replace("STEPS", str(args.lua_steps)),
            "twin_game": TWIN_GAME}[row]
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True, cwd=checkout)
    return float(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, checked: a bad one exits with a one-line usage error naming it (a count
    of 0 would divide by zero or measure nothing)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the other checkout's root")
    parser.add_argument("--rows", default="lua_game,twin_game,twin_train")
    parser.add_argument("--rounds", type=int_at_least(1), default=3)
    parser.add_argument("--lua-steps", type=int_at_least(1), default=1500)
    parser.add_argument("--train-iterations", type=int_at_least(2), default=5,
                        help="iterations of twin_train (its rate is over those after the 1st)")
    args = parser.parse_args(argv)
    args.rows = args.rows.split(",")
    bad = [r for r in args.rows if r not in ("lua_game", "twin_game", "twin_train")]
    if bad:
        parser.error(f"--rows={','.join(args.rows)}: each must be lua_game, twin_game or "
                     "twin_train")
    args.baseline = os.path.abspath(args.baseline)
    if not os.path.isfile(os.path.join(args.baseline, "sed_meltingpot", "__init__.py")):
        parser.error(f"--baseline={args.baseline}: no sed_meltingpot/ package there")
    return args


def main() -> None:
    args = parse_args()
    rows, baseline = args.rows, args.baseline
    print(f"this checkout {HERE}\nbaseline      {baseline}\n")
    print("| row | baseline /s | this /s | ratio (this / baseline) | rounds |")
    print("|---|---|---|---|---|")
    for row in rows:
        rates: dict[str, list[float]] = {"this": [], "base": []}
        for k in range(args.rounds):
            order = [("this", HERE), ("base", baseline)]
            for name, checkout in (order if k % 2 == 0 else order[::-1]):
                rates[name].append(measure(row, checkout, args))
                print(f"  {row} round {k + 1} {name}: {rates[name][-1]:.1f}", file=sys.stderr,
                      flush=True)
        ratios = [a / b for a, b in zip(rates["this"], rates["base"], strict=True)]
        print(f"| {row} | {statistics.median(rates['base']):.1f} | "
              f"{statistics.median(rates['this']):.1f} | {statistics.median(ratios):.3f} "
              f"(per round: {', '.join(f'{x:.3f}' for x in ratios)}) | {args.rounds} |",
              flush=True)


if __name__ == "__main__":
    main()
