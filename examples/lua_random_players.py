"""One short episode of the Lua game (SEDGame) with random players and a fixed tax schedule.

Shows: the whole Social Environment Design game on the Melting Pot 2 substrate: the
vote at the round's start, the principal's turn at each tax period's start (here a
scripted schedule, one rate per bracket), the players' steps, the tax settled at each
period's end (paper Section 4) and what each period's record holds.
Needs: the `lua` extra (Melting Pot and dmlab2d; `bash scripts/setup_env.sh` installs it).
Run:   python examples/lua_random_players.py      (about 10 s on 2 CPU cores)
"""

from __future__ import annotations

import numpy as np

from sed_meltingpot.game import SEDGame
from sed_meltingpot.game.config import GameConfig

#: The principal's rates for each of the episode's four 50-step periods: no tax, a
#: progressive schedule, a flat 30%, and everything pooled (100% in every bracket).
SCHEDULE = [(0.0, 0.0, 0.0), (0.1, 0.2, 0.5), (0.3, 0.3, 0.3), (1.0, 1.0, 1.0)]


def fmt(values: np.ndarray) -> str:
    """The values rounded to 4 decimals (tests/test_examples.py recomputes them)."""
    return "[" + ", ".join(str(round(float(v), 4)) for v in values) + "]"


def main() -> None:
    config = GameConfig(num_players=4, episode_length=200, tax_period=50,
                        selfishness=(0.9, 0.6, 0.3, 0.1))  # fixed types; the vote: mean
    game = SEDGame(config, seed=0)
    game.reset()
    print(f"players: {game.num_players}, selfishness {fmt(np.asarray(config.selfishness))}, "
          f"voted eta {round(game.eta, 4)}")
    rng = np.random.default_rng(0)
    apples = np.zeros(game.num_players)
    while True:
        if game.principal_due:  # the start of a tax period: the principal's turn
            game.set_rates(SCHEDULE[len(game.episode_periods)])
        result = game.step(rng.integers(0, game.num_actions, game.num_players))
        apples += result.info.apples
        if result.done:
            break
    for p in game.episode_periods:
        print(f"period {p.period}: rates {fmt(p.effective_rates)} incomes {fmt(p.incomes)} "
              f"taxes {fmt(p.taxes)} transfers {fmt(p.transfers)} objective "
              f"{round(p.objective, 4)} principal_reward {round(p.principal_reward, 4)}")
    print(f"apples per player: {fmt(apples)}")
    metrics = game.episode_metrics()
    print("episode: " + ", ".join(f"{k} {round(metrics[k], 4)}" for k in (
        "objective", "utilitarian", "egalitarian", "equality", "tax_revenue")))
    game.close()


if __name__ == "__main__":
    main()
